// Live harness entry point: deploys a stack by running the REAL index.ts under
// Pulumi's mock runtime with a monitor that applies every resource for real.
//
//   npx tsx lab/harness/deploy.ts --stack dev [--secrets FILE] [--state FILE]
//
// --stack    reads Pulumi.<stack>.yaml (default dev)
// --secrets  plain values for the stack's secret config (default
//            $AI_SWARM_SECRETS_FILE, else lab/.state/secrets.<stack>.yaml if it exists)
// --state    where generated random values are kept between runs
//            (default lab/.state/harness-state.<stack>.json)
//
// Exits non-zero with one clear message on the first failure.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { HarnessState } from "./harness-state";
import { isObject } from "./json";
import { LiveMonitor } from "./monitor";
import { ProviderRegistry } from "./providers";
import { isSecretMarker, Masker } from "./secrets";
import { removeTempFiles, stopAllChildren } from "./ssh";
import { buildEngineConfig, readSecretsFile, StackFileError, type EngineConfig } from "./stack-config";

// Internal parts of the SDK the harness needs: installing our monitor and waiting for its RPCs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const settings = require("@pulumi/pulumi/runtime/settings") as {
  setMockOptions(monitor: unknown, project: string, stack: string, preview: boolean): void;
  waitForRPCs(): Promise<void>;
};

const PROJECT_DIR = path.resolve(__dirname, "..", "..");

export interface DeployOptions {
  stack: string;
  projectDir: string;
  program: string;
  secretsFile?: string;
  stateFile?: string;
  log(line: string): void;
}

export interface DeployResult {
  outputs: Record<string, unknown>;
  counts: Map<string, number>;
}

/** Runs the program against the lab; rejects with a masked error on the first failure. */
export async function deploy(options: DeployOptions): Promise<DeployResult> {
  const project = projectName(options.projectDir);
  const engineConfig = loadConfig(options, project);
  const masker = new Masker();
  masker.addPublic(publicConfigStrings(engineConfig));
  masker.add(secretConfigStrings(engineConfig));
  const providers = new ProviderRegistry(dockerDefaults(engineConfig));
  let failed: (error: Error) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (failed = reject));
  const monitor = new LiveMonitor(
    { masker, providers, state: new HarnessState(options.stateFile), projectDir: options.projectDir },
    { line: options.log },
    (error) => failed(error),
  );
  await pulumi.runtime.setMocks({ newResource: () => ({ id: undefined, state: {} }), call: () => ({}) }, project, options.stack, false);
  settings.setMockOptions(monitor, project, options.stack, false);
  pulumi.runtime.setAllConfig(engineConfig.config, engineConfig.secretKeys);
  const started = Date.now();
  options.log(`deploying stack ${options.stack} of ${project} with the live harness (program ${path.relative(options.projectDir, options.program)})`);
  try {
    const run = (async () => {
      // A fresh copy of the program each run (tests deploy more than once per process).
      delete require.cache[require.resolve(options.program)];
      await pulumi.runtime.runInPulumiStack(async () => require(options.program) as Record<string, unknown>);
      await settings.waitForRPCs();
    })();
    await Promise.race([run, failure]);
    if (monitor.failure) throw monitor.failure;
  } catch (error) {
    throw new Error(masker.mask((error as Error).message));
  } finally {
    stopAllChildren();
    providers.closeAll();
  }
  options.log(`done in ${((Date.now() - started) / 1000).toFixed(1)}s: ${[...monitor.summary()].map(([k, v]) => `${v} ${k}`).join(", ")}`);
  return { outputs: maskOutputs(monitor.stackOutputs ?? {}, masker), counts: monitor.summary() };
}

function projectName(projectDir: string): string {
  const file = path.join(projectDir, "Pulumi.yaml");
  if (!fs.existsSync(file)) return "ai-swarm";
  const doc: unknown = parseYaml(fs.readFileSync(file, "utf8"));
  return isObject(doc) && typeof doc["name"] === "string" ? doc["name"] : "ai-swarm";
}

function loadConfig(options: DeployOptions, project: string): EngineConfig {
  const stackFile = path.join(options.projectDir, `Pulumi.${options.stack}.yaml`);
  if (!fs.existsSync(stackFile)) throw new StackFileError([`--stack ${options.stack}: ${stackFile} does not exist`]);
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

export function parseArgs(argv: string[]): { stack: string; secrets?: string; state?: string; program?: string } {
  const out: { stack: string; secrets?: string; state?: string; program?: string } = { stack: "dev" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = argv[i + 1];
    const known = ["--stack", "--secrets", "--state", "--program"];
    if (!known.includes(flag)) throw new Error(`unknown argument ${flag} (expected ${known.join(", ")})`);
    if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value`);
    if (flag === "--stack" && !/^[A-Za-z0-9_.-]+$/.test(value)) throw new Error(`--stack: "${value}" is not a stack name`);
    out[flag.slice(2) as "stack" | "secrets" | "state" | "program"] = value;
    i++;
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const stateDir = path.join(PROJECT_DIR, "lab", ".state");
  const defaultSecrets = path.join(stateDir, `secrets.${args.stack}.yaml`);
  const secretsFile = args.secrets ?? process.env["AI_SWARM_SECRETS_FILE"] ?? (fs.existsSync(defaultSecrets) ? defaultSecrets : undefined);
  const { outputs } = await deploy({
    stack: args.stack,
    projectDir: PROJECT_DIR,
    program: path.resolve(PROJECT_DIR, args.program ?? "index.ts"),
    secretsFile,
    stateFile: args.state ?? path.join(stateDir, `harness-state.${args.stack}.json`),
    log: (line) => console.log(line),
  });
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
