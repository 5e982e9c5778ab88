/**
 * One conformance suite for every worker language: each point of
 * docs/protocol.md checked against a real Mosquitto, the real master and one
 * worker process, with fake LLM servers on loopback. What needs a master that
 * misbehaves on demand is in worker-faults.test.ts; README.md maps each
 * scenario to its test.
 *
 * WORKER_LANGUAGES=python,go limits the languages (default: all three).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startMosquitto, type Broker } from "../../launch/mosquitto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { LAUNCH_GRPC_TOKEN, masterMissing, startMaster, startWorker, workerMissing, WORKER_LANGUAGES, type Master, type StartedWorker, type WorkerLanguage } from "../../launch/system";
import { getQuery, listWorkers, submit, waitForAnswer, waitForIdleWorkers } from "../../launch/api";
import { eventually, sleep } from "../../launch/ports";
import { MqttSpy } from "../support/mqtt-spy";
import { startFakeGemini, startFakeOpenAi, type FakeLlm } from "../support/fake-llm";
import { TcpProxy } from "../support/tcp-proxy";

const selected = (process.env.WORKER_LANGUAGES ?? WORKER_LANGUAGES.join(","))
  .split(",")
  .map((s) => s.trim())
  .filter((s): s is WorkerLanguage => (WORKER_LANGUAGES as readonly string[]).includes(s));

for (const language of selected) {
  const missing = masterMissing() ?? workerMissing(language);
  if (missing !== undefined) console.warn(`[skip] ${language} conformance: ${missing}`);

  // The languages run side by side (each has its own broker and master); the tests of one language run in turn.
  describe.skipIf(missing !== undefined).concurrent(`${language} worker conformance`, () => {
    let broker: Broker;
    let master: Master;
    let spy: MqttSpy;
    let gemini: FakeLlm;
    let openai: FakeLlm;
    let worker: StartedWorker | undefined;

    /** Starts the worker under test (one at a time) and waits until the master sees it idle. */
    async function start(env: Record<string, string> = {}, node = `node-${language}`): Promise<StartedWorker> {
      worker = startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr, node, env });
      await waitForIdleWorkers(master.url, [worker.id], 60_000);
      return worker;
    }

    function published(kind: "register" | "heartbeat" | "status" | "tasks", id: string): Record<string, unknown>[] {
      return spy.json(new RegExp(`^ai-system/workers/${id.replace(/[.]/g, "\\.")}/${kind}$`));
    }

    beforeAll(async () => {
      broker = await startMosquitto();
      master = await startMaster({ mqttPort: broker.port, env: { LEASE_MS: "6000", HEARTBEAT_TIMEOUT_MS: "3000" } });
      spy = await MqttSpy.connect(broker.port);
      gemini = await startFakeGemini();
      openai = await startFakeOpenAi();
    });

    afterEach(async () => {
      await worker?.process.stop(8_000);
      worker = undefined;
      gemini.behaviour = "ok";
      openai.behaviour = "ok";
    });

    afterAll(async () => {
      await spy?.close();
      await master?.process.stop();
      await broker?.stop();
      await gemini?.close();
      await openai?.close();
    });

    it.sequential("registers with its id, language and node, then heartbeats with its identity", async () => {
      const healthFile = path.join(mkdtempSync(path.join(tmpdir(), "ai-swarm-health-")), "health");
      const w = await start({ HEALTH_FILE: healthFile }, "vm-conformance");
      const registration = published("register", w.id).at(-1);
      expect(registration).toMatchObject({ v: 1, type: "register", worker_id: w.id, language, node: "vm-conformance", provider: "offline" });
      expect(typeof registration?.ts).toBe("number");
      const heartbeats = await eventually("two heartbeats", () => {
        const seen = published("heartbeat", w.id);
        return seen.length >= 2 ? seen : undefined;
      }, 10_000);
      expect(heartbeats.at(-1)).toMatchObject({ v: 1, type: "heartbeat", worker_id: w.id, language, node: "vm-conformance", status: "idle", task_id: null });
      expect(published("status", w.id).some((s) => s.status === "idle")).toBe(true);
      // Every heartbeat writes the time to HEALTH_FILE (the image's HEALTHCHECK reads it).
      expect(readFileSync(healthFile, "utf8").trim()).toMatch(/^\d+$/);
      // The start line names the worker, its language, node and provider mode, and no secret.
      const logs = w.process.logs;
      for (const part of [w.id, `language=${language}`, "node=vm-conformance", "provider_mode=offline"]) expect(logs).toContain(part);
      expect(logs).not.toContain(LAUNCH_GRPC_TOKEN);
    });

    it.sequential("publishes its last will (offline) when SIGKILLed", async () => {
      const w = await start();
      w.process.signal("SIGKILL");
      const offline = await eventually("the last will", () => published("status", w.id).find((s) => s.status === "offline"), 10_000);
      expect(offline).toMatchObject({ v: 1, type: "status", worker_id: w.id, task_id: null });
    });

    it.sequential("turns a task into a result for the same task id, with the offline answer", async () => {
      const w = await start({ LLM_PROVIDER: "auto" });
      const id = await submit(master.url, "What is a Docker Swarm overlay network?");
      const answer = await waitForAnswer(master.url, id, 30_000);
      expect(answer).toMatchObject({ id, status: "done", provider: "offline", worker: { id: w.id, language, node: `node-${language}` } });
      expect(answer.answer).toMatch(/^\[offline\]/);
      expect(answer.answer?.toLowerCase()).toContain("offline");
      const task = published("tasks", w.id).find((t) => t.task_id === id);
      expect(task).toMatchObject({ v: 1, type: "task", query: "What is a Docker Swarm overlay network?", has_credential: false });
      // Neither taking the task nor its accepted result publishes a status (docs/protocol.md rule 2):
      // the only one is the idle after connecting.
      await sleep(300);
      expect(published("status", w.id)).toEqual([expect.objectContaining({ status: "idle", task_id: null })]);
    });

    it.sequential("is freed by each accepted result: a burst is served back to back, with no status and no rejection", async () => {
      const w = await start();
      const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(master.url, `burst ${i}`)));
      const answers = await Promise.all(ids.map((id) => waitForAnswer(master.url, id, 30_000)));
      expect(answers.map((a) => [a.status, a.worker?.id])).toEqual(ids.map(() => ["done", w.id]));
      await sleep(300);
      expect(published("status", w.id).filter((s) => s.rejected_task_id !== undefined || s.status !== "idle")).toEqual([]);
      expect(published("status", w.id)).toHaveLength(1); // the idle after connecting
    });

    it.sequential("honours SIMULATED_WORK_MS, and its heartbeats say busy with the task meanwhile", async () => {
      const w = await start({ SIMULATED_WORK_MS: "1500" });
      const before = Date.now();
      const answer = await waitForAnswer(master.url, await submit(master.url, "take your time"), 30_000);
      expect(answer.status).toBe("done");
      expect(published("heartbeat", w.id).some((h) => h.status === "busy" && h.task_id === answer.id)).toBe(true);
      expect(Date.now() - before).toBeGreaterThanOrEqual(1500);
      expect((answer.timings.finished_ms ?? 0) - (answer.timings.received_ms ?? 0)).toBeGreaterThanOrEqual(1500);
    });

    it.sequential("publishes its task events on P/logs at LOG_LEVEL=info and none at LOG_LEVEL=warn", async () => {
      const events = (id: string): Record<string, unknown>[] => spy.json(/^ai-system\/logs$/).filter((e) => e.source === id);
      const chatty = await start({ LOG_LEVEL: "info" });
      const first = await waitForAnswer(master.url, await submit(master.url, "log this task"), 30_000);
      const seen = await eventually("the task's info events", () => {
        const mine = events(chatty.id).filter((e) => e.task_id === first.id && e.level === "info");
        return mine.length >= 2 ? mine : undefined;
      }, 10_000);
      expect(seen.map((e) => e.message)).toEqual([`task ${first.id} started`, expect.stringMatching(new RegExp(`^task ${first.id} done in `))]);
      expect(seen[0]).toMatchObject({ v: 1, type: "log", source: chatty.id });
      await chatty.process.stop(8_000);

      const quiet = await start({ LOG_LEVEL: "warn" });
      const second = await waitForAnswer(master.url, await submit(master.url, "do not log this task"), 30_000);
      expect(second.status).toBe("done");
      await sleep(300); // an event would have been published before the result
      expect(events(quiet.id)).toEqual([]);
      expect(quiet.process.logs).not.toContain(second.id);
      // An error still passes LOG_LEVEL=warn.
      await spy.publish(`ai-system/workers/${quiet.id}/tasks`, "not json");
      const error = await eventually("the error event of a malformed task", () => events(quiet.id)[0], 10_000);
      expect(error).toMatchObject({ level: "error", source: quiet.id });
    });

    it.sequential("answers through Gemini generateContent with the server key", async () => {
      const w = await start({ LLM_PROVIDER: "gemini", GEMINI_BASE_URL: gemini.baseUrl, GEMINI_API_KEY: "server-gemini-key", GEMINI_MODEL: "gemini-test" });
      const answer = await waitForAnswer(master.url, await submit(master.url, "hello gemini"), 30_000);
      expect(answer).toMatchObject({ status: "done", provider: "gemini" });
      expect(answer.answer).toContain("gemini-fake says: hello gemini");
      const call = gemini.requests.at(-1);
      expect(call?.path).toBe("/v1beta/models/gemini-test:generateContent");
      expect(call?.headers["x-goog-api-key"]).toBe("server-gemini-key");
      expect(w.process.logs).not.toContain("server-gemini-key");
    });

    it.sequential("answers through an OpenAI-compatible endpoint", async () => {
      await start({ LLM_PROVIDER: "openai", OPENAI_BASE_URL: openai.baseUrl, OPENAI_MODEL: "tiny-test", OPENAI_API_KEY: "server-openai-key" });
      const answer = await waitForAnswer(master.url, await submit(master.url, "hello openai"), 30_000);
      expect(answer).toMatchObject({ status: "done", provider: "openai" });
      expect(answer.answer).toContain("openai-fake says: hello openai");
      const call = openai.requests.at(-1);
      expect(call?.headers.authorization).toBe("Bearer server-openai-key");
      expect(call?.body).toMatchObject({ model: "tiny-test", messages: [{ role: "user", content: "hello openai" }] });
    });

    it.sequential("turns provider HTTP 500 and 429 and a timeout into error results and keeps serving", async () => {
      await start({ LLM_PROVIDER: "gemini", GEMINI_BASE_URL: gemini.baseUrl, GEMINI_API_KEY: "k", LLM_TIMEOUT_MS: "1000" });
      gemini.behaviour = 500;
      const failed500 = await waitForAnswer(master.url, await submit(master.url, "provoke 500"), 30_000);
      expect(failed500).toMatchObject({ status: "failed", answer: null });
      expect(failed500.error).toMatch(/gemini.*500/i);

      gemini.behaviour = 429;
      const failed429 = await waitForAnswer(master.url, await submit(master.url, "provoke 429"), 30_000);
      expect(failed429.status).toBe("failed");
      expect(failed429.error).toMatch(/gemini.*429/i);

      gemini.behaviour = "hang";
      const timedOut = await waitForAnswer(master.url, await submit(master.url, "provoke a timeout"), 30_000);
      expect(timedOut.status).toBe("failed");
      expect(timedOut.error).toMatch(/gemini.*time/i);

      gemini.behaviour = "ok";
      const recovered = await waitForAnswer(master.url, await submit(master.url, "all good again"), 30_000);
      expect(recovered.status).toBe("done");
      expect(worker?.process.isRunning).toBe(true);
    });

    it.sequential("logs each malformed task as an error on P/logs without echoing it, drops it, and keeps serving", async () => {
      const w = await start();
      const topic = `ai-system/workers/${w.id}/tasks`;
      const task = { v: 1, type: "task", task_id: "x", query: "q", lease_ms: 1, has_credential: false, ts: 1 };
      const payloads: (string | Buffer)[] = [
        "garbage", "{}", "[]", "null", Buffer.from([0xff, 0xfe, 0x00]),
        JSON.stringify({ v: 1, type: "task", task_id: 5 }),
        JSON.stringify({ ...task, v: 9 }),
        JSON.stringify({ ...task, query: "" }),
        JSON.stringify({ ...task, lease_ms: "soon" }),
        JSON.stringify({ ...task, query: undefined }),
        JSON.stringify({ ...task, pad: "x".repeat(70_000) }),
        "[".repeat(70_000),
      ];
      for (const payload of payloads) await spy.publish(topic, payload);
      const errors = await eventually("an error event per malformed task", () => {
        const seen = spy.json(/^ai-system\/logs$/).filter((e) => e.source === w.id && e.level === "error");
        return seen.length >= payloads.length ? seen : undefined;
      }, 10_000);
      expect(errors.filter((e) => String(e.message).includes("xxxxxxxx"))).toEqual([]);
      expect(w.process.isRunning).toBe(true);
      const answer = await waitForAnswer(master.url, await submit(master.url, "after the junk"), 30_000);
      expect(answer).toMatchObject({ status: "done", worker: { id: w.id } });
    });

    it.sequential("fetches the user's key by RPC and never puts it on the broker", async () => {
      const userKey = `user-secret-${language}-${Date.now()}`;
      const w = await start({ LLM_PROVIDER: "auto", GEMINI_BASE_URL: gemini.baseUrl });
      const mark = spy.messages.length;
      const answer = await waitForAnswer(master.url, await submit(master.url, "use my own key", userKey), 30_000);
      expect(answer).toMatchObject({ status: "done", provider: "gemini" });
      expect(gemini.requests.at(-1)?.headers["x-goog-api-key"]).toBe(userKey);
      const task = published("tasks", w.id).find((t) => t.task_id === answer.id);
      expect(task?.has_credential).toBe(true);
      expect(spy.messages.length).toBeGreaterThan(mark);
      expect(spy.everythingSeen()).not.toContain(userKey);
      expect(w.process.logs).not.toContain(userKey);
      expect(JSON.stringify(answer)).not.toContain(userKey);
    });

    it.sequential("on SIGTERM finishes the task in hand, reports it, goes offline and exits 0", async () => {
      const w = await start({ SIMULATED_WORK_MS: "2000", SHUTDOWN_GRACE_MS: "10000" });
      const id = await submit(master.url, "finish me before you go");
      await eventually("the task to be assigned", async () => ((await getQuery(master.url, id)).status === "assigned" ? true : undefined));
      await sleep(300);
      w.process.signal("SIGTERM");
      expect(await w.process.waitForExit(15_000)).toBe(0);
      const answer = await getQuery(master.url, id);
      expect(answer).toMatchObject({ status: "done", worker: { id: w.id } });
      const statuses = published("status", w.id);
      expect(statuses.at(-1)?.status).toBe("offline");
    });
  });
}

