/**
 * npm run local: Mosquitto, the master and workers as plain processes on
 * loopback, for trying the system without Docker. Stops everything it started,
 * by PID, on Ctrl-C or SIGTERM.
 *
 * Env: LOCAL_HTTP_PORT (8888), LOCAL_GRPC_PORT (50051), LOCAL_MQTT_PORT (18830),
 * LOCAL_WORKERS (python,python,go,java), LOCAL_DB_PATH (.local/master.db),
 * LOCAL_STORE (sqlite; `etcd` starts three etcd members on loopback, TLS with
 * client certificates, and runs the master with STORE=etcd; their data lives
 * in a temporary folder removed on exit),
 * and the worker settings passed through as they are: SIMULATED_WORK_MS,
 * LLM_PROVIDER, GEMINI_*, OPENAI_*, LLM_TIMEOUT_MS.
 * The master's front door is open by default (plain HTTP on loopback, no
 * access control); LOCAL_WEB_TOKEN (WEB_AUTH_TOKEN, at least 16 characters)
 * and LOCAL_WEB_TLS_CERT_FILE + LOCAL_WEB_TLS_KEY_FILE (WEB_TLS_*) close it.
 */
import { mkdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { etcdMasterEnv, startEtcd, type EtcdCluster } from "../launch/etcd";
import { startMosquitto } from "../launch/mosquitto";
import { masterMissing, REPO_ROOT, startMaster, startWorker, workerMissing, WORKER_LANGUAGES, type WorkerLanguage } from "../launch/system";
import { stopAll, type ManagedProcess } from "../launch/processes";
import { defaultsAsEnv } from "../components/workerSettings";

const PASSED_THROUGH = /^(SIMULATED_WORK_MS|LLM_PROVIDER|LLM_TIMEOUT_MS|GEMINI_[A-Z_]+|OPENAI_[A-Z_]+)$/;

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`${name} must be a port number (1-65535), got "${raw}"`);
  return port;
}

async function assertFree(port: number, variable: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", () => reject(new Error(`port ${port} is in use: set ${variable} to a free port`)));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

function workerLanguages(): WorkerLanguage[] {
  const raw = process.env.LOCAL_WORKERS ?? "python,python,go,java";
  return raw.split(",").map((entry) => {
    const language = entry.trim();
    if (!(WORKER_LANGUAGES as readonly string[]).includes(language)) {
      throw new Error(`LOCAL_WORKERS: unknown language "${language}" (expected ${WORKER_LANGUAGES.join(", ")})`);
    }
    return language as WorkerLanguage;
  });
}

/** The master's front door settings, from LOCAL_WEB_* (unset: open, as by default). */
function webEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  const names: [string, string][] = [
    ["LOCAL_WEB_TOKEN", "WEB_AUTH_TOKEN"],
    ["LOCAL_WEB_TLS_CERT_FILE", "WEB_TLS_CERT_FILE"],
    ["LOCAL_WEB_TLS_KEY_FILE", "WEB_TLS_KEY_FILE"],
  ];
  for (const [local, master] of names) {
    const value = process.env[local];
    if (value !== undefined && value !== "") env[master] = value;
  }
  return env;
}

function passedThroughEnv(): Record<string, string> {
  const env: Record<string, string> = { SIMULATED_WORK_MS: "10000" };
  for (const [key, value] of Object.entries(process.env)) {
    if (PASSED_THROUGH.test(key) && value !== undefined) env[key] = value;
  }
  return env;
}

/** LOCAL_STORE: the master's store engine. */
function storeFromEnv(): "sqlite" | "etcd" {
  const raw = process.env.LOCAL_STORE ?? "sqlite";
  if (raw !== "sqlite" && raw !== "etcd") throw new Error(`LOCAL_STORE: unknown store "${raw}" (expected sqlite or etcd)`);
  return raw;
}

let etcd: EtcdCluster | undefined;
/** Stopped first, so its last commit reaches etcd before the members stop. */
let masterProcess: ManagedProcess | undefined;

async function main(): Promise<void> {
  const store = storeFromEnv();
  const httpPort = portFromEnv("LOCAL_HTTP_PORT", 8888);
  const grpcPort = portFromEnv("LOCAL_GRPC_PORT", 50051);
  const mqttPort = portFromEnv("LOCAL_MQTT_PORT", 18830);
  const languages = workerLanguages();
  const notBuilt = masterMissing();
  if (notBuilt !== undefined) throw new Error(notBuilt);
  await assertFree(httpPort, "LOCAL_HTTP_PORT");
  await assertFree(grpcPort, "LOCAL_GRPC_PORT");
  await assertFree(mqttPort, "LOCAL_MQTT_PORT");

  const dbPath = process.env.LOCAL_DB_PATH ?? path.join(REPO_ROOT, ".local", "master.db");
  mkdirSync(path.dirname(dbPath), { recursive: true });

  console.log(`starting mosquitto on 127.0.0.1:${mqttPort}`);
  const broker = await startMosquitto(mqttPort);
  let storeEnv: Record<string, string> = {};
  if (store === "etcd") {
    console.log("starting three etcd members on loopback (TLS, client certificates)");
    etcd = await startEtcd(3);
    console.log(`etcd members: ${etcd.endpoints.join(" ")}`);
    storeEnv = etcdMasterEnv(etcd);
  }
  const where = store === "etcd" ? "store etcd" : `db ${path.relative(process.cwd(), dbPath)}`;
  console.log(`starting the master (http ${httpPort}, grpc ${grpcPort}, ${where})`);
  const master = await startMaster({
    mqttPort: broker.port,
    httpPort,
    grpcPort,
    dbPath,
    until: "leading",
    env: { RATE_LIMIT_PER_MINUTE: "120", MAX_QUEUED_PER_SESSION: "10", ...defaultsAsEnv("HEARTBEAT_TIMEOUT_MS", "LEASE_MS"), ...webEnv(), ...storeEnv },
  });
  masterProcess = master.process;
  const workerEnv = passedThroughEnv();
  languages.forEach((language, index) => {
    const missing = workerMissing(language);
    if (missing !== undefined) {
      console.log(`not starting a ${language} worker: ${missing}`);
      return;
    }
    const worker = startWorker(language, {
      mqttPort: broker.port,
      grpcAddr: master.grpcAddr,
      node: `local-${index + 1}`,
      workerId: `${language}-local-${index + 1}`,
      env: { ...workerEnv, ...defaultsAsEnv("HEARTBEAT_INTERVAL_MS") },
    });
    console.log(`started ${worker.id} (pid ${worker.process.pid})`);
  });
  console.log(`simulated work: ${workerEnv.SIMULATED_WORK_MS} ms; provider: ${workerEnv.LLM_PROVIDER ?? "auto"}`);
  const web = webEnv();
  console.log(`web access control: ${web.WEB_AUTH_TOKEN === undefined ? "off (anyone who reaches the port may use it)" : "token (LOCAL_WEB_TOKEN)"}`);
  console.log("ready; Ctrl-C stops everything. Web page:");
  console.log(master.url);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping every process started here`);
  await masterProcess?.stop();
  await stopAll();
  await etcd?.stop(); // (its members are stopped already; this removes their data)
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

main().catch(async (error: unknown) => {
  console.error(`npm run local: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll();
  await etcd?.stop();
  process.exit(1);
});
