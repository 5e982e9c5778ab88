import { describe, expect, it } from "vitest";
import { parseDurationNs } from "../../lab/harness/duration";
import type { JsonObject } from "../../lab/harness/json";
import { registryAuthHeader, translateService } from "../../lab/harness/service-spec";

/** A worker service shaped like the ones the program declares. */
function workerInputs(): JsonObject {
  return {
    name: "ai-system_worker-python",
    labels: [{ label: "com.docker.stack.namespace", value: "ai-system" }],
    taskSpec: {
      containerSpec: {
        image: "172.28.0.11:5000/ai-swarm/worker-python:0123456789ab",
        args: ["--verbose"],
        commands: ["python", "-m", "aiswarm_worker"],
        env: { MQTT_HOST: "ai-system_mosquitto", NODE_HOSTNAME: "{{.Node.Hostname}}", A_FIRST: "1" },
        hostname: "{{.Node.Hostname}}",
        user: "10001",
        dir: "/app",
        labels: [{ label: "role", value: "worker" }],
        mounts: [
          { type: "volume", target: "/data", source: "master-data", readOnly: false, volumeOptions: { noCopy: true, driverName: "local", driverOptions: { o: "bind" }, labels: [{ label: "k", value: "v" }] } },
          { type: "tmpfs", target: "/tmp", tmpfsOptions: { sizeBytes: 1048576, mode: 1777 } },
          { type: "bind", target: "/etc/x", source: "/etc/x", bindOptions: { propagation: "rprivate" } },
        ],
        secrets: [{ secretId: "sec123", secretName: "grpc-token", fileName: "grpc_token", fileUid: "10001", fileGid: "10001", fileMode: 0o400 }],
        configs: [{ configId: "cfg456", configName: "mosquitto-conf", fileName: "/mosquitto/config/mosquitto.conf" }],
        healthcheck: { tests: ["CMD", "python", "-m", "aiswarm_worker.health"], interval: "10s", timeout: "3s", retries: 3, startPeriod: "1m30s" },
        stopGracePeriod: "30s",
        stopSignal: "SIGTERM",
        init: true,
        readOnly: false,
      },
      resources: { limits: { nanoCpus: 500_000_000, memoryBytes: 268_435_456 }, reservation: { nanoCpus: 100_000_000, memoryBytes: 67_108_864 } },
      restartPolicy: { condition: "on-failure", delay: "5s", maxAttempts: 0, window: "2m" },
      placement: { constraints: ["node.role==worker"], maxReplicas: 1, prefs: ["spread=node.id"], platforms: [{ architecture: "amd64", os: "linux" }] },
      networksAdvanceds: [{ id: "net789", aliases: ["worker"], driverOpts: ["com.example=1"] }],
      logDriver: { name: "json-file", options: { "max-size": "10m" } },
      forceUpdate: 2,
    },
    mode: { replicated: { replicas: 3 } },
    updateConfig: { parallelism: 1, delay: "10s", failureAction: "rollback", monitor: "30s", maxFailureRatio: "0.2", order: "start-first" },
    rollbackConfig: { parallelism: 2, delay: "1s", failureAction: "pause", monitor: "10s" },
    endpointSpec: { mode: "dnsrr", ports: [{ targetPort: 8888, publishedPort: 8888, protocol: "tcp", publishMode: "host" }] },
    auth: { serverAddress: "172.28.0.11:5000", username: "aiswarm", password: "s3cret-password" },
    convergeConfig: { delay: "2s", timeout: "5m" },
  };
}

