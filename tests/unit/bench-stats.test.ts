import { describe, expect, it } from "vitest";
import { cpuMsFromStat, perQuery, processCpuMs } from "../../bench/cpu";
import { formatTable, percentile, summarize } from "../../bench/stats";

describe("benchmark statistics", () => {
  it("takes nearest-rank percentiles", () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 50)).toBe(7);
  });

  it("refuses an empty list or a percentile out of range", () => {
    expect(() => percentile([], 50)).toThrow(/empty/);
    expect(() => percentile([1], 0)).toThrow(/\(0, 100\]/);
  });

  it("formats throughput from queries and seconds", () => {
    const cpu = { master: 0.5, workers: 1.25, broker: 0.1, etcd: 0.75, client: 0.333 };
    const table = formatTable([{ fleet: "go", store: "etcd", concurrency: 8, queries: 1000, seconds: 2, cpu, otherCpuPct: 12.4, commitsPerQuery: 1.234, ...summarize([1, 2, 3]) }], true);
    expect(table).toContain("| go | etcd | 8 | 1000 | 1.23 | 500 | 2.00 | 3.00 | 3.0 | 0.50 | 1.25 | 0.10 | 0.75 | 0.33 | 12 |");
    const unknown = formatTable([{ fleet: "go", store: "sqlite", concurrency: 1, queries: 10, seconds: 1, cpu, ...summarize([1]) }], false);
    expect(unknown).toMatch(/^\| go \| sqlite \| 1 \| 10 \| n\/a \|.*\| n\/a \|$/);
    expect(table.split("\n")[0]).toContain("queries/s");
  });

  it("reads utime + stime from /proc/<pid>/stat, whatever the command name holds", () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const line = "4242 (node ) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0";
    expect(cpuMsFromStat(line)).toBe(3000);
    expect(() => cpuMsFromStat("garbage")).toThrow(/stat line/);
  });

  it("measures a real process and divides by the queries", () => {
    const own = processCpuMs(process.pid);
    expect(own).toBeGreaterThan(0);
    expect(processCpuMs(undefined)).toBeUndefined();
    const per = perQuery(new Map([["master", 100]]), new Map([["master", 350], ["client", 50]]), 100);
    expect(per.get("master")).toBe(2.5);
    expect(per.get("client")).toBe(0.5);
  });
});
