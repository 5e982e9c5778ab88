// The front door (issue 10), as the program declares it: the web.* config
// keys, the master's certificate, key and token as Docker secrets, the stack
// outputs users need (token, CA), the warnings when a part is off, and every
// container hardened (read-only root, no capabilities but those named, /tmp
// in memory). The master's own behaviour is tested in images/master and
// tests/integration/front-door.test.ts.
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseStackConfig } from "../../components/config";
import {
  byName,
  engineConfigFromStackFile,
  isSecretMarker,
  MOCK_CA_CERT,
  MOCK_WEB_CERT,
  MOCK_WEB_KEY,
  runProgram,
  serviceByDockerName,
  dockerShortName,
  TEST_SSH_KEY,
  TYPES,
  type ProgramRun,
} from "./helpers";

const DEV_SECRETS = { sshPrivateKey: TEST_SSH_KEY };

function masterEnv(run: ProgramRun): Record<string, string> {
  const master = serviceByDockerName(run.resources, "master");
  return ((master.inputs["taskSpec"] as Record<string, Record<string, unknown>>)["containerSpec"]?.["env"] ?? {}) as Record<string, string>;
}

function secretData(run: ProgramRun, name: string): string {
  const secret = byName(run.resources, TYPES.secret, name);
  return Buffer.from(String(secret.inputs["data"]), "base64").toString("utf8");
}

