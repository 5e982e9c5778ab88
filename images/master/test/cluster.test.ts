// The cluster view's numbers: pure, the clock passed in.
import { describe, expect, it } from "vitest";
import { ClusterAggregator, History, naturalCompare, RollingCounter, RollingMedian, type ClusterSource } from "../src/cluster";
import type { HeartbeatMsg, RegisterMsg } from "../src/protocol";
import { Scheduler, type NodeCounts } from "../src/scheduler";

/** A source with counts set by the test. */
class FakeSource implements ClusterSource {
  readonly counts = new Map<string, NodeCounts>();
  changed = new Set<string>();
  depth = 0;
  leased = 0;

  set(node: string, idle: number, busy: number, offline = 0, languages: Record<string, [number, number]> = { go: [idle, busy] }): void {
    const map = new Map(Object.entries(languages).map(([language, [i, b]]) => [language, { idle: i, busy: b }]));
    this.counts.set(node, { node, idle, busy, offline, languages: map });
    this.changed.add(node);
  }

  drop(node: string): void {
    this.counts.delete(node);
    this.changed.add(node);
  }

  nodes(): Iterable<string> {
    return this.counts.keys();
  }
  nodeCounts(node: string): NodeCounts | undefined {
    return this.counts.get(node);
  }
  takeChangedNodes(): string[] {
    const out = [...this.changed];
    this.changed.clear();
    return out;
  }
  queueDepth(): number {
    return this.depth;
  }
  inFlight(): number {
    return this.leased;
  }
}

const T0 = 1_700_000_000_000;

describe("rolling counters", () => {
  it("count the last 60 seconds and forget older ones", () => {
    const c = new RollingCounter(60);
    c.add(T0);
    c.add(T0 + 500);
    c.add(T0 + 30_000, 3);
    expect(c.sum(T0 + 30_000)).toBe(5);
    expect(c.sum(T0 + 59_999)).toBe(5);
    expect(c.sum(T0 + 61_000)).toBe(3); // the first second has aged out
    expect(c.sum(T0 + 200_000)).toBe(0);
    c.add(T0 + 200_000);
    expect(c.sum(T0 + 200_000)).toBe(1); // a reused slot starts from zero
  });

  it("the median is within 2 % and forgets values older than the window", () => {
    const m = new RollingMedian(60);
    expect(m.median(T0)).toBeNull();
    for (let i = 1; i <= 1001; i++) m.add(T0 + i, i); // median 501
    const median = m.median(T0 + 2000) as number;
    expect(Math.abs(median - 501) / 501).toBeLessThan(0.02);
    m.add(T0 + 40_000, 5000);
    m.add(T0 + 40_000, 5000);
    m.add(T0 + 40_000, 5000);
    expect(m.median(T0 + 70_000)).toBeGreaterThan(4900); // only the three recent ones are left
    expect(m.median(T0 + 200_000)).toBeNull();
    const tiny = new RollingMedian(60);
    tiny.add(T0, 0);
    expect(tiny.median(T0)).toBe(0);
  });

  it("history: answers per step and the largest queue depth, oldest first", () => {
    const h = new History(5000, 4);
    const start = 1000 * 5000; // a step boundary
    h.answer(start + 100);
    h.answer(start + 4900);
    h.queueDepth(start + 10, 3);
    h.queueDepth(start + 20, 7);
    h.queueDepth(start + 5100, 2);
    const points = h.points(start + 5200);
    expect(points).toHaveLength(4);
    expect(points.at(-2)).toEqual({ at_ms: start + 5000, answers: 2, queue_depth: 7 });
    expect(points.at(-1)).toEqual({ at_ms: start + 10_000, answers: 0, queue_depth: 2 });
    expect(h.flat(start + 5200)).toBe(false);
    expect(h.flat(start + 60_000)).toBe(true);
  });

  it("node names sort with numbers as numbers", () => {
    expect(["vm-10", "vm-2", "vm-1"].sort(naturalCompare)).toEqual(["vm-1", "vm-2", "vm-10"]);
  });
});

