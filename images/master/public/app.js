// The chat page. Everything that comes from a user or a worker is put on the page
// with textContent, never innerHTML. The per-query API key is read from the form,
// sent with that one query and cleared; it is never stored.
//
// When the master has access control on (GET /api/session says auth "token"),
// the page shows a sign-in form until it has a session: the token typed there is
// sent once to POST /api/session, which answers with an HttpOnly cookie; the
// token itself is never stored. Works under a strict CSP: no inline script or
// style anywhere.
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
    chat: document.getElementById("chat"),
    signinForm: document.getElementById("signin-form"),
    signinToken: document.getElementById("signin-token"),
    signinButton: document.getElementById("signin-button"),
    signinError: document.getElementById("signin-error"),
    signout: document.getElementById("signout-button"),
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

  function setConnection(text, online) {
    els.connection.textContent = text;
    els.connection.className = online ? "connection online" : "connection offline";
  }

  let socket = null;
  let accessControl = false;

  /** A fresh connection (a new handshake, so it carries the current cookie). */
  function connect() {
    disconnect();
    socket = io({ auth: { sessionId: sessionId() }, forceNew: true });
    socket.on("connect", () => setConnection("connected", true));
    socket.on("disconnect", (reason) => {
      setConnection("reconnecting…", false);
      // The master closed it: the session ended (signed out, expired). Ask again.
      if (reason === "io server disconnect") void checkSession();
    });
    socket.on("connect_error", (err) => {
      // Refused for want of a session (the client does not retry those): ask
      // again, after a pause so that a disagreement can never spin.
      if (err && err.message === "unauthorized") setTimeout(checkSession, 1000);
    });
    socket.on("query:update", onUpdate);
    socket.on("workers", renderWorkers);
  }

  function disconnect() {
    if (!socket) return;
    socket.removeAllListeners();
    socket.disconnect();
    socket = null;
  }

  function showChat() {
    els.signinForm.hidden = true;
    els.chat.hidden = false;
    els.signout.hidden = !accessControl;
    connect();
  }

  function showSignIn() {
    disconnect();
    entries.clear();
    els.messages.replaceChildren();
    els.workers.replaceChildren();
    els.chat.hidden = true;
    els.signout.hidden = true;
    els.signinForm.hidden = false;
    setConnection("signed out", false);
    els.signinToken.focus();
  }

  async function checkSession() {
    let state;
    try {
      const res = await fetch("/api/session", { cache: "no-store" });
      state = await res.json();
    } catch {
      setConnection("cannot reach the master", false);
      setTimeout(checkSession, 2000);
      return;
    }
    accessControl = state.auth === "token";
    if (accessControl && !state.signedIn) showSignIn();
    else if (!socket || !socket.connected) showChat();
  }

  els.signinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    els.signinError.textContent = "";
    els.signinButton.disabled = true;
    try {
      const res = await fetch("/api/session", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: els.signinToken.value }),
      });
      if (res.status === 204) {
        els.signinToken.value = "";
        showChat();
        return;
      }
      const body = await res.json().catch(() => ({}));
      els.signinError.textContent =
        res.status === 429
          ? `Too many wrong tokens; try again in ${res.headers.get("retry-after")} s.`
          : body.error || `Sign-in failed (HTTP ${res.status}).`;
    } catch {
      els.signinError.textContent = "The master did not answer; try again.";
    } finally {
      els.signinButton.disabled = false;
    }
  });

  els.signout.addEventListener("click", async () => {
    disconnect(); // first, so the server closing it does not look like a lost session
    try {
      await fetch("/api/session", { method: "DELETE" });
    } catch {
      // Signed out on this page either way.
    }
    showSignIn();
  });

  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = els.input.value;
    const apiKey = els.apiKey.value;
    els.error.textContent = "";
    const payload = apiKey ? { query, apiKey } : { query };
    if (!socket) {
      els.error.textContent = "Not connected to the master; sign in first.";
      return;
    }
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

  void checkSession();
})();
