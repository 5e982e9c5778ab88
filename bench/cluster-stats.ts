import path from "node:path";
/**
 * The pure half of npm run bench:cluster (unit-tested in tests/unit/fleet.test.ts):
 * its CLUSTER_* settings, what it makes of each query's record, the
 * event-loop lag read from the master's /metrics, the targets and the
 * Markdown table.
 */
import { percentile } from "./stats";
import type { QueryRecord } from "./loadgen";

export interface Level {
  workers: number;
  /** Queries per second. */
  rate: number;
}

export type MasterBuild = "before" | "after";

export interface ClusterSettings {
  levels: Level[];
  seconds: number;
  page: boolean;
  /** Measured in this order at each level. */
  masters: MasterBuild[];
  workMs: number;
  heartbeatMs: number;
  /** Seconds left out at the start of each level (see DEFAULT_WARMUP_S). */
  warmupS: number;
  /** The git revision built as "before" (CLUSTER_BEFORE_REF, default HEAD). */
  beforeRef: string;
  /** CLUSTER_CPU_PROF: a folder where each master writes a V8 CPU profile (node --cpu-prof), or undefined. */
  cpuProfDir?: string;
}

/**
 * Seconds at the start of each level left out of every steady-state number
 * (CLUSTER_WARMUP_S). A step from idle to full load has a start-up transient:
 * the first cohort of tasks ends together one work time later (the fleet's
 * work time is fixed), arrivals bunch behind it and the echo repeats every
 * work time until it fades, about 10 s at 2000 workers. Its overhead is
 * reported on its own (QuerySummary.startup).
 */
export const DEFAULT_WARMUP_S = 15;
/** A connect that took longer went through a SYN retransmission (the first one waits 1 s). */
export const SLOW_CONNECT_MS = 900;
export const DEFAULT_LEVELS = "50:100,200:100,1000:350,2000:700";
/** How long queries still running are followed after the last one was sent (bench/cluster.ts). */
export const DRAIN_S = 35;
const DRAIN_NOTE = `${DRAIN_S} s after the last query was sent`;

/** `workers:rate,…`, e.g. 50:100,200:100. */
export function parseLevels(raw: string): Level[] {
  const parts = raw.split(",").map((s) => s.trim());
  const levels = parts.map((part) => {
    const match = /^(\d+):(\d+(?:\.\d+)?)$/.exec(part);
    const workers = Number(match?.[1]);
    const rate = Number(match?.[2]);
    if (!match || !Number.isInteger(workers) || workers < 1 || !(rate > 0)) {
      throw new Error(`CLUSTER_LEVELS must be a comma-separated list of workers:queries-per-second (e.g. ${DEFAULT_LEVELS}), got "${raw}"`);
    }
    return { workers, rate };
  });
  return levels;
}

function intSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

/** The CLUSTER_* settings; throws one clear line for a bad one. */
export function clusterSettings(env: NodeJS.ProcessEnv): ClusterSettings {
  const levels = parseLevels(env.CLUSTER_LEVELS || DEFAULT_LEVELS);
  const warmupS = intSetting(env, "CLUSTER_WARMUP_S", DEFAULT_WARMUP_S, 0);
  const seconds = intSetting(env, "CLUSTER_SECONDS", 45, warmupS + 1);
  const pageRaw = env.CLUSTER_PAGE || "1";
  if (pageRaw !== "0" && pageRaw !== "1") throw new Error(`CLUSTER_PAGE must be 1 (keep the chat page open) or 0, got "${pageRaw}"`);
  const masterRaw = env.CLUSTER_MASTER || "after";
  const masters: Record<string, MasterBuild[]> = { after: ["after"], before: ["before", "after"], "before-only": ["before"] };
  const chosen = masters[masterRaw];
  if (chosen === undefined) throw new Error(`CLUSTER_MASTER must be after (the working tree's build), before (HEAD's and the working tree's, level by level) or before-only, got "${masterRaw}"`);
  return {
    levels,
    seconds,
    page: pageRaw === "1",
    masters: chosen,
    workMs: intSetting(env, "CLUSTER_WORK_MS", 2000, 0),
    heartbeatMs: intSetting(env, "CLUSTER_HEARTBEAT_MS", 2000, 100),
    warmupS,
    beforeRef: beforeRef(env.CLUSTER_BEFORE_REF),
    ...(env.CLUSTER_CPU_PROF ? { cpuProfDir: path.resolve(env.CLUSTER_CPU_PROF) } : {}),
  };
}

/** A git revision name (a branch, tag, `HEAD~1`, a commit id); nothing a shell could read as an option or a command. */
function beforeRef(raw: string | undefined): string {
  const ref = raw === undefined || raw === "" ? "HEAD" : raw;
  if (!/^[A-Za-z0-9][A-Za-z0-9._\/~^-]{0,99}$/.test(ref)) throw new Error(`CLUSTER_BEFORE_REF must be a git revision (e.g. HEAD~1 or a commit id), got "${ref}"`);
  return ref;
}

