// The whole stack configuration, validated by one zod schema before any
// resource is declared.
//
// Pulumi hands a program its config as flat strings ("ai-swarm:nodes" holds the
// JSON of a list). `parseStackConfig` is pure: it takes those strings plus the
// list of keys that were set as secrets and returns either a typed config or
// every problem, each named by its config key. `loadStackConfig` is the thin
// Pulumi-facing part: it reads the runtime config (and the SSH key file when
// the key is not set as a secret), throws one `pulumi.RunError` listing every
// problem (the engine prints its message and no stack trace), and wraps secret
// values in `pulumi.secret` so they stay secret in every resource input and
// output.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { describeAtLeast, integerSetting, timingRuleProblems } from "./workerSettings";

export const CONFIG_NAMESPACE = "ai-swarm";

export const WORKER_LANGUAGES = ["python", "go", "java"] as const;
export type WorkerLanguage = (typeof WORKER_LANGUAGES)[number];

// Docker object names, label keys and user names end up in shell commands and
// service names: keep them to a safe alphabet instead of quoting everything.
const dockerName = /^[a-z0-9][a-z0-9-]{0,29}$/;
const hostName = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;
const unixUser = /^[a-z_][a-z0-9_-]{0,31}$/;
const labelKey = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const labelValue = /^[A-Za-z0-9._:/@-]{0,63}$/;
const imageRef = /^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/;

const port = z.number().int().min(1).max(65535);

/** Where images/etcd takes etcd's binaries by default: the official release image (3.5). */
export const DEFAULT_ETCD_IMAGE = "gcr.io/etcd-development/etcd:v3.5.17";
const ipv4Cidr = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([89]|1\d|2[0-8])$/;

/** An optional stack setting for one integer of proto/worker-settings.json, within its bounds. */
function timing(variable: string) {
  const { min, max } = integerSetting(variable);
  return z.number().int().min(min).max(max).optional();
}

const nodeSchema = z.strictObject({
  name: z.string().regex(dockerName, "must be 1-30 characters of a-z, 0-9 and -, starting with a letter or digit"),
  host: z.string().regex(hostName, "must be an IP address or a DNS name"),
  sshPort: port.default(22),
  user: z.string().regex(unixUser, "must be a plain Unix user name").default("root"),
  role: z.enum(["manager", "worker"]),
  labels: z
    .record(
      z.string().regex(labelKey, "label keys are 1-63 characters of A-Z, a-z, 0-9, ., _ and -"),
      z.string().regex(labelValue, "label values are up to 63 characters of A-Z, a-z, 0-9 and ._:/@-"),
    )
    .default({}),
});

const llmSchema = z
  .strictObject({
    provider: z.enum(["auto", "gemini", "openai", "offline"]).default("auto"),
    apiKey: z.string().min(1, "must not be empty").optional(),
    baseUrl: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
    model: z.string().regex(/^[A-Za-z0-9._:/-]{1,100}$/, "must be a model name such as gemini-2.5-flash").optional(),
  })
  .default({ provider: "auto" });

