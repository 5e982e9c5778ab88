/**
 * The worker's side of the contract when the master misbehaves or the world
 * around it fails: each worker language as a real process, a real Mosquitto,
 * and a scriptable fake master (tests/support/fake-master.ts) that delays,
 * duplicates, fails or refuses SendResult on demand, which the real master
 * cannot be made to do. Every test has its own fake master and worker, so the
 * tests, and the languages, run side by side (vitest's maxConcurrency bounds
 * how many at each level).
 *
 * WORKER_LANGUAGES=python,go limits the languages (default: all three).
 */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { mosquittoPasswordLine } from "../../components/credentials";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMosquitto, type Broker } from "../../launch/mosquitto";
import { issueWebCertificate, opensslMissing, startWorker, workerMissing, WORKER_LANGUAGES, type StartedWorker, type WorkerLanguage } from "../../launch/system";
import { eventually, sleep } from "../../launch/ports";
import { MqttSpy, type MqttAccess } from "../support/mqtt-spy";
import { FakeMaster } from "../support/fake-master";

const selected = (process.env.WORKER_LANGUAGES ?? WORKER_LANGUAGES.join(","))
  .split(",")
  .map((s) => s.trim())
  .filter((s): s is WorkerLanguage => (WORKER_LANGUAGES as readonly string[]).includes(s));

type Message = Record<string, unknown>;

/** One test's world: its fake master, its worker, and what the worker published. */
interface Scene {
  master: FakeMaster;
  worker: StartedWorker;
  statuses(): Message[];
  heartbeats(): Message[];
  events(): Message[];
  /** Waits for a status of this worker that matches. */
  status(what: string, match: (s: Message) => boolean): Promise<Message>;
}

function sceneOn(spy: MqttSpy, master: FakeMaster, worker: StartedWorker): Scene {
  const mine = (kind: string): Message[] => spy.json(new RegExp(`^ai-system/workers/${worker.id}/${kind}$`));
  return {
    master,
    worker,
    statuses: () => mine("status"),
    heartbeats: () => mine("heartbeat"),
    events: () => spy.json(/^ai-system\/logs$/).filter((e) => e.source === worker.id),
    status: (what, match) => eventually(what, () => mine("status").find(match), 20_000),
  };
}

/** Starts a fake master and a worker pointed at it, and waits until the worker says idle. */
async function startScene(language: WorkerLanguage, broker: Broker, spy: MqttSpy, env: Record<string, string> = {}, access: MqttAccess = {}): Promise<Scene> {
  const master = await FakeMaster.start(broker.port, access);
  const worker = startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr, env });
  const scene = sceneOn(spy, master, worker);
  await eventually(`${worker.id} to say idle`, () => {
    if (!worker.process.isRunning) throw new Error(`${worker.id} exited during start-up:\n${worker.process.tail()}`);
    return scene.statuses().find((s) => s.status === "idle");
  }, 60_000);
  return scene;
}

async function stopScene(scene: Scene): Promise<void> {
  await scene.worker.process.stop(8_000);
  await scene.master.close();
}

/** Runs body with a fresh scene and always stops it. */
async function withScene(language: WorkerLanguage, broker: Broker, spy: MqttSpy, env: Record<string, string>, body: (scene: Scene) => Promise<void>): Promise<void> {
  const scene = await startScene(language, broker, spy, env);
  try {
    await body(scene);
  } finally {
    await stopScene(scene);
  }
}

/** Waits for the worker's second `status idle` (the first is the one after connecting). */
async function secondIdle(statuses: () => Message[]): Promise<void> {
  await eventually("a second status idle", () => (statuses().filter((s) => s.status === "idle").length >= 2 ? true : undefined));
}

const idleStatus = (workerId: string): Message => ({ v: 1, type: "status", worker_id: workerId, status: "idle", task_id: null, ts: expect.any(Number) as unknown });

const busyWith = (taskId: string) => (h: Message): boolean => h.status === "busy" && h.task_id === taskId;

