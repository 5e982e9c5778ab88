// The web port's front door on the real server (HttpApi + QueryService +
// SQLite on 127.0.0.1): access control with a token, sessions and their
// isolation, security headers, the Origin rule, the sign-in back-off, and TLS
// with a certificate made here by openssl (plain HTTP on the same port).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io as connectSocket, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QueryView } from "../src/queryService";
import { CONTENT_SECURITY_POLICY } from "../src/securityHeaders";
import { startApi, type TestApi } from "./helpers/api";
import { cookieFrom, request, type Reply, type RequestInit } from "./helpers/client";
import { builtMasterExists, runHealthcheck } from "./helpers/master";
import { eventually as waitUntil, freePort, sleep } from "../../../launch/ports";
import { makeCertificate, opensslMissing, type TestCertificate } from "./helpers/tls";

const TOKEN = "front-door-token-5f2a9c1e7b";
const HOUR = 3_600_000;
const auth = { token: TOKEN, sessionTtlMs: HOUR, metricsOpen: false };
const JSON_HEADERS = { "content-type": "application/json" };
const bearer = { authorization: `Bearer ${TOKEN}` };

function expectSecurityHeaders(reply: Reply, tls: boolean): void {
  expect(reply.headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
  expect(reply.headers["x-content-type-options"]).toBe("nosniff");
  expect(reply.headers["referrer-policy"]).toBe("no-referrer");
  expect(reply.headers["x-frame-options"]).toBe("DENY");
  expect(reply.headers["strict-transport-security"]).toBe(tls ? "max-age=31536000" : undefined);
}

/** A Socket.IO client for one test; closed by the suite. */
function socketFactory(base: () => string, ca?: () => string): { connect(opts?: SocketOpts): Socket; closeAll(): void } {
  const sockets: Socket[] = [];
  return {
    connect: (opts = {}) => {
      const headers: Record<string, string> = {};
      if (opts.cookie) headers.cookie = opts.cookie;
      if (opts.origin) headers.origin = opts.origin;
      const socket = connectSocket(base(), {
        auth: opts.sessionId === undefined ? {} : { sessionId: opts.sessionId },
        extraHeaders: headers,
        transports: [opts.transport ?? "websocket"],
        reconnection: false,
        forceNew: true,
        ca: ca?.(),
      });
      sockets.push(socket);
      return socket;
    },
    closeAll: () => sockets.forEach((s) => s.close()),
  };
}

interface SocketOpts {
  cookie?: string;
  origin?: string;
  sessionId?: string;
  transport?: "websocket" | "polling";
}

/** "connected", or the message of the connection error. */
function outcome(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once("connect", () => resolve("connected"));
    socket.once("connect_error", (err: Error) => resolve(err.message));
  });
}

/** The cookie with one character of its MAC changed. */
function tamper(cookie: string): string {
  const i = cookie.length - 10;
  return `${cookie.slice(0, i)}${cookie[i] === "A" ? "B" : "A"}${cookie.slice(i + 1)}`;
}

async function signIn(base: string, token = TOKEN, ca?: string): Promise<Reply> {
  return request(`${base}/api/session`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ token }), ca });
}