describe("translateService: field by field into the Engine API ServiceSpec", () => {
  const { spec, auth, converge } = translateService(workerInputs());
  const task = spec["TaskTemplate"] as Record<string, unknown>;
  const container = task["ContainerSpec"] as Record<string, unknown>;

  it("names, labels and mode", () => {
    expect(spec["Name"]).toBe("ai-system_worker-python");
    expect(spec["Labels"]).toEqual({ "com.docker.stack.namespace": "ai-system" });
    expect(spec["Mode"]).toEqual({ Replicated: { Replicas: 3 } });
  });

  it("container basics: image, command vs args, env as sorted K=V list, labels as a map", () => {
    expect(container["Image"]).toBe("172.28.0.11:5000/ai-swarm/worker-python:0123456789ab");
    expect(container["Command"]).toEqual(["python", "-m", "aiswarm_worker"]);
    expect(container["Args"]).toEqual(["--verbose"]);
    expect(container["Env"]).toEqual(["A_FIRST=1", "MQTT_HOST=ai-system_mosquitto", "NODE_HOSTNAME={{.Node.Hostname}}"]);
    expect(container["Hostname"]).toBe("{{.Node.Hostname}}");
    expect(container["User"]).toBe("10001");
    expect(container["Dir"]).toBe("/app");
    expect(container["Labels"]).toEqual({ role: "worker" });
    expect(container["Init"]).toBe(true);
    expect(container["StopSignal"]).toBe("SIGTERM");
  });

  it("mounts of all three kinds", () => {
    expect(container["Mounts"]).toEqual([
      { Type: "volume", Target: "/data", Source: "master-data", ReadOnly: false, VolumeOptions: { NoCopy: true, Labels: { k: "v" }, DriverConfig: { Name: "local", Options: { o: "bind" } } } },
      { Type: "tmpfs", Target: "/tmp", TmpfsOptions: { SizeBytes: 1048576, Mode: 1777 } },
      { Type: "bind", Target: "/etc/x", Source: "/etc/x", BindOptions: { Propagation: "rprivate" } },
    ]);
  });

  it("secrets and configs reference ids with a File target; defaults uid/gid 0 and mode 0444", () => {
    expect(container["Secrets"]).toEqual([{ SecretID: "sec123", SecretName: "grpc-token", File: { Name: "grpc_token", UID: "10001", GID: "10001", Mode: 0o400 } }]);
    expect(container["Configs"]).toEqual([{ ConfigID: "cfg456", ConfigName: "mosquitto-conf", File: { Name: "/mosquitto/config/mosquitto.conf", UID: "0", GID: "0", Mode: 0o444 } }]);
  });

  it("healthcheck and stop grace period in nanoseconds", () => {
    expect(container["HealthCheck"]).toEqual({
      Test: ["CMD", "python", "-m", "aiswarm_worker.health"],
      Interval: 10e9,
      Timeout: 3e9,
      Retries: 3,
      StartPeriod: 90e9,
    });
    expect(container["StopGracePeriod"]).toBe(30e9);
  });

  it("resources, restart policy, placement, networks, log driver, force update", () => {
    expect(task["Resources"]).toEqual({ Limits: { NanoCPUs: 500_000_000, MemoryBytes: 268_435_456 }, Reservations: { NanoCPUs: 100_000_000, MemoryBytes: 67_108_864 } });
    expect(task["RestartPolicy"]).toEqual({ Condition: "on-failure", Delay: 5e9, MaxAttempts: 0, Window: 120e9 });
    expect(task["Placement"]).toEqual({
      Constraints: ["node.role==worker"],
      MaxReplicas: 1,
      Preferences: [{ Spread: { SpreadDescriptor: "node.id" } }],
      Platforms: [{ Architecture: "amd64", OS: "linux" }],
    });
    expect(task["Networks"]).toEqual([{ Target: "net789", Aliases: ["worker"], DriverOpts: { "com.example": "1" } }]);
    expect(task["LogDriver"]).toEqual({ Name: "json-file", Options: { "max-size": "10m" } });
    expect(task["ForceUpdate"]).toBe(2);
  });

  it("update config as given, rollback config completed with the provider's defaults", () => {
    expect(spec["UpdateConfig"]).toEqual({ Parallelism: 1, Delay: 10e9, FailureAction: "rollback", Monitor: 30e9, MaxFailureRatio: 0.2, Order: "start-first" });
    expect(spec["RollbackConfig"]).toEqual({ Parallelism: 2, Delay: 1e9, FailureAction: "pause", Monitor: 10e9, MaxFailureRatio: 0, Order: "stop-first" });
  });

  it("endpoint spec: dnsrr with a host-published port", () => {
    expect(spec["EndpointSpec"]).toEqual({ Mode: "dnsrr", Ports: [{ Protocol: "tcp", TargetPort: 8888, PublishedPort: 8888, PublishMode: "host" }] });
  });

  it("auth and convergeConfig stay out of the spec", () => {
    expect(JSON.stringify(spec)).not.toContain("s3cret-password");
    expect(auth).toEqual({ serverAddress: "172.28.0.11:5000", username: "aiswarm", password: "s3cret-password" });
    expect(converge).toEqual({ delayMs: 2000, timeoutMs: 300_000 });
  });
});

