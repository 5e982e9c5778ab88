// A multi-manager stack (issue 14) through the real index.ts under mocks:
// managers join with the manager token, roles are enforced from the primary,
// the primary removes nodes that left the config, every per-node resource is
// kept on delete, and the quorum guard reads the stack's own last outputs.
import { describe, expect, it, vi } from "vitest";
import { dispatcherHeartbeatScript, knownNodeIdsScript, removeNodesScript, swarmRejoinScript } from "../../components/scripts";
import { DISPATCHER_HEARTBEAT_S } from "../../components/swarm";
import {
  byName,
  engineConfigFromStackFile,
  isSecretMarker,
  MOCK_JOIN_TOKEN,
  MOCK_MANAGER_JOIN_TOKEN,
  MOCK_NODE_IDS,
  missingDockerfiles,
  runProgram,
  TEST_SSH_KEY,
  TYPES,
  type ProgramRun,
  ONE_MANAGER_NODES,
} from "./helpers";

type Role = "manager" | "worker";
/** Lab nodes vm1..vmN with the given roles. */
function nodes(roles: Record<string, Role>) {
  return Object.entries(roles).map(([name, role]) => ({ name, host: hostOf(name), sshPort: 22, user: "root", role, labels: { vm: `ai-swarm-${name}` } }));
}
/** The address nodes() gives a lab node. */
const hostOf = (name: string) => `172.28.0.1${name.slice(2)}`;
const THREE_AND_TWO = nodes({ vm1: "manager", vm2: "manager", vm3: "manager", vm4: "worker", vm5: "worker" });

function run(nodeList: unknown[], previous: Record<string, unknown> = {}): Promise<ProgramRun> {
  return runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }, { nodes: nodeList }), "dev", previous);
}
const command = (program: ProgramRun, name: string) => byName(program.resources, TYPES.command, name);
const names = (program: ProgramRun, prefix: string) => program.resources.filter((resource) => resource.name.startsWith(prefix)).map((resource) => resource.name).sort();

const missing = missingDockerfiles();
if (missing.length > 0) console.warn(`SKIPPED the multi-manager program tests: ${missing.join(", ")} missing`);

