import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config";
import { makeCertificate, opensslMissing, type TestCertificate } from "./helpers/tls";

const base = { GRPC_TOKEN: "t0ken-value" };
const noFiles = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

/** The ConfigError message for base + env ("" when the config is valid). */
const errorOf = (env: NodeJS.ProcessEnv, readFile: (path: string) => string = noFiles): string => {
  try {
    loadConfig({ ...base, ...env }, readFile);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  return "";
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
      web: { tls: undefined, authToken: undefined, metricsOpen: false, sessionTtlMs: 12 * 3_600_000 },
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
    ["WEB_METRICS_OPEN", "maybe"],
    ["WEB_SESSION_TTL_MS", "0"],
    ["WEB_SESSION_TTL_MS", "forever"],
    ["WEB_SESSION_TTL_MS", "999999999999"],
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

describe("timings shared with the workers (proto/worker-settings.json)", () => {
  interface Timing { name: string; default: number }
  interface Rule { setting: string; at_least: [number, string][] }
  const table = JSON.parse(readFileSync(join(__dirname, "../../../proto/worker-settings.json"), "utf8")) as {
    master_timings: Timing[];
    rules: Rule[];
  };
  const fieldOf: Record<string, "heartbeatTimeoutMs" | "leaseMs" | "taskTimeoutMs"> = {
    HEARTBEAT_TIMEOUT_MS: "heartbeatTimeoutMs",
    LEASE_MS: "leaseMs",
    TASK_TIMEOUT_MS: "taskTimeoutMs",
  };
  const field = (name: string): "heartbeatTimeoutMs" | "leaseMs" | "taskTimeoutMs" => {
    const found = fieldOf[name];
    if (found === undefined) throw new Error(`${name} is not one of the master's timings`);
    return found;
  };
  const defaults = Object.fromEntries(table.master_timings.map((t) => [t.name, t.default]));
  const ownRules = table.rules.filter((r) => [r.setting, ...r.at_least.map(([, other]) => other)].every((n) => n in defaults));

  it("the master's defaults are the table's", () => {
    const cfg = loadConfig(base, noFiles);
    expect(table.master_timings.map((t) => [t.name, cfg[field(t.name)]])).toEqual(table.master_timings.map((t) => [t.name, t.default]));
    expect(Object.keys(fieldOf).sort()).toEqual(Object.keys(defaults).sort());
  });

  it("refuses, by name, values that break a rule among its own settings, and takes the least value that keeps it", () => {
    expect(ownRules.length).toBeGreaterThan(0);
    for (const rule of ownRules) {
      const least = rule.at_least.reduce((sum, [factor, other]) => sum + factor * (defaults[other] ?? 0), 0);
      expect(() => loadConfig({ ...base, [rule.setting]: String(least - 1) }, noFiles)).toThrowError(
        new RegExp(`${rule.setting}: ${least - 1} must be at least`),
      );
      expect(loadConfig({ ...base, [rule.setting]: String(least) }, noFiles)[field(rule.setting)]).toBe(least);
    }
  });
});

describe("the web front door", () => {

  it("reads the token, the _FILE form winning; metrics and session lifetime", () => {
    const cfg = loadConfig(
      { ...base, WEB_AUTH_TOKEN: "from-env-0123456789", WEB_AUTH_TOKEN_FILE: "/run/secrets/web", WEB_METRICS_OPEN: "true", WEB_SESSION_TTL_MS: "60000" },
      (path) => (path === "/run/secrets/web" ? "from-file-0123456789\n" : ""),
    );
    expect(cfg.web).toEqual({ tls: undefined, authToken: "from-file-0123456789", metricsOpen: true, sessionTtlMs: 60_000 });
    expect(loadConfig({ ...base, WEB_AUTH_TOKEN: "exactly-16-chars" }, noFiles).web.authToken).toBe("exactly-16-chars");
  });

  it("refuses a token under 16 characters, naming the variable and never the value", () => {
    const plain = errorOf({ WEB_AUTH_TOKEN: "short-secret-15" });
    expect(plain).toMatch(/WEB_AUTH_TOKEN: the token must be at least 16 characters/);
    expect(plain).not.toContain("short-secret-15");
    const fromFile = errorOf({ WEB_AUTH_TOKEN_FILE: "/run/secrets/web" }, () => "tiny-secret\n");
    expect(fromFile).toMatch(/WEB_AUTH_TOKEN_FILE: the token must be at least 16 characters/);
    expect(fromFile).not.toContain("tiny-secret");
    expect(errorOf({ WEB_AUTH_TOKEN_FILE: "/nope" }, () => { throw new Error("ENOENT"); })).toMatch(/WEB_AUTH_TOKEN_FILE: cannot read file \/nope/);
  });

  it("needs the certificate and the key together", () => {
    expect(errorOf({ WEB_TLS_CERT_FILE: "/c.pem" })).toMatch(/WEB_TLS_KEY_FILE: required when WEB_TLS_CERT_FILE is set/);
    expect(errorOf({ WEB_TLS_KEY_FILE: "/k.pem" })).toMatch(/WEB_TLS_CERT_FILE: required when WEB_TLS_KEY_FILE is set/);
  });

  it("names an unreadable certificate or key", () => {
    const message = errorOf({ WEB_TLS_CERT_FILE: "/c.pem", WEB_TLS_KEY_FILE: "/k.pem" }, () => { throw new Error("EACCES"); });
    expect(message).toMatch(/WEB_TLS_CERT_FILE: cannot read file \/c.pem/);
    expect(message).toMatch(/WEB_TLS_KEY_FILE: cannot read file \/k.pem/);
  });

  describe.skipIf(opensslMissing() !== undefined)("with real PEM files (openssl)", () => {
    let dir: string;
    let one: TestCertificate;
    let two: TestCertificate;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "master-config-tls-"));
      one = makeCertificate(dir, "one");
      two = makeCertificate(dir, "two");
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const read = (path: string): string => readFileSync(path, "utf8");

    it("loads a matching pair", () => {
      const cfg = loadConfig({ ...base, WEB_TLS_CERT_FILE: one.certFile, WEB_TLS_KEY_FILE: one.keyFile }, read);
      expect(cfg.web.tls).toEqual({ cert: one.cert, key: one.key });
    });

    it("refuses a key that is not the certificate's, or files that are not PEM, without printing them", () => {
      const mismatch = errorOf({ WEB_TLS_CERT_FILE: one.certFile, WEB_TLS_KEY_FILE: two.keyFile }, read);
      expect(mismatch).toMatch(/WEB_TLS_KEY_FILE: .* is not the key of the certificate in WEB_TLS_CERT_FILE/);
      expect(errorOf({ WEB_TLS_CERT_FILE: one.keyFile, WEB_TLS_KEY_FILE: one.keyFile }, read)).toMatch(/WEB_TLS_CERT_FILE: .* is not a PEM certificate/);
      const notKey = errorOf({ WEB_TLS_CERT_FILE: one.certFile, WEB_TLS_KEY_FILE: one.certFile }, read);
      expect(notKey).toMatch(/WEB_TLS_KEY_FILE: .* is not a PEM private key/);
      for (const message of [mismatch, notKey]) expect(message).not.toContain("PRIVATE KEY");
    });
  });
});