/**
 * A bad environment, the same for every language: each worker exits 2 and prints every bad
 * variable at once, in the order of proto/worker-settings.json, with the same message lines.
 */
const runnable = selected.filter((language) => workerMissing(language) === undefined);
describe.skipIf(runnable.length === 0)(`bad environment (${runnable.join(", ")})`, () => {
  const secret = "sk-conformance-secret-value";
  const badEnv = {
    MQTT_PORT: "70000",
    MQTT_TLS: "maybe",
    MASTER_GRPC_ADDR: "master",
    GRPC_TOKEN: "",
    LLM_PROVIDER: "openai",
    OPENAI_API_KEY: secret,
    GEMINI_API_KEY_FILE: "/nonexistent/ai-swarm/gemini-key",
    HEARTBEAT_INTERVAL_MS: "1.5",
    LOG_LEVEL: "chatty",
  };
  const expected = [
    'MQTT_PORT must be an integer from 1 to 65535, got "70000"',
    'MQTT_TLS must be true or false, got "maybe"',
    'MASTER_GRPC_ADDR must be host:port, got "master"',
    "GRPC_TOKEN is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)",
    'GEMINI_API_KEY_FILE names a file that cannot be read: "/nonexistent/ai-swarm/gemini-key"',
    "OPENAI_BASE_URL is required when LLM_PROVIDER=openai",
    'HEARTBEAT_INTERVAL_MS must be an integer from 1 to 2147483647, got "1.5"',
    'LOG_LEVEL must be one of debug, info, warn, error, got "chatty"',
  ];

  it("every worker exits 2 listing all of its bad variables, with the same lines in every language", async () => {
    // No broker or master is needed: the configuration is refused before anything connects.
    const started = runnable.map((language) => startWorker(language, { mqttPort: 1, grpcAddr: "127.0.0.1:1", env: badEnv }));
    try {
      const exits = await Promise.all(started.map((w) => w.process.waitForExit(30_000)));
      const lines = started.map((w) => w.process.logs.split("\n").filter((line) => line.startsWith("config error: ")).map((line) => line.slice("config error: ".length)));
      expect(Object.fromEntries(runnable.map((language, i) => [language, exits[i]]))).toEqual(Object.fromEntries(runnable.map((language) => [language, 2])));
      expect(Object.fromEntries(runnable.map((language, i) => [language, lines[i]]))).toEqual(Object.fromEntries(runnable.map((language) => [language, expected])));
      for (const w of started) expect(w.process.logs).not.toContain(secret);
    } finally {
      await Promise.all(started.map((w) => w.process.stop(5_000)));
    }
  });
});

