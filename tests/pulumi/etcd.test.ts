// The etcd members and the master on etcd (a stack with more than one
// manager): the pure specs, the whole program under mocks with three managers,
// and a one-manager stack that keeps every resource and spec it had.
// The dev stack file has three managers (vm1-vm3), the cluster example three
// (manager, manager2, manager3); the one-manager run is the dev stack with the
// lab's earlier nodes (one-manager.test.ts ONE_MANAGER_NODES).
import { beforeAll, describe, expect, it } from "vitest";
import type { JsonObject } from "../../lab/harness/json";
import { ETCD_COMPACTION_FLAGS } from "../../components/etcdSettings";
import { etcdServiceArgs, masterServiceArgs, type MasterRefs, type SecretMount, type StackServiceSettings } from "../../components/specs";
import {
  dockerShortName,
  engineConfigFromStackFile,
  missingDockerfiles,
  MOCK_ETCD_KEY,
  runProgram,
  serviceByDockerName,
  CLUSTER_SECRETS,
  TEST_SSH_KEY,
  TYPES,
  type ProgramRun,
  type RegisteredResource,
  ONE_MANAGER_NODES,
} from "./helpers";
import { perpetualDiffs } from "./serviceGuard";

const settings: StackServiceSettings = { stackName: "ai-system", endpointMode: "dnsrr", publishMode: "host", topicPrefix: "ai-system" };
const mount = (fileName: string): SecretMount => ({ secretId: `${fileName}-id`, secretName: `ai-system_${fileName}-1234abcd`, fileName });
const memberRefs = { networkId: "net", image: "r:5000/ai-swarm/etcd@sha256:x", registryAuth: { serverAddress: "r:5000", username: "u", password: "p" } };

type Spec = {
  taskSpec: { containerSpec: JsonObject & { env: Record<string, string>; mounts: JsonObject[]; secrets: SecretMount[] }; placement: JsonObject; networksAdvanceds: JsonObject[] };
} & JsonObject;

describe("etcdServiceArgs", () => {
  const spec = etcdServiceArgs(settings, "vm2", ["vm1", "vm2", "vm3"], {
    ...memberRefs,
    ca: mount("etcd-ca.crt"),
    certificate: mount("etcd-vm2.crt"),
    privateKey: mount("etcd-vm2.key"),
  }) as unknown as Spec;
  const { containerSpec, placement } = spec.taskSpec;

  it("one member pinned to its node, with its own volume and no published port", () => {
    expect(spec["name"]).toBe("ai-system_etcd-vm2");
    expect(placement).toEqual({ constraints: ["node.labels.ai-swarm.node==vm2"] });
    expect(containerSpec.mounts[0]).toEqual({ type: "volume", source: "ai-system_etcd-data-vm2", target: "/var/lib/etcd" });
    expect(containerSpec.env["ETCD_DATA_DIR"]).toBe("/var/lib/etcd/data");
    expect(spec["endpointSpec"]).toEqual({ mode: "dnsrr" });
    expect(spec["mode"]).toEqual({ replicated: { replicas: 1 } });
  });

  it("knows every member and reaches them by their aliases on the stack network", () => {
    expect(containerSpec.env["ETCD_NAME"]).toBe("etcd-vm2");
    expect(containerSpec.env["ETCD_INITIAL_CLUSTER"]).toBe("etcd-vm1=https://etcd-vm1:2380,etcd-vm2=https://etcd-vm2:2380,etcd-vm3=https://etcd-vm3:2380");
    expect(containerSpec.env["CLUSTER_ENDPOINTS"]).toBe("https://etcd-vm1:2379,https://etcd-vm2:2379,https://etcd-vm3:2379");
    expect(containerSpec.env["ETCD_ADVERTISE_CLIENT_URLS"]).toBe("https://etcd-vm2:2379");
    expect(spec.taskSpec.networksAdvanceds).toEqual([{ id: "net", aliases: ["etcd-vm2"] }]);
  });

  it("TLS with client certificates on both ports, the files only as Docker secrets, the compaction flags as arguments", () => {
    const env = containerSpec.env;
    expect([env["ETCD_CLIENT_CERT_AUTH"], env["ETCD_PEER_CLIENT_CERT_AUTH"]]).toEqual(["true", "true"]);
    expect([env["ETCD_TRUSTED_CA_FILE"], env["ETCD_CERT_FILE"], env["ETCD_KEY_FILE"]]).toEqual([
      "/run/secrets/etcd-ca.crt",
      "/run/secrets/etcd-vm2.crt",
      "/run/secrets/etcd-vm2.key",
    ]);
    expect([env["ETCD_PEER_TRUSTED_CA_FILE"], env["ETCD_PEER_CERT_FILE"], env["ETCD_PEER_KEY_FILE"]]).toEqual([
      "/run/secrets/etcd-ca.crt",
      "/run/secrets/etcd-vm2.crt",
      "/run/secrets/etcd-vm2.key",
    ]);
    expect(containerSpec.secrets.map((secret) => secret.fileName)).toEqual(["etcd-ca.crt", "etcd-vm2.crt", "etcd-vm2.key"]);
    expect(Object.values(env).filter((value) => value.includes("-----BEGIN"))).toEqual([]);
    expect(containerSpec["args"]).toEqual([...ETCD_COMPACTION_FLAGS]);
  });

  it("DNS round-robin even in a stack of virtual IPs (peers must resolve to the address they connect from)", () => {
    const vip = etcdServiceArgs({ ...settings, endpointMode: "vip", publishMode: "ingress" }, "vm1", ["vm1"], {
      ...memberRefs,
      ca: mount("a"),
      certificate: mount("b"),
      privateKey: mount("c"),
    });
    expect(vip.endpointSpec).toEqual({ mode: "dnsrr" });
  });

  it("refuses a node that is not a member, naming it", () => {
    expect(() => etcdServiceArgs(settings, "vm9", ["vm1", "vm2", "vm3"], { ...memberRefs, ca: mount("a"), certificate: mount("b"), privateKey: mount("c") })).toThrow(
      "etcd member vm9 is not one of the members (vm1, vm2, vm3)",
    );
  });
});

