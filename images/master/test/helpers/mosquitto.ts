// A real Mosquitto broker for tests: its own temp config, a free loopback port,
// stopped by PID.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitUntil } from "./net";

const CANDIDATES = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"];

export function mosquittoPath(): string | undefined {
  for (const path of CANDIDATES) {
    if (spawnSync(path, ["-h"]).error === undefined) return path;
  }
  return undefined;
}

export interface Broker {
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function startMosquitto(port?: number): Promise<Broker> {
  const binary = mosquittoPath();
  if (!binary) throw new Error("mosquitto is not installed (apt-get install -y mosquitto)");
  const brokerPort = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "master-mosquitto-"));
  const conf = join(dir, "mosquitto.conf");
  // set_tcp_nodelay: without it Nagle delays each small QoS 1 message by up to 40 ms.
  writeFileSync(conf, `listener ${brokerPort} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n`);
  const proc = spawn(binary, ["-c", conf], { stdio: "ignore" });
  await waitUntil("mosquitto to listen", async () => ((await canConnect(brokerPort)) ? true : undefined));
  return {
    port: brokerPort,
    proc,
    stop: async () => {
      if (proc.exitCode === null && proc.pid !== undefined) {
        const exited = new Promise((resolve) => proc.once("exit", resolve));
        process.kill(proc.pid, "SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
