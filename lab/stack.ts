// The glue between the lab and a deploy of the dev stack, shared by
// `npm run lab` (lab/run.ts), `npm run evidence` (lab/evidence.ts) and the
// end-to-end test (tests/e2e): the manager's host key for the docker
// provider's ssh, the deploy itself (Pulumi CLI through the Automation API,
// else the live harness), its outputs, and where each replica runs. Pure
// parts (checks, parsing, formatting) are in lab/stack-plan.ts.
//
// Neither engine writes to the tracked Pulumi.dev.yaml: the dev stack holds no
// secrets (the program reads the lab's SSH key from sshPrivateKeyPath and
// generates the registry password), the Pulumi CLI is pointed at a copy in
// lab/.state/pulumi/ (--config-file) and, should it edit the tracked file
// anyway (`stack init` writes its encryption salt there), the file is put back
// byte for byte and the CLI's additions are kept in the copy.
import { spawn, spawnSync } from "node:child_process";
import * as https from "node:https";
import * as http from "node:http";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { summaryFileOf, type DeploySummary } from "./harness/deploy";
import { HarnessState } from "./harness/harness-state";
import { buildEngineConfig } from "./harness/stack-config";
import { parseStackConfig, WORKER_LANGUAGES, type ParsedConfig } from "../components/config";
import { rebalanceScript } from "../components/scripts";
import { serviceName } from "../components/specs";
import { log, ssh } from "./lab";
import { KNOWN_HOSTS_PATH, LAB_JSON_PATH, STATE_DIR, type VmSpec } from "./plan";
import { run, runOk } from "./shell";
import {
  currentWebUrl,
  labStackProblems,
  leaderOf,
  parseTaskLines,
  roleLines,
  RUNNING_TASKS_FORMAT,
  type HealthAnswer,
  type LabDescription,
  type TaskRow,
} from "./stack-plan";

export const STACK = "dev";
export const PROJECT_DIR = path.resolve(__dirname, "..");
export const STACK_FILE = path.join(PROJECT_DIR, `Pulumi.${STACK}.yaml`);
const PASSPHRASE_PATH = path.join(STATE_DIR, "pulumi-passphrase");
const PULUMI_BACKEND_DIR = path.join(STATE_DIR, "pulumi");
/** The copy of the stack file the Pulumi CLI reads and may write (--config-file). */
export const CLI_CONFIG_COPY = path.join(PULUMI_BACKEND_DIR, `Pulumi.${STACK}.yaml`);
export const HARNESS_STATE_PATH = path.join(STATE_DIR, `harness-state.${STACK}.json`);

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

/**
 * A stack config file's config as the program will see it (validated by the
 * program's own schema). Throws listing every problem.
 */
