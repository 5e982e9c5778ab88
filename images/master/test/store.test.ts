// Persistence: the store and the service on a real SQLite file, restarted on
// the same file. The task publisher records instead of talking MQTT (the real
// broker path is covered by e2e.test.ts).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../src/log";
import type { RegisterMsg, StatusMsg } from "../src/protocol";
import { QueryService, type ResultInput, type TaskPublisher } from "../src/queryService";
import { Scheduler } from "../src/scheduler";
import { SqliteStore } from "../src/sqliteStore";

class RecordingPublisher implements TaskPublisher {
  connected = true;
  readonly sent: { topic: string; payload: Record<string, unknown> }[] = [];
  publish(topic: string, payload: string): void {
    this.sent.push({ topic, payload: JSON.parse(payload) as Record<string, unknown> });
  }
}

const register = (id: string): RegisterMsg => ({
  v: 1, type: "register", worker_id: id, language: "python", node: "vm1", provider: "offline", ts: 0,
});
const idle = (id: string): StatusMsg => ({ v: 1, type: "status", worker_id: id, status: "idle", task_id: null, ts: 0 });

const result = (taskId: string, workerId: string, extra: Partial<ResultInput> = {}): ResultInput => ({
  taskId, workerId, language: "python", node: "vm1", provider: "offline", answer: `answer to ${taskId}`, error: "",
  receivedMs: 1, startedMs: 2, finishedMs: 3, ...extra,
});

const SECRET_KEY = "AIzaSy-THIS-IS-THE-USER-KEY-0123456789";

let dir: string;
let dbPath: string;

function open(publisher = new RecordingPublisher(), lines: string[] = []) {
  const store = new SqliteStore(dbPath);
  const scheduler = new Scheduler({
    leaseMs: 30_000, taskTimeoutMs: 300_000, heartbeatTimeoutMs: 7_000,
    maxQueuedPerSession: 10, maxAttempts: 5, offlineRetentionMs: 60_000,
  });
  const log = createLogger("debug", (line) => lines.push(line));
  const service = new QueryService(store, scheduler, publisher, log, {
    taskTopic: (id) => `ai-system/workers/${id}/tasks`,
  });
  return { store, scheduler, service, publisher, lines, restored: service.restore() };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "master-store-"));
  dbPath = join(dir, "nested", "master.db");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("persistence across a restart", () => {
  it("queued queries keep their order and in-flight ones keep their lease", () => {
    const first = open();
    first.service.onWorkerMessage(register("w1"));
    const ids = ["one", "two", "three", "four"].map((q) => {
      const r = first.service.submit({ query: q }, "s1");
      if (!r.ok) throw new Error("refused");
      return r.id;
    });
    expect(first.publisher.sent.map((s) => s.payload.task_id)).toEqual([ids[0]]);
    first.store.close(); // the process dies here (nothing else is flushed)

    const second = open();
    expect(second.restored).toEqual({ queued: 3, assigned: 1 });
    expect(second.service.get(ids[1] as string)).toMatchObject({ status: "queued", position: 1 });
    expect(second.service.get(ids[3] as string)).toMatchObject({ status: "queued", position: 3 });
    expect(second.service.get(ids[0] as string)).toMatchObject({ status: "assigned", worker: { id: "w1" } });
    // the holder's result is accepted without a new registration
    expect(second.service.handleResult(result(ids[0] as string, "w1"))).toBe("accepted");
    // once it says idle, it gets the next one in the old order
    second.service.onWorkerMessage(register("w1"));
    second.service.onWorkerMessage(idle("w1"));
    expect(second.publisher.sent.map((s) => s.payload.task_id)).toEqual([ids[1]]);
    second.store.close();
  });

  it("a requeued task keeps its place at the head across a restart", () => {
    const first = open();
    first.service.onWorkerMessage(register("w1"));
    const a = first.service.submit({ query: "a" }, "s1");
    const b = first.service.submit({ query: "b" }, "s1");
    if (!a.ok || !b.ok) throw new Error("refused");
    first.service.onWorkerMessage({ v: 1, type: "status", worker_id: "w1", status: "offline", task_id: null, ts: 0 });
    expect(first.service.get(a.id)).toMatchObject({ status: "queued", position: 1 });
    first.store.close();
    const second = open();
    expect(second.service.queued().map((q) => q.view.id)).toEqual([a.id, b.id]);
    second.store.close();
  });

  it("never writes the user's API key to the database file, and forgets it when the task ends", () => {
    const lines: string[] = [];
    const first = open(new RecordingPublisher(), lines);
    first.service.onWorkerMessage(register("w1"));
    const held = first.service.submit({ query: "with key", apiKey: SECRET_KEY }, "s1");
    const waiting = first.service.submit({ query: "also with key", apiKey: SECRET_KEY }, "s1");
    if (!held.ok || !waiting.ok) throw new Error("refused");
    const task = first.publisher.sent[0]?.payload;
    expect(task).toMatchObject({ task_id: held.id, has_credential: true });
    expect(JSON.stringify(first.publisher.sent)).not.toContain(SECRET_KEY);
    expect(first.service.getCredential(held.id, "w1")).toEqual({ kind: "ok", present: true, apiKey: SECRET_KEY });
    expect(first.service.getCredential(held.id, "w2")).toEqual({ kind: "permission_denied" });
    expect(first.service.getCredential("q_nope", "w1")).toEqual({ kind: "not_found" });
    expect(first.service.handleResult(result(held.id, "w1"))).toBe("accepted");
    // after the task ended the key is gone
    expect(first.service.getCredential(held.id, "w1")).toEqual({ kind: "permission_denied" });
    expect(JSON.stringify(first.service.get(held.id))).not.toContain(SECRET_KEY);
    first.store.close();

    const files = readdirSync(join(dir, "nested")).map((f) => readFileSync(join(dir, "nested", f)));
    // the grep does see what is stored (the query text), and never the key
    expect(files.some((bytes) => bytes.includes(Buffer.from("also with key")))).toBe(true);
    expect(files.some((bytes) => bytes.includes(Buffer.from(SECRET_KEY)))).toBe(false);
    expect(lines.join("\n")).not.toContain(SECRET_KEY);

    // the accepted result freed w1, which got the waiting query (with its key in memory)
    expect(first.publisher.sent[1]?.payload).toMatchObject({ task_id: waiting.id, has_credential: true });
    // after a restart the key is lost: the restored lease holds no credential
    const second = open();
    second.service.onWorkerMessage(register("w1"));
    expect(second.service.getCredential(waiting.id, "w1")).toEqual({ kind: "ok", present: false, apiKey: "" });
    second.store.close();
  });
});

