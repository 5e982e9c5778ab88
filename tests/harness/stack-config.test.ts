import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { passwordRules, generatePassword } from "../../lab/harness/appliers/random";
import { planBuild, splitImageName } from "../../lab/harness/appliers/image";
import { networkCreateBody, objectData } from "../../lab/harness/appliers/swarm";
import { parseArgs } from "../../lab/harness/deploy";
import { decodeProviderInputs, parseSshHost, providerId, authForRegistry } from "../../lab/harness/providers";
import { Masker, SECRET_SIG_KEY, SECRET_SIG_VALUE, unwrapSecrets } from "../../lab/harness/secrets";
import { buildEngineConfig, readSecretsFile } from "../../lab/harness/stack-config";

const STACK = `
config:
  ai-swarm:stackName: ai-system
  ai-swarm:simulatedWorkMs: 2000
  ai-swarm:network:
    encrypted: false
  ai-swarm:nodes:
    - name: vm1
      host: 172.28.0.11
      role: manager
  ai-swarm:registry:
    port: 5000
    password:
      secure: v1:AAAA
  ai-swarm:sshPrivateKey:
    secure: v1:BBBB
  docker:host: ssh://root@172.28.0.11
`;

describe("buildEngineConfig: the config the Pulumi engine would pass", () => {
  const secrets = { sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n", "registry.password": "correct-horse-battery" };

  it("strings stay strings, numbers/objects/lists become JSON, other namespaces pass through", () => {
    const { config } = buildEngineConfig("ai-swarm", STACK, secrets);
    expect(config["ai-swarm:stackName"]).toBe("ai-system");
    expect(config["ai-swarm:simulatedWorkMs"]).toBe("2000");
    expect(JSON.parse(config["ai-swarm:network"] as string)).toEqual({ encrypted: false });
    expect(JSON.parse(config["ai-swarm:nodes"] as string)).toEqual([{ name: "vm1", host: "172.28.0.11", role: "manager" }]);
    expect(config["docker:host"]).toBe("ssh://root@172.28.0.11");
  });

  it("secure values are filled from the secrets file, top-level and nested, and their keys marked secret", () => {
    const { config, secretKeys } = buildEngineConfig("ai-swarm", STACK, secrets);
    expect(config["ai-swarm:sshPrivateKey"]).toBe(secrets.sshPrivateKey);
    expect(JSON.parse(config["ai-swarm:registry"] as string)).toEqual({ port: 5000, password: "correct-horse-battery" });
    expect(secretKeys).toEqual(["ai-swarm:registry", "ai-swarm:sshPrivateKey"]);
  });

  it("a secrets-file value may add a key the stack file lacks", () => {
    const { config, secretKeys } = buildEngineConfig("ai-swarm", STACK, { ...secrets, "llm.apiKey": "AIza-test" });
    expect(JSON.parse(config["ai-swarm:llm"] as string)).toEqual({ apiKey: "AIza-test" });
    expect(secretKeys).toContain("ai-swarm:llm");
  });

  it("a secure value without a plain value is an error naming its key", () => {
    expect(() => buildEngineConfig("ai-swarm", STACK, { sshPrivateKey: "k" })).toThrow(/ai-swarm:registry\.password: is a secure \(encrypted\) value/);
  });

  it("a secrets-file value may not overwrite a plain value", () => {
    expect(() => buildEngineConfig("ai-swarm", STACK, { ...secrets, stackName: "x" })).toThrow(/would overwrite the plain value of ai-swarm:stackName/);
  });

  it("bad YAML is reported, not thrown raw", () => {
    expect(() => buildEngineConfig("ai-swarm", "config: [unclosed", {})).toThrow(/stack file: not valid YAML/);
  });

  it("readSecretsFile accepts strings and {fromFile}", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "harness-secrets-"));
    fs.writeFileSync(path.join(dir, "id_key"), "KEYTEXT\n");
    fs.writeFileSync(path.join(dir, "s.yaml"), "sshPrivateKey:\n  fromFile: id_key\nregistry.password: pw-123456789\n");
    expect(readSecretsFile(path.join(dir, "s.yaml"))).toEqual({ sshPrivateKey: "KEYTEXT\n", "registry.password": "pw-123456789" });
    fs.writeFileSync(path.join(dir, "bad.yaml"), "x:\n  fromFile: missing\ny: 3\n");
    expect(() => readSecretsFile(path.join(dir, "bad.yaml"))).toThrow(/x\.fromFile: cannot read[\s\S]*y: expected a string/);
    fs.rmSync(dir, { recursive: true });
  });
});