describe("cluster aggregator", () => {
  it("sums nodes and languages; a VM counts when it has an online worker", () => {
    const source = new FakeSource();
    source.set("vm-2", 1, 2, 0, { go: [1, 0], python: [0, 2] });
    source.set("vm-10", 0, 1, 0, { java: [0, 1] });
    source.set("vm-3", 0, 0, 2, {});
    source.depth = 4;
    source.leased = 3;
    const agg = new ClusterAggregator(source);
    const s = agg.summary(T0);
    expect(s.nodes.map((n) => n.node)).toEqual(["vm-2", "vm-3", "vm-10"]);
    expect(s.nodes[0]).toEqual({
      node: "vm-2", workers: 3, idle: 1, busy: 2, offline: 0, answers_per_min: 0,
      languages: [{ language: "go", idle: 1, busy: 0 }, { language: "python", idle: 0, busy: 2 }],
    });
    expect(s.totals).toEqual({
      vms: 2, workers: 4, idle: 1, busy: 3, offline: 2,
      languages: [{ language: "go", idle: 1, busy: 0 }, { language: "java", idle: 0, busy: 1 }, { language: "python", idle: 0, busy: 2 }],
      queue_depth: 4, in_flight: 3, answers_per_min: 0, failed_per_min: 0, median_answer_ms: null,
    });
  });

  it("answers: per node and in total over the last minute, with the median time", () => {
    const source = new FakeSource();
    source.set("vm-1", 2, 0);
    source.set("vm-2", 2, 0);
    const agg = new ClusterAggregator(source);
    agg.recordAnswer("vm-1", 100, true, T0);
    agg.recordAnswer("vm-1", 200, true, T0 + 1000);
    agg.recordAnswer("vm-2", 300, true, T0 + 2000);
    agg.recordAnswer(null, 50, false, T0 + 2000);
    const s = agg.summary(T0 + 3000);
    expect(s.nodes.map((n) => [n.node, n.answers_per_min])).toEqual([["vm-1", 2], ["vm-2", 1]]);
    expect(s.totals.answers_per_min).toBe(3);
    expect(s.totals.failed_per_min).toBe(1);
    expect(Math.abs((s.totals.median_answer_ms as number) - 200)).toBeLessThanOrEqual(4);
    expect(s.history.points.at(-1)?.answers).toBe(3);
    const later = agg.summary(T0 + 62_500);
    expect(later.totals.answers_per_min).toBe(0);
    expect(later.nodes.map((n) => n.answers_per_min)).toEqual([0, 0]);
    expect(later.totals.median_answer_ms).toBeNull();
  });

  it("tick: a summary only when something changed, and the nodes that changed", () => {
    const source = new FakeSource();
    source.set("vm-1", 1, 0);
    const agg = new ClusterAggregator(source, { historyStepMs: 5000 });
    const first = agg.tick(T0);
    expect(first.summary?.totals.workers).toBe(1);
    expect(first.changedNodes).toEqual(["vm-1"]);
    // nothing changed: no summary, no nodes
    expect(agg.tick(T0 + 1000)).toEqual({ changedNodes: [] });
    // a worker change on one node
    source.set("vm-1", 0, 1);
    const second = agg.tick(T0 + 2000);
    expect(second.summary?.totals.busy).toBe(1);
    expect(second.changedNodes).toEqual(["vm-1"]);
    // the queue moved
    source.depth = 5;
    expect(agg.tick(T0 + 3000).summary?.totals.queue_depth).toBe(5);
    // an answer
    agg.recordAnswer("vm-1", 10, true, T0 + 3500);
    expect(agg.tick(T0 + 4000).summary?.totals.answers_per_min).toBe(1);
    // a summary asked in between (GET /api/cluster) does not swallow a node change
    source.set("vm-1", 1, 0);
    agg.summary(T0 + 4100);
    expect(agg.tick(T0 + 4200).changedNodes).toEqual(["vm-1"]);
  });

  it("tick: the chart moves on while it shows something, and stops once it is flat", () => {
    const source = new FakeSource();
    const agg = new ClusterAggregator(source, { historyStepMs: 1000, historySteps: 3 });
    agg.tick(T0);
    agg.recordAnswer(null, 1, true, T0 + 100);
    expect(agg.tick(T0 + 200).summary).toBeDefined();
    expect(agg.tick(T0 + 300).summary).toBeUndefined();
    expect(agg.tick(T0 + 1200).summary).toBeDefined(); // next step: the point scrolls
    expect(agg.tick(T0 + 2200).summary).toBeDefined();
    expect(agg.tick(T0 + 3200).summary).toBeDefined(); // the window is flat from here on
    expect(agg.tick(T0 + 4200).summary).toBeUndefined();
  });

  it("forgets a node nobody is on once its answers have aged out", () => {
    const source = new FakeSource();
    source.set("vm-gone", 1, 0);
    const agg = new ClusterAggregator(source);
    agg.recordAnswer("vm-gone", 5, true, T0);
    agg.tick(T0);
    source.drop("vm-gone");
    expect(agg.tick(T0 + 1000).summary?.nodes.map((n) => [n.node, n.workers, n.answers_per_min])).toEqual([["vm-gone", 0, 1]]);
    expect(agg.summary(T0 + 70_000).nodes).toEqual([]);
  });
});

