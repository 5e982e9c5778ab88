import { describe, expect, it } from "vitest";
import type { HeartbeatMsg, RegisterMsg, StatusMsg } from "../src/protocol";
import { Scheduler, type SchedulerOptions } from "../src/scheduler";

const OPTS: SchedulerOptions = {
  leaseMs: 1000,
  taskTimeoutMs: 5000,
  heartbeatTimeoutMs: 700,
  maxQueuedPerSession: 3,
  maxAttempts: 3,
  offlineRetentionMs: 10_000,
};

function register(id: string, node = "vm1"): RegisterMsg {
  return { v: 1, type: "register", worker_id: id, language: "python", node, provider: "offline", ts: 0 };
}
function heartbeat(id: string, taskId: string | null, status: "idle" | "busy" = "busy"): HeartbeatMsg {
  return { v: 1, type: "heartbeat", worker_id: id, language: "python", node: "vm1", status, task_id: taskId, ts: 0 };
}
function status(id: string, s: StatusMsg["status"], extra: Partial<StatusMsg> = {}): StatusMsg {
  return { v: 1, type: "status", worker_id: id, status: s, task_id: null, ts: 0, ...extra };
}

/** A scheduler with idle workers already registered. */
function withWorkers(ids: string[], opts: Partial<SchedulerOptions> = {}): Scheduler {
  const s = new Scheduler({ ...OPTS, ...opts });
  for (const id of ids) s.onRegister(register(id), 0);
  return s;
}

describe("scheduler: FIFO and dispatch", () => {
  it("queues in arrival order and reports 1-based positions", () => {
    const s = withWorkers([]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s2");
    s.enqueue("c", "s3");
    expect(s.queuedIds()).toEqual(["a", "b", "c"]);
    expect(s.positionOf("b")).toBe(2);
    expect(s.positionOf("nope")).toBe(0);
  });

  it("leases the head to each idle worker, longest-idle first, and nothing without workers", () => {
    const s = withWorkers([]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s1");
    s.enqueue("c", "s1");
    expect(s.dispatch(0)).toEqual([]);
    s.onRegister(register("w1"), 1);
    s.onRegister(register("w2"), 2);
    const out = s.dispatch(3);
    expect(out.map((d) => [d.taskId, d.workerId])).toEqual([
      ["a", "w1"],
      ["b", "w2"],
    ]);
    expect(out[0]).toMatchObject({ leaseMs: 1000, attempt: 1 });
    expect(s.queuedIds()).toEqual(["c"]);
    expect(s.positionOf("c")).toBe(1);
  });

  it("an accepted result frees the worker at once: the next task goes to it without waiting for a status", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s1");
    s.dispatch(0);
    expect(s.checkHolder("a", "w1")).toBe("held");
    expect(s.dispatch(1)).toEqual([]); // busy while it holds "a"
    s.complete("a");
    expect(s.dispatch(2).map((d) => d.taskId)).toEqual(["b"]);
  });

  it("a busy heartbeat or status naming a task that has ended does not make the freed worker busy again", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    s.complete("a");
    s.onHeartbeat(heartbeat("w1", "a", "busy"), 1); // sent while the result was on its way
    s.onStatus({ ...status("w1", "busy"), task_id: "a" }, 2);
    expect(s.listWorkers()[0]).toMatchObject({ id: "w1", status: "idle" });
    s.enqueue("b", "s1");
    expect(s.dispatch(3).map((d) => d.taskId)).toEqual(["b"]);
    // busy with a task that is not active at all (long finished, or never ours) is just as stale
    s.complete("b");
    s.onHeartbeat(heartbeat("w1", "never-seen", "busy"), 4);
    expect(s.listWorkers()[0]).toMatchObject({ status: "idle" });
  });

  it("forgets a queued task whose submission could not be stored, and frees its session's place", () => {
    const s = withWorkers([], { maxQueuedPerSession: 1 });
    expect(s.enqueue("a", "s1").ok).toBe(true);
    expect(s.enqueue("b", "s1").ok).toBe(false);
    s.forget("a");
    expect(s.queuedIds()).toEqual([]);
    expect(s.enqueue("b", "s1").ok).toBe(true);
  });

  it("a worker holding a lease is busy whatever its heartbeat says", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s1");
    s.dispatch(0);
    s.onHeartbeat(heartbeat("w1", null, "idle"), 10);
    expect(s.dispatch(11)).toEqual([]);
    expect(s.listWorkers()[0]).toMatchObject({ id: "w1", status: "busy", task_id: "a" });
  });
});