describe("the store (STORE, ETCD_*, ANSWER_RETENTION_HOURS, ANSWER_RETENTION_MAX)", () => {

  it("is SQLite by default, keeping answers a week", () => {
    const cfg = loadConfig(base, noFiles);
    expect(cfg).toMatchObject({ store: "sqlite", etcd: undefined, answerRetentionMs: 168 * 3_600_000 });
    expect(loadConfig({ ...base, ANSWER_RETENTION_HOURS: "1.5" }, noFiles).answerRetentionMs).toBe(5_400_000);
  });

  it("refuses an unknown engine and a retention out of range, naming the variable", () => {
    expect(errorOf({ STORE: "postgres" })).toMatch(/STORE: /);
    expect(errorOf({ ANSWER_RETENTION_HOURS: "0" })).toMatch(/ANSWER_RETENTION_HOURS: /);
    expect(errorOf({ ANSWER_RETENTION_HOURS: "a week" })).toMatch(/ANSWER_RETENTION_HOURS: /);
  });

  it("ANSWER_RETENTION_MAX: 50 000 finished queries by default, whole numbers from 100 to a million, else named", () => {
    expect(loadConfig(base, noFiles).answerRetentionMax).toBe(50_000);
    expect(loadConfig({ ...base, ANSWER_RETENTION_MAX: "100" }, noFiles).answerRetentionMax).toBe(100);
    expect(loadConfig({ ...base, ANSWER_RETENTION_MAX: "1000000" }, noFiles).answerRetentionMax).toBe(1_000_000);
    for (const bad of ["99", "0", "-5", "1000001", "2.5", "many"]) expect(errorOf({ ANSWER_RETENTION_MAX: bad })).toMatch(/ANSWER_RETENTION_MAX: /);
    // every problem at once, each by its name
    const both = errorOf({ ANSWER_RETENTION_MAX: "many", ANSWER_RETENTION_HOURS: "0" });
    expect(both).toMatch(/ANSWER_RETENTION_MAX: /);
    expect(both).toMatch(/ANSWER_RETENTION_HOURS: /);
  });

  it("LEADER_TTL_S: 5 s by default, whole seconds from 2 to 60, else named", () => {
    expect(loadConfig(base, noFiles).leaderTtlS).toBe(5);
    expect(loadConfig({ ...base, LEADER_TTL_S: "3" }, noFiles).leaderTtlS).toBe(3);
    for (const bad of ["1", "61", "2.5", "soon"]) expect(errorOf({ LEADER_TTL_S: bad })).toMatch(/LEADER_TTL_S: /);
  });

  it("STORE=etcd needs the members, the CA and a client certificate: every missing one is named", () => {
    const message = errorOf({ STORE: "etcd" });
    expect(message).toMatch(/ETCD_ENDPOINTS: required with STORE=etcd/);
    expect(message).toMatch(/ETCD_CA_FILE: required with STORE=etcd/);
    expect(message).toMatch(/ETCD_CERT_FILE, ETCD_KEY_FILE: required with STORE=etcd/);
    expect(errorOf({ STORE: "etcd", ETCD_CERT_FILE: "/c.pem" })).toMatch(/ETCD_KEY_FILE: required when ETCD_CERT_FILE is set/);
  });

  it("refuses endpoints that are not https://host:port and a bad prefix", () => {
    const message = errorOf({ STORE: "etcd", ETCD_ENDPOINTS: "http://10.0.0.1:2379, https://m1:2379/v3, not a url", ETCD_PREFIX: "ai-swarm/" });
    expect(message).toMatch(/ETCD_ENDPOINTS: "http:\/\/10.0.0.1:2379" must be https:\/\//);
    expect(message).toMatch(/ETCD_ENDPOINTS: "https:\/\/m1:2379\/v3" must be https:\/\/host:port, nothing else/);
    expect(message).toMatch(/ETCD_ENDPOINTS: "not a url" is not a URL/);
    expect(message).toMatch(/ETCD_PREFIX: must be like \/ai-swarm/);
  });

  describe.skipIf(opensslMissing() !== undefined)("with real PEM files (openssl)", () => {
    let dir: string;
    let ca: TestCertificate;
    let client: TestCertificate;
    let other: TestCertificate;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "master-config-etcd-"));
      ca = makeCertificate(dir, "ca");
      client = makeCertificate(dir, "client");
      other = makeCertificate(dir, "other");
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const read = (path: string): string => readFileSync(path, "utf8");
    const etcdEnv = (): NodeJS.ProcessEnv => ({
      STORE: "etcd", ETCD_ENDPOINTS: "https://127.0.0.1:2379,https://[::1]:2380", ETCD_CA_FILE: ca.certFile, ETCD_CERT_FILE: client.certFile, ETCD_KEY_FILE: client.keyFile,
    });

    it("reads the files (contents, never paths on a command line) and the prefix", () => {
      const cfg = loadConfig({ ...base, ...etcdEnv(), ETCD_PREFIX: "/stacks/prod" }, read);
      expect(cfg.store).toBe("etcd");
      expect(cfg.etcd).toEqual({ endpoints: ["https://127.0.0.1:2379", "https://[::1]:2380"], ca: ca.cert, cert: client.cert, key: client.key, prefix: "/stacks/prod" });
      expect(loadConfig({ ...base, ...etcdEnv() }, read).etcd?.prefix).toBe("/ai-swarm");
    });

    it("refuses a CA that is not a certificate and a key that is not the certificate's, without printing them", () => {
      const message = errorOf({ ...etcdEnv(), ETCD_CA_FILE: client.keyFile, ETCD_KEY_FILE: other.keyFile }, read);
      expect(message).toMatch(/ETCD_CA_FILE: .* is not a PEM certificate/);
      expect(message).toMatch(/ETCD_KEY_FILE: .* is not the key of the certificate in ETCD_CERT_FILE/);
      expect(message).not.toContain("PRIVATE KEY");
    });
  });
});