describe("cluster view at fleet scale (2000 workers on 50 nodes, the real scheduler)", () => {
  const register = (id: string, node: string): RegisterMsg => ({ v: 1, type: "register", worker_id: id, language: id.startsWith("g") ? "go" : "python", node, provider: "offline", ts: 0 });
  const heartbeat = (id: string, node: string, status: "idle" | "busy", taskId: string | null): HeartbeatMsg => ({
    v: 1, type: "heartbeat", worker_id: id, language: id.startsWith("g") ? "go" : "python", node, status, task_id: taskId, ts: 0,
  });

  function fleet(): { scheduler: Scheduler; ids: { id: string; node: string }[] } {
    const scheduler = new Scheduler({ leaseMs: 30_000, taskTimeoutMs: 300_000, heartbeatTimeoutMs: 7_000, maxQueuedPerSession: 100_000, maxAttempts: 5, offlineRetentionMs: 600_000 });
    const ids = Array.from({ length: 2000 }, (_, i) => ({ id: `${i % 2 ? "g" : "p"}-${i}`, node: `vm-${i % 50}` }));
    for (const w of ids) scheduler.onRegister(register(w.id, w.node), T0);
    for (let i = 0; i < 1400; i++) scheduler.enqueue(`q${i}`, `s${i % 100}`);
    scheduler.dispatch(T0);
    return { scheduler, ids };
  }

  it("heartbeats that change nothing flag no node: a summary then reads nothing", () => {
    const { scheduler, ids } = fleet();
    scheduler.takeChangedNodes();
    const holding = new Map(scheduler.listWorkers().map((w) => [w.id, w.task_id]));
    for (const w of ids) {
      const task = holding.get(w.id) ?? null;
      scheduler.onHeartbeat(heartbeat(w.id, w.node, task ? "busy" : "idle", task), T0 + 1000);
    }
    expect(scheduler.takeChangedNodes()).toEqual([]);
  });

  it("a summary re-counts only the nodes whose workers changed (one of 50 here)", () => {
    const { scheduler, ids } = fleet();
    const holding = new Map(scheduler.listWorkers().map((w) => [w.id, w.task_id]));
    let recounted: string[] = [];
    const agg = new ClusterAggregator({
      nodes: () => scheduler.nodes(),
      nodeCounts: (n) => {
        recounted.push(n);
        return scheduler.nodeCounts(n);
      },
      takeChangedNodes: () => scheduler.takeChangedNodes(),
      queueDepth: () => scheduler.queueDepth,
      inFlight: () => scheduler.leaseCount,
    });
    expect(agg.summary(T0).totals).toMatchObject({ vms: 50, workers: 2000, busy: 1400, idle: 600 });
    scheduler.takeChangedNodes();

    // One worker changes: the next summary re-counts its node and no other.
    const one = ids.find((w) => !holding.get(w.id));
    if (!one) throw new Error("the fleet has no idle worker");
    scheduler.onStatus({ v: 1, type: "status", worker_id: one.id, status: "busy", task_id: null, ts: 0 }, T0 + 2);
    recounted = [];
    agg.tick(T0 + 1000);
    expect(recounted).toEqual([one.node]);
    expect(agg.summary(T0 + 1000).totals).toMatchObject({ busy: 1401, idle: 599 });
  });
});