describe("scheduler: fairness cap", () => {
  it("refuses a session's query over the cap, but not other sessions", () => {
    const s = withWorkers([]);
    for (const id of ["a", "b", "c"]) expect(s.enqueue(id, "greedy").ok).toBe(true);
    expect(s.enqueue("d", "greedy")).toEqual({ ok: false, reason: "session_cap" });
    expect(s.enqueue("e", "other").ok).toBe(true);
    expect(s.queuedIds()).toEqual(["a", "b", "c", "e"]);
  });

  it("frees a place once one of the session's queries is dispatched", () => {
    const s = withWorkers([]);
    for (const id of ["a", "b", "c"]) s.enqueue(id, "greedy");
    s.onRegister(register("w1"), 0);
    s.dispatch(0);
    expect(s.enqueue("d", "greedy").ok).toBe(true);
  });
});

describe("scheduler: leases", () => {
  it("expires a lease that is not renewed and puts the task back at the head", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    s.enqueue("b", "s1");
    // the worker keeps heartbeating, but without naming the task
    s.onHeartbeat(heartbeat("w1", null, "busy"), 500);
    expect(s.tick(999)).toEqual([]);
    const requeued = s.tick(1000);
    expect(requeued).toEqual([
      expect.objectContaining({ taskId: "a", workerId: "w1", reason: "lease_expired", failed: false }),
    ]);
    expect(s.queuedIds()).toEqual(["a", "b"]);
    expect(s.checkHolder("a", "w1")).toBe("not_held");
  });

  it("heartbeats naming the task renew the lease, but not past the task timeout", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    for (let t = 500; t <= 4500; t += 500) {
      s.onHeartbeat(heartbeat("w1", "a"), t);
      expect(s.tick(t)).toEqual([]);
    }
    s.onHeartbeat(heartbeat("w1", "a"), 4900);
    // renewed up to dispatch + taskTimeout = 5000, and no further
    expect(s.tick(4999)).toEqual([]);
    expect(s.tick(5000).map((r) => r.reason)).toEqual(["lease_expired"]);
  });

  it("heartbeats renew every task the worker holds: the waiting one too, while the result of the first is retried", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s1");
    s.dispatch(0);
    s.complete("a"); // accepted, but the worker did not hear it and retries SendResult for a
    expect(s.dispatch(100).map((d) => d.taskId)).toEqual(["b"]);
    for (let t = 500; t <= 3000; t += 500) {
      s.onHeartbeat({ ...heartbeat("w1", "a"), held_task_ids: ["a", "b"] }, t);
      expect(s.tick(t)).toEqual([]);
    }
    expect(s.task("b")?.holder?.workerId).toBe("w1");
  });

  it("without held_task_ids (an older worker) only task_id's lease is renewed", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s1");
    s.dispatch(0);
    s.complete("a");
    s.dispatch(100);
    s.onHeartbeat(heartbeat("w1", "a"), 600);
    expect(s.tick(1100).map((r) => [r.taskId, r.reason])).toEqual([["b", "lease_expired"]]);
  });

  it("a heartbeat from another worker naming the task does not renew it", () => {
    const s = withWorkers(["w1", "w2"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    s.onHeartbeat(heartbeat("w1", null), 600);
    s.onHeartbeat(heartbeat("w2", "a"), 900);
    expect(s.tick(1000).map((r) => r.taskId)).toEqual(["a"]);
  });

  it("fails a task that lost its worker maxAttempts times", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    let last;
    for (let i = 0; i < 3; i++) {
      const now = i * 2000;
      s.onStatus(status("w1", "idle"), now);
      expect(s.dispatch(now)).toHaveLength(1);
      last = s.tick(now + 1000);
    }
    expect(last).toEqual([expect.objectContaining({ taskId: "a", failed: true })]);
    expect(s.queueDepth).toBe(0);
    expect(s.checkHolder("a", "w1")).toBe("not_active");
  });
});

