// The pure helpers behind `npm run lab`, `npm run evidence` and the e2e test:
// the dev stack checked against the lab, `docker service ps` / `docker node ls`
// parsing, worker spread, and the tables. No engine needed.
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseStackConfig } from "../../components/config";
import { buildEngineConfig } from "../../lab/harness/stack-config";
import { DEFAULT_VM_COUNT, planVms } from "../../lab/plan";
import {
  currentWebUrl,
  labStackProblems,
  leaderOf,
  roleLines,
  markdownTable,
  parseNodeLines,
  parseTaskLines,
  placementRows,
  textTable,
  workerLanguageOf,
  workerSpread,
  type LabDescription,
  type StackNode,
} from "../../lab/stack-plan";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

function lab(count = DEFAULT_VM_COUNT): LabDescription {
  return {
    network: "ai-swarm-lab",
    subnet: "172.28.0.0/24",
    sshUser: "root",
    sshPort: 22,
    sshKeyPath: "/k",
    knownHostsPath: "/kh",
    vms: planVms(count).map(({ name, role, address }) => ({ name, role, address })),
  };
}

function devNodes(): StackNode[] {
  const yaml = fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.dev.yaml"), "utf8");
  const engine = buildEngineConfig("ai-swarm", yaml, { sshPrivateKey: KEY });
  const parsed = parseStackConfig(engine.config, engine.secretKeys);
  if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
  return parsed.config.nodes;
}

describe("the dev stack against the lab", () => {
  it("the shipped Pulumi.dev.yaml matches a default 5-VM lab", () => {
    expect(labStackProblems(lab(), devNodes())).toEqual([]);
  });

  it("names every difference: VM count, unknown host, role, port, user", () => {
    // The nodes a 5-VM lab plans (vm1-vm3 managers, vm4 and vm5 workers), checked against a 3-VM lab.
    const nodes: StackNode[] = lab(5).vms.map((vm, i) => ({ name: `vm${i + 1}`, host: vm.address, role: vm.role, sshPort: 22, user: "root" }));
    nodes[1] = { ...nodes[1]!, host: "172.28.0.99" };
    nodes[2] = { ...nodes[2]!, role: "worker", sshPort: 2222, user: "admin" };
    const problems = labStackProblems(lab(3), nodes);
    expect(problems).toEqual([
      "the stack lists 5 nodes but the lab runs 3 VMs (npm run lab:up -- --vms 5)",
      "nodes[1] (vm2): host 172.28.0.99 is not a lab VM (172.28.0.11, 172.28.0.12, 172.28.0.13)",
      "nodes[2] (vm3): role worker, but ai-swarm-vm3 is the lab's manager",
      "nodes[2] (vm3): sshPort 2222, the lab's sshd listens on 22",
      "nodes[2] (vm3): user admin, the lab's key logs in as root",
      "nodes[3] (vm4): host 172.28.0.14 is not a lab VM (172.28.0.11, 172.28.0.12, 172.28.0.13)",
      "nodes[4] (vm5): host 172.28.0.15 is not a lab VM (172.28.0.11, 172.28.0.12, 172.28.0.13)",
    ]);
  });
});

const row = (service: string, task: string, node: string) => ({ service: `ai-system_${service}`, task: `ai-system_${task}`, node, state: "Running 1 minute ago" });

