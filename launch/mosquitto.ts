// A real Mosquitto on a free loopback port (tests, benchmarks, `npm run local`).
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, waitForPort } from "./ports";
import { ManagedProcess } from "./processes";

const MOSQUITTO = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((p) => existsSync(p));

/** Why a broker cannot be started here, or undefined when it can (tests skip with it). */
export function mosquittoMissing(): string | undefined {
  return MOSQUITTO === undefined ? "mosquitto is not installed: apt-get install -y mosquitto (the .ci/run script does this)" : undefined;
}

export interface Broker {
  port: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * A real Mosquitto (Debian's package) on a free loopback port (or `port`). `settings` are the
 * listener's config lines after the port: by default anonymous access; tests of TLS and
 * passwords pass their own (`allow_anonymous false`, `password_file …`, `certfile …`). It logs
 * to stderr, which it does not buffer (its stdout is block-buffered into a pipe), so
 * `process.logs` shows each connection as it happens (client id, protocol, clean session, keepalive).
 */
export async function startMosquitto(port?: number, settings: readonly string[] = ["allow_anonymous true"]): Promise<Broker> {
  const missing = mosquittoMissing();
  if (missing !== undefined) throw new Error(missing);
  const brokerPort = port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), "ai-swarm-mosquitto-"));
  const config = path.join(dir, "mosquitto.conf");
  writeFileSync(
    config,
    [`listener ${brokerPort} 127.0.0.1`, ...settings, "persistence false", "log_dest stderr", "set_tcp_nodelay true", ""].join("\n"),
  );
  const proc = new ManagedProcess(`mosquitto:${brokerPort}`, MOSQUITTO as string, ["-c", config], process.env);
  await waitForPort(brokerPort);
  return {
    port: brokerPort,
    process: proc,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
