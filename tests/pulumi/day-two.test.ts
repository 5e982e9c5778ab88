// Day two under the real engine (issue 9): a `pulumi up` that changes nothing
// must have nothing to do. The real index.ts runs under mocks for each stack
// config; every docker.Service it declares goes through what the provider and
// Docker do to it (translate → Docker's store, with the create-time digest
// pinning → the provider's Read, lab/harness/service-state.ts, itself held to
// the recorded real provider in service-state.test.ts) and must come back
// exactly as declared. A field declared in any other form fails here, naming
// the service and the field, before it can cost a restart of every task.
import { beforeAll, describe, expect, it } from "vitest";
import { InputError } from "../../lab/harness/json";
import type { JsonObject } from "../../lab/harness/json";
import {
  dockerShortName,
  engineConfigFromStackFile,
  missingDockerfiles,
  ONE_MANAGER_NODES,
  runProgram,
  serviceByDockerName,
  CLUSTER_SECRETS,
  TEST_SSH_KEY,
  TYPES,
  type ProgramRun,
  type RegisteredResource,
} from "./helpers";
import { perpetualDiffs } from "./serviceGuard";


const missing = missingDockerfiles();
const describeProgram = missing.length > 0 ? describe.skip : describe;
if (missing.length > 0) console.warn(`SKIPPED the day-two guard: ${missing.join(", ")} missing`);

describeProgram.each([
  { label: "dev (lab)", file: "Pulumi.dev.yaml", secrets: { sshPrivateKey: TEST_SSH_KEY }, overrides: {}, managers: ["vm1", "vm2", "vm3"] },
  { label: "dev, one manager", file: "Pulumi.dev.yaml", secrets: { sshPrivateKey: TEST_SSH_KEY }, overrides: { nodes: ONE_MANAGER_NODES }, managers: ["vm1"] },
  { label: "cluster example", file: "Pulumi.cluster.example.yaml", secrets: CLUSTER_SECRETS, overrides: {}, managers: ["manager", "manager2", "manager3"] },
  {
    label: "cluster example, long shutdown grace, no published MQTT, pinned third-party images",
    file: "Pulumi.cluster.example.yaml",
    secrets: CLUSTER_SECRETS,
    managers: ["manager", "manager2", "manager3"],
    overrides: {
      shutdownGraceMs: 65_000,
      ports: { web: 31663 },
      baseImages: { mosquitto: `eclipse-mosquitto:2@sha256:${"c".repeat(64)}`, registry: `registry:2@sha256:${"d".repeat(64)}` },
    },
  },
])("no perpetual diff: $label", ({ file, secrets, overrides, managers }) => {
  /** One etcd member per manager in a multi-manager stack, none in a 1-manager stack. */
  const etcdMembers = managers.length > 1 ? managers.map((node) => `etcd-${node}`) : [];
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram(engineConfigFromStackFile(file, secrets, overrides));
  });

  it("every service reads back exactly as declared", () => {
    const services = run.resources.filter((resource) => resource.type === TYPES.service);
    expect(services.map(dockerShortName).sort()).toEqual([...etcdMembers, "master", "mosquitto", "registry", "worker-go", "worker-java", "worker-python"].sort());
    expect(services.flatMap(perpetualDiffs)).toEqual([]);
  });

  it("no remote command asks for its previous output (the provider warns on each update and delete the server refuses it)", () => {
    const commands = run.resources.filter((resource) => resource.type === TYPES.command);
    expect(commands.length).toBeGreaterThan(10);
    expect(commands.filter((command) => command.inputs["addPreviousOutputInEnv"] !== false).map((command) => command.name)).toEqual([]);
  });

  it("every service is replaced delete-first (a fixed name cannot exist twice) and every build names its platform", () => {
    const services = run.resources.filter((resource) => resource.type === TYPES.service);
    expect(services.filter((service) => !service.deleteBeforeReplace).map((service) => service.name)).toEqual([]);
    const images = run.resources.filter((resource) => resource.type === TYPES.image);
    // The four app images, and images/etcd in a multi-manager stack.
    expect(images.map((image) => image.name)).toEqual(["images-master", "images-worker-python", "images-worker-go", "images-worker-java", ...(etcdMembers.length > 0 ? ["images-etcd"] : [])]);
    expect(images.map((image) => (image.inputs["build"] as { platform?: string }).platform)).toEqual(images.map(() => "linux/amd64"));
  });

  it("every app image is pinned by the digest the build pushed", () => {
    for (const name of ["master", "worker-python", "worker-go", "worker-java"]) {
      const service = serviceByDockerName(run.resources, name);
      const image = String(((service.inputs["taskSpec"] as JsonObject)["containerSpec"] as JsonObject)["image"]);
      expect(image, name).toMatch(new RegExp(`/ai-swarm/${name}@sha256:a{64}$`));
    }
  });
});

