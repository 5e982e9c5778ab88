// The chat page. Everything that comes from a user or a worker is put on the page
// with textContent, never innerHTML. The per-query API key is read from the form,
// sent with that one query and cleared; it is never stored.
"use strict";

(function () {
  const SESSION_KEY = "aiswarm.sessionId";

  function sessionId() {
    let id = localStorage.getItem(SESSION_KEY);
    if (!id || !/^[A-Za-z0-9_.:-]{1,128}$/.test(id)) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes); // works on plain http too, unlike randomUUID
      id = "s-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem(SESSION_KEY, id);
    }
    return id;
  }

  const els = {
    messages: document.getElementById("messages"),
    form: document.getElementById("query-form"),
    input: document.getElementById("query-input"),
    apiKey: document.getElementById("api-key-input"),
    send: document.getElementById("send-button"),
    error: document.getElementById("form-error"),
    workers: document.getElementById("workers-panel"),
    connection: document.getElementById("connection"),
  };

  /** id -> {user, status} elements of one query in the chat. */
  const entries = new Map();

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function entryFor(id, queryText) {
    let entry = entries.get(id);
    if (!entry) {
      const user = el("div", "message user", queryText);
      user.dataset.queryId = id;
      const status = el("div", "message queued");
      status.dataset.queryId = id;
      els.messages.append(user, status);
      entry = { user, status };
      entries.set(id, entry);
    }
    return entry;
  }

  function ms(from, to) {
    return typeof from === "number" && typeof to === "number" ? `${to - from} ms` : "–";
  }

  function renderStatus(node, view) {
    node.replaceChildren();
    node.dataset.status = view.status;
    if (view.status === "queued") {
      node.className = "message queued";
      node.append("Waiting in the queue, position ");
      node.append(el("span", "queue-position", view.position));
      return;
    }
    if (view.status === "assigned") {
      node.className = "message assigned";
      node.append("Working on it: ", el("span", "worker-id", view.worker ? view.worker.id : "?"));
      return;
    }
    node.className = view.status === "done" ? "message answer" : "message failed";
    node.append(el("div", "answer-text", view.status === "done" ? view.answer : `Error: ${view.error}`));
    const meta = el("div", "meta");
    const w = view.worker || { id: "–", language: "–", node: "–" };
    const t = view.timings;
    meta.append(
      el("span", "worker-language", w.language),
      el("span", "worker-node", w.node),
      el("span", "worker-id", w.id),
      el("span", "provider", `via ${view.provider || "–"}`),
      el("span", "timing-total", `total ${ms(t.created_ms, t.completed_ms)}`),
      el("span", "timing-queue", `queued ${ms(t.created_ms, t.assigned_ms)}`),
      el("span", "timing-worker", `worker ${ms(t.received_ms, t.finished_ms)}`),
    );
    node.append(meta);
  }

  function onUpdate(view) {
    const atBottom = els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight < 40;
    renderStatus(entryFor(view.id, view.query).status, view);
    if (atBottom) els.messages.scrollTop = els.messages.scrollHeight;
  }

  function renderWorkers(list) {
    const byNode = new Map();
    for (const w of list) {
      if (!byNode.has(w.node)) byNode.set(w.node, []);
      byNode.get(w.node).push(w);
    }
    const groups = [...byNode.keys()].sort().map((nodeName) => {
      const group = el("div", "node-group");
      group.dataset.node = nodeName;
      group.append(el("h3", null, `node ${nodeName}`));
      for (const w of byNode.get(nodeName).sort((a, b) => a.id.localeCompare(b.id))) {
        const item = el("div", "worker");
        item.dataset.status = w.status;
        item.dataset.workerId = w.id;
        item.append(el("span", "worker-id", w.id), el("span", "worker-language", w.language), el("span", "worker-status", w.status));
        group.append(item);
      }
      return group;
    });
    if (groups.length === 0) groups.push(el("p", "empty", "No workers yet."));
    els.workers.replaceChildren(...groups);
  }

  const socket = io({ auth: { sessionId: sessionId() } });
  socket.on("connect", () => {
    els.connection.textContent = "connected";
    els.connection.className = "connection online";
  });
  socket.on("disconnect", () => {
    els.connection.textContent = "reconnecting…";
    els.connection.className = "connection offline";
  });
  socket.on("query:update", onUpdate);
  socket.on("workers", renderWorkers);

  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = els.input.value;
    const apiKey = els.apiKey.value;
    els.error.textContent = "";
    const payload = apiKey ? { query, apiKey } : { query };
    els.send.disabled = true;
    socket.timeout(10000).emit("query", payload, (err, ack) => {
      els.send.disabled = false;
      if (err) {
        els.error.textContent = "The master did not answer; try again.";
        return;
      }
      if (!ack.ok) {
        els.error.textContent = ack.error;
        return;
      }
      els.input.value = "";
      els.apiKey.value = ""; // a key serves one query only
      const entry = entryFor(ack.id, query);
      if (!entry.status.dataset.status) {
        const status = ack.position > 0 ? "queued" : "assigned";
        renderStatus(entry.status, { status, position: ack.position, worker: null });
      }
      els.messages.scrollTop = els.messages.scrollHeight;
    });
  });

  els.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      els.form.requestSubmit();
    }
  });
})();