describe("access control on, plain HTTP", () => {
  let t: TestApi;
  let cookie: string;
  let otherCookie: string;
  const sockets = socketFactory(() => t.base);
  const get = (path: string, init: RequestInit = {}): Promise<Reply> => request(`${t.base}${path}`, init);
  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
    request(`${t.base}${path}`, { method: "POST", headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) });

  beforeAll(async () => {
    t = await startApi({ auth });
    cookie = cookieFrom(await signIn(t.base));
    otherCookie = cookieFrom(await signIn(t.base));
  });
  afterAll(async () => {
    sockets.closeAll();
    await t.close();
  });

  it("GET /api/session tells the page whether to show the sign-in form", async () => {
    expect((await get("/api/session")).json()).toEqual({ auth: "token", signedIn: false });
    expect((await get("/api/session", { headers: { cookie } })).json()).toEqual({ auth: "token", signedIn: true });
    expect((await get("/api/session", { headers: { cookie: `${cookie}x` } })).json()).toEqual({ auth: "token", signedIn: false });
  });

  it("signs in with the right token only: 204 and an HttpOnly, SameSite=Strict cookie (no Secure without TLS)", async () => {
    const wrong = await signIn(t.base, "not-the-token-at-all");
    expect(wrong.status).toBe(401);
    expect(wrong.json()).toEqual({ error: "wrong token" });
    expect(wrong.headers["set-cookie"]).toBeUndefined();
    const right = await signIn(t.base);
    expect(right.status).toBe(204);
    const setCookie = right.headers["set-cookie"]?.[0] ?? "";
    expect(setCookie).toMatch(/^aiswarm_session=v1\.[A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=3600$/);
    expect(setCookie).not.toContain(TOKEN);
    for (const body of ["{}", '{"token":42}', "[]", "not json"]) {
      expect((await request(`${t.base}/api/session`, { method: "POST", headers: JSON_HEADERS, body })).status).toBe(400);
    }
    expect((await request(`${t.base}/api/session?token=${TOKEN}`, { method: "POST" })).status).toBe(400);
  });

  it("REST needs a session cookie or the bearer token: 401 with WWW-Authenticate otherwise", async () => {
    for (const [method, path] of [["GET", "/api/workers"], ["GET", "/api/cluster"], ["POST", "/api/queries"], ["GET", "/api/queries/q_x"], ["GET", "/api/nothing"], ["GET", "/metrics"]] as const) {
      const attempts: Record<string, string>[] = [{}, { cookie: tamper(cookie) }, { cookie: "aiswarm_session=v1.forged" }, { authorization: `Basic ${TOKEN}` }];
      for (const headers of attempts) {
        const reply = await request(`${t.base}${path}`, { method, headers });
        expect(reply.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(reply.headers["www-authenticate"]).toBe("Bearer");
      }
      // ?token= is not a way in.
      expect((await request(`${t.base}${path}?token=${TOKEN}`, { method })).status).toBe(401);
    }
    expect((await get("/api/workers", { headers: bearer })).status).toBe(200);
    expect((await get("/api/workers", { headers: { cookie } })).status).toBe(200);
    expect((await get("/api/cluster", { headers: bearer })).status).toBe(200);
    expect((await get("/api/cluster", { headers: { cookie } })).json()).toMatchObject({ totals: { workers: expect.any(Number) } });
    const wrongBearer = await get("/api/workers", { headers: { authorization: "Bearer wrong-token-wrong-token" } });
    expect(wrongBearer.status).toBe(401);
    expect(wrongBearer.json()).toEqual({ error: "wrong token" });
    expect((await get("/api/workers", { headers: bearer })).status).toBe(200); // a success resets the back-off
  });

  it("/healthz, the page, its scripts and the Socket.IO client stay open", async () => {
    expect((await get("/healthz")).status).toBe(200);
    for (const path of ["/", "/app.js", "/style.css", "/socket.io/socket.io.js"]) expect((await get(path)).status, path).toBe(200);
  });

  it("/metrics needs the token (bearer or session cookie)", async () => {
    expect((await get("/metrics")).status).toBe(401);
    expect((await get("/metrics", { headers: bearer })).text).toContain("aiswarm_queue_depth");
    expect((await get("/metrics", { headers: { cookie } })).status).toBe(200);
  });

  it("a query belongs to its session: another session's id is a 404, for cookie and bearer clients", async () => {
    const mine = await post("/api/queries", { query: "cookie query" }, { cookie });
    expect(mine.status).toBe(202);
    const mineId = mine.json<{ id: string }>().id;
    const viaBearer = await post("/api/queries", { query: "bearer query" }, bearer);
    expect(viaBearer.status).toBe(202);
    const bearerId = viaBearer.json<{ id: string }>().id;
    const named = await post("/api/queries", { query: "named bearer query" }, { ...bearer, "x-session-id": "batch-7" });
    const namedId = named.json<{ id: string }>().id;
    const sessionId = cookie.split(".")[1] as string;

    const read = (id: string, headers: Record<string, string>): Promise<Reply> => get(`/api/queries/${id}`, { headers });
    expect((await read(mineId, { cookie })).json<QueryView>()).toMatchObject({ id: mineId, query: "cookie query" });
    expect((await read(bearerId, bearer)).json<QueryView>()).toMatchObject({ id: bearerId, query: "bearer query" });
    expect((await read(namedId, { ...bearer, "x-session-id": "batch-7" })).status).toBe(200);

    const refusals: [string, Record<string, string>][] = [
      [mineId, { cookie: otherCookie }],
      [mineId, bearer],
      [mineId, { ...bearer, "x-session-id": `web:${sessionId}` }], // a bearer client cannot name a web session
      [mineId, { ...bearer, "x-session-id": sessionId }],
      [bearerId, { cookie }],
      [bearerId, { ...bearer, "x-session-id": "batch-7" }],
      [namedId, bearer],
      [namedId, { cookie, "x-session-id": "batch-7" }], // a cookie client's X-Session-Id is ignored
    ];
    for (const [id, headers] of refusals) {
      const reply = await read(id, headers);
      expect(reply.status, `${id} with ${JSON.stringify(headers)}`).toBe(404);
      expect(reply.json()).toEqual({ error: `unknown query ${id}` });
    }
    expect((await read("q_unknown", bearer)).json()).toEqual({ error: "unknown query q_unknown" });
    expect(t.service.sessionOf(mineId)).toBe(`web:${sessionId}`);
    expect(t.service.sessionOf(bearerId)).toBe("api:default");
    expect(t.service.sessionOf(namedId)).toBe("api:batch-7");
    expect(t.service.sessionOf("q_unknown")).toBeUndefined();
  });

  it("refuses a POST or DELETE whose Origin is not the server's own; no Origin passes", async () => {
    for (const origin of ["http://evil.example", "null", `https://127.0.0.1:${t.port}`, `http://127.0.0.1:${t.port + 1}`]) {
      for (const [method, path] of [["POST", "/api/queries"], ["POST", "/api/session"], ["DELETE", "/api/session"]]) {
        const reply = await request(`${t.base}${path}`, { method, headers: { ...JSON_HEADERS, ...bearer, origin, cookie }, body: JSON.stringify({ query: "x", token: TOKEN }) });
        expect(reply.status, `${method} ${path} from ${origin}`).toBe(403);
        expect(reply.json()).toEqual({ error: "cross-origin request refused" });
      }
    }
    const own = await post("/api/queries", { query: "same origin" }, { ...bearer, origin: `http://127.0.0.1:${t.port}` });
    expect(own.status).toBe(202);
    expect((await post("/api/queries", { query: "no origin" }, bearer)).status).toBe(202);
  });

  it("puts the security headers on the page, the API, errors and Socket.IO's responses", async () => {
    const polling = await get("/socket.io/?EIO=4&transport=polling");
    expect(polling.status).toBe(200);
    const replies = [
      await get("/"),
      await get("/app.js"),
      await get("/api/workers", { headers: bearer }),
      await get("/api/workers"),
      await get("/nothing-here"),
      await get("/api/queries", { headers: bearer }),
      await get("/socket.io/socket.io.js"),
      polling,
      await get("/socket.io/?EIO=4&transport=polling", { headers: { origin: "http://evil.example" } }),
    ];
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 401, 404, 405, 200, 200, 403]);
    for (const reply of replies) expectSecurityHeaders(reply, false);
  });

  it("Socket.IO: refused without a valid session cookie, accepted with one", async () => {
    expect(await outcome(sockets.connect())).toBe("unauthorized");
    expect(await outcome(sockets.connect({ cookie: tamper(cookie) }))).toBe("unauthorized");
    expect(await outcome(sockets.connect({ sessionId: "anything" }))).toBe("unauthorized");
    expect(await outcome(sockets.connect({ cookie, origin: "http://evil.example" }))).not.toBe("connected");
    expect(await outcome(sockets.connect({ cookie, transport: "polling", origin: "http://evil.example" }))).not.toBe("connected");
    expect(await outcome(sockets.connect({ cookie, origin: `http://127.0.0.1:${t.port}` }))).toBe("connected");
    expect(await outcome(sockets.connect({ cookie, transport: "polling" }))).toBe("connected");
  });

  it("a socket only ever gets its own session's updates, whatever auth.sessionId it claims", async () => {
    const [a, b] = [cookie, otherCookie];
    const sessionA = `web:${a.split(".")[1]}`;
    const mine = sockets.connect({ cookie: a });
    // b claims a's session in the handshake: it is ignored, b's cookie decides.
    const intruder = sockets.connect({ cookie: b, sessionId: sessionA });
    const seen = { mine: [] as QueryView[], intruder: [] as QueryView[] };
    mine.on("query:update", (v: QueryView) => seen.mine.push(v));
    intruder.on("query:update", (v: QueryView) => seen.intruder.push(v));
    expect(await Promise.all([outcome(mine), outcome(intruder)])).toEqual(["connected", "connected"]);
    await sleep(200); // the replay of earlier queries
    const before = { mine: seen.mine.length };

    const ack = (await mine.timeout(5000).emitWithAck("query", { query: "only for a" })) as { ok: boolean; id: string };
    expect(ack.ok).toBe(true);
    const fromB = (await intruder.timeout(5000).emitWithAck("query", { query: "only for b" })) as { ok: boolean; id: string };
    const fromBearer = await post("/api/queries", { query: "bearer naming a" }, { ...bearer, "x-session-id": sessionA });
    await waitUntil("a's update", () => seen.mine.find((v) => v.id === ack.id));
    await waitUntil("b's update", () => seen.intruder.find((v) => v.id === fromB.id));
    await sleep(300);
    // Every update each socket saw, replay included, is of its own session's queries.
    const sessions = (views: QueryView[]): string[] => [...new Set(views.map((v) => t.service.sessionOf(v.id) ?? "?"))];
    expect(sessions(seen.mine)).toEqual([sessionA]);
    expect(sessions(seen.intruder)).toEqual([`web:${b.split(".")[1]}`]);
    expect(seen.mine.length).toBeGreaterThan(before.mine);
    expect(seen.mine.some((v) => v.id === fromB.id) || seen.intruder.some((v) => v.id === ack.id)).toBe(false);
    expect(t.service.sessionOf(fromBearer.json<{ id: string }>().id)).toBe(`api:${sessionA}`);
  });

  it("DELETE /api/session clears the cookie and closes that session's sockets", async () => {
    const session = cookieFrom(await signIn(t.base));
    const socket = sockets.connect({ cookie: session });
    const other = sockets.connect({ cookie });
    expect(await Promise.all([outcome(socket), outcome(other)])).toEqual(["connected", "connected"]);
    const reasons: string[] = [];
    socket.on("disconnect", (reason) => reasons.push(reason));
    const out = await request(`${t.base}/api/session`, { method: "DELETE", headers: { cookie: session } });
    expect(out.status).toBe(204);
    expect(out.headers["set-cookie"]?.[0]).toBe("aiswarm_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    await waitUntil("the socket closed", () => reasons[0]);
    expect(reasons).toEqual(["io server disconnect"]);
    expect(other.connected).toBe(true);
  });

  it("never logs the token", () => {
    expect(t.logs.join("")).not.toContain(TOKEN);
    expect(t.logs.some((l) => l.includes('"msg":"web sign-in"'))).toBe(true);
  });
});

