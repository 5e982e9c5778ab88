// The cluster view's numbers, for the page (Socket.IO `cluster`) and scripts
// (GET /api/cluster). Pure: no I/O, the clock passed in (like scheduler.ts).
//
// Cheap at any fleet size: an answer costs O(1) (a few array slots), a worker
// change costs nothing here (the scheduler only flags its node), and one
// summary costs O(workers of the nodes that changed + nodes + 60 + bins),
// computed once per interval for every page together.
import type { NodeCounts } from "./scheduler";

export interface LanguageCount {
  language: string;
  idle: number;
  busy: number;
}

export interface NodeSummary {
  node: string;
  /** Online workers (idle + busy). */
  workers: number;
  idle: number;
  busy: number;
  /** Workers that went offline recently (kept for a while, then forgotten). */
  offline: number;
  /** Online workers by language, by name. */
  languages: LanguageCount[];
  /** Answers (done) served by this node's workers in the last 60 s. */
  answers_per_min: number;
}

export interface ClusterTotals {
  /** Nodes (VMs) with at least one online worker. */
  vms: number;
  workers: number;
  idle: number;
  busy: number;
  offline: number;
  languages: LanguageCount[];
  queue_depth: number;
  /** Queries leased to a worker now. */
  in_flight: number;
  /** Answers (done) in the last 60 s. */
  answers_per_min: number;
  /** Queries that failed in the last 60 s. */
  failed_per_min: number;
  /** Median time from submission to answer over the last 60 s (about 1 % precise); null without answers. */
  median_answer_ms: number | null;
}

export interface HistoryPoint {
  /** End of the step. */
  at_ms: number;
  /** Answers in the step. */
  answers: number;
  /** Largest queue depth seen in the step. */
  queue_depth: number;
}

export interface ClusterSummary {
  at_ms: number;
  totals: ClusterTotals;
  /** One entry per node, by name (numbers in names sort as numbers). */
  nodes: NodeSummary[];
  /** The last minutes, oldest first; the last point is the step in progress. */
  history: { step_ms: number; points: HistoryPoint[] };
}

/** What the aggregator reads; QueryService (over the scheduler) provides it. */
export interface ClusterSource {
  nodes(): Iterable<string>;
  nodeCounts(node: string): NodeCounts | undefined;
  takeChangedNodes(): string[];
  queueDepth(): number;
  inFlight(): number;
}

export interface ClusterOptions {
  /** Length of the window for "last minute" numbers. */
  windowMs?: number;
  /** Chart resolution and length. */
  historyStepMs?: number;
  historySteps?: number;
}

const SECOND = 1000;

/** Counts per second over a window of whole seconds, in a ring. */
export class RollingCounter {
  private readonly stamps: Float64Array;
  private readonly values: Float64Array;

  constructor(private readonly slots: number) {
    this.stamps = new Float64Array(slots).fill(-1);
    this.values = new Float64Array(slots);
  }

  add(now: number, value = 1): void {
    const sec = Math.floor(now / SECOND);
    const i = sec % this.slots;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.values[i] = 0;
    }
    this.values[i] = (this.values[i] as number) + value;
  }

  /** Sum over the last `slots` seconds (the current one included). */
  sum(now: number): number {
    const sec = Math.floor(now / SECOND);
    let total = 0;
    for (let i = 0; i < this.slots; i++) {
      const stamp = this.stamps[i] as number;
      if (stamp > sec - this.slots && stamp <= sec) total += this.values[i] as number;
    }
    return total;
  }
}

/**
 * The median of values seen in the last `slots` seconds, from log-spaced bins
 * (2 % wide): O(1) per value, O(bins) per median, a fixed ~200 KB.
 */
export class RollingMedian {
  static readonly BASE = 1.02;
  static readonly MAX_MS = 3_600_000;
  private readonly bins: number;
  private readonly stamps: Float64Array;
  private readonly perSlot: Uint32Array;
  private readonly totals: Float64Array;
  private count = 0;

  constructor(private readonly slots: number) {
    this.bins = Math.ceil(Math.log(RollingMedian.MAX_MS) / Math.log(RollingMedian.BASE)) + 2;
    this.stamps = new Float64Array(slots).fill(-1);
    this.perSlot = new Uint32Array(slots * this.bins);
    this.totals = new Float64Array(this.bins);
  }

  add(now: number, valueMs: number): void {
    const sec = Math.floor(now / SECOND);
    const slot = sec % this.slots;
    if (this.stamps[slot] !== sec) {
      this.clearSlot(slot);
      this.stamps[slot] = sec;
    }
    const bin = this.binOf(valueMs);
    this.perSlot[slot * this.bins + bin] = (this.perSlot[slot * this.bins + bin] as number) + 1;
    this.totals[bin] = (this.totals[bin] as number) + 1;
    this.count += 1;
  }

