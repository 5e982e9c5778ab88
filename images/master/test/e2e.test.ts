// End to end: the built dist/main.js as a real process, a real Mosquitto on a
// free loopback port, and a small worker written here (real MQTT + real gRPC).
// Then SIGKILL the master with one query queued and one in flight, restart it
// on the same database, and check both are answered exactly once.
import mqtt from "mqtt";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QueryView } from "../src/queryService";
import { call, callbackClient, FakeWorker } from "./helpers/fakeWorker";
import { loopbackMasterEnv, masterProcessMissing, runHealthcheck, startMaster, type MasterProcess } from "./helpers/master";
import { startMosquitto, type Broker } from "../../../launch/mosquitto";
import { eventually as waitUntil } from "../../../launch/ports";

const TOKEN = "e2e-token-3b9d0c";
const USER_KEY = "e2e-user-key-a41f";

const missing = masterProcessMissing();
if (missing) console.warn(`SKIPPED e2e: ${missing}`);

describe.skipIf(missing !== undefined)("master process end to end", () => {
  let dir: string;
  let broker: Broker;
  let env: Record<string, string>;
  let base: string;
  let grpcAddress: string;
  let master: MasterProcess | undefined;
  const workers: FakeWorker[] = [];
  const outputs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "master-e2e-"));
    broker = await startMosquitto();
    ({ env, base, grpcAddress } = await loopbackMasterEnv(dir, broker.port, TOKEN, { LEASE_MS: "5000", HEARTBEAT_TIMEOUT_MS: "2000", LOG_LEVEL: "debug" }));
    master = await startMaster(env);
  });

  afterAll(async () => {
    for (const w of workers) await w.stop().catch(() => {});
    if (master) {
      outputs.push(master.output());
      await master.kill("SIGKILL");
    }
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startWorker(id: string, autoAnswer: boolean): Promise<FakeWorker> {
    const worker = new FakeWorker({ id, brokerPort: broker.port, grpcAddress, token: TOKEN, node: "vm-e2e", autoAnswer });
    workers.push(worker);
    await worker.start();
    await waitUntil(`${id} to be idle in /api/workers`, async () => {
      const list = (await (await fetch(`${base}/api/workers`)).json()) as { id: string; status: string }[];
      return list.find((w) => w.id === id && w.status === "idle");
    });
    return worker;
  }

  async function submit(query: string, apiKey?: string): Promise<{ id: string; position: number }> {
    const res = await fetch(`${base}/api/queries`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-id": "e2e" },
      body: JSON.stringify(apiKey ? { query, apiKey } : { query }),
    });
    expect(res.status).toBe(202);
    return (await res.json()) as { id: string; position: number };
  }

  async function waitDone(id: string): Promise<QueryView> {
    const res = await fetch(`${base}/api/queries/${id}?wait=15000`);
    return (await res.json()) as QueryView;
  }

  it("query in, task out over MQTT, result in over gRPC, answer out", async () => {
    const worker = await startWorker("ts-e2e-auto", true);
    const { id } = await submit("What is Docker Swarm?", USER_KEY);
    const view = await waitDone(id);
    expect(view).toMatchObject({
      status: "done",
      answer: "echo: What is Docker Swarm?",
      provider: "offline",
      worker: { id: "ts-e2e-auto", language: "typescript", node: "vm-e2e" },
      attempts: 1,
    });
    expect(view.timings.completed_ms).toBeGreaterThanOrEqual(view.timings.created_ms);
    // the task said a key exists; the key came over gRPC only
    expect(worker.tasks[0]).toMatchObject({ task_id: id, has_credential: true, lease_ms: 5000 });
    expect(worker.credentials).toEqual([{ present: true, api_key: USER_KEY }]);
    expect(JSON.stringify(worker.tasks)).not.toContain(USER_KEY);
    await worker.stop();
    await waitUntil("the worker offline", async () => {
      const list = (await (await fetch(`${base}/api/workers`)).json()) as { id: string; status: string }[];
      return list.find((w) => w.id === "ts-e2e-auto" && w.status === "offline");
    });
  });

  it("drops malformed MQTT payloads and wrong gRPC tokens, and keeps serving", async () => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: "e2e-garbage" });
    const p = "ai-system/workers/garbage-1";
    await client.publishAsync(`${p}/status`, "{not json", { qos: 1 });
    await client.publishAsync(`${p}/register`, JSON.stringify({ v: 1, type: "register", worker_id: "garbage-1" }), { qos: 1 });
    await client.publishAsync(`${p}/heartbeat`, JSON.stringify({ v: 2, type: "heartbeat" }), { qos: 1 });
    await client.publishAsync(`${p}/status`, Buffer.alloc(70_000, 0x7b), { qos: 1 });
    await client.endAsync();
    const m = master as MasterProcess;
    await waitUntil("4 drops logged", () => (m.logs.filter((l) => l.msg === "mqtt message dropped").length >= 4 ? true : undefined));
    expect(m.output()).not.toContain("{not json");

    const grpcClient = callbackClient(grpcAddress);
    const err = await call(grpcClient.SendResult, grpcClient, { task_id: "q_x", worker_id: "w" }, "not-the-token").catch(
      (e: grpc.ServiceError) => e,
    );
    grpcClient.close();
    expect((err as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(m.output()).not.toContain("not-the-token");
    expect(m.output()).not.toContain(TOKEN);
    expect(m.output()).not.toContain(USER_KEY);
  });

  it("after SIGKILL and a restart, a queued and an in-flight query are both answered exactly once", async () => {
    const worker = await startWorker("ts-e2e-hold", false);
    const inFlight = await submit("in flight");
    await waitUntil("the in-flight task at the worker", () => (worker.current?.task_id === inFlight.id ? true : undefined));
    const queued = await submit("queued");
    expect(queued.position).toBe(1);

    // Crash: no chance to flush or say goodbye.
    const first = master as MasterProcess;
    outputs.push(first.output());
    expect(await first.kill("SIGKILL")).toBe(null);
    master = await startMaster(env);
    expect(master.logs.find((l) => l.msg === "queries restored")).toMatchObject({ queued: 1, assigned: 1 });

    // The worker finishes the task it held through the crash; its heartbeats kept the lease.
    worker.autoAnswer = true;
    expect(await worker.answer()).toEqual({ accepted: true, duplicate: false });
    const [a, b] = [await waitDone(inFlight.id), await waitDone(queued.id)];
    expect(a).toMatchObject({ status: "done", answer: "echo: in flight", worker: { id: "ts-e2e-hold" } });
    expect(b).toMatchObject({ status: "done", answer: "echo: queued", worker: { id: "ts-e2e-hold" } });

    // Exactly once: each task reached the worker once and was accepted once.
    await new Promise((r) => setTimeout(r, 500));
    expect(worker.tasks.map((t) => t.task_id)).toEqual([inFlight.id, queued.id]);
    expect(worker.acks).toEqual([
      { accepted: true, duplicate: false },
      { accepted: true, duplicate: false },
    ]);
  });

  it("keeps accepting queries while the broker is down and answers them once it is back", async () => {
    const m = master as MasterProcess;
    const port = broker.port;
    await broker.stop();
    // Degraded, not failing: Docker's health check passes, so Swarm does not restart a master the broker left.
    await waitUntil("healthz to say the broker is gone", async () => {
      const health = await fetch(`${base}/healthz`);
      return health.status === 200 && ((await health.json()) as { status: string }).status === "degraded" ? true : undefined;
    });
    expect(await runHealthcheck(env)).toBe(0);
    const during = await submit("asked during the outage");
    expect((await (await fetch(`${base}/api/queries/${during.id}`)).json()) as QueryView).toMatchObject({ status: "queued" });
    broker = await startMosquitto(port);
    const view = await waitDone(during.id);
    expect(view).toMatchObject({ status: "done", answer: "echo: asked during the outage" });
    expect(m.logs.filter((l) => l.msg === "mqtt connected").length).toBeGreaterThanOrEqual(2);
    expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({ status: "ok", mqtt: true });
  });

  it("stops cleanly on SIGTERM with exit code 0", async () => {
    const m = master as MasterProcess;
    master = undefined;
    expect(await m.kill("SIGTERM")).toBe(0);
    expect(m.logs.map((l) => l.msg)).toContain("stopped");
  });
});
