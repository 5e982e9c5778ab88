// The REST API and Socket.IO on a real HTTP server on 127.0.0.1, in front of the
// real service and store. Tasks are recorded instead of published (no broker
// needed here; e2e.test.ts covers MQTT).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io as connectSocket, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { ClusterSummary } from "../src/cluster";
import { HttpApi, preferredWaitMs } from "../src/httpServer";
import { createLogger } from "../src/log";
import { Metrics } from "../src/metrics";
import { QueryService, type QueryView, type TaskPublisher } from "../src/queryService";
import { RateLimiter } from "../src/rateLimit";
import { Scheduler } from "../src/scheduler";
import { SqliteStore } from "../src/sqliteStore";
import { eventually as waitUntil } from "../../../launch/ports";

const MAX_CHARS = 50;
const RATE = 60;

class RecordingPublisher implements TaskPublisher {
  connected = true;
  readonly sent: Record<string, unknown>[] = [];
  publish(_topic: string, payload: string): void {
    this.sent.push(JSON.parse(payload) as Record<string, unknown>);
  }
}

let dir: string;
let store: SqliteStore;
let service: QueryService;
let api: HttpApi;
let base: string;
let mqttUp = true;
/** The store's answer to /healthz's ping, as the test wants it. */
let dbUp = true;
const publisher = new RecordingPublisher();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "master-http-"));
  store = new SqliteStore(join(dir, "master.db"));
  const scheduler = new Scheduler({
    leaseMs: 30_000, taskTimeoutMs: 300_000, heartbeatTimeoutMs: 7_000,
    maxQueuedPerSession: 3, maxAttempts: 5, offlineRetentionMs: 60_000,
  });
  const log = createLogger("error", () => {});
  service = new QueryService(store, scheduler, publisher, log, { taskTopic: (id) => `t/${id}` });
  const metrics = new Metrics({
    queueDepth: () => service.queueDepth(),
    queriesByState: () => service.queriesByState(),
    workers: () => service.workers(),
  });
  service.setMetrics(metrics);
  api = new HttpApi({
    service, metrics, log, maxQueryChars: MAX_CHARS,
    rateLimiter: new RateLimiter(RATE),
    health: () => ({ mqtt: mqttUp, db: dbUp && store.ping(), leader: true, store: "sqlite" }),
    clusterPushMs: 100,
    // Long chart steps: a step boundary (the chart moving on) never falls in a test's quiet period.
    cluster: { historyStepMs: 600_000 },
  });
  const port = await api.listen(0, "127.0.0.1");
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await api.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

let sessionCounter = 0;
/** Each test uses its own session so the per-session cap does not leak between tests. */
const newSession = (): string => `test-${++sessionCounter}`;