for (const language of selected) {
  const missing = workerMissing(language);
  if (missing !== undefined) console.warn(`[skip] ${language} fault conformance: ${missing}`);

  describe.skipIf(missing !== undefined).concurrent(`${language} worker against a scripted master`, () => {
    let broker: Broker;
    let spy: MqttSpy;
    const run = (env: Record<string, string>, body: (scene: Scene) => Promise<void>): Promise<void> => withScene(language, broker, spy, env, body);

    beforeAll(async () => {
      broker = await startMosquitto();
      spy = await MqttSpy.connect(broker.port);
    });
    afterAll(async () => {
      await spy?.close();
      await broker?.stop();
    });

    it("retries SendResult on UNAVAILABLE and RESOURCE_EXHAUSTED, backing off 200 then 400 ms, until it lands", () =>
      run({}, async ({ master, worker }) => {
        master.script.push({ fail: grpc.status.UNAVAILABLE }, { fail: grpc.status.RESOURCE_EXHAUSTED });
        await master.sendTask(worker.id, "q_retry");
        const calls = await master.resultCalls(3);
        expect(calls.map((c) => [c.taskId, c.answer])).toEqual([["q_retry", "UNAVAILABLE"], ["q_retry", "RESOURCE_EXHAUSTED"], ["q_retry", "accepted"]]);
        const [first, second, third] = calls.map((c) => c.at);
        expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(190);
        expect((third ?? 0) - (second ?? 0)).toBeGreaterThanOrEqual(390);
        expect(calls[2]?.request).toMatchObject({ worker_id: worker.id, language, provider: "offline" });
      }));

    it("takes PERMISSION_DENIED as final: one call, no retry, then status idle", () =>
      run({}, async ({ master, worker, statuses }) => {
        master.script.push({ fail: grpc.status.PERMISSION_DENIED });
        await master.sendTask(worker.id, "q_denied");
        await master.resultCalls(1);
        await secondIdle(statuses);
        expect(statuses()).toEqual([idleStatus(worker.id), idleStatus(worker.id)]);
        await sleep(800); // a retry would have come 200 ms later
        expect(master.results.map((c) => c.answer)).toEqual(["PERMISSION_DENIED"]);
        expect(worker.process.isRunning).toBe(true);
      }));

    it("says idle after a duplicate acknowledgement (the task was already finished)", () =>
      run({}, async ({ master, worker, statuses }) => {
        master.script.push({ duplicate: true });
        await master.sendTask(worker.id, "q_twice");
        await master.resultCalls(1);
        await secondIdle(statuses);
        expect(statuses()).toEqual([idleStatus(worker.id), idleStatus(worker.id)]);
        expect(master.results.map((c) => c.answer)).toEqual(["duplicate"]);
      }));

    it("with a wrong token logs UNAUTHENTICATED with the task id (never the token), does not retry, says idle and stays up", () =>
      run({ GRPC_TOKEN: "definitely-wrong-token" }, async ({ master, worker, statuses, events }) => {
        await master.sendTask(worker.id, "q_badtoken");
        await worker.process.waitForOutput(/UNAUTHENTICATED/, 20_000);
        await secondIdle(statuses);
        expect(statuses()).toEqual([idleStatus(worker.id), idleStatus(worker.id)]);
        const error = await eventually("an error event for the task", () => events().find((e) => e.level === "error" && e.task_id === "q_badtoken"));
        expect(String(error.message)).toMatch(/UNAUTHENTICATED/);
        const line = worker.process.logs.split("\n").find((l) => l.includes("UNAUTHENTICATED"));
        expect(line).toContain("q_badtoken");
        await sleep(800);
        expect(master.unauthenticated).toBe(1);
        expect(master.results).toEqual([]);
        expect(worker.process.logs).not.toContain("definitely-wrong-token");
        expect(JSON.stringify(events())).not.toContain("definitely-wrong-token");
        expect(worker.process.isRunning).toBe(true);
      }));

    it("rejects a task that arrives while it is busy, ignores a duplicate of the task in hand, and sends one result", () =>
      run({ SIMULATED_WORK_MS: "1500" }, async ({ master, worker, heartbeats, status }) => {
        await master.sendTask(worker.id, "q_first");
        await eventually("a busy heartbeat", () => heartbeats().find(busyWith("q_first")));
        await master.sendTask(worker.id, "q_first"); // QoS 1 duplicate
        await master.sendTask(worker.id, "q_second");
        const rejection = await status("the rejection of q_second", (s) => s.rejected_task_id === "q_second");
        expect(rejection).toMatchObject({ status: "busy", task_id: "q_first" });
        await master.resultCalls(1);
        await sleep(800);
        expect(master.results.map((c) => c.taskId)).toEqual(["q_first"]);
      }));

    it("takes one task arriving while its result is being sent, runs it next, and rejects a third", () =>
      run({}, async ({ master, worker, statuses, status }) => {
        master.script.push({ delayMs: 800 }); // the master has the result but has not answered yet
        await master.sendTask(worker.id, "q_a");
        await master.resultCalls(1);
        await master.sendTask(worker.id, "q_b"); // leased at once by a master that accepted q_a
        await master.sendTask(worker.id, "q_b"); // QoS 1 duplicate of the waiting task
        await master.sendTask(worker.id, "q_c"); // one task waits at most
        const rejection = await status("the rejection of q_c", (s) => s.rejected_task_id === "q_c");
        expect(rejection).toMatchObject({ status: "busy", task_id: "q_a" });
        const calls = await master.resultCalls(2);
        expect(calls.map((c) => [c.taskId, c.answer])).toEqual([["q_a", "accepted"], ["q_b", "accepted"]]);
        const timings = calls[1]?.request.timings as { received_ms: number; started_ms: number };
        expect(timings.received_ms).toBeLessThan(timings.started_ms); // q_b arrived before it could start
        await sleep(800);
        // Both results were accepted: no idle; the only statuses are the first idle and the rejection of q_c.
        expect(statuses().map((s) => [s.status, s.rejected_task_id])).toEqual([["idle", undefined], ["busy", "q_c"]]);
        expect(master.results).toHaveLength(2);
      }));

    it("on SIGTERM rejects the task waiting to run next, still reports the task in hand, goes offline and exits 0", () =>
      run({ SHUTDOWN_GRACE_MS: "10000" }, async ({ master, worker, statuses, status }) => {
        master.script.push({ delayMs: 1500 });
        await master.sendTask(worker.id, "q_last");
        await master.resultCalls(1);
        await master.sendTask(worker.id, "q_waiting");
        await sleep(300); // the task reaches the worker (loopback) well before its result's answer
        expect(statuses().filter((s) => s.rejected_task_id !== undefined)).toEqual([]);
        worker.process.signal("SIGTERM");
        const rejection = await status("the rejection of q_waiting", (s) => s.rejected_task_id === "q_waiting");
        expect(rejection).toMatchObject({ status: "busy", task_id: "q_last" });
        expect(await worker.process.waitForExit(15_000)).toBe(0);
        expect(master.results.map((c) => [c.taskId, c.answer])).toEqual([["q_last", "accepted"]]);
        expect(statuses().at(-1)).toMatchObject({ status: "offline", task_id: null });
      }));

    it("on SIGTERM with a task longer than SHUTDOWN_GRACE_MS goes offline and exits 0 without a result", () =>
      run({ SIMULATED_WORK_MS: "20000", SHUTDOWN_GRACE_MS: "300" }, async ({ master, worker, heartbeats, statuses }) => {
        await master.sendTask(worker.id, "q_too_long");
        await eventually("a busy heartbeat", () => heartbeats().find(busyWith("q_too_long")));
        worker.process.signal("SIGTERM");
        expect(await worker.process.waitForExit(10_000)).toBe(0);
        await eventually("offline", () => statuses().find((s) => s.status === "offline"));
        expect(master.results).toEqual([]);
      }));

    it("asks for the user's key when the task has one, and without a key at the master answers with its own settings", () =>
      run({ LLM_PROVIDER: "auto" }, async ({ master, worker }) => {
        await master.sendTask(worker.id, "q_no_key", { hasCredential: true }); // the master lost the key (as after a restart)
        const [call] = await master.resultCalls(1);
        expect(master.credentialCalls).toEqual([{ taskId: "q_no_key", workerId: worker.id }]);
        expect(call?.request).toMatchObject({ task_id: "q_no_key", provider: "offline", error: "" });
        expect(String(call?.request.answer)).toMatch(/^\[offline\]/);
      }));

    it("with LLM_PROVIDER=offline does not fetch the user's key", () =>
      run({ LLM_PROVIDER: "offline" }, async ({ master, worker }) => {
        master.credentials.set("q_offline", "user-key-unused");
        await master.sendTask(worker.id, "q_offline", { hasCredential: true });
        const [call] = await master.resultCalls(1);
        expect(call?.request).toMatchObject({ task_id: "q_offline", provider: "offline" });
        expect(master.credentialCalls).toEqual([]);
      }));

    it("sends its result while the broker is down, then reconnects, heartbeats and takes tasks again", async () => {
      const first = await startMosquitto();
      const spy = await MqttSpy.connect(first.port);
      let broker = first;
      const scene = await startScene(language, broker, spy, { SIMULATED_WORK_MS: "1500" });
      try {
        const { master, worker, heartbeats } = scene;
        await master.sendTask(worker.id, "q_outage");
        await eventually("a busy heartbeat", () => heartbeats().find(busyWith("q_outage")));
        await broker.stop();
        const [result] = await master.resultCalls(1);
        expect(result).toMatchObject({ taskId: "q_outage", answer: "accepted" });
        const heartbeatsBefore = heartbeats().length;
        broker = await startMosquitto(first.port);
        await eventually("heartbeats again after the broker came back", () => (heartbeats().length > heartbeatsBefore + 1 ? true : undefined), 30_000);
        await master.sendTask(worker.id, "q_after_outage");
        const calls = await master.resultCalls(2, 30_000);
        expect(calls.map((c) => c.taskId)).toEqual(["q_outage", "q_after_outage"]);
        expect(worker.process.isRunning).toBe(true);
      } finally {
        await stopScene(scene);
        await spy.close();
        await broker.stop();
      }
    });
  });
}

