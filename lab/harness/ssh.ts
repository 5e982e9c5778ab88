// SSH with the OpenSSH client, the way @pulumi/command's remote.Command uses
// SSH: one session per command, the command string run by the remote user's
// shell, `stdin` piped in, `environment` sent as SSH "env" requests.
//
// The real provider fails when the server refuses an env request (sshd only
// accepts names listed in its AcceptEnv). The OpenSSH client silently drops
// refused variables instead, so before a command with `environment` runs,
// `assertEnvAccepted` probes the server with the same variable names and
// fails the same way the provider would.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** PEM/OpenSSH private key text (written to a 0600 temp file for the client). */
  privateKey: string;
  /** A host public key ("ssh-ed25519 AAAA…"); when set the server must present it. */
  hostKey?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: string;
  env?: Record<string, string>;
  /** Called with each chunk of output, for progress. */
  onOutput?: (chunk: string) => void;
}

/** Child processes started here, so a failed run can stop them by PID. */
const children = new Set<ChildProcess>();

export function stopAllChildren(): void {
  for (const child of children) if (child.pid && child.exitCode === null) child.kill("SIGTERM");
  children.clear();
}

/** One temp dir per process for key files; removed on exit. */
let keyDir: string | undefined;
const keyFiles = new Map<string, string>();

function keyFileFor(privateKey: string): string {
  const existing = keyFiles.get(privateKey);
  if (existing) return existing;
  keyDir ??= fs.mkdtempSync(path.join(os.tmpdir(), "aiswarm-harness-"));
  const file = path.join(keyDir, `key${keyFiles.size}`);
  // The client rejects keys without a trailing newline or with loose permissions.
  fs.writeFileSync(file, privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, { mode: 0o600 });
  keyFiles.set(privateKey, file);
  return file;
}

export function tempDir(): string {
  keyDir ??= fs.mkdtempSync(path.join(os.tmpdir(), "aiswarm-harness-"));
  return keyDir;
}

export function removeTempFiles(): void {
  if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true });
  keyDir = undefined;
  keyFiles.clear();
}

/** Options shared by every connection: no prompts, fail fast, key-only auth. */
export function sshBaseArgs(target: SshTarget): string[] {
  const args = [
    "-i", keyFileFor(target.privateKey),
    "-p", String(target.port),
    "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "ConnectTimeout=15",
    "-o", "ServerAliveInterval=15",
    "-o", "LogLevel=ERROR",
  ];
  if (target.hostKey) {
    const knownHosts = path.join(tempDir(), `known_hosts_${target.host}_${target.port}`);
    fs.writeFileSync(knownHosts, `[${target.host}]:${target.port} ${target.hostKey.trim()}\n`);
    args.push("-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${knownHosts}`);
  } else {
    // Like the provider without hostKey: any host key is accepted.
    args.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null");
  }
  return args;
}

/** Runs `command` on the target. Resolves with the exit code; never rejects on non-zero. */
export function runRemote(target: SshTarget, command: string, options: RunOptions = {}): Promise<RunResult> {
  // One SetEnv option with every variable: ssh keeps only the first -o of each kind.
  const pairs = Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${quoteSetEnv(value)}`);
  const envArgs = pairs.length > 0 ? ["-o", `SetEnv=${pairs.join(" ")}`] : [];
  const args = [...sshBaseArgs(target), ...envArgs, "-T", `${target.user}@${target.host}`, "--", command];
  return runProcess("ssh", args, options.stdin, options.onOutput);
}

/** ssh_config SetEnv values are split on spaces unless double-quoted. */
function quoteSetEnv(value: string): string {
  if (/["\\\n]/.test(value)) throw new Error("environment values with quotes, backslashes or newlines cannot be sent by the OpenSSH client");
  return /\s/.test(value) || value === "" ? `"${value}"` : value;
}

/** Spawns a process, feeds stdin, collects output. */
export function runProcess(
  file: string,
  args: string[],
  stdin?: string,
  onOutput?: (chunk: string) => void,
  env?: NodeJS.ProcessEnv,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      onOutput?.(chunk);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      onOutput?.(chunk);
    });
    child.on("error", (error) => {
      children.delete(child);
      reject(new Error(`cannot start ${file}: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      children.delete(child);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on("error", () => undefined); // the command may exit without reading stdin
    if (stdin !== undefined && stdin.length > 0) child.stdin.write(stdin);
    child.stdin.end();
  });
}

export interface PipedResult extends RunResult {
  /** How the producer ended (its stdout went to the consumer). */
  producer: { code: number; stderr: string };
  /** Bytes the producer wrote into the consumer's stdin. */
  bytes: number;
}

/**
 * Runs `producer | consumer` (e.g. tar of a build context into `docker build -`): the
 * producer runs in `producer.cwd` and gets `producer.stdin`; the consumer's output is
 * collected and passed to `onOutput` as in runProcess. When the consumer exits first the
 * producer is stopped. Resolves once both have ended; never rejects on non-zero exits.
 */
