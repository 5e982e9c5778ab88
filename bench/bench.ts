/**
 * npm run bench: throughput and end-to-end latency of the query system on
 * loopback. For each fleet (one language at a time, then a mixed fleet) it
 * starts Mosquitto, the master and the workers with 0 ms simulated work and the
 * offline provider, then sends BENCH_QUERIES queries at each concurrency level.
 *
 * Latency is measured by the client: from POST /api/queries (with
 * `Prefer: wait`, so the master answers in the same response) until it holds
 * the finished query.
 *
 * Each fleet runs once per store engine (BENCH_STORES) in the same run: the
 * master on SQLite, and on etcd with three members on loopback (TLS, client
 * certificates, launch/etcd.ts).
 *
 * Env: BENCH_QUERIES (1000), BENCH_CONCURRENCY (1,2,3,4,8,32), BENCH_WORKERS
 * (workers per language, 4), BENCH_FLEETS (python,go,java,mixed), BENCH_STORES
 * (sqlite,etcd).
 */
import { etcdMasterEnv, etcdMissing, startEtcd, type EtcdCluster } from "../launch/etcd";
import { startMosquitto } from "../launch/mosquitto";
import { masterMissing, startMaster, startWorker, workerMissing, type WorkerLanguage } from "../launch/system";
import { waitForIdleWorkers } from "../launch/api";
import { stopAll } from "../launch/processes";
import { HttpConnection } from "./client";
import { perQuery, snapshot, type CpuGroup } from "./cpu";
import { machineBusyMs } from "./proc";
import { summarize, formatTable, type CpuPerQuery, type Row } from "./stats";

type Store = "sqlite" | "etcd";

const { QUERIES, CONCURRENCY, WORKERS, FLEETS, STORES } = settingsFromEnv();

/** The BENCH_* settings; a bad one stops the benchmark before it starts anything. */
function settingsFromEnv(): { QUERIES: number; CONCURRENCY: number[]; WORKERS: number; FLEETS: string[]; STORES: Store[] } {
  try {
    const fleets = (process.env.BENCH_FLEETS ?? "python,go,java,mixed").split(",").map((s) => s.trim());
    fleets.forEach(fleetLanguages);
    const stores = (process.env.BENCH_STORES ?? "sqlite,etcd").split(",").map((s) => s.trim());
    for (const store of stores) {
      if (store !== "sqlite" && store !== "etcd") throw new Error(`BENCH_STORES: unknown store "${store}" (expected sqlite or etcd)`);
    }
    return {
      QUERIES: intFromEnv("BENCH_QUERIES", 1000),
      CONCURRENCY: intListFromEnv("BENCH_CONCURRENCY", "1,2,3,4,8,32"),
      WORKERS: intFromEnv("BENCH_WORKERS", 4),
      FLEETS: fleets,
      STORES: stores as Store[],
    };
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  }
}

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

function intListFromEnv(name: string, fallback: string): number[] {
  const raw = process.env[name] ?? fallback;
  const values = raw.split(",").map((s) => Number(s.trim()));
  if (values.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new Error(`${name} must be a comma-separated list of positive integers, got "${raw}"`);
  }
  return values;
}

function fleetLanguages(fleet: string): WorkerLanguage[] {
  if (fleet === "mixed") return ["python", "go", "java"];
  if (fleet === "python" || fleet === "go" || fleet === "java") return [fleet];
  throw new Error(`BENCH_FLEETS: unknown fleet "${fleet}"`);
}

/**
 * One query from POST to answer, as a client sees it. Returns milliseconds.
 * `Prefer: wait` lets the master answer in the POST's response (200); a 202
 * means it did not finish in time, and the client long-polls for it.
 */
async function oneQuery(connection: HttpConnection, n: number): Promise<number> {
  const started = performance.now();
  const headers = { "x-session-id": `bench-${n % 64}`, prefer: "wait=10" };
  let response = await connection.request("POST", "/api/queries", headers, { query: `benchmark query ${n}` });
  if (response.status !== 200 && response.status !== 202) {
    throw new Error(`POST refused: ${response.status} ${JSON.stringify(response.body)}`);
  }
  const { id } = response.body as { id: string };
  for (;;) {
    const view = response.body as { status: string; error?: string | null };
    if (view.status === "done") return performance.now() - started;
    if (view.status === "failed") throw new Error(`query failed: ${view.error}`);
    response = await connection.request("GET", `/api/queries/${encodeURIComponent(id)}?wait=10000`);
  }
}

interface LevelResult {
  seconds: number;
  latencies: number[];
  cpu: CpuPerQuery;
  otherCpuPct?: number;
  commitsPerQuery?: number;
}

/** How many batches the master has committed so far (its aiswarm_store_commit_seconds histogram). */
async function commitsSoFar(baseUrl: string): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const match = /^aiswarm_store_commit_seconds_count\{[^}]*\} (\d+)$/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

