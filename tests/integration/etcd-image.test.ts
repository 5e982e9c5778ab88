// The etcd image's entrypoint (images/etcd/entrypoint.sh) against real etcd
// processes (Debian's etcd-server and etcd-client) on loopback, with TLS and
// client certificates as in the stack: a new cluster bootstraps, a member late
// to the bootstrap joins, a lost member is replaced by a new one with an empty
// data directory, a member with data restarts as it was, and bad settings are
// refused before anything starts.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ETCD_COMPACTION_FLAGS } from "../../components/etcdSettings";
import { etcdHealthy, etcdMissing, issueEtcdCertificate, type EtcdClientTls } from "../../launch/etcd";
import { eventually, freePort } from "../../launch/ports";
import { ManagedProcess } from "../../launch/processes";

const ENTRYPOINT = path.join(__dirname, "../../images/etcd/entrypoint.sh");
const etcdctlMissing = spawnSync("etcdctl", ["version"]).error !== undefined ? "etcdctl is not installed: apt-get install -y etcd-client" : undefined;
const missing = etcdMissing() ?? etcdctlMissing;
if (missing !== undefined) console.warn(`SKIPPED the etcd image tests: ${missing}`);
const describeEtcd = missing === undefined ? describe : describe.skip;

interface Seat {
  name: string;
  peer: string;
  client: string;
  dataDir: string;
}

interface ListedMember {
  name: string;
  peerURLs: string[];
  clientURLs?: string[];
}