/**
 * The contract's gaps found by the simulated fleet (issue 12, point 7), each
 * checked with every worker language against a real Mosquitto and the real master.
 */
describe.skipIf(masterMissing() !== undefined || runnable.length === 0)(`fleet-found gaps (${runnable.join(", ")})`, () => {
  const LEASE_MS = 3000;
  let broker: Broker;
  let master: Master;
  let spy: MqttSpy;
  let proxy: TcpProxy;
  let worker: StartedWorker | undefined;

  beforeAll(async () => {
    broker = await startMosquitto();
    master = await startMaster({ mqttPort: broker.port, env: { LEASE_MS: String(LEASE_MS), HEARTBEAT_TIMEOUT_MS: "3000" } });
    spy = await MqttSpy.connect(broker.port);
    proxy = await TcpProxy.start(master.grpcPort);
  });

  afterEach(async () => {
    proxy.releaseReplies();
    await worker?.process.stop(8_000);
    worker = undefined;
  });

  afterAll(async () => {
    await spy?.close();
    await proxy?.close();
    await master?.process.stop();
    await broker?.stop();
  });

  function tasksTo(id: string, taskId: string): Record<string, unknown>[] {
    return spy.json(new RegExp(`^ai-system/workers/${id.replace(/[.]/g, "\\.")}/tasks$`)).filter((t) => t.task_id === taskId);
  }

  for (const language of runnable) {
    it(`${language}: heartbeats renew the waiting task's lease while SendResult for the first is retried, so it runs once`, async () => {
      const w = startWorker(language, { mqttPort: broker.port, grpcAddr: proxy.address, env: { SIMULATED_WORK_MS: "1000", RESULT_RETRY_DEADLINE_MS: "60000" } });
      worker = w;
      await waitForIdleWorkers(master.url, [w.id], 60_000);
      // One task through the proxy first: the worker's gRPC connection is up before replies are held.
      expect((await waitForAnswer(master.url, await submit(master.url, "warm-up"), 30_000)).status).toBe("done");
      const first = await submit(master.url, "first: its acknowledgement is lost");
      const second = await submit(master.url, "second: waits while the first is retried");
      await eventually("the first task in the worker's hands", async () => ((await getQuery(master.url, first)).status === "assigned" ? true : undefined), 15_000);
      proxy.holdReplies(); // the master accepts the first result, the worker never hears so and retries
      await eventually("the first accepted and the second leased to the same worker", async () => {
        const [a, b] = await Promise.all([getQuery(master.url, first), getQuery(master.url, second)]);
        return a.status === "done" && b.status === "assigned" && b.worker?.id === w.id ? true : undefined;
      }, 15_000);
      await sleep(3 * LEASE_MS); // SendResult keeps failing for three leases while the second task waits
      expect(await getQuery(master.url, second)).toMatchObject({ status: "assigned", attempts: 1, worker: { id: w.id } });
      const heldHeartbeat = spy
        .json(new RegExp(`^ai-system/workers/${w.id}/heartbeat$`))
        .find((h) => Array.isArray(h.held_task_ids) && h.held_task_ids.includes(second));
      expect(heldHeartbeat).toMatchObject({ task_id: first, held_task_ids: [first, second] });
      proxy.releaseReplies();
      const answer = await waitForAnswer(master.url, second, 60_000);
      expect(answer).toMatchObject({ status: "done", attempts: 1, worker: { id: w.id } });
      expect(tasksTo(w.id, second)).toHaveLength(1);
    });

    it(`${language}: a rejection carries its own state: busy with the task in hand, and nothing else`, async () => {
      const w = startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr, env: { SIMULATED_WORK_MS: "2000" } });
      worker = w;
      await waitForIdleWorkers(master.url, [w.id], 60_000);
      const inHand = await submit(master.url, "keeps the worker busy");
      await eventually("the task in the worker's hands", async () => ((await getQuery(master.url, inHand)).status === "assigned" ? true : undefined), 15_000);
      await sleep(300); // delivered and started
      const intruder = `q_intruder_${language}`;
      await spy.publish(`ai-system/workers/${w.id}/tasks`, JSON.stringify({ v: 1, type: "task", task_id: intruder, query: "one too many", lease_ms: 30000, has_credential: false, ts: Date.now() }));
      const rejection = await eventually("the rejection", () => spy.json(new RegExp(`^ai-system/workers/${w.id}/status$`)).find((m) => m.rejected_task_id === intruder), 10_000);
      expect(rejection).toEqual({ v: 1, type: "status", worker_id: w.id, status: "busy", task_id: inHand, rejected_task_id: intruder, ts: expect.any(Number) });
      expect((await waitForAnswer(master.url, inHand, 30_000)).status).toBe("done");
    });

    it(`${language}: connects with MQTT 3.1.1, a clean session and a 10 s keepalive (docs/protocol.md, "MQTT session")`, async () => {
      const w = startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr });
      worker = w;
      await waitForIdleWorkers(master.url, [w.id], 60_000);
      // Mosquitto logs each CONNECT: p2 = MQTT 3.1.1, c1 = clean session, k10 = keepalive 10 s.
      const connect = new RegExp(`as ${w.id.replace(/[.]/g, "\\.")} \\((p\\d+), (c\\d+), (k\\d+)`).exec(broker.process.logs);
      expect(connect?.slice(1)).toEqual(["p2", "c1", "k10"]);
    });

    it(`${language}: its default id has its node, its task slot and 8 random hex digits`, async () => {
      const node = `vm-slot-${language}`;
      const w = startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr, node, env: { WORKER_ID: "", TASK_SLOT: "7" } });
      worker = w;
      const registration = await eventually("its register", () => spy.json(/^ai-system\/workers\/[^/]+\/register$/).find((r) => r.node === node), 60_000);
      expect(registration.worker_id).toMatch(new RegExp(`^${language}-${node}-7-[0-9a-f]{8}$`));
    });

    it(`${language}: two workers with one WORKER_ID say in their logs that they share a client id`, async () => {
      const id = `${language}-twin-${process.pid}`;
      const twins = [0, 1].map(() => startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr, workerId: id }));
      try {
        const hint = new RegExp(`another client is probably connected with the same client id ${id} \\(WORKER_ID\\)`);
        await Promise.all(twins.map((t) => t.process.waitForOutput(hint, 40_000)));
      } finally {
        await Promise.all(twins.map((t) => t.process.stop(8_000)));
      }
    });

    it(`${language}: its last will carries its connect time, and the master takes it offline by the will's arrival`, async () => {
      const w = startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr });
      worker = w;
      await waitForIdleWorkers(master.url, [w.id], 60_000);
      await sleep(1500); // the worker lives a while after connecting
      const killedMs = Date.now();
      w.process.signal("SIGKILL");
      const will = await eventually("the last will", () => spy.json(new RegExp(`^ai-system/workers/${w.id}/status$`)).find((m) => m.status === "offline"), 10_000);
      expect(will.ts).toBeLessThan(killedMs - 1000); // fixed at connect time: not a time of death
      const seen = await eventually("the master's view of it", async () => (await listWorkers(master.url)).find((v) => v.id === w.id && v.status === "offline"), 10_000);
      expect(seen.last_seen_ms).toBeGreaterThanOrEqual(killedMs); // the will's arrival, on the master's clock
    });

    it(`${language}: a task published while the worker reconnects comes back at once, not after its lease`, async () => {
      // A lease far longer than the test: an answer that ends no dispatch with
      // lease_expired came back because of the reconnect.
      const longLease = await startMaster({ mqttPort: broker.port, env: { LEASE_MS: "60000", HEARTBEAT_TIMEOUT_MS: "10000" } });
      const mqttProxy = await TcpProxy.start(broker.port);
      try {
        const w = startWorker(language, { mqttPort: mqttProxy.port, grpcAddr: longLease.grpcAddr });
        worker = w;
        await waitForIdleWorkers(longLease.url, [w.id], 60_000);
        // The worker's session ends and the master does not hear of it (as when the master
        // was itself reconnecting while the will went out): an MQTT DISCONNECT in the worker's
        // name ends the session without a will, and the worker cannot reconnect for a moment.
        mqttProxy.sever(Buffer.from([0xe0, 0x00]));
        const id = await submit(longLease.url, "published while the worker was away");
        await eventually("the task leased to the absent worker", async () => ((await getQuery(longLease.url, id)).worker?.id === w.id ? true : undefined), 10_000);
        await sleep(300); // the publish reaches the broker, which has no subscriber for it
        mqttProxy.mend(); // the worker reconnects (a new clean session), registers and says it is idle
        const answer = await waitForAnswer(longLease.url, id, 30_000);
        expect(answer).toMatchObject({ status: "done", worker: { id: w.id } });
        const ends = (answer as unknown as { events: { reason?: string; detail?: string }[] }).events.filter((e) => e.reason !== undefined);
        expect(ends.map((e) => e.detail)).toEqual(["worker lost it: it reconnected without it"]);
      } finally {
        await worker?.process.stop(8_000);
        worker = undefined;
        await mqttProxy.close();
        await longLease.process.stop();
      }
    });
  }
});