/** Queries a fleet can finish per second at full use: one task at a time per worker. */
export function capacity(level: Level, workMs: number): number {
  return workMs === 0 ? Infinity : (level.workers * 1000) / workMs;
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

export function percentiles(values: readonly number[]): Percentiles | undefined {
  if (values.length === 0) return undefined;
  return { p50: percentile(values, 50), p99: percentile(values, 99), max: Math.max(...values) };
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface QuerySummary {
  sent: number;
  answered: number;
  /** The query ended as failed (an error result, or out of attempts). */
  failed: number;
  /** An HTTP status other than 200/202 on the POST. */
  refused: number;
  refusedByStatus: Record<string, number>;
  /** No HTTP response on the POST: reset, refused, timed out, closed early. */
  connFailures: number;
  connErrors: Record<string, number>;
  /** POST connects over SLOW_CONNECT_MS (SYN retransmitted: the accept queue was full). */
  slowConnects: number;
  connectMaxMs?: number;
  /** Accepted, then unknown to the master or unreachable. */
  lost: number;
  /** Accepted and still queued or assigned at the drain deadline (an overloaded level). */
  unfinished: number;
  /** Answered only after a follow-up GET (the POST's 30 s wait was not enough). */
  late: number;
  /** latency − workMs of the queries answered that were sent after the warm-up. */
  overhead?: Percentiles;
  /** The master's assigned − created, same queries. */
  queueWait?: Percentiles;
  /** latency − workMs of the queries answered that were sent during the warm-up (the start-up transient). */
  startup?: Percentiles;
  /** How late the client sent queries (actual − scheduled): the load generator's own health. */
  sendLagP99Ms?: number;
}

/** What a level's queries say; steady-state numbers use the queries sent at or after `steadyFromMs`. */
export function summarizeQueries(records: readonly QueryRecord[], workMs: number, steadyFromMs: number): QuerySummary {
  const count = (outcome: QueryRecord["outcome"]): number => records.filter((r) => r.outcome === outcome).length;
  const refusedByStatus: Record<string, number> = {};
  const connErrors: Record<string, number> = {};
  for (const r of records) {
    if (r.outcome === "refused") refusedByStatus[String(r.status)] = (refusedByStatus[String(r.status)] ?? 0) + 1;
    if (r.outcome === "conn-fail") connErrors[r.error ?? "?"] = (connErrors[r.error ?? "?"] ?? 0) + 1;
  }
  const steady = records.filter((r) => r.sentMs >= steadyFromMs && r.outcome === "answered" && r.latencyMs !== undefined);
  const connects = records.flatMap((r) => (r.connectMs === undefined ? [] : [r.connectMs]));
  return {
    sent: records.length,
    answered: count("answered"),
    failed: count("failed"),
    refused: count("refused"),
    refusedByStatus,
    connFailures: count("conn-fail"),
    connErrors,
    slowConnects: connects.filter((ms) => ms > SLOW_CONNECT_MS).length,
    connectMaxMs: connects.length > 0 ? Math.max(...connects) : undefined,
    lost: count("lost"),
    unfinished: count("unfinished"),
    late: records.filter((r) => r.outcome === "answered" && r.followUps > 0).length,
    overhead: percentiles(steady.map((r) => (r.latencyMs as number) - workMs)),
    queueWait: percentiles(steady.flatMap((r) => (r.queueMs === undefined ? [] : [r.queueMs]))),
    startup: percentiles(records.filter((r) => r.sentMs < steadyFromMs && r.outcome === "answered" && r.latencyMs !== undefined).map((r) => (r.latencyMs as number) - workMs)),
    sendLagP99Ms: records.length > 0 ? percentile(records.map((r) => r.sentMs - r.scheduledMs), 99) : undefined,
  };
}

/**
 * prom-client's event-loop p99 from a /metrics text, in ms (the master's
 * registry prefixes the default metrics with `aiswarm_master_`); undefined if absent.
 */
export function eventLoopP99Ms(metrics: string): number | undefined {
  const match = /^aiswarm_master_nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})?\s+([0-9.eE+-]+|NaN)\s*$/m.exec(metrics);
  if (!match) return undefined;
  const seconds = Number(match[1]);
  return Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

export interface Targets {
  lagP99Ms?: number;
  overheadP99Ms?: number;
  noConnFailures?: boolean;
}

/** The targets of the work being measured: only at 1000 workers & 350 q/s and 2000 & 700. */
export function targetsFor(level: Level): Targets | undefined {
  if (level.workers === 1000 && level.rate === 350) return { lagP99Ms: 20, overheadP99Ms: 50 };
  if (level.workers === 2000 && level.rate === 700) return { noConnFailures: true, overheadP99Ms: 200 };
  return undefined;
}

export interface LevelRow {
  master: MasterBuild;
  level: Level;
  page: boolean;
  queries: QuerySummary;
  /** 100 = one core. */
  masterCpuPct?: number;
  masterRssMaxMb?: number;
  /** Over the per-second scrapes of the steady part. */
  lagP99MaxMs?: number;
  lagP99MedianMs?: number;
  chromiumCpuPct?: number;
  pageKBps?: number;
  /** Why the row is incomplete, if it is. */
  notes: string[];
}

/** One cell per target: ✓/✗ with the number it was held against; "—" for levels without targets. */
export function checkTargets(row: LevelRow): { text: string; met: boolean | undefined } {
  const targets = targetsFor(row.level);
  if (!targets) return { text: "—", met: undefined };
  const parts: string[] = [];
  let met = true;
  const check = (ok: boolean | undefined, label: string): void => {
    parts.push(`${ok === undefined ? "?" : ok ? "✓" : "✗"} ${label}`);
    if (ok !== true) met = false;
  };
  if (targets.lagP99Ms !== undefined) {
    const lag = row.lagP99MaxMs;
    check(lag === undefined ? undefined : lag < targets.lagP99Ms, `lag p99 < ${targets.lagP99Ms} ms`);
  }
  if (targets.noConnFailures) check(row.queries.connFailures === 0 && row.queries.slowConnects === 0, "no conn failure");
  if (targets.overheadP99Ms !== undefined) {
    const p99 = row.queries.overhead?.p99;
    check(p99 === undefined ? undefined : p99 < targets.overheadP99Ms, `overhead p99 < ${targets.overheadP99Ms} ms`);
  }
  return { text: parts.join(", "), met };
}

const HEADER = [
  "| master | workers | q/s | page | sent | answered | failed | lost / unfinished | HTTP refused | conn fail | slow conn | overhead p50 / p99 / max ms | master CPU % | master RSS MB | lag p99 max / median ms | chromium CPU % | to page KB/s | targets |",
  "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
];

const fixed = (value: number | undefined, digits: number): string => (value === undefined || !Number.isFinite(value) ? "n/a" : value.toFixed(digits));

export function formatRow(row: LevelRow): string {
  const q = row.queries;
  const overhead = q.overhead ? `${fixed(q.overhead.p50, 0)} / ${fixed(q.overhead.p99, 0)} / ${fixed(q.overhead.max, 0)}` : "n/a";
  const lag = `${fixed(row.lagP99MaxMs, 1)} / ${fixed(row.lagP99MedianMs, 1)}`;
  const page = row.page ? "open" : "none";
  return `| ${row.master} | ${row.level.workers} | ${row.level.rate} | ${page} | ${q.sent} | ${q.answered} | ${q.failed} | ${q.lost} / ${q.unfinished} | ${q.refused} | ${q.connFailures} | ${q.slowConnects} | ${overhead} | ${fixed(row.masterCpuPct, 0)} | ${fixed(row.masterRssMaxMb, 0)} | ${lag} | ${row.page ? fixed(row.chromiumCpuPct, 0) : "—"} | ${row.page ? fixed(row.pageKBps, 1) : "—"} | ${checkTargets(row).text} |`;
}

export function formatTable(rows: readonly LevelRow[], withHeader: boolean): string {
  return [...(withHeader ? HEADER : []), ...rows.map(formatRow)].join("\n");
}

export function legend(settings: ClusterSettings): string {
  return [
    `Each level: a fresh Mosquitto, master and fleet (workers over ceil(workers/20) nodes, ${settings.workMs} ms simulated work, heartbeats every ${settings.heartbeatMs} ms), then queries at the level's rate for ${settings.seconds} s, each a POST /api/queries with Prefer: wait=30 on a new TCP connection.`,
    `- sent/answered/failed/lost/unfinished/HTTP refused/conn fail: every query of the level. lost = accepted, then unknown to the master (404) or unreachable; unfinished = still queued or assigned when the drain ended, ${DRAIN_NOTE}; conn fail = no HTTP response (reset, refused, timeout); slow conn = TCP connect > ${SLOW_CONNECT_MS} ms (a SYN was retransmitted: the accept queue was full).`,
    `- overhead = client latency (POST sent → answer held) − ${settings.workMs} ms of simulated work, over the answered queries sent after the first ${settings.warmupS} s (CLUSTER_WARMUP_S; the start-up transient before it is in the notes).`,
    `- master CPU % (100 = one core), chromium CPU % (all its processes), to page KB/s (Socket.IO payload bytes the page received): over the steady part (after ${settings.warmupS} s until the last query is sent). master RSS: the largest reading.`,
    "- lag p99: the master's aiswarm_master_nodejs_eventloop_lag_p99_seconds, scraped every second (prom-client resets it at each scrape); max and median of those per-second p99s. Its 10 ms sampling resolution is included: an idle loop reads about 10–11 ms.",
    "- targets (the lag target is held against the max): 1000 workers & 350 q/s: lag p99 < 20 ms and overhead p99 < 50 ms; 2000 workers & 700 q/s: no connection failure (nor slow connect) and overhead p99 < 200 ms.",
  ].join("\n");
}