const schema = z.strictObject({
  nodes: z.array(nodeSchema).min(1, "list at least one node"),
  // Either the key itself (a secret) or, when it is absent, the key file at sshPrivateKeyPath (read at deploy time).
  sshPrivateKey: z
    .string()
    .refine((key) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key), "must be a PEM or OpenSSH private key")
    .optional(),
  sshPrivateKeyPath: z.string().min(1).optional(),
  stackName: z.string().regex(dockerName, "must be 1-30 characters of a-z, 0-9 and -").default("ai-system"),
  topicPrefix: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 characters of A-Z, a-z, 0-9, _ and -").default("ai-system"),
  ports: z
    .strictObject({ web: port.default(8888), mqtt: port.optional() })
    .default({ web: 8888 }),
  replicas: z
    .strictObject({
      python: z.number().int().min(0).max(100).default(1),
      go: z.number().int().min(0).max(100).default(1),
      java: z.number().int().min(0).max(100).default(1),
    })
    .default({ python: 1, go: 1, java: 1 }),
  maxReplicasPerNode: z.number().int().min(1).max(100).default(1),
  simulatedWorkMs: z.number().int().min(0).max(3_600_000).default(integerSetting("SIMULATED_WORK_MS").default),
  shutdownGraceMs: z.number().int().min(0).max(600_000).default(integerSetting("SHUTDOWN_GRACE_MS").default),
  // Timings of proto/worker-settings.json; unset, each service keeps its own default (the table's).
  heartbeatIntervalMs: timing("HEARTBEAT_INTERVAL_MS"),
  heartbeatTimeoutMs: timing("HEARTBEAT_TIMEOUT_MS"),
  leaseMs: timing("LEASE_MS"),
  taskTimeoutMs: timing("TASK_TIMEOUT_MS"),
  llm: llmSchema,
  registry: z
    .strictObject({
      port: port.default(5000),
      username: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 characters of A-Z, a-z, 0-9 and ._-").default("aiswarm"),
      password: z.string().min(12, "must be at least 12 characters").optional(),
    })
    .default({ port: 5000, username: "aiswarm" }),
  web: z
    .strictObject({
      // self-signed: a certificate for the manager's address (and `hosts`) signed by the stack's CA (the registry's);
      // provided: `certificate` and `privateKey` from this config; off: plain HTTP (preview warns).
      tls: z.enum(["self-signed", "provided", "off"]).default("self-signed"),
      // token: the page asks for it and sets a session cookie, the REST API takes it as a bearer token.
      auth: z.enum(["token", "off"]).default("token"),
      token: z.string().min(16, "must be at least 16 characters").optional(),
      certificate: z.string().refine((pem) => pem.includes("-----BEGIN CERTIFICATE-----"), "must be a PEM certificate").optional(),
      privateKey: z.string().refine((pem) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem), "must be a PEM private key").optional(),
      hosts: z.array(z.string().regex(hostName, "must be an IP address or a DNS name")).default([]),
      metricsOpen: z.boolean().default(false),
    })
    .default({ tls: "self-signed", auth: "token", hosts: [], metricsOpen: false }),
  network: z
    .strictObject({
      encrypted: z.boolean().default(true),
      // Where Swarm takes the subnets of its overlay networks (`swarm init --default-addr-pool`):
      // Docker's default 10.0.0.0/8 may collide with the VMs' own networks.
      addressPool: z.string().regex(ipv4Cidr, "must be an IPv4 CIDR such as 172.29.0.0/16").optional(),
      addressPoolMaskLength: z.number().int().min(16).max(28).optional(),
    })
    .default({ encrypted: true }),
  endpointMode: z.enum(["vip", "dnsrr"]).default("vip"),
  publishMode: z.enum(["ingress", "host"]).default("ingress"),
  baseImages: z
    .strictObject({
      node: z.string().regex(imageRef, "must be an image reference").optional(),
      python: z.string().regex(imageRef, "must be an image reference").optional(),
      go: z.string().regex(imageRef, "must be an image reference").optional(),
      maven: z.string().regex(imageRef, "must be an image reference").optional(),
      runtime: z.string().regex(imageRef, "must be an image reference").optional(),
      mosquitto: z.string().regex(imageRef, "must be an image reference").default("eclipse-mosquitto:2"),
      registry: z.string().regex(imageRef, "must be an image reference").default("registry:2"),
      // etcd's binaries for images/etcd (multi-manager stacks only): the official release image.
      etcd: z.string().regex(imageRef, "must be an image reference").default(DEFAULT_ETCD_IMAGE),
    })
    .default({ mosquitto: "eclipse-mosquitto:2", registry: "registry:2", etcd: DEFAULT_ETCD_IMAGE }),
  build: z
    .strictObject({
      onManager: z.boolean().default(true),
      // Named on every build: the docker provider warns on each preview when it has to guess.
      platform: z.string().regex(/^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/, "must look like linux/amd64").default("linux/amd64"),
    })
    .default({ onManager: true, platform: "linux/amd64" }),
});