describe("scheduler: workers going away", () => {
  it("last will (offline status) puts the held task back at the head at once", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    s.enqueue("b", "s1");
    const requeued = s.onStatus(status("w1", "offline"), 10);
    expect(requeued).toEqual([expect.objectContaining({ taskId: "a", reason: "worker_offline" })]);
    expect(s.queuedIds()).toEqual(["a", "b"]);
    expect(s.listWorkers()[0]?.status).toBe("offline");
    // the next idle worker takes it
    s.onRegister(register("w2"), 20);
    expect(s.dispatch(21)).toEqual([expect.objectContaining({ taskId: "a", workerId: "w2", attempt: 2 })]);
  });

  it("a worker silent for HEARTBEAT_TIMEOUT_MS goes offline and its task goes to the head", () => {
    const s = withWorkers(["w1", "w2"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    s.enqueue("b", "s1"); // w2 takes b
    s.dispatch(0);
    s.enqueue("c", "s1");
    s.onHeartbeat(heartbeat("w2", "b"), 600);
    expect(s.tick(700)).toEqual([]);
    const requeued = s.tick(701);
    expect(requeued).toEqual([expect.objectContaining({ taskId: "a", workerId: "w1", reason: "heartbeat_timeout" })]);
    expect(s.queuedIds()).toEqual(["a", "c"]);
    expect(s.listWorkers().find((w) => w.id === "w1")?.status).toBe("offline");
  });

  it("a worker that re-registers and then says it holds nothing gets its lost task back at the head at once", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s1");
    s.dispatch(0); // a to w1, published while w1 was reconnecting: lost with its clean session
    s.onRegister(register("w1"), 100);
    const back = s.onStatus(status("w1", "idle"), 101);
    expect(back.map((r) => [r.taskId, r.reason, r.failed])).toEqual([["a", "lost_on_reconnect", false]]);
    expect(s.queuedIds()).toEqual(["a", "b"]);
    expect(s.dispatch(102).map((d) => [d.taskId, d.workerId])).toEqual([["a", "w1"]]);
  });

  it("after a re-register, a heartbeat listing the task keeps it, and one without held_task_ids says nothing", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    s.onRegister(register("w1"), 100);
    expect(s.onHeartbeat(heartbeat("w1", null, "idle"), 101)).toEqual([]); // an older worker: no word on what it holds
    expect(s.onHeartbeat({ ...heartbeat("w1", "a"), held_task_ids: ["a"] }, 102)).toEqual([]);
    expect(s.task("a")?.holder?.workerId).toBe("w1");
    // Confirmed once: a later idle status (a result not accepted) is not a reconnect check.
    expect(s.onHeartbeat({ ...heartbeat("w1", null, "idle"), held_task_ids: [] }, 103)).toEqual([]);
  });

  it("a lease granted after the register is not checked (the worker was listening when it was published)", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.onRegister(register("w1"), 100);
    s.dispatch(101);
    expect(s.onHeartbeat({ ...heartbeat("w1", null, "idle"), held_task_ids: [] }, 102)).toEqual([]);
  });

  it("judges liveness by the receive time it is given, never by a message's ts (a last will's ts is its connect time)", () => {
    const s = withWorkers([]);
    s.onRegister({ ...register("w1"), ts: 9_000_000 }, 1000); // a clock far ahead
    s.onHeartbeat({ ...heartbeat("w1", null, "idle"), ts: 1 }, 1500); // a clock far behind
    expect(s.listWorkers()).toEqual([expect.objectContaining({ id: "w1", status: "idle", last_seen_ms: 1500 })]);
    expect(s.tick(1500 + OPTS.heartbeatTimeoutMs)).toEqual([]);
    expect(s.listWorkers()[0]?.status).toBe("idle");
    // A will with an old ts still takes the worker offline when it arrives.
    s.onStatus({ ...status("w1", "offline"), ts: 0 }, 2000);
    expect(s.listWorkers()[0]).toMatchObject({ status: "offline", last_seen_ms: 2000 });
  });

  it("keeps offline workers for display, then forgets them", () => {
    const s = withWorkers(["w1"]);
    s.onStatus(status("w1", "offline"), 0);
    s.tick(9_999);
    expect(s.listWorkers()).toHaveLength(1);
    s.tick(10_001);
    expect(s.listWorkers()).toHaveLength(0);
  });

  it("a worker busy with something else rejects a task: back to the head at once, attempt not counted", () => {
    const s = withWorkers(["w1", "w2"]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s1");
    s.dispatch(0); // a -> w1, b -> w2
    s.enqueue("c", "s1");
    const requeued = s.onStatus(status("w1", "busy", { task_id: "other", rejected_task_id: "a" }), 5);
    expect(requeued).toEqual([expect.objectContaining({ taskId: "a", reason: "rejected", failed: false })]);
    expect(s.queuedIds()).toEqual(["a", "c"]);
    expect(s.dispatch(6)).toEqual([]); // w1 said busy, w2 holds b
    s.onStatus(status("w1", "idle"), 7);
    expect(s.dispatch(8)).toEqual([expect.objectContaining({ taskId: "a", workerId: "w1", attempt: 1 })]);
  });

  it("ignores a rejection naming a task the worker does not hold", () => {
    const s = withWorkers(["w1", "w2"]);
    s.enqueue("a", "s1");
    s.dispatch(0); // a -> w1
    expect(s.onStatus(status("w2", "busy", { rejected_task_id: "a" }), 5)).toEqual([]);
    expect(s.checkHolder("a", "w1")).toBe("held");
  });
});

