/**
 * npm run bench: throughput and end-to-end latency of the query system on
 * loopback. For each fleet (one language at a time, then a mixed fleet) it
 * starts Mosquitto, the master and the workers with 0 ms simulated work and the
 * offline provider, then sends BENCH_QUERIES queries at each concurrency level.
 *
 * Latency is measured by the client: from POST /api/queries until the
 * long-poll GET /api/queries/:id?wait= returns the finished query.
 *
 * Env: BENCH_QUERIES (1000), BENCH_CONCURRENCY (1,8,32,64), BENCH_WORKERS
 * (workers per language, 4), BENCH_FLEETS (python,go,java,mixed).
 */
import { startMosquitto } from "../tests/support/mosquitto";
import { masterMissing, startMaster, startWorker, workerMissing, type WorkerLanguage } from "../tests/support/system";
import { waitForIdleWorkers } from "../tests/support/api";
import { stopAll } from "../tests/support/processes";
import { summarize, formatTable, type Row } from "./stats";

const QUERIES = intFromEnv("BENCH_QUERIES", 1000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,8,32,64").split(",").map((s) => Number(s.trim()));
const WORKERS = intFromEnv("BENCH_WORKERS", 4);
const FLEETS = (process.env.BENCH_FLEETS ?? "python,go,java,mixed").split(",").map((s) => s.trim());

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

function fleetLanguages(fleet: string): WorkerLanguage[] {
  if (fleet === "mixed") return ["python", "go", "java"];
  if (fleet === "python" || fleet === "go" || fleet === "java") return [fleet];
  throw new Error(`BENCH_FLEETS: unknown fleet "${fleet}"`);
}

/** One query from POST to answer, as a client sees it. Returns milliseconds. */
async function oneQuery(baseUrl: string, n: number): Promise<number> {
  const started = performance.now();
  const post = await fetch(`${baseUrl}/api/queries`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-session-id": `bench-${n % 64}` },
    body: JSON.stringify({ query: `benchmark query ${n}` }),
  });
  if (post.status !== 202) throw new Error(`POST refused: ${post.status} ${await post.text()}`);
  const { id } = (await post.json()) as { id: string };
  for (;;) {
    const response = await fetch(`${baseUrl}/api/queries/${id}?wait=10000`);
    const view = (await response.json()) as { status: string; error?: string | null };
    if (view.status === "done") return performance.now() - started;
    if (view.status === "failed") throw new Error(`query failed: ${view.error}`);
  }
}

async function run(baseUrl: string, concurrency: number): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const lanes = Array.from({ length: concurrency }, async () => {
    while (next < QUERIES) {
      const n = next;
      next += 1;
      latencies.push(await oneQuery(baseUrl, n));
    }
  });
  await Promise.all(lanes);
  return { seconds: (performance.now() - started) / 1000, latencies };
}

async function benchFleet(fleet: string): Promise<Row[]> {
  const languages = fleetLanguages(fleet);
  const missing = languages.map(workerMissing).find((m) => m !== undefined);
  if (missing !== undefined) {
    console.log(`skipping fleet ${fleet}: ${missing}`);
    return [];
  }
  const broker = await startMosquitto();
  const master = await startMaster({ mqttPort: broker.port, env: { LOG_LEVEL: "warn" } });
  const workers = languages.flatMap((language) =>
    Array.from({ length: WORKERS }, (_, i) =>
      startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr, node: `bench-${i + 1}`, env: { SIMULATED_WORK_MS: "0", LLM_PROVIDER: "offline", LOG_LEVEL: "warn" } }),
    ),
  );
  await waitForIdleWorkers(master.url, workers.map((w) => w.id), 120_000);
  await run(master.url, 8); // warm-up: JIT, connection pools, SQLite pages
  const rows: Row[] = [];
  for (const concurrency of CONCURRENCY) {
    const { seconds, latencies } = await run(master.url, concurrency);
    rows.push({ fleet: `${fleet} (${workers.length} workers)`, concurrency, queries: QUERIES, seconds, ...summarize(latencies) });
    console.log(formatTable(rows.slice(-1), rows.length === 1));
  }
  await stopAll();
  return rows;
}

async function main(): Promise<void> {
  const notBuilt = masterMissing();
  if (notBuilt !== undefined) throw new Error(notBuilt);
  console.log(`benchmark: ${QUERIES} queries per level, concurrency ${CONCURRENCY.join("/")}, ${WORKERS} workers per language, 0 ms simulated work, offline provider`);
  const rows: Row[] = [];
  for (const fleet of FLEETS) rows.push(...(await benchFleet(fleet)));
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
