/**
 * CPU time of the processes under test, so the benchmark can say where each
 * query's CPU goes (on a 2-core machine the cores, not the network, set the pace).
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat on Linux (USER_HZ). */
const TICKS_PER_SECOND = 100;

/**
 * utime + stime of a /proc/<pid>/stat line, in milliseconds. The command name
 * (field 2) is in parentheses and may itself hold spaces or ")", so the fields
 * are counted from the last ")".
 */
export function cpuMsFromStat(stat: string): number {
  const close = stat.lastIndexOf(")");
  if (close < 0) throw new Error("not a /proc/<pid>/stat line");
  const fields = stat.slice(close + 2).trim().split(/\s+/);
  // After the name: state(3) ... utime(14) stime(15); fields[0] is field 3.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error("not a /proc/<pid>/stat line");
  return ((utime + stime) * 1000) / TICKS_PER_SECOND;
}

/** CPU milliseconds a process has used so far; undefined once it is gone. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return cpuMsFromStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** A named group of processes (e.g. "workers") whose CPU is summed. */
export interface CpuGroup {
  name: string;
  pids: readonly (number | undefined)[];
}

export type CpuSnapshot = Map<string, number>;

export function snapshot(groups: readonly CpuGroup[]): CpuSnapshot {
  const out: CpuSnapshot = new Map();
  for (const group of groups) {
    out.set(group.name, group.pids.reduce<number>((sum, pid) => sum + (processCpuMs(pid) ?? 0), 0));
  }
  out.set("client", cpuMsOfThisProcess());
  return out;
}

/** CPU milliseconds per query of each group between two snapshots. */
export function perQuery(before: CpuSnapshot, after: CpuSnapshot, queries: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, end] of after) out.set(name, (end - (before.get(name) ?? 0)) / queries);
  return out;
}

function cpuMsOfThisProcess(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}
