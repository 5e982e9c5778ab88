// Live harness entry point: deploys a stack by running the REAL index.ts under
// Pulumi's mock runtime with a monitor that applies every resource for real,
// keeping a state like the engine's (lab/harness/harness-state.ts): a re-run
// leaves unchanged resources alone, updates or replaces changed ones, and at
// the end deletes what the program no longer declares (dependents first).
//
//   npx tsx lab/harness/deploy.ts --stack dev [--config-file FILE] [--secrets FILE] [--state FILE] [--destroy]
//
// --stack        the stack name (default dev); its config is Pulumi.<stack>.yaml
// --config-file  read the stack config from FILE instead (as `pulumi up --config-file`)
// --secrets      plain values for the stack's secret config (default
//                $AI_SWARM_SECRETS_FILE, else lab/.state/secrets.<stack>.yaml if it exists)
// --state        the harness state (default lab/.state/harness-state.<stack>.json)
// --destroy      delete every resource in the state instead (as `pulumi destroy`)
//
// Exits non-zero with one clear message on the first failure. Writes a summary
// of the run (what happened to each resource, warnings, time) next to the state.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { HarnessState, type StoredResource } from "./harness-state";
import { isObject, type JsonObject } from "./json";
import { KINDS, LiveMonitor, secretStringsOf, type ResourceReport } from "./monitor";
import { ProviderRegistry, providerId } from "./providers";
import { isSecretMarker, Masker } from "./secrets";
import { removeTempFiles, stopAllChildren } from "./ssh";
import { buildEngineConfig, readSecretsFile, StackFileError, type EngineConfig } from "./stack-config";
import { deleteOrder } from "./steps";
import type { ApplyContext } from "./types";

// Internal parts of the SDK the harness needs: installing our monitor and waiting for its RPCs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const settings = require("@pulumi/pulumi/runtime/settings") as {
  setMockOptions(monitor: unknown, project: string, stack: string, preview: boolean, organization?: string): void;
  waitForRPCs(): Promise<void>;
};

const PROJECT_DIR = path.resolve(__dirname, "..", "..");
/** The organization of a stack in a DIY (file) backend: always this constant (Pulumi's docs, "Stacks"). */
const ORGANIZATION = "organization";

export interface DeployOptions {
  stack: string;
  projectDir: string;
  program: string;
  /** The stack config file (default <projectDir>/Pulumi.<stack>.yaml). */
  configFile?: string;
  secretsFile?: string;
  stateFile?: string;
  log(line: string): void;
}

export interface DeploySummary {
  stack: string;
  action: "up" | "destroy";
  seconds: number;
  counts: Record<string, number>;
  resources: ResourceReport[];
  warnings: string[];
}

export interface DeployResult {
  outputs: Record<string, unknown>;
  counts: Map<string, number>;
  summary: DeploySummary;
}

/** The summary of the last run, written next to the state file. */
export function summaryFileOf(stateFile: string): string {
  return stateFile.replace(/\.json$/, "") + ".last-run.json";
}

