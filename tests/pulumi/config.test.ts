// The stack config schema: the shipped stack files pass, each class of bad
// config is reported by its config key (all problems at once), and secret
// values stay secret and never appear in an error message.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_ETCD_IMAGE,
  faultToleranceWarning,
  loadStackConfig,
  managersOf,
  type NodeConfig,
  parseStackConfig,
  quorumProblem,
  StackConfigError,
  withSecrets,
} from "../../components/config";
import { integerSetting } from "../../components/workerSettings";
import { engineConfigFromStackFile, TEST_SSH_KEY, type EngineConfig } from "./helpers";

const CLUSTER_SECRETS = {
  sshPrivateKey: TEST_SSH_KEY,
  "registry.password": "registry-password-for-tests-9f3c",
  "llm.apiKey": "AIzaFakeGeminiKeyForTests-7731",
};

function dev(overrides: Record<string, unknown> = {}): EngineConfig {
  return engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }, overrides);
}

function problemsOf(engine: EngineConfig): string[] {
  const result = parseStackConfig(engine.config, engine.secretKeys);
  if (result.ok) throw new Error("expected the config to be rejected");
  return result.problems;
}

const devNodes = () => [
  { name: "vm1", host: "172.28.0.11", role: "manager" },
  { name: "vm2", host: "172.28.0.12", role: "worker" },
  { name: "vm3", host: "172.28.0.13", role: "worker" },
];

describe("valid stack files", () => {
  it("accepts the dev (lab) stack and fills the defaults", () => {
    const engine = dev();
    const result = parseStackConfig(engine.config, engine.secretKeys);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const config = result.config;
    expect(config.nodes).toHaveLength(5);
    expect(config.nodes[0]).toMatchObject({ name: "vm1", host: "172.28.0.11", sshPort: 22, user: "root", role: "manager" });
    expect(config).toMatchObject({ endpointMode: "dnsrr", publishMode: "host", network: { encrypted: false }, stackName: "ai-system" });
    expect(config.shutdownGraceMs).toBe(20_000);
    expect(config.registry.password).toBeUndefined();
    expect(config.baseImages.registry).toBe("ai-swarm-base/registry:2");
  });

  it("accepts the example cluster stack with its secrets", () => {
    const engine = engineConfigFromStackFile("Pulumi.cluster.example.yaml", CLUSTER_SECRETS);
    const result = parseStackConfig(engine.config, engine.secretKeys);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      endpointMode: "vip",
      publishMode: "ingress",
      network: { encrypted: true },
      ports: { web: 31663, mqtt: 21662 },
      llm: { provider: "gemini", model: "gemini-2.5-flash" },
    });
    expect(result.config.nodes.every((node) => node.sshPort === 11661)).toBe(true);
    expect(result.config.nodes.every((node) => node.host.startsWith("192.0.2."))).toBe(true);
    // Defaults when keys are absent.
    expect(result.config.baseImages).toEqual({ mosquitto: "eclipse-mosquitto:2", registry: "registry:2", etcd: DEFAULT_ETCD_IMAGE });
  });
});

