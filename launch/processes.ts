import { spawn, type ChildProcess } from "node:child_process";

/**
 * A child process the tests started and therefore must stop, by its PID.
 * Output is kept (bounded) so failures can show what the process said.
 */
export class ManagedProcess {
  private readonly child: ChildProcess;
  private output = "";
  private readonly exit: Promise<number | null>;
  private exited = false;

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    cwd?: string,
  ) {
    this.child = spawn(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    const keep = (chunk: Buffer): void => {
      this.output += chunk.toString("utf8");
      if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000);
      if (process.env.SHOW_PROCESS_OUTPUT === "1") process.stderr.write(`[${name}] ${chunk.toString("utf8")}`);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    this.exit = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exited = true;
        resolve(code ?? (signal === null ? null : -1));
      });
      this.child.once("error", (error) => {
        this.output += `\n[spawn error] ${error.message}\n`;
        this.exited = true;
        resolve(null);
      });
    });
    running.add(this);
    void this.exit.then(() => running.delete(this));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isRunning(): boolean {
    return !this.exited;
  }

  get logs(): string {
    return this.output;
  }

  /** Everything printed since `mark` (a length of `logs` taken earlier). */
  logsSince(mark: number): string {
    return this.output.slice(mark);
  }

  async waitForOutput(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (this.exited) throw new Error(`${this.name} exited before printing ${pattern}:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exited && this.child.pid !== undefined) process.kill(this.child.pid, signal);
  }

  /** Resolves with the exit code (null when killed by a signal), or rejects after timeoutMs. */
  async waitForExit(timeoutMs = 30_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL if it is still running after graceMs. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.exited) return;
    this.signal("SIGTERM");
    try {
      await this.waitForExit(graceMs);
    } catch {
      this.signal("SIGKILL");
      await this.exit;
    }
  }

  tail(lines = 40): string {
    return this.output.split("\n").slice(-lines).join("\n");
  }
}

const running = new Set<ManagedProcess>();

/** Stops every process the tests started that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((proc) => proc.stop(3_000)));
}
