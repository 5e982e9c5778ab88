// The glue between the lab and a deploy of the dev stack, shared by
// `npm run lab` (lab/run.ts), `npm run evidence` (lab/evidence.ts) and the
// end-to-end test (tests/e2e): the secrets the deploy needs, the manager's
// host key for the docker provider's ssh, the deploy itself (Pulumi CLI
// through the Automation API, else the live harness), and where each replica
// runs. Pure parts (checks, parsing, formatting) are in lab/stack-plan.ts.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildEngineConfig, readSecretsFile } from "./harness/stack-config";
import { parseStackConfig, type ParsedConfig } from "../components/config";
import { log, ssh } from "./lab";
import { KNOWN_HOSTS_PATH, LAB_JSON_PATH, SSH_KEY_PATH, STATE_DIR, type VmSpec } from "./plan";
import { runOk } from "./shell";
import { labStackProblems, parseTaskLines, RUNNING_TASKS_FORMAT, type LabDescription, type TaskRow } from "./stack-plan";

export const STACK = "dev";
export const PROJECT_DIR = path.resolve(__dirname, "..");
const STACK_FILE = path.join(PROJECT_DIR, `Pulumi.${STACK}.yaml`);
const REGISTRY_PASSWORD_PATH = path.join(STATE_DIR, "registry-password");
const PASSPHRASE_PATH = path.join(STATE_DIR, "pulumi-passphrase");
export const SECRETS_PATH = path.join(STATE_DIR, `secrets.${STACK}.yaml`);
const PULUMI_BACKEND_DIR = path.join(STATE_DIR, "pulumi");

/** lab/.state/lab.json, written by `lab up`. */
export function readLab(): LabDescription {
  if (!fs.existsSync(LAB_JSON_PATH)) throw new Error(`${LAB_JSON_PATH} is missing: the lab is not up (npm run lab:up)`);
  return JSON.parse(fs.readFileSync(LAB_JSON_PATH, "utf8")) as LabDescription;
}

export function managerOf(lab: LabDescription): VmSpec {
  const manager = lab.vms.find((vm) => vm.role === "manager");
  if (!manager) throw new Error(`${LAB_JSON_PATH} names no manager VM`);
  return { ...manager, volume: "" };
}

/** A random secret kept in lab/.state (0600), made once so re-deploys keep it. */
function stateSecret(file: string, bytes: number): string {
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, randomBytes(bytes).toString("hex"), { mode: 0o600 });
  }
  return fs.readFileSync(file, "utf8").trim();
}

export function registryPassword(): string {
  return stateSecret(REGISTRY_PASSWORD_PATH, 24);
}

/**
 * The dev stack's config as the program will see it (validated by the
 * program's own schema), with the lab's secrets. Throws listing every problem.
 */
export function labStackConfig(): ParsedConfig {
  const secrets = readSecretsFile(writeHarnessSecrets());
  const engine = buildEngineConfig("ai-swarm", fs.readFileSync(STACK_FILE, "utf8"), secrets);
  const parsed = parseStackConfig(engine.config, engine.secretKeys);
  if (!parsed.ok) throw new Error(`${STACK_FILE}:\n  - ${parsed.problems.join("\n  - ")}`);
  return parsed.config;
}

/**
 * lab/.state/secrets.dev.yaml for the live harness: the lab's SSH key and the
 * registry password, both by reference to files in lab/.state (no copy).
 */
export function writeHarnessSecrets(): string {
  registryPassword();
  const content = [
    "# Written by lab/stack.ts: the dev stack's secrets for the live harness (values are files next to this one).",
    "sshPrivateKey:",
    `  fromFile: ${path.relative(STATE_DIR, SSH_KEY_PATH)}`,
    "registry.password:",
    `  fromFile: ${path.basename(REGISTRY_PASSWORD_PATH)}`,
    "",
  ].join("\n");
  fs.writeFileSync(SECRETS_PATH, content, { mode: 0o600 });
  return SECRETS_PATH;
}

/** Checks the lab and the dev stack describe the same VMs; throws naming every difference. */
export function assertStackMatchesLab(lab: LabDescription, config: ParsedConfig): void {
  const problems = labStackProblems(lab, config.nodes);
  if (problems.length > 0) throw new Error(`${path.basename(STACK_FILE)} does not match the lab:\n  - ${problems.join("\n  - ")}`);
}

/**
 * The docker provider reaches the manager with the system ssh and
 * StrictHostKeyChecking=accept-new (components/providers.ts), i.e. through
 * ~/.ssh/known_hosts. A re-created lab VM has a new host key, which
 * accept-new refuses; so the entry for each lab address is replaced with the
 * key the lab pinned (read through the engine). Other entries are untouched.
 */
export function pinLabHostKeys(lab: LabDescription): void {
  const userKnownHosts = path.join(os.homedir(), ".ssh", "known_hosts");
  fs.mkdirSync(path.dirname(userKnownHosts), { recursive: true, mode: 0o700 });
  const pinned = fs.readFileSync(KNOWN_HOSTS_PATH, "utf8").split("\n").filter(Boolean);
  for (const vm of lab.vms) {
    if (fs.existsSync(userKnownHosts)) spawnSync("ssh-keygen", ["-q", "-R", vm.address, "-f", userKnownHosts], { stdio: "ignore" });
  }
  const lines = pinned.filter((line) => lab.vms.some((vm) => line.startsWith(`${vm.address} `)));
  fs.appendFileSync(userKnownHosts, lines.join("\n") + "\n", { mode: 0o600 });
  fs.rmSync(`${userKnownHosts}.old`, { force: true });
}