describe("results", () => {
  it("are idempotent by task id, and checked against the holder", () => {
    const s = open();
    s.service.onWorkerMessage(register("w1"));
    s.service.onWorkerMessage(register("w2"));
    const a = s.service.submit({ query: "a" }, "s1");
    const b = s.service.submit({ query: "b" }, "s1");
    const c = s.service.submit({ query: "c" }, "s1");
    if (!a.ok || !b.ok || !c.ok) throw new Error("refused");
    expect(s.service.handleResult(result(a.id, "w2"))).toBe("permission_denied");
    expect(s.service.handleResult(result(c.id, "w1"))).toBe("permission_denied"); // queued, nobody holds it
    expect(s.service.handleResult(result(a.id, "stranger"))).toBe("permission_denied");
    expect(s.service.handleResult(result("q_unknown", "w1"))).toBe("not_found");
    expect(s.service.handleResult(result(a.id, "w1"))).toBe("accepted");
    expect(s.service.handleResult(result(a.id, "w1", { answer: "second" }))).toBe("duplicate");
    expect(s.service.get(a.id)).toMatchObject({
      status: "done",
      answer: `answer to ${a.id}`,
      provider: "offline",
      worker: { id: "w1", language: "python", node: "vm1" },
      timings: { received_ms: 1, started_ms: 2, finished_ms: 3 },
    });
    // an error result fails the query with the worker's message
    expect(s.service.handleResult(result(b.id, "w2", { answer: "", error: "gemini: HTTP 429" }))).toBe("accepted");
    expect(s.service.get(b.id)).toMatchObject({ status: "failed", error: "gemini: HTTP 429", answer: null });
    // each accepted result freed its worker, which took the next query at once
    expect(s.service.queriesByState()).toEqual({ queued: 0, assigned: 1, done: 1, failed: 1 });
    expect(s.service.get(c.id)?.status).toBe("assigned");
    s.store.close();
  });

  it("long-poll waiters get the final state as soon as it is known", async () => {
    const s = open();
    s.service.onWorkerMessage(register("w1"));
    const a = s.service.submit({ query: "a" }, "s1");
    if (!a.ok) throw new Error("refused");
    const waiting = s.service.waitFor(a.id, 5_000);
    setTimeout(() => s.service.handleResult(result(a.id, "w1")), 20);
    const started = Date.now();
    expect(await waiting).toMatchObject({ id: a.id, status: "done" });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await s.service.waitFor(a.id, 5_000)).toMatchObject({ status: "done" });
    expect(await s.service.waitFor("q_nope", 50)).toBeUndefined();
    s.store.close();
  });

  it("recent() gives a session its latest queries, and nobody else's", () => {
    const s = open();
    for (let i = 0; i < 3; i++) s.service.submit({ query: `mine ${i}` }, "me");
    s.service.submit({ query: "theirs" }, "them");
    expect(s.service.recent("me").map((v) => v.query)).toEqual(["mine 2", "mine 1", "mine 0"]);
    expect(s.service.recent("me", 2)).toHaveLength(2);
    s.store.close();
  });
});
