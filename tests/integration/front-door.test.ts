/**
 * The master's front door closed, end to end on loopback: the real built master
 * serving HTTPS with a certificate made by the stack's own script (webTlsScript
 * with the real openssl: see issueWebCertificate), a web token, a real
 * Mosquitto and two real Python workers. A Node client that trusts only the stack's CA signs in, asks
 * with the bearer token and gets answers; the hostile-input cases of the
 * system suite that concern the HTTP API still hold behind the token.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMosquitto, type Broker } from "../../launch/mosquitto";
import { issueWebCertificate, masterMissing, opensslMissing, startMaster, startWorker, workerMissing, type Master, type StartedWorker } from "../../launch/system";
import { getQuery, listWorkers, postQuery, request, signIn, submit, waitForAnswer, waitForIdleWorkers, type ApiOptions, type QueryView } from "../../launch/api";
import { eventually, sleep } from "../../launch/ports";
import { stopAll } from "../../launch/processes";
import { MqttSpy } from "../support/mqtt-spy";
import { startFakeGemini, type FakeLlm } from "../support/fake-llm";

const WEB_TOKEN = `web-token-${process.pid}-0f3c9a7d51e2`;
const missing = masterMissing() ?? workerMissing("python") ?? opensslMissing();
if (missing !== undefined) console.warn(`[skip] front door integration tests: ${missing}`);

describe.skipIf(missing !== undefined)("front door: HTTPS and a token on the real master", () => {
  let dir: string;
  let ca: string;
  let broker: Broker;
  let master: Master;
  let workers: StartedWorker[];
  let gemini: FakeLlm;
  let api: ApiOptions;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ai-swarm-front-door-"));
    const issued = issueWebCertificate(dir);
    ca = issued.ca;
    expect(readFileSync(issued.certFile, "utf8")).toMatch(/^-----BEGIN CERTIFICATE-----\n[^]*-----END CERTIFICATE-----\n$/);
    expect(readFileSync(issued.keyFile, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // As Docker secrets would be: files.
    const files = { cert: issued.certFile, key: issued.keyFile, token: path.join(dir, "web_token") };
    writeFileSync(files.token, `${WEB_TOKEN}\n`, { mode: 0o600 });
    gemini = await startFakeGemini();
    broker = await startMosquitto();
    master = await startMaster({
      mqttPort: broker.port,
      env: { WEB_TLS_CERT_FILE: files.cert, WEB_TLS_KEY_FILE: files.key, WEB_AUTH_TOKEN_FILE: files.token },
    });
    expect(master.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    api = { token: WEB_TOKEN, ca };
    workers = [1, 2].map((n) =>
      startWorker("python", {
        mqttPort: broker.port,
        grpcAddr: master.grpcAddr,
        node: `vm-door-${n}`,
        env: { SIMULATED_WORK_MS: "200", LLM_PROVIDER: "auto", GEMINI_BASE_URL: gemini.baseUrl },
      }),
    );
    await waitForIdleWorkers(master.url, workers.map((w) => w.id), 60_000, api);
  });

  afterAll(async () => {
    sockets.forEach((s) => s.close());
    await stopAll();
    await gemini?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("is HTTPS that only a client trusting the stack's CA accepts", async () => {
    const handshake = (trust: string | undefined): Promise<number> =>
      new Promise((resolve, reject) => {
        httpsGet(`${master.url}/healthz`, { ca: trust, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on("error", reject);
      });
    expect(await handshake(ca)).toBe(200);
    await expect(handshake(undefined)).rejects.toThrow(/self-signed|unable to (verify|get)/);
    const page = await request(`${master.url}/`, {}, { ca });
    expect(page.status).toBe(200);
    expect(page.headers["strict-transport-security"]).toBe("max-age=31536000");
    expect(page.headers["content-security-policy"]).toContain("default-src 'self'");
  });

  it("never serves the page over plain HTTP on the same port", async () => {
    const plain = `http://127.0.0.1:${master.httpPort}`;
    const page = await request(`${plain}/`, {});
    expect(page.status).toBe(308);
    expect(page.headers.location).toBe(`${master.url}/`);
    expect(page.text).not.toContain("<html");
    const post = await request(`${plain}/api/queries`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"query":"in clear"}' }, { token: WEB_TOKEN });
    expect(post.status).toBe(400);
    expect(JSON.parse(post.text)).toEqual({ error: `use ${master.url}/api/queries (this port speaks HTTPS only)` });
    expect((await request(`${plain}/healthz`, {})).status).toBe(200);
  });

  it("signs in, asks with the bearer token and gets an answer from a real worker", async () => {
    const cookie = await signIn(master.url, WEB_TOKEN, { ca });
    expect(cookie).toMatch(/^aiswarm_session=v1\./);
    expect(JSON.parse((await request(`${master.url}/api/session`, { headers: { cookie } }, { ca })).text)).toEqual({ auth: "token", signedIn: true });
    await expect(signIn(master.url, "not-the-web-token-at-all", { ca })).rejects.toThrow(/HTTP 401/);

    // As in the README: one request, the answer in the response.
    const asked = await request(
      `${master.url}/api/queries`,
      { method: "POST", headers: { "content-type": "application/json", prefer: "wait=10" }, body: JSON.stringify({ query: "What is Docker Swarm?" }) },
      api,
    );
    expect(asked.status).toBe(200);
    const answer = JSON.parse(asked.text) as QueryView;
    expect(answer).toMatchObject({ status: "done", provider: "offline", worker: { language: "python" } });
    expect(answer.answer).toMatch(/^\[offline\]/);
    expect(["vm-door-1", "vm-door-2"]).toContain(answer.worker?.node);

    // Sessions: a bearer client's own X-Session-Id, on POST and GET.
    const mine = { ...api, sessionId: "door-batch" };
    const id = await submit(master.url, "a query of door-batch", undefined, mine);
    expect((await waitForAnswer(master.url, id, 60_000, mine)).status).toBe("done");
    await expect(getQuery(master.url, id, 0, api)).rejects.toThrow(/HTTP 404/);
    expect((await request(`${master.url}/api/queries/${id}`, { headers: { cookie } }, { ca })).status).toBe(404);

    // Without the token: nothing.
    expect((await request(`${master.url}/api/workers`, {}, { ca })).status).toBe(401);
    expect((await postQuery(master.url, { query: "no token" }, { ca })).status).toBe(401);
    await expect(listWorkers(master.url, { ca, token: "wrong-web-token-0000" })).rejects.toThrow(/HTTP 401/);
    expect((await request(`${master.url}/metrics`, {}, { ca })).status).toBe(401);
    expect((await request(`${master.url}/metrics`, {}, api)).text).toContain("aiswarm_queue_depth");
  });

  it("a signed-in socket over WSS gets its own answers; one without a session is refused", async () => {
    const cookie = await signIn(master.url, WEB_TOKEN, { ca });
    const connect = (headers: Record<string, string>): Socket => {
      const socket = io(master.url, { ca, extraHeaders: headers, transports: ["websocket"], reconnection: false, forceNew: true });
      sockets.push(socket);
      return socket;
    };
    const refused = connect({});
    expect(await new Promise((resolve) => refused.once("connect_error", (err: Error) => resolve(err.message)))).toBe("unauthorized");
    const socket = connect({ cookie });
    const updates: QueryView[] = [];
    socket.on("query:update", (view: QueryView) => updates.push(view));
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    const ack = (await socket.timeout(10_000).emitWithAck("query", { query: "over wss" })) as { ok: boolean; id: string };
    expect(ack.ok).toBe(true);
    const done = await eventually("the answer over the socket", () => updates.find((u) => u.id === ack.id && u.status === "done"), 60_000);
    expect(done.answer).toMatch(/^\[offline\]/);
    // A bearer client's query in the meantime never reaches this page.
    const other = await submit(master.url, "not for the page", undefined, api);
    await waitForAnswer(master.url, other, 60_000, api);
    await sleep(300);
    expect(updates.some((u) => u.id === other)).toBe(false);
  });

  it("hostile HTTP input behind the token still gets clear refusals while the master keeps serving", async () => {
    const post = (body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> =>
      request(`${master.url}/api/queries`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body }, api);
    const cases: [string, Record<string, string>, number, RegExp][] = [
      ["{query:", {}, 400, /not valid JSON/],
      ["[1,2,3]", {}, 400, /JSON object/],
      ['{"query":42}', {}, 400, /query must be a string/],
      ['{"query":"  "}', {}, 400, /query is empty/],
      [JSON.stringify({ query: "x".repeat(5000) }), {}, 400, /limit is 4000/],
      [JSON.stringify({ query: "x".repeat(70_000) }), {}, 413, /65536 bytes/],
      ['{"query":"hi"}', { "x-session-id": "no spaces allowed" }, 400, /x-session-id/],
      ['{"query":"hi"}', { origin: "https://evil.example" }, 403, /cross-origin/],
    ];
    for (const [body, headers, status, error] of cases) {
      const reply = await post(body, headers);
      expect(reply.status, body.slice(0, 40)).toBe(status);
      expect(reply.text).toMatch(error);
    }
    // The token is not accepted from a URL, a forged cookie or another scheme.
    expect((await request(`${master.url}/api/workers?token=${WEB_TOKEN}`, {}, { ca })).status).toBe(401);
    expect((await request(`${master.url}/api/workers`, { headers: { cookie: "aiswarm_session=v1.AAAAAAAAAAAAAAAAAAAAAA.99999999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } }, { ca })).status).toBe(401);
    expect((await request(`${master.url}/api/workers`, { headers: { authorization: `Basic ${WEB_TOKEN}` } }, { ca })).status).toBe(401);
    // An HTML query is stored and answered as text.
    const hostile = "<img src=x onerror=alert(1)>";
    const answer = await waitForAnswer(master.url, await submit(master.url, hostile, undefined, api), 60_000, api);
    expect(answer).toMatchObject({ status: "done", query: hostile });
    expect(master.process.isRunning).toBe(true);
  });

  it("keeps the per-query API key and the web token off the broker, the results, the logs and the disk", async () => {
    const spy = await MqttSpy.connect(broker.port);
    const userKey = `user-key-${Date.now()}-front-door`;
    try {
      const withKey = await waitForAnswer(master.url, await submit(master.url, "use my key behind the door", userKey, api), 60_000, api);
      expect(withKey).toMatchObject({ status: "done", provider: "gemini" });
      expect(gemini.requests.at(-1)?.headers["x-goog-api-key"]).toBe(userKey);
      expect(spy.messages.length).toBeGreaterThan(0);
      for (const secret of [userKey, WEB_TOKEN]) {
        expect(spy.everythingSeen()).not.toContain(secret);
        expect(JSON.stringify(withKey)).not.toContain(secret);
        expect(master.process.logs).not.toContain(secret);
        for (const worker of workers) expect(worker.process.logs).not.toContain(secret);
        for (const file of [master.dbPath, `${master.dbPath}-wal`].filter((f) => existsSync(f))) {
          expect(readFileSync(file).toString("latin1")).not.toContain(secret);
        }
      }
    } finally {
      await spy.close();
    }
  });
});