describe("the guard fails on a spec that would diff, naming the service and the field", () => {
  const base = (): RegisteredResource => ({
    type: TYPES.service,
    name: "worker-go",
    urn: "urn",
    custom: true,
    parent: "",
    provider: "",
    dependencies: [],
    rawInputs: {},
    additionalSecretOutputs: [],
    deleteBeforeReplace: true,
    retainOnDelete: false,
    aliasUrns: [],
    inputs: {
      name: "ai-system_worker-go",
      taskSpec: {
        containerSpec: { image: `r:5000/ai-swarm/worker-go@sha256:${"a".repeat(64)}`, stopGracePeriod: "30s" },
        restartPolicy: { condition: "any", delay: "5s", maxAttempts: 0, window: "1m" },
      },
      mode: { replicated: { replicas: 2 } },
      updateConfig: { parallelism: 1, delay: "5s", failureAction: "rollback", monitor: "30s", maxFailureRatio: "0.0", order: "stop-first" },
    },
  });
  const edit = (change: (inputs: Record<string, any>) => void): RegisteredResource => {
    const service = base();
    change(service.inputs);
    return service;
  };

  it("accepts the base spec", () => {
    expect(perpetualDiffs(base())).toEqual([]);
  });

  it("a restart window of 60s (the provider reads back 1m)", () => {
    expect(perpetualDiffs(edit((i) => (i["taskSpec"]["restartPolicy"]["window"] = "60s")))).toEqual([
      'ai-system_worker-go: taskSpec.restartPolicy.window: declared "60s", the provider reads back "1m"',
    ]);
  });

  it("an image by tag alone (Docker pins it to tag@digest on create)", () => {
    const diffs = perpetualDiffs(edit((i) => (i["taskSpec"]["containerSpec"]["image"] = "r:5000/ai-swarm/worker-go:3f9c2a1b7e04")));
    expect(diffs).toEqual([`ai-system_worker-go: taskSpec.containerSpec.image: declared "r:5000/ai-swarm/worker-go:3f9c2a1b7e04", the provider reads back "r:5000/ai-swarm/worker-go:3f9c2a1b7e04@sha256:${"b".repeat(64)}"`]);
  });

  it("a stop grace period of 70s (reads back 1m10s)", () => {
    expect(perpetualDiffs(edit((i) => (i["taskSpec"]["containerSpec"]["stopGracePeriod"] = "70s")))).toEqual([
      'ai-system_worker-go: taskSpec.containerSpec.stopGracePeriod: declared "70s", the provider reads back "1m10s"',
    ]);
  });

  it("an update delay of 5000ms (reads back 5s)", () => {
    expect(perpetualDiffs(edit((i) => (i["updateConfig"]["delay"] = "5000ms")))).toEqual([
      'ai-system_worker-go: updateConfig.delay: declared "5000ms", the provider reads back "5s"',
    ]);
  });

  it("a field the model does not know is an error, not a silent pass", () => {
    expect(() => perpetualDiffs(edit((i) => (i["taskSpec"]["containerSpec"]["tty"] = true)))).toThrow(InputError);
  });
});
