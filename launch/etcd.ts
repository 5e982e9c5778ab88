// Real etcd members (Debian's etcd-server) on loopback, for tests, benchmarks and
// `npm run local` with LOCAL_STORE=etcd. Peers and clients speak TLS with
// client certificates from the stack's own CA script (etcdTlsScript in
// components/scripts.ts, run with sh and the real openssl, as on a manager).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { ETCD_COMPACTION_FLAGS } from "../components/etcdSettings";
import { etcdTlsScript } from "../components/scripts";
import { eventually, freePort, waitForPort } from "./ports";
import { ManagedProcess } from "./processes";

const ETCD = ["/usr/bin/etcd", "/usr/local/bin/etcd"].find((p) => existsSync(p));

/** Why etcd members cannot be started here, or undefined when they can. */
export function etcdMissing(): string | undefined {
  if (ETCD === undefined) return "etcd is not installed: apt-get install -y etcd-server (scripts/setup.sh does this)";
  if (spawnSync("openssl", ["version"]).error !== undefined) return "openssl is not installed (apt-get install -y openssl)";
  return undefined;
}

/** PEM files a client (the master) presents to the members: the CA to trust, its certificate and key. */
export interface EtcdClientTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** https://127.0.0.1:clientPort */
  readonly endpoint: string;
  /** The running process (replaced by restart()). */
  process: ManagedProcess;
  /** Stops it with SIGKILL (its data directory stays, so restart() brings it back as the same member). */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data directory. */
  restart(): Promise<void>;
  /** SIGSTOP: the process stays, its connections stay open, nothing answers (a partition as seen by its clients). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Every member's client URL. */
  readonly endpoints: readonly string[];
  /** A client certificate ("master") signed by the members' CA. */
  readonly clientTls: EtcdClientTls;
  /** A certificate signed by another CA: a client the members must refuse. */
  strangerTls(): EtcdClientTls;
  /** Stops every member by PID and removes their data. */
  stop(): Promise<void>;
}

/**
 * The master's environment for STORE=etcd on `cluster`: the members (or
 * `endpoints`, e.g. proxies in front of them), the CA and the master's client
 * certificate as files (never their contents on a command line), and a key prefix.
 */
export function etcdMasterEnv(
  cluster: EtcdCluster,
  { prefix = "/ai-swarm", endpoints = cluster.endpoints }: { prefix?: string; endpoints?: readonly string[] } = {},
): Record<string, string> {
  return {
    STORE: "etcd",
    ETCD_ENDPOINTS: endpoints.join(","),
    ETCD_CA_FILE: cluster.clientTls.caFile,
    ETCD_CERT_FILE: cluster.clientTls.certFile,
    ETCD_KEY_FILE: cluster.clientTls.keyFile,
    ETCD_PREFIX: prefix,
  };
}

/** True when the member at `endpoint` answers GET /health with {"health":"true"} (it sees a leader). */
export async function etcdHealthy(endpoint: string, tls: EtcdClientTls): Promise<boolean> {
  return new Promise((resolve) => {
    const request = https.get(
      `${endpoint}/health`,
      { ca: readFileSync(tls.caFile), cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), timeout: 2_000 },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
        res.on("end", () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
      },
    );
    request.on("timeout", () => request.destroy());
    request.on("error", () => resolve(false));
  });
}

/** Writes a certificate and key printed by etcdTlsScript (CA in caDir, made on first use) to `dir/name.{crt,key}`. */
export function issueEtcdCertificate(name: string, caDir: string, dir: string): { certFile: string; keyFile: string } {
  const result = spawnSync("sh", ["-c", etcdTlsScript(name, "IP:127.0.0.1,DNS:localhost", caDir, path.join(dir, "issued"))], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`etcdTlsScript ${name} failed: ${result.stderr}`);
  const end = "-----END CERTIFICATE-----\n";
  const split = result.stdout.lastIndexOf(end) + end.length;
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  writeFileSync(certFile, result.stdout.slice(0, split));
  writeFileSync(keyFile, result.stdout.slice(split), { mode: 0o600 });
  return { certFile, keyFile };
}

