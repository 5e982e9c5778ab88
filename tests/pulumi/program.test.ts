// The real index.ts under pulumi.runtime.setMocks, for the dev (lab) stack and
// the example cluster stack: which resources it declares, in which order
// (dependencies), what the service specs say, and that no secret leaks into a
// plain input or output.
import { beforeAll, describe, expect, it } from "vitest";
import { contentTag } from "../../components/buildContext";
import { DEFAULT_ETCD_IMAGE } from "../../components/config";
import { buildArgsFor, type BuiltImageName, type ImageName } from "../../components/images";
import {
  byName,
  CLUSTER_SECRETS,
  engineConfigFromStackFile,
  MOCK_JOIN_TOKEN,
  MOCK_MANAGER_JOIN_TOKEN,
  MOCK_NODE_IDS,
  MOCK_WEB_KEY,
  REPO_ROOT,
  serviceByDockerName,
  dockerShortName,
  runProgram,
  TEST_SSH_KEY,
  TYPES,
  withoutSecrets,
  isSecretMarker,
  missingDockerfiles,
  type ProgramRun,
  type RegisteredResource,
} from "./helpers";
import { dockerSpecProblems } from "./dockerSpec";
import { integerSetting, timingRuleProblems } from "../../components/workerSettings";

const WORKERS = ["worker-python", "worker-go", "worker-java"] as const;

const missing = missingDockerfiles();
if (missing.length > 0) {
  console.warn(`SKIPPED the program suite: ${missing.join(", ")} missing (the program hashes every image's sources)`);
}
const describeProgram = missing.length > 0 ? describe.skip : describe;

function servicesOf(run: ProgramRun): RegisteredResource[] {
  return run.resources.filter((resource) => resource.type === TYPES.service);
}

function spec(resource: RegisteredResource) {
  return resource.inputs as {
    name: string;
    auth?: { serverAddress: string; username: string; password: string };
    mode: { replicated: { replicas: number } };
    endpointSpec: { mode: string; ports?: { publishMode: string; publishedPort: number; targetPort: number }[] };
    updateConfig: { failureAction: string };
    rollbackConfig: { failureAction: string };
    taskSpec: {
      containerSpec: {
        image: string;
        env?: Record<string, string>;
        secrets?: { secretId: string; fileName: string }[];
        healthcheck?: { interval: string; tests?: string[] };
        stopGracePeriod?: string;
      };
      placement: { maxReplicas?: number; constraints?: string[] };
      resources: { limits: { memoryBytes: number; nanoCpus: number } };
      networksAdvanceds?: { id: string }[];
    };
  };
}

/** Every secret value a run could leak, as the test supplied or the mocks generated them. */
function secretValues(run: ProgramRun, supplied: string[]): string[] {
  const generated = run.resources
    .filter((resource) => resource.type === TYPES.randomPassword)
    .map((resource) => `mockpw${resource.name.replace(/[^a-z0-9]/gi, "")}0123456789`);
  const values = [...supplied, ...generated, MOCK_JOIN_TOKEN, MOCK_WEB_KEY];
  // Secrets also travel base64-encoded (docker secret data): look for that form too.
  return values.flatMap((value) => [value, Buffer.from(value).toString("base64")]);
}

function expectNoSecretInPlainSight(run: ProgramRun, supplied: string[]): void {
  const secrets = secretValues(run, supplied);
  for (const resource of run.resources) {
    const plain = JSON.stringify(withoutSecrets(resource.rawInputs));
    for (const secret of secrets) {
      expect(plain.includes(secret), `${resource.type}/${resource.name} shows a secret in a plain input`).toBe(false);
    }
  }
  for (const [key, output] of Object.entries(run.outputs)) {
    if (output.secret) continue;
    const plain = JSON.stringify(output.value);
    for (const secret of secrets) expect(plain.includes(secret), `output ${key} shows a secret`).toBe(false);
  }
}

function dependsOn(resource: RegisteredResource, dependency: RegisteredResource): boolean {
  return resource.dependencies.includes(dependency.urn);
}

