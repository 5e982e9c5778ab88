// The chat page. Everything that comes from a user or a worker is put on the page
// with textContent, never innerHTML. The per-query API key is read from the form,
// sent with that one query and cleared; it is never stored.
//
// When the master has access control on (GET /api/session says auth "token"),
// the page shows a sign-in form until it has a session: the token typed there is
// sent once to POST /api/session, which answers with an HttpOnly cookie; the
// token itself is never stored. Works under a strict CSP: no inline script or
// style anywhere (the chart is SVG made with DOM calls, colours come from style.css).
//
// Beside the chat, the cluster view: totals, a chart of the last minutes and one
// card per VM, fed by the master's `cluster` summary (at most one a second, the
// same for every page); a VM's worker list only while its card is open.
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
    totals: document.getElementById("cluster-totals"),
    chart: document.getElementById("cluster-chart"),
    legendThroughput: document.getElementById("legend-throughput"),
    legendQueue: document.getElementById("legend-queue"),
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

  const numberFormat = new Intl.NumberFormat("en");
  const fmt = (n) => numberFormat.format(n);

  /** "+12 ms", "+2.4 s": how long after the query was sent. */
  function since(fromMs, atMs) {
    const d = Math.max(0, atMs - fromMs);
    return d < 10000 ? `+${d} ms` : `+${(d / 1000).toFixed(1)} s`;
  }

  function duration(msValue) {
    if (typeof msValue !== "number") return "–";
    return msValue < 1000 ? `${msValue} ms` : `${(msValue / 1000).toFixed(1)} s`;
  }

  /** One step of a query's story, in plain words. */
  function storyItem(event, createdMs) {
    const item = el("li", "story-step");
    item.dataset.kind = event.kind;
    if (event.reason) item.dataset.reason = event.reason;
    const time = el("span", "story-time", since(createdMs, event.at_ms));
    const text = el("span", "story-text");
    const who = (prefix) => {
      text.append(prefix, el("span", "story-worker", event.worker || "?"), " on VM ", el("span", "story-node", event.node || "?"));
    };
    switch (event.kind) {
      case "queued":
        text.append("queued");
        break;
      case "leased":
        who("leased to worker ");
        if (event.attempt > 1) text.append(` (attempt ${event.attempt})`);
        break;
      case "requeued":
        text.append(el("span", "story-icon", "⚠ "), `${event.detail || event.reason}`, " — worker ", el("span", "story-worker", event.worker || "?"), "; back to the head of the queue");
        break;
      case "answered":
        who("answered by ");
        break;
      case "failed":
        text.append(el("span", "story-icon", "✕ "), `failed: ${event.detail || event.reason || "unknown reason"}`);
        break;
      default:
        text.append(event.kind);
    }
    item.append(time, " ", text);
    return item;
  }

  function storyOf(view) {
    const list = el("ol", "story");
    list.setAttribute("aria-label", "What happened to this query");
    for (const event of view.events || []) list.append(storyItem(event, view.timings.created_ms));
    return list;
  }

  /** The last time the query was taken back from a worker, in plain words (for a query still running). */
  function lastSetback(view) {
    const back = (view.events || []).filter((e) => e.kind === "requeued");
    const last = back[back.length - 1];
    return last ? el("div", "setback", `Re-dispatched: ${last.detail || last.reason} (worker ${last.worker || "?"})`) : null;
  }

  function renderStatus(node, view) {
    node.replaceChildren();
    node.dataset.status = view.status;
    if (view.status === "queued") {
      node.className = "message queued";
      node.append("Waiting in the queue, position ");
      node.append(el("span", "queue-position", view.position));
      const setback = lastSetback(view);
      if (setback) node.append(setback);
      return;
    }
    if (view.status === "assigned") {
      node.className = "message assigned";
      node.append("Working on it: ", el("span", "worker-id", view.worker ? view.worker.id : "?"));
      if (view.worker) node.append(" on VM ", el("span", "worker-node", view.worker.node));
      const setback = lastSetback(view);
      if (setback) node.append(setback);
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
    if (view.events && view.events.length > 0) node.append(storyOf(view));
  }

  function onUpdate(view) {
    const atBottom = els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight < 40;
    renderStatus(entryFor(view.id, view.query).status, view);
    if (atBottom) els.messages.scrollTop = els.messages.scrollHeight;
  }

  // ---- the cluster view --------------------------------------------------------
  // One summary a second at most (Socket.IO `cluster`), one card per VM with
  // counts only; a VM's worker list is asked for (`node:watch`) while its card
  // is open and arrives as `node:workers`. Cards are updated in place.

  const SVG = "http://www.w3.org/2000/svg";
  /** node name -> the elements of its card. */
  const cards = new Map();
  let cardCounter = 0;

  function setText(node, text) {
    const value = String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function languagesText(languages) {
    if (!languages || languages.length === 0) return "none online";
    return languages.map((l) => `${l.language} ${fmt(l.idle + l.busy)}`).join(" · ");
  }

  function statusLabel(status) {
    // Never colour alone: a shape and a word for every state.
    if (status === "busy") return "● busy";
    if (status === "idle") return "○ idle";
    return "✕ offline";
  }

  function countBadge(kind) {
    const badge = el("span", `count count-${kind}`);
    badge.dataset.count = kind;
    const icon = el("span", "count-icon", kind === "busy" ? "●" : kind === "idle" ? "○" : "✕");
    icon.setAttribute("aria-hidden", "true");
    const value = el("span", "count-value", "0");
    badge.append(icon, " ", value, ` ${kind}`);
    return { badge, value };
  }

  function createCard(nodeName) {
    cardCounter += 1;
    const id = `vm-${cardCounter}`;
    const root = el("article", "vm-card");
    root.dataset.node = nodeName;
    root.setAttribute("aria-labelledby", `${id}-name`);
    const head = el("div", "vm-head");
    const name = el("h3", "vm-name", nodeName);
    name.id = `${id}-name`;
    const answers = el("span", "vm-answers", "");
    head.append(name, answers);
    const counts = el("p", "vm-counts");
    const busy = countBadge("busy");
    const idle = countBadge("idle");
    const offline = countBadge("offline");
    counts.append(busy.badge, idle.badge, offline.badge);
    const meter = document.createElement("meter");
    meter.className = "vm-load";
    meter.min = 0;
    meter.max = 1;
    meter.value = 0;
    const langs = el("p", "vm-langs", "");
    const toggle = el("button", "vm-toggle");
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", `${id}-workers`);
    const toggleText = el("span", "vm-toggle-text", "Show workers");
    toggle.append(toggleText, el("span", "visually-hidden", ` on ${nodeName}`));
    const details = el("ul", "vm-workers");
    details.id = `${id}-workers`;
    details.hidden = true;
    details.setAttribute("aria-label", `Workers on ${nodeName}`);
    root.append(head, counts, meter, langs, toggle, details);
    const card = { root, answers, busy: busy.value, idle: idle.value, offline: offline.value, offlineBadge: offline.badge, meter, langs, toggle, toggleText, details, expanded: false, node: nodeName };
    toggle.addEventListener("click", () => setExpanded(card, !card.expanded));
    return card;
  }

  function setExpanded(card, expanded) {
    card.expanded = expanded;
    card.toggle.setAttribute("aria-expanded", String(expanded));
    setText(card.toggleText, expanded ? "Hide workers" : "Show workers");
    card.details.hidden = !expanded;
    card.root.classList.toggle("expanded", expanded);
    if (expanded && card.details.childElementCount === 0) card.details.append(el("li", "vm-loading", "Loading…"));
    if (socket) socket.emit("node:watch", { node: card.node, watch: expanded });
  }

  function updateCard(card, n) {
    setText(card.answers, `${fmt(n.answers_per_min)} ${n.answers_per_min === 1 ? "answer" : "answers"}/min`);
    setText(card.busy, fmt(n.busy));
    setText(card.idle, fmt(n.idle));
    setText(card.offline, fmt(n.offline));
    card.offlineBadge.hidden = n.offline === 0;
    card.meter.max = Math.max(1, n.workers);
    card.meter.value = n.busy;
    card.meter.setAttribute("aria-label", `${n.busy} of ${n.workers} workers busy on ${n.node}`);
    setText(card.langs, languagesText(n.languages));
    card.root.dataset.workers = String(n.workers);
    card.root.dataset.busy = String(n.busy);
    card.root.dataset.idle = String(n.idle);
  }

  function renderWorkerList(card, workers) {
    const online = workers.filter((w) => w.status !== "offline");
    const items = online.map((w) => {
      const item = el("li", "worker");
      item.dataset.status = w.status;
      item.dataset.workerId = w.id;
      item.append(el("span", "worker-status", statusLabel(w.status)), el("span", "worker-id", w.id), el("span", "worker-language", w.language));
      if (w.task_id) item.append(el("span", "worker-task", w.task_id));
      return item;
    });
    if (items.length === 0) items.push(el("li", "vm-empty", "No worker online on this VM."));
    card.details.replaceChildren(...items);
  }

  function onNodeWorkers(payload) {
    const card = payload && cards.get(payload.node);
    if (card && card.expanded) renderWorkerList(card, payload.workers || []);
  }

  function renderTotals(t) {
    const set = (key, text) => {
      const node = els.totals.querySelector(`[data-total="${key}"]`);
      if (node) setText(node, text);
    };
    set("vms", fmt(t.vms));
    set("workers", fmt(t.workers));
    set("languages", languagesText(t.languages));
    set("busy", `● ${fmt(t.busy)}`);
    set("idle", `○ ${fmt(t.idle)}${t.offline ? ` (✕ ${fmt(t.offline)} offline)` : ""}`);
    set("queue", `${fmt(t.queue_depth)} waiting`);
    set("answers", fmt(t.answers_per_min));
    set("median", t.median_answer_ms === null ? "–" : duration(t.median_answer_ms));
  }

  function renderChart(history) {
    const points = (history && history.points) || [];
    const stepS = history ? history.step_ms / 1000 : 1;
    const rates = points.map((p) => p.answers / stepS);
    const queue = points.map((p) => p.queue_depth);
    const peakRate = Math.max(0, ...rates);
    const peakQueue = Math.max(0, ...queue);
    const line = (values, peak, className) => {
      const poly = document.createElementNS(SVG, "polyline");
      poly.setAttribute("class", className);
      const n = Math.max(1, values.length - 1);
      poly.setAttribute("points", values.map((v, i) => `${((i / n) * 300).toFixed(1)},${(77 - (v / Math.max(1, peak)) * 72).toFixed(1)}`).join(" "));
      return poly;
    };
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("class", "chart-base");
    base.setAttribute("x1", "0");
    base.setAttribute("x2", "300");
    base.setAttribute("y1", "77.5");
    base.setAttribute("y2", "77.5");
    const nowRate = rates.length ? rates[rates.length - 1] : 0;
    const nowQueue = queue.length ? queue[queue.length - 1] : 0;
    const title = document.createElementNS(SVG, "title");
    title.id = "chart-title";
    title.textContent = `Last 5 minutes: ${nowRate.toFixed(1)} answers/s now (peak ${peakRate.toFixed(1)}), queue depth ${nowQueue} now (peak ${peakQueue})`;
    els.chart.replaceChildren(title, base, line(rates, peakRate, "chart-throughput"), line(queue, peakQueue, "chart-queue"));
    setText(els.legendThroughput, `answers/s (peak ${peakRate.toFixed(1)})`);
    setText(els.legendQueue, `queue depth (peak ${fmt(peakQueue)})`);
  }

  function renderCluster(summary) {
    renderTotals(summary.totals);
    renderChart(summary.history);
    const seen = new Set();
    let index = 0;
    for (const n of summary.nodes) {
      seen.add(n.node);
      let card = cards.get(n.node);
      if (!card) {
        card = createCard(n.node);
        cards.set(n.node, card);
      }
      updateCard(card, n);
      // Keep the server's order without moving cards that are already in place.
      const at = els.workers.children[index];
      if (at !== card.root) els.workers.insertBefore(card.root, at || null);
      index += 1;
    }
    for (const [name, card] of cards) {
      if (seen.has(name)) continue;
      if (card.expanded && socket) socket.emit("node:watch", { node: name, watch: false });
      card.root.remove();
      cards.delete(name);
    }
    if (summary.nodes.length === 0) {
      if (!els.workers.querySelector(".empty")) els.workers.append(el("p", "empty", "No workers yet."));
    } else {
      const empty = els.workers.querySelector(".empty");
      if (empty) empty.remove();
    }
  }

  function clearCluster() {
    cards.clear();
    els.workers.replaceChildren();
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
    // WebSocket first: one TCP connection per session, so behind a service VIP
    // spreading connections over several masters the whole session talks to
    // one of them (long-polling's separate requests could land on a standby).
    socket = io({ auth: { sessionId: sessionId() }, forceNew: true, transports: ["websocket", "polling"], tryAllTransports: true });
    socket.on("connect", () => {
      setConnection("connected", true);
      // A new connection watches nothing yet: ask again for the open cards.
      for (const card of cards.values()) if (card.expanded) socket.emit("node:watch", { node: card.node, watch: true });
    });
    socket.on("disconnect", (reason) => {
      setConnection("reconnecting…", false);
      // The master closed it: the session ended (signed out, expired). Ask again.
      if (reason === "io server disconnect") void checkSession();
    });
    socket.on("connect_error", (err) => {
      // Refused for want of a session (the client does not retry those): ask
      // again, after a pause so that a disagreement can never spin.
      if (err && err.message === "unauthorized") {
        setTimeout(checkSession, 1000);
        return;
      }
      // Anything else (a standby master's 503, a master restarting, a lost
      // network): the client retries by itself with its backoff, reaching
      // whichever master serves.
      setConnection("reconnecting…", false);
    });
    socket.on("query:update", onUpdate);
    socket.on("cluster", renderCluster);
    socket.on("node:workers", onNodeWorkers);
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
    clearCluster();
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
      if (res.status === 503) {
        // A standby master answered (another one leads): try again shortly.
        setConnection("reconnecting…", false);
        setTimeout(checkSession, 1000);
        return;
      }
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