/** The validated config with secrets still as plain strings (pure code only). */
export type ParsedConfig = z.infer<typeof schema>;
export type NodeConfig = ParsedConfig["nodes"][number];
export type LlmProvider = ParsedConfig["llm"]["provider"];

/** Keys whose values are JSON (objects, lists, numbers), with what each should be; the rest are strings. */
const JSON_KEYS = new Map([
  ["nodes", "a list of nodes"],
  ["ports", "a map"],
  ["replicas", "a map"],
  ["maxReplicasPerNode", "a number"],
  ["simulatedWorkMs", "a number"],
  ["shutdownGraceMs", "a number"],
  ["heartbeatIntervalMs", "a number"],
  ["heartbeatTimeoutMs", "a number"],
  ["leaseMs", "a number"],
  ["taskTimeoutMs", "a number"],
  ["llm", "a map"],
  ["registry", "a map"],
  ["web", "a map"],
  ["network", "a map"],
  ["baseImages", "a map"],
  ["build", "a map"],
]);

/** Config values that must have been set with `pulumi config set --secret`. */
const SECRET_FIELDS: { key: string; present: (c: ParsedConfig) => boolean; example: string }[] = [
  { key: "sshPrivateKey", present: (c) => c.sshPrivateKey !== undefined, example: "pulumi config set --secret sshPrivateKey < key" },
  { key: "registry", present: (c) => c.registry.password !== undefined, example: "pulumi config set --secret --path registry.password …" },
  {
    key: "web",
    present: (c) => c.web.token !== undefined || c.web.privateKey !== undefined || c.web.certificate !== undefined,
    example: "pulumi config set --secret --path web.token … (and web.certificate, web.privateKey)",
  },
  { key: "llm", present: (c) => c.llm.apiKey !== undefined, example: "pulumi config set --secret --path llm.apiKey …" },
];

export type ParseResult = { ok: true; config: ParsedConfig } | { ok: false; problems: string[] };

/**
 * Validates raw Pulumi config strings (keys with or without the "ai-swarm:"
 * prefix). `secretKeys` lists the keys Pulumi marked secret.
 */
export function parseStackConfig(raw: Record<string, string>, secretKeys: Iterable<string> = []): ParseResult {
  const problems: string[] = [];
  const input = decodeRawConfig(raw, problems);
  const result = schema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(...describeIssue(issue));
    return { ok: false, problems };
  }
  const config = result.data;
  if (config.sshPrivateKey === undefined && config.sshPrivateKeyPath === undefined) {
    problems.push(`${CONFIG_NAMESPACE}:sshPrivateKey: is required (pulumi config set --secret sshPrivateKey < key), unless sshPrivateKeyPath names the key file`);
  }
  problems.push(
    ...placementProblems(config),
    ...llmProblems(config),
    ...webProblems(config),
    ...timingProblems(config, new Set(Object.keys(input))),
    ...secretProblems(config, secretKeys),
  );
  return problems.length === 0 ? { ok: true, config } : { ok: false, problems };
}

/** Turns flat Pulumi strings into the object the schema checks. */
function decodeRawConfig(raw: Record<string, string>, problems: string[]): Record<string, unknown> {
  const decoded: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(raw)) {
    const key = stripNamespace(fullKey);
    if (key === undefined) continue; // another namespace (e.g. docker:host) is not ours to check
    const expected = JSON_KEYS.get(key);
    if (expected === undefined) {
      decoded[key] = value;
      continue;
    }
    try {
      decoded[key] = JSON.parse(value);
    } catch {
      problems.push(`${CONFIG_NAMESPACE}:${key}: must be ${expected}`);
    }
  }
  return decoded;
}

function stripNamespace(key: string): string | undefined {
  if (!key.includes(":")) return key;
  const [namespace, ...rest] = key.split(":");
  return namespace === CONFIG_NAMESPACE ? rest.join(":") : undefined;
}

