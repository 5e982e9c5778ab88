/** Percentiles and a Markdown table for the benchmark (pure, unit-tested). */
export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

/** CPU milliseconds per query spent by each part of the system. */
export interface CpuPerQuery {
  master: number;
  workers: number;
  broker: number;
  client: number;
  /** The etcd members (0 with SQLite). */
  etcd: number;
}

export interface Row extends LatencySummary {
  fleet: string;
  /** The master's store engine (STORE). */
  store: string;
  concurrency: number;
  queries: number;
  seconds: number;
  cpu: CpuPerQuery;
  /**
   * CPU the machine spent meanwhile on anything but the benchmark's own
   * processes, in % of one core (other jobs skew every number); undefined
   * where /proc/stat cannot be read.
   */
  otherCpuPct?: number;
  /** Batches the master committed per query (group commit: below 1 when batches hold several queries' writes). */
  commitsPerQuery?: number;
}

/** Nearest-rank percentile of an unsorted list, p in (0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of an empty list");
  if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1] as number;
}

export function summarize(latencies: readonly number[]): LatencySummary {
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) };
}

export function formatTable(rows: readonly Row[], withHeader: boolean): string {
  const lines = rows.map((r) => {
    const cpu = [r.cpu.master, r.cpu.workers, r.cpu.broker, r.cpu.etcd, r.cpu.client].map((ms) => ms.toFixed(2)).join(" | ");
    const other = r.otherCpuPct === undefined ? "n/a" : r.otherCpuPct.toFixed(0);
    const commits = r.commitsPerQuery === undefined ? "n/a" : r.commitsPerQuery.toFixed(2);
    return `| ${r.fleet} | ${r.store} | ${r.concurrency} | ${r.queries} | ${commits} | ${(r.queries / r.seconds).toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(1)} | ${cpu} | ${other} |`;
  });
  const header = [
    "| fleet | store | concurrency | queries | commits/query | queries/s | p50 ms | p99 ms | max ms | CPU ms/query: master | workers | broker | etcd | client | other CPU % |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  return (withHeader ? [...header, ...lines] : lines).join("\n");
}
