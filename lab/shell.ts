// Running host commands (docker, ssh, the lab's bash scripts) from the lab CLI.
import { spawn } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Text written to the command's stdin. */
  input?: string;
  /** Inherit the terminal (for scripts that print their own progress). */
  inheritOutput?: boolean;
  timeoutMs?: number;
}

/** Runs a command and collects its output; never throws on a non-zero exit. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: [options.input === undefined ? "ignore" : "pipe", options.inheritOutput ? "inherit" : "pipe", options.inheritOutput ? "inherit" : "pipe"],
      timeout: options.timeoutMs,
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (err) => reject(new Error(`cannot run ${command}: ${err.message}`)));
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a command and returns its trimmed stdout; throws with the command and its stderr on failure. */
export async function runOk(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${describe(command, args)} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout.trim();
}

/** A short form of a command line for error messages (environment values are left out: they may hold keys). */
export function describe(command: string, args: string[]): string {
  const shown = args.map((a, i) => (args[i - 1] === "-e" ? a.replace(/=.*/, "=…") : a)).slice(0, 6);
  return [command, ...shown, ...(args.length > 6 ? ["…"] : [])].join(" ");
}

/** Pipes `producer`'s stdout into `consumer`'s stdin (e.g. docker save | ssh … docker load). */
export function pipe(
  producer: { command: string; args: string[] },
  consumer: { command: string; args: string[] },
  onProgress: (bytes: number) => void,
  onProducerDone: (bytes: number) => void = () => undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const from = spawn(producer.command, producer.args, { stdio: ["ignore", "pipe", "pipe"] });
    const to = spawn(consumer.command, consumer.args, { stdio: ["pipe", "pipe", "pipe"] });
    let bytes = 0;
    let fromErr = "";
    let toErr = "";
    from.stdout.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      onProgress(bytes);
    });
    from.stdout.on("end", () => onProducerDone(bytes));
    from.stdout.pipe(to.stdin);
    from.stderr.on("data", (c: Buffer) => (fromErr += c.toString()));
    to.stderr.on("data", (c: Buffer) => (toErr += c.toString()));
    to.stdout.resume();
    // An early exit of the consumer must not crash us with EPIPE.
    to.stdin.on("error", () => undefined);
    const exitOf = (child: ReturnType<typeof spawn>) =>
      new Promise<number>((done, fail) => {
        child.on("error", fail);
        child.on("close", (code) => done(code ?? 1));
      });
    Promise.all([exitOf(from), exitOf(to)]).then(([fromCode, toCode]) => {
      // When one side fails the other usually fails too (EPIPE, truncated input): report both.
      const failures: string[] = [];
      if (fromCode !== 0) failures.push(`${describe(producer.command, producer.args)} failed (exit ${fromCode}): ${fromErr.trim()}`);
      if (toCode !== 0) failures.push(`${describe(consumer.command, consumer.args)} failed (exit ${toCode}): ${toErr.trim()}`);
      if (failures.length > 0) reject(new Error(failures.join("; ")));
      else resolve();
    }, reject);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