/** ["nodes", 2, "host"] → "ai-swarm:nodes[2].host" */
export function configKeyOf(path: readonly PropertyKey[]): string {
  let key = CONFIG_NAMESPACE + ":";
  path.forEach((segment, index) => {
    if (typeof segment === "number") key += `[${segment}]`;
    else key += (index === 0 ? "" : ".") + String(segment);
  });
  return key;
}

/** One line per problem, each starting with the config key it is about. */
function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => `${configKeyOf([...issue.path, key])}: unknown setting (check the spelling against docs/pulumi.md)`);
  }
  const message =
    issue.code === "invalid_type" && issue.message.includes("received undefined")
      ? "is required"
      : issue.code === "invalid_key"
        ? "is not a valid key: label keys are 1-63 characters of A-Z, a-z, 0-9, ., _ and -"
        : issue.message;
  return [`${configKeyOf(issue.path)}: ${message}`];
}

/** How many nodes may have role manager: Raft needs a majority of them, so an odd count (more than 5 only slows every write). */
export const MANAGER_COUNTS: readonly number[] = [1, 3, 5];

function managerCountProblem(count: number): string {
  const found = `found ${count}`;
  if (count === 0) return `give role "manager" to 1, 3 or 5 nodes (${found}): the first manager creates the swarm`;
  if (count > 5) return `give role "manager" to 1, 3 or 5 nodes (${found}): every manager takes part in each Raft write, and more than 5 only slows them`;
  return (
    `give role "manager" to 1, 3 or 5 nodes (${found}): the swarm works while a majority of its managers is up (Raft), ` +
    `so ${count} managers survive no more lost managers (${Math.floor((count - 1) / 2)}) than ${count - 1} would, with one more VM that can fail`
  );
}

/** The managers of a valid config, the primary (the first listed) first. */
export function managersOf(nodes: readonly NodeConfig[]): NodeConfig[] {
  return nodes.filter((node) => node.role === "manager");
}

/**
 * A multi-manager stack (3 or 5 managers): manager joins, roles and removal from the primary,
 * per-node resources kept on delete, etcd and the master on it, images pulled on every node, the
 * registry pinned to the primary, rebalancing. A 1-manager stack keeps the resources it had before.
 */
export function isMultiManager(nodes: readonly Pick<NodeConfig, "role">[]): boolean {
  return nodes.filter((node) => node.role === "manager").length > 1;
}

/** What preview and up warn about a stack that a single lost VM can stop, or undefined when it has 3 or 5 managers. */
export function faultToleranceWarning(nodes: readonly NodeConfig[]): string | undefined {
  const managers = managersOf(nodes);
  if (managers.length !== 1) return undefined;
  return (
    `${CONFIG_NAMESPACE}:nodes: only one manager (${managers[0]?.name ?? "?"}): the stack is not fault-tolerant, losing that VM stops the swarm; ` +
    `give role "manager" to 3 nodes (or 5) to survive the loss of any one VM (docs/pulumi.md, "How many managers")`
  );
}

/**
 * The quorum guard: a change must keep a majority of the managers deployed last time (the stack's
 * `managers` output), or the swarm would lose Raft quorum while it changes. Returns the reason a
 * change is refused, or undefined. `previous` is undefined (or empty) on the first deploy.
 */
export function quorumProblem(previous: readonly string[] | undefined, current: readonly string[]): string | undefined {
  if (previous === undefined || previous.length === 0) return undefined;
  const kept = previous.filter((name) => current.includes(name));
  const needed = Math.floor(previous.length / 2) + 1;
  if (kept.length >= needed) return undefined;
  return (
    `${CONFIG_NAMESPACE}:nodes: this change keeps ${kept.length} of the ${previous.length} deployed managers (${previous.join(", ")}; kept: ${kept.join(", ") || "none"}), ` +
    `but the swarm needs ${needed} of them to keep its Raft quorum while it changes: keep at least ${needed} of them as managers in this deploy, ` +
    "and change the rest in a later one"
  );
}

