import { describe, expect, it } from "vitest";
import { placeOf, selfTimes } from "../../bench/profile-top";

describe("bench/profile-top", () => {
  it("sums each node's self time from the samples and their time deltas (µs → ms)", () => {
    const self = selfTimes({
      nodes: [],
      samples: [1, 2, 1, 3, 1],
      timeDeltas: [1000, 500, 2000, 250, 1000],
    });
    expect([...self].sort((a, b) => a[0] - b[0])).toEqual([
      [1, 4],
      [2, 0.5],
      [3, 0.25],
    ]);
  });

  it("names a source by package, node: or its path from images/", () => {
    expect(placeOf("")).toBe("(native / V8)");
    expect(placeOf("node:internal/net")).toBe("node:");
    expect(placeOf("file:///work/x/images/master/node_modules/better-sqlite3/lib/database.js")).toBe("better-sqlite3");
    expect(placeOf("file:///work/x/images/master/node_modules/@grpc/grpc-js/build/src/server.js")).toBe("@grpc/grpc-js");
    expect(placeOf("file:///work/x/images/master/dist/store.js")).toBe("images/master/dist/store.js");
    expect(placeOf("file:///elsewhere/tool.js")).toBe("tool.js");
  });
});