  /** The median of the window, rounded to a millisecond; null when empty. */
  median(now: number): number | null {
    this.expire(now);
    if (this.count === 0) return null;
    const half = this.count / 2;
    let seen = 0;
    for (let bin = 0; bin < this.bins; bin++) {
      seen += this.totals[bin] as number;
      if (seen >= half) return bin === 0 ? 0 : Math.round(RollingMedian.BASE ** (bin - 0.5));
    }
    return null;
  }

  private binOf(ms: number): number {
    if (!(ms >= 1)) return 0;
    return Math.min(this.bins - 1, 1 + Math.floor(Math.log(ms) / Math.log(RollingMedian.BASE)));
  }

  private expire(now: number): void {
    const sec = Math.floor(now / SECOND);
    for (let slot = 0; slot < this.slots; slot++) {
      const stamp = this.stamps[slot] as number;
      if (stamp >= 0 && stamp <= sec - this.slots) {
        this.clearSlot(slot);
        this.stamps[slot] = -1;
      }
    }
  }

  private clearSlot(slot: number): void {
    const base = slot * this.bins;
    for (let bin = 0; bin < this.bins; bin++) {
      const n = this.perSlot[base + bin] as number;
      if (n === 0) continue;
      this.totals[bin] = (this.totals[bin] as number) - n;
      this.count -= n;
      this.perSlot[base + bin] = 0;
    }
  }
}

/** Throughput and queue depth per step over the last minutes, for the chart. */
export class History {
  private readonly stamps: Float64Array;
  private readonly answers: Float64Array;
  private readonly queue: Float64Array;

  constructor(
    readonly stepMs: number,
    private readonly steps: number,
  ) {
    this.stamps = new Float64Array(steps).fill(-1);
    this.answers = new Float64Array(steps);
    this.queue = new Float64Array(steps);
  }

  answer(now: number): void {
    const i = this.slot(now);
    this.answers[i] = (this.answers[i] as number) + 1;
  }

  queueDepth(now: number, depth: number): void {
    const i = this.slot(now);
    this.queue[i] = Math.max(this.queue[i] as number, depth);
  }

  /** Oldest first; the last point is the step in progress. */
  points(now: number): HistoryPoint[] {
    const current = Math.floor(now / this.stepMs);
    const out: HistoryPoint[] = [];
    for (let step = current - this.steps + 1; step <= current; step++) {
      const i = step % this.steps;
      const live = this.stamps[i] === step;
      out.push({
        at_ms: (step + 1) * this.stepMs,
        answers: live ? (this.answers[i] as number) : 0,
        queue_depth: live ? (this.queue[i] as number) : 0,
      });
    }
    return out;
  }

  /** True when every point of the window is zero: nothing to scroll. */
  flat(now: number): boolean {
    return this.points(now).every((p) => p.answers === 0 && p.queue_depth === 0);
  }

  private slot(now: number): number {
    const step = Math.floor(now / this.stepMs);
    const i = step % this.steps;
    if (this.stamps[i] !== step) {
      this.stamps[i] = step;
      this.answers[i] = 0;
      this.queue[i] = 0;
    }
    return i;
  }
}

interface NodeState {
  counts: NodeCounts;
  answers: RollingCounter;
}

/**
 * Keeps per-node counts up to date from the nodes the scheduler flags as
 * changed, counts answers, and builds the summary. `tick` (once per interval)
 * says whether anything a page shows changed since the last tick and which
 * nodes changed (for the pages that watch a node's details).
 */
export class ClusterAggregator {
  private readonly windowSeconds: number;
  private readonly nodes = new Map<string, NodeState>();
  private readonly answered: RollingCounter;
  private readonly failed: RollingCounter;
  private readonly latency: RollingMedian;
  private readonly history: History;
  /** Nodes changed since the last tick (kept here, so a summary asked in between loses none). */
  private readonly changedNodes = new Set<string>();
  private primed = false;
  /** Bumped by anything that changes what a summary says. */
  private version = 0;
  private tickedVersion = -1;
  private lastQueueDepth = -1;
  private lastInFlight = -1;
  private tickedStep = -1;
  private chartFlat = true;
  private cached?: { version: number; atSecond: number; summary: ClusterSummary };

  constructor(
    private readonly source: ClusterSource,
    opts: ClusterOptions = {},
  ) {
    this.windowSeconds = Math.max(1, Math.round((opts.windowMs ?? 60_000) / SECOND));
    this.answered = new RollingCounter(this.windowSeconds);
    this.failed = new RollingCounter(this.windowSeconds);
    this.latency = new RollingMedian(this.windowSeconds);
    this.history = new History(opts.historyStepMs ?? 5_000, opts.historySteps ?? 60);
  }

  /** A query ended: done (`ok`) on `node`, or failed. O(1). */
  recordAnswer(node: string | null, latencyMs: number, ok: boolean, now: number): void {
    this.version++;
    if (!ok) {
      this.failed.add(now);
      return;
    }
    this.answered.add(now);
    this.latency.add(now, latencyMs);
    this.history.answer(now);
    if (node !== null) this.nodeState(node).answers.add(now);
  }