/** Runs the program against the lab; rejects with a masked error on the first failure. */
export async function deploy(options: DeployOptions): Promise<DeployResult> {
  const project = projectName(options.projectDir);
  const engineConfig = loadConfig(options, project);
  const masker = new Masker();
  masker.addPublic(publicConfigStrings(engineConfig));
  masker.add(secretConfigStrings(engineConfig));
  const providers = new ProviderRegistry(dockerDefaults(engineConfig));
  const state = new HarnessState(options.stateFile, (text) => masker.mask(text) !== text);
  const warnings: string[] = [];
  const warn = (message: string) => {
    const masked = masker.mask(message);
    warnings.push(masked);
    options.log(`  warning: ${masked}`);
  };
  let failed: (error: Error) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (failed = reject));
  const monitor = new LiveMonitor({ masker, providers, state, projectDir: options.projectDir, warn }, { line: options.log }, (error) => failed(error));
  await pulumi.runtime.setMocks({ newResource: () => ({ id: undefined, state: {} }), call: () => ({}) }, project, options.stack, false);
  settings.setMockOptions(monitor, project, options.stack, false, ORGANIZATION);
  pulumi.runtime.setAllConfig(engineConfig.config, engineConfig.secretKeys);
  const started = Date.now();
  options.log(`deploying stack ${options.stack} of ${project} with the live harness (program ${path.relative(options.projectDir, options.program)})`);
  const reports: ResourceReport[] = [];
  // As the engine's language host (cmd/run): an error the program rejects outside any await (a throw in an apply,
  // such as the quorum guard's) fails the run with its message; the program's own log lines are the engine's diagnostics.
  const programFailed = (reason: unknown) => failed(reason instanceof Error ? reason : new Error(String(reason)));
  const programLog = captureProgramLog(warn, options.log);
  process.on("unhandledRejection", programFailed);
  try {
    const run = (async () => {
      // A fresh copy of the program each run (tests deploy more than once per process).
      delete require.cache[require.resolve(options.program)];
      await pulumi.runtime.runInPulumiStack(async () => require(options.program) as Record<string, unknown>);
      await settings.waitForRPCs();
    })();
    await Promise.race([run, failure]);
    if (monitor.failure) throw monitor.failure;
    reports.push(...monitor.reports);
    // What the program no longer declares, and what was replaced: deleted now, dependents first.
    const gone = state.all().filter((record) => !monitor.registered.has(record.urn));
    reports.push(...(await deleteResources([...state.pendingDeletes(), ...gone], { masker, providers, state, projectDir: options.projectDir, warn }, options.log)));
  } catch (error) {
    throw new Error(masker.mask((error as Error).message));
  } finally {
    process.removeListener("unhandledRejection", programFailed);
    programLog.stop();
    stopAllChildren();
    providers.closeAll();
  }
  const outputs = monitor.stackOutputs ?? {};
  const { plain, secretKeys } = plainOutputs(outputs);
  state.setOutputs(plain, secretKeys);
  const summary = summarize(options, "up", started, reports, warnings);
  options.log(`done in ${summary.seconds.toFixed(1)}s: ${describeCounts(summary.counts)}${warnings.length > 0 ? `; ${warnings.length} warning(s)` : ""}`);
  return { outputs: maskOutputs(outputs, masker), counts: new Map(Object.entries(summary.counts)), summary };
}

/** `pulumi destroy`: every resource in the state, dependents first. The program does not run. */
export async function destroy(options: Omit<DeployOptions, "program">): Promise<DeploySummary> {
  const project = projectName(options.projectDir);
  const engineConfig = loadConfig(options, project);
  const masker = new Masker();
  masker.add(secretConfigStrings(engineConfig));
  const providers = new ProviderRegistry(dockerDefaults(engineConfig));
  const state = new HarnessState(options.stateFile, (text) => masker.mask(text) !== text);
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(masker.mask(message));
    options.log(`  warning: ${masker.mask(message)}`);
  };
  const started = Date.now();
  options.log(`destroying stack ${options.stack} of ${project} with the live harness`);
  let reports: ResourceReport[];
  try {
    reports = await deleteResources([...state.pendingDeletes(), ...state.all()], { masker, providers, state, projectDir: options.projectDir, warn }, options.log);
  } catch (error) {
    throw new Error(masker.mask((error as Error).message));
  } finally {
    stopAllChildren();
    providers.closeAll();
  }
  state.setOutputs({}, []);
  const summary = summarize(options, "destroy", started, reports, warnings);
  options.log(`done in ${summary.seconds.toFixed(1)}s: ${describeCounts(summary.counts)}`);
  return summary;
}

