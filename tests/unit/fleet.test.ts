/**
 * The simulated fleet (bench/fleet.ts) and the pure parts of npm run
 * bench:cluster (bench/cluster-stats.ts, bench/loadgen.ts, bench/proc.ts).
 *
 * The fleet is checked against a real Mosquitto and the real master (as
 * tests/integration does), with 10 fake workers and a few seconds: they
 * register with their nodes and languages, answer every query exactly once,
 * stay alive past the master's heartbeat timeout, and stop() leaves nothing
 * that would keep a process running.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMosquitto, type Broker } from "../../launch/mosquitto";
import { masterMissing, REPO_ROOT, startMaster, LAUNCH_GRPC_TOKEN, type Master } from "../../launch/system";
import { listWorkers, submit, waitForAnswer } from "../../launch/api";
import { eventually, sleep } from "../../launch/ports";
import { MqttSpy } from "../support/mqtt-spy";
import { Fleet, fleetIdentities, heartbeatWheel, nextBackoffMs, nodeNames, offlineAnswer, parseTask, type ResultOutcome } from "../../bench/fleet";
import {
  checkTargets,
  clusterSettings,
  capacity,
  eventLoopP99Ms,
  formatTable,
  median,
  parseLevels,
  percentiles,
  summarizeQueries,
  targetsFor,
  type LevelRow,
} from "../../bench/cluster-stats";
import { parseResponse, type QueryRecord } from "../../bench/loadgen";
import { busyMsFromProcStat, descendantsIn, listenOverflowsFromNetstat, ppidFromStat, rssFromStatus, treeCpuDelta } from "../../bench/proc";
import { PayloadSchema } from "../../images/master/src/protocol";

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const goodTask = { v: 1, type: "task", task_id: "q_1", query: "What is MQTT?", lease_ms: 30000, has_credential: false, ts: 1 };

describe("the fleet's pure parts", () => {
  it("names nodes vm-01… and spreads workers over them in blocks, languages round-robin", () => {
    expect(nodeNames(3)).toEqual(["vm-01", "vm-02", "vm-03"]);
    expect(nodeNames(100)[99]).toBe("vm-100");
    const fleet = fleetIdentities(60, 3, ["python", "go", "java"], "ab12");
    expect(new Set(fleet.map((w) => w.id)).size).toBe(60);
    for (const node of ["vm-01", "vm-02", "vm-03"]) {
      const here = fleet.filter((w) => w.node === node);
      expect(here).toHaveLength(20);
      // Every node gets every language (round-robin languages, contiguous nodes).
      expect(new Set(here.map((w) => w.language))).toEqual(new Set(["python", "go", "java"]));
    }
    expect(fleet[0]).toEqual({ id: "python-vm-01-ab12-0000", language: "python", node: "vm-01" });
    expect(fleet.every((w) => /^[A-Za-z0-9_.-]{1,64}$/.test(w.id) && w.id.startsWith(`${w.language}-${w.node}-`))).toBe(true);
    expect(() => fleetIdentities(0, 1, ["go"], "x")).toThrow(/count/);
    expect(() => fleetIdentities(5, 1, ["go"], "bad tag")).toThrow(/not valid/);
  });

  it("takes a task only as the payload schema says (its rules: proto/mqtt/vectors, run by the master's tests)", () => {
    const schema = PayloadSchema.load(path.join(REPO_ROOT, "proto"));
    expect(parseTask(schema, json({ ...goodTask, extra: "ignored" }))).toEqual({ task_id: "q_1", query: "What is MQTT?", lease_ms: 30000, has_credential: false, ts: 1 });
    expect(parseTask(schema, json({ ...goodTask, query: "" }))).toBeUndefined();
    expect(parseTask(schema, Buffer.from("garbage"))).toBeUndefined();
  });

  it("answers like the offline provider, backs off 200 ms doubling to 5 s, and spreads heartbeats over one interval", () => {
    expect(offlineAnswer("go-vm-01-x-0001", "hi")).toBe(
      "[offline] No LLM is configured on worker go-vm-01-x-0001, so this is not a real answer (set GEMINI_API_KEY or OPENAI_BASE_URL to get one). Your question was: hi",
    );
    const delays: number[] = [];
    let delay: number | undefined;
    for (let i = 0; i < 7; i++) delays.push((delay = nextBackoffMs(delay)));
    expect(delays).toEqual([200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(heartbeatWheel(2000)).toEqual({ slots: 20, tickMs: 100 });
    expect(heartbeatWheel(150)).toEqual({ slots: 2, tickMs: 75 });
    expect(heartbeatWheel(50)).toEqual({ slots: 1, tickMs: 50 });
  });
});

describe("bench:cluster's settings", () => {
  it("reads levels and defaults", () => {
    expect(parseLevels("50:100, 2000:700")).toEqual([{ workers: 50, rate: 100 }, { workers: 2000, rate: 700 }]);
    expect(parseLevels("10:2.5")).toEqual([{ workers: 10, rate: 2.5 }]);
    expect(clusterSettings({})).toEqual({
      levels: [{ workers: 50, rate: 100 }, { workers: 200, rate: 100 }, { workers: 1000, rate: 350 }, { workers: 2000, rate: 700 }],
      seconds: 45,
      warmupS: 15,
      page: true,
      masters: ["after"],
      workMs: 2000,
      heartbeatMs: 2000,
      beforeRef: "HEAD",
    });
    expect(clusterSettings({ CLUSTER_BEFORE_REF: "HEAD~1" }).beforeRef).toBe("HEAD~1");
    expect(clusterSettings({ CLUSTER_PAGE: "0", CLUSTER_MASTER: "before", CLUSTER_SECONDS: "10", CLUSTER_WARMUP_S: "5" })).toMatchObject({ page: false, masters: ["before", "after"], seconds: 10, warmupS: 5 });
    expect(clusterSettings({ CLUSTER_MASTER: "before-only" }).masters).toEqual(["before"]);
  });

  it("refuses a bad setting with one line naming it", () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ CLUSTER_LEVELS: "50" }, /^CLUSTER_LEVELS must be .*got "50"$/],
      [{ CLUSTER_LEVELS: "0:10" }, /CLUSTER_LEVELS/],
      [{ CLUSTER_LEVELS: "10:0" }, /CLUSTER_LEVELS/],
      [{ CLUSTER_LEVELS: "10:5,x" }, /CLUSTER_LEVELS/],
      [{ CLUSTER_SECONDS: "15" }, /^CLUSTER_SECONDS must be an integer >= 16, got "15"$/],
      [{ CLUSTER_WARMUP_S: "5", CLUSTER_SECONDS: "5" }, /^CLUSTER_SECONDS must be an integer >= 6, got "5"$/],
      [{ CLUSTER_WARMUP_S: "-1" }, /CLUSTER_WARMUP_S/],
      [{ CLUSTER_SECONDS: "ten" }, /CLUSTER_SECONDS/],
      [{ CLUSTER_PAGE: "yes" }, /^CLUSTER_PAGE must be 1 .* or 0, got "yes"$/],
      [{ CLUSTER_MASTER: "head" }, /^CLUSTER_MASTER must be .*got "head"$/],
      [{ CLUSTER_WORK_MS: "-1" }, /CLUSTER_WORK_MS/],
      [{ CLUSTER_HEARTBEAT_MS: "10" }, /CLUSTER_HEARTBEAT_MS/],
      [{ CLUSTER_BEFORE_REF: "--output=x" }, /^CLUSTER_BEFORE_REF must be a git revision .*got "--output=x"$/],
      [{ CLUSTER_BEFORE_REF: "a b" }, /CLUSTER_BEFORE_REF/],
    ];
    for (const [env, message] of bad) {
      expect(() => clusterSettings(env)).toThrow(message);
      try {
        clusterSettings(env);
      } catch (error) {
        expect((error as Error).message).not.toContain("\n");
      }
    }
  });

  it("says when a level offers more than the fleet can do", () => {
    expect(capacity({ workers: 50, rate: 100 }, 2000)).toBe(25);
    expect(capacity({ workers: 2000, rate: 700 }, 2000)).toBe(1000);
    expect(capacity({ workers: 1, rate: 1 }, 0)).toBe(Infinity);
  });
});

function record(n: number, fields: Partial<QueryRecord>): QueryRecord {
  const sentMs = fields.sentMs ?? n * 10;
  return { n, scheduledMs: sentMs, sentMs, outcome: "answered", followUps: 0, connectMs: 1, status: 200, ...fields };
}

describe("bench:cluster's numbers", () => {
  it("takes percentiles and medians", () => {
    expect(percentiles([])).toBeUndefined();
    expect(percentiles([3, 1, 2])).toEqual({ p50: 2, p99: 3, max: 3 });
    expect(median([])).toBeUndefined();
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("computes overhead as latency − work over the steady part, and counts every outcome", () => {
    const records: QueryRecord[] = [
      record(0, { sentMs: 100, latencyMs: 9000 }), // in the warm-up: counted, but not in the overhead
      ...Array.from({ length: 100 }, (_, i) => record(i + 1, { sentMs: 5000 + i, latencyMs: 2000 + (i + 1), queueMs: i })),
      record(200, { sentMs: 6000, latencyMs: 35_000, followUps: 1 }),
      record(201, { sentMs: 6000, outcome: "failed", latencyMs: 2100 }),
      record(202, { sentMs: 6000, outcome: "refused", status: 429 }),
      record(203, { sentMs: 6000, outcome: "refused", status: 503 }),
      record(204, { sentMs: 6000, outcome: "conn-fail", error: "ECONNRESET", connectMs: undefined, status: undefined }),
      record(205, { sentMs: 6000, outcome: "conn-fail", error: "TIMEOUT", connectMs: 1003 }),
      record(206, { sentMs: 6000, outcome: "lost", status: 202, scheduledMs: 5950 }),
      record(207, { sentMs: 6000, outcome: "unfinished", status: 202 }),
    ];
    const s = summarizeQueries(records, 2000, 5000);
    expect(s).toMatchObject({ sent: 109, answered: 102, failed: 1, refused: 2, connFailures: 2, lost: 1, unfinished: 1, late: 1, slowConnects: 1, connectMaxMs: 1003 });
    expect(s.refusedByStatus).toEqual({ "429": 1, "503": 1 });
    expect(s.connErrors).toEqual({ ECONNRESET: 1, TIMEOUT: 1 });
    // 101 steady answers: overheads 1..100 and 33000.
    expect(s.overhead).toEqual({ p50: 51, p99: 100, max: 33_000 });
    expect(s.queueWait?.p99).toBe(98);
    expect(s.sendLagP99Ms).toBe(0); // one query of 109 sent 50 ms late
    expect(s.startup).toEqual({ p50: 7000, p99: 7000, max: 7000 }); // the warm-up's one answer, on its own
    expect(summarizeQueries([record(0, { scheduledMs: 0, sentMs: 7 })], 2000, 0).sendLagP99Ms).toBe(7);
    expect(summarizeQueries([], 2000, 5000)).toMatchObject({ sent: 0, overhead: undefined, sendLagP99Ms: undefined });
  });

  it("reads the event-loop p99 from the master's /metrics", () => {
    const text = [
      "# HELP aiswarm_master_nodejs_eventloop_lag_p99_seconds The 99th percentile of the recorded event loop delays.",
      "# TYPE aiswarm_master_nodejs_eventloop_lag_p99_seconds gauge",
      "aiswarm_master_nodejs_eventloop_lag_p90_seconds 0.0105",
      "aiswarm_master_nodejs_eventloop_lag_p99_seconds 0.012345",
    ].join("\n");
    expect(eventLoopP99Ms(text)).toBeCloseTo(12.345, 6);
    expect(eventLoopP99Ms('aiswarm_master_nodejs_eventloop_lag_p99_seconds{host="a"} 1.5e-2\n')).toBeCloseTo(15, 6);
    expect(eventLoopP99Ms("aiswarm_master_nodejs_eventloop_lag_p99_seconds NaN\n")).toBeUndefined();
    expect(eventLoopP99Ms("nothing here")).toBeUndefined();
  });

  it("holds the two target levels to their targets and prints a row per level", () => {
    expect(targetsFor({ workers: 200, rate: 100 })).toBeUndefined();
    const base = summarizeQueries([record(0, { sentMs: 6000, latencyMs: 2030 })], 2000, 5000);
    const row = (fields: Partial<LevelRow>): LevelRow => ({ master: "after", level: { workers: 1000, rate: 350 }, page: true, queries: base, lagP99MaxMs: 15, lagP99MedianMs: 11, masterCpuPct: 55.4, masterRssMaxMb: 120.2, chromiumCpuPct: 20, pageKBps: 3.25, notes: [], ...fields });
    expect(checkTargets(row({}))).toEqual({ text: "✓ lag p99 < 20 ms, ✓ overhead p99 < 50 ms", met: true });
    expect(checkTargets(row({ lagP99MaxMs: 25 }))).toEqual({ text: "✗ lag p99 < 20 ms, ✓ overhead p99 < 50 ms", met: false });
    expect(checkTargets(row({ lagP99MaxMs: undefined })).met).toBe(false);
    const big = row({ level: { workers: 2000, rate: 700 }, queries: { ...base, slowConnects: 1 } });
    expect(checkTargets(big)).toEqual({ text: "✗ no conn failure, ✓ overhead p99 < 200 ms", met: false });
    expect(checkTargets(row({ level: { workers: 50, rate: 100 } }))).toEqual({ text: "—", met: undefined });
    const table = formatTable([row({})], true).split("\n");
    expect(table).toHaveLength(3);
    expect(table[2]).toBe("| after | 1000 | 350 | open | 1 | 1 | 0 | 0 / 0 | 0 | 0 | 0 | 30 / 30 / 30 | 55 | 120 | 15.0 / 11.0 | 20 | 3.3 | ✓ lag p99 < 20 ms, ✓ overhead p99 < 50 ms |");
    expect(formatTable([row({ page: false, masterCpuPct: undefined })], false)).toContain("| none |");
  });

  it("parses a whole HTTP response the server closed after", () => {
    const raw = (text: string): Buffer => Buffer.from(text, "latin1");
    expect(parseResponse(raw('HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{"a":"b"}'))).toEqual({ status: 200, body: { a: "b" } });
    expect(parseResponse(raw("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nup 1"))).toEqual({ status: 200, body: "up 1" });
    expect(parseResponse(raw("HTTP/1.1 204 No Content\r\n\r\n"))).toEqual({ status: 204, body: undefined });
    expect(parseResponse(raw('HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{"cut'))).toBeUndefined();
    expect(parseResponse(raw("garbage"))).toBeUndefined();
  });

  it("reads RSS, parents and process-tree CPU from /proc texts", () => {
    expect(rssFromStatus("Name:\tnode\nVmRSS:\t  123456 kB\nThreads: 11\n")).toBe(123456 * 1024);
    expect(rssFromStatus("Name:\tkthreadd\n")).toBeUndefined();
    expect(ppidFromStat("4242 (chromium (renderer)) S 4200 4242 0 0")).toBe(4200);
    const parents = new Map([[2, 1], [3, 2], [4, 2], [5, 9], [6, 4]]);
    expect(descendantsIn(parents, 2).sort()).toEqual([3, 4, 6]);
    expect(descendantsIn(parents, 7)).toEqual([]);
    // 3 kept running (+5), 4 ended (lost), 6 is new (all of it counts).
    expect(treeCpuDelta(new Map([[3, 10], [4, 7]]), new Map([[3, 15], [6, 2]]))).toBe(7);
    // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait, in 10 ms ticks.
    expect(busyMsFromProcStat("cpu  100 2 30 5000 40 0 5 1 0 0\ncpu0 50 1 15 2500 20 0 2 0 0 0\n")).toBe(1380);
    expect(busyMsFromProcStat("intr 1 2 3")).toBeUndefined();
    const netstat = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 17 17\nIpExt: InNoRoutes\nIpExt: 0\n";
    expect(listenOverflowsFromNetstat(netstat)).toBe(17);
    expect(listenOverflowsFromNetstat("IpExt: InNoRoutes\nIpExt: 0\n")).toBeUndefined();
  });
});

const missing = masterMissing();
if (missing !== undefined) console.warn(`[skip] fleet against the master: ${missing}`);

describe.skipIf(missing !== undefined)("the fleet against a real Mosquitto and master", () => {
  const HEARTBEAT_TIMEOUT_MS = 1500;
  let broker: Broker;
  let master: Master;
  let spy: MqttSpy;
  let fleet: Fleet;
  const results: { workerId: string; taskId: string; outcome: ResultOutcome; detail: string }[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
    master = await startMaster({ mqttPort: broker.port, env: { HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS), LOG_LEVEL: "warn" } });
    spy = await MqttSpy.connect(broker.port, "ai-system/#");
    fleet = new Fleet({ count: 10, nodes: 4, brokerUrl: `mqtt://127.0.0.1:${broker.port}`, grpcAddress: master.grpcAddr, grpcToken: LAUNCH_GRPC_TOKEN, heartbeatMs: 300, workMs: 150, idTag: "t001" });
    fleet.on("result", (workerId, taskId, outcome, detail) => results.push({ workerId, taskId, outcome, detail }));
    await fleet.start();
  });

  afterAll(async () => {
    await fleet?.stop({ graceMs: 1000 });
    await spy?.close();
    await master?.process.stop();
    await broker?.stop();
  });

  it("registers every worker, shown in /api/workers with its node and language", async () => {
    expect(fleet.counters()).toMatchObject({ workers: 10, registered: 10, connected: 10 });
    const workers = await eventually("10 idle fleet workers", async () => {
      const listed = (await listWorkers(master.url)).filter((w) => w.id.includes("-t001-"));
      return listed.length === 10 && listed.every((w) => w.status === "idle") ? listed : undefined;
    }, 10_000);
    const byId = new Map(workers.map((w) => [w.id, w]));
    for (const identity of fleet.identities) {
      expect(byId.get(identity.id)).toMatchObject({ language: identity.language, node: identity.node, status: "idle" });
    }
    expect(new Set(workers.map((w) => w.node))).toEqual(new Set(["vm-01", "vm-02", "vm-03", "vm-04"]));
    expect(new Set(workers.map((w) => w.language))).toEqual(new Set(["python", "go", "java"]));
  });

  it("answers every query submitted through the REST API exactly once", async () => {
    const before = fleet.counters();
    const texts = Array.from({ length: 30 }, (_, i) => `fleet query ${i}`);
    const ids = await Promise.all(texts.map((text) => submit(master.url, text)));
    const answers = await Promise.all(ids.map((id) => waitForAnswer(master.url, id, 20_000)));
    const fleetIds = new Set(fleet.identities.map((w) => w.id));
    answers.forEach((answer, i) => {
      expect(answer.status).toBe("done");
      expect(fleetIds.has(answer.worker?.id ?? "")).toBe(true);
      expect(answer.answer).toBe(offlineAnswer(answer.worker?.id ?? "", texts[i] as string));
      expect(answer.provider).toBe("offline");
      expect((answer.timings.finished_ms ?? 0) - (answer.timings.received_ms ?? 0)).toBeGreaterThanOrEqual(150);
    });
    await sleep(300); // anything extra would have arrived by now
    for (const id of ids) expect(results.filter((r) => r.taskId === id)).toEqual([expect.objectContaining({ outcome: "accepted" })]);
    const after = fleet.counters();
    expect(after.tasksReceived - before.tasksReceived).toBe(30);
    expect(after.resultsAccepted - before.resultsAccepted).toBe(30);
    expect(after).toMatchObject({ tasksRejected: 0, duplicateTasks: 0, resultsDuplicate: 0, resultsRejected: 0, malformedTasks: 0, errors: 0 });
    // An accepted result frees the worker without a word: the only statuses are the idle after connecting.
    expect(spy.json(/\/status$/).filter((s) => String(s.worker_id).includes("-t001-") && s.status !== "idle")).toEqual([]);
  });

  it("keeps every worker alive past the master's heartbeat timeout", async () => {
    await sleep(HEARTBEAT_TIMEOUT_MS * 2.5);
    const listed = (await listWorkers(master.url)).filter((w) => w.id.includes("-t001-"));
    expect(listed).toHaveLength(10);
    expect(listed.filter((w) => w.status !== "idle")).toEqual([]);
    expect(Date.now() - Math.min(...listed.map((w) => w.last_seen_ms))).toBeLessThan(HEARTBEAT_TIMEOUT_MS);
    expect(fleet.counters().heartbeats).toBeGreaterThan(10 * 5);
  });

  it("ignores a second delivery, drops a malformed task, and says idle after a result the master refused", async () => {
    const worker = fleet.identities[0]?.id as string;
    const topic = `ai-system/workers/${worker}/tasks`;
    const before = fleet.counters();
    const mark = spy.messages.length;
    const task = JSON.stringify({ ...goodTask, task_id: "q_not_from_the_master", ts: Date.now() });
    await spy.publish(topic, task);
    await spy.publish(topic, task); // QoS 1 may deliver twice (rule 6)
    await spy.publish(topic, "not json");
    const refused = await eventually("the refused result", () => results.find((r) => r.taskId === "q_not_from_the_master"), 10_000);
    expect(refused).toMatchObject({ workerId: worker, outcome: "rejected", detail: "NOT_FOUND" }); // final (rule 5)
    const after = fleet.counters();
    expect(after.tasksReceived - before.tasksReceived).toBe(2);
    expect(after.duplicateTasks - before.duplicateTasks).toBe(1);
    expect(after.malformedTasks - before.malformedTasks).toBe(1);
    expect(after.resultsRejected - before.resultsRejected).toBe(1);
    const since = spy.messages.slice(mark);
    const idle = await eventually("status idle", () => since.concat(spy.messages.slice(mark + since.length)).find((m) => m.topic === `ai-system/workers/${worker}/status` && m.payload.includes('"idle"')), 5_000);
    expect(JSON.parse(idle.payload)).toMatchObject({ v: 1, type: "status", worker_id: worker, status: "idle", task_id: null });
    // At LOG_LEVEL warn the two errors are published on P/logs (never the payload).
    const events = spy.messages.slice(mark).filter((m) => m.topic === "ai-system/logs").map((m) => JSON.parse(m.payload) as Record<string, unknown>);
    expect(events.filter((e) => e.source === worker && e.level === "error")).toHaveLength(2);
  });

  it("retries SendResult while the master is down and delivers it once the master is back (rule 5)", async () => {
    const before = fleet.counters();
    const slow = new Fleet({ count: 1, brokerUrl: `mqtt://127.0.0.1:${broker.port}`, grpcAddress: master.grpcAddr, grpcToken: LAUNCH_GRPC_TOKEN, heartbeatMs: 300, workMs: 1500, idTag: "slow" });
    await fleet.stop({ graceMs: 1000 }); // only the slow worker may take the query
    await slow.start();
    try {
      await eventually("the slow worker idle", async () => ((await listWorkers(master.url)).some((w) => w.id.includes("-slow-") && w.status === "idle") ? true : undefined), 10_000);
      const id = await submit(master.url, "survive a master restart");
      await eventually("the query assigned", async () => ((await listWorkers(master.url)).some((w) => w.task_id === id) ? true : undefined), 5_000, 20);
      const { httpPort, grpcPort, dbPath } = master;
      await master.process.stop();
      await sleep(1_500); // the work ends while the master is down
      master = await startMaster({ mqttPort: broker.port, httpPort, grpcPort, dbPath, env: { HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS), LOG_LEVEL: "warn" } });
      const answer = await waitForAnswer(master.url, id, 20_000);
      expect(answer).toMatchObject({ status: "done", worker: { id: slow.identities[0]?.id } });
      // The ack reaches the worker just after the master answered the client.
      await eventually("the accepted ack", () => (slow.counters().resultsAccepted === 1 ? true : undefined), 5_000, 20);
      expect(slow.counters().resultsRejected).toBe(0);
      expect(slow.counters().resultRetries).toBeGreaterThan(0);
    } finally {
      await slow.stop({ graceMs: 0 });
    }
    expect(before.connected).toBe(10);
  });

  it("stop() says offline and leaves nothing open: a process that only ran a fleet exits by itself", async () => {
    const script = [
      `const { Fleet } = require(${JSON.stringify(path.join(REPO_ROOT, "bench/fleet.ts"))});`,
      `const fleet = new Fleet({ count: 5, brokerUrl: "mqtt://127.0.0.1:${broker.port}", grpcAddress: "${master.grpcAddr}", grpcToken: "${LAUNCH_GRPC_TOKEN}", heartbeatMs: 200, workMs: 100, idTag: "exit" });`,
      "fleet.start().then(() => fleet.stop({ graceMs: 500 })).then((c) => console.log('stopped ' + c.connected + ' ' + c.registered));",
    ].join("\n");
    const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const stoppedAt = await eventually("the fleet to stop", () => (output.includes("stopped") ? Date.now() : undefined), 20_000, 20);
    const code = await Promise.race([exit, sleep(5_000).then(() => "still running" as const)]);
    if (code === "still running") child.kill("SIGKILL");
    expect(code).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(4_000);
    expect(output).toContain("stopped 0 5");
    const offline = spy.json(/\/status$/).filter((s) => String(s.worker_id).includes("-exit-") && s.status === "offline");
    expect(offline).toHaveLength(5);
  });
});
