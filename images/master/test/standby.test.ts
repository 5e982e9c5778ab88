// A standby master's ports (standby.ts), for real on loopback: what browsers,
// REST clients, Docker's health check and Prometheus hear from a
// master that does not lead.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memberHealth } from "../src/etcdMembers";
import { loadPublicFiles, type HealthFacts } from "../src/httpServer";
import { Metrics } from "../src/metrics";
import { StandbyServers } from "../src/standby";

const TOKEN = "standby-web-token-0123456789";
const LEADER = "manager-2:8888 (pid 41)";
const FACTS: HealthFacts = {
  mqtt: false,
  db: true,
  leader: false,
  store: "etcd",
  members: [{ name: "etcd-1", endpoint: "https://127.0.0.1:2379", healthy: true }],
  current_leader: LEADER,
};

describe("standby servers", () => {
  let standby: StandbyServers;
  let base: string;
  let transitions = 0;

  beforeAll(async () => {
    const metrics = new Metrics({
      queueDepth: () => 0,
      queriesByState: () => ({}),
      workers: () => [],
      leadership: () => ({ leading: false, transitions }),
    });
    standby = new StandbyServers({
      metrics,
      files: loadPublicFiles(),
      health: () => FACTS,
      leader: () => LEADER,
      auth: { token: TOKEN, sessionTtlMs: 60_000, metricsOpen: false },
    });
    base = `http://127.0.0.1:${await standby.start("127.0.0.1", 0)}`;

  });

  afterAll(async () => {
    await standby?.close();
  });

  it("/healthz: 200, not the leader, the store and members it sees, who leads", async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "standby", ...FACTS });
  });

  it.each([
    ["POST", "/api/queries"],
    ["GET", "/api/queries/abc?wait=1000"],
    ["GET", "/api/session"],
    ["GET", "/api/workers"],
    ["GET", "/socket.io/?EIO=4&transport=polling"],
  ])("%s %s: 503 with Retry-After and who leads, and the connection closes", async (method, path) => {
    const res = await fetch(`${base}${path}`, { method, body: method === "POST" ? '{"query":"q"}' : undefined });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("connection")).toBe("close");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await res.json()).toEqual({ error: `this master is standing by; the leader is ${LEADER}` });
  });

  it("serves the page and the Socket.IO client script, so a page loaded here can retry", async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script src="/socket.io/socket.io.js"></script>');
    const script = await fetch(`${base}/socket.io/socket.io.js`);
    expect(script.status).toBe(200);
    expect(await script.text()).toContain("Socket.IO");
  });

  it("/metrics: the leader's access rule, and aiswarm_master_leader 0", async () => {
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: "Bearer wrong-token-000000000" } })).status).toBe(401);
    transitions = 2;
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^aiswarm_master_leader 0$/m);
    expect(text).toMatch(/^aiswarm_master_leader_transitions_total 2$/m);
  });
});

describe("etcd member health for /healthz", () => {
  const names = new Map([["8e9e05c52164694d", "etcd-1"], ["https://127.0.0.1:2379", "etcd-1"]]);

  it("a member that answers and knows a Raft leader is healthy", () => {
    expect(memberHealth("https://127.0.0.1:2379", names, { memberId: "8e9e05c52164694d", raftLeader: "91bc3c398fb3c146" })).toEqual({ name: "etcd-1", endpoint: "https://127.0.0.1:2379", healthy: true });
  });

  it("one without a leader, or that did not answer, is not; unknown names fall back to the address", () => {
    expect(memberHealth("https://127.0.0.1:2379", names, { memberId: "8e9e05c52164694d", raftLeader: "0" }).healthy).toBe(false);
    expect(memberHealth("https://127.0.0.1:2379", names, undefined)).toEqual({ name: "etcd-1", endpoint: "https://127.0.0.1:2379", healthy: false });
    expect(memberHealth("https://127.0.0.1:2380", names, undefined).name).toBe("127.0.0.1:2380");
  });
});