describe("masterServiceArgs", () => {
  const refs: MasterRefs = {
    networkId: "net",
    image: "r:5000/ai-swarm/master@sha256:x",
    registryAuth: memberRefs.registryAuth,
    grpcToken: mount("grpc_token"),
    mqttPassword: mount("mqtt_password"),
    web: { metricsOpen: false },
    webPort: 8888,
    timings: {},
  };
  const sqlite = masterServiceArgs(settings, refs) as unknown as Spec;
  const onEtcd = masterServiceArgs(settings, {
    ...refs,
    etcd: { endpoints: ["https://etcd-vm1:2379", "https://etcd-vm2:2379"], ca: mount("etcd-ca.crt"), certificate: mount("etcd-client-master.crt"), privateKey: mount("etcd-client-master.key") },
  }) as unknown as Spec;

  it("with etcd: STORE=etcd, every member, the TLS files as Docker secrets, no SQLite", () => {
    const env = onEtcd.taskSpec.containerSpec.env;
    expect(env["STORE"]).toBe("etcd");
    expect(env["ETCD_ENDPOINTS"]).toBe("https://etcd-vm1:2379,https://etcd-vm2:2379");
    expect([env["ETCD_CA_FILE"], env["ETCD_CERT_FILE"], env["ETCD_KEY_FILE"]]).toEqual([
      "/run/secrets/etcd-ca.crt",
      "/run/secrets/etcd-client-master.crt",
      "/run/secrets/etcd-client-master.key",
    ]);
    expect(env["DB_PATH"]).toBeUndefined();
    expect(onEtcd.taskSpec.containerSpec.secrets.map((secret) => secret.fileName)).toEqual([
      "grpc_token",
      "mqtt_password",
      "etcd-ca.crt",
      "etcd-client-master.crt",
      "etcd-client-master.key",
    ]);
    expect(onEtcd.taskSpec.containerSpec.mounts.filter((m) => m["type"] === "volume")).toEqual([]);
  });

  it("with etcd: leader and standby on managers, never two on one", () => {
    expect(onEtcd["mode"]).toEqual({ replicated: { replicas: 2 } });
    expect(onEtcd.taskSpec.placement).toEqual({ constraints: ["node.role==manager"], maxReplicas: 1 });
  });

  it("without etcd: SQLite on the manager's volume, one replica", () => {
    expect(sqlite.taskSpec.containerSpec.env["DB_PATH"]).toBe("/data/master.db");
    expect(sqlite.taskSpec.containerSpec.env["STORE"]).toBeUndefined();
    expect(sqlite.taskSpec.containerSpec.mounts[0]).toEqual({ type: "volume", source: "ai-system_master-data", target: "/data" });
    expect(sqlite["mode"]).toEqual({ replicated: { replicas: 1 } });
    expect(sqlite.taskSpec.placement).toEqual({ constraints: ["node.role==manager"] });
  });
});

const missing = missingDockerfiles();
const describeProgram = missing.length > 0 ? describe.skip : describe;
if (missing.length > 0) console.warn(`SKIPPED the etcd program tests: ${missing.join(", ")} missing`);

const envOf = (service: RegisteredResource): Record<string, string> =>
  ((service.inputs["taskSpec"] as JsonObject)["containerSpec"] as JsonObject)["env"] as Record<string, string>;

