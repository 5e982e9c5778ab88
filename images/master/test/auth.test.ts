// The token check, the stateless session cookie and the sign-in back-off (pure).
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bearerToken, readCookie, sessionCookieHeader, WebAuth } from "../src/auth";
import { SignInBackoff } from "../src/signInBackoff";

const TOKEN = "a-web-token-of-32-characters-xyz";
const HOUR = 3_600_000;
const T0 = 1_700_000_000_000;

describe("WebAuth: token", () => {
  it("accepts exactly the token", () => {
    const auth = new WebAuth(TOKEN);
    expect(auth.tokenMatches(TOKEN)).toBe(true);
    for (const wrong of ["", "a", TOKEN.slice(0, -1), `${TOKEN}z`, TOKEN.toUpperCase(), ` ${TOKEN}`]) {
      expect(auth.tokenMatches(wrong)).toBe(false);
    }
  });
});

describe("WebAuth: session cookie", () => {
  it("issues v1.<id>.<expires>.<mac> with a 16-byte random id and the documented MAC", () => {
    const auth = new WebAuth(TOKEN);
    const { session, cookie } = auth.issue(T0, 12 * HOUR);
    const [version, id, expires, mac] = cookie.split(".");
    expect(version).toBe("v1");
    expect(Buffer.from(id ?? "", "base64url")).toHaveLength(16);
    expect(id).toBe(session.id);
    expect(Number(expires)).toBe(T0 + 12 * HOUR);
    const key = createHmac("sha256", TOKEN).update("ai-swarm session cookie v1").digest();
    expect(mac).toBe(createHmac("sha256", key).update(`v1.${id}.${expires}`).digest("base64url"));
    expect(auth.issue(T0, HOUR).session.id).not.toBe(session.id);
  });

  it("verifies until it expires, and survives a restart (a new instance with the same token)", () => {
    const { cookie, session } = new WebAuth(TOKEN).issue(T0, HOUR);
    const restarted = new WebAuth(TOKEN);
    expect(restarted.verify(cookie, T0)).toEqual(session);
    expect(restarted.verify(cookie, T0 + HOUR - 1)).toEqual(session);
    expect(restarted.verify(cookie, T0 + HOUR)).toBeUndefined();
  });

  it("refuses forged, altered and malformed values", () => {
    const auth = new WebAuth(TOKEN);
    const { cookie } = auth.issue(T0, HOUR);
    const [, id, expires, mac] = cookie.split(".") as [string, string, string, string];
    const otherId = auth.issue(T0, HOUR).session.id;
    const flip = (s: string): string => (s[0] === "A" ? "B" : "A") + s.slice(1);
    for (const bad of [
      `v1.${id}.${Number(expires) + 1}.${mac}`, // a later expiry
      `v1.${otherId}.${expires}.${mac}`, // someone else's id
      `v1.${id}.${expires}.${flip(mac)}`,
      `v2.${id}.${expires}.${mac}`,
      `v1.${id}.${expires}`,
      `${cookie}.x`,
      `v1.${id}.${expires}.${mac.slice(0, -1)}`,
      "",
      "v1...",
      undefined,
    ]) {
      expect(auth.verify(bad, T0)).toBeUndefined();
    }
    // A MAC made with a guessed key (the token itself) is refused too.
    const guessed = createHmac("sha256", TOKEN).update(`v1.${id}.${expires}`).digest("base64url");
    expect(auth.verify(`v1.${id}.${expires}.${guessed}`, T0)).toBeUndefined();
  });

  it("a new token ends every session", () => {
    const { cookie } = new WebAuth(TOKEN).issue(T0, HOUR);
    expect(new WebAuth(`${TOKEN}-rotated`).verify(cookie, T0)).toBeUndefined();
  });
});

