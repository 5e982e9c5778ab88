// The master and the workers as real processes on loopback, from their local
// builds: used by `npm run local`, the tests and the benchmarks.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { webTlsScript } from "../components/scripts";
import { freePort } from "./ports";
import { ManagedProcess } from "./processes";
import { eventually } from "./ports";

export const REPO_ROOT = path.resolve(__dirname, "..");
/** The gRPC token every launched master and worker shares (loopback only). */
export const LAUNCH_GRPC_TOKEN = "launch-grpc-token-0123456789";

export type WorkerLanguage = "python" | "go" | "java";
export const WORKER_LANGUAGES: readonly WorkerLanguage[] = ["python", "go", "java"];

interface Command {
  command: string;
  args: string[];
}

const MASTER_MAIN = path.join(REPO_ROOT, "images/master/dist/main.js");

/** How each worker is started once built (see each images/worker-* README). */
export function workerCommand(language: WorkerLanguage): Command {
  switch (language) {
    case "python":
      return { command: path.join(REPO_ROOT, "images/worker-python/.venv/bin/python"), args: ["-m", "aiswarm_worker"] };
    case "go":
      return { command: path.join(REPO_ROOT, "images/worker-go/bin/worker"), args: [] };
    case "java":
      return { command: "java", args: ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-jar", path.join(REPO_ROOT, "images/worker-java/target/worker-java.jar")] };
  }
}

/** Why a worker cannot run here, or undefined when it is built. */
export function workerMissing(language: WorkerLanguage): string | undefined {
  const built = {
    python: path.join(REPO_ROOT, "images/worker-python/.venv/bin/python"),
    go: path.join(REPO_ROOT, "images/worker-go/bin/worker"),
    java: path.join(REPO_ROOT, "images/worker-java/target/worker-java.jar"),
  }[language];
  return existsSync(built) ? undefined : `${language} worker is not built (${path.relative(REPO_ROOT, built)} missing): run npm run setup`;
}

export function masterMissing(): string | undefined {
  return existsSync(MASTER_MAIN) ? undefined : "master is not built (images/master/dist/main.js missing): run npm run setup";
}

export interface MasterOptions {
  mqttPort: number;
  dbPath?: string;
  httpPort?: number;
  grpcPort?: number;
  env?: Record<string, string>;
  /** Another build of the master to run (its dist/main.js); default images/master/dist/main.js. */
  masterMain?: string;
  /** Options for node itself, before the script (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  nodeArgs?: string[];
  /**
   * What start-up waits for: /healthz ok ("healthy", the default), or also
   * `leader: true` ("leading": with STORE=etcd a master stands by until its
   * campaign succeeds, and a standby's API answers 503).
   */
  until?: "healthy" | "leading";
}

export interface Master {
  url: string;
  grpcAddr: string;
  httpPort: number;
  grpcPort: number;
  dbPath: string;
  process: ManagedProcess;
}

export function tempDbPath(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), "ai-swarm-db-")), "master.db");
}

/** Starts images/master/dist/main.js (or options.masterMain) as a real process and waits until /healthz says ok (and, with `until: "leading"`, that it leads). */
export async function startMaster(options: MasterOptions): Promise<Master> {
  const httpPort = options.httpPort ?? (await freePort());
  const grpcPort = options.grpcPort ?? (await freePort());
  const dbPath = options.dbPath ?? tempDbPath();
  const env = {
    ...baseEnv(),
    HTTP_PORT: String(httpPort),
    GRPC_PORT: String(grpcPort),
    BIND_HOST: "127.0.0.1",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(options.mqttPort),
    GRPC_TOKEN: LAUNCH_GRPC_TOKEN,
    DB_PATH: dbPath,
    HEARTBEAT_TIMEOUT_MS: "3000",
    LEASE_MS: "10000",
    RATE_LIMIT_PER_MINUTE: "0",
    MAX_QUEUED_PER_SESSION: "1000",
    ...options.env,
  };
  const proc = new ManagedProcess(`master:${httpPort}`, process.execPath, [...(options.nodeArgs ?? []), options.masterMain ?? MASTER_MAIN], env);
  // With WEB_TLS_* the port speaks HTTPS; it still answers GET /healthz over plain HTTP.
  const url = `${options.env?.WEB_TLS_CERT_FILE ? "https" : "http"}://127.0.0.1:${httpPort}`;
  await eventually(`master ${url}/healthz`, async () => {
    if (!proc.isRunning) throw new Error(`master exited during start-up:\n${proc.tail()}`);
    try {
      const response = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      if (!response.ok) return undefined;
      if (options.until !== "leading") return true;
      const health = (await response.json()) as { leader?: boolean };
      return health.leader === true ? true : undefined;
    } catch {
      return undefined;
    }
  }, 30_000);
  return { url, grpcAddr: `127.0.0.1:${grpcPort}`, httpPort, grpcPort, dbPath, process: proc };
}