describe("secrets: unwrapping and masking", () => {
  const secret = (value: unknown) => ({ [SECRET_SIG_KEY]: SECRET_SIG_VALUE, value });

  it("strips markers at any depth and remembers which top-level keys held secrets", () => {
    const { value, secretKeys, secretStrings } = unwrapSecrets({
      connection: secret({ host: "h", privateKey: "PRIVATE-KEY-TEXT" }) as never,
      create: "echo hi",
      environment: { TOKEN: secret("tok-123456") } as never,
    });
    expect(value).toEqual({ connection: { host: "h", privateKey: "PRIVATE-KEY-TEXT" }, create: "echo hi", environment: { TOKEN: "tok-123456" } });
    expect([...secretKeys].sort()).toEqual(["connection", "environment"]);
    // The host only says where the key is used: not collected for masking (registry addresses stay readable in logs).
    expect(secretStrings).toEqual(new Set(["PRIVATE-KEY-TEXT", "tok-123456"]));
  });

  it("the masker hides whole secrets and each long line of multi-line ones", () => {
    const masker = new Masker();
    masker.add(["line-one-of-key\nline-two-of-key", "pw-9876543"]);
    expect(masker.mask("got pw-9876543 and line-two-of-key")).toBe("got [secret] and [secret]");
    expect(masker.mask("short 1 stays")).toBe("short 1 stays");
  });

  it("the masker leaves public config values alone even inside a secret object", () => {
    const masker = new Masker();
    masker.addPublic(["172.28.0.11"]);
    masker.add(["172.28.0.11", "PRIVATE-KEY-LINE-0001\n172.28.0.11", "pw-9876543"]);
    expect(masker.mask("push 172.28.0.11:5000 with pw-9876543 and PRIVATE-KEY-LINE-0001")).toBe("push 172.28.0.11:5000 with [secret] and [secret]");
  });
});