describeProgram.each([
  {
    stack: "dev",
    file: "Pulumi.dev.yaml",
    secrets: { sshPrivateKey: TEST_SSH_KEY },
    primary: "vm1",
    manager: "172.28.0.11",
    endpointMode: "dnsrr",
    publishMode: "host",
    encrypted: false,
    managers: ["vm2", "vm3"],
    workers: ["vm4", "vm5"],
    replicas: { "worker-python": 2, "worker-go": 2, "worker-java": 2 },
    addressPoolArgs: "--default-addr-pool '172.29.0.0/16' --default-addr-pool-mask-length 24",
  },
  {
    stack: "cluster",
    file: "Pulumi.cluster.example.yaml",
    secrets: CLUSTER_SECRETS,
    primary: "manager",
    manager: "192.0.2.11",
    endpointMode: "vip",
    publishMode: "ingress",
    encrypted: true,
    managers: ["manager2", "manager3"],
    workers: ["worker1", "worker2", "worker3"],
    replicas: { "worker-python": 3, "worker-go": 3, "worker-java": 3 },
    addressPoolArgs: undefined,
  },
])("$stack stack under mocks", (expected) => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await runProgram(engineConfigFromStackFile(expected.file, expected.secrets), expected.stack);
  });

  /** The stack's services: the six of every stack and one etcd member per manager (a 3-manager stack). */
  const serviceNames = (): string[] =>
    [
      "ai-system_master", "ai-system_mosquitto", "ai-system_registry", "ai-system_worker-go", "ai-system_worker-java", "ai-system_worker-python",
      ...[expected.primary, ...expected.managers].map((node) => `ai-system_etcd-${node}`),
    ].sort();
  /** Every node but the primary: each joins the swarm. */
  const joining = (): string[] => [...expected.managers, ...expected.workers];

  it("bootstraps the swarm: init on the primary, every join after init and after its role's token", () => {
    const init = byName(run.resources, TYPES.command, "swarm-init");
    expect((init.inputs["connection"] as { host: string }).host).toBe(expected.manager);
    const initScript = String(init.inputs["create"]);
    if (expected.addressPoolArgs === undefined) expect(initScript).not.toContain("--default-addr-pool");
    else expect(initScript).toContain(`docker swarm init --advertise-addr '${expected.manager}' ${expected.addressPoolArgs} >/dev/null`);
    const token = byName(run.resources, TYPES.command, "swarm-join-token-worker");
    expect(token.additionalSecretOutputs).toContain("stdout");
    expect(token.inputs["logging"]).toBe("none");
    expect(dependsOn(token, init)).toBe(true);
    const managerToken = byName(run.resources, TYPES.command, "swarm-join-token-manager");
    expect(managerToken.additionalSecretOutputs).toContain("stdout");
    expect(managerToken.inputs["logging"]).toBe("none");
    expect(dependsOn(managerToken, init)).toBe(true);
    for (const node of joining()) {
      const join = byName(run.resources, TYPES.command, `swarm-join-${node}`);
      const roleToken = expected.managers.includes(node) ? managerToken : token;
      expect(dependsOn(join, init), `join-${node} after init`).toBe(true);
      expect(dependsOn(join, roleToken), `join-${node} gets the ${roleToken.name}`).toBe(true);
      expect(join.deleteBeforeReplace).toBe(true);
      expect(String(join.inputs["delete"])).toContain("docker swarm leave");
      const labels = byName(run.resources, TYPES.command, `swarm-node-${node}`);
      expect(dependsOn(labels, join)).toBe(true);
      // A worker's label resource drains and removes it on delete; a manager's has no delete (the primary's members step removes it).
      if (expected.workers.includes(node)) expect(String(labels.inputs["delete"])).toMatch(/--availability drain[\s\S]*docker node rm/);
      else expect(labels.inputs["delete"]).toBeUndefined();
    }
    expect(run.resources.filter((r) => r.type === TYPES.command && /^swarm-join-(?!token-)/.test(r.name)).map((r) => r.name)).toEqual(
      joining().map((node) => `swarm-join-${node}`),
    );
  });

  it("passes the join token on stdin as a secret, never in a command line", () => {
    for (const node of joining()) {
      const join = byName(run.resources, TYPES.command, `swarm-join-${node}`);
      const roleToken = expected.managers.includes(node) ? MOCK_MANAGER_JOIN_TOKEN : MOCK_JOIN_TOKEN;
      expect(isSecretMarker(join.rawInputs["stdin"])).toBe(true);
      expect(join.inputs["stdin"]).toBe(`${roleToken}\n${MOCK_NODE_IDS}`);
      expect(String(join.inputs["create"])).not.toContain(MOCK_JOIN_TOKEN);
      expect(String(join.inputs["create"])).not.toContain(MOCK_MANAGER_JOIN_TOKEN);
    }
  });

  it("keeps the SSH key secret in every command's connection", () => {
    const commands = run.resources.filter((resource) => resource.type === TYPES.command);
    expect(commands.length).toBeGreaterThan(10);
    for (const command of commands) {
      const connection = command.rawInputs["connection"];
      const privateKey = isSecretMarker(connection)
        ? (connection.value as Record<string, unknown>)["privateKey"]
        : (connection as Record<string, unknown>)["privateKey"];
      expect(isSecretMarker(connection) || isSecretMarker(privateKey), `${command.name} connection`).toBe(true);
      expect((command.inputs["connection"] as { privateKey: string }).privateKey).toBe(TEST_SSH_KEY);
    }
  });

  it("sets up the registry: TLS made on the manager, CA on every node, ready before any image", () => {
    const tls = byName(run.resources, TYPES.command, "registry-tls");
    expect((tls.inputs["connection"] as { host: string }).host).toBe(expected.manager);
    const nodes = [expected.manager, ...joining()];
    const caInstalls = run.resources.filter((r) => r.type === TYPES.command && r.name.startsWith("registry-ca-"));
    expect(caInstalls).toHaveLength(nodes.length);
    for (const install of caInstalls) {
      expect(String(install.inputs["create"])).toContain(`/etc/docker/certs.d/${expected.manager}:5000/ca.crt`);
      expect(dependsOn(install, tls)).toBe(true);
    }
    const ready = byName(run.resources, TYPES.command, "registry-ready");
    const registryService = serviceByDockerName(run.resources, "registry");
    expect(dependsOn(ready, registryService)).toBe(true);
    for (const image of run.resources.filter((r) => r.type === TYPES.image)) {
      expect(dependsOn(image, ready), `${image.name} waits for the registry`).toBe(true);
    }
  });

  it("builds the four images and images/etcd from the repo root, tagged by content, pushed to the private registry", () => {
    const images = run.resources.filter((r) => r.type === TYPES.image);
    expect(images.map((image) => image.name).sort()).toEqual(["images-etcd", "images-master", "images-worker-go", "images-worker-java", "images-worker-python"]);
    for (const image of images) {
      const name = image.name.replace(/^images-/, "") as BuiltImageName;
      const inputs = image.inputs as { imageName: string; build: { context: string; dockerfile: string; args: Record<string, string> }; registry: { server: string } };
      const tag = contentTag(REPO_ROOT, name, inputs.build.args);
      expect(inputs.imageName).toBe(`${expected.manager}:5000/ai-swarm/${name}:${tag}`);
      expect(inputs.build.context).toBe(".");
      expect(inputs.build.dockerfile).toBe(`images/${name}/Dockerfile`);
      // Named on every build (the provider warns on every preview when it must guess).
      expect((inputs.build as { platform?: string }).platform).toBe("linux/amd64");
      expect(inputs.registry.server).toBe(`${expected.manager}:5000`);
      expect(isSecretMarker((image.rawInputs["registry"] as Record<string, unknown>)["password"]) || isSecretMarker(image.rawInputs["registry"])).toBe(true);
    }
  });

  it("passes the configured base images as the Dockerfiles' build args", () => {
    const images = run.resources.filter((r) => r.type === TYPES.image);
    const args = Object.fromEntries(images.map((image) => [image.name.replace(/^images-/, ""), (image.inputs["build"] as { args: Record<string, string> }).args]));
    if (expected.stack === "dev") {
      expect(args["master"]).toEqual({ NODE_IMAGE: "ai-swarm-base/node:20" });
      expect(args["worker-python"]).toEqual({ PYTHON_IMAGE: "ai-swarm-base/python:3.11" });
      expect(args["worker-go"]).toEqual({ GO_IMAGE: "ai-swarm-base/go:1.26" });
      expect(args["worker-java"]).toEqual({ MAVEN_IMAGE: "ai-swarm-base/maven:3-jdk17", RUNTIME_IMAGE: "ai-swarm-base/debian:bookworm-slim" });
      expect(args["etcd"]).toEqual({ ETCD_IMAGE: "ai-swarm-base/etcd:3.4", RUNTIME_IMAGE: "ai-swarm-base/debian:bookworm-slim" });
    } else {
      // No base images configured: the Dockerfiles' defaults (the official images) apply; etcd's binaries come from the config's default.
      for (const name of Object.keys(args).filter((name) => name !== "etcd")) expect(args[name], name).toEqual({});
      expect(args["etcd"]).toEqual({ ETCD_IMAGE: DEFAULT_ETCD_IMAGE });
    }
  });

  it("declares every service after its image and the network, named <stack>_<service>", () => {
    const network = byName(run.resources, TYPES.network, "network-overlay");
    expect(network.inputs).toMatchObject({ name: "ai-system_net", driver: "overlay", attachable: true });
    const options = network.inputs["options"] as Record<string, string> | undefined;
    expect(options !== undefined && "encrypted" in options).toBe(expected.encrypted);
    const services = servicesOf(run);
    expect(services.map((service) => spec(service).name).sort()).toEqual(serviceNames());
    for (const name of ["master", ...WORKERS]) {
      const service = serviceByDockerName(run.resources, name);
      expect(dependsOn(service, byName(run.resources, TYPES.image, `images-${name}`)), `${name} after its image`).toBe(true);
      expect(dependsOn(service, network), `${name} after the network`).toBe(true);
      expect(spec(service).taskSpec.networksAdvanceds?.[0]?.id).toBe("network-overlay-id");
    }
    const mosquitto = serviceByDockerName(run.resources, "mosquitto");
    expect(dependsOn(mosquitto, network)).toBe(true);
    // The app's services wait for every node; the registry (pinned to the manager) needs only the init.
    const appServices = services.filter((service) => dockerShortName(service) !== "registry");
    for (const worker of joining()) {
      const labels = byName(run.resources, TYPES.command, `swarm-node-${worker}`);
      for (const service of appServices) expect(dependsOn(service, labels), `${service.name} after ${worker} joined`).toBe(true);
    }
    // Nodes pull the app images only once every node trusts the registry's CA.
    const caInstalls = run.resources.filter((r) => r.type === TYPES.command && r.name.startsWith("registry-ca-"));
    for (const name of ["master", ...WORKERS]) {
      const service = serviceByDockerName(run.resources, name);
      for (const install of caInstalls) expect(dependsOn(service, install), `${name} after ${install.name}`).toBe(true);
    }
  });

  it("gives every worker service max replicas per node, a private image pinned by digest, registry auth and health checks", () => {
    for (const name of WORKERS) {
      const worker = spec(serviceByDockerName(run.resources, name));
      expect(worker.taskSpec.placement.maxReplicas).toBe(1);
      expect(worker.mode.replicated.replicas).toBe(expected.replicas[name]);
      // The pushed image's repoDigest: Docker keeps a digest as given, so the state matches the declaration.
      expect(worker.taskSpec.containerSpec.image).toMatch(new RegExp(`^${expected.manager.replace(/\./g, "\\.")}:5000/ai-swarm/${name}@sha256:[0-9a-f]{64}$`));
      expect(worker.taskSpec.containerSpec.image).not.toMatch(/:latest$/);
      expect(worker.auth).toMatchObject({ serverAddress: `${expected.manager}:5000`, username: "aiswarm" });
      expect(worker.taskSpec.containerSpec.healthcheck?.interval).toBe("10s");
      expect(worker.updateConfig.failureAction).toBe("rollback");
      expect(worker.taskSpec.resources.limits.memoryBytes).toBeGreaterThan(0);
      const env = worker.taskSpec.containerSpec.env ?? {};
      expect(env).toMatchObject({
        NODE_HOSTNAME: "{{.Node.Hostname}}",
        TASK_SLOT: "{{.Task.Slot}}",
        // Network aliases: service names have an underscore, which Java's URI and grpc-java refuse as a host.
        MQTT_HOST: "mosquitto",
        MQTT_PORT: "1883",
        MQTT_USERNAME: name,
        MQTT_PASSWORD_FILE: "/run/secrets/mqtt_password",
        MASTER_GRPC_ADDR: "master:50051",
        GRPC_TOKEN_FILE: "/run/secrets/grpc_token",
        SIMULATED_WORK_MS: "10000",
        MQTT_TOPIC_PREFIX: "ai-system",
      });
      expect(env["WORKER_ID"]).toBeUndefined();
      if (expected.stack === "cluster") {
        expect(env).toMatchObject({ LLM_PROVIDER: "gemini", GEMINI_API_KEY_FILE: "/run/secrets/llm_api_key", GEMINI_MODEL: "gemini-2.5-flash" });
      } else {
        expect(env["LLM_PROVIDER"]).toBe("auto");
        expect(env["GEMINI_API_KEY_FILE"]).toBeUndefined();
      }
    }
  });

  it("runs master and broker on any manager, the registry on the primary, and publishes the web port per config", () => {
    for (const name of ["master", "mosquitto"]) {
      expect(spec(serviceByDockerName(run.resources, name)).taskSpec.placement.constraints).toEqual(["node.role==manager"]);
    }
    expect(spec(serviceByDockerName(run.resources, "registry")).taskSpec.placement.constraints).toEqual([`node.labels.ai-swarm.node==${expected.primary}`]);
    const master = spec(serviceByDockerName(run.resources, "master"));
    const webPort = expected.stack === "dev" ? 8888 : 31663;
    expect(master.endpointSpec).toEqual({
      mode: expected.endpointMode,
      ports: [{ name: "web", protocol: "tcp", targetPort: 8888, publishedPort: webPort, publishMode: expected.publishMode }],
    });
    // On etcd (a 3-manager stack; the one-manager SQLite spec: etcd.test.ts).
    expect(master.taskSpec.containerSpec.env).toMatchObject({ STORE: "etcd", HTTP_PORT: "8888", GRPC_PORT: "50051", MQTT_USERNAME: "master" });
    const mqtt = spec(serviceByDockerName(run.resources, "mosquitto")).endpointSpec.ports?.[0];
    expect(mqtt?.publishedPort).toBe(expected.stack === "dev" ? 1883 : 21662);
  });

  it("produces service specs the Docker engine accepts", () => {
    const secretIds = new Set(run.resources.filter((r) => r.type === TYPES.secret).map((r) => `${r.name}-id`));
    for (const service of servicesOf(run)) {
      expect(dockerSpecProblems(service.inputs, { secretIds, networkIds: new Set(["network-overlay-id"]) }), service.name).toEqual([]);
    }
  });

  it("keeps every secret out of plain inputs and plain outputs", () => {
    expectNoSecretInPlainSight(run, Object.values(expected.secrets));
    for (const secret of run.resources.filter((r) => r.type === TYPES.secret)) {
      expect(isSecretMarker(secret.rawInputs["data"]), `${secret.name} data`).toBe(true);
      expect(String(secret.inputs["name"])).toMatch(/^ai-system_[a-z0-9-]+-[0-9a-f]{8}$/);
    }
    expect(run.outputs["registryPassword"]?.secret).toBe(true);
  });

  it("exports the web URL, the registry, the nodes and every service's image and replicas", () => {
    const webPort = expected.stack === "dev" ? 8888 : 31663;
    expect(run.outputs["webUrl"]?.value).toBe(`https://${expected.manager}:${webPort}`);
    expect(run.outputs["registryAddress"]?.value).toBe(`${expected.manager}:5000`);
    const nodes = run.outputs["nodes"]?.value as { name: string; role: string; nodeId: string }[];
    expect(nodes.map((node) => node.role)).toEqual(["manager", "manager", "manager", ...(expected.stack === "dev" ? ["worker", "worker"] : ["worker", "worker", "worker"])]);
    expect(nodes.map((node) => node.nodeId)).toEqual(nodes.map((node) => `nodeid-${node.name}`));
    const services = run.outputs["services"]?.value as { name: string; image: string; replicas: number }[];
    expect(services.map((service) => service.name).sort()).toEqual(serviceNames());
    for (const service of services.filter((s) => s.name.includes("worker"))) {
      expect(service.image).toMatch(/ai-swarm\/worker-[a-z]+@sha256:[0-9a-f]{64}$/);
      expect(service.replicas).toBe(expected.replicas[service.name.replace("ai-system_", "") as (typeof WORKERS)[number]]);
    }
    expect(run.outputs["workerPlacementCommand"]?.value).toContain("docker service ps");
    expect(run.outputs["workerPlacement"]?.value).toContain("ai-swarm-vm2");
    expect(run.outputs["services"]?.secret).toBe(false);
    expect(run.outputs["nodes"]?.secret).toBe(false);
  });

  it("deploys timings that fit together: every rule of proto/worker-settings.json holds for master and each worker", () => {
    const masterEnv = spec(serviceByDockerName(run.resources, "master")).taskSpec.containerSpec.env ?? {};
    for (const name of WORKERS) {
      const workerEnv = spec(serviceByDockerName(run.resources, name)).taskSpec.containerSpec.env ?? {};
      // What the container runs with: the variable the spec sets, else the image's default (the table's).
      const effective = (variable: string): number => Number(masterEnv[variable] ?? workerEnv[variable] ?? integerSetting(variable).default);
      expect(timingRuleProblems(effective)).toEqual([]);
    }
  });

  it("derives each image's build args from config the way images.ts documents", () => {
    expect(buildArgsFor("worker-go", { go: "x/go:1", mosquitto: "m", registry: "r", etcd: "e" })).toEqual({ GO_IMAGE: "x/go:1" });
    expect(buildArgsFor("etcd", { runtime: "x/slim", mosquitto: "m", registry: "r", etcd: "x/etcd:3" })).toEqual({ ETCD_IMAGE: "x/etcd:3", RUNTIME_IMAGE: "x/slim" });
  });
});

