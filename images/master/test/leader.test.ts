// Leadership: the lease timing rules alone, then the protocol against three
// real etcd members (launch/etcd.ts: TLS with client certificates).
import { readFileSync } from "node:fs";
import { BrokenCircuitError } from "cockatiel";
import { Etcd3, GRPCCancelledError, GRPCDeadlineExceededError } from "etcd3";
// etcd3 documents Etcd3.deterministicOrder but wires only this one: tests pick the hosts' order with it.
import { ConnectionPool } from "etcd3/lib/connection-pool";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdMissing, startEtcd, type EtcdClientTls, type EtcdCluster } from "../../../launch/etcd";
import { startTcpProxy } from "../../../launch/tcpProxy";
import { Leadership, LeaseClock, keyEventEndsLeadership, readAttempt } from "../src/leader";
import { createLogger } from "../src/log";
import { createEtcdClient, EtcdMemberPolicy } from "../src/storeFactory";

describe("LeaseClock", () => {
  it("counts the lease from the send time of the grant, minus the safety margin", () => {
    const clock = new LeaseClock(3000, 1000, 3, 250);
    expect(clock.deadlineMs()).toBe(1000 + 3000 - 250);
    expect(clock.expired(3749)).toBe(false);
    expect(clock.expired(3750)).toBe(true);
  });

  it("extends from the send time of an answered keepalive, never backwards", () => {
    const clock = new LeaseClock(3000, 0, 3, 0);
    clock.renewed(2000, 3);
    expect(clock.deadlineMs()).toBe(5000);
    clock.renewed(1000, 3); // a late answer to an older keepalive
    expect(clock.deadlineMs()).toBe(5000);
  });

  it("a keepalive answered with TTL 0 ends the lease at once", () => {
    const clock = new LeaseClock(3000, 0, 3, 0);
    clock.renewed(100, 0);
    expect(clock.expired(101)).toBe(true);
  });

  it("renews three times per TTL and never lets a keepalive wait past the deadline", () => {
    const clock = new LeaseClock(6000, 0, 6, 0);
    expect(clock.keepaliveIntervalMs).toBe(2000);
    expect(clock.callTimeoutMs(0)).toBe(2000);
    expect(clock.callTimeoutMs(5500)).toBe(500);
    expect(clock.callTimeoutMs(7000)).toBe(1);
  });

  it("reads the campaign transaction and the watch events", () => {
    const kv = { key: Buffer.from("k"), value: Buffer.from("master-b http://b"), lease: "7", create_revision: "5", mod_revision: "5", version: "1" };
    expect(readAttempt(true, "9", undefined)).toEqual({ won: true });
    expect(readAttempt(false, "9", kv)).toEqual({ won: false, holder: "master-b http://b", revision: "9" });
    expect(keyEventEndsLeadership("put", kv, "7")).toBe(false);
    expect(keyEventEndsLeadership("put", kv, "8")).toBe(true);
    expect(keyEventEndsLeadership("delete", kv, "7")).toBe(true);
  });

  it("refuses a TTL that is not a whole number of seconds", () => {
    const client = new Etcd3({ hosts: ["https://127.0.0.1:1"] });
    const log = createLogger("error", () => undefined);
    expect(() => new Leadership({ client, key: "k", value: "v", ttlS: 0.5, log })).toThrow(/ttlS/);
    client.close();
  });
});

describe("an etcd member's fault handling", () => {
  const failWith = (error: Error) => () => Promise.reject(error);

  it("passes a member over after one failed call, and tries it again a second later", async () => {
    const policy = new EtcdMemberPolicy();
    await expect(policy.execute(failWith(new GRPCDeadlineExceededError("deadline exceeded")))).rejects.toBeInstanceOf(GRPCDeadlineExceededError);
    await expect(policy.execute(() => Promise.resolve("answered"))).rejects.toBeInstanceOf(BrokenCircuitError);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await expect(policy.execute(() => Promise.resolve("answered"))).resolves.toBe("answered");
  });

  it("while one call tests a passed-over member again, the others go elsewhere at once instead of waiting for it", async () => {
    const policy = new EtcdMemberPolicy();
    await expect(policy.execute(failWith(new GRPCDeadlineExceededError("deadline exceeded")))).rejects.toBeInstanceOf(GRPCDeadlineExceededError);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    let answer: (value: string) => void = () => undefined;
    const test = policy.execute(() => new Promise<string>((resolve) => (answer = resolve)));
    const other = policy.execute(() => Promise.resolve("answered")).catch((error: unknown) => error);
    const waited = new Promise((resolve) => setTimeout(() => resolve("waited for the test"), 200));
    expect(await Promise.race([other, waited])).toBeInstanceOf(BrokenCircuitError);
    answer("the member is back");
    await expect(test).resolves.toBe("the member is back");
    await expect(policy.execute(() => Promise.resolve("answered"))).resolves.toBe("answered");
  });

  it("a call this master cancelled is no fault of the member", async () => {
    const policy = new EtcdMemberPolicy();
    await expect(policy.execute(failWith(new GRPCCancelledError("cancelled")))).rejects.toBeInstanceOf(GRPCCancelledError);
    await expect(policy.execute(() => Promise.resolve("answered"))).resolves.toBe("answered");
  });
});

