// A query's story (QueryView.events): recorded where the service already
// learns it (dispatch, requeue, result), kept with the query in SQLite, shown
// the same before and after a restart.
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../src/log";
import type { RegisterMsg, StatusMsg } from "../src/protocol";
import { QueryService, type QueryEvent, type QueryView, type ResultInput, type TaskPublisher } from "../src/queryService";
import { Scheduler } from "../src/scheduler";
import { SqliteStore } from "../src/sqliteStore";

class Publisher implements TaskPublisher {
  connected = true;
  readonly sent: { topic: string; task: Record<string, unknown> }[] = [];
  publish(topic: string, payload: string): void {
    this.sent.push({ topic, task: JSON.parse(payload) as Record<string, unknown> });
  }
}

const register = (id: string, node: string): RegisterMsg => ({ v: 1, type: "register", worker_id: id, language: "go", node, provider: "offline", ts: 0 });
const offline = (id: string): StatusMsg => ({ v: 1, type: "status", worker_id: id, status: "offline", task_id: null, ts: 0 });
const result = (taskId: string, workerId: string, node: string, extra: Partial<ResultInput> = {}): ResultInput => ({
  taskId, workerId, language: "go", node, provider: "offline", answer: "an answer", error: "", receivedMs: 1, startedMs: 2, finishedMs: 3, ...extra,
});

let dir: string;
let clock: number;

function open(maxAttempts = 5) {
  const store = new SqliteStore(join(dir, "master.db"));
  const scheduler = new Scheduler({ leaseMs: 1_000, taskTimeoutMs: 10_000, heartbeatTimeoutMs: 700, maxQueuedPerSession: 10, maxAttempts, offlineRetentionMs: 60_000 });
  const publisher = new Publisher();
  const service = new QueryService(store, scheduler, publisher, createLogger("error", () => {}), { taskTopic: (id) => `t/${id}`, now: () => clock });
  service.restore();
  return { store, scheduler, service, publisher };
}

