// Images on every node (components/nodeImages.ts) and the rebalance before the
// placement is read (components/workers.ts), through the real index.ts under
// mocks: a multi-manager stack pulls every pushed image on every node before
// any app service starts; a 1-manager stack declares exactly what it did before.
import { beforeAll, describe, expect, it } from "vitest";
import { byName, engineConfigFromStackFile, isSecretMarker, missingDockerfiles, runProgram, TEST_SSH_KEY, TYPES, withoutSecrets, type ProgramRun, type RegisteredResource } from "./helpers";

const missing = missingDockerfiles();
if (missing.length > 0) console.warn(`SKIPPED the node-images suite: ${missing.join(", ")} missing (the program hashes every image's sources)`);
const describeProgram = missing.length > 0 ? describe.skip : describe;

const NAMES = ["vm1", "vm2", "vm3", "vm4", "vm5"];
const FIVE_NODES = NAMES.map((name, i) => ({
  name,
  host: `172.28.0.${11 + i}`,
  sshPort: 22,
  user: "root",
  role: i < 3 ? "manager" : "worker",
  labels: { vm: `ai-swarm-${name}` },
}));
const REGISTRY_PASSWORD = "registry-password-for-node-pulls-5d1e";

const pullsOf = (run: ProgramRun) => run.resources.filter((resource) => resource.type === TYPES.command && resource.name.startsWith("node-images-"));
const imagesOf = (run: ProgramRun) => run.resources.filter((resource) => resource.type === TYPES.image);
const serviceNamed = (run: ProgramRun, short: string): RegisteredResource => {
  const found = run.resources.find((resource) => resource.type === TYPES.service && resource.inputs["name"] === `ai-system_${short}`);
  if (!found) throw new Error(`no service ai-system_${short}`);
  return found;
};

/** The program under mocks with 3 managers + 2 workers. */
async function multiManagerRun(): Promise<ProgramRun> {
  return await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY, "registry.password": REGISTRY_PASSWORD }, { nodes: FIVE_NODES }));
}

describeProgram("a multi-manager stack under mocks: every node pulls every new image", () => {
  let r: ProgramRun;
  beforeAll(async () => {
    r = await multiManagerRun();
  });

  it("one pull per node, on that node, kept on delete, after that node trusts the registry", () => {
    const pulls = pullsOf(r);
    expect(pulls.map((pull) => pull.name)).toEqual(NAMES.map((name) => `node-images-${name}`));
    for (const [i, pull] of pulls.entries()) {
      expect((pull.inputs["connection"] as { host: string }).host).toBe(FIVE_NODES[i]?.host);
      expect(pull.retainOnDelete).toBe(true);
      expect(pull.dependencies).toContain(byName(r.resources, TYPES.command, `registry-ca-${NAMES[i]}`).urn);
    }
  });

  it("pulls exactly the pushed refs, triggered by them, the password on stdin as a secret and never in the command", () => {
    const refs = imagesOf(r).map((image) => `${String(image.inputs["imageName"]).split(":").slice(0, -1).join(":")}@sha256:${"a".repeat(64)}`);
    // The four images and images/etcd (a multi-manager stack runs etcd).
    expect(imagesOf(r).map((image) => image.name)).toEqual(["images-master", "images-worker-python", "images-worker-go", "images-worker-java", "images-etcd"]);
    expect(refs).toHaveLength(5);
    for (const pull of pullsOf(r)) {
      expect(pull.inputs["triggers"]).toEqual(refs);
      for (const ref of refs) expect(String(pull.inputs["create"])).toContain(ref);
      expect(String(pull.inputs["create"])).toContain("--password-stdin");
      expect(isSecretMarker(pull.rawInputs["stdin"])).toBe(true);
      expect(pull.inputs["stdin"]).toBe(`${REGISTRY_PASSWORD}\n`);
      expect(JSON.stringify(withoutSecrets(pull.rawInputs))).not.toContain(REGISTRY_PASSWORD);
    }
  });

  it("the master and every worker service start only after every node pulled", () => {
    const pulls = pullsOf(r);
    for (const short of ["master", "worker-python", "worker-go", "worker-java"]) {
      const service = serviceNamed(r, short);
      for (const pull of pulls) expect(service.dependencies, `${short} after ${pull.name}`).toContain(pull.urn);
    }
  });

  it("rebalances uneven worker services before it reads the placement, only when the nodes change; exports the rebalance script", () => {
    const rebalance = byName(r.resources, TYPES.command, "workers-rebalance");
    const placement = byName(r.resources, TYPES.command, "workers-placement");
    expect(String(rebalance.inputs["create"])).toContain("docker service update --force");
    expect(placement.dependencies).toContain(rebalance.urn);
    for (const short of ["worker-python", "worker-go", "worker-java"]) expect(rebalance.dependencies).toContain(serviceNamed(r, short).urn);
    // Its only trigger is the node set: a replica or image change re-reads the placement but moves no other service.
    expect(rebalance.inputs["triggers"]).toEqual([JSON.stringify({ nodes: FIVE_NODES.map((node) => node.name) })]);
    expect(String(placement.inputs["create"])).not.toContain("service update --force");
    expect(JSON.stringify(placement.inputs["triggers"])).toContain("replicas");
    expect(String(r.outputs["workerRebalanceScript"]?.value)).toContain("docker service update --force");
  });

  it("declares the same pulls on a second run of the same config (a no-change deploy re-runs none)", async () => {
    const second = await multiManagerRun();
    expect(pullsOf(second).map((pull) => pull.rawInputs)).toEqual(pullsOf(r).map((pull) => pull.rawInputs));
  });
});

describeProgram("a 1-manager stack under mocks keeps what it declared before", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram(engineConfigFromStackFile("Pulumi.cluster.example.yaml", { sshPrivateKey: TEST_SSH_KEY, "registry.password": REGISTRY_PASSWORD }, {
      nodes: FIVE_NODES.map((node, i) => ({ ...node, role: i === 0 ? "manager" : "worker" })),
    }));
  });

  it("declares no per-node pull, and its placement script does not rebalance", () => {
    expect(pullsOf(run)).toEqual([]);
    expect(run.resources.filter((resource) => resource.name === "workers-rebalance")).toEqual([]);
    expect(String(byName(run.resources, TYPES.command, "workers-placement").inputs["create"])).not.toContain("service update --force");
  });

  it("still exports the rebalance script for the operator", () => {
    expect(String(run.outputs["workerRebalanceScript"]?.value)).toContain("docker service update --force");
  });
});