function post(body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/api/queries`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-session-id": newSession(), ...headers },
    body,
  });
}

async function errorOf(res: Response): Promise<string> {
  return ((await res.json()) as { error: string }).error;
}

// First: it needs an empty queue so the worker it registers takes its query.
describe("long-poll", () => {
  it("?wait=MS long-polls until the query ends", async () => {
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-http", language: "go", node: "vm7", provider: "offline", ts: 0 });
    const { id } = (await (await post('{"query":"poll me"}')).json()) as { id: string };
    await waitUntil("dispatch to w-http", () => (service.get(id)?.status === "assigned" ? true : undefined));
    const polled = fetch(`${base}/api/queries/${id}?wait=10000`);
    setTimeout(() => {
      service.handleResult({
        taskId: id, workerId: "w-http", language: "go", node: "vm7", provider: "offline",
        answer: "polled answer", error: "", receivedMs: 1, startedMs: 2, finishedMs: 3,
      });
    }, 100);
    const view = (await (await polled).json()) as QueryView;
    expect(view).toMatchObject({ status: "done", answer: "polled answer", worker: { id: "w-http", language: "go", node: "vm7" } });
    // the query's story: queued, leased to w-http on vm7, answered
    expect(view.events.map((e) => [e.kind, e.worker, e.node])).toEqual([
      ["queued", undefined, undefined],
      ["leased", "w-http", "vm7"],
      ["answered", "w-http", "vm7"],
    ]);
    expect(view.events[2]?.at_ms).toBe(view.timings.completed_ms);
    // a bad wait value is an error, not a crash
    const bad = await fetch(`${base}/api/queries/${id}?wait=soon`);
    expect(bad.status).toBe(400);
    service.onWorkerMessage({ v: 1, type: "status", worker_id: "w-http", status: "offline", task_id: null, ts: 0 });
  });

  it("Prefer: wait=N answers in the POST's response when the query ends in time", async () => {
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-prefer", language: "java", node: "vm8", provider: "offline", ts: 0 });
    const posted = post('{"query":"answer me at once"}', { prefer: "wait=5" });
    const task = await waitUntil("dispatch to w-prefer", () => publisher.sent.find((t) => t.query === "answer me at once"));
    service.handleResult({
      taskId: task.task_id as string, workerId: "w-prefer", language: "java", node: "vm8", provider: "offline",
      answer: "immediate answer", error: "", receivedMs: 1, startedMs: 2, finishedMs: 3,
    });
    const res = await posted;
    expect(res.status).toBe(200);
    expect(res.headers.get("preference-applied")).toBe("wait=5");
    expect(await res.json()).toMatchObject({ id: task.task_id, status: "done", answer: "immediate answer", worker: { language: "java", node: "vm8" } });
    service.onWorkerMessage({ v: 1, type: "status", worker_id: "w-prefer", status: "offline", task_id: null, ts: 0 });
  });

  it("Prefer: wait=N still answers 202 with the id when the query is not done in time", async () => {
    const started = Date.now();
    const res = await post('{"query":"nobody is there"}', { prefer: "respond-async, wait=1" });
    expect(res.status).toBe(202);
    expect(res.headers.get("preference-applied")).toBeNull();
    const body = (await res.json()) as { id: string; status: string; position: number };
    expect(body).toMatchObject({ status: "queued" });
    expect(body.position).toBeGreaterThan(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(service.get(body.id)?.status).toBe("queued");
  });
});

describe("preferredWaitMs", () => {
  it("reads RFC 7240 wait=N seconds, caps it, and ignores what it cannot read", () => {
    expect(preferredWaitMs("wait=10")).toBe(10_000);
    expect(preferredWaitMs("respond-async, wait=3")).toBe(3_000);
    expect(preferredWaitMs(["handling=lenient", "wait=2"])).toBe(2_000);
    expect(preferredWaitMs('wait="4"')).toBe(4_000);
    expect(preferredWaitMs("wait=999")).toBe(30_000);
    expect(preferredWaitMs("wait=soon")).toBe(0);
    expect(preferredWaitMs("nowait=5")).toBe(0);
    expect(preferredWaitMs("respond-async")).toBe(0);
    expect(preferredWaitMs(undefined)).toBe(0);
  });
});

describe("POST /api/queries", () => {
  it("accepts a query: 202 {id, status, position}", async () => {
    const res = await post(JSON.stringify({ query: "What is Docker Swarm?" }));
    expect(res.status).toBe(202);
    const body = (await res.json()) as { id: string; status: string; position: number };
    expect(body.id).toMatch(/^q_[0-9A-Z]{26}$/);
    expect(body.status).toBe("queued");
    expect(body.position).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ["not JSON", "{query:", /not valid JSON/],
    ["plain text", "hello there", /not valid JSON/],
    ["a JSON array", "[1]", /JSON object/],
    ["no query", "{}", /query is required/],
    ["empty query", '{"query":""}', /query is empty/],
    ["whitespace query", '{"query":"  \\n "}', /query is empty/],
    ["query not a string", '{"query":42}', /query must be a string/],
    ["query over the limit", JSON.stringify({ query: "x".repeat(MAX_CHARS + 1) }), new RegExp(`limit is ${MAX_CHARS}`)],
    ["apiKey not a string", '{"query":"hi","apiKey":{"a":1}}', /apiKey must be a string/],
    ["apiKey too long", JSON.stringify({ query: "hi", apiKey: "k".repeat(513) }), /apiKey is too long/],
  ])("400 for %s", async (_name, body, error) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatch(error);
  });

  it("400 for a text/plain body too (every body is read as JSON)", async () => {
    const res = await post("just words", { "content-type": "text/plain" });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatch(/not valid JSON/);
  });

  it("400 for a malformed x-session-id", async () => {
    const res = await post('{"query":"hi"}', { "x-session-id": "no spaces allowed" });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatch(/x-session-id/);
  });

  it("413 for a body over 64 KiB", async () => {
    const res = await post(JSON.stringify({ query: "x".repeat(70_000) }));
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toMatch(/65536 bytes/);
  });

  it("429 once a session has its maximum of queued queries; other sessions still get in", async () => {
    const session = newSession();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await post(JSON.stringify({ query: `q${i}` }), { "x-session-id": session })).status);
    }
    expect(statuses).toEqual([202, 202, 202, 429]);
    const res = await post(JSON.stringify({ query: "q4" }), { "x-session-id": session });
    expect(await errorOf(res)).toMatch(/maximum number of queued queries/);
    expect((await post(JSON.stringify({ query: "other" }))).status).toBe(202);
  });

  it("never echoes the API key", async () => {
    const res = await post(JSON.stringify({ query: "with key", apiKey: "USER-SECRET-KEY-42" }));
    const text = await res.text();
    expect(text).not.toContain("USER-SECRET-KEY-42");
    const { id } = JSON.parse(text) as { id: string };
    expect(await (await fetch(`${base}/api/queries/${id}`)).text()).not.toContain("USER-SECRET-KEY-42");
  });
});

describe("GET /api/queries/:id", () => {
  it("returns the documented shape, and 404 for an unknown id", async () => {
    const { id } = (await (await post('{"query":"shape"}')).json()) as { id: string };
    const view = (await (await fetch(`${base}/api/queries/${id}`)).json()) as QueryView;
    expect(view).toMatchObject({ id, status: "queued", query: "shape", answer: null, error: null, worker: null, attempts: 0 });
    expect(Object.keys(view.timings).sort()).toEqual(
      ["assigned_ms", "completed_ms", "created_ms", "finished_ms", "received_ms", "started_ms"],
    );
    const malformed = await fetch(`${base}/api/queries/%E0%A4%A`);
    expect(malformed.status).toBe(400);
    expect(await errorOf(malformed)).toMatch(/malformed URL encoding/);
    const missing = await fetch(`${base}/api/queries/q_nope`);
    expect(missing.status).toBe(404);
    expect(await errorOf(missing)).toMatch(/unknown query q_nope/);
  });

});

describe("other endpoints", () => {
  it("GET /api/workers lists workers with the documented fields", async () => {
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-list", language: "java", node: "vm3", provider: "offline", ts: 0 });
    const list = (await (await fetch(`${base}/api/workers`)).json()) as Record<string, unknown>[];
    const w = list.find((x) => x.id === "w-list");
    expect(w).toMatchObject({ id: "w-list", language: "java", node: "vm3", task_id: expect.anything() });
    expect(["idle", "busy"]).toContain(w?.status);
    expect(typeof w?.last_seen_ms).toBe("number");
  });

  it("GET /api/cluster summarises the workers by node and language, as /api/workers lists them", async () => {
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-c1", language: "go", node: "vm-c", provider: "offline", ts: 0 });
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-c2", language: "python", node: "vm-c", provider: "offline", ts: 0 });
    const res = await fetch(`${base}/api/cluster`);
    expect(res.status).toBe(200);
    const summary = (await res.json()) as ClusterSummary;
    const workers = (await (await fetch(`${base}/api/workers`)).json()) as { node: string; status: string; language: string }[];
    const vmC = summary.nodes.find((n) => n.node === "vm-c");
    // (they may have taken queries other tests left waiting: idle or busy, they are online)
    expect(vmC).toMatchObject({ node: "vm-c", workers: 2, offline: 0, answers_per_min: 0 });
    expect(vmC?.languages.map((l) => [l.language, l.idle + l.busy])).toEqual([["go", 1], ["python", 1]]);
    const online = workers.filter((w) => w.status !== "offline");
    expect(summary.totals.workers).toBe(online.length);
    expect(summary.totals.idle).toBe(online.filter((w) => w.status === "idle").length);
    expect(summary.totals.vms).toBe(new Set(online.map((w) => w.node)).size);
    for (const node of summary.nodes) {
      expect(node.workers).toBe(online.filter((w) => w.node === node.node).length);
      expect(node.busy).toBe(online.filter((w) => w.node === node.node && w.status === "busy").length);
    }
    expect(summary.totals).toMatchObject({ queue_depth: expect.any(Number), in_flight: expect.any(Number), answers_per_min: expect.any(Number) });
    expect(summary.history.step_ms).toBe(600_000);
    expect(summary.history.points).toHaveLength(60);
    for (const id of ["w-c1", "w-c2"]) service.onWorkerMessage({ v: 1, type: "status", worker_id: id, status: "offline", task_id: null, ts: 0 });
  });

  it("GET /healthz is 200 ok with the broker up, 200 degraded without it, 503 without the store", async () => {
    const up = await fetch(`${base}/healthz`);
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ status: "ok", mqtt: true, db: true, leader: true, store: "sqlite" });
    mqttUp = false;
    const noBroker = await fetch(`${base}/healthz`);
    dbUp = false;
    const noStore = await fetch(`${base}/healthz`);
    mqttUp = true;
    dbUp = true;
    expect(noBroker.status).toBe(200);
    expect(await noBroker.json()).toEqual({ status: "degraded", mqtt: false, db: true, leader: true, store: "sqlite" });
    expect(noStore.status).toBe(503);
    expect(await noStore.json()).toEqual({ status: "unavailable", mqtt: false, db: false, leader: true, store: "sqlite" });
  });

  it("GET /metrics is Prometheus text with the documented series", async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^aiswarm_queue_depth \d+$/m);
    expect(text).toMatch(/^aiswarm_queries\{state="done"\} \d+$/m);
    expect(text).toMatch(/^aiswarm_workers\{language="java",node="vm3",status="(idle|busy)"\} 1$/m);
    expect(text).toMatch(/^aiswarm_query_latency_seconds_count \d+$/m);
    expect(text).toContain("aiswarm_results_rejected_total");
  });

  it("GET / serves the chat page and the Socket.IO client, with no CDN", async () => {
    const page = await (await fetch(`${base}/`)).text();
    for (const id of ["query-input", "send-button", "api-key-input", "workers-panel"]) expect(page).toContain(`id="${id}"`);
    expect(page).toContain('src="/socket.io/socket.io.js"');
    expect(page).not.toMatch(/https?:\/\//);
    const client = await fetch(`${base}/socket.io/socket.io.js`);
    expect(client.status).toBe(200);
    const app = await (await fetch(`${base}/app.js`)).text();
    expect(app).not.toMatch(/\.innerHTML\s*=|outerHTML|insertAdjacentHTML|document\.write/);
  });

  it("unknown API routes are a JSON 404", async () => {
    const res = await fetch(`${base}/api/nothing`);
    expect(res.status).toBe(404);
    expect(await errorOf(res)).toMatch(/no such API route/);
  });

  it("a known route with the wrong method is a JSON 405 naming the right one", async () => {
    const listQueries = await fetch(`${base}/api/queries`);
    expect(listQueries.status).toBe(405);
    expect(listQueries.headers.get("allow")).toBe("POST");
    expect(await errorOf(listQueries)).toBe("GET is not allowed on /api/queries; use POST");
    const deleteWorkers = await fetch(`${base}/api/workers`, { method: "DELETE" });
    expect(deleteWorkers.status).toBe(405);
    expect(deleteWorkers.headers.get("allow")).toBe("GET");
    const postQuery = await fetch(`${base}/api/queries/q_1`, { method: "POST", body: "{}" });
    expect(postQuery.status).toBe(405);
    expect((await fetch(`${base}/healthz`, { method: "PUT" })).status).toBe(405);
  });
});

describe("Socket.IO", () => {
  const sockets: Socket[] = [];
  afterAll(() => sockets.forEach((s) => s.close()));

  function connect(sessionId: string): Socket {
    const socket = connectSocket(base, { auth: { sessionId }, transports: ["websocket"], reconnection: false });
    sockets.push(socket);
    return socket;
  }

  it("query with ack, query:update to the session, state again after reconnecting", async () => {
    const session = newSession();
    const first = connect(session);
    const updates: QueryView[] = [];
    first.on("query:update", (v: QueryView) => updates.push(v));
    const ack = (await first.timeout(5000).emitWithAck("query", { query: "over socket" })) as { ok: boolean; id: string; position: number };
    expect(ack).toMatchObject({ ok: true, id: expect.stringMatching(/^q_/) });
    await waitUntil("an update", () => updates.find((u) => u.id === ack.id));
    const bad = (await first.timeout(5000).emitWithAck("query", { query: "" })) as { ok: boolean; error: string };
    expect(bad).toEqual({ ok: false, error: "query is empty" });
    first.close();

    const again = connect(session);
    const replayed: QueryView[] = [];
    again.on("query:update", (v: QueryView) => replayed.push(v));
    const view = await waitUntil("the replayed query", () => replayed.find((u) => u.id === ack.id));
    expect(view.query).toBe("over socket");
    // another session does not see it
    const stranger = connect(newSession());
    const seen: QueryView[] = [];
    stranger.on("query:update", (v: QueryView) => seen.push(v));
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.find((u) => u.id === ack.id)).toBeUndefined();
  });

  it("sends the cluster summary on connect and on changes, never the whole worker list", async () => {
    const socket = connect(newSession());
    const summaries: ClusterSummary[] = [];
    const workerLists: unknown[] = [];
    socket.on("cluster", (summary: ClusterSummary) => summaries.push(summary));
    socket.on("workers", (list: unknown) => workerLists.push(list));
    await waitUntil("the first summary", () => summaries[0]);
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-sock", language: "python", node: "vm9", provider: "offline", ts: 0 });
    const withVm9 = await waitUntil("a summary with vm9", () => summaries.find((c) => c.nodes.some((n) => n.node === "vm9" && n.workers === 1)));
    const vm9 = withVm9.nodes.find((n) => n.node === "vm9")?.languages;
    expect(vm9?.map((l) => [l.language, l.idle + l.busy])).toEqual([["python", 1]]);
    expect(workerLists).toEqual([]);
    // Nothing changes: nothing is sent (the interval here is 100 ms).
    service.onWorkerMessage({ v: 1, type: "status", worker_id: "w-sock", status: "offline", task_id: null, ts: 0 });
    await waitUntil("vm9 without an online worker", () => summaries.find((c) => c.nodes.some((n) => n.node === "vm9" && n.workers === 0 && n.offline === 1)));
    await new Promise((r) => setTimeout(r, 150));
    const count = summaries.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(summaries.length).toBe(count);
  });

  it("computes the summary once per interval for all pages: every page gets the same one", async () => {
    const pages = Array.from({ length: 12 }, () => connect(newSession()));
    const seen = pages.map(() => [] as number[]);
    pages.forEach((p, i) => p.on("cluster", (c: ClusterSummary) => seen[i]?.push(c.at_ms)));
    await waitUntil("every page connected", () => (pages.every((p) => p.connected) ? true : undefined));
    const build = vi.spyOn(api.cluster, "summary");
    for (let i = 0; i < 5; i++) {
      service.onWorkerMessage({ v: 1, type: "register", worker_id: `w-many-${i}`, language: "go", node: "vm-many", provider: "offline", ts: 0 });
      await new Promise((r) => setTimeout(r, 120));
    }
    const calls = build.mock.calls.length;
    build.mockRestore();
    // ~6 ticks of 100 ms: one summary each, whatever the number of pages (12).
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(8);
    await waitUntil("the last summary everywhere", () => (seen.every((s) => s.length > 0 && s.at(-1) === seen[0]?.at(-1)) ? true : undefined));
    for (const s of seen) expect(s.filter((at) => at > 0).slice(-3)).toEqual(seen[0]?.filter((at) => at > 0).slice(-3));
    for (let i = 0; i < 5; i++) service.onWorkerMessage({ v: 1, type: "status", worker_id: `w-many-${i}`, status: "offline", task_id: null, ts: 0 });
    pages.forEach((p) => p.close());
  });

  it("node:watch sends a node's workers to the pages that asked, until they stop watching", async () => {
    const watcher = connect(newSession());
    const other = connect(newSession());
    const got: { node: string; workers: { id: string; status: string }[] }[] = [];
    const otherGot: unknown[] = [];
    watcher.on("node:workers", (p: { node: string; workers: { id: string; status: string }[] }) => got.push(p));
    other.on("node:workers", (p: unknown) => otherGot.push(p));
    await waitUntil("connected", () => (watcher.connected && other.connected ? true : undefined));
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-watch-1", language: "java", node: "vm-watch", provider: "offline", ts: 0 });
    expect(await watcher.timeout(5000).emitWithAck("node:watch", { node: "vm-watch", watch: true })).toEqual({ ok: true });
    const first = await waitUntil("the node's list", () => got.find((p) => p.node === "vm-watch"));
    expect(first.workers.map((w) => w.id)).toEqual(["w-watch-1"]);
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-watch-2", language: "java", node: "vm-watch", provider: "offline", ts: 0 });
    await waitUntil("the list with the second worker", () => got.find((p) => p.workers.some((w) => w.id === "w-watch-2")));
    // a change on another node is not sent to this watcher
    const before = got.length;
    service.onWorkerMessage({ v: 1, type: "register", worker_id: "w-elsewhere", language: "java", node: "vm-elsewhere", provider: "offline", ts: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(got.slice(before).every((p) => p.node === "vm-watch")).toBe(true);
    expect(otherGot).toEqual([]);
    // stop watching: no more lists
    expect(await watcher.timeout(5000).emitWithAck("node:watch", { node: "vm-watch", watch: false })).toEqual({ ok: true });
    const stopped = got.length;
    service.onWorkerMessage({ v: 1, type: "status", worker_id: "w-watch-1", status: "offline", task_id: null, ts: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(got.length).toBe(stopped);
    // bad requests get a clear error, and the socket keeps working
    expect(await watcher.timeout(5000).emitWithAck("node:watch", "vm-watch")).toEqual({ ok: false, error: expect.stringMatching(/expected/) });
    expect(await watcher.timeout(5000).emitWithAck("node:watch", { node: "", watch: true })).toEqual({ ok: false, error: expect.stringMatching(/node must be/) });
    expect(await watcher.timeout(5000).emitWithAck("node:watch", { node: "x".repeat(300), watch: true })).toMatchObject({ ok: false });
    expect(await watcher.timeout(5000).emitWithAck("node:watch", { node: "vm-watch", watch: "yes" })).toEqual({ ok: false, error: "watch must be true or false" });
    for (const id of ["w-watch-2", "w-elsewhere"]) service.onWorkerMessage({ v: 1, type: "status", worker_id: id, status: "offline", task_id: null, ts: 0 });
  });

  it("refuses a non-object payload with a clear error and keeps serving", async () => {
    const socket = connect(newSession());
    const res = (await socket.timeout(5000).emitWithAck("query", "just a string")) as { ok: boolean; error: string };
    expect(res).toEqual({ ok: false, error: expect.stringMatching(/JSON object/) });
    socket.emit("query", { query: "no ack" }); // no ack function: ignored, no crash
    expect(((await socket.timeout(5000).emitWithAck("query", { query: "fine" })) as { ok: boolean }).ok).toBe(true);
  });
});

describe("rate limit", () => {
  // Last: it exhausts this client's budget for the minute.
  it("429 once the client IP is over RATE_LIMIT_PER_MINUTE", async () => {
    let status = 0;
    for (let i = 0; i < RATE + 1 && status !== 429; i++) status = (await post('{"query":"spam"}')).status;
    expect(status).toBe(429);
    expect(await errorOf(await post('{"query":"spam"}'))).toMatch(/too many queries/);
  });
});
