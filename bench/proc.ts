/**
 * What npm run bench:cluster reads from /proc besides CPU time (bench/cpu.ts):
 * a process's resident memory, and the process tree under a PID (chromium is
 * a dozen processes: the browser, its zygotes, the GPU/network utilities and
 * one renderer per page, whose CPU the benchmark adds up).
 */
import { readdirSync, readFileSync } from "node:fs";
import { processCpuMs } from "./cpu";

/** VmRSS of a /proc/<pid>/status text, in bytes; undefined if absent. */
export function rssFromStatus(status: string): number | undefined {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** The parent PID in a /proc/<pid>/stat line (field 4, counted after the last ")"). */
export function ppidFromStat(stat: string): number | undefined {
  const close = stat.lastIndexOf(")");
  if (close < 0) return undefined;
  const ppid = Number(stat.slice(close + 2).split(" ")[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/** Every PID below `root` in a child → parent map (not `root` itself). */
export function descendantsIn(parents: ReadonlyMap<number, number>, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) {
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function rssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return rssFromStatus(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return undefined;
  }
}

/** child PID → parent PID for every process now. */
export function processParents(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = ppidFromStat(readFileSync(`/proc/${name}/stat`, "utf8"));
      if (ppid !== undefined) parents.set(Number(name), ppid);
    } catch {
      // gone meanwhile
    }
  }
  return parents;
}

/** The command line of a process, or "" once it is gone. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** Clock ticks per second of /proc/stat (USER_HZ), as in bench/cpu.ts. */
const TICKS_PER_SECOND = 100;

/**
 * CPU ms the whole machine has been busy (all cores: user, nice, system, irq,
 * softirq, steal; not idle or iowait) from the first line of /proc/stat.
 */
export function busyMsFromProcStat(text: string): number | undefined {
  const match = /^cpu\s+(.*)$/m.exec(text);
  if (!match) return undefined;
  const fields = (match[1] as string).trim().split(/\s+/).map(Number);
  let ticks = 0;
  // user nice system (idle iowait) irq softirq steal; steal is absent on old kernels.
  for (const index of [0, 1, 2, 5, 6, 7]) {
    const value = fields[index] ?? (index === 7 ? 0 : Number.NaN);
    if (!Number.isFinite(value)) return undefined;
    ticks += value;
  }
  return ticks * (1000 / TICKS_PER_SECOND);
}

export function machineBusyMs(): number | undefined {
  try {
    return busyMsFromProcStat(readFileSync("/proc/stat", "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * TcpExt ListenOverflows of a /proc/net/netstat text: SYNs or handshakes
 * dropped because a listening socket's accept queue was full (the whole
 * network namespace, so attributable only on a machine doing nothing else).
 */
export function listenOverflowsFromNetstat(text: string): number | undefined {
  const lines = text.split("\n").filter((line) => line.startsWith("TcpExt:"));
  const names = lines[0]?.split(/\s+/);
  const values = lines[1]?.split(/\s+/);
  const index = names?.indexOf("ListenOverflows") ?? -1;
  const value = index > 0 ? Number(values?.[index]) : Number.NaN;
  return Number.isFinite(value) ? value : undefined;
}

export function listenOverflows(): number | undefined {
  try {
    return listenOverflowsFromNetstat(readFileSync("/proc/net/netstat", "utf8"));
  } catch {
    return undefined;
  }
}

/** CPU ms of each process in a group, keyed by PID (processes that are gone are left out). */
export type TreeCpu = Map<number, number>;

export function treeCpu(pids: readonly number[]): TreeCpu {
  const out: TreeCpu = new Map();
  for (const pid of pids) {
    const ms = processCpuMs(pid);
    if (ms !== undefined) out.set(pid, ms);
  }
  return out;
}

/**
 * CPU ms a group used between two readings. A process that appeared in
 * between counts from zero; one that ended in between is lost (undercounts).
 */
export function treeCpuDelta(before: TreeCpu, after: TreeCpu): number {
  let sum = 0;
  for (const [pid, ms] of after) sum += ms - (before.get(pid) ?? 0);
  return sum;
}
