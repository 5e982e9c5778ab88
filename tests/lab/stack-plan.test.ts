// The pure helpers behind `npm run lab`, `npm run evidence` and the e2e test:
// the dev stack checked against the lab, `docker service ps` / `docker node ls`
// parsing, worker spread, and the tables. No engine needed.
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parseStackConfig } from "../../components/config";
import { buildEngineConfig } from "../../lab/harness/stack-config";
import { planVms } from "../../lab/plan";
import {
  labStackProblems,
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

function lab(count = 4): LabDescription {
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
  it("the shipped Pulumi.dev.yaml matches a default 4-VM lab", () => {
    expect(labStackProblems(lab(), devNodes())).toEqual([]);
  });

  it("names every difference: VM count, unknown host, role, port, user", () => {
    const nodes = devNodes();
    nodes[1] = { ...nodes[1]!, host: "172.28.0.99" };
    nodes[2] = { ...nodes[2]!, role: "manager", sshPort: 2222, user: "admin" };
    const problems = labStackProblems(lab(3), nodes);
    expect(problems).toEqual([
      "the stack lists 4 nodes but the lab runs 3 VMs (npm run lab:up -- --vms 4)",
      "nodes[1] (vm2): host 172.28.0.99 is not a lab VM (172.28.0.11, 172.28.0.12, 172.28.0.13)",
      "nodes[2] (vm3): role manager, but ai-swarm-vm3 is the lab's worker",
      "nodes[2] (vm3): sshPort 2222, the lab's sshd listens on 22",
      "nodes[2] (vm3): user admin, the lab's key logs in as root",
      "nodes[3] (vm4): host 172.28.0.14 is not a lab VM (172.28.0.11, 172.28.0.12, 172.28.0.13)",
    ]);
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