/** Checks the schema cannot express: roles, duplicates, room for replicas, port clashes. */
function placementProblems(config: ParsedConfig): string[] {
  const problems: string[] = [];
  const managers = config.nodes.filter((node) => node.role === "manager");
  if (!MANAGER_COUNTS.includes(managers.length)) {
    problems.push(`${CONFIG_NAMESPACE}:nodes: ${managerCountProblem(managers.length)}`);
  }
  const seenNames = new Set<string>();
  const seenHosts = new Set<string>();
  config.nodes.forEach((node, index) => {
    if (seenNames.has(node.name)) problems.push(`${CONFIG_NAMESPACE}:nodes[${index}].name: duplicate name ${node.name}`);
    if (seenHosts.has(node.host)) problems.push(`${CONFIG_NAMESPACE}:nodes[${index}].host: duplicate host ${node.host}`);
    seenNames.add(node.name);
    seenHosts.add(node.host);
  });
  const capacity = config.nodes.length * config.maxReplicasPerNode;
  for (const language of WORKER_LANGUAGES) {
    const wanted = config.replicas[language];
    if (wanted > capacity) {
      problems.push(
        `${CONFIG_NAMESPACE}:replicas.${language}: ${wanted} replicas cannot be placed: ` +
          `${config.nodes.length} nodes × maxReplicasPerNode ${config.maxReplicasPerNode} = ${capacity}`,
      );
    }
  }
  const { addressPool, addressPoolMaskLength } = config.network;
  if (addressPoolMaskLength !== undefined && addressPool === undefined) {
    problems.push(`${CONFIG_NAMESPACE}:network.addressPoolMaskLength: needs network.addressPool`);
  }
  const poolPrefix = addressPool === undefined ? undefined : Number(addressPool.split("/")[1]);
  if (poolPrefix !== undefined && (addressPoolMaskLength ?? 24) < poolPrefix) {
    problems.push(
      `${CONFIG_NAMESPACE}:network.addressPoolMaskLength: ${addressPoolMaskLength ?? 24} is shorter than the pool's /${poolPrefix}; ` +
        "each overlay network is carved out of the pool, so its mask must be at least as long",
    );
  }
  if (config.endpointMode === "dnsrr" && config.publishMode === "ingress") {
    problems.push(
      `${CONFIG_NAMESPACE}:endpointMode: dnsrr cannot be combined with publishMode ingress ` +
        "(Docker refuses ingress-published ports on dnsrr services); use publishMode host or endpointMode vip",
    );
  }
  const published = [
    ["ports.web", config.ports.web],
    ["ports.mqtt", config.ports.mqtt],
    ["registry.port", config.registry.port],
  ] as const;
  const byPort = new Map<number, string>();
  for (const [key, value] of published) {
    if (value === undefined) continue;
    const clash = byPort.get(value);
    if (clash) problems.push(`${CONFIG_NAMESPACE}:${key}: port ${value} is already used by ${clash}`);
    byPort.set(value, key);
  }
  return problems;
}

/** Settings that only make sense for some providers. Messages never include the key. */
function llmProblems(config: ParsedConfig): string[] {
  const { provider, apiKey, baseUrl, model } = config.llm;
  const key = `${CONFIG_NAMESPACE}:llm`;
  const problems: string[] = [];
  if (provider === "offline") {
    if (apiKey !== undefined) problems.push(`${key}.apiKey: is set but llm.provider is offline`);
    if (baseUrl !== undefined) problems.push(`${key}.baseUrl: is set but llm.provider is offline`);
    if (model !== undefined) problems.push(`${key}.model: is set but llm.provider is offline`);
  }
  if (provider === "openai" && baseUrl === undefined) {
    problems.push(`${key}.baseUrl: is required when llm.provider is openai (e.g. http://ollama:11434/v1)`);
  }
  if (provider === "auto" && model !== undefined) {
    problems.push(`${key}.model: set llm.provider to gemini or openai to choose a model (auto may use either)`);
  }
  return problems;
}

