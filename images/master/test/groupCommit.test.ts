// Group commit (what main.ts runs): the writes of one event-loop turn share one
// SQLite transaction, and nothing they cause is seen outside (task messages,
// query updates, long-poll answers, acks) before it is committed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../src/log";
import { QueryService, type QueryView } from "../src/queryService";
import { Scheduler } from "../src/scheduler";
import { SqliteStore } from "../src/sqliteStore";
import { register, TaskIdPublisher } from "./helpers/service";


let dir: string;

/** A service whose end-of-turn commit runs when the test says so. */
function open(onCommitError?: (e: unknown) => void) {
  const store = new SqliteStore(join(dir, "master.db"));
  const scheduler = new Scheduler({ leaseMs: 30_000, taskTimeoutMs: 300_000, heartbeatTimeoutMs: 7_000, maxQueuedPerSession: 100, maxAttempts: 5, offlineRetentionMs: 60_000 });
  const publisher = new TaskIdPublisher();
  const scheduled: (() => void)[] = [];
  const updates: QueryView[] = [];
  const service = new QueryService(store, scheduler, publisher, createLogger("error", () => {}), {
    taskTopic: (id) => `t/${id}`,
    groupCommit: true,
    defer: (fn) => scheduled.push(fn),
    onCommitError,
  });
  service.setListeners({ queryUpdated: (view) => updates.push(view), workersChanged: () => {}, queueChanged: () => {} });
  service.restore();
  /** The end of the turn: the scheduled commits run; resolves once they (and their effects) are done. */
  const turnEnds = async (): Promise<void> => {
    for (const fn of scheduled.splice(0)) fn();
    await service.flush();
  };
  return { store, service, publisher, updates, scheduled, turnEnds };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "master-group-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("group commit", () => {
  it("one transaction per turn; the task is published and the page told only after the commit", async () => {
    const s = open();
    s.service.onWorkerMessage(register("w1"));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = s.service.submit({ query: `q${i}` }, "s1");
      if (!r.ok) throw new Error("refused");
      ids.push(r.id);
    }
    // Five inserts and a lease, all in one open transaction, one commit scheduled.
    expect(s.store.inBatch).toBe(true);
    expect(s.scheduled).toHaveLength(1);
    expect(s.publisher.sent).toEqual([]);
    expect(s.updates).toEqual([]);
    let acked = false;
    s.service.afterCommit(() => (acked = true));
    const committed = s.service.committed();
    expect(acked).toBe(false);
    await s.turnEnds();
    await committed;
    expect(s.store.inBatch).toBe(false);
    expect(acked).toBe(true);
    expect(s.publisher.sent).toEqual([ids[0]]);
    // (the first went straight to w1, the others wait)
    expect(s.updates.map((u) => [u.id, u.status])).toEqual([[ids[0], "assigned"], ...ids.slice(1).map((id) => [id, "queued"])]);
    // With nothing written, an effect runs at once.
    let now = false;
    s.service.afterCommit(() => (now = true));
    expect(now).toBe(true);
    s.store.close();
  });

  it("a long-poll sees an answer only once it is on disk", async () => {
    const s = open();
    s.service.onWorkerMessage(register("w1"));
    const r = s.service.submit({ query: "q" }, "s1");
    if (!r.ok) throw new Error("refused");
    await s.turnEnds();
    const waiting = s.service.waitFor(r.id, 5_000);
    expect(s.service.handleResult({ taskId: r.id, workerId: "w1", language: "go", node: "vm1", provider: "offline", answer: "42", error: "", receivedMs: 1, startedMs: 2, finishedMs: 3 })).toBe("accepted");
    const early = s.service.waitFor(r.id, 0); // GET without wait, same turn
    let settled = false;
    void Promise.race([waiting, early]).then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    await s.turnEnds();
    expect(await waiting).toMatchObject({ status: "done", answer: "42" });
    expect(await early).toMatchObject({ status: "done" });
    s.store.close();
  });

  it("what was committed survives a restart; closing commits what is pending", async () => {
    const s = open();
    const a = s.service.submit({ query: "kept" }, "s1");
    if (!a.ok) throw new Error("refused");
    await s.turnEnds();
    const b = s.service.submit({ query: "pending at close" }, "s1");
    if (!b.ok) throw new Error("refused");
    await s.store.close();
    const again = open();
    expect(again.service.get(a.id)?.query).toBe("kept");
    expect(again.service.get(b.id)?.query).toBe("pending at close");
    await again.store.close();
  });

  it("writes made while a commit is in flight form the next batch, whose effects run after the first's", async () => {
    const s = open();
    s.service.onWorkerMessage(register("w1"));
    const first = s.service.submit({ query: "first" }, "s1");
    if (!first.ok) throw new Error("refused");
    // The first commit is held in flight until the test lets it go.
    let release = (): void => {};
    const real = s.store.commitBatch.bind(s.store);
    const commit = vi.spyOn(s.store, "commitBatch").mockImplementationOnce(() => {
      const done = real();
      return new Promise<void>((resolve) => (release = () => void done.then(resolve)));
    });
    const order: string[] = [];
    s.service.afterCommit(() => order.push("effect of batch 1"));
    for (const fn of s.scheduled.splice(0)) fn(); // the end of the turn: commit 1 starts
    expect(commit).toHaveBeenCalledTimes(1);
    expect(s.store.inBatch).toBe(false);
    const second = s.service.submit({ query: "second" }, "s1"); // a write while commit 1 is in flight
    if (!second.ok) throw new Error("refused");
    expect(s.store.inBatch).toBe(true);
    s.service.afterCommit(() => order.push("effect of batch 2"));
    const flushed = s.service.flush(); // waits for commit 1 before committing batch 2
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(commit).toHaveBeenCalledTimes(1);
    expect(order).toEqual([]);
    expect(s.publisher.sent).toEqual([]);
    release();
    await flushed;
    expect(commit).toHaveBeenCalledTimes(2);
    expect(order).toEqual(["effect of batch 1", "effect of batch 2"]);
    expect(s.publisher.sent).toEqual([first.id]);
    commit.mockRestore();
    await s.store.close();
  });

  it("a failed commit drops the effects of the batch and reports it", async () => {
    const errors: unknown[] = [];
    const s = open((e) => errors.push(e));
    s.service.onWorkerMessage(register("w1"));
    const r = s.service.submit({ query: "q" }, "s1");
    if (!r.ok) throw new Error("refused");
    const commit = vi.spyOn(s.store, "commitBatch").mockImplementationOnce(() => Promise.reject(new Error("disk full")));
    let acked = false;
    s.service.afterCommit(() => (acked = true));
    await s.turnEnds();
    expect(commit).toHaveBeenCalled();
    expect(errors).toHaveLength(1);
    expect(acked).toBe(false);
    expect(s.publisher.sent).toEqual([]);
    commit.mockRestore();
    s.store.close();
  });
});