/** The story as [kind, worker, node, reason] tuples (times checked separately). */
const plot = (view: QueryView | undefined): (string | undefined)[][] =>
  (view?.events ?? []).map((e: QueryEvent) => [e.kind, e.worker, e.node, e.reason]);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "master-story-"));
  clock = 1_000_000;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the query's story", () => {
  it("queued → leased to W on V → answered, with the times of each step", () => {
    const s = open();
    clock = 1_000_000;
    const r = s.service.submit({ query: "q" }, "s1");
    if (!r.ok) throw new Error("refused");
    expect(plot(s.service.get(r.id))).toEqual([["queued", undefined, undefined, undefined]]);
    clock = 1_000_005;
    s.service.onWorkerMessage(register("w1", "vm-a"));
    expect(plot(s.service.get(r.id))).toEqual([["queued", undefined, undefined, undefined], ["leased", "w1", "vm-a", undefined]]);
    clock = 1_000_250;
    expect(s.service.handleResult(result(r.id, "w1", "vm-a"))).toBe("accepted");
    const view = s.service.get(r.id);
    expect(plot(view)).toEqual([
      ["queued", undefined, undefined, undefined],
      ["leased", "w1", "vm-a", undefined],
      ["answered", "w1", "vm-a", undefined],
    ]);
    expect(view?.events.map((e) => e.at_ms)).toEqual([1_000_000, 1_000_005, 1_000_250]);
    expect(view?.events[1]?.attempt).toBe(1);
    s.store.close();
  });

  it("a worker lost mid-task: the story says so, and who answered in the end", () => {
    const s = open();
    s.service.onWorkerMessage(register("w1", "vm-a"));
    const r = s.service.submit({ query: "q" }, "s1");
    if (!r.ok) throw new Error("refused");
    clock += 100;
    s.service.onWorkerMessage(offline("w1")); // its last will
    const requeued = s.service.get(r.id);
    expect(requeued?.status).toBe("queued");
    expect(requeued?.events.at(-1)).toMatchObject({ kind: "requeued", worker: "w1", node: "vm-a", reason: "worker_lost", detail: "worker lost: it went offline" });
    clock += 100;
    s.service.onWorkerMessage(register("w2", "vm-b"));
    clock += 100;
    s.service.handleResult(result(r.id, "w2", "vm-b"));
    const view = s.service.get(r.id);
    expect(plot(view)).toEqual([
      ["queued", undefined, undefined, undefined],
      ["leased", "w1", "vm-a", undefined],
      ["requeued", "w1", "vm-a", "worker_lost"],
      ["leased", "w2", "vm-b", undefined],
      ["answered", "w2", "vm-b", undefined],
    ]);
    expect(view?.events[3]?.attempt).toBe(2);
    // Kept with the query: the same story after a restart.
    s.store.close();
    const again = open();
    expect(again.service.get(r.id)?.events).toEqual(view?.events);
    again.store.close();
  });

  it("a silent worker, an expired lease and a rejection each say why", () => {
    const s = open();
    s.service.onWorkerMessage(register("w1", "vm-a"));
    const a = s.service.submit({ query: "a" }, "s1");
    if (!a.ok) throw new Error("refused");
    // w1 goes silent: heartbeat timeout
    clock += 800;
    s.service.tick();
    expect(s.service.get(a.id)?.events.at(-1)).toMatchObject({ kind: "requeued", reason: "worker_lost", detail: "worker lost: it stopped sending heartbeats" });

    // w2 holds it without renewing: the lease expires (it keeps heartbeating about nothing)
    s.service.onWorkerMessage(register("w2", "vm-b"));
    for (let i = 0; i < 3; i++) {
      clock += 400;
      s.service.onWorkerMessage({ v: 1, type: "heartbeat", worker_id: "w2", language: "go", node: "vm-b", status: "busy", task_id: null, ts: 0 });
      s.service.tick();
    }
    expect(s.service.get(a.id)?.events.at(-1)).toMatchObject({ kind: "requeued", worker: "w2", reason: "lease_expired", detail: "lease expired: no answer in time" });

    // w3 is busy and turns it down; that dispatch does not count as an attempt
    s.service.onWorkerMessage(register("w3", "vm-c"));
    const attempt = s.service.get(a.id)?.attempts;
    s.service.onWorkerMessage({ v: 1, type: "status", worker_id: "w3", status: "busy", task_id: "other", rejected_task_id: a.id, ts: 0 });
    const view = s.service.get(a.id);
    expect(view?.events.at(-1)).toMatchObject({ kind: "requeued", worker: "w3", node: "vm-c", reason: "rejected", detail: "rejected: the worker was busy" });
    expect(view?.attempts).toBe((attempt ?? 0) - 1);
    s.store.close();
  });

  it("rejections never use up attempts: rejected 4 times by a busy worker, the query still gets all of its attempts", () => {
    const s = open(2);
    const r = s.service.submit({ query: "q" }, "s1");
    if (!r.ok) throw new Error("refused");
    const busy = (): void =>
      s.service.onWorkerMessage({ v: 1, type: "status", worker_id: "w1", status: "busy", task_id: "other", rejected_task_id: r.id, ts: 0 });
    s.service.onWorkerMessage(register("w1", "vm-a"));
    for (let i = 1; i <= 4; i++) {
      expect(s.service.get(r.id)).toMatchObject({ status: "assigned", attempts: 1 });
      clock += 10;
      busy(); // busy with something else: back to the head, that dispatch not counted
      expect(s.service.get(r.id)).toMatchObject({ status: "queued", attempts: 0 });
      expect(s.store.get(r.id)?.attempts).toBe(0);
      s.service.onWorkerMessage({ v: 1, type: "status", worker_id: "w1", status: "idle", task_id: null, ts: 0 });
    }
    // Held for the fifth time, as attempt 1: the first loss is one attempt, not the fifth.
    expect(s.service.get(r.id)?.events.filter((e) => e.kind === "leased").map((e) => e.attempt)).toEqual([1, 1, 1, 1, 1]);
    s.service.onWorkerMessage(offline("w1"));
    expect(s.service.get(r.id)).toMatchObject({ status: "queued", attempts: 1 });
    // Kept across a restart, like the rest of the story.
    s.store.close();
    const again = open(2);
    expect(again.service.get(r.id)).toMatchObject({ status: "queued", attempts: 1 });
    again.service.onWorkerMessage(register("w2", "vm-b"));
    expect(again.service.get(r.id)).toMatchObject({ status: "assigned", attempts: 2 });
    // A rejection after a counted attempt takes back exactly that dispatch: 2 -> 1.
    again.service.onWorkerMessage({ v: 1, type: "status", worker_id: "w2", status: "busy", task_id: "other", rejected_task_id: r.id, ts: 0 });
    expect(again.service.get(r.id)).toMatchObject({ status: "queued", attempts: 1 });
    again.service.onWorkerMessage({ v: 1, type: "status", worker_id: "w2", status: "idle", task_id: null, ts: 0 });
    expect(again.service.get(r.id)).toMatchObject({ status: "assigned", attempts: 2 });
    again.service.onWorkerMessage(offline("w2"));
    const failed = again.service.get(r.id);
    expect(failed).toMatchObject({ status: "failed", attempts: 2, error: "no worker finished this query after 2 attempts (last: worker_offline)" });
    expect(plot(failed).filter(([kind]) => kind === "requeued").map(([, worker, , reason]) => [worker, reason])).toEqual([
      ...Array.from({ length: 4 }, () => ["w1", "rejected"]),
      ["w1", "worker_lost"],
      ["w2", "rejected"],
      ["w2", "worker_lost"],
    ]);
    again.store.close();
  });

  it("attempts exhausted: failed, with every worker that lost it", () => {
    const s = open(2);
    s.service.onWorkerMessage(register("w1", "vm-a"));
    const r = s.service.submit({ query: "q" }, "s1");
    if (!r.ok) throw new Error("refused");
    s.service.onWorkerMessage(offline("w1"));
    s.service.onWorkerMessage(register("w2", "vm-b"));
    s.service.onWorkerMessage(offline("w2"));
    const view = s.service.get(r.id);
    expect(view?.status).toBe("failed");
    expect(plot(view)).toEqual([
      ["queued", undefined, undefined, undefined],
      ["leased", "w1", "vm-a", undefined],
      ["requeued", "w1", "vm-a", "worker_lost"],
      ["leased", "w2", "vm-b", undefined],
      ["requeued", "w2", "vm-b", "worker_lost"],
      ["failed", undefined, undefined, "attempts_exhausted"],
    ]);
    expect(view?.events.at(-1)?.detail).toBe("attempts exhausted: no worker finished it in 2 attempts");
    s.store.close();
  });

  it("a worker's error result: failed, naming the worker", () => {
    const s = open();
    s.service.onWorkerMessage(register("w1", "vm-a"));
    const r = s.service.submit({ query: "q" }, "s1");
    if (!r.ok) throw new Error("refused");
    s.service.handleResult(result(r.id, "w1", "vm-a", { answer: "", error: "gemini: HTTP 429" }));
    expect(s.service.get(r.id)?.events.at(-1)).toMatchObject({ kind: "failed", worker: "w1", node: "vm-a", reason: "worker_error" });
    s.store.close();
  });

  it("opens a database an older master created (no history column) and tells its queries' stories", () => {
    const path = join(dir, "master.db");
    const old = new Database(path);
    old.exec(`CREATE TABLE queries (
      id TEXT PRIMARY KEY, seq INTEGER NOT NULL, session TEXT NOT NULL, query TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('queued','assigned','done','failed')), queue_key INTEGER,
      attempts INTEGER NOT NULL DEFAULT 0, answer TEXT, error TEXT, provider TEXT, worker_id TEXT,
      worker_language TEXT, worker_node TEXT, has_credential INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,
      assigned_ms INTEGER, received_ms INTEGER, started_ms INTEGER, finished_ms INTEGER, completed_ms INTEGER)`);
    old.prepare(`INSERT INTO queries (id, seq, session, query, status, attempts, answer, provider, worker_id, worker_language, worker_node, created_ms, assigned_ms, completed_ms)
                 VALUES ('q_old', 1, 's1', 'old one', 'done', 1, 'old answer', 'offline', 'w9', 'go', 'vm-z', 10, 12, 40)`).run();
    old.close();
    const s = open();
    expect(plot(s.service.get("q_old"))).toEqual([
      ["queued", undefined, undefined, undefined],
      ["leased", "w9", "vm-z", undefined],
      ["answered", "w9", "vm-z", undefined],
    ]);
    expect(s.service.get("q_old")?.answer).toBe("old answer");
    s.store.close();
  });
});