describe("bad configs: every problem, named by its config key", () => {
  it("reports a duplicate host with its index", () => {
    const nodes = [...devNodes(), { name: "vm4", host: "172.28.0.12", role: "worker" }];
    expect(problemsOf(dev({ nodes }))).toContain("ai-swarm:nodes[3].host: duplicate host 172.28.0.12");
  });

  it("reports duplicate names", () => {
    const nodes = [...devNodes(), { name: "vm2", host: "172.28.0.14", role: "worker" }];
    expect(problemsOf(dev({ nodes }))).toContain("ai-swarm:nodes[3].name: duplicate name vm2");
  });

  it("accepts 1, 3 or 5 managers and refuses any other count under ai-swarm:nodes, saying why", () => {
    const nodes = (managers: number) =>
      Array.from({ length: 6 }, (_, index) => ({ name: `vm${index + 1}`, host: `172.28.0.${11 + index}`, role: index < managers ? "manager" : "worker" }));
    for (const managers of [1, 3, 5]) {
      const engine = dev({ nodes: nodes(managers) });
      const result = parseStackConfig(engine.config, engine.secretKeys);
      expect(result.ok ? managersOf(result.config.nodes).map((node) => node.name) : result.problems).toEqual(nodes(managers).slice(0, managers).map((node) => node.name));
    }
    expect(problemsOf(dev({ nodes: nodes(0) }))).toContain('ai-swarm:nodes: give role "manager" to 1, 3 or 5 nodes (found 0): the first manager creates the swarm');
    for (const managers of [2, 4]) {
      const problems = problemsOf(dev({ nodes: nodes(managers) })).filter((problem) => problem.startsWith("ai-swarm:nodes:"));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(`(found ${managers})`);
      expect(problems[0]).toContain("majority of its managers is up (Raft)");
      expect(problems[0]).toContain(`than ${managers - 1} would`);
    }
    expect(problemsOf(dev({ nodes: nodes(6) }))).toContain(
      'ai-swarm:nodes: give role "manager" to 1, 3 or 5 nodes (found 6): every manager takes part in each Raft write, and more than 5 only slows them',
    );
  });

  it("warns that one manager is not fault-tolerant, naming the fix; 3 managers get no warning", () => {
    const one = devNodes() as NodeConfig[];
    expect(faultToleranceWarning(one)).toContain("only one manager (vm1): the stack is not fault-tolerant");
    expect(faultToleranceWarning(one)).toContain('give role "manager" to 3 nodes');
    const three = devNodes().map((node) => ({ ...node, role: "manager" })) as NodeConfig[];
    expect(faultToleranceWarning(three)).toBeUndefined();
  });

  it("makes the first listed manager the primary, and lists every manager primary first", () => {
    const nodes = [
      { name: "w1", host: "172.28.0.20", role: "worker" },
      { name: "vm3", host: "172.28.0.13", role: "manager" },
      { name: "vm1", host: "172.28.0.11", role: "manager" },
      { name: "vm2", host: "172.28.0.12", role: "manager" },
    ];
    const engine = dev({ nodes });
    const result = parseStackConfig(engine.config, engine.secretKeys);
    if (!result.ok) throw new Error(result.problems.join("\n"));
    const config = withSecrets(result.config);
    expect(config.manager.name).toBe("vm3");
    expect(config.managers.map((node) => node.name)).toEqual(["vm3", "vm1", "vm2"]);
  });

  it("rejects more worker replicas than nodes × max per node", () => {
    expect(problemsOf(dev({ replicas: { python: 6, go: 1, java: 1 } }))).toContain(
      "ai-swarm:replicas.python: 6 replicas cannot be placed: 5 nodes × maxReplicasPerNode 1 = 5",
    );
    // Two per node makes room.
    const engine = dev({ replicas: { python: 6, go: 1, java: 1 }, maxReplicasPerNode: 2 });
    expect(parseStackConfig(engine.config, engine.secretKeys).ok).toBe(true);
  });

  it("rejects dnsrr with ingress publishing, naming both settings", () => {
    const problems = problemsOf(dev({ endpointMode: "dnsrr", publishMode: "ingress" }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^ai-swarm:endpointMode: dnsrr cannot be combined with publishMode ingress/);
  });

  it("checks the overlay address pool: a CIDR, and a mask no shorter than the pool", () => {
    const engine = dev();
    const parsed = parseStackConfig(engine.config, engine.secretKeys);
    expect(parsed.ok && parsed.config.network).toEqual({ encrypted: false, addressPool: "172.29.0.0/16", addressPoolMaskLength: 24 });
    expect(problemsOf(dev({ network: { encrypted: false, addressPool: "172.29.0.0" } }))).toEqual([
      "ai-swarm:network.addressPool: must be an IPv4 CIDR such as 172.29.0.0/16",
    ]);
    expect(problemsOf(dev({ network: { encrypted: false, addressPool: "172.29.0.0/16", addressPoolMaskLength: 12 } }))).toEqual([
      "ai-swarm:network.addressPoolMaskLength: Too small: expected number to be >=16",
    ]);
    expect(problemsOf(dev({ network: { encrypted: false, addressPool: "172.29.0.0/24", addressPoolMaskLength: 20 } }))[0]).toMatch(
      /^ai-swarm:network.addressPoolMaskLength: 20 is shorter than the pool's \/24/,
    );
    expect(problemsOf(dev({ network: { encrypted: false, addressPoolMaskLength: 24 } }))).toEqual([
      "ai-swarm:network.addressPoolMaskLength: needs network.addressPool",
    ]);
  });

  it("names wrong types, bad values and unknown keys at their exact path", () => {
    const nodes = [
      { name: "vm1", host: "172.28.0.11", role: "manager", sshPort: "twenty-two" },
      { name: "Bad Name", host: "172.28.0.12", role: "boss" },
      { name: "vm3", host: "172.28.0.13", role: "worker", labels: { "bad key!": "x" } },
    ];
    const problems = problemsOf(dev({ nodes, endpointMode: "round-robin", replicaz: 3, registry: { port: 70000 } }));
    const keys = problems.map((problem) => problem.split(": ")[0]);
    expect(keys).toEqual(
      expect.arrayContaining([
        "ai-swarm:nodes[0].sshPort",
        "ai-swarm:nodes[1].name",
        "ai-swarm:nodes[1].role",
        "ai-swarm:nodes[2].labels.bad key!",
        "ai-swarm:endpointMode",
        "ai-swarm:registry.port",
        "ai-swarm:replicaz",
      ]),
    );
    expect(problems).toContain("ai-swarm:replicaz: unknown setting (check the spelling against docs/pulumi.md)");
  });

  it("reports a missing required key as required", () => {
    const engine = dev();
    delete engine.config["ai-swarm:nodes"];
    expect(problemsOf(engine)).toContain("ai-swarm:nodes: is required");
  });

  it("needs the SSH key as a secret, or a key file at sshPrivateKeyPath", () => {
    const engine = dev();
    delete engine.config["ai-swarm:sshPrivateKey"];
    expect(parseStackConfig(engine.config, []).ok).toBe(true);
    delete engine.config["ai-swarm:sshPrivateKeyPath"];
    expect(problemsOf({ config: engine.config, secretKeys: [] })).toEqual([
      "ai-swarm:sshPrivateKey: is required (pulumi config set --secret sshPrivateKey < key), unless sshPrivateKeyPath names the key file",
    ]);
  });

  it("reports structured config that is not JSON", () => {
    const engine = dev();
    engine.config["ai-swarm:replicas"] = "{python: [";
    expect(problemsOf(engine)).toContain("ai-swarm:replicas: must be a map");
  });

  it("rejects provider settings that cannot take effect", () => {
    expect(problemsOf(dev({ llm: { provider: "openai" } }))).toContain(
      "ai-swarm:llm.baseUrl: is required when llm.provider is openai (e.g. http://ollama:11434/v1)",
    );
    expect(problemsOf(dev({ llm: { provider: "offline", model: "x" } }))).toContain(
      "ai-swarm:llm.model: is set but llm.provider is offline",
    );
    expect(problemsOf(dev({ llm: { provider: "gemini", baseUrl: "ftp://example" } }))[0]).toMatch(/^ai-swarm:llm\.baseUrl: /);
  });

  describe("timings that must fit together (the rules of proto/worker-settings.json)", () => {
    const byDefault = (variable: string) => integerSetting(variable).default;

    it("refuses a worker heartbeat not comfortably below the master's heartbeat timeout, by the key that was set", () => {
      const interval = Math.ceil(byDefault("HEARTBEAT_TIMEOUT_MS") / 3) + 1; // timeout < 3 × interval
      expect(problemsOf(dev({ heartbeatIntervalMs: interval }))).toEqual([
        `ai-swarm:heartbeatIntervalMs: heartbeatTimeoutMs (${byDefault("HEARTBEAT_TIMEOUT_MS")}, the default) must be at least ` +
          `3 × heartbeatIntervalMs (${interval}) = ${3 * interval}: a worker is taken for offline only after three missed heartbeats`,
      ]);
      const timeout = 3 * byDefault("HEARTBEAT_INTERVAL_MS") - 1;
      expect(problemsOf(dev({ heartbeatTimeoutMs: timeout }))).toEqual([
        `ai-swarm:heartbeatTimeoutMs: heartbeatTimeoutMs (${timeout}) must be at least ` +
          `3 × heartbeatIntervalMs (${byDefault("HEARTBEAT_INTERVAL_MS")}, the default) = ${timeout + 1}: a worker is taken for offline only after three missed heartbeats`,
      ]);
    });

    it("refuses a lease longer than the task timeout, and simulated work the task timeout cannot cover", () => {
      const lease = byDefault("TASK_TIMEOUT_MS") + 1;
      expect(problemsOf(dev({ leaseMs: lease }))).toEqual([
        `ai-swarm:leaseMs: taskTimeoutMs (${byDefault("TASK_TIMEOUT_MS")}, the default) must be at least leaseMs (${lease}) = ${lease}: ` +
          "the first lease ends within the task timeout",
      ]);
      const work = byDefault("TASK_TIMEOUT_MS");
      expect(problemsOf(dev({ simulatedWorkMs: work }))).toEqual([
        `ai-swarm:simulatedWorkMs: taskTimeoutMs (${byDefault("TASK_TIMEOUT_MS")}, the default) must be at least simulatedWorkMs (${work}) + ` +
          `LLM_TIMEOUT_MS (${byDefault("LLM_TIMEOUT_MS")}, the workers' default) = ${work + byDefault("LLM_TIMEOUT_MS")}: ` +
          "a task whose LLM call takes its whole timeout still finishes before the master gives up on it",
      ]);
    });

    it("accepts the same values once the other side is set to fit, and refuses values out of the table's bounds", () => {
      const fitting = dev({ heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 15_000, leaseMs: 15_000, simulatedWorkMs: 600_000, taskTimeoutMs: 630_000 });
      const result = parseStackConfig(fitting.config, fitting.secretKeys);
      expect(result.ok && result.config).toMatchObject({ heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 15_000, leaseMs: 15_000, taskTimeoutMs: 630_000 });
      const problems = problemsOf(dev({ heartbeatIntervalMs: 0, leaseMs: "soon" }));
      expect(problems.some((p) => p.startsWith("ai-swarm:heartbeatIntervalMs: "))).toBe(true);
      expect(problems.some((p) => p.startsWith("ai-swarm:leaseMs: "))).toBe(true);
    });
  });

  it("rejects two published services on one port", () => {
    expect(problemsOf(dev({ ports: { web: 5000 } }))).toContain("ai-swarm:registry.port: port 5000 is already used by ports.web");
  });

  it("lists every problem in one error", () => {
    const problems = problemsOf(dev({ endpointMode: "dnsrr", publishMode: "ingress", maxReplicasPerNode: 0, stackName: "AI" }));
    expect(problems.length).toBeGreaterThanOrEqual(2);
    expect(problems.some((p) => p.startsWith("ai-swarm:maxReplicasPerNode"))).toBe(true);
    expect(problems.some((p) => p.startsWith("ai-swarm:stackName"))).toBe(true);
  });
});

describe("secrets", () => {
  it("refuses secrets that were set in plain text, without echoing them", () => {
    const engine = engineConfigFromStackFile("Pulumi.cluster.example.yaml", CLUSTER_SECRETS);
    const problems = problemsOf({ config: engine.config, secretKeys: [] });
    expect(problems).toEqual([
      expect.stringMatching(/^ai-swarm:sshPrivateKey: holds a secret but was not set as one/),
      expect.stringMatching(/^ai-swarm:registry: holds a secret but was not set as one/),
      expect.stringMatching(/^ai-swarm:llm: holds a secret but was not set as one/),
    ]);
    const text = problems.join("\n");
    for (const secret of Object.values(CLUSTER_SECRETS)) expect(text).not.toContain(secret.trim());
  });

  it("never echoes a secret value in a validation message", () => {
    const engine = engineConfigFromStackFile("Pulumi.cluster.example.yaml", {
      ...CLUSTER_SECRETS,
      sshPrivateKey: "not-a-key-but-secret-1234",
      "registry.password": "short-pw",
    });
    const problems = problemsOf(engine);
    expect(problems).toContain("ai-swarm:sshPrivateKey: must be a PEM or OpenSSH private key");
    expect(problems).toContain("ai-swarm:registry.password: must be at least 12 characters");
    expect(problems.join("\n")).not.toMatch(/not-a-key-but-secret-1234|short-pw/);
  });

  it("wraps secret values as Pulumi secrets", async () => {
    const engine = engineConfigFromStackFile("Pulumi.cluster.example.yaml", CLUSTER_SECRETS);
    const result = parseStackConfig(engine.config, engine.secretKeys);
    if (!result.ok) throw new Error(result.problems.join("; "));
    const config = withSecrets(result.config);
    for (const output of [config.sshPrivateKey, config.registry.password, config.llm.apiKey]) {
      expect(output).toBeDefined();
      expect(await (output as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
    }
    expect(config.manager.name).toBe("manager");
  });

  it("reads the runtime config the Pulumi CLI passes and throws one StackConfigError", async () => {
    await pulumi.runtime.setMocks({ newResource: (args) => ({ id: args.name, state: args.inputs }), call: (args) => args.inputs }, "ai-swarm", "dev");
    const good = dev();
    pulumi.runtime.setAllConfig(good.config, good.secretKeys);
    expect(loadStackConfig().manager.host).toBe("172.28.0.11");

    const bad = dev({ replicas: { python: 9, go: 9, java: 1 } });
    pulumi.runtime.setAllConfig(bad.config, bad.secretKeys);
    let thrown: unknown;
    try {
      loadStackConfig();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StackConfigError);
    expect((thrown as StackConfigError).problems).toHaveLength(2);
    expect((thrown as Error).message).toMatch(/^invalid stack config \(2 problems\):\n  - ai-swarm:replicas\.python/);

    // The key set in plain text (not in the secret key list) is refused at load time too.
    pulumi.runtime.setAllConfig(good.config, []);
    expect(() => loadStackConfig()).toThrow(/ai-swarm:sshPrivateKey: holds a secret but was not set as one/);
  });

  it("is a pulumi.RunError, so the engine prints the problems and no stack trace", () => {
    const error = new StackConfigError(["ai-swarm:nodes: is required"]);
    expect(pulumi.RunError.isInstance(error)).toBe(true);
    expect(error.message).toBe("invalid stack config (1 problem):\n  - ai-swarm:nodes: is required");
  });

  it("without sshPrivateKey, reads the key from sshPrivateKeyPath (kept secret), or names that key when it cannot", async () => {
    await pulumi.runtime.setMocks({ newResource: (args) => ({ id: args.name, state: args.inputs }), call: (args) => args.inputs }, "ai-swarm", "dev");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "config-key-"));
    try {
      const keyFile = path.join(dir, "id_ed25519");
      fs.writeFileSync(keyFile, TEST_SSH_KEY, { mode: 0o600 });
      const engine = engineConfigFromStackFile("Pulumi.dev.yaml", {}, { sshPrivateKeyPath: keyFile });
      pulumi.runtime.setAllConfig(engine.config, engine.secretKeys);
      const config = loadStackConfig();
      expect(await (config.sshPrivateKey as unknown as { isSecret: Promise<boolean> }).isSecret).toBe(true);
      expect(await new Promise((resolve) => config.sshPrivateKey.apply(resolve))).toBe(TEST_SSH_KEY);

      const missing = engineConfigFromStackFile("Pulumi.dev.yaml", {}, { sshPrivateKeyPath: path.join(dir, "nope") });
      pulumi.runtime.setAllConfig(missing.config, missing.secretKeys);
      expect(() => loadStackConfig()).toThrow(/ai-swarm:sshPrivateKeyPath: cannot read .*nope \(ENOENT\)/);

      fs.writeFileSync(keyFile, "not a key");
      pulumi.runtime.setAllConfig(engine.config, engine.secretKeys);
      expect(() => loadStackConfig()).toThrow(/ai-swarm:sshPrivateKeyPath: .* is not a PEM or OpenSSH private key/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the quorum guard (previous managers from the stack's last outputs)", () => {
  it("refuses a change that keeps fewer than a majority of the deployed managers, naming the kept and needed counts", () => {
    const problem = quorumProblem(["vm1", "vm2", "vm3"], ["vm1"]);
    expect(problem).toContain("ai-swarm:nodes: this change keeps 1 of the 3 deployed managers (vm1, vm2, vm3; kept: vm1)");
    expect(problem).toContain("needs 2 of them");
    expect(quorumProblem(["vm1", "vm2", "vm3", "vm4", "vm5"], ["vm1", "vm2", "vm6"])).toContain("keeps 2 of the 5 deployed managers");
  });

  it("accepts a change that keeps a majority, and the first deploy", () => {
    expect(quorumProblem(["vm1", "vm2", "vm3"], ["vm1", "vm3", "vm4"])).toBeUndefined();
    expect(quorumProblem(["vm1"], ["vm1", "vm2", "vm3"])).toBeUndefined();
    expect(quorumProblem(undefined, ["vm1"])).toBeUndefined();
    expect(quorumProblem([], ["vm1", "vm2", "vm3"])).toBeUndefined();
  });
});