const missing = etcdMissing();
if (missing !== undefined) console.log(`skipping leadership against etcd: ${missing}`);

describe.skipIf(missing !== undefined)("Leadership against three etcd members", () => {
  const TTL_S = 2;
  let cluster: EtcdCluster;
  const clients: Etcd3[] = [];
  let keyCounter = 0;

  const client = (endpoints: readonly string[], tls: EtcdClientTls): Etcd3 => {
    const c = new Etcd3({
      hosts: [...endpoints],
      credentials: { rootCertificate: readFileSync(tls.caFile), certChain: readFileSync(tls.certFile), privateKey: readFileSync(tls.keyFile) },
    });
    clients.push(c);
    return c;
  };
  const campaigner = (name: string, key: string, endpoints: readonly string[] = cluster.endpoints): { leadership: Leadership; client: Etcd3; lines: string[] } => {
    const lines: string[] = [];
    const c = client(endpoints, cluster.clientTls);
    const leadership = new Leadership({ client: c, key, value: name, ttlS: TTL_S, log: createLogger("info", (line) => lines.push(line)) });
    return { leadership, client: c, lines };
  };
  const freshKey = (): string => `/test-leader/${process.pid}/${++keyCounter}`;

  beforeAll(async () => {
    cluster = await startEtcd(3);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  it("one of two campaigners wins; its fence is the key and the lease that holds it", async () => {
    const key = freshKey();
    const a = campaigner("master-a", key);
    const b = campaigner("master-b", key);
    const first = await Promise.race([a.leadership.campaign().then((f) => ({ who: a, f })), b.leadership.campaign().then((f) => ({ who: b, f }))]);
    const other = first.who === a ? b : a;
    expect(first.who.leadership.leading).toBe(true);
    expect(other.leadership.leading).toBe(false);
    expect(first.f.key).toBe(key);
    expect(first.who.leadership.fence()).toEqual(first.f);
    expect(other.leadership.fence()).toBeUndefined();
    const kv = (await first.who.client.get(key).exec()).kvs[0];
    expect(kv?.lease).toBe(first.f.leaseId);
    expect(kv?.value.toString()).toBe(first.who === a ? "master-a" : "master-b");
    // The standby knows who leads (for its 503 message).
    await waitFor(() => other.leadership.leader() === (first.who === a ? "master-a" : "master-b"));
    first.who.leadership.close();
    other.leadership.close();
  });

  it("the standby takes over at once when the leader resigns", async () => {
    const key = freshKey();
    const a = campaigner("master-a", key);
    await a.leadership.campaign();
    const b = campaigner("master-b", key);
    const bWins = b.leadership.campaign();
    await waitFor(() => b.leadership.leader() === "master-a");
    const resignedAt = performance.now();
    await a.leadership.resign();
    const fence = await bWins;
    console.log(`takeover after resign: ${Math.round(performance.now() - resignedAt)} ms (TTL ${TTL_S} s)`);
    expect(b.leadership.leading).toBe(true);
    expect(a.leadership.state).toBe("closed");
    const kv = (await b.client.get(key).exec()).kvs[0];
    expect(kv?.lease).toBe(fence.leaseId);
    b.leadership.close();
  });

  it("the standby takes over when the leader stops renewing (its process died): the lease expires", async () => {
    const key = freshKey();
    const a = campaigner("master-a", key);
    const aFence = await a.leadership.campaign();
    const b = campaigner("master-b", key);
    const bWins = b.leadership.campaign();
    await waitFor(() => b.leadership.leader() === "master-a");
    const diedAt = performance.now();
    a.leadership.close(); // no more keepalives, no revoke: what etcd sees of a SIGKILLed master
    const fence = await bWins;
    console.log(`takeover after the leader stopped renewing: ${Math.round(performance.now() - diedAt)} ms (TTL ${TTL_S} s)`);
    expect(fence.leaseId).not.toBe(aFence.leaseId);
    expect(b.leadership.transitions).toBe(1);
    b.leadership.close();
  });

  it("a campaigner with a certificate from another CA is refused by every member and never leads", async () => {
    const key = freshKey();
    const lines: string[] = [];
    const stranger = new Leadership({ client: client(cluster.endpoints, cluster.strangerTls()), key, value: "stranger", ttlS: TTL_S, log: createLogger("info", (line) => lines.push(line)) });
    const campaign = stranger.campaign().catch((error: unknown) => error);
    await waitFor(() => lines.filter((l) => l.includes("leader campaign: etcd did not answer")).length >= 2);
    expect(stranger.state).toBe("standby");
    const a = campaigner("master-a", key);
    await a.leadership.campaign();
    expect((await a.client.get(key).exec()).kvs[0]?.value.toString()).toBe("master-a");
    stranger.close();
    expect(await campaign).toBeInstanceOf(Error);
    a.leadership.close();
  });

  it("a leader whose etcd member is paused loses leadership within its TTL, says why, and the other takes over", async () => {
    const key = freshKey();
    const member = cluster.members[2];
    if (member === undefined) throw new Error("three members expected");
    const a = campaigner("master-a", key, [member.endpoint]);
    await a.leadership.campaign();
    const lost = new Promise<string>((resolve) => a.leadership.onLost(resolve));
    const b = campaigner("master-b", key, cluster.endpoints.filter((e) => e !== member.endpoint));
    const bWins = b.leadership.campaign();
    await waitFor(() => b.leadership.leader() === "master-a");
    const pausedAt = performance.now();
    member.pause();
    try {
      const reason = await lost;
      const lostMs = performance.now() - pausedAt;
      await bWins;
      const wonMs = performance.now() - pausedAt;
      console.log(`paused member: leader gave up after ${Math.round(lostMs)} ms, the other won after ${Math.round(wonMs)} ms (TTL ${TTL_S} s)`);
      expect(reason).toMatch(/no keepalive answered within the lease/);
      expect(a.leadership.state).toBe("lost");
      expect(a.leadership.fence()).toBeUndefined();
      // The deposed leader gave up before the new one could win.
      expect(lostMs).toBeLessThan(wonMs);
      expect(a.lines.join("")).toMatch(/leader keepalive failed/);
    } finally {
      member.resume();
    }
    b.leadership.close();
  });
});

describe.skipIf(missing !== undefined)("Leadership when an etcd member's VM is lost", () => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await startEtcd(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("the leader keeps its lease (the production TTL) while every call tries the silent member first", async () => {
    const ttlS = 5; // LEADER_TTL_S's default
    const proxies = await Promise.all(cluster.members.map((m) => startTcpProxy([m.clientPort])));
    const tls = cluster.clientTls;
    const client = createEtcdClient({
      endpoints: proxies.map((p) => `https://127.0.0.1:${p.port}`),
      ca: readFileSync(tls.caFile, "utf8"),
      cert: readFileSync(tls.certFile, "utf8"),
      key: readFileSync(tls.keyFile, "utf8"),
      prefix: "/test-lost-member",
    });
    const lines: string[] = [];
    const key = `/test-lost-member/${process.pid}/leader`;
    const leadership = new Leadership({ client, key, value: "master-a", ttlS, log: createLogger("info", (line) => lines.push(line)) });
    ConnectionPool.deterministicOrder = true; // every call draws the last member first: the worst draw, each time
    try {
      const fence = await leadership.campaign();
      const lostReasons: string[] = [];
      leadership.onLost((reason) => lostReasons.push(reason));
      proxies[proxies.length - 1]?.cut(); // its VM gone: no FIN, no RST, connections left hanging
      // Meanwhile the store's reads, one after the other, as a leader's commits go: some of them test the silent member again.
      const until = performance.now() + 3 * ttlS * 1000;
      let reads = 0;
      let slowestReadMs = 0;
      while (performance.now() < until) {
        const sentAt = performance.now();
        expect((await client.get(key).exec()).kvs[0]?.lease, "the leader key still carries the lease").toBe(fence.leaseId);
        slowestReadMs = Math.max(slowestReadMs, performance.now() - sentAt);
        reads += 1;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const failures = lines.filter((l) => l.includes("leader keepalive failed")).length;
      console.log(
        `silent member, ${3 * ttlS} s: ${failures} keepalive(s) failed and were retried on another member; ${reads} reads, the slowest ${Math.round(slowestReadMs)} ms`,
      );
      expect(lostReasons).toEqual([]);
      expect(leadership.state).toBe("leading");
      expect(leadership.transitions).toBe(1);
      expect(failures).toBeGreaterThan(0); // the silent member was drawn, so the test saw the fault
    } finally {
      ConnectionPool.deterministicOrder = false;
      leadership.close();
      client.close();
      await Promise.all(proxies.map((p) => p.close()));
    }
  });
});

async function waitFor(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
