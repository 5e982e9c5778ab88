// Turns a stack file (Pulumi.<stack>.yaml) into the config the Pulumi engine
// would hand the program: a flat map "ai-swarm:<key>" → string (objects and
// lists as JSON, numbers and booleans as their text) plus the list of keys
// that hold secrets (PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS).
//
// `secure:` values are ciphertext only the Pulumi CLI can decrypt, so their
// plain values come from a separate secrets file (the lab writes one under
// lab/.state/). Every value in that file is a secret. It may fill a `secure:`
// placeholder (top-level "sshPrivateKey" or nested "registry.password") or add
// a key the stack file does not have. A `secure:` value left without a plain
// value, or a secrets-file key that would overwrite a plain value, is an error.
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { isObject, type Json } from "./json";

export interface EngineConfig {
  /** "ai-swarm:nodes" → "[{...}]", exactly as PULUMI_CONFIG carries it. */
  config: Record<string, string>;
  /** Full keys ("ai-swarm:sshPrivateKey") whose value is or contains a secret. */
  secretKeys: string[];
}

export class StackFileError extends Error {
  constructor(readonly problems: string[]) {
    super(`stack config problems:\n  - ${problems.join("\n  - ")}`);
    this.name = "StackFileError";
  }
}

/** Pure: stack-file YAML text + plain secret values → the engine's view of the config. */
export function buildEngineConfig(project: string, stackYaml: string, secretValues: Record<string, string>): EngineConfig {
  const problems: string[] = [];
  const tree = readStackTree(project, stackYaml, problems);
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(secretValues)) {
    const applied = applySecretValue(project, tree, key, value, problems);
    if (applied) secretKeys.add(applied);
  }
  for (const [fullKey, value] of Object.entries(tree)) {
    for (const leaf of secureLeaves(value, fullKey)) {
      problems.push(`${leaf}: is a secure (encrypted) value; give its plain value in the secrets file (key "${leaf}")`);
    }
  }
  if (problems.length > 0) throw new StackFileError(problems);
  const config: Record<string, string> = {};
  for (const [fullKey, value] of Object.entries(tree)) config[fullKey] = engineString(value);
  return { config, secretKeys: [...secretKeys].sort() };
}

function readStackTree(project: string, stackYaml: string, problems: string[]): Record<string, Json> {
  let doc: unknown;
  try {
    doc = parseYaml(stackYaml);
  } catch (error) {
    problems.push(`stack file: not valid YAML (${(error as Error).message.split("\n")[0]})`);
    return {};
  }
  if (doc === null || doc === undefined) return {};
  if (!isObject(doc)) {
    problems.push("stack file: expected a mapping with a `config:` section");
    return {};
  }
  const section = doc["config"];
  if (section === undefined || section === null) return {};
  if (!isObject(section)) {
    problems.push("stack file: `config:` must be a mapping of key: value");
    return {};
  }
  const tree: Record<string, Json> = {};
  for (const [key, value] of Object.entries(section)) tree[qualify(project, key)] = value;
  return tree;
}

/** "sshPrivateKey" → "ai-swarm:sshPrivateKey"; "docker:host" stays. */
function qualify(project: string, key: string): string {
  return key.includes(":") ? key : `${project}:${key}`;
}

/** Sets one secret value; returns the full top-level key it made secret. */
function applySecretValue(
  project: string,
  tree: Record<string, Json>,
  key: string,
  value: string,
  problems: string[],
): string | undefined {
  const colon = key.indexOf(":");
  const namespace = colon >= 0 ? key.slice(0, colon + 1) : `${project}:`;
  const [top, ...nested] = (colon >= 0 ? key.slice(colon + 1) : key).split(".");
  const fullKey = namespace + top;
  if (!top || nested.some((segment) => segment === "")) {
    problems.push(`secrets file: "${key}" is not a config key (expected e.g. sshPrivateKey or registry.password)`);
    return undefined;
  }
  if (nested.length === 0) {
    if (!canTakeSecret(tree[fullKey])) {
      problems.push(`secrets file: "${key}" would overwrite the plain value of ${fullKey} in the stack file`);
      return undefined;
    }
    tree[fullKey] = value;
    return fullKey;
  }
  let parent = tree[fullKey] ?? {};
  if (!isObject(parent) || isSecure(parent)) {
    problems.push(`secrets file: "${key}" needs ${fullKey} to be a mapping in the stack file`);
    return undefined;
  }
  tree[fullKey] = parent;
  for (const segment of nested.slice(0, -1)) {
    const child: Json = parent[segment] ?? {};
    if (!isObject(child) || isSecure(child)) {
      problems.push(`secrets file: "${key}": ${segment} is not a mapping in the stack file`);
      return undefined;
    }
    parent[segment] = child;
    parent = child;
  }
  const leaf = nested[nested.length - 1] as string;
  if (!canTakeSecret(parent[leaf])) {
    problems.push(`secrets file: "${key}" would overwrite a plain value in the stack file`);
    return undefined;
  }
  parent[leaf] = value;
  return fullKey;
}

function isSecure(value: Json | undefined): boolean {
  return isObject(value) && Object.keys(value).length === 1 && typeof value["secure"] === "string";
}

function canTakeSecret(existing: Json | undefined): boolean {
  return existing === undefined || existing === null || isSecure(existing);
}

function* secureLeaves(value: Json, at: string): Generator<string> {
  if (isSecure(value)) {
    yield at;
    return;
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) yield* secureLeaves(item, `${at}[${i}]`);
    return;
  }
  if (isObject(value)) for (const [key, item] of Object.entries(value)) yield* secureLeaves(item, `${at}.${key}`);
}

/** How the engine passes a value: strings as-is, everything else as JSON text. */
function engineString(value: Json): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * Reads a secrets file (YAML or JSON mapping key → string). A value may be
 * `{fromFile: <path>}` (relative to the secrets file) so a key file is not
 * copied into a second place.
 */
export function readSecretsFile(file: string): Record<string, string> {
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = parseYaml(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw new StackFileError([`secrets file ${file}: cannot be read as YAML/JSON (${(error as NodeJS.ErrnoException).code ?? "parse error"})`]);
  }
  if (doc === null || doc === undefined) return {};
  if (!isObject(doc)) throw new StackFileError([`secrets file ${file}: expected a mapping of config key → value`]);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (typeof value === "string") out[key] = value;
    else if (isObject(value) && typeof value["fromFile"] === "string" && Object.keys(value).length === 1) {
      const target = path.resolve(path.dirname(file), value["fromFile"]);
      try {
        out[key] = fs.readFileSync(target, "utf8");
      } catch {
        problems.push(`secrets file ${file}: ${key}.fromFile: cannot read ${target}`);
      }
    } else problems.push(`secrets file ${file}: ${key}: expected a string or {fromFile: <path>}`);
  }
  if (problems.length > 0) throw new StackFileError(problems);
  return out;
}
