// Access control of the web port: the token check and the session cookie. Pure
// apart from the random session id: the caller passes the time.
//
// The cookie is stateless, so sessions survive a restart of the master:
//   v1.<sessionId>.<expiresAtMs>.<mac>
// sessionId is 16 random bytes (base64url), mac = HMAC-SHA256(key, "v1.<sessionId>.<expiresAtMs>")
// and key = HMAC-SHA256(token, "ai-swarm session cookie v1"): a new token ends every session.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const SESSION_COOKIE = "aiswarm_session";

const COOKIE_PATTERN = /^v1\.([A-Za-z0-9_-]{22})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/;
/** Only for comparing tokens: both sides are hashed to 32 bytes first, so their lengths leak nothing. */
const COMPARE_KEY = "ai-swarm token comparison";

export interface Session {
  id: string;
  expiresAtMs: number;
}

export class WebAuth {
  private readonly tokenDigest: Buffer;
  private readonly cookieKey: Buffer;

  constructor(token: string) {
    this.tokenDigest = digest(token);
    this.cookieKey = createHmac("sha256", token).update("ai-swarm session cookie v1").digest();
  }

  /** Constant-time comparison with the configured token. */
  tokenMatches(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.tokenDigest);
  }

  /** A new session and its cookie value, valid for `ttlMs` from `now`. */
  issue(now: number, ttlMs: number, id = randomBytes(16).toString("base64url")): { session: Session; cookie: string } {
    const expiresAtMs = now + ttlMs;
    const payload = `v1.${id}.${expiresAtMs}`;
    return { session: { id, expiresAtMs }, cookie: `${payload}.${this.mac(payload)}` };
  }

  /** The session a cookie value stands for; undefined when it is malformed, forged or expired. */
  verify(cookie: string | undefined, now: number): Session | undefined {
    const match = cookie === undefined ? null : COOKIE_PATTERN.exec(cookie);
    if (!match) return undefined;
    const [, id = "", expires = "", mac = ""] = match;
    // Compared as text: decoding would let the unused bits of the last character vary.
    const expected = Buffer.from(this.mac(`v1.${id}.${expires}`));
    if (!timingSafeEqual(Buffer.from(mac), expected)) return undefined;
    const expiresAtMs = Number(expires);
    return expiresAtMs > now ? { id, expiresAtMs } : undefined;
  }

  private mac(payload: string): string {
    return createHmac("sha256", this.cookieKey).update(payload).digest("base64url");
  }
}

function digest(value: string): Buffer {
  return createHmac("sha256", COMPARE_KEY).update(value).digest();
}

/** The value of one cookie in a `Cookie` request header (the first one of that name). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The token of an `Authorization: Bearer <token>` header; undefined for any other form. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  return match ? match[1] : undefined;
}

/** `Set-Cookie` for a session (maxAgeS > 0) or for clearing it (maxAgeS = 0). */
export function sessionCookieHeader(value: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}${secure ? "; Secure" : ""}`;
}