describe("web.* config keys", () => {
  const problems = (web: Record<string, unknown>, secretKeys: string[] = ["ai-swarm:web"]) => {
    const engine = engineConfigFromStackFile("Pulumi.dev.yaml", DEV_SECRETS, { web });
    const result = parseStackConfig(engine.config, [...engine.secretKeys, ...secretKeys]);
    return result.ok ? [] : result.problems;
  };

  it("defaults to a self-signed certificate and a token", () => {
    const engine = engineConfigFromStackFile("Pulumi.dev.yaml", DEV_SECRETS);
    const result = parseStackConfig(engine.config, engine.secretKeys);
    expect(result.ok && result.config.web).toEqual({ tls: "self-signed", auth: "token", hosts: [], metricsOpen: false });
  });

  it("names each setting that cannot take effect, and secrets set in clear", () => {
    expect(problems({ tls: "provided" })).toEqual([
      "ai-swarm:web.certificate: is required when web.tls is provided (pulumi config set --secret --path web.certificate < cert.pem)",
      "ai-swarm:web.privateKey: is required when web.tls is provided (pulumi config set --secret --path web.privateKey < key.pem)",
    ]);
    expect(problems({ auth: "off", token: "a-token-of-20-chars!" })).toEqual(["ai-swarm:web.token: is set but web.auth is off"]);
    expect(problems({ tls: "off", privateKey: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n" })).toEqual([
      "ai-swarm:web.privateKey: is set but web.tls is off (set web.tls to provided to use it)",
    ]);
    expect(problems({ token: "short" })).toEqual(["ai-swarm:web.token: must be at least 16 characters"]);
    expect(problems({ tls: "maybe", hosts: ["bad host"] })).toEqual([
      'ai-swarm:web.tls: Invalid option: expected one of "self-signed"|"provided"|"off"',
      "ai-swarm:web.hosts[0]: must be an IP address or a DNS name",
    ]);
    expect(problems({ token: "a-token-of-20-chars!" }, [])).toEqual([
      "ai-swarm:web: holds a secret but was not set as one (use: pulumi config set --secret --path web.token … (and web.certificate, web.privateKey))",
    ]);
    // Problems never quote the secret.
    expect(problems({ auth: "off", token: "a-token-of-20-chars!" }).join(" ")).not.toContain("a-token-of-20-chars!");
  });
});

describe("the master's front door under mocks", () => {
  afterEach(() => vi.restoreAllMocks());

  it("self-signed + token (the default): HTTPS with a certificate from the stack's CA, the key and the token as Docker secrets", async () => {
    const run = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", DEV_SECRETS));
    const issue = byName(run.resources, TYPES.command, "web-tls");
    // The master may run on any of the three managers: the certificate names every one.
    expect(String(issue.inputs["create"])).toContain("san='IP:172.28.0.11,IP:172.28.0.12,IP:172.28.0.13'");
    expect(issue.inputs["logging"]).toBe("none");
    expect(issue.additionalSecretOutputs).toContain("stdout");
    expect(issue.dependencies).toContain(byName(run.resources, TYPES.command, "registry-tls").urn);
    expect(masterEnv(run)).toMatchObject({
      WEB_TLS_CERT_FILE: "/run/secrets/web_tls_cert",
      WEB_TLS_KEY_FILE: "/run/secrets/web_tls_key",
      WEB_AUTH_TOKEN_FILE: "/run/secrets/web_token",
    });
    expect(masterEnv(run)["WEB_METRICS_OPEN"]).toBeUndefined();
    expect(secretData(run, "master-web-tls-cert")).toBe(MOCK_WEB_CERT);
    expect(secretData(run, "master-web-tls-key")).toBe(MOCK_WEB_KEY);
    expect(isSecretMarker(byName(run.resources, TYPES.secret, "master-web-tls-key").rawInputs["data"])).toBe(true);
    expect(secretData(run, "master-web-token")).toBe("mockpwwebtoken0123456789");
    expect(run.outputs["webUrl"]?.value).toBe("https://172.28.0.11:8888");
    expect(run.outputs["webToken"]).toEqual({ value: "mockpwwebtoken0123456789", secret: true });
    expect(run.outputs["webCaCert"]).toEqual({ value: MOCK_CA_CERT, secret: false });
  });

  it("provided: the certificate and key from config; a token from config is used as it is", async () => {
    const certificate = "-----BEGIN CERTIFICATE-----\nPROVIDED\n-----END CERTIFICATE-----\n";
    const privateKey = "-----BEGIN EC PRIVATE KEY-----\nPROVIDEDKEY\n-----END EC PRIVATE KEY-----\n";
    const engine = engineConfigFromStackFile("Pulumi.dev.yaml", {
      ...DEV_SECRETS,
      "web.tls": "provided",
      "web.certificate": certificate,
      "web.privateKey": privateKey,
      "web.token": "operator-chosen-token-123",
    });
    const run = await runProgram(engine);
    expect(run.resources.some((r) => r.name === "web-tls")).toBe(false);
    expect(secretData(run, "master-web-tls-cert")).toBe(certificate);
    expect(secretData(run, "master-web-tls-key")).toBe(privateKey);
    expect(secretData(run, "master-web-token")).toBe("operator-chosen-token-123");
    expect(run.outputs["webCaCert"]?.value).toBe("the certificate from web.certificate");
  });

  it("tls and auth off: plain HTTP without a token, and a warning for each on every preview", async () => {
    const warn = vi.spyOn(pulumi.log, "warn");
    const run = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", DEV_SECRETS, { web: { tls: "off", auth: "off", metricsOpen: true } }));
    const env = masterEnv(run);
    expect(Object.keys(env).filter((key) => key.startsWith("WEB_"))).toEqual(["WEB_METRICS_OPEN"]);
    expect(run.resources.filter((r) => r.name.startsWith("web-") || r.name.startsWith("master-web-"))).toEqual([]);
    expect(run.outputs["webUrl"]?.value).toBe("http://172.28.0.11:8888");
    const warnings = warn.mock.calls.map((call) => String(call[0]));
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^web\.tls is off: the page and the API on port 8888 are plain HTTP, so API keys typed into the page cross the network in clear/),
        expect.stringMatching(/^web\.auth is off: anyone who can reach port 8888 can use the page and the API/),
      ]),
    );
  });
});

describe("hardened containers", () => {
  it("every service: read-only root, all capabilities dropped, /tmp in memory; only Mosquitto gets three back", async () => {
    const run = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", DEV_SECRETS));
    const services = run.resources.filter((r) => r.type === TYPES.service);
    expect(services.map(dockerShortName).sort()).toEqual(["etcd-vm1", "etcd-vm2", "etcd-vm3", "master", "mosquitto", "registry", "worker-go", "worker-java", "worker-python"]);
    for (const service of services) {
      const container = (service.inputs["taskSpec"] as Record<string, Record<string, unknown>>)["containerSpec"] as Record<string, unknown>;
      expect(container["readOnly"], service.name).toBe(true);
      expect(container["capDrops"], service.name).toEqual(["ALL"]);
      expect(container["capAdds"], service.name).toEqual(dockerShortName(service) === "mosquitto" ? ["CHOWN", "SETUID", "SETGID"] : undefined);
      expect(container["mounts"], service.name).toEqual(expect.arrayContaining([{ type: "tmpfs", target: "/tmp", tmpfsOptions: { sizeBytes: 64 * 1024 * 1024, mode: 0o1777 } }]));
    }
  });
});