export function labStackConfig(configFile = STACK_FILE): ParsedConfig {
  const engine = buildEngineConfig("ai-swarm", fs.readFileSync(configFile, "utf8"), {});
  const parsed = parseStackConfig(engine.config, engine.secretKeys);
  if (!parsed.ok) throw new Error(`${configFile}:\n  - ${parsed.problems.join("\n  - ")}`);
  return parsed.config;
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

/**
 * A variant of the dev stack file for a day-two change (the e2e test scales,
 * removes a node…): Pulumi.dev.yaml with `edit` applied to its `config:`,
 * written under lab/.state/variants/. Deploy it with { configFile }.
 */
export function writeStackVariant(name: string, edit: (config: Record<string, unknown>) => void): string {
  const doc = parseYaml(fs.readFileSync(STACK_FILE, "utf8")) as { config: Record<string, unknown> };
  edit(doc.config);
  const file = path.join(STATE_DIR, "variants", `Pulumi.${STACK}.${name}.yaml`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, stringifyYaml(doc));
  return file;
}

/** Files earlier versions of the lab wrote: the stack's secrets for the harness. The program no longer needs them. */
const STALE_SECRET_FILES = [path.join(STATE_DIR, `secrets.${STACK}.yaml`), path.join(STATE_DIR, "registry-password")];

/** Config check and host keys: everything a deploy needs from the lab. */
export function prepareDeploy(configFile = STACK_FILE): { lab: LabDescription; config: ParsedConfig } {
  for (const stale of STALE_SECRET_FILES.filter((file) => fs.existsSync(file))) {
    fs.rmSync(stale);
    log(`removed ${path.relative(PROJECT_DIR, stale)}: the dev stack reads its SSH key from sshPrivateKeyPath and generates the registry password`);
  }
  const lab = readLab();
  const config = labStackConfig(configFile);
  if (configFile === STACK_FILE) assertStackMatchesLab(lab, config);
  pinLabHostKeys(lab);
  return { lab, config };
}

export function pulumiCliOnPath(): boolean {
  return spawnSync("pulumi", ["version"], { stdio: "ignore" }).status === 0;
}

/** Where a deploy reads the stack config: the tracked Pulumi.dev.yaml, or another file (day-two variants in the e2e). */
export interface DeployChoice {
  configFile?: string;
}

/** How much of the live harness's stderr a failed deploy's error repeats. */
const HARNESS_ERROR_CHARS = 4000;

/** The harness's own last message ("live harness: …", lab/harness/deploy.ts), or the tail of its stderr. */
export function harnessMessage(stderrTail: string): string {
  const at = stderrTail.lastIndexOf("live harness: ");
  const message = (at >= 0 ? stderrTail.slice(at + "live harness: ".length) : stderrTail).trim();
  return message === "" ? "it printed no error (see its output above)" : message;
}

/**
 * The live harness (lab/harness/deploy.ts) as a child process, its output
 * streamed line by line. One process (node --import tsx), so its PID is the
 * one to stop; Ctrl-C stops it too. Resolves with the run's summary.
 */
export function deployWithHarness(choice: DeployChoice = {}, destroy = false): Promise<DeploySummary> {
  const script = path.join(PROJECT_DIR, "lab", "harness", "deploy.ts");
  const args = ["--import", "tsx", script, "--stack", STACK, "--state", HARNESS_STATE_PATH];
  if (choice.configFile) args.push("--config-file", choice.configFile);
  if (destroy) args.push("--destroy");
  const child = spawn(process.execPath, args, { cwd: PROJECT_DIR, stdio: ["ignore", "inherit", "pipe"] });
  // Its stderr passes through; the tail is kept so the error names the cause (a test report may show only its errors).
  let stderrTail = "";
  child.stderr.on("data", (chunk: Buffer) => {
    process.stderr.write(chunk);
    stderrTail = (stderrTail + chunk.toString("utf8")).slice(-HARNESS_ERROR_CHARS);
  });
  const stop = () => child.kill("SIGTERM");
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`cannot start the live harness: ${error.message}`)));
    child.on("close", (code, signal) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      if (code === 0) resolve(JSON.parse(fs.readFileSync(summaryFileOf(HARNESS_STATE_PATH), "utf8")) as DeploySummary);
      else reject(new Error(`the live harness failed (${signal ?? `exit ${code}`}): ${harnessMessage(stderrTail)}`));
    });
  });
}

/** Settings the Pulumi CLI keeps in a stack file besides `config:` (the passphrase provider's salt). */
const CLI_SETTINGS = ["secretsprovider", "encryptedkey", "encryptionsalt"] as const;

/**
 * The copy the CLI reads: the tracked stack file's text, plus the encryption
 * settings the CLI wrote earlier (taken from the previous copy, or from the
 * tracked file if the CLI put them there). Pure.
 */
export function cliConfigCopy(trackedText: string, previousCopyText: string | undefined, cliWrittenText?: string): string {
  const settings = new Map<string, string>();
  for (const text of [previousCopyText, cliWrittenText]) {
    if (text === undefined) continue;
    const doc = parseYaml(text) as Record<string, unknown> | null;
    for (const key of CLI_SETTINGS) if (typeof doc?.[key] === "string") settings.set(key, doc[key] as string);
  }
  const lines = [...settings].map(([key, value]) => `${key}: ${value}`);
  return lines.length > 0 ? `${lines.join("\n")}\n${trackedText}` : trackedText;
}

/**
 * The real engine: `pulumi up` on the dev stack through the Automation API,
 * state in a local backend under lab/.state/pulumi, secrets encrypted with a
 * passphrase kept in lab/.state, the stack config read from a copy
 * (--config-file). The tracked stack file is never left changed. (Cannot run
 * on the machines this is built on: no Pulumi CLI there.)
 */
