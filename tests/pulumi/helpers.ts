// Test helpers: turn a Pulumi.<stack>.yaml into the config the Pulumi engine
// hands a program, and run the real index.ts under pulumi.runtime.setMocks
// while recording every registered resource exactly as the engine sees it
// (raw inputs with their secret markers, dependencies, options).
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as settings from "@pulumi/pulumi/runtime/settings";
import { vi } from "vitest";
import { parse as parseYaml } from "yaml";
import { aliasSpecsOf, aliasUrns, urnOf, type AliasMessage } from "../../lab/harness/aliases";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** The program needs every image's Dockerfile (it hashes the image sources); other engineers own images/. */
export function missingDockerfiles(): string[] {
  return ["master", "worker-python", "worker-go", "worker-java"]
    .map((name) => path.join("images", name, "Dockerfile"))
    .filter((file) => !fs.existsSync(path.join(REPO_ROOT, file)));
}

/** A throw-away key that only has to look like one; grepped for in every test. */
export const TEST_SSH_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nTESTKEYb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n";

/** The lab's stack as it was before issue 14: one manager (vm1) and three workers. */
export const ONE_MANAGER_NODES = ["vm1", "vm2", "vm3", "vm4"].map((name, index) => ({
  name,
  host: `172.28.0.1${index + 1}`,
  sshPort: 22,
  user: "root",
  role: index === 0 ? "manager" : "worker",
  labels: { vm: `ai-swarm-${name}` },
}));

/** The secrets Pulumi.cluster.example.yaml leaves to the operator, for program runs of that stack. */
export const CLUSTER_SECRETS = { sshPrivateKey: TEST_SSH_KEY, "registry.password": "registry-password-for-tests-9f3c", "llm.apiKey": "AIzaFakeGeminiKeyForTests-7731" };

export interface EngineConfig {
  config: Record<string, string>;
  secretKeys: string[];
}

/** Secrets a test supplies on top of a stack file: top-level keys or "registry.password"-style paths. */
export type SecretValues = Record<string, string>;

/** Reads Pulumi.<stack>.yaml and flattens it the way the engine does (objects as JSON, scalars as text). */
export function engineConfigFromStackFile(fileName: string, secrets: SecretValues, overrides: Record<string, unknown> = {}): EngineConfig {
  const document = parseYaml(fs.readFileSync(path.join(REPO_ROOT, fileName), "utf8")) as { config: Record<string, unknown> };
  const tree: Record<string, unknown> = { ...document.config };
  for (const [key, value] of Object.entries(overrides)) tree[`ai-swarm:${key}`] = value;
  const secretKeys = new Set<string>();
  for (const [secretPath, value] of Object.entries(secrets)) {
    const [top, ...rest] = secretPath.split(".");
    const fullKey = `ai-swarm:${top}`;
    if (rest.length === 0) tree[fullKey] = value;
    else tree[fullKey] = { ...(tree[fullKey] as Record<string, unknown> | undefined), [rest.join(".")]: value };
    secretKeys.add(fullKey);
  }
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries(tree)) {
    if (value === undefined) continue;
    config[key] = typeof value === "string" ? value : typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return { config, secretKeys: [...secretKeys] };
}

/** Pulumi's marker for a secret value in a serialized property map. */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface RegisteredResource {
  type: string;
  name: string;
  urn: string;
  custom: boolean;
  parent: string;
  provider: string;
  dependencies: string[];
  /** Inputs as sent to the engine, secrets still wrapped in their marker. */
  rawInputs: Record<string, unknown>;
  /** Inputs with secrets unwrapped. */
  inputs: Record<string, unknown>;
  additionalSecretOutputs: string[];
  deleteBeforeReplace: boolean;
  /** Left in place when removed from the program (the engine only forgets it). */
  retainOnDelete: boolean;
  /** Every earlier URN its aliases name, as the engine resolves them (lab/harness/aliases.ts). */
  aliasUrns: string[];
}