/**
 * `count` (default 3) etcd members forming one cluster on free loopback ports,
 * each with its own data directory under one temporary folder; resolves once
 * every member accepts client connections. TLS everywhere, with client
 * certificate authentication on the client and the peer ports.
 */
export async function startEtcd(count = 3): Promise<EtcdCluster> {
  const missing = etcdMissing();
  if (missing !== undefined) throw new Error(missing);
  const root = mkdtempSync(path.join(tmpdir(), "ai-swarm-etcd-"));
  const caDir = path.join(root, "ca");
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const candidate = await freePort();
      if (!taken.has(candidate)) return taken.add(candidate), candidate;
    }
  };
  const plan: { name: string; client: number; peer: number }[] = [];
  for (let i = 1; i <= count; i++) plan.push({ name: `etcd-${i}`, client: await port(), peer: await port() });
  const initialCluster = plan.map((m) => `${m.name}=https://127.0.0.1:${m.peer}`).join(",");
  const clientTls: EtcdClientTls = { caFile: path.join(caDir, "ca.crt"), ...issueEtcdCertificate("master", caDir, root) };

  const members: EtcdMember[] = plan.map(({ name, client, peer }) => {
    const tls = issueEtcdCertificate(name, caDir, root);
    const args = [
      `--name=${name}`,
      `--data-dir=${path.join(root, name)}`,
      `--listen-client-urls=https://127.0.0.1:${client}`,
      `--advertise-client-urls=https://127.0.0.1:${client}`,
      `--listen-peer-urls=https://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=https://127.0.0.1:${peer}`,
      `--initial-cluster=${initialCluster}`,
      "--initial-cluster-state=new",
      `--initial-cluster-token=${path.basename(root)}`,
      "--client-cert-auth",
      `--trusted-ca-file=${clientTls.caFile}`,
      `--cert-file=${tls.certFile}`,
      `--key-file=${tls.keyFile}`,
      "--peer-client-cert-auth",
      `--peer-trusted-ca-file=${clientTls.caFile}`,
      `--peer-cert-file=${tls.certFile}`,
      `--peer-key-file=${tls.keyFile}`,
      "--logger=zap",
      "--log-level=warn",
      // Short elections on loopback (defaults 100 / 1000 ms are for real networks).
      "--heartbeat-interval=50",
      "--election-timeout=500",
      ...ETCD_COMPACTION_FLAGS,
    ];
    const start = (): ManagedProcess => new ManagedProcess(name, ETCD as string, args, { PATH: process.env.PATH ?? "/usr/bin:/bin" });
    const member: EtcdMember = {
      name,
      clientPort: client,
      peerPort: peer,
      endpoint: `https://127.0.0.1:${client}`,
      process: start(),
      async kill() {
        member.process.signal("SIGKILL");
        await member.process.waitForExit(10_000);
      },
      async restart() {
        if (member.process.isRunning) throw new Error(`${name} is still running`);
        member.process = start();
        await waitForPort(client, 20_000);
        await eventually(`${name} healthy`, async () => ((await etcdHealthy(member.endpoint, clientTls)) ? true : undefined), 20_000, 100);
      },
      pause() {
        member.process.signal("SIGSTOP");
      },
      resume() {
        member.process.signal("SIGCONT");
      },
    };
    return member;
  });

  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.endpoint),
    clientTls,
    strangerTls() {
      const strangerRoot = path.join(root, "stranger");
      return { caFile: clientTls.caFile, ...issueEtcdCertificate("stranger", path.join(strangerRoot, "ca"), strangerRoot) };
    },
    async stop() {
      for (const m of members) m.resume(); // a stopped process ignores SIGTERM until continued
      await Promise.all(members.map((m) => m.process.stop(5_000)));
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(members.map((m) => waitForPort(m.clientPort, 20_000)));
    await Promise.all(
      members.map((m) => eventually(`${m.name} healthy`, async () => ((await etcdHealthy(m.endpoint, clientTls)) ? true : undefined), 20_000, 100)),
    );
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