describe("what runs where (npm run lab)", () => {
  it("leaderOf: the VM whose /healthz says leader:true; a standby, a silent VM and a non-JSON answer are not", () => {
    const standby = JSON.stringify({ status: "standby", leader: false, store: "etcd" });
    const leading = JSON.stringify({ status: "ok", leader: true, store: "etcd" });
    expect(leaderOf([{ vm: "ai-swarm-vm1", body: standby }, { vm: "ai-swarm-vm2", body: leading }])).toBe("ai-swarm-vm2");
    expect(leaderOf([{ vm: "ai-swarm-vm1", body: undefined }, { vm: "ai-swarm-vm3", body: "<html>" }, { vm: "ai-swarm-vm2", body: leading }])).toBe("ai-swarm-vm2");
    expect(leaderOf([{ vm: "ai-swarm-vm1", body: standby }, { vm: "ai-swarm-vm2", body: undefined }])).toBeUndefined();
    expect(leaderOf([])).toBeUndefined();
  });

  it("currentWebUrl: host-mode publishing serves the page on the leader's VM; the routing mesh keeps the stack's URL", () => {
    expect(currentWebUrl("https://172.28.0.11:8888", "host", "172.28.0.13")).toBe("https://172.28.0.13:8888");
    expect(currentWebUrl("http://172.28.0.11:8888", "host", "172.28.0.12")).toBe("http://172.28.0.12:8888");
    expect(currentWebUrl("https://192.0.2.11:31663", "ingress", "192.0.2.13")).toBe("https://192.0.2.11:31663");
    expect(currentWebUrl("https://172.28.0.11:8888", "host", undefined)).toBe("https://172.28.0.11:8888");
  });

  it("roleLines: the master's leader and standby, the broker, the registry and each worker language's VMs", () => {
    const tasks = [
      row("master", "master.1", "ai-swarm-vm2"),
      row("master", "master.2", "ai-swarm-vm1"),
      row("mosquitto", "mosquitto.1", "ai-swarm-vm3"),
      row("registry", "registry.1", "ai-swarm-vm1"),
      row("worker-go", "worker-go.1", "ai-swarm-vm5"),
      row("worker-go", "worker-go.2", "ai-swarm-vm4"),
      row("worker-python", "worker-python.1", "ai-swarm-vm1"),
    ];
    expect(roleLines(tasks, "ai-system", "ai-swarm-vm2")).toEqual([
      "master:   ai-swarm-vm2 (leader), standby on ai-swarm-vm1",
      "broker:   ai-swarm-vm3",
      "registry: ai-swarm-vm1",
      "worker-go:      ai-swarm-vm4, ai-swarm-vm5",
      "worker-python:  ai-swarm-vm1",
    ]);
    expect(roleLines(tasks.slice(0, 1), "ai-system", undefined)[0]).toBe("master:   ai-swarm-vm2 (no leader answered /healthz)");
    expect(roleLines([], "ai-system", undefined).slice(0, 3)).toEqual(["master:   not running", "broker:   not running", "registry: not running"]);
  });
});

describe("docker output parsing", () => {
  it("keeps only running tasks of `docker service ps`", () => {
    const out = [
      "ai-system_worker-go.1|ai-swarm-vm2|Running 2 minutes ago",
      "ai-system_worker-go.2|ai-swarm-vm3|Preparing 3 seconds ago",
      "",
      "garbage line",
      "ai-system_worker-go.3|ai-swarm-vm4|Running 5 seconds ago",
    ].join("\n");
    expect(parseTaskLines("ai-system_worker-go", out)).toEqual([
      { service: "ai-system_worker-go", task: "ai-system_worker-go.1", node: "ai-swarm-vm2", state: "Running 2 minutes ago" },
      { service: "ai-system_worker-go", task: "ai-system_worker-go.3", node: "ai-swarm-vm4", state: "Running 5 seconds ago" },
    ]);
  });

  it("parses `docker node ls`, an empty manager status included", () => {
    expect(parseNodeLines("ai-swarm-vm1|Ready|Active|Leader\nai-swarm-vm2|Down|Active|\n")).toEqual([
      { hostname: "ai-swarm-vm1", status: "Ready", availability: "Active", managerStatus: "Leader" },
      { hostname: "ai-swarm-vm2", status: "Down", availability: "Active", managerStatus: "" },
    ]);
  });

  it("groups worker replicas by language and VM, ignoring other services", () => {
    const task = (service: string, node: string, n: number) => ({ service, task: `${service}.${n}`, node, state: "Running" });
    const spread = workerSpread([
      task("ai-system_worker-python", "vm2", 1),
      task("ai-system_worker-python", "vm3", 2),
      task("ai-system_worker-go", "vm2", 1),
      task("ai-system_master", "vm1", 1),
    ]);
    expect(Object.fromEntries([...spread].map(([k, v]) => [k, [...v].sort()]))).toEqual({ python: ["vm2", "vm3"], go: ["vm2"] });
    expect(workerLanguageOf("ai-system_worker-java")).toBe("java");
    expect(workerLanguageOf("ai-system_mosquitto")).toBeUndefined();
  });
});

describe("tables", () => {
  it("sorts placement rows by service, then replica number", () => {
    const rows = placementRows([
      { service: "b", task: "b.10", node: "n", state: "Running" },
      { service: "b", task: "b.2", node: "n", state: "Running" },
      { service: "a", task: "a.1", node: "n", state: "Running" },
    ]);
    expect(rows.map((row) => row[1])).toEqual(["a.1", "b.2", "b.10"]);
  });

  it("aligns text columns and escapes Markdown cells", () => {
    expect(textTable(["A", "LONG"], [["xyz", "1"]])).toBe("A    LONG\nxyz  1");
    expect(markdownTable(["q", "a"], [["x | y", "line1\nline2"]])).toBe("| q | a |\n| --- | --- |\n| x \\| y | line1 line2 |");
  });
});
