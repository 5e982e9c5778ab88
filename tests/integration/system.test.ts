/**
 * The query system end to end on loopback: a real Mosquitto, the real master
 * process and two real Python workers.
 */
import { existsSync, readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { io, type Socket } from "socket.io-client";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { etcdMasterEnv, etcdMissing, startEtcd, type EtcdCluster } from "../../launch/etcd";
import { startMosquitto, type Broker } from "../../launch/mosquitto";
import { masterMissing, startMaster, startWorker, workerMissing, LAUNCH_GRPC_TOKEN, type Master, type StartedWorker } from "../../launch/system";
import { getQuery, listWorkers, postQuery, submit, waitForAnswer, waitForIdleWorkers, type QueryView } from "../../launch/api";
import { eventually, sleep } from "../../launch/ports";
import { stopAll } from "../../launch/processes";
import { MqttSpy } from "../support/mqtt-spy";
import { CallbackClient } from "../support/grpc-client";
import { startFakeGemini, type FakeLlm } from "../support/fake-llm";

const missing = masterMissing() ?? workerMissing("python");
if (missing !== undefined) console.warn(`[skip] system integration tests: ${missing}`);

describe.skipIf(missing !== undefined)("master with two Python workers", () => {
  let broker: Broker;
  let master: Master;
  let workers: StartedWorker[] = [];
  let gemini: FakeLlm;

  /** The master's environment for its store: SQLite (the launcher's default) or the etcd members. */
  let storeEnv: Record<string, string> = {};

  async function startSystem(simulatedWorkMs: number, extraWorkerEnv: Record<string, string> = {}): Promise<void> {
    master = await startMaster({ mqttPort: broker.port, until: "leading", env: storeEnv });
    workers = [1, 2].map((n) =>
      startWorker("python", {
        mqttPort: broker.port,
        grpcAddr: master.grpcAddr,
        node: `vm${n}`,
        env: { SIMULATED_WORK_MS: String(simulatedWorkMs), ...extraWorkerEnv },
      }),
    );
    await waitForIdleWorkers(master.url, workers.map((w) => w.id));
  }

  beforeAll(async () => {
    broker = await startMosquitto();
    gemini = await startFakeGemini();
  });

  // stopAll stops every process a test started, the broker included: each test gets a fresh one.
  afterEach(async () => {
    await stopAll();
    broker = await startMosquitto(broker.port);
  });

  afterAll(async () => {
    await stopAll();
    await gemini.close();
  });

  it("answers queries with the worker's language, node and timings", async () => {
    await startSystem(0);
    const ids = await Promise.all(["What is Docker Swarm?", "¿Qué es MQTT?", "Explain gRPC"].map((q) => submit(master.url, q)));
    const answers = await Promise.all(ids.map((id) => waitForAnswer(master.url, id)));
    for (const answer of answers) {
      expect(answer.status).toBe("done");
      expect(answer.answer).toMatch(/^\[offline\]/);
      expect(answer.provider).toBe("offline");
      expect(answer.worker?.language).toBe("python");
      expect(["vm1", "vm2"]).toContain(answer.worker?.node);
      expect(workers.map((w) => w.id)).toContain(answer.worker?.id);
      expect(answer.timings.completed_ms).toBeGreaterThanOrEqual(answer.timings.created_ms ?? Infinity);
      expect(answer.timings.finished_ms).toBeGreaterThan(0);
    }
    const registered = await listWorkers(master.url);
    expect(registered.filter((w) => w.language === "python").map((w) => w.node).sort()).toEqual(["vm1", "vm2"]);
  });

  it("honours SIMULATED_WORK_MS", async () => {
    await startSystem(1500);
    const started = Date.now();
    const answer = await waitForAnswer(master.url, await submit(master.url, "slow one"));
    expect(answer.status).toBe("done");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect((answer.timings.finished_ms ?? 0) - (answer.timings.started_ms ?? 0)).toBeGreaterThanOrEqual(1500);
  });

  it("still answers a query whose worker is SIGKILLed mid-task", async () => {
    await startSystem(4000);
    const id = await submit(master.url, "survive a dead worker");
    const assigned = await eventually("the query to be assigned", async () => {
      const view = await getQuery(master.url, id);
      return view.status === "assigned" && view.worker !== null ? view : undefined;
    });
    const victim = workers.find((w) => w.id === assigned.worker?.id);
    expect(victim).toBeDefined();
    victim?.process.signal("SIGKILL");

    const answer = await waitForAnswer(master.url, id, 60_000);
    expect(answer.status).toBe("done");
    expect(answer.worker?.id).not.toBe(victim?.id);
    expect(answer.attempts).toBeGreaterThanOrEqual(2);
  });

  const etcdSkip = etcdMissing();
  if (etcdSkip !== undefined) console.warn(`[skip] the restart test on etcd: ${etcdSkip}`);
  it.each(etcdSkip === undefined ? ["sqlite", "etcd"] : ["sqlite"])("answers every queued and in-flight query exactly once across a master SIGKILL and restart (store: %s)", async (store) => {
    let etcd: EtcdCluster | undefined;
    if (store === "etcd") {
      etcd = await startEtcd(3);
      storeEnv = etcdMasterEnv(etcd);
    }
    await startSystem(2500);
    const sessionId = `restart-session-${Date.now()}`;
    const doneEvents = new Map<string, Set<string>>();
    const socket: Socket = io(master.url, { auth: { sessionId }, transports: ["websocket"], reconnectionDelay: 200 });
    socket.on("query:update", (view: QueryView) => {
      if (view.status !== "done") return;
      const seen = doneEvents.get(view.id) ?? new Set<string>();
      seen.add(`${view.worker?.id}|${view.answer}`);
      doneEvents.set(view.id, seen);
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 6; i += 1) {
        const { status, body } = await postQuery(master.url, { query: `restart query ${i}` }, sessionId);
        expect(status).toBe(202);
        ids.push(String(body.id));
      }
      const before = await Promise.all(ids.map((id) => getQuery(master.url, id)));
      expect(before.filter((q) => q.status === "assigned")).toHaveLength(2);
      expect(before.filter((q) => q.status === "queued")).toHaveLength(4);

      master.process.signal("SIGKILL");
      await master.process.waitForExit();
      master = await startMaster({ mqttPort: broker.port, dbPath: master.dbPath, httpPort: master.httpPort, grpcPort: master.grpcPort, until: "leading", env: storeEnv });

      const answers = await Promise.all(ids.map((id) => waitForAnswer(master.url, id, 90_000)));
      expect(answers.map((a) => a.status)).toEqual(ids.map(() => "done"));
      // the restarted master committed them to the store under test
      expect(await (await fetch(`${master.url}/metrics`)).text()).toMatch(new RegExp(`^aiswarm_store_commit_seconds_count\\{engine="${store}"\\} [1-9]`, "m"));
      // One answer per query, seen by the page (which reconnected by itself), never replaced by a second one.
      await eventually("the page to see every answer", () => (ids.every((id) => doneEvents.has(id)) ? true : undefined));
      await sleep(3000);
      for (const id of ids) expect(doneEvents.get(id)?.size).toBe(1);
      const again = await Promise.all(ids.map((id) => getQuery(master.url, id)));
      expect(again.map((a) => `${a.worker?.id}|${a.answer}`)).toEqual(answers.map((a) => `${a.worker?.id}|${a.answer}`));
    } finally {
      socket.close();
      storeEnv = {};
      await master.process.stop(); // before the members: its last commit reaches them
      await etcd?.stop();
    }
  });

  it("drops malformed MQTT payloads and rejects a wrong gRPC token while it keeps serving", async () => {
    await startSystem(0);
    const spy = await MqttSpy.connect(broker.port);
    const client = new CallbackClient(master.grpcAddr);
    try {
      const junk: [string, string | Buffer][] = [
        ["ai-system/workers/evil/register", "not json"],
        ["ai-system/workers/evil/register", "[1,2,3]"],
        ["ai-system/workers/evil/register", JSON.stringify({ v: 2, type: "register", worker_id: "evil" })],
        ["ai-system/workers/evil/heartbeat", JSON.stringify({ v: 1, type: "heartbeat", worker_id: "evil", language: 7 })],
        ["ai-system/workers/evil/status", JSON.stringify({ v: 1, type: "status", worker_id: "someone-else", status: "idle", task_id: null, ts: 1 })],
        ["ai-system/workers/evil/status", JSON.stringify({ v: 1, type: "status", worker_id: "evil", status: "sleeping", task_id: null, ts: 1 })],
        ["ai-system/workers/evil/heartbeat", Buffer.alloc(200_000, 0x7b)],
        ["ai-system/logs", "\u0000\u0001\u0002"],
      ];
      for (const [topic, payload] of junk) await spy.publish(topic, payload);

      const noToken = await client.call("SendResult", { task_id: "q_x", worker_id: workers[0]?.id }, undefined);
      expect(noToken.code).toBe(GrpcStatus.UNAUTHENTICATED);
      const wrongToken = await client.call("SendResult", { task_id: "q_x", worker_id: workers[0]?.id }, "not-the-token");
      expect(wrongToken.code).toBe(GrpcStatus.UNAUTHENTICATED);
      const wrongCredential = await client.call("GetTaskCredential", { task_id: "q_x", worker_id: workers[0]?.id }, "not-the-token");
      expect(wrongCredential.code).toBe(GrpcStatus.UNAUTHENTICATED);
      const unknownTask = await client.call("SendResult", { task_id: "q_does_not_exist", worker_id: workers[0]?.id, answer: "x" }, LAUNCH_GRPC_TOKEN);
      expect(unknownTask.code).toBe(GrpcStatus.NOT_FOUND);

      const answer = await waitForAnswer(master.url, await submit(master.url, "still alive?"));
      expect(answer.status).toBe("done");
      expect(master.process.isRunning).toBe(true);
      expect((await listWorkers(master.url)).some((w) => w.id === "evil")).toBe(false);
      expect(master.process.logs).not.toContain("not-the-token");
    } finally {
      client.close();
      await spy.close();
    }
  });

  it("uses a per-query API key for that query only and never lets it reach the broker, a result, a log or the disk", async () => {
    await startSystem(0, { LLM_PROVIDER: "auto", GEMINI_BASE_URL: gemini.baseUrl });
    const spy = await MqttSpy.connect(broker.port);
    const userKey = `user-key-${Date.now()}-secret`;
    try {
      const withKey = await waitForAnswer(master.url, await submit(master.url, "use my key", userKey));
      expect(withKey.status).toBe("done");
      expect(withKey.provider).toBe("gemini");
      expect(withKey.answer).toContain("gemini-fake says:");
      const geminiCall = gemini.requests.at(-1);
      expect(geminiCall?.headers["x-goog-api-key"]).toBe(userKey);

      const withoutKey = await waitForAnswer(master.url, await submit(master.url, "no key this time"));
      expect(withoutKey.provider).toBe("offline");

      expect(spy.messages.length).toBeGreaterThan(0);
      expect(spy.everythingSeen()).not.toContain(userKey);
      expect(JSON.stringify(withKey)).not.toContain(userKey);
      expect(master.process.logs).not.toContain(userKey);
      for (const worker of workers) expect(worker.process.logs).not.toContain(userKey);
      // The database must be there to be checked; its WAL may already be checkpointed away.
      const files = [master.dbPath, ...[`${master.dbPath}-wal`].filter((f) => existsSync(f))];
      for (const file of files) expect(readFileSync(file).toString("latin1")).not.toContain(userKey);
    } finally {
      await spy.close();
    }
  });
});