describeEtcd("the etcd image's entrypoint", () => {
  let root: string;
  let caDir: string;
  let clientTls: EtcdClientTls;
  const processes: ManagedProcess[] = [];

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), "ai-swarm-etcd-image-"));
    caDir = path.join(root, "ca");
    clientTls = { caFile: path.join(caDir, "ca.crt"), ...issueEtcdCertificate("master", caDir, root) };
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(5_000)));
    rmSync(root, { recursive: true, force: true });
  });

  // Every port once: freePort may hand out a port again once it is free.
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const candidate = await freePort();
      if (!taken.has(candidate)) return taken.add(candidate), candidate;
    }
  };
  const seat = async (name: string, cluster: string): Promise<Seat> => ({
    name,
    peer: `https://127.0.0.1:${await port()}`,
    client: `https://127.0.0.1:${await port()}`,
    dataDir: path.join(root, cluster, name),
  });

  /** The entrypoint as the service runs it: settings in ETCD_* variables, the compaction flags as arguments. */
  const memberEnv = (me: Seat, configured: readonly Seat[]): NodeJS.ProcessEnv => {
    const tls = issueEtcdCertificate(me.name, caDir, root);
    return {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      ETCD_NAME: me.name,
      ETCD_DATA_DIR: me.dataDir,
      ETCD_LISTEN_PEER_URLS: me.peer,
      ETCD_INITIAL_ADVERTISE_PEER_URLS: me.peer,
      ETCD_LISTEN_CLIENT_URLS: me.client,
      ETCD_ADVERTISE_CLIENT_URLS: me.client,
      ETCD_INITIAL_CLUSTER: configured.map((s) => `${s.name}=${s.peer}`).join(","),
      ETCD_INITIAL_CLUSTER_TOKEN: path.basename(path.dirname(me.dataDir)),
      CLUSTER_ENDPOINTS: configured.map((s) => s.client).join(","),
      ETCD_CLIENT_CERT_AUTH: "true",
      ETCD_TRUSTED_CA_FILE: clientTls.caFile,
      ETCD_CERT_FILE: tls.certFile,
      ETCD_KEY_FILE: tls.keyFile,
      ETCD_PEER_CLIENT_CERT_AUTH: "true",
      ETCD_PEER_TRUSTED_CA_FILE: clientTls.caFile,
      ETCD_PEER_CERT_FILE: tls.certFile,
      ETCD_PEER_KEY_FILE: tls.keyFile,
      ETCD_LOG_LEVEL: "warn",
      ETCD_LOGGER: "zap",
      ETCD_HEARTBEAT_INTERVAL: "50",
      ETCD_ELECTION_TIMEOUT: "500",
    };
  };

  const start = (me: Seat, configured: readonly Seat[]): ManagedProcess => {
    const member = new ManagedProcess(me.name, "sh", [ENTRYPOINT, ...ETCD_COMPACTION_FLAGS], memberEnv(me, configured));
    processes.push(member);
    return member;
  };

  const healthy = async (me: Seat, member?: ManagedProcess): Promise<boolean> => {
    try {
      return await eventually(`${me.name} healthy`, async () => ((await etcdHealthy(me.client, clientTls)) ? true : undefined), 30_000, 200);
    } catch (error) {
      throw new Error(`${String(error)}; its output ends:\n${member?.logs.slice(-4000) ?? ""}`);
    }
  };

  const memberList = (endpoint: Seat): ListedMember[] => {
    const result = spawnSync(
      "etcdctl",
      [`--endpoints=${endpoint.client}`, `--cacert=${clientTls.caFile}`, `--cert=${clientTls.certFile}`, `--key=${clientTls.keyFile}`, "member", "list", "-w", "json"],
      { encoding: "utf8" },
    );
    if (result.status !== 0) throw new Error(`etcdctl member list: ${result.stderr}`);
    return (JSON.parse(result.stdout) as { members: ListedMember[] }).members;
  };
  const names = (members: ListedMember[]): string[] => members.map((m) => m.name).sort();

  it("bootstraps three members, then replaces one lost for good by a new member with an empty data directory", async () => {
    const [a, b, c] = [await seat("etcd-1", "replace"), await seat("etcd-2", "replace"), await seat("etcd-3", "replace")] as [Seat, Seat, Seat];
    const first = [a, b, c];
    const running = first.map((s) => start(s, first));
    await Promise.all(first.map((s, i) => healthy(s, running[i])));
    expect(names(memberList(a))).toEqual(["etcd-1", "etcd-2", "etcd-3"]);
    for (const member of running) expect(member.logs).toContain("bootstrapping a new cluster");

    // etcd-3's VM is gone: its process and its data.
    (running[2] as ManagedProcess).signal("SIGKILL");
    await (running[2] as ManagedProcess).waitForExit(10_000);
    rmSync(c.dataDir, { recursive: true, force: true });

    const d = await seat("etcd-4", "replace");
    const second = [a, b, d];
    const replacement = start(d, second);
    await healthy(d, replacement);
    expect(replacement.logs).toMatch(/removing member etcd-3 \([0-9a-f]+, https:\/\/127\.0\.0\.1:\d+\): not in ETCD_INITIAL_CLUSTER/);
    expect(replacement.logs).toContain("adding etcd-4");
    const after = memberList(a);
    expect(names(after)).toEqual(["etcd-1", "etcd-2", "etcd-4"]);
    expect(after.find((m) => m.name === "etcd-4")?.peerURLs).toEqual([d.peer]);
    for (const s of second) expect(await etcdHealthy(s.client, clientTls)).toBe(true);

    // A member with data starts as the member it was: same list, nothing added or removed.
    const restarted = running[0] as ManagedProcess;
    restarted.signal("SIGKILL");
    await restarted.waitForExit(10_000);
    const again = start(a, second);
    await healthy(a, again);
    expect(again.logs).toContain(`data in ${a.dataDir}: starting as member etcd-1`);
    expect(names(memberList(b))).toEqual(["etcd-1", "etcd-2", "etcd-4"]);
  });

  it("members restarting with a shorter list remove the member whose node left the stack", async () => {
    const seats = [await seat("etcd-1", "shrink"), await seat("etcd-2", "shrink"), await seat("etcd-3", "shrink")];
    const [a, b] = seats as [Seat, Seat, Seat];
    const running = seats.map((s) => start(s, seats));
    await Promise.all(seats.map((s, i) => healthy(s, running[i])));
    // etcd-3's node is removed from the stack: its member is gone, the others restart with the new list.
    (running[2] as ManagedProcess).signal("SIGKILL");
    await (running[2] as ManagedProcess).waitForExit(10_000);
    (running[0] as ManagedProcess).signal("SIGKILL");
    await (running[0] as ManagedProcess).waitForExit(10_000);
    const restarted = start(a, [a, b]);
    await healthy(a, restarted);
    // The entrypoint logs the removal after `etcdctl member remove` returns: the list can show it a moment before the log.
    const removed = /removed member etcd-3 \([0-9a-f]+, https:\/\/127\.0\.0\.1:\d+\): not in ETCD_INITIAL_CLUSTER/;
    await eventually("etcd-1 to log that it removed etcd-3", () => (removed.test(restarted.logs) ? true : undefined), 30_000, 500);
    expect(names(memberList(b))).toEqual(["etcd-1", "etcd-2"]);
  });

  it("a member late to the bootstrap joins the cluster that lists it unstarted", async () => {
    const seats = [await seat("etcd-1", "late"), await seat("etcd-2", "late"), await seat("etcd-3", "late")];
    const [a, b, c] = seats as [Seat, Seat, Seat];
    start(a, seats);
    start(b, seats);
    await Promise.all([healthy(a), healthy(b)]);
    const late = start(c, seats);
    await healthy(c, late);
    expect(late.logs).toContain("the cluster lists etcd-3 unstarted: joining it");
    expect(late.logs).not.toContain("adding etcd-3");
    expect(names(memberList(a))).toEqual(["etcd-1", "etcd-2", "etcd-3"]);
  });

  it.each([
    ["ETCD_NAME", { ETCD_NAME: "" }, /ETCD_NAME is not set/],
    ["CLUSTER_ENDPOINTS", { CLUSTER_ENDPOINTS: "" }, /CLUSTER_ENDPOINTS is not set/],
    ["ETCD_INITIAL_CLUSTER without this member", { ETCD_INITIAL_CLUSTER: "other=https://127.0.0.1:1" }, /ETCD_INITIAL_CLUSTER \(other=https:\/\/127\.0\.0\.1:1\) does not list etcd-9=/],
    ["two peer URLs", { ETCD_INITIAL_ADVERTISE_PEER_URLS: "https://127.0.0.1:1,https://127.0.0.1:2" }, /must be one URL \(got: https:\/\/127\.0\.0\.1:1,https:\/\/127\.0\.0\.1:2\)/],
  ])("refuses %s, naming it, and starts nothing", async (_label, override, message) => {
    const me = await seat("etcd-9", "bad");
    const env = { ...memberEnv(me, [me]), ...override };
    const member = new ManagedProcess("bad", "sh", [ENTRYPOINT], env);
    processes.push(member);
    expect(await member.waitForExit(10_000)).toBe(2);
    // Node reports the exit before the last of the output has been read.
    await eventually(`output matching ${message}`, () => (message.test(member.logs) ? true : undefined), 5_000, 20);
    expect(existsSync(me.dataDir)).toBe(false);
  });
});