export async function deployWithPulumi(choice: DeployChoice = {}): Promise<void> {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
  fs.mkdirSync(PULUMI_BACKEND_DIR, { recursive: true });
  stateSecret(PASSPHRASE_PATH, 24);
  const source = choice.configFile ?? STACK_FILE;
  const tracked = fs.readFileSync(STACK_FILE);
  const refreshCopy = (cliWritten?: string) => {
    const previous = fs.existsSync(CLI_CONFIG_COPY) ? fs.readFileSync(CLI_CONFIG_COPY, "utf8") : undefined;
    fs.writeFileSync(CLI_CONFIG_COPY, cliConfigCopy(fs.readFileSync(source, "utf8"), previous, cliWritten), { mode: 0o600 });
  };
  refreshCopy();
  const envVars = { PULUMI_BACKEND_URL: `file://${PULUMI_BACKEND_DIR}`, PULUMI_CONFIG_PASSPHRASE_FILE: PASSPHRASE_PATH };
  try {
    const stack = await LocalWorkspace.createOrSelectStack({ stackName: STACK, workDir: PROJECT_DIR }, { secretsProvider: "passphrase", envVars });
    const now = fs.readFileSync(STACK_FILE);
    if (!now.equals(tracked)) refreshCopy(now.toString("utf8"));
    const result = await stack.up({ onOutput: (out) => process.stdout.write(out), configFile: CLI_CONFIG_COPY });
    log(`pulumi up: ${result.summary.result} (${JSON.stringify(result.summary.resourceChanges ?? {})})`);
  } finally {
    restoreTrackedFile(STACK_FILE, tracked);
  }
}

/** Puts a tracked file back byte for byte if a tool changed it; says so. */
export function restoreTrackedFile(file: string, original: Buffer): boolean {
  const now = fs.existsSync(file) ? fs.readFileSync(file) : undefined;
  if (now && now.equals(original)) return false;
  fs.writeFileSync(file, original);
  log(`${path.basename(file)} was changed by the Pulumi CLI; restored (its additions are kept in ${path.relative(PROJECT_DIR, CLI_CONFIG_COPY)})`);
  return true;
}

/** Deploys the dev stack to the running lab with whatever engine this machine has; the harness's summary when it ran. */
export async function deployDevStack(choice: DeployChoice = {}): Promise<DeploySummary | undefined> {
  if (pulumiCliOnPath()) {
    log("deploying the dev stack with the Pulumi CLI (Automation API)");
    await deployWithPulumi(choice);
    return undefined;
  }
  log("the Pulumi CLI is not installed, so the live harness deploys instead (docs/harness.md)");
  return deployWithHarness(choice);
}

/** One output of the last deploy, secrets in clear (for the lab's own checks, e.g. the generated registry password). */
export function stackOutput(name: string): unknown {
  if (pulumiCliOnPath() && fs.existsSync(PULUMI_BACKEND_DIR)) {
    const result = spawnSync("pulumi", ["stack", "output", name, "--show-secrets", "--json", "--stack", STACK], {
      cwd: PROJECT_DIR,
      encoding: "utf8",
      env: { ...process.env, PULUMI_BACKEND_URL: `file://${PULUMI_BACKEND_DIR}`, PULUMI_CONFIG_PASSPHRASE_FILE: PASSPHRASE_PATH },
    });
    if (result.status !== 0) throw new Error(`pulumi stack output ${name}: ${result.stderr.trim()}`);
    return JSON.parse(result.stdout) as unknown;
  }
  const { values } = new HarnessState(HARNESS_STATE_PATH).outputs();
  if (!(name in values)) throw new Error(`the last harness deploy has no output ${name} (${HARNESS_STATE_PATH})`);
  return values[name];
}

/** Where the deployed page's CA certificate is written for the user (and curl/browsers) to trust. */
export const WEB_CA_PATH = path.join(STATE_DIR, "web-ca.crt");

/**
 * How to open the deployed page: its URL, the CA to trust (written to
 * lab/.state/web-ca.crt) and where to get the token — never the token itself.
 */