export function isSecretMarker(value: unknown): value is { value: unknown } {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** The raw inputs with every secret-wrapped value removed: what anyone reading plain state would see. */
export function withoutSecrets(value: unknown): unknown {
  if (isSecretMarker(value)) return "[secret]";
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, withoutSecrets(inner)]));
  }
  return value;
}

export function unwrapSecrets(value: unknown): unknown {
  if (isSecretMarker(value)) return unwrapSecrets(value.value);
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, unwrapSecrets(inner)]));
  }
  return value;
}

/** Provider-computed outputs for the mocks: predictable, and easy to grep for when they are secrets. */
function mockOutputs(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case "command:remote:Command":
      return { stdout: name.endsWith("-resolve") ? mockPinnedImages(String(inputs["create"])) : mockStdout(name), stderr: "" };
    case "random:index/randomPassword:RandomPassword":
      return { result: `mockpw${name.replace(/[^a-z0-9]/gi, "")}0123456789`, bcryptHash: "$2a$10$mock" };
    case "docker:index/image:Image":
      return { repoDigest: `${String(inputs["imageName"]).split(":").slice(0, -1).join(":")}@sha256:${"a".repeat(64)}` };
    default:
      return {};
  }
}

/** The manager's answer to pinImagesScript: the lab's local base images have no repository digest, pulled ones do. */
export const MOCK_PULLED_DIGEST = `sha256:${"e".repeat(64)}`;
export function mockPinnedImages(script: string): string {
  // `pin 'ref'`, or `pin '\''ref'\''` inside the sudo wrapper of a non-root user.
  const refs = [...script.matchAll(/^pin '(?:\\'')?([^'\\]+)/gm)].map((match) => match[1] as string);
  return refs.map((ref) => (ref.includes("@sha256:") || ref.startsWith("ai-swarm-base/") ? ref : `${ref}@${MOCK_PULLED_DIGEST}`)).join("\n") + "\n";
}

export const MOCK_JOIN_TOKEN = "SWMTKN-1-mockjointoken0123456789";
export const MOCK_MANAGER_JOIN_TOKEN = "SWMTKN-1-mockmanagertoken9876543210";
export const MOCK_CA_CERT = "-----BEGIN CERTIFICATE-----\nMOCKCA\n-----END CERTIFICATE-----\n";
export const MOCK_WEB_CERT = "-----BEGIN CERTIFICATE-----\nMOCKWEBCERT\n-----END CERTIFICATE-----\n";
export const MOCK_ETCD_KEY = "-----BEGIN PRIVATE KEY-----\nMOCKETCDKEYSECRET0123456789\n-----END PRIVATE KEY-----\n";
export const MOCK_WEB_KEY = "-----BEGIN PRIVATE KEY-----\nMOCKWEBKEYSECRET0123456789\n-----END PRIVATE KEY-----\n";

/** What `docker node ls -q` prints on the primary (swarm-node-ids): the ids a multi-manager join receives after its token. */
export const MOCK_NODE_IDS = "managernodeid0001\nnodeid-vm2\n";

/** What each remote command prints under mocks (by resource name); program-compat uses it too. */
export function mockStdout(name: string): string {
  if (name === "swarm-init") return "managernodeid0001\n";
  if (name === "swarm-join-token-worker") return `${MOCK_JOIN_TOKEN}\n`;
  if (name === "swarm-join-token-manager") return `${MOCK_MANAGER_JOIN_TOKEN}\n`;
  if (name === "swarm-node-ids") return MOCK_NODE_IDS;
  if (name.startsWith("swarm-join-")) return `nodeid-${name.slice("swarm-join-".length)}\n`;
  if (name.startsWith("swarm-node-")) return `nodeid-${name.slice("swarm-node-".length)}\n`; // the label script echoes the id
  if (name === "registry-tls") return MOCK_CA_CERT;
  if (name === "web-tls") return `${MOCK_WEB_CERT}${MOCK_WEB_KEY}`;
  if (name.startsWith("etcd-tls-")) return `${MOCK_WEB_CERT.replace("MOCKWEBCERT", `MOCKCERT-${name}`)}${MOCK_ETCD_KEY}`;
  if (name === "workers-placement") return "ai-system_worker-go.1 ai-swarm-vm2 Running 5 seconds ago\n";
  return "";
}

