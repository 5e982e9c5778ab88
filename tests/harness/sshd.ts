// Starts a real OpenSSH server on a free loopback port for the harness tests:
// temp host key, a fresh client key in authorized_keys, AcceptEnv limited to
// HARNESS_* so the env-refusal path can be tested too. Stopped by its PID.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "../../launch/ports";

export interface TestSshd {
  port: number;
  user: string;
  privateKey: string;
  hostPublicKey: string;
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

export function sshdAvailable(): boolean {
  return fs.existsSync(SSHD) && fs.existsSync("/usr/bin/ssh-keygen");
}

export async function startSshd(): Promise<TestSshd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "harness-sshd-"));
  const keygen = (file: string) => execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
  keygen(path.join(dir, "host_key"));
  keygen(path.join(dir, "client_key"));
  fs.copyFileSync(path.join(dir, "client_key.pub"), path.join(dir, "authorized_keys"));
  fs.chmodSync(path.join(dir, "authorized_keys"), 0o600);
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${path.join(dir, "host_key")}`,
    `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
    `PidFile ${path.join(dir, "sshd.pid")}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    "StrictModes no",
    "UsePAM no",
    "AcceptEnv HARNESS_*",
    "AllowStreamLocalForwarding yes",
  ].join("\n");
  fs.writeFileSync(path.join(dir, "sshd_config"), `${config}\n`);
  const child: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
  await waitForPort(port, child, () => log);
  return {
    port,
    user: os.userInfo().username,
    privateKey: fs.readFileSync(path.join(dir, "client_key"), "utf8"),
    hostPublicKey: fs.readFileSync(path.join(dir, "host_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" "),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