describeProgram("the program with three managers (dev stack: vm1-vm3)", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }));
  });

  const etcdServices = (): RegisteredResource[] => run.resources.filter((r) => r.type === TYPES.service && dockerShortName(r).startsWith("etcd-"));

  it("one etcd member per manager, in an EtcdCluster component, each reading back as declared", () => {
    const component = run.resources.filter((r) => r.type === "ai-swarm:index:EtcdCluster");
    expect(component.map((r) => r.name)).toEqual(["etcd"]);
    const services = etcdServices();
    expect(services.map(dockerShortName)).toEqual(["etcd-vm1", "etcd-vm2", "etcd-vm3"]);
    expect(services.map((s) => s.name)).toEqual(["etcd-vm1", "etcd-vm2", "etcd-vm3"]);
    for (const service of services) expect(service.parent).toBe(component[0]?.urn);
    expect(run.resources.filter((r) => r.type === TYPES.service).flatMap(perpetualDiffs)).toEqual([]);
  });

  it("members are created and updated one at a time: each depends on the one before", () => {
    const [first, second, third] = etcdServices() as [RegisteredResource, RegisteredResource, RegisteredResource];
    expect(first.dependencies.filter((urn) => urn.includes(`${TYPES.service}::etcd-`))).toEqual([]);
    expect(second.dependencies).toContain(first.urn);
    expect(third.dependencies).toContain(second.urn);
  });

  it("certificates are made on the primary without logging and come back secret; keys live only in Docker secrets", () => {
    const commands = run.resources.filter((r) => r.type === TYPES.command && r.name.startsWith("etcd-tls-"));
    expect(commands.map((c) => c.name)).toEqual(["etcd-tls-vm1", "etcd-tls-vm2", "etcd-tls-vm3", "etcd-tls-client-master"]);
    for (const command of commands) {
      expect(command.inputs["logging"]).toBe("none");
      expect(command.additionalSecretOutputs).toContain("stdout");
    }
    const holding = run.resources.filter((r) => JSON.stringify(r.inputs).includes(Buffer.from(MOCK_ETCD_KEY).toString("base64")) || JSON.stringify(r.inputs).includes("MOCKETCDKEYSECRET"));
    expect([...new Set(holding.map((r) => r.type))]).toEqual([TYPES.secret]);
  });

  it("the master runs on etcd: STORE=etcd on every member, 2 replicas, at most 1 per manager, no SQLite volume", () => {
    const master = serviceByDockerName(run.resources, "master");
    const env = envOf(master);
    expect(env["STORE"]).toBe("etcd");
    expect(env["ETCD_ENDPOINTS"]).toBe("https://etcd-vm1:2379,https://etcd-vm2:2379,https://etcd-vm3:2379");
    expect(env["DB_PATH"]).toBeUndefined();
    expect(master.inputs["mode"]).toEqual({ replicated: { replicas: 2 } });
    expect((master.inputs["taskSpec"] as JsonObject)["placement"]).toEqual({ constraints: ["node.role==manager"], maxReplicas: 1 });
    for (const member of etcdServices()) expect(master.dependencies).toContain(member.urn);
  });

  it("builds images/etcd from the lab's etcd base", () => {
    const image = run.resources.find((r) => r.type === TYPES.image && r.name === "images-etcd");
    expect((image?.inputs["build"] as JsonObject)["args"]).toEqual({ ETCD_IMAGE: "ai-swarm-base/etcd:3.4", RUNTIME_IMAGE: "ai-swarm-base/debian:bookworm-slim" });
    expect(String(((etcdServices()[0]?.inputs["taskSpec"] as JsonObject)["containerSpec"] as JsonObject)["image"])).toMatch(/\/ai-swarm\/etcd@sha256:a{64}$/);
  });
});

describeProgram("the program with three managers (cluster example: virtual IPs, ingress; manager, manager2, manager3)", () => {
  it("every service reads back as declared, the members on DNS round-robin", async () => {
    const run = await runProgram(engineConfigFromStackFile("Pulumi.cluster.example.yaml", CLUSTER_SECRETS));
    const services = run.resources.filter((r) => r.type === TYPES.service);
    const members = services.filter((r) => dockerShortName(r).startsWith("etcd-"));
    expect(members.map(dockerShortName)).toEqual(["etcd-manager", "etcd-manager2", "etcd-manager3"]);
    for (const member of members) expect(member.inputs["endpointSpec"]).toEqual({ mode: "dnsrr" });
    expect(services.flatMap(perpetualDiffs)).toEqual([]);
  });
});

describeProgram("a one-manager stack is unchanged", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }, { nodes: ONE_MANAGER_NODES }));
  });

  it("declares no etcd resource and builds no etcd image", () => {
    expect(run.resources.filter((r) => /etcd/i.test(`${r.type} ${r.name}`)).map((r) => `${r.type} ${r.name}`)).toEqual([]);
    expect(run.resources.filter((r) => r.type === TYPES.image).map((r) => r.name)).toEqual(["images-master", "images-worker-python", "images-worker-go", "images-worker-java"]);
  });

  it("keeps the master on SQLite: its volume, one replica, no etcd variable or secret", () => {
    const master = serviceByDockerName(run.resources, "master");
    const env = envOf(master);
    expect(env["DB_PATH"]).toBe("/data/master.db");
    expect(Object.keys(env).filter((key) => key.startsWith("ETCD_") || key === "STORE")).toEqual([]);
    expect(master.inputs["mode"]).toEqual({ replicated: { replicas: 1 } });
    expect((master.inputs["taskSpec"] as JsonObject)["placement"]).toEqual({ constraints: ["node.role==manager"] });
  });
});