describe("scheduler: a task's dispatch state (it is the one owner of it)", () => {
  it("holder, assigned time, attempts and the dispatches that ended, as task() shows them", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    expect(s.task("a")).toEqual({ id: "a", session: "s1", attempts: 0, history: [], holder: null });
    expect(s.dispatch(10)).toEqual([{ taskId: "a", workerId: "w1", leaseMs: 1000, attempt: 1, assignedMs: 10 }]);
    expect(s.task("a")).toMatchObject({ attempts: 1, holder: { workerId: "w1", assignedMs: 10 } });
    const [requeue] = s.onStatus(status("w1", "busy", { rejected_task_id: "a" }), 20);
    const rejected = { worker: "w1", node: "vm1", attempt: 1, leased_ms: 10, ended_ms: 20, reason: "rejected" };
    expect(s.task("a")).toEqual({ id: "a", session: "s1", attempts: 0, history: [rejected], holder: null });
    expect(requeue?.task).toEqual(s.task("a"));
    s.onStatus(status("w1", "idle"), 30);
    s.dispatch(30);
    // complete() hands back the state the task ended in, then forgets it.
    expect(s.complete("a")).toEqual({ id: "a", session: "s1", attempts: 1, history: [rejected], holder: { workerId: "w1", assignedMs: 30 } });
    expect(s.task("a")).toBeUndefined();
  });

  it("a task out of attempts ends with its last lease and every lost dispatch", () => {
    const s = withWorkers(["w1"], { maxAttempts: 1 });
    s.enqueue("a", "s1");
    s.dispatch(5);
    const [failed] = s.onStatus(status("w1", "offline"), 9);
    expect(failed).toMatchObject({ failed: true, task: { attempts: 1, holder: { workerId: "w1", assignedMs: 5 } } });
    expect(failed?.task.history).toEqual([{ worker: "w1", node: "vm1", attempt: 1, leased_ms: 5, ended_ms: 9, reason: "worker_offline" }]);
    expect(s.task("a")).toBeUndefined();
  });

  it("a restored lease keeps its assigned time and history (its task timeout starts again)", () => {
    const s = new Scheduler(OPTS);
    const lost = { worker: "w0", node: "vm0", attempt: 1, leased_ms: 1, ended_ms: 2, reason: "lease_expired" };
    s.restore([{ id: "a", session: "s", attempts: 2, queueKey: 0, history: [lost], lease: { workerId: "w9", assignedMs: 50 } }], 100_000);
    expect(s.task("a")).toEqual({ id: "a", session: "s", attempts: 2, history: [lost], holder: { workerId: "w9", assignedMs: 50 } });
  });
});

