import { describe, expect, it } from "vitest";
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
    const table = formatTable([{ fleet: "go", concurrency: 8, queries: 1000, seconds: 2, ...summarize([1, 2, 3]) }], true);
    expect(table).toContain("| go | 8 | 1000 | 500 | 2.00 | 3.00 | 3.0 |");
    expect(table.split("\n")[0]).toContain("queries/s");
  });
});