export function runPiped(
  producer: { file: string; args: string[]; cwd?: string; stdin?: string },
  consumer: { file: string; args: string[]; env?: NodeJS.ProcessEnv },
  onOutput?: (chunk: string) => void,
): Promise<PipedResult> {
  return new Promise((resolve, reject) => {
    const from = spawn(producer.file, producer.args, { stdio: ["pipe", "pipe", "pipe"], cwd: producer.cwd });
    const to = spawn(consumer.file, consumer.args, { stdio: ["pipe", "pipe", "pipe"], env: consumer.env ?? process.env });
    children.add(from);
    children.add(to);
    let failed = false;
    const fail = (file: string, error: Error) => {
      if (failed) return;
      failed = true;
      for (const child of [from, to]) if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      reject(new Error(`cannot start ${file}: ${error.message}`));
    };
    from.on("error", (error) => fail(producer.file, error));
    to.on("error", (error) => fail(consumer.file, error));
    let bytes = 0;
    let producerStderr = "";
    let stdout = "";
    let stderr = "";
    from.stdout.on("data", (chunk: Buffer) => (bytes += chunk.length));
    from.stdout.pipe(to.stdin);
    to.stdin.on("error", () => undefined); // EPIPE when the consumer exits without reading everything
    from.stderr.setEncoding("utf8").on("data", (chunk: string) => (producerStderr += chunk));
    to.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      onOutput?.(chunk);
    });
    to.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      onOutput?.(chunk);
    });
    from.stdin.on("error", () => undefined);
    if (producer.stdin !== undefined && producer.stdin.length > 0) from.stdin.write(producer.stdin);
    from.stdin.end();
    const ended = (child: ChildProcess) =>
      new Promise<number>((done) => child.on("close", (code, signal) => done(code ?? (signal ? 128 : 1))));
    const producerEnded = ended(from);
    const consumerEnded = ended(to).then((code) => {
      // Nobody reads the producer's output any more: stop it rather than let it block.
      if (from.exitCode === null && from.signalCode === null) from.kill("SIGTERM");
      return code;
    });
    void Promise.all([producerEnded, consumerEnded]).then(([producerCode, consumerCode]) => {
      children.delete(from);
      children.delete(to);
      if (!failed) resolve({ code: consumerCode, stdout, stderr, producer: { code: producerCode, stderr: producerStderr }, bytes });
    });
  });
}

/** True when ssh itself could not reach or log in to the server (exit 255 + a connection message). */
export function isConnectionFailure(result: RunResult): boolean {
  return (
    result.code === 255 &&
    /Connection refused|Connection timed out|No route to host|Connection reset|Connection closed|kex_exchange_identification|Could not resolve/i.test(
      result.stderr,
    )
  );
}

const acceptedEnv = new Map<string, Promise<string[]>>();

/**
 * Fails, as the real provider would, when the server does not accept every
 * variable name in `names` (sshd's AcceptEnv). Cached per host and name set.
 */
export async function assertEnvAccepted(target: SshTarget, names: string[]): Promise<void> {
  const refused = await envRefused(target, names);
  if (refused.length > 0) {
    throw new Error(
      `sshd on ${target.host}:${target.port} refuses environment variable(s) ${refused.join(", ")} ` +
        "(not in its AcceptEnv): @pulumi/command's remote.Command fails on this too. " +
        "Pass the values in the command or its stdin instead of `environment`, or allow them with AcceptEnv on the server.",
    );
  }
}

/** The names in `names` the server would refuse (not in its AcceptEnv); cached per host and name set. */
export async function envRefused(target: SshTarget, names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const cacheKey = `${target.user}@${target.host}:${target.port} ${[...names].sort().join(",")}`;
  let probe = acceptedEnv.get(cacheKey);
  if (!probe) {
    const env = Object.fromEntries(names.map((name) => [name, "probe"]));
    probe = runRemote(target, "env", { env }).then((result) =>
      names.filter((name) => !result.stdout.split("\n").includes(`${name}=probe`)),
    );
    acceptedEnv.set(cacheKey, probe);
  }
  return probe;
}

/**
 * Forwards a remote Unix socket (the manager's /var/run/docker.sock) to a
 * local one over SSH, the way `docker -H ssh://…` reaches a remote engine.
 * `extraArgs` are the docker provider's sshOpts.
 */
export interface SocketTunnel {
  socketPath: string;
  close(): void;
}

export async function openSocketTunnel(
  destination: { user: string; host: string; port: number },
  extraArgs: string[],
  remoteSocket = "/var/run/docker.sock",
): Promise<SocketTunnel> {
  const socketPath = path.join(tempDir(), `docker-${destination.host}-${destination.port}-${process.pid}.sock`);
  fs.rmSync(socketPath, { force: true });
  const args = [
    "-N",
    "-o", "BatchMode=yes",
    "-o", "ExitOnForwardFailure=yes",
    "-o", "StreamLocalBindUnlink=yes",
    "-o", "ServerAliveInterval=15",
    "-o", "LogLevel=ERROR",
    "-p", String(destination.port),
    ...extraArgs,
    "-L", `${socketPath}:${remoteSocket}`,
    `${destination.user}@${destination.host}`,
  ];
  const child = spawn("ssh", args, { stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const close = () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    children.delete(child);
  };
  const deadline = Date.now() + 20_000;
  while (!fs.existsSync(socketPath)) {
    if (child.exitCode !== null) {
      children.delete(child);
      throw new Error(`SSH tunnel to ${destination.user}@${destination.host}:${destination.port} failed: ${stderr.trim() || `ssh exited ${child.exitCode}`}`);
    }
    if (Date.now() > deadline) {
      close();
      throw new Error(`SSH tunnel to ${destination.host}:${destination.port}: no socket after 20s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { socketPath, close };
}