  /**
   * Once per interval: samples the queue, refreshes changed nodes, and returns
   * the summary when anything it shows changed since the last tick (else
   * undefined), plus the nodes whose workers changed.
   */
  tick(now: number): { summary?: ClusterSummary; changedNodes: string[] } {
    this.refresh(now);
    const changedNodes = [...this.changedNodes];
    this.changedNodes.clear();
    // The chart moves on by itself while it shows something (and once more when it turns flat).
    const step = Math.floor(now / this.history.stepMs);
    if (step !== this.tickedStep) {
      this.tickedStep = step;
      const flat = this.history.flat(now);
      if (!flat || !this.chartFlat) this.version++;
      this.chartFlat = flat;
    }
    if (this.version === this.tickedVersion) return { changedNodes };
    this.tickedVersion = this.version;
    return { summary: this.summary(now), changedNodes };
  }

  /** The summary now (the one of this second when nothing changed since). */
  summary(now: number): ClusterSummary {
    this.refresh(now);
    const second = Math.floor(now / SECOND);
    if (this.cached && this.cached.version === this.version && this.cached.atSecond === second) return this.cached.summary;
    const summary = this.build(now);
    this.cached = { version: this.version, atSecond: second, summary };
    return summary;
  }

  /** Reads what changed from the source: queue depth, in-flight count, changed nodes. */
  private refresh(now: number): void {
    const depth = this.source.queueDepth();
    const inFlight = this.source.inFlight();
    this.history.queueDepth(now, depth);
    if (depth !== this.lastQueueDepth || inFlight !== this.lastInFlight) {
      this.lastQueueDepth = depth;
      this.lastInFlight = inFlight;
      this.version++;
    }
    const changed = this.primed ? this.source.takeChangedNodes() : [...this.source.nodes()];
    if (!this.primed) {
      this.source.takeChangedNodes();
      this.primed = true;
    }
    if (changed.length === 0) return;
    this.version++;
    for (const node of changed) {
      this.changedNodes.add(node);
      const counts = this.source.nodeCounts(node);
      if (counts === undefined) {
        // Nobody is on it any more: forget it once its answers have aged out.
        const state = this.nodes.get(node);
        if (state && state.answers.sum(now) === 0) this.nodes.delete(node);
        else if (state) state.counts = { node, idle: 0, busy: 0, offline: 0, languages: new Map() };
        continue;
      }
      const state = this.nodes.get(node);
      if (state) state.counts = counts;
      else this.nodes.set(node, { counts, answers: new RollingCounter(this.windowSeconds) });
    }
  }

  private nodeState(node: string): NodeState {
    let state = this.nodes.get(node);
    if (!state) {
      state = { counts: { node, idle: 0, busy: 0, offline: 0, languages: new Map() }, answers: new RollingCounter(this.windowSeconds) };
      this.nodes.set(node, state);
    }
    return state;
  }

  private build(now: number): ClusterSummary {
    const nodes: NodeSummary[] = [];
    const languages = new Map<string, LanguageCount>();
    const totals: ClusterTotals = {
      vms: 0,
      workers: 0,
      idle: 0,
      busy: 0,
      offline: 0,
      languages: [],
      queue_depth: this.lastQueueDepth,
      in_flight: this.lastInFlight,
      answers_per_min: this.answered.sum(now),
      failed_per_min: this.failed.sum(now),
      median_answer_ms: this.latency.median(now),
    };
    for (const [name, state] of this.nodes) {
      const { idle, busy, offline } = state.counts;
      const answers = state.answers.sum(now);
      if (idle + busy + offline === 0 && answers === 0) {
        this.nodes.delete(name);
        continue;
      }
      const nodeLanguages: LanguageCount[] = [];
      for (const [language, n] of state.counts.languages) {
        nodeLanguages.push({ language, idle: n.idle, busy: n.busy });
        const total = languages.get(language) ?? { language, idle: 0, busy: 0 };
        total.idle += n.idle;
        total.busy += n.busy;
        languages.set(language, total);
      }
      nodeLanguages.sort(byLanguage);
      nodes.push({ node: name, workers: idle + busy, idle, busy, offline, languages: nodeLanguages, answers_per_min: answers });
      totals.idle += idle;
      totals.busy += busy;
      totals.offline += offline;
      if (idle + busy > 0) totals.vms += 1;
    }
    totals.workers = totals.idle + totals.busy;
    totals.languages = [...languages.values()].sort(byLanguage);
    nodes.sort((a, b) => naturalCompare(a.node, b.node));
    return { at_ms: now, totals, nodes, history: { step_ms: this.history.stepMs, points: this.history.points(now) } };
  }
}

function byLanguage(a: LanguageCount, b: LanguageCount): number {
  return a.language < b.language ? -1 : a.language > b.language ? 1 : 0;
}

const collator = new Intl.Collator("en", { numeric: true });

/** "vm-2" before "vm-10". */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b);
}