describe("sign-in back-off over HTTP", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startApi({ auth: { ...auth, token: `${TOKEN}-other` } });
  });
  afterAll(() => t.close());

  it("after 5 wrong tokens from an address, every attempt gets 429 with Retry-After until the block ends", async () => {
    const token = `${TOKEN}-other`;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await signIn(t.base, `wrong-token-number-${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const blocked = await signIn(t.base, token);
    expect(blocked.status).toBe(429);
    expect(blocked.headers["retry-after"]).toBe("1");
    expect(blocked.json<{ error: string }>().error).toMatch(/try again in 1 s/);
    const blockedBearer = await request(`${t.base}/api/workers`, { headers: { authorization: `Bearer ${token}` } });
    expect(blockedBearer.status).toBe(429);
    await sleep(1100);
    expect((await signIn(t.base, "wrong-token-again-1")).status).toBe(401);
    const doubled = await signIn(t.base, token);
    expect(doubled.status).toBe(429);
    expect(doubled.headers["retry-after"]).toBe("2");
    await sleep(2100);
    expect((await signIn(t.base, token)).status).toBe(204);
    expect((await signIn(t.base, "wrong-token-after-reset")).status).toBe(401); // the success reset it
    expect((await signIn(t.base, token)).status).toBe(204);
  });

  it("a cookie made with another token is no session here", async () => {
    const elsewhere = await startApi({ auth });
    try {
      const foreign = cookieFrom(await signIn(elsewhere.base));
      expect((await request(`${t.base}/api/workers`, { headers: { cookie: foreign } })).status).toBe(401);
      // ... while a server with the same token (a restarted master) accepts it
      const restarted = await startApi({ auth: { ...auth, metricsOpen: true } });
      try {
        expect((await request(`${restarted.base}/api/workers`, { headers: { cookie: foreign } })).status).toBe(200);
      } finally {
        await restarted.close();
      }
    } finally {
      await elsewhere.close();
    }
  });
});

describe("WEB_METRICS_OPEN and session expiry", () => {
  let t: TestApi;
  const sockets = socketFactory(() => t.base);
  beforeAll(async () => {
    t = await startApi({ auth: { token: TOKEN, sessionTtlMs: 1500, metricsOpen: true } });
  });
  afterAll(async () => {
    sockets.closeAll();
    await t.close();
  });

  it("/metrics opens without the token; the API stays closed", async () => {
    expect((await request(`${t.base}/metrics`)).status).toBe(200);
    expect((await request(`${t.base}/api/workers`)).status).toBe(401);
  });

  it("an expired session is no session, and its socket is closed when it expires", async () => {
    const reply = await signIn(t.base);
    expect(reply.headers["set-cookie"]?.[0]).toMatch(/Max-Age=1$/);
    const cookie = cookieFrom(reply);
    const socket = sockets.connect({ cookie });
    expect(await outcome(socket)).toBe("connected");
    const reasons: string[] = [];
    socket.on("disconnect", (reason) => reasons.push(reason));
    await waitUntil("the socket closed at expiry", () => reasons[0], 5000);
    expect(reasons).toEqual(["io server disconnect"]);
    expect((await request(`${t.base}/api/workers`, { headers: { cookie } })).status).toBe(401);
    expect(await outcome(sockets.connect({ cookie }))).toBe("unauthorized");
  });
});

describe("access control off (the default)", () => {
  let t: TestApi;
  const sockets = socketFactory(() => t.base);
  beforeAll(async () => {
    t = await startApi();
  });
  afterAll(async () => {
    sockets.closeAll();
    await t.close();
  });

  it("says so, has nothing to sign in to, and keeps today's open API", async () => {
    expect((await request(`${t.base}/api/session`)).json()).toEqual({ auth: "off", signedIn: false });
    expect((await signIn(t.base)).status).toBe(400);
    expect((await request(`${t.base}/api/workers`)).status).toBe(200);
    expect((await request(`${t.base}/metrics`)).status).toBe(200);
  });

  it("still sends the security headers and refuses cross-origin writes and handshakes", async () => {
    for (const path of ["/", "/api/workers", "/nope", "/socket.io/socket.io.js", "/socket.io/?EIO=4&transport=polling"]) {
      expectSecurityHeaders(await request(`${t.base}${path}`), false);
    }
    const cross = await request(`${t.base}/api/queries`, { method: "POST", headers: { ...JSON_HEADERS, origin: "http://evil.example" }, body: '{"query":"x"}' });
    expect(cross.status).toBe(403);
    const polling = await request(`${t.base}/socket.io/?EIO=4&transport=polling`, { headers: { origin: "http://evil.example" } });
    expect(polling.status).toBe(403);
    expect(polling.text).toContain("cross-origin request refused");
    expect(await outcome(sockets.connect({ sessionId: "s-1", origin: "http://evil.example" }))).not.toBe("connected");
    expect(await outcome(sockets.connect({ sessionId: "s-1", origin: `http://127.0.0.1:${t.port}` }))).toBe("connected");
  });
});