/** Settings that only make sense together. */
function webProblems(config: ParsedConfig): string[] {
  const { tls, auth, token, certificate, privateKey } = config.web;
  const key = `${CONFIG_NAMESPACE}:web`;
  const problems: string[] = [];
  if (tls === "provided") {
    if (certificate === undefined) problems.push(`${key}.certificate: is required when web.tls is provided (pulumi config set --secret --path web.certificate < cert.pem)`);
    if (privateKey === undefined) problems.push(`${key}.privateKey: is required when web.tls is provided (pulumi config set --secret --path web.privateKey < key.pem)`);
  } else {
    if (certificate !== undefined) problems.push(`${key}.certificate: is set but web.tls is ${tls} (set web.tls to provided to use it)`);
    if (privateKey !== undefined) problems.push(`${key}.privateKey: is set but web.tls is ${tls} (set web.tls to provided to use it)`);
  }
  if (auth === "off" && token !== undefined) problems.push(`${key}.token: is set but web.auth is off`);
  return problems;
}

/** The stack keys of the variables in proto/worker-settings.json's timing rules that the stack deploys. */
const TIMING_KEYS: Readonly<Record<string, "heartbeatIntervalMs" | "heartbeatTimeoutMs" | "leaseMs" | "taskTimeoutMs" | "simulatedWorkMs">> = {
  HEARTBEAT_INTERVAL_MS: "heartbeatIntervalMs",
  HEARTBEAT_TIMEOUT_MS: "heartbeatTimeoutMs",
  LEASE_MS: "leaseMs",
  TASK_TIMEOUT_MS: "taskTimeoutMs",
  SIMULATED_WORK_MS: "simulatedWorkMs",
};

/**
 * The timing rules of proto/worker-settings.json (e.g. heartbeatTimeoutMs ≥ 3 × heartbeatIntervalMs)
 * over what this stack deploys: a set key or, unset, the services' default. A broken rule is
 * reported by the key that was set (the rule's own key first), with every value it used.
 */
function timingProblems(config: ParsedConfig, setKeys: ReadonlySet<string>): string[] {
  const keyOf = (variable: string) => TIMING_KEYS[variable];
  const value = (variable: string): number => {
    const key = keyOf(variable);
    return (key === undefined ? undefined : config[key]) ?? integerSetting(variable).default;
  };
  const label = (variable: string): string => {
    const key = keyOf(variable);
    const origin = key === undefined ? ", the workers' default" : setKeys.has(key) ? "" : ", the default";
    return `${key ?? variable} (${value(variable)}${origin})`;
  };
  return timingRuleProblems(value).map(({ rule, least }) => {
    const keys = [rule.setting, ...rule.at_least.map(([, other]) => other)].map(keyOf).filter((key) => key !== undefined);
    const blamed = keys.find((key) => setKeys.has(key)) ?? keys[0] ?? rule.setting;
    return `${CONFIG_NAMESPACE}:${blamed}: ${label(rule.setting)} must be at least ${describeAtLeast(rule, label)} = ${least}: ${rule.why}`;
  });
}

function secretProblems(config: ParsedConfig, secretKeys: Iterable<string>): string[] {
  const secret = new Set([...secretKeys].map((key) => stripNamespace(key) ?? key));
  return SECRET_FIELDS.filter((field) => field.present(config) && !secret.has(field.key)).map(
    (field) => `${CONFIG_NAMESPACE}:${field.key}: holds a secret but was not set as one (use: ${field.example})`,
  );
}

/** The config the components use: same shape, secrets as Pulumi secret outputs. */
export interface StackConfig extends Omit<ParsedConfig, "sshPrivateKey" | "llm" | "registry" | "build" | "web"> {
  web: Omit<ParsedConfig["web"], "token" | "certificate" | "privateKey"> & {
    token?: pulumi.Output<string>;
    certificate?: pulumi.Output<string>;
    privateKey?: pulumi.Output<string>;
  };
  build: Required<ParsedConfig["build"]>;
  sshPrivateKey: pulumi.Output<string>;
  llm: Omit<ParsedConfig["llm"], "apiKey"> & { apiKey?: pulumi.Output<string> };
  registry: Omit<ParsedConfig["registry"], "password"> & { password?: pulumi.Output<string> };
  /** The primary manager: the first node with role manager (it inits the swarm, builds, holds the CA and the registry). */
  manager: NodeConfig;
  /** Every manager, the primary first. */
  managers: NodeConfig[];
}