export interface ProgramRun {
  resources: RegisteredResource[];
  /** The names of the stacks the program read through a StackReference. */
  stackReferences: string[];
  outputs: Record<string, { value: unknown; secret: boolean }>;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProvider(): string;
  getCustom(): boolean;
  getDependenciesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getDeletebeforereplace(): boolean;
  getRetainondelete(): boolean | undefined;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  getAliasesList(): AliasMessage[];
}
interface PatchableMonitor {
  registerResource(request: RegisterRequest, callback: (error: unknown, response: unknown) => void): void;
}


/**
 * Runs index.ts under mocks with this config and returns what it registered and
 * exported. Like the engine, outputs named in additionalSecretOutputs come back secret.
 */
export async function runProgram(engine: EngineConfig, stack = "dev", previousOutputs: Record<string, unknown> = {}): Promise<ProgramRun> {
  const resources: RegisteredResource[] = [];
  const secretOutputs = new Map<string, string[]>();
  const aliasesByUrn = new Map<string, string[]>();
  const stackReferences: string[] = [];
  let inFlight = 0;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        // The program reads its own stack's last outputs (the quorum guard): the engine answers with them.
        if (args.type === "pulumi:pulumi:StackReference") {
          stackReferences.push(String(args.inputs["name"]));
          return { id: String(args.inputs["name"]), state: { name: args.inputs["name"], outputs: previousOutputs, secretOutputNames: [] } };
        }
        const state: Record<string, unknown> = { ...args.inputs, ...mockOutputs(args.type, args.name, args.inputs) };
        for (const key of secretOutputs.get(`${args.type}::${args.name}`) ?? []) {
          if (key in state) state[key] = pulumi.secret(state[key]);
        }
        return { id: `${args.name}-id`, state };
      },
      call: (args) => args.inputs,
    },
    "ai-swarm",
    stack,
    false,
    "organization",
  );
  const monitor = settings.getMonitor() as unknown as PatchableMonitor;
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (request, callback) => {
    const raw = request.getObject()?.toJavaScript() ?? {};
    const type = request.getType();
    const name = request.getName();
    const urn = urnOf(settings.getStack(), settings.getProject(), request.getParent(), type, name);
    const parentAliases = aliasesByUrn.get(request.getParent()) ?? [];
    const aliases = aliasUrns(settings.getStack(), settings.getProject(), { type, name, parentUrn: request.getParent() }, aliasSpecsOf(request.getAliasesList()), parentAliases);
    aliasesByUrn.set(urn, aliases);
    secretOutputs.set(`${type}::${name}`, request.getAdditionalsecretoutputsList());
    resources.push({
      type,
      name,
      urn,
      custom: request.getCustom(),
      parent: request.getParent(),
      provider: request.getProvider(),
      dependencies: request.getDependenciesList(),
      rawInputs: raw,
      inputs: unwrapSecrets(raw) as Record<string, unknown>,
      additionalSecretOutputs: request.getAdditionalsecretoutputsList(),
      deleteBeforeReplace: request.getDeletebeforereplace(),
      retainOnDelete: request.getRetainondelete() ?? false,
      aliasUrns: aliases,
    });
    inFlight++;
    original(request, (error, response) => {
      inFlight--;
      callback(error, response);
    });
  };
  pulumi.runtime.setAllConfig(engine.config, engine.secretKeys);

  vi.resetModules();
  const rejected = programRejections();
  try {
    let program: Record<string, unknown>;
    try {
      program = (await import("../../index")) as Record<string, unknown>;
    } catch (error) {
      await settle(() => inFlight);
      throw Object.assign(error as Error, { registeredCount: resources.length });
    }
    const outputs: ProgramRun["outputs"] = {};
    for (const [key, exported] of Object.entries(program)) {
      outputs[key] = await Promise.race([resolveOutput(exported), rejected.first]);
    }
    await Promise.race([settle(() => inFlight), rejected.first]);
    return { resources, stackReferences, outputs };
  } finally {
    rejected.stop();
  }
}