describe("translateService: defaults and variants", () => {
  const minimal = (extra: JsonObject = {}): JsonObject => ({ name: "s", taskSpec: { containerSpec: { image: "r:5000/a/b:1" } }, ...extra });

  it("no mode means one replica; global mode maps to Global {}", () => {
    expect(translateService(minimal()).spec["Mode"]).toEqual({ Replicated: { Replicas: 1 } });
    expect(translateService(minimal({ mode: { global: true } })).spec["Mode"]).toEqual({ Global: {} });
  });

  it("vip with ingress ports, default protocol tcp and publish mode ingress", () => {
    const { spec } = translateService(minimal({ endpointSpec: { mode: "vip", ports: [{ targetPort: 8888, publishedPort: 31663 }] } }));
    expect(spec["EndpointSpec"]).toEqual({ Mode: "vip", Ports: [{ Protocol: "tcp", TargetPort: 8888, PublishedPort: 31663, PublishMode: "ingress" }] });
  });

  it("the deprecated network name is used as the target", () => {
    const { spec } = translateService(minimal({ taskSpec: { containerSpec: { image: "i:1" }, networksAdvanceds: [{ name: "ai-system_net" }] } }));
    expect((spec["TaskTemplate"] as Record<string, unknown>)["Networks"]).toEqual([{ Target: "ai-system_net" }]);
  });

  it("no optional block produces an empty key, except the health config the provider always sends", () => {
    const { spec, auth, converge } = translateService(minimal());
    expect(Object.keys(spec).sort()).toEqual(["Mode", "Name", "TaskTemplate"]);
    // healthcheck is Optional+Computed: the provider's expand sends an empty one, which inherits the image's.
    expect(spec["TaskTemplate"]).toEqual({ ContainerSpec: { Image: "r:5000/a/b:1", HealthCheck: {} } });
    expect(auth).toBeUndefined();
    expect(converge).toBeUndefined();
  });

  it("convergeConfig without values takes the provider defaults (7s, 3m)", () => {
    expect(translateService(minimal({ convergeConfig: {} })).converge).toEqual({ delayMs: 7000, timeoutMs: 180_000 });
  });
});

