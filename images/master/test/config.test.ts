import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config";

const base = { GRPC_TOKEN: "t0ken-value" };
const noFiles = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

describe("config defaults", () => {
  it("uses the documented defaults", () => {
    const cfg = loadConfig(base, noFiles);
    expect(cfg).toMatchObject({
      httpPort: 8888,
      grpcPort: 50051,
      bindHost: "0.0.0.0",
      mqtt: { host: "mosquitto", port: 1883, tls: false, topicPrefix: "ai-system" },
      grpcToken: "t0ken-value",
      dbPath: "/data/master.db",
      maxQueryChars: 4000,
      maxQueuedPerSession: 10,
      leaseMs: 30000,
      taskTimeoutMs: 300000,
      heartbeatTimeoutMs: 7000,
      rateLimitPerMinute: 120,
      logLevel: "info",
    });
  });

  it("reads values and files; *_FILE wins over the plain variable and is trimmed", () => {
    const files: Record<string, string> = { "/run/secrets/token": "from-file\n", "/run/secrets/mqtt": "pw\n" };
    const cfg = loadConfig(
      {
        GRPC_TOKEN: "from-env",
        GRPC_TOKEN_FILE: "/run/secrets/token",
        MQTT_PASSWORD: "env-pw",
        MQTT_PASSWORD_FILE: "/run/secrets/mqtt",
        MQTT_USERNAME: "master",
        MQTT_TLS: "true",
        HTTP_PORT: "9000",
        RATE_LIMIT_PER_MINUTE: "0",
        LOG_LEVEL: "debug",
      },
      (path) => files[path] ?? "",
    );
    expect(cfg.grpcToken).toBe("from-file");
    expect(cfg.mqtt).toMatchObject({ username: "master", password: "pw", tls: true });
    expect(cfg.httpPort).toBe(9000);
    expect(cfg.rateLimitPerMinute).toBe(0);
    expect(cfg.logLevel).toBe("debug");
  });
});

describe("a bad value is refused, naming the variable", () => {
  it.each([
    ["HTTP_PORT", "eighty"],
    ["HTTP_PORT", "70000"],
    ["GRPC_PORT", "-1"],
    ["MQTT_PORT", "1.5"],
    ["MQTT_TLS", "yes please"],
    ["MQTT_TOPIC_PREFIX", "a/#"],
    ["MQTT_TOPIC_PREFIX", "/lead"],
    ["MAX_QUERY_CHARS", "0"],
    ["MAX_QUERY_CHARS", "20000"],
    ["MAX_QUEUED_PER_SESSION", "ten"],
    ["LEASE_MS", "0"],
    ["TASK_TIMEOUT_MS", "soon"],
    ["HEARTBEAT_TIMEOUT_MS", "-5"],
    ["RATE_LIMIT_PER_MINUTE", "-1"],
    ["LOG_LEVEL", "verbose"],
  ])("%s=%s", (name, value) => {
    expect(() => loadConfig({ ...base, [name]: value }, noFiles)).toThrowError(new RegExp(`^invalid configuration: .*${name}`));
  });

  it("requires a gRPC token", () => {
    expect(() => loadConfig({}, noFiles)).toThrowError(/GRPC_TOKEN: required/);
  });

  it("names an unreadable or empty secret file without printing the secret", () => {
    const err = (() => {
      try {
        loadConfig({ GRPC_TOKEN: "plain-secret", GRPC_TOKEN_FILE: "/nope" }, () => {
          throw new Error("ENOENT");
        });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.message).toMatch(/GRPC_TOKEN_FILE: cannot read file \/nope/);
    expect(err?.message).not.toContain("plain-secret");
    expect(() => loadConfig({ GRPC_TOKEN_FILE: "/empty" }, () => "\n")).toThrowError(/GRPC_TOKEN_FILE: file \/empty is empty/);
    expect(() => loadConfig({ ...base, MQTT_PASSWORD_FILE: "/x" }, () => { throw new Error("EACCES"); })).toThrowError(
      /MQTT_PASSWORD_FILE/,
    );
  });

  it("names an unreadable MQTT_CA_FILE", () => {
    expect(() => loadConfig({ ...base, MQTT_CA_FILE: "/no/ca.pem" }, () => { throw new Error("ENOENT"); })).toThrowError(
      /MQTT_CA_FILE: cannot read file \/no\/ca.pem/,
    );
    expect(loadConfig({ ...base, MQTT_CA_FILE: "/ca.pem", MQTT_TLS: "true" }, () => "PEM").mqtt.caFile).toBe("/ca.pem");
  });

  it("lists every bad variable at once", () => {
    expect(() => loadConfig({ HTTP_PORT: "x", LEASE_MS: "y" }, noFiles)).toThrowError(/HTTP_PORT.*LEASE_MS.*GRPC_TOKEN/);
  });
});