/**
 * An error thrown inside an apply (the quorum guard) rejects promises the SDK does not await: the
 * engine's language host (cmd/run) fails the program on the first such rejection, printing a
 * RunError's message alone. So does this, while the program runs: `first` rejects with it.
 */
export function programRejections(): { first: Promise<never>; stop(): void } {
  const others = process.listeners("unhandledRejection");
  process.removeAllListeners("unhandledRejection");
  let fail: (error: unknown) => void = () => undefined;
  const first = new Promise<never>((_, reject) => (fail = reject));
  first.catch(() => undefined);
  const listener = (reason: unknown) => fail(reason);
  process.on("unhandledRejection", listener);
  return {
    first,
    stop() {
      process.removeListener("unhandledRejection", listener);
      for (const other of others) process.on("unhandledRejection", other);
    },
  };
}

async function resolveOutput(value: unknown): Promise<{ value: unknown; secret: boolean }> {
  const output: pulumi.Output<unknown> = pulumi.output(value);
  const internal = output as unknown as { isSecret: Promise<boolean> };
  const [resolved, secret] = await Promise.all([
    new Promise<unknown>((resolve) => output.apply((inner: unknown) => resolve(inner))),
    internal.isSecret,
  ]);
  return { value: resolved, secret };
}

/** Waits until no registration has been pending for a few ticks. */
async function settle(inFlight: () => number): Promise<void> {
  let quiet = 0;
  while (quiet < 5) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    quiet = inFlight() === 0 ? quiet + 1 : 0;
  }
}

export function byName(resources: RegisteredResource[], type: string, name: string): RegisteredResource {
  const found = resources.find((resource) => resource.type === type && resource.name === name);
  if (!found) throw new Error(`no ${type} named ${name}; have: ${resources.map((r) => `${r.type}/${r.name}`).join(", ")}`);
  return found;
}

/** A docker.Service by the Docker name it declares (`<stackName>_<short>`; both stacks here use ai-system). */
export function serviceByDockerName(resources: RegisteredResource[], short: string, stackName = "ai-system"): RegisteredResource {
  const found = resources.find((resource) => resource.type === TYPES.service && resource.inputs["name"] === `${stackName}_${short}`);
  if (!found) throw new Error(`no service ${stackName}_${short}; have: ${resources.filter((r) => r.type === TYPES.service).map((r) => String(r.inputs["name"])).join(", ")}`);
  return found;
}

/** The short Docker name of a service resource: "ai-system_worker-go" → "worker-go". */
export function dockerShortName(resource: RegisteredResource): string {
  return String(resource.inputs["name"]).replace(/^[^_]+_/, "");
}

export const TYPES = {
  command: "command:remote:Command",
  service: "docker:index/service:Service",
  image: "docker:index/image:Image",
  network: "docker:index/network:Network",
  secret: "docker:index/secret:Secret",
  serviceConfig: "docker:index/serviceConfig:ServiceConfig",
  randomPassword: "random:index/randomPassword:RandomPassword",
  dockerProvider: "pulumi:providers:docker",
} as const;

/** Image tags carry a hash of the image's sources: another change to images/ must not look like a change of the program. */
function withoutContentTags(value: unknown): unknown {
  if (typeof value === "string") return value.replace(/(\/ai-swarm\/[a-z-]+):[0-9a-f]{12}\b/g, "$1:<content>");
  if (Array.isArray(value)) return value.map(withoutContentTags);
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, withoutContentTags(inner)]));
  return value;
}

/**
 * What the engine compares between two runs, per registered resource: its identity, the options that
 * decide its steps and its inputs (secrets as "[secret]", image content tags as "<content>").
 */
export function resourceShapes(run: ProgramRun): unknown[] {
  return run.resources.map((resource) => ({
    type: resource.type,
    name: resource.name,
    parent: resource.parent,
    deleteBeforeReplace: resource.deleteBeforeReplace,
    additionalSecretOutputs: resource.additionalSecretOutputs,
    inputs: withoutContentTags(withoutSecrets(resource.rawInputs)),
  }));
}