/** A user error: Pulumi prints its message (every problem, by key) and no stack trace. */
export class StackConfigError extends pulumi.RunError {
  constructor(readonly problems: string[]) {
    super(`invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`);
    this.name = "StackConfigError";
  }
}

/** Reads and validates the running stack's config; throws StackConfigError listing every problem. */
export function loadStackConfig(): StackConfig {
  const raw = pulumi.runtime.allConfig();
  const result = parseStackConfig(raw, runtimeSecretKeys(raw));
  if (!result.ok) throw new StackConfigError(result.problems);
  const { config } = result;
  if (config.sshPrivateKey !== undefined) return withSecrets(config);
  const keyFile = config.sshPrivateKeyPath as string;
  return withSecrets({ ...config, sshPrivateKey: readKeyFile(keyFile) });
}

/** The SSH key from sshPrivateKeyPath (relative to the project directory, ~ for the home directory). */
function readKeyFile(keyPath: string): string {
  const file = keyPath.startsWith("~/") ? path.join(os.homedir(), keyPath.slice(2)) : path.resolve(keyPath);
  const key = `${CONFIG_NAMESPACE}:sshPrivateKeyPath`;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new StackConfigError([`${key}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"}); set sshPrivateKey as a secret or fix the path`]);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new StackConfigError([`${key}: ${file} is not a PEM or OpenSSH private key`]);
  return text;
}

/** Wraps secret values so Pulumi tracks them as secrets from the start. */
export function withSecrets(config: ParsedConfig): StackConfig {
  const { apiKey, ...llm } = config.llm;
  const { password, ...registry } = config.registry;
  const { token, certificate, privateKey, ...web } = config.web;
  const managers = managersOf(config.nodes);
  const manager = managers[0];
  if (!manager) throw new StackConfigError([`${CONFIG_NAMESPACE}:nodes: no manager`]);
  if (config.sshPrivateKey === undefined) throw new StackConfigError([`${CONFIG_NAMESPACE}:sshPrivateKey: is required`]);
  return {
    ...config,
    build: { ...config.build, platform: config.build.platform },
    sshPrivateKey: pulumi.secret(config.sshPrivateKey),
    llm: apiKey === undefined ? llm : { ...llm, apiKey: pulumi.secret(apiKey) },
    registry: password === undefined ? registry : { ...registry, password: pulumi.secret(password) },
    web: {
      ...web,
      ...(token !== undefined && { token: pulumi.secret(token) }),
      ...(certificate !== undefined && { certificate: pulumi.secret(certificate) }),
      ...(privateKey !== undefined && { privateKey: pulumi.secret(privateKey) }),
    },
    manager,
    managers,
  };
}

/**
 * The config keys the Pulumi CLI marked secret. The SDK keeps that list in its
 * runtime store (from PULUMI_CONFIG_SECRET_KEYS, or setAllConfig under test);
 * `isConfigSecret` reads it but is not in the typed API, hence the narrow cast.
 */
function runtimeSecretKeys(raw: Record<string, string>): string[] {
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean };
  const isSecret = runtime.isConfigSecret;
  if (typeof isSecret === "function") return Object.keys(raw).filter((key) => isSecret(key));
  const fromEnv = process.env["PULUMI_CONFIG_SECRET_KEYS"] ?? "[]";
  try {
    const parsed: unknown = JSON.parse(fromEnv);
    return Array.isArray(parsed) ? parsed.filter((item): item is string => typeof item === "string") : [];
  } catch {
    return [];
  }
}

export function isIpAddress(host: string): boolean {
  return net.isIP(host) !== 0;
}