describe("scheduler: results", () => {
  it("tells the holder, another worker and an unknown task apart", () => {
    const s = withWorkers(["w1", "w2"]);
    s.enqueue("a", "s1");
    s.enqueue("b", "s1");
    s.dispatch(0); // a -> w1, b -> w2
    s.enqueue("c", "s1");
    expect(s.checkHolder("a", "w1")).toBe("held");
    expect(s.checkHolder("a", "w2")).toBe("not_held");
    expect(s.checkHolder("a", "stranger")).toBe("not_held");
    expect(s.checkHolder("c", "w1")).toBe("not_held"); // queued: nobody holds it
    expect(s.checkHolder("zzz", "w1")).toBe("not_active");
  });

  it("completing a task ends it: a second result finds it inactive (the service acks it as duplicate)", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    s.complete("a");
    expect(s.checkHolder("a", "w1")).toBe("not_active");
    expect(s.leaseCount).toBe(0);
  });
});

describe("scheduler: restart", () => {
  it("restores queue order and leases with a fresh deadline", () => {
    const s = new Scheduler(OPTS);
    s.restore(
      [
        { id: "late", session: "s", attempts: 0, queueKey: 5 },
        { id: "head", session: "s", attempts: 1, queueKey: -2 },
        { id: "busy", session: "s", attempts: 1, queueKey: 0, lease: { workerId: "w9" } },
      ],
      100_000,
    );
    expect(s.queuedIds()).toEqual(["head", "late"]);
    expect(s.checkHolder("busy", "w9")).toBe("held");
    // the holder heartbeats: lease renewed (fresh deadline, not the old one)
    s.onHeartbeat(heartbeat("w9", "busy"), 100_500);
    expect(s.tick(101_000)).toEqual([]);
    // new tasks go after the restored ones; requeues before them
    s.enqueue("new", "s");
    expect(s.queuedIds()).toEqual(["head", "late", "new"]);
  });

  it("re-dispatches a restored lease whose worker never shows up", () => {
    const s = new Scheduler(OPTS);
    s.restore([{ id: "busy", session: "s", attempts: 1, queueKey: 0, lease: { workerId: "gone" } }], 0);
    expect(s.tick(700)).toEqual([]);
    expect(s.tick(701)).toEqual([expect.objectContaining({ taskId: "busy", reason: "worker_offline" })]);
    expect(s.queuedIds()).toEqual(["busy"]);
  });

  it("after a broker outage, silence is forgiven", () => {
    const s = withWorkers(["w1"]);
    s.enqueue("a", "s1");
    s.dispatch(0);
    s.resumeAfterOutage(5000);
    expect(s.tick(5100)).toEqual([]);
    expect(s.checkHolder("a", "w1")).toBe("held");
  });
});