const noOpenssl = opensslMissing();
if (noOpenssl) console.warn(`SKIPPED TLS front door tests: ${noOpenssl}`);

describe.skipIf(noOpenssl !== undefined)("TLS on the web port", () => {
  let dir: string;
  let cert: TestCertificate;
  let t: TestApi;
  const sockets = socketFactory(() => t.base, () => cert.cert);
  const plain = (): string => `http://127.0.0.1:${t.port}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "master-tls-"));
    cert = makeCertificate(dir);
    t = await startApi({ tls: { cert: cert.cert, key: cert.key }, auth });
  });
  afterAll(async () => {
    sockets.closeAll();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the page over HTTPS with HSTS, to a client trusting the certificate", async () => {
    const page = await request(`${t.base}/`, { ca: cert.cert });
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-testid="signin-form"');
    expectSecurityHeaders(page, true);
    expectSecurityHeaders(await request(`${t.base}/api/workers`, { ca: cert.cert }), true);
    expectSecurityHeaders(await request(`${t.base}/socket.io/?EIO=4&transport=polling`, { ca: cert.cert }), true);
    await expect(request(`${t.base}/`)).rejects.toThrow(/self-signed|unable to verify/);
  });

  it("plain HTTP on the same port never gets the page: 308 to https:// for GET/HEAD, 400 otherwise", async () => {
    const page = await request(`${plain()}/`);
    expect(page.status).toBe(308);
    expect(page.headers.location).toBe(`https://127.0.0.1:${t.port}/`);
    expect(page.text).toBe("");
    expectSecurityHeaders(page, false);
    const deep = await request(`${plain()}/api/queries/q_1?wait=5`, { method: "HEAD" });
    expect(deep.status).toBe(308);
    expect(deep.headers.location).toBe(`https://127.0.0.1:${t.port}/api/queries/q_1?wait=5`);
    for (const path of ["/app.js", "/api/workers", "/socket.io/socket.io.js", "/metrics"]) {
      const reply = await request(`${plain()}${path}`, { headers: bearer });
      expect(reply.status, path).toBe(308);
    }
    for (const method of ["POST", "DELETE", "PUT"]) {
      const reply = await request(`${plain()}/api/queries`, { method, headers: { ...JSON_HEADERS, ...bearer }, body: '{"query":"in clear text"}' });
      expect(reply.status).toBe(400);
      expect(reply.json()).toEqual({ error: `use https://127.0.0.1:${t.port}/api/queries (this port speaks HTTPS only)` });
    }
    expect(t.service.queriesByState().queued).toBe(0);
    const badHost = await request(`${plain()}/`, { headers: { host: "evil.example/x" } });
    expect(badHost.status).toBe(400);
  });

  it("answers GET /healthz over plain HTTP too (the container's health check)", async () => {
    const health = await request(`${plain()}/healthz`);
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ status: "ok", mqtt: true, db: true, leader: true, store: "sqlite" });
    expect((await request(`${t.base}/healthz`, { ca: cert.cert })).status).toBe(200);
  });

  it("signs in with a Secure cookie, and the cookie and the bearer token work over HTTPS and WSS", async () => {
    const reply = await signIn(t.base, TOKEN, cert.cert);
    expect(reply.status).toBe(204);
    expect(reply.headers["set-cookie"]?.[0]).toMatch(/; HttpOnly; SameSite=Strict; Path=\/; Max-Age=3600; Secure$/);
    const cookie = cookieFrom(reply);
    const posted = await request(`${t.base}/api/queries`, { method: "POST", ca: cert.cert, headers: { ...JSON_HEADERS, ...bearer }, body: '{"query":"over tls"}' });
    expect(posted.status).toBe(202);
    const id = posted.json<{ id: string }>().id;
    expect((await request(`${t.base}/api/queries/${id}`, { ca: cert.cert, headers: bearer })).json()).toMatchObject({ id, query: "over tls" });
    expect((await request(`${t.base}/api/queries/${id}`, { ca: cert.cert, headers: { cookie } })).status).toBe(404);
    // The Origin of an HTTPS page is https://...; http:// is another origin.
    const wrongScheme = await request(`${t.base}/api/session`, { method: "DELETE", ca: cert.cert, headers: { origin: `http://127.0.0.1:${t.port}` } });
    expect(wrongScheme.status).toBe(403);
    expect(await outcome(sockets.connect({ cookie }))).toBe("connected");
    expect(await outcome(sockets.connect({ cookie, transport: "polling", origin: `https://127.0.0.1:${t.port}` }))).toBe("connected");
    expect(await outcome(sockets.connect())).toBe("unauthorized");
    // The client address is the real one behind TLS (the back-off and rate limit key on it).
    expect(t.logs.find((l) => l.includes('"msg":"web sign-in"'))).toMatch(/"address":"(::ffff:)?127\.0\.0\.1"/);
  });

  it.skipIf(!builtMasterExists())("dist/healthcheck.js exits 0 against the TLS port and 1 when nothing answers", async () => {
    const run = runHealthcheck;
    expect(await run({ HTTP_PORT: String(t.port), WEB_TLS_CERT_FILE: cert.certFile })).toBe(0);
    expect(await run({ HTTP_PORT: String(t.port) })).toBe(0); // plain /healthz is answered too
    expect(await run({ HTTP_PORT: String(await freePort()), WEB_TLS_CERT_FILE: cert.certFile })).toBe(1);
  });
});