describe("pure helpers of the appliers", () => {
  it("planBuild: dockerfile and context against the project dir, sorted build args, context on stdin, push on", () => {
    const plan = planBuild(
      { imageName: "10.0.0.1:5000/ai-swarm/master:abcdef012345", build: { context: ".", dockerfile: "images/master/Dockerfile", args: { NODE_IMAGE: "n:20", A: "1" }, platform: "linux/amd64" } },
      "/repo",
      "img",
    );
    expect(plan.cliArgs).toEqual([
      "build", "-f", "images/master/Dockerfile", "-t", "10.0.0.1:5000/ai-swarm/master:abcdef012345",
      "--build-arg", "A=1", "--build-arg", "NODE_IMAGE=n:20", "--platform", "linux/amd64", "-",
    ]);
    expect(plan.contextDir).toBe("/repo");
    expect(plan.dockerfile).toBe("/repo/images/master/Dockerfile");
    expect(plan.dockerfileInContext).toBe("images/master/Dockerfile");
    expect(plan.push).toBe(true);
  });

  it("planBuild refuses a Dockerfile outside the context (the context is sent as a tar)", () => {
    expect(() => planBuild({ imageName: "r/a:1", build: { context: "images/master", dockerfile: "Dockerfile" } }, "/repo", "img")).toThrow(
      /img\.build\.dockerfile: \/repo\/Dockerfile is not inside the context \/repo\/images\/master/,
    );
  });

  it("planBuild refuses :latest and untagged names, and unknown build fields", () => {
    expect(() => planBuild({ imageName: "r:5000/a/b:latest" }, "/repo", "img")).toThrow(/needs an explicit tag other than latest/);
    expect(() => planBuild({ imageName: "r:5000/a/b" }, "/repo", "img")).toThrow(/needs an explicit tag/);
    expect(() => planBuild({ imageName: "r/a:1", build: { secrets: {} } }, "/repo", "img")).toThrow(/img\.build\.secrets/);
  });

  it("splitImageName keeps a registry port out of the tag", () => {
    expect(splitImageName("172.28.0.11:5000/ai-swarm/master:0123")).toEqual({ repository: "172.28.0.11:5000/ai-swarm/master", tag: "0123", registryHost: "172.28.0.11:5000" });
    expect(splitImageName("registry:2")).toEqual({ repository: "registry", tag: "2", registryHost: "docker.io" });
  });

  it("networkCreateBody: overlay, attachable, options", () => {
    expect(networkCreateBody({ name: "ai-system_net", driver: "overlay", attachable: true, options: { encrypted: "true" } }, "net")).toEqual({
      Name: "ai-system_net", CheckDuplicate: true, Driver: "overlay", Attachable: true, Options: { encrypted: "true" },
    });
    expect(() => networkCreateBody({ name: "n", scope: "swarm" }, "net")).toThrow(/net\.scope/);
  });

  it("objectData: base64 data for secrets, dataRaw for configs, bad base64 refused", () => {
    expect(objectData("secret", { name: "s", data: Buffer.from("tok").toString("base64") }, "docker:index:Secret s").data.toString()).toBe("tok");
    expect(objectData("config", { name: "c", dataRaw: "listener 1883" }, "c").data.toString()).toBe("listener 1883");
    expect(() => objectData("secret", { name: "s", data: "not base64!" }, "docker:index:Secret s")).toThrow(/data: is not base64/);
    expect(() => objectData("secret", { name: "s" }, "s")).toThrow(/set exactly one of data/);
  });

  it("passwordRules + generatePassword honour length, classes and minimums", () => {
    const rules = passwordRules({ length: 24, special: false, minUpper: 2, minNumeric: 3 }, "pw");
    for (let i = 0; i < 20; i++) {
      const pw = generatePassword(rules);
      expect(pw).toHaveLength(24);
      expect(pw).toMatch(/^[A-Za-z0-9]+$/);
      expect(pw.replace(/[^A-Z]/g, "").length).toBeGreaterThanOrEqual(2);
      expect(pw.replace(/[^0-9]/g, "").length).toBeGreaterThanOrEqual(3);
    }
    expect(generatePassword(rules)).not.toBe(generatePassword(rules));
    expect(() => passwordRules({ length: 2, minUpper: 3 }, "pw")).toThrow(/exceed length/);
  });

  it("provider references and ssh:// hosts", () => {
    expect(providerId("urn:pulumi:dev::ai-swarm::pulumi:providers:docker::manager::abc-123")).toBe("abc-123");
    expect(parseSshHost("ssh://root@172.28.0.11:2222")).toEqual({ user: "root", host: "172.28.0.11", port: 2222 });
    expect(parseSshHost("ssh://172.28.0.11")).toEqual({ user: "root", host: "172.28.0.11", port: 22 });
    expect(parseSshHost("tcp://1.2.3.4:2375")).toBeUndefined();
    expect(authForRegistry([{ serverAddress: "https://10.0.0.1:5000/", username: "u" }], "10.0.0.1:5000")?.username).toBe("u");
  });

  it("provider inputs: JSON-encoded lists and maps (as the SDK sends them) are decoded, plain strings kept", () => {
    const decoded = decodeProviderInputs({
      host: "ssh://root@172.28.0.11:22",
      sshOpts: '["-o","BatchMode=yes"]',
      registryAuth: '[{"address":"r:5000"}]',
      version: "5.2.0",
      odd: "[not json",
    });
    expect(decoded).toEqual({
      host: "ssh://root@172.28.0.11:22",
      sshOpts: ["-o", "BatchMode=yes"],
      registryAuth: [{ address: "r:5000" }],
      version: "5.2.0",
      odd: "[not json",
    });
  });

  it("parseArgs: known flags only, each with a value", () => {
    expect(parseArgs(["--stack", "cluster", "--secrets", "s.yaml"])).toEqual({ stack: "cluster", secrets: "s.yaml", destroy: false });
    expect(parseArgs(["--config-file", "lab/.state/x.yaml", "--destroy"])).toEqual({ stack: "dev", configFile: "lab/.state/x.yaml", destroy: true });
    expect(() => parseArgs(["--stak", "dev"])).toThrow(/unknown argument --stak/);
    expect(() => parseArgs(["--stack"])).toThrow(/--stack needs a value/);
    expect(() => parseArgs(["--stack", "../x"])).toThrow(/not a stack name/);
  });
});