export interface WebCertificate {
  /** The stack's CA certificate (PEM): what a client should trust. */
  ca: string;
  certFile: string;
  keyFile: string;
}

/**
 * A web certificate for 127.0.0.1 made by the stack's own script
 * (webTlsScript in components/scripts.ts, run with sh and the real openssl, as
 * on the manager), written to files in `dir` as the Docker secrets would be.
 * Pass certFile/keyFile as WEB_TLS_CERT_FILE/WEB_TLS_KEY_FILE to startMaster.
 */
export function issueWebCertificate(dir: string): WebCertificate {
  const caDir = path.join(dir, "ca");
  const result = spawnSync("sh", ["-c", webTlsScript("IP:127.0.0.1,DNS:localhost", "127.0.0.1", caDir, path.join(dir, "web"))], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`webTlsScript failed: ${result.stderr}`);
  // It prints the certificate, then the key.
  const end = "-----END CERTIFICATE-----\n";
  const split = result.stdout.lastIndexOf(end) + end.length;
  const certFile = path.join(dir, "web.crt");
  const keyFile = path.join(dir, "web.key");
  writeFileSync(certFile, result.stdout.slice(0, split));
  writeFileSync(keyFile, result.stdout.slice(split), { mode: 0o600 });
  return { ca: readFileSync(path.join(caDir, "ca.crt"), "utf8"), certFile, keyFile };
}

export function opensslMissing(): string | undefined {
  return spawnSync("openssl", ["version"]).error === undefined ? undefined : "openssl is not installed (apt-get install -y openssl)";
}

export interface WorkerOptions {
  mqttPort: number;
  grpcAddr: string;
  workerId?: string;
  node?: string;
  env?: Record<string, string>;
}

export interface StartedWorker {
  id: string;
  language: WorkerLanguage;
  process: ManagedProcess;
}

let workerCounter = 0;

/** Starts a worker process of the given language with the contract's environment. */
export function startWorker(language: WorkerLanguage, options: WorkerOptions): StartedWorker {
  workerCounter += 1;
  const id = options.workerId ?? `${language}-test-${process.pid}-${workerCounter}`;
  const { command, args } = workerCommand(language);
  const env = {
    ...baseEnv(),
    WORKER_ID: id,
    NODE_HOSTNAME: options.node ?? `vm-${language}`,
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(options.mqttPort),
    MASTER_GRPC_ADDR: options.grpcAddr,
    GRPC_TOKEN: LAUNCH_GRPC_TOKEN,
    SIMULATED_WORK_MS: "0",
    HEARTBEAT_INTERVAL_MS: "500",
    LLM_PROVIDER: "offline",
    HEALTH_FILE: path.join(tmpdir(), `ai-swarm-health-${id}`),
    ...options.env,
  };
  return { id, language, process: new ManagedProcess(id, command, args, env, REPO_ROOT) };
}

/** The parent environment without anything that could steer a process at a real service. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ["PATH", "HOME", "LANG", "TMPDIR", "JAVA_HOME", "SHOW_PROCESS_OUTPUT"]) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}
