// Runs the built master (dist/main.js) as a real process and reads its JSON logs.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { mosquittoMissing } from "../../../../launch/mosquitto";
import { eventually as waitUntil, freePort } from "../../../../launch/ports";

export const MAIN_JS = resolve(__dirname, "..", "..", "dist", "main.js");

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface MasterProcess {
  proc: ChildProcess;
  logs: LogLine[];
  /** Raw stdout+stderr, to check secrets never appear. */
  output: () => string;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

export function builtMasterExists(): boolean {
  return existsSync(MAIN_JS);
}

/** The image's HEALTHCHECK (dist/healthcheck.js) as Docker runs it, with this environment: its exit code. */
export function runHealthcheck(env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(dirname(MAIN_JS), "healthcheck.js")], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: "ignore" });
    child.once("exit", resolve);
  });
}

export function spawnMaster(env: Record<string, string>): MasterProcess {
  const proc = spawn(process.execPath, [MAIN_JS], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  let raw = "";
  let pending = "";
  proc.stdout?.on("data", (chunk: Buffer) => {
    raw += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: "raw", msg: line });
      }
    }
  });
  proc.stderr?.on("data", (chunk: Buffer) => {
    raw += chunk.toString();
  });
  const exited = new Promise<number | null>((resolvePromise) => proc.once("exit", (code) => resolvePromise(code)));
  return {
    proc,
    logs,
    output: () => raw,
    exited,
    kill: async (signal) => {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) process.kill(proc.pid, signal);
      return exited;
    },
  };
}

export async function startMaster(env: Record<string, string>): Promise<MasterProcess> {
  const master = spawnMaster(env);
  await waitUntil(
    "master ready",
    () => {
      if (master.proc.exitCode !== null) throw new Error(`master exited early:\n${master.output()}`);
      return master.logs.find((l) => l.msg === "master ready");
    },
    20_000,
  );
  return master;
}

/** Ports, addresses and the environment of a master on loopback against `brokerPort`, with its gRPC token in a file under `dir`. */
export interface LoopbackMaster {
  env: Record<string, string>;
  base: string;
  httpPort: number;
  grpcAddress: string;
}

export async function loopbackMasterEnv(dir: string, brokerPort: number, token: string, extra: Record<string, string> = {}): Promise<LoopbackMaster> {
  const tokenFile = join(dir, "grpc_token");
  writeFileSync(tokenFile, `${token}\n`);
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  return {
    base: `http://127.0.0.1:${httpPort}`,
    httpPort,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    env: {
      HTTP_PORT: String(httpPort),
      GRPC_PORT: String(grpcPort),
      BIND_HOST: "127.0.0.1",
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(brokerPort),
      GRPC_TOKEN_FILE: tokenFile,
      DB_PATH: join(dir, "data", "master.db"),
      ...extra,
    },
  };
}

/** Why the master cannot run as a process with a broker here (tests skip with it), or undefined. */
export function masterProcessMissing(): string | undefined {
  return mosquittoMissing() ?? (builtMasterExists() ? undefined : `${MAIN_JS} is missing (run npm run build; npm test does it first)`);
}