async function run(baseUrl: string, concurrency: number, cpuGroups: readonly CpuGroup[]): Promise<LevelResult> {
  const commitsBefore = await commitsSoFar(baseUrl);
  const before = snapshot(cpuGroups);
  const machineBefore = machineBusyMs();
  const { hostname, port } = new URL(baseUrl);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  // One connection per lane, as many browsers or API clients would hold.
  const lanes = Array.from({ length: concurrency }, async () => {
    const connection = new HttpConnection(hostname, Number(port));
    try {
      while (next < QUERIES) {
        const n = next;
        next += 1;
        latencies.push(await oneQuery(connection, n));
      }
    } finally {
      connection.close();
    }
  });
  await Promise.all(lanes);
  const seconds = (performance.now() - started) / 1000;
  const after = snapshot(cpuGroups);
  const machineAfter = machineBusyMs();
  const cpu = perQuery(before, after, latencies.length);
  const of = (name: string): number => cpu.get(name) ?? 0;
  // The machine's busy time minus the benchmark's own processes: other jobs on the cores.
  let ours = 0;
  for (const [name, end] of after) ours += end - (before.get(name) ?? 0);
  const otherCpuPct = machineBefore === undefined || machineAfter === undefined ? undefined : Math.max(0, ((machineAfter - machineBefore - ours) / (seconds * 1000)) * 100);
  const commitsAfter = await commitsSoFar(baseUrl);
  const commitsPerQuery = commitsBefore === undefined || commitsAfter === undefined ? undefined : (commitsAfter - commitsBefore) / latencies.length;
  return { seconds, latencies, otherCpuPct, commitsPerQuery, cpu: { master: of("master"), workers: of("workers"), broker: of("broker"), etcd: of("etcd"), client: of("client") } };
}

async function benchFleet(fleet: string, store: Store): Promise<Row[]> {
  const languages = fleetLanguages(fleet);
  const missing = languages.map(workerMissing).find((m) => m !== undefined) ?? (store === "etcd" ? etcdMissing() : undefined);
  if (missing !== undefined) {
    console.log(`skipping fleet ${fleet} on ${store}: ${missing}`);
    return [];
  }
  const broker = await startMosquitto();
  let etcd: EtcdCluster | undefined;
  if (store === "etcd") etcd = await startEtcd(3);
  const master = await startMaster({ mqttPort: broker.port, until: "leading", env: { LOG_LEVEL: "warn", ...(etcd ? etcdMasterEnv(etcd) : {}) } });
  const workers = languages.flatMap((language) =>
    Array.from({ length: WORKERS }, (_, i) =>
      startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr, node: `bench-${i + 1}`, env: { SIMULATED_WORK_MS: "0", LLM_PROVIDER: "offline", LOG_LEVEL: "warn" } }),
    ),
  );
  await waitForIdleWorkers(master.url, workers.map((w) => w.id), 120_000);
  const cpuGroups: CpuGroup[] = [
    { name: "master", pids: [master.process.pid] },
    { name: "workers", pids: workers.map((w) => w.process.pid) },
    { name: "broker", pids: [broker.process.pid] },
    { name: "etcd", pids: etcd ? etcd.members.map((m) => m.process.pid) : [] },
  ];
  await run(master.url, 8, cpuGroups); // warm-up: JIT, connection pools, SQLite pages
  const rows: Row[] = [];
  for (const concurrency of CONCURRENCY) {
    const { seconds, latencies, cpu, otherCpuPct, commitsPerQuery } = await run(master.url, concurrency, cpuGroups);
    rows.push({ fleet: `${fleet} (${workers.length} workers)`, store, concurrency, queries: QUERIES, seconds, cpu, otherCpuPct, commitsPerQuery, ...summarize(latencies) });
    console.log(formatTable(rows.slice(-1), rows.length === 1));
  }
  await master.process.stop(); // before the members: its last commit reaches them
  await stopAll();
  await etcd?.stop();
  return rows;
}

async function main(): Promise<void> {
  const notBuilt = masterMissing();
  if (notBuilt !== undefined) throw new Error(notBuilt);
  console.log(`benchmark: ${QUERIES} queries per level, concurrency ${CONCURRENCY.join("/")}, ${WORKERS} workers per language, stores ${STORES.join("/")}, 0 ms simulated work, offline provider`);
  const rows: Row[] = [];
  for (const fleet of FLEETS) for (const store of STORES) rows.push(...(await benchFleet(fleet, store)));
  console.log("\nsummary\n" + formatTable(rows, true));
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    console.error(`bench: ${signal}, stopping every process started here`);
    void stopAll().then(() => process.exit(130));
  });
}

main().catch(async (error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll();
  process.exit(1);
});