/** Secrets file, config check, host keys: everything a deploy needs from the lab. */
export function prepareDeploy(): { lab: LabDescription; config: ParsedConfig } {
  const lab = readLab();
  const config = labStackConfig();
  assertStackMatchesLab(lab, config);
  pinLabHostKeys(lab);
  return { lab, config };
}

export function pulumiCliOnPath(): boolean {
  return spawnSync("pulumi", ["version"], { stdio: "ignore" }).status === 0;
}

/**
 * The live harness (lab/harness/deploy.ts) as a child process, its output
 * streamed line by line. One process (node --import tsx), so its PID is the
 * one to stop; Ctrl-C stops it too.
 */
export function deployWithHarness(): Promise<void> {
  const script = path.join(PROJECT_DIR, "lab", "harness", "deploy.ts");
  const child = spawn(process.execPath, ["--import", "tsx", script, "--stack", STACK, "--secrets", SECRETS_PATH], {
    cwd: PROJECT_DIR,
    stdio: ["ignore", "inherit", "inherit"],
  });
  const stop = () => child.kill("SIGTERM");
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`cannot start the live harness: ${error.message}`)));
    child.on("close", (code, signal) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      if (code === 0) resolve();
      else reject(new Error(`the live harness failed (${signal ?? `exit ${code}`}); its message is above`));
    });
  });
}

/**
 * The real engine: `pulumi up` on the dev stack through the Automation API,
 * state in a local backend under lab/.state/pulumi, secrets encrypted with a
 * passphrase kept in lab/.state. (Cannot run on the machine this was written
 * on: no Pulumi CLI there.)
 */
export async function deployWithPulumi(): Promise<void> {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
  fs.mkdirSync(PULUMI_BACKEND_DIR, { recursive: true });
  stateSecret(PASSPHRASE_PATH, 24);
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: STACK, workDir: PROJECT_DIR },
    {
      secretsProvider: "passphrase",
      envVars: { PULUMI_BACKEND_URL: `file://${PULUMI_BACKEND_DIR}`, PULUMI_CONFIG_PASSPHRASE_FILE: PASSPHRASE_PATH },
    },
  );
  const env = { ...process.env, PULUMI_BACKEND_URL: `file://${PULUMI_BACKEND_DIR}`, PULUMI_CONFIG_PASSPHRASE_FILE: PASSPHRASE_PATH };
  setSecretConfig(stack.name, ["sshPrivateKey"], fs.readFileSync(SSH_KEY_PATH, "utf8"), env);
  setSecretConfig(stack.name, ["--path", "registry.password"], registryPassword(), env);
  const result = await stack.up({ onOutput: (out) => process.stdout.write(out) });
  log(`pulumi up: ${result.summary.result} (${JSON.stringify(result.summary.resourceChanges ?? {})})`);
}

/**
 * `pulumi config set --secret` with the value on stdin. The Automation API's
 * setConfig puts the value on the command line, where `ps` shows it.
 */
function setSecretConfig(stackName: string, keyArgs: string[], value: string, env: NodeJS.ProcessEnv): void {
  const result = spawnSync("pulumi", ["config", "set", "--secret", "--stack", stackName, ...keyArgs], {
    cwd: PROJECT_DIR,
    env,
    input: value,
    encoding: "utf8",
  });
  if (result.status !== 0) {
    throw new Error(`pulumi config set ${keyArgs.join(" ")} failed: ${result.stderr.trim() || result.error?.message || "unknown error"}`);
  }
}

/** Deploys the dev stack to the running lab with whatever engine this machine has. */
export async function deployDevStack(): Promise<void> {
  if (pulumiCliOnPath()) {
    log("deploying the dev stack with the Pulumi CLI (Automation API)");
    await deployWithPulumi();
  } else {
    log("the Pulumi CLI is not installed, so the live harness deploys instead (docs/harness.md)");
    await deployWithHarness();
  }
}

/** Runs a command on a VM over ssh with the lab key; returns its stdout. */
export function onVm(vm: VmSpec, command: string): Promise<string> {
  return runOk("ssh", ssh(vm, [command]));
}

/** The stack's services, by name, as the manager lists them. */
export async function stackServices(manager: VmSpec, stackName: string): Promise<string[]> {
  const names = (await onVm(manager, "docker service ls --format '{{.Name}}'")).split("\n").map((s) => s.trim());
  return names.filter((name) => name.startsWith(`${stackName}_`)).sort();
}

/** Every running task of the stack: `docker service ps` per service, running tasks only. */
export async function runningTasks(manager: VmSpec, stackName: string): Promise<TaskRow[]> {
  const rows: TaskRow[] = [];
  for (const service of await stackServices(manager, stackName)) {
    const out = await onVm(manager, `docker service ps --filter desired-state=running --format '${RUNNING_TASKS_FORMAT}' ${service}`);
    rows.push(...parseTaskLines(service, out));
  }
  return rows;
}