describeProgram("build.onManager", () => {
  it("builds on the manager's engine by default and on the local engine when false", async () => {
    const onManager = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }));
    const manager = byName(onManager.resources, TYPES.dockerProvider, "manager-docker");
    expect(manager.inputs["host"]).toBe("ssh://root@172.28.0.11:22");
    for (const image of onManager.resources.filter((r) => r.type === TYPES.image)) expect(image.provider).toMatch(/::manager-docker::/);

    const local = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }, { build: { onManager: false } }));
    const localProvider = byName(local.resources, TYPES.dockerProvider, "local-docker");
    expect(localProvider.inputs["host"]).toBeUndefined();
    for (const image of local.resources.filter((r) => r.type === TYPES.image)) expect(image.provider).toMatch(/::local-docker::/);
    for (const service of local.resources.filter((r) => r.type === TYPES.service)) expect(service.provider).toMatch(/::manager-docker::/);
  });
});

describeProgram("timings set in the stack config", () => {
  it("reach the master (HEARTBEAT_TIMEOUT_MS, LEASE_MS, TASK_TIMEOUT_MS) and every worker (HEARTBEAT_INTERVAL_MS); unset, none is passed", async () => {
    const timings = { heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 4000, leaseMs: 20_000, taskTimeoutMs: 600_000 };
    const set = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }, timings));
    expect(spec(serviceByDockerName(set.resources, "master")).taskSpec.containerSpec.env).toMatchObject({
      HEARTBEAT_TIMEOUT_MS: "4000",
      LEASE_MS: "20000",
      TASK_TIMEOUT_MS: "600000",
    });
    for (const name of WORKERS) {
      const env = spec(serviceByDockerName(set.resources, name)).taskSpec.containerSpec.env ?? {};
      expect(env["HEARTBEAT_INTERVAL_MS"]).toBe("1000");
      expect(env["HEARTBEAT_TIMEOUT_MS"]).toBeUndefined();
    }
    const unset = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }));
    for (const name of ["master", ...WORKERS]) {
      const env = spec(serviceByDockerName(unset.resources, name)).taskSpec.containerSpec.env ?? {};
      expect(Object.keys(env).filter((key) => ["HEARTBEAT_INTERVAL_MS", "HEARTBEAT_TIMEOUT_MS", "LEASE_MS", "TASK_TIMEOUT_MS"].includes(key))).toEqual([]);
    }
  });
});

describeProgram("a bad config under mocks", () => {
  it("throws one error listing every problem and declares nothing", async () => {
    const engine = engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }, {
      endpointMode: "dnsrr",
      publishMode: "ingress",
      replicas: { python: 9, go: 1, java: 1 },
    });
    const error = await runProgram(engine).then(
      () => undefined,
      (thrown: unknown) => thrown as Error & { registeredCount: number },
    );
    expect(error?.message).toMatch(/ai-swarm:replicas\.python: 9 replicas cannot be placed[\s\S]*ai-swarm:endpointMode: dnsrr cannot be combined/);
    expect(error?.registeredCount).toBe(0);
  });
});