describe("scheduler: nodes for the cluster view", () => {
  it("counts each node's workers by state and language, and lists them", () => {
    const s = withWorkers([]);
    s.onRegister(register("a1", "vm-a"), 0);
    s.onRegister(register("a2", "vm-a"), 0);
    s.onRegister(register("b1", "vm-b"), 0);
    s.enqueue("t", "s1");
    s.dispatch(1);
    const a = s.nodeCounts("vm-a");
    expect({ idle: a?.idle, busy: a?.busy, offline: a?.offline }).toEqual({ idle: 1, busy: 1, offline: 0 });
    expect([...(a?.languages ?? [])]).toEqual([["python", { idle: 1, busy: 1 }]]);
    expect(s.nodeWorkers("vm-a").map((w) => [w.id, w.status, w.task_id])).toEqual([["a1", "busy", "t"], ["a2", "idle", null]]);
    expect(s.nodeCounts("vm-nobody")).toBeUndefined();
    expect([...s.nodes()].sort()).toEqual(["vm-a", "vm-b"]);
    s.onStatus(status("b1", "offline"), 2);
    expect(s.nodeCounts("vm-b")).toMatchObject({ idle: 0, busy: 0, offline: 1 });
    expect(s.nodeCounts("vm-b")?.languages.size).toBe(0);
  });

  it("flags the nodes whose workers changed, not those that only heartbeat", () => {
    const s = withWorkers([]);
    s.onRegister(register("a1", "vm-a"), 0);
    s.onRegister(register("b1", "vm-b"), 0);
    expect(s.takeChangedNodes().sort()).toEqual(["vm-a", "vm-b"]);
    expect(s.takeChangedNodes()).toEqual([]);
    s.onHeartbeat({ ...heartbeat("a1", null, "idle"), node: "vm-a" }, 10);
    expect(s.takeChangedNodes()).toEqual([]);
    s.enqueue("t", "s1");
    s.dispatch(11);
    expect(s.takeChangedNodes()).toEqual(["vm-a"]);
    s.complete("t");
    expect(s.takeChangedNodes()).toEqual(["vm-a"]);
    // a worker that comes back on another node changes both
    s.onHeartbeat({ ...heartbeat("b1", null, "idle"), node: "vm-c" }, 12);
    expect(s.takeChangedNodes().sort()).toEqual(["vm-b", "vm-c"]);
    expect(s.nodeCounts("vm-b")).toBeUndefined();
    expect(s.nodeWorkers("vm-c").map((w) => w.id)).toEqual(["b1"]);
    // forgotten after the retention: its node is flagged and gone
    s.onStatus(status("b1", "offline"), 13);
    s.takeChangedNodes();
    s.onHeartbeat({ ...heartbeat("a1", null, "idle"), node: "vm-a" }, 20_000);
    s.tick(20_000);
    expect(s.takeChangedNodes()).toEqual(["vm-c"]);
    expect([...s.nodes()]).toEqual(["vm-a"]);
  });

  it("positions stay right with tasks requeued at the head (binary search over queue keys)", () => {
    const s = withWorkers([], { maxQueuedPerSession: 100 });
    for (const id of ["a", "b", "c", "d"]) s.enqueue(id, "s1");
    s.onRegister(register("w1"), 0);
    s.onRegister(register("w2"), 0);
    s.dispatch(1); // a -> w1, b -> w2
    s.onStatus(status("w2", "offline"), 2); // b back at the head
    s.onStatus(status("w1", "offline"), 3); // a back at the head, before b
    expect(s.queuedIds()).toEqual(["a", "b", "c", "d"]);
    expect(["a", "b", "c", "d", "zz"].map((id) => s.positionOf(id))).toEqual([1, 2, 3, 4, 0]);
    s.forget("c");
    expect(s.positionOf("d")).toBe(3);
  });
});