export function webAccessLines(url = String(stackOutput("webUrl"))): string[] {
  const lines = [`web: ${url}`];
  if (url.startsWith("https:")) {
    const ca = String(stackOutput("webCaCert"));
    if (ca.includes("BEGIN CERTIFICATE")) {
      fs.writeFileSync(WEB_CA_PATH, ca);
      lines.push(`     its certificate is signed by the stack's CA: ${path.relative(PROJECT_DIR, WEB_CA_PATH)} (curl --cacert …, or trust it in the browser)`);
    }
  }
  if (String(stackOutput("webToken")) !== "web.auth is off") lines.push("     sign in with the access token: npm run --silent lab:token");
  return lines;
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

/**
 * The first manager VM (in the lab's order: the primary first) that answers
 * as a swarm manager: after the primary's VM is lost, the lab's commands go to
 * a surviving manager.
 */
export async function liveManagerOf(lab: LabDescription): Promise<VmSpec> {
  const managers = lab.vms.filter((vm) => vm.role === "manager").map((vm) => ({ ...vm, volume: "" }));
  for (const vm of managers) {
    const answer = await run("ssh", ssh(vm, ["docker", "node", "ls", "-q"]), { timeoutMs: 15000 });
    if (answer.code === 0) return vm;
  }
  throw new Error(`no manager VM answers as a swarm manager (${managers.map((vm) => vm.name).join(", ")})`);
}

/** GET /healthz on a VM's web port, from this host through the lab network; undefined when it does not answer within 5 s. */
function healthOf(address: string, port: number, ca: string | undefined): Promise<string | undefined> {
  return new Promise((resolve) => {
    const options = { host: address, port, path: "/healthz", timeout: 5000 };
    const onResponse = (res: http.IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(body));
      res.on("error", () => resolve(undefined));
    };
    // The page's certificate is checked against the stack's CA; its names are the primary's (and web.hosts),
    // not every VM's address, so only the name check is left out of this probe.
    const req =
      ca === undefined
        ? http.get(options, onResponse)
        : https.get({ ...options, ca, checkServerIdentity: () => undefined }, onResponse);
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

/**
 * What runs where after a deploy (`npm run lab`): the VMs of the master (the
 * leader found by asking each master VM's /healthz), the broker, the registry
 * and each worker language; and the page's current URL.
 */
export async function labRoles(lab: LabDescription, config: ParsedConfig): Promise<{ lines: string[]; webUrl: string; tasks: TaskRow[] }> {
  const manager = await liveManagerOf(lab);
  const tasks = await runningTasks(manager, config.stackName);
  const stackWebUrl = String(stackOutput("webUrl"));
  const ca = stackWebUrl.startsWith("https:") ? String(stackOutput("webCaCert")) : undefined;
  const masterVms = [...new Set(tasks.filter((task) => task.service === serviceName(config.stackName, "master")).map((task) => task.node))];
  const answers: HealthAnswer[] = await Promise.all(
    masterVms.map(async (vm) => {
      const address = lab.vms.find((candidate) => candidate.name === vm)?.address;
      return { vm, body: address === undefined ? undefined : await healthOf(address, config.ports.web, ca) };
    }),
  );
  const leader = leaderOf(answers);
  const leaderAddress = lab.vms.find((vm) => vm.name === leader)?.address;
  return { lines: roleLines(tasks, config.stackName, leader), webUrl: currentWebUrl(stackWebUrl, config.publishMode, leaderAddress), tasks };
}

/**
 * `npm run lab:rebalance`: the stack's rebalance script (components/scripts.ts,
 * the same one the placement snapshot runs) on a live manager, its script on
 * stdin (`sh -s`); prints its before/after lines.
 */
export async function rebalanceLab(): Promise<void> {
  const lab = readLab();
  const config = labStackConfig();
  const manager = await liveManagerOf(lab);
  const services = WORKER_LANGUAGES.map((language) => serviceName(config.stackName, `worker-${language}`));
  log(`rebalancing ${services.join(", ")} from ${manager.name}`);
  const output = await runOk("ssh", ssh(manager, ["sh", "-s"]), { input: rebalanceScript(services) });
  console.log(output);
}
