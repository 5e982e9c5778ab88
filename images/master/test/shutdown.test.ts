// Shutdown, as a process: dist/main.js against a real Mosquitto. Every step of
// shutdown is bounded (src/shutdown.ts): SIGTERM ends the process with code 0
// whatever its clients and its broker do, what was accepted is answered after
// a restart, and a step that had to be forced is named in the log. The
// failure condition is the test timeout, not a measured time.
import { connect, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io as connectSocket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { QueryView } from "../src/queryService";
import { FakeWorker } from "./helpers/fakeWorker";
import { loopbackMasterEnv, masterProcessMissing, startMaster, type MasterProcess } from "./helpers/master";
import { startMosquitto, type Broker } from "../../../launch/mosquitto";
import { eventually as waitUntil } from "../../../launch/ports";

const TOKEN = "shutdown-token-5c1e";

const missing = masterProcessMissing();
if (missing) console.warn(`SKIPPED shutdown: ${missing}`);

/** A raw connection to the web port that records whether the master closed it. */
function rawConnection(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
    socket.on("error", () => {});
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    socket.once("connect", () => resolve({ socket, received: () => text, closed }));
    socket.once("error", reject);
  });
}

describe.skipIf(missing !== undefined)("shutdown of the master process", () => {
  let dir: string;
  let broker: Broker;
  let env: Record<string, string>;
  let base: string;
  let httpPort: number;
  let grpcAddress: string;
  let master: MasterProcess | undefined;
  const workers: FakeWorker[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "master-shutdown-"));
    broker = await startMosquitto();
    ({ env, base, httpPort, grpcAddress } = await loopbackMasterEnv(dir, broker.port, TOKEN, { LEASE_MS: "3000", HEARTBEAT_TIMEOUT_MS: "2000", RATE_LIMIT_PER_MINUTE: "0" }));
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop().catch(() => {});
    if (master) await master.kill("SIGKILL");
    master = undefined;
    // A failed test may leave the broker stopped: the next one gets it back.
    if (!broker.process.isRunning) broker = await startMosquitto(broker.port);
  });

  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function submit(query: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${base}/api/queries`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-id": "shutdown", ...headers },
      body: JSON.stringify({ query }),
    });
  }

  async function startWorker(id: string): Promise<FakeWorker> {
    const worker = new FakeWorker({ id, brokerPort: broker.port, grpcAddress, token: TOKEN, node: "vm-stop" });
    workers.push(worker);
    await worker.start();
    await waitUntil(`${id} idle`, async () => {
      const list = (await (await fetch(`${base}/api/workers`)).json()) as { id: string; status: string }[];
      return list.find((w) => w.id === id && w.status === "idle");
    });
    return worker;
  }

  /** Restarts the master on the same database (with a new worker, if named) and waits for the query's answer. */
  async function answeredAfterRestart(id: string, workerId?: string): Promise<QueryView> {
    master = await startMaster(env);
    if (workerId !== undefined) await startWorker(workerId);
    const res = await fetch(`${base}/api/queries/${id}?wait=20000`);
    return (await res.json()) as QueryView;
  }

  it(
    "with a long-poll, a Prefer: wait POST, a Socket.IO page, a keep-alive connection and no broker: answers them, exits 0, and the query is answered after a restart",
    async () => {
      master = await startMaster(env);
      const accepted = await submit("asked before SIGTERM");
      expect(accepted.status).toBe(202);
      const { id } = (await accepted.json()) as { id: string };

      const answer = async (reply: Promise<Response>): Promise<readonly [number | string, unknown]> =>
        reply.then(async (r) => [r.status, await r.json()] as const).catch((error: unknown) => ["no answer", String(error)] as const);
      const longPoll = answer(fetch(`${base}/api/queries/${id}?wait=30000`));
      const preferWait = answer(submit("asked with Prefer: wait", { prefer: "wait=30" }));
      const page = connectSocket(base, { auth: { sessionId: "shutdown" }, transports: ["websocket"], reconnection: false, forceNew: true });
      await new Promise<void>((resolve) => page.once("connect", () => resolve()));
      const pageGone = new Promise<void>((resolve) => page.once("disconnect", () => resolve()));
      const keepAlive = await rawConnection(httpPort);
      keepAlive.socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
      await waitUntil("the keep-alive answer", () => (keepAlive.received().includes("\r\n\r\n") ? true : undefined));
      // Both requests are waiting in the master before it is told to stop.
      await waitUntil("the long-polls to be waiting", async () => {
        const metrics = await (await fetch(`${base}/metrics`)).text();
        return /aiswarm_queries\{state="queued"\} 2/.test(metrics) ? true : undefined;
      });

      await broker.stop();
      await waitUntil("healthz to say the broker is gone", async () => (((await (await fetch(`${base}/healthz`)).json()) as { mqtt: boolean }).mqtt ? undefined : true));
      const stopping = master;
      master = undefined;
      expect(await stopping.kill("SIGTERM")).toBe(0);

      // Everyone was answered or let go, nobody was left hanging.
      expect(await longPoll).toEqual([200, expect.objectContaining({ id, status: "queued" })]);
      expect(await preferWait).toEqual([202, expect.objectContaining({ status: "queued" })]);
      await pageGone;
      await keepAlive.closed;
      const said = stopping.logs.map((l) => l.msg);
      expect(said).toContain("shutting down");
      expect(said).toContain("stopped");
      expect(said).not.toContain("shutdown step timed out; forced it");

      broker = await startMosquitto(broker.port);
      expect(await answeredAfterRestart(id, "ts-stop-1")).toMatchObject({ status: "done", answer: "echo: asked before SIGTERM" });
    },
    60_000,
  );

  it(
    "with a request that never finishes arriving and a broker that stopped answering: forces those steps, names them, exits 0, and loses nothing",
    async () => {
      master = await startMaster(env);
      await startWorker("ts-stop-2");
      // A client that sends half a request and then nothing: it never goes idle.
      const halfSent = await rawConnection(httpPort);
      halfSent.socket.write(`POST /api/queries HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"que`);

      // The broker hangs without closing anything (a frozen VM, a lost network):
      // the task for the idle worker goes out and is never acknowledged.
      const pid = broker.process.pid as number;
      process.kill(pid, "SIGSTOP");
      try {
        const accepted = await submit("in flight at SIGTERM");
        expect(accepted.status).toBe(202);
        const { id } = (await accepted.json()) as { id: string };
        const stopping = master;
        master = undefined;
        expect(await stopping.kill("SIGTERM")).toBe(0);
        await halfSent.closed;
        const forced = stopping.logs.filter((l) => l.msg === "shutdown step timed out; forced it").map((l) => l.step);
        expect(forced.sort()).toEqual(["mqtt", "web"]);
        expect(stopping.logs.map((l) => l.msg)).toContain("stopped");

        // The lease was stored before the task went out: after a restart the
        // worker answers it (the task arrives late, or again once the lease expires).
        process.kill(pid, "SIGCONT");
        expect(await answeredAfterRestart(id)).toMatchObject({ status: "done", answer: "echo: in flight at SIGTERM", worker: { id: "ts-stop-2" } });
      } finally {
        process.kill(pid, "SIGCONT");
      }
    },
    60_000,
  );
});