describe("translateService: unknown or bad input fails loudly, naming the field", () => {
  const base = (): JsonObject => workerInputs();

  it("an unknown top-level field", () => {
    expect(() => translateService({ ...base(), mystery: 1 })).toThrow(/docker\.Service\.mystery/);
  });

  it("an unknown nested field (e.g. a container field the harness does not translate)", () => {
    const inputs = base();
    ((inputs["taskSpec"] as JsonObject)["containerSpec"] as JsonObject)["tty"] = true;
    expect(() => translateService(inputs)).toThrow(/docker\.Service\.taskSpec\.containerSpec\.tty/);
  });

  it("an unknown field inside a list item names its index", () => {
    const inputs = base();
    const container = (inputs["taskSpec"] as JsonObject)["containerSpec"] as JsonObject;
    container["secrets"] = [{ secretId: "x", fileName: "f", extra: "y" }];
    expect(() => translateService(inputs)).toThrow(/containerSpec\.secrets\[0\]\.extra/);
  });

  it("a bad duration names the field and the value", () => {
    const inputs = base();
    (inputs["updateConfig"] as JsonObject)["delay"] = "10 seconds";
    expect(() => translateService(inputs)).toThrow(/updateConfig\.delay: "10 seconds" is not a duration/);
  });

  it("a bad enum value", () => {
    const inputs = base();
    (inputs["updateConfig"] as JsonObject)["failureAction"] = "explode";
    expect(() => translateService(inputs)).toThrow(/updateConfig\.failureAction: "explode" is not one of pause, continue, rollback/);
  });

  it("rollback cannot itself roll back", () => {
    const inputs = base();
    (inputs["rollbackConfig"] as JsonObject)["failureAction"] = "rollback";
    expect(() => translateService(inputs)).toThrow(/rollbackConfig\.failureAction/);
  });

  it("dnsrr with an ingress-published port is refused as Docker would", () => {
    const inputs = base();
    inputs["endpointSpec"] = { mode: "dnsrr", ports: [{ targetPort: 1, publishedPort: 1, publishMode: "ingress" }] };
    expect(() => translateService(inputs)).toThrow(/dnsrr cannot publish ports in ingress mode/);
  });

  it("a missing image or name", () => {
    expect(() => translateService({ taskSpec: { containerSpec: { image: "i:1" } } })).toThrow(/docker\.Service\.name: is required/);
    expect(() => translateService({ name: "s", taskSpec: { containerSpec: {} } })).toThrow(/containerSpec\.image: is required/);
  });

  it("a mistyped value names the field but never echoes the value", () => {
    const inputs = base();
    (inputs["auth"] as JsonObject)["password"] = 12345678 as unknown as string;
    expect(() => translateService(inputs)).toThrow(/docker\.Service\.auth\.password: expected a string, got a number/);
    expect(() => translateService(inputs)).not.toThrow(/12345678/);
  });

  it("a placement preference that is not spread=", () => {
    const inputs = base();
    ((inputs["taskSpec"] as JsonObject)["placement"] as JsonObject)["prefs"] = ["pack=node.id"];
    expect(() => translateService(inputs)).toThrow(/placement\.prefs\[0\]: "pack=node\.id" is not a placement preference/);
  });
});

describe("parseDurationNs (Go time.ParseDuration grammar)", () => {
  it.each([
    ["0", 0],
    ["0s", 0],
    ["10s", 10e9],
    ["500ms", 500e6],
    ["1m30s", 90e9],
    ["1h", 3600e9],
    ["1.5s", 1.5e9],
    ["250us", 250e3],
    ["7ns", 7],
  ])("%s → %d ns", (text, nanos) => {
    expect(parseDurationNs(text, "f")).toBe(nanos);
  });

  it.each(["", "10", "s", "10 s", "10sec", "1d"])("rejects %j", (text) => {
    expect(() => parseDurationNs(text, "taskSpec.x")).toThrow(/taskSpec\.x: .* is not a duration/);
  });
});

describe("registryAuthHeader", () => {
  it("is base64url JSON with the engine's field names", () => {
    const header = registryAuthHeader({ serverAddress: "10.0.0.1:5000", username: "u", password: "p" });
    expect(JSON.parse(Buffer.from(header, "base64url").toString("utf8"))).toEqual({ username: "u", password: "p", serveraddress: "10.0.0.1:5000" });
  });

  it("keeps the = padding Docker 20.10's decoder needs (else it drops the credentials)", () => {
    for (const password of ["p", "pp", "ppp", "a+b/c?d>"]) {
      const header = registryAuthHeader({ serverAddress: "10.0.0.1:5000", username: "u", password });
      expect(header.length % 4, password).toBe(0);
      expect(header).toMatch(/^[A-Za-z0-9_-]+=*$/);
    }
  });
});