/** Deletes stored resources in Pulumi's order, each with its stored inputs and its provider. */
async function deleteResources(records: StoredResource[], base: Omit<ApplyContext, "progress">, log: (line: string) => void): Promise<ResourceReport[]> {
  const reports: ResourceReport[] = [];
  const pending = new Set(base.state.pendingDeletes());
  for (const record of deleteOrder(records)) {
    base.masker.add(secretStringsOf(record));
    const label = `${record.type} ${record.name}`;
    const started = Date.now();
    if (record.type.startsWith("pulumi:providers:")) {
      base.state.remove(record.urn);
      continue;
    }
    const kind = KINDS[record.type];
    if (!kind) throw new Error(`${label}: in the state but of a type the harness cannot delete`);
    if (record.retainOnDelete === true) {
      // As the engine: out of the state, and the provider's delete never runs.
      if (pending.has(record)) base.state.removePendingDelete(record);
      else base.state.remove(record.urn);
      reports.push({ urn: record.urn, type: record.type, name: record.name, outcome: "retained", seconds: 0 });
      log(`  ✓ retained ${label} (retainOnDelete: dropped from the state, not deleted)`);
      continue;
    }
    registerStoredProvider(record, base);
    log(`  … deleting ${label}`);
    try {
      await kind.delete?.(record, { ...base, progress: (message) => log(`    ${base.masker.mask(message)}`) });
    } catch (error) {
      throw new Error(`${label}: delete failed after ${((Date.now() - started) / 1000).toFixed(1)}s: ${(error as Error).message}`);
    }
    if (pending.has(record)) base.state.removePendingDelete(record);
    else base.state.remove(record.urn);
    reports.push({ urn: record.urn, type: record.type, name: record.name, outcome: "deleted", seconds: (Date.now() - started) / 1000 });
    log(`  ✓ deleted ${label} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  }
  return reports;
}

/** A delete needs its provider even when the program no longer declares it: register it from the state. */
function registerStoredProvider(record: StoredResource, base: Omit<ApplyContext, "progress">): void {
  if (record.provider === "") return;
  const urn = record.provider.slice(0, record.provider.lastIndexOf("::"));
  const stored = base.state.get(urn);
  if (stored && stored.id === providerId(record.provider)) base.providers.register(stored.id, stored.type, stored.name, stored.inputs);
}

function summarize(options: Omit<DeployOptions, "program">, action: "up" | "destroy", started: number, reports: ResourceReport[], warnings: string[]): DeploySummary {
  const counts: Record<string, number> = {};
  for (const report of reports) counts[report.outcome] = (counts[report.outcome] ?? 0) + 1;
  const summary: DeploySummary = { stack: options.stack, action, seconds: (Date.now() - started) / 1000, counts, resources: reports, warnings };
  if (options.stateFile) fs.writeFileSync(summaryFileOf(options.stateFile), JSON.stringify(summary, null, 2), { mode: 0o600 });
  return summary;
}

/** "3 created, 44 unchanged". */
export function describeCounts(counts: Record<string, number>): string {
  const parts = Object.entries(counts).map(([outcome, count]) => `${count} ${outcome}`);
  return parts.length > 0 ? parts.join(", ") : "nothing to do";
}

/** Stack outputs as plain JSON for the state, and which top-level keys were secret. */
function plainOutputs(outputs: Record<string, unknown>): { plain: JsonObject; secretKeys: string[] } {
  const secretKeys: string[] = [];
  const unwrap = (value: unknown, top?: string): unknown => {
    if (isSecretMarker(value)) {
      if (top) secretKeys.push(top);
      return unwrap(value.value);
    }
    if (Array.isArray(value)) return value.map((item) => unwrap(item));
    if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrap(v)]));
    return value ?? null;
  };
  const plain: JsonObject = {};
  for (const [key, value] of Object.entries(outputs)) {
    const before = secretKeys.length;
    plain[key] = unwrap(value, key) as JsonObject[string];
    if (secretKeys.length === before && JSON.stringify(value).includes("1b47061264138c4ac30d75fd1eb44270")) secretKeys.push(key);
  }
  return { plain, secretKeys };
}

function projectName(projectDir: string): string {
  const file = path.join(projectDir, "Pulumi.yaml");
  if (!fs.existsSync(file)) return "ai-swarm";
  const doc: unknown = parseYaml(fs.readFileSync(file, "utf8"));
  return isObject(doc) && typeof doc["name"] === "string" ? doc["name"] : "ai-swarm";
}

function loadConfig(options: Omit<DeployOptions, "program">, project: string): EngineConfig {
  const stackFile = options.configFile ?? path.join(options.projectDir, `Pulumi.${options.stack}.yaml`);
  if (!fs.existsSync(stackFile)) throw new StackFileError([`${options.configFile ? "--config-file" : `--stack ${options.stack}`}: ${stackFile} does not exist`]);
  const secrets = options.secretsFile ? readSecretsFile(options.secretsFile) : {};
  return buildEngineConfig(project, fs.readFileSync(stackFile, "utf8"), secrets);
}

/** Every string of the plain (non-secret) config, e.g. node addresses: never masked. */
function publicConfigStrings(config: EngineConfig): string[] {
  const out: string[] = [];
  const walk = (value: unknown) => {
    if (typeof value === "string") out.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (isObject(value)) Object.values(value).forEach(walk);
  };
  for (const [key, raw] of Object.entries(config.config)) {
    if (config.secretKeys.includes(key)) continue;
    try {
      walk(JSON.parse(raw));
    } catch {
      out.push(raw);
    }
  }
  return out;
}

/** Every string inside a secret config value, so none of them is ever printed. */
function secretConfigStrings(config: EngineConfig): string[] {
  const out: string[] = [];
  const walk = (value: unknown) => {
    if (typeof value === "string") out.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (isObject(value)) Object.values(value).forEach(walk);
  };
  for (const key of config.secretKeys) {
    const raw = config.config[key] ?? "";
    out.push(raw);
    try {
      walk(JSON.parse(raw));
    } catch {
      // a plain string secret: already added
    }
  }
  return out;
}

/** docker:host / docker:sshOpts from the stack config act as the default docker provider. */
function dockerDefaults(config: EngineConfig): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const host = config.config["docker:host"];
  if (host) out["host"] = host;
  const sshOpts = config.config["docker:sshOpts"];
  if (sshOpts) out["sshOpts"] = JSON.parse(sshOpts) as string[];
  return out;
}

function maskOutputs(value: unknown, masker: Masker): Record<string, unknown> {
  const walk = (item: unknown): unknown => {
    if (isSecretMarker(item)) return "[secret]";
    if (typeof item === "string") return masker.mask(item);
    if (Array.isArray(item)) return item.map(walk);
    if (isObject(item)) return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, walk(v)]));
    return item;
  };
  return walk(value) as Record<string, unknown>;
}

// ---- command line ----------------------------------------------------------

export interface CliArgs {
  stack: string;
  secrets?: string;
  state?: string;
  program?: string;
  configFile?: string;
  destroy: boolean;
}

export function parseArgs(argv: string[]): CliArgs {
  const out: CliArgs = { stack: "dev", destroy: false };
  const known = ["--stack", "--secrets", "--state", "--program", "--config-file", "--destroy"];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    if (!known.includes(flag)) throw new Error(`unknown argument ${flag} (expected ${known.join(", ")})`);
    if (flag === "--destroy") {
      out.destroy = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value`);
    if (flag === "--stack" && !/^[A-Za-z0-9_.-]+$/.test(value)) throw new Error(`--stack: "${value}" is not a stack name`);
    if (flag === "--config-file") out.configFile = value;
    else out[flag.slice(2) as "stack" | "secrets" | "state" | "program"] = value;
    i++;
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const stateDir = path.join(PROJECT_DIR, "lab", ".state");
  const defaultSecrets = path.join(stateDir, `secrets.${args.stack}.yaml`);
  const secretsFile = args.secrets ?? process.env["AI_SWARM_SECRETS_FILE"] ?? (fs.existsSync(defaultSecrets) ? defaultSecrets : undefined);
  const common = {
    stack: args.stack,
    projectDir: PROJECT_DIR,
    ...(args.configFile !== undefined && { configFile: path.resolve(args.configFile) }),
    secretsFile,
    stateFile: args.state ?? path.join(stateDir, `harness-state.${args.stack}.json`),
    log: (line: string) => console.log(line),
  };
  if (args.destroy) {
    await destroy(common);
    return;
  }
  const { outputs } = await deploy({ ...common, program: path.resolve(PROJECT_DIR, args.program ?? "index.ts") });
  console.log("\nOutputs:");
  for (const [key, value] of Object.entries(outputs)) console.log(`  ${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
}

if (require.main === module) {
  main()
    .then(() => {
      removeTempFiles();
      process.exit(0);
    })
    .catch((error: Error) => {
      console.error(`\nlive harness: ${error.message}`);
      removeTempFiles();
      process.exit(1);
    });
}

/**
 * Without an engine, the SDK's pulumi.log writes "warning: [runtime] …" (and "error: [runtime] …") to
 * console.warn / console.error. While the program runs those become the harness's warnings (in the
 * summary, masked) and error lines, as the engine prints a program's diagnostics; the rest passes through.
 */
function captureProgramLog(warn: (message: string) => void, log: (line: string) => void): { stop(): void } {
  const original = { warn: console.warn, error: console.error };
  const route = (prefix: string, handle: (message: string) => void, fallback: (...args: unknown[]) => void) => (...args: unknown[]) => {
    const [first] = args;
    if (args.length === 1 && typeof first === "string" && first.startsWith(prefix)) handle(first.slice(prefix.length));
    else fallback(...args);
  };
  console.warn = route("warning: [runtime] ", warn, original.warn);
  console.error = route("error: [runtime] ", (message) => log(`  error: ${message}`), original.error);
  return {
    stop() {
      console.warn = original.warn;
      console.error = original.error;
    },
  };
}
