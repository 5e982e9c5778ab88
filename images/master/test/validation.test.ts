import { describe, expect, it } from "vitest";
import { RateLimiter } from "../src/rateLimit";
import { cleanSessionId, validateQueryInput } from "../src/validation";

describe("query input validation", () => {
  it("accepts a query with and without an API key", () => {
    expect(validateQueryInput({ query: "hi" }, 10)).toEqual({ ok: true, value: { query: "hi" } });
    expect(validateQueryInput({ query: "hi", apiKey: "k" }, 10)).toEqual({ ok: true, value: { query: "hi", apiKey: "k" } });
    expect(validateQueryInput({ query: "hi", apiKey: "" }, 10)).toEqual({ ok: true, value: { query: "hi" } });
  });

  it.each([
    ["not an object", "hello", /JSON object/],
    ["an array", [1], /JSON object/],
    ["null", null, /JSON object/],
    ["no query", {}, /query is required/],
    ["query not a string", { query: 5 }, /query must be a string/],
    ["empty query", { query: "" }, /query is empty/],
    ["whitespace query", { query: " \n\t " }, /query is empty/],
    ["query over the limit", { query: "x".repeat(11) }, /too long: 11 characters, the limit is 10/],
    ["apiKey not a string", { query: "hi", apiKey: 42 }, /apiKey must be a string/],
    ["apiKey too long", { query: "hi", apiKey: "k".repeat(513) }, /apiKey is too long/],
  ])("refuses %s", (_name, body, error) => {
    const result = validateQueryInput(body, 10);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(error);
  });

  it("never echoes the API key in an error", () => {
    const result = validateQueryInput({ query: "hi", apiKey: "S".repeat(600) }, 10);
    expect(result.ok || result.error.includes("SSSS")).toBe(false);
  });

  it("accepts only short printable session ids", () => {
    expect(cleanSessionId("s-0123abcd")).toBe("s-0123abcd");
    expect(cleanSessionId("has space")).toBeUndefined();
    expect(cleanSessionId("x".repeat(129))).toBeUndefined();
    expect(cleanSessionId(42)).toBeUndefined();
  });
});

describe("rate limiter", () => {
  it("allows perMinute hits per client per minute, then refuses until the window ends", () => {
    const limiter = new RateLimiter(3);
    expect([0, 1, 2, 3].map((t) => limiter.allow("a", t))).toEqual([true, true, true, false]);
    expect(limiter.allow("b", 4)).toBe(true);
    expect(limiter.allow("a", 60_000)).toBe(true);
  });

  it("0 disables it", () => {
    const limiter = new RateLimiter(0);
    expect(Array.from({ length: 1000 }, () => limiter.allow("a", 0)).every(Boolean)).toBe(true);
  });
});