describe("header helpers", () => {
  it("reads one cookie among several", () => {
    expect(readCookie("a=1; aiswarm_session=v1.x; b=2", "aiswarm_session")).toBe("v1.x");
    expect(readCookie("xaiswarm_session=1", "aiswarm_session")).toBeUndefined();
    expect(readCookie(undefined, "aiswarm_session")).toBeUndefined();
  });

  it("reads a bearer token and nothing else", () => {
    expect(bearerToken(`Bearer ${TOKEN}`)).toBe(TOKEN);
    expect(bearerToken(`bearer ${TOKEN}`)).toBe(TOKEN);
    expect(bearerToken(`Basic ${TOKEN}`)).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it("builds the cookie with its flags, Secure only under TLS", () => {
    expect(sessionCookieHeader("v", 60, false)).toBe("aiswarm_session=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=60");
    expect(sessionCookieHeader("", 0, true)).toBe("aiswarm_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure");
  });
});

describe("SignInBackoff", () => {
  const A = "192.0.2.1";

  function fail(b: SignInBackoff, times: number, now: number): void {
    for (let i = 0; i < times; i++) b.failure(A, now);
  }

  it("lets 4 failures pass; the 5th blocks for 1 s, right or wrong", () => {
    const b = new SignInBackoff();
    fail(b, 4, T0);
    expect(b.check(A, T0)).toEqual({ ok: true });
    b.failure(A, T0);
    expect(b.check(A, T0)).toEqual({ ok: false, retryAfterS: 1 });
    expect(b.check("192.0.2.2", T0)).toEqual({ ok: true });
    expect(b.check(A, T0 + 999)).toEqual({ ok: false, retryAfterS: 1 });
    expect(b.check(A, T0 + 1000)).toEqual({ ok: true });
  });

  it("doubles the block with each further failure, up to 5 minutes", () => {
    const b = new SignInBackoff();
    let now = T0;
    fail(b, 5, now);
    const blocks: number[] = [];
    for (let i = 0; i < 12; i++) {
      const check = b.check(A, now);
      blocks.push(check.ok ? 0 : check.retryAfterS);
      now += (check.ok ? 0 : check.retryAfterS) * 1000;
      expect(b.check(A, now).ok).toBe(true);
      b.failure(A, now);
    }
    expect(blocks).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
  });

  it("a success forgets the address", () => {
    const b = new SignInBackoff();
    fail(b, 5, T0);
    b.success(A);
    expect(b.check(A, T0)).toEqual({ ok: true });
    fail(b, 4, T0);
    expect(b.check(A, T0).ok).toBe(true);
  });

  it("counts only failures within 10 minutes, and starts over after a quiet window", () => {
    const b = new SignInBackoff();
    fail(b, 4, T0);
    b.failure(A, T0 + 10 * 60_000); // the first four are out of the window
    expect(b.check(A, T0 + 10 * 60_000).ok).toBe(true);
    fail(b, 4, T0 + 10 * 60_000 + 1);
    const blockedAt = T0 + 10 * 60_000 + 1;
    expect(b.check(A, blockedAt)).toEqual({ ok: false, retryAfterS: 1 });
    b.failure(A, blockedAt + 1000);
    expect(b.check(A, blockedAt + 1000)).toEqual({ ok: false, retryAfterS: 2 });
    // After ten quiet minutes the doubling starts from 1 s again.
    const later = blockedAt + 1000 + 10 * 60_000;
    fail(b, 5, later);
    expect(b.check(A, later)).toEqual({ ok: false, retryAfterS: 1 });
  });

  it("stays bounded: prune drops quiet addresses, and a cap drops the oldest", () => {
    const b = new SignInBackoff(3);
    b.failure("a", T0);
    b.failure("b", T0 + 1);
    b.failure("c", T0 + 2);
    b.failure("d", T0 + 3);
    expect(b.size).toBe(3);
    fail(b, 5, T0 + 4); // A is now the newest, blocked
    expect(b.size).toBe(3);
    b.prune(T0 + 10 * 60_000 + 3);
    expect(b.size).toBe(1); // only A (failures within the window)
    b.prune(T0 + 20 * 60_000);
    expect(b.size).toBe(0);
  });
});