/**
 * MQTT_TLS, MQTT_CA_FILE, MQTT_USERNAME and MQTT_PASSWORD_FILE against a Mosquitto that
 * wants TLS and a password: the certificate for 127.0.0.1 comes from the stack's own script
 * (issueWebCertificate), the password file line from components/credentials.ts.
 */
const secureMissing = opensslMissing();
if (secureMissing !== undefined) console.warn(`[skip] MQTT over TLS with a password: ${secureMissing}`);
describe.skipIf(secureMissing !== undefined)("workers and a broker that wants TLS and a password", () => {
  const username = "worker-conformance";
  const password = "broker-pass-Zq81";
  let dir: string;
  let broker: Broker;
  let access: MqttAccess;
  let spy: MqttSpy;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ai-swarm-mqtt-tls-"));
    const certificate = issueWebCertificate(dir);
    const caFile = path.join(dir, "ca.pem");
    writeFileSync(caFile, certificate.ca);
    writeFileSync(path.join(dir, "passwd"), `${mosquittoPasswordLine(username, password)}\n`);
    // Mosquitto started as root reads its files as the user mosquitto: these throw-away ones must be readable.
    chmodSync(dir, 0o711);
    for (const file of ["passwd", path.basename(certificate.keyFile)]) chmodSync(path.join(dir, file), 0o644);
    broker = await startMosquitto(undefined, ["allow_anonymous false", `password_file ${path.join(dir, "passwd")}`, `certfile ${certificate.certFile}`, `keyfile ${certificate.keyFile}`]);
    access = { ca: certificate.ca, username, password };
    spy = await MqttSpy.connect(broker.port, "#", access);
  });
  afterAll(async () => {
    await spy?.close();
    await broker?.stop();
  });

  const passwordFile = (name: string, content: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, `${content}\n`, { mode: 0o600 });
    return file;
  };

  for (const language of selected.filter((l) => workerMissing(l) === undefined)) {
    it(`${language}: connects over TLS trusting MQTT_CA_FILE with the password from MQTT_PASSWORD_FILE and runs a task`, async () => {
      const env = { MQTT_TLS: "true", MQTT_CA_FILE: path.join(dir, "ca.pem"), MQTT_USERNAME: username, MQTT_PASSWORD_FILE: passwordFile(`right-${language}`, password) };
      const scene = await startScene(language, broker, spy, env, access);
      try {
        await scene.master.sendTask(scene.worker.id, "q_tls");
        const [call] = await scene.master.resultCalls(1);
        expect(call).toMatchObject({ taskId: "q_tls", answer: "accepted" });
        expect(scene.worker.process.logs).not.toContain(password);
      } finally {
        await stopScene(scene);
      }
    });

    it(`${language}: refused for a wrong password, logs it without the password and keeps trying; without the CA does not trust the broker`, async () => {
      const env = { MQTT_TLS: "true", MQTT_CA_FILE: path.join(dir, "ca.pem"), MQTT_USERNAME: username, MQTT_PASSWORD_FILE: passwordFile(`wrong-${language}`, "wrong-pass-Kx5") };
      const wrong = startWorker(language, { mqttPort: broker.port, grpcAddr: "127.0.0.1:1", env });
      const untrusting = startWorker(language, { mqttPort: broker.port, grpcAddr: "127.0.0.1:1", env: { ...env, MQTT_CA_FILE: "", MQTT_PASSWORD_FILE: passwordFile(`right2-${language}`, password) } });
      try {
        await wrong.process.waitForOutput(/refused|not authori[sz]ed|bad user ?name or password/i, 30_000);
        // The wording differs (Go names the certificate, Java the SSLHandshakeException, Python says unreachable).
        await untrusting.process.waitForOutput(/certificat|SSL|unreachable/i, 30_000);
        await sleep(1000);
        expect(wrong.process.isRunning).toBe(true);
        expect(wrong.process.logs).not.toContain("wrong-pass-Kx5");
        expect(untrusting.process.logs).not.toContain(password);
        expect(spy.json(new RegExp(`^ai-system/workers/(${wrong.id}|${untrusting.id})/`))).toEqual([]);
      } finally {
        await wrong.process.stop(8_000);
        await untrusting.process.stop(8_000);
      }
    });
  }
});