describe.skipIf(missing.length > 0)("a 3-manager stack", () => {
  it("reads a manager join token (secret, never logged) and joins managers with it, workers with the worker token; no warning", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const program = await run(THREE_AND_TWO);
    const warnings = warn.mock.calls.map((call) => String(call[0]));
    warn.mockRestore();
    expect(warnings.filter((line) => line.includes("fault-tolerant"))).toEqual([]);
    const token = command(program, "swarm-join-token-manager");
    expect(token.inputs["create"]).toContain("docker swarm join-token -q manager");
    expect(token.inputs["logging"]).toBe("none");
    expect(token.additionalSecretOutputs).toContain("stdout");
    expect(names(program, "swarm-join-vm")).toEqual(["swarm-join-vm2", "swarm-join-vm3", "swarm-join-vm4", "swarm-join-vm5"]);
    // After the token, the node ids the primary lists: a node removed while it was up sees it is no longer one of them.
    for (const node of ["vm2", "vm3"]) expect(command(program, `swarm-join-${node}`).inputs["stdin"]).toBe(`${MOCK_MANAGER_JOIN_TOKEN}\n${MOCK_NODE_IDS}`);
    for (const node of ["vm4", "vm5"]) expect(command(program, `swarm-join-${node}`).inputs["stdin"]).toBe(`${MOCK_JOIN_TOKEN}\n${MOCK_NODE_IDS}`);
    expect(command(program, "swarm-node-ids").inputs["triggers"]).toEqual(["vm1", "vm2", "vm3", "vm4", "vm5"]);
    // The token reaches the node on stdin as a secret, and the join dials the primary.
    expect(isSecretMarker(command(program, "swarm-join-vm2").rawInputs["stdin"])).toBe(true);
    expect(command(program, "swarm-join-vm2").inputs["create"]).toContain("'172.28.0.11:2377'");
    // Each join knows its node's role: a manager's promotes a worker by joining again; a worker's never does.
    for (const node of ["vm2", "vm3"]) expect(command(program, `swarm-join-${node}`).inputs["create"]).toBe(swarmRejoinScript(hostOf(node), "172.28.0.11", { name: node, role: "manager" }));
    for (const node of ["vm4", "vm5"]) expect(command(program, `swarm-join-${node}`).inputs["create"]).toBe(swarmRejoinScript(hostOf(node), "172.28.0.11", { name: node, role: "worker" }));
    // Lost managers leave Raft on the primary before any join.
    expect(command(program, "swarm-node-ids").inputs["create"]).toBe(knownNodeIdsScript(["vm1", "vm2", "vm3", "vm4", "vm5"]));
  });

  it("a 1-manager stack has no manager token and no roles resource, and warns (as in preview) that it is not fault-tolerant", async () => {
    // Without an engine (mocks), pulumi.log.warn writes to console.warn; the engine prints it as a warning.
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const program = await run(ONE_MANAGER_NODES);
    const warnings = warn.mock.calls.map((call) => String(call[0]));
    warn.mockRestore();
    expect(warnings.filter((line) => line.includes("not fault-tolerant"))).toEqual([
      'warning: [runtime] ai-swarm:nodes: only one manager (vm1): the stack is not fault-tolerant, losing that VM stops the swarm; give role "manager" to 3 nodes (or 5) to survive the loss of any one VM (docs/pulumi.md, "How many managers")',
    ]);
    expect(names(program, "swarm-join-token")).toEqual(["swarm-join-token-worker"]);
    expect(names(program, "swarm-roles")).toEqual([]);
  });

  it("shortens the swarm's dispatcher heartbeat from the primary, once the swarm exists; a 1-manager stack keeps Docker's", async () => {
    const program = await run(THREE_AND_TWO);
    const heartbeat = command(program, "swarm-heartbeat");
    expect(heartbeat.inputs["connection"]).toMatchObject({ host: "172.28.0.11" });
    expect(heartbeat.inputs["create"]).toBe(dispatcherHeartbeatScript(DISPATCHER_HEARTBEAT_S));
    expect(heartbeat.inputs["create"]).toContain(`docker swarm update --dispatcher-heartbeat ${DISPATCHER_HEARTBEAT_S}s`);
    expect(heartbeat.dependencies).toContain(command(program, "swarm-init").urn);
    expect(names(await run(ONE_MANAGER_NODES), "swarm-heartbeat")).toEqual([]);
  });

  it("enforces roles from the primary after every join and label, before the members step", async () => {
    const program = await run(THREE_AND_TWO);
    const roles = command(program, "swarm-roles");
    expect(roles.inputs["connection"]).toMatchObject({ host: "172.28.0.11" });
    expect(roles.inputs["create"]).toContain("managers=' vm1 vm2 vm3 '");
    expect(roles.inputs["create"]).toContain("workers=' vm4 vm5 '");
    const urn = (name: string) => command(program, name).urn;
    for (const name of ["swarm-join-vm3", "swarm-node-vm5", "swarm-node-vm1"]) expect(roles.dependencies).toContain(urn(name));
    expect(command(program, "swarm-members").dependencies).toContain(roles.urn);
  });

  it("removes nodes that left the config from the primary (members), and keeps every per-node resource on delete", async () => {
    const program = await run(THREE_AND_TWO);
    expect(command(program, "swarm-members").inputs["create"]).toBe(removeNodesScript(["vm1", "vm2", "vm3", "vm4", "vm5"]));
    const perNode = program.resources.filter((resource) => /^(swarm-join-vm|swarm-node-vm|registry-ca-vm|registry-shared-ca-vm|node-images-vm)/.test(resource.name));
    expect(perNode).toHaveLength(4 + 5 + 5 + 3 + 5);
    expect(perNode.filter((resource) => !resource.retainOnDelete).map((resource) => resource.name)).toEqual([]);
    const others = program.resources.filter((resource) => resource.retainOnDelete && !perNode.includes(resource));
    expect(others.map((resource) => resource.name)).toEqual([]);
  });

  it("every manager keeps a copy of the stack's CA, read on the primary as a secret and never logged", async () => {
    const program = await run(THREE_AND_TWO);
    const read = command(program, "registry-shared-ca");
    expect(read.inputs["connection"]).toMatchObject({ host: "172.28.0.11" });
    expect(read.inputs["create"]).toContain('cat "$ca/ca.key" "$ca/ca.crt"');
    expect(read.inputs["logging"]).toBe("none");
    expect(read.additionalSecretOutputs).toContain("stdout");
    expect(read.dependencies).toContain(command(program, "registry-tls").urn);
    expect(names(program, "registry-shared-ca-")).toEqual(["registry-shared-ca-vm1", "registry-shared-ca-vm2", "registry-shared-ca-vm3"]);
    for (const [node, host] of [["vm1", "172.28.0.11"], ["vm2", "172.28.0.12"], ["vm3", "172.28.0.13"]] as const) {
      const copy = command(program, `registry-shared-ca-${node}`);
      expect(copy.inputs["connection"]).toMatchObject({ host });
      expect(copy.inputs["create"]).toContain("openssl pkey");
      expect(copy.inputs["logging"]).toBe("none");
      expect(isSecretMarker(copy.rawInputs["stdin"])).toBe(true);
      expect(copy.retainOnDelete).toBe(true);
    }
    // One manager: the CA's key stays on it.
    const single = await run(ONE_MANAGER_NODES);
    expect(names(single, "registry-shared-ca-")).toEqual([]);
    expect(names(single, "registry-shared-ca")).toEqual([]);
  });

  it("the primary lost: the next manager listed runs the primary's commands, its registry address names it, and it keeps its CA copy", async () => {
    const program = await run(nodes({ vm4: "manager", vm5: "manager", vm6: "manager", vm2: "worker" }));
    for (const name of ["swarm-init", "registry-tls", "registry-shared-ca", "swarm-members"]) expect(command(program, name).inputs["connection"]).toMatchObject({ host: "172.28.0.14" });
    expect(command(program, "registry-tls").inputs["create"]).toContain("IP:172.28.0.14");
    expect(names(program, "registry-shared-ca-")).toEqual(["registry-shared-ca-vm4", "registry-shared-ca-vm5", "registry-shared-ca-vm6"]);
    expect(program.outputs["managers"]?.value).toEqual(["vm4", "vm5", "vm6"]);
    expect(command(program, "registry-ca-vm2").inputs["create"]).toContain("/etc/docker/certs.d/172.28.0.14:5000/ca.crt");
  });

  it("exports the managers, primary first, and reads its own stack's last outputs", async () => {
    const program = await run(nodes({ vm3: "manager", vm1: "manager", vm2: "manager", vm4: "worker" }));
    expect(program.outputs["managers"]?.value).toEqual(["vm3", "vm1", "vm2"]);
    expect(program.stackReferences).toEqual(["organization/ai-swarm/dev"]);
    expect(command(program, "swarm-init").inputs["connection"]).toMatchObject({ host: "172.28.0.13" });
  });
});

describe.skipIf(missing.length > 0)("the quorum guard, through the program", () => {
  const previous = { managers: ["vm1", "vm2", "vm3"] };

  it("refuses {vm1,vm2,vm3} -> {vm1} (the run fails as in preview), naming the kept and needed counts", async () => {
    await expect(run(ONE_MANAGER_NODES, previous)).rejects.toThrow(/keeps 1 of the 3 deployed managers \(vm1, vm2, vm3; kept: vm1\).*needs 2 of them/);
  });

  it("accepts {vm1,vm2,vm3} -> {vm1,vm3,vm4} and a first deploy", async () => {
    const moved = await run(nodes({ vm1: "manager", vm3: "manager", vm4: "manager", vm5: "worker" }), previous);
    expect(command(moved, "swarm-init").inputs["create"]).toContain("docker swarm init");
    const first = await run(THREE_AND_TWO);
    expect(command(first, "swarm-init").inputs["create"]).toContain("docker swarm init");
  });
});
