// Runs the built master (dist/main.js) as a real process and reads its JSON logs.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { waitUntil } from "./net";

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
