// The lab's operations: up, status, down. Each step prints a progress line;
// every step is idempotent, so `up` can be re-run after a failure.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  isDeployState,
  IsolationMode,
  KNOWN_HOSTS_PATH,
  LAB_GATEWAY,
  LAB_JSON_PATH,
  LAB_LABEL,
  LAB_NETWORK,
  LAB_SUBNET,
  SSH_KEY_PATH,
  STATE_DIR,
  VmSpec,
  formatBytes,
  formatDuration,
  isPrivilegeRefusal,
  knownHostsLine,
  parseImageList,
  planVms,
  preloadImagesFor,
  sshOptions,
  vmRunArgs,
} from "./plan";
import { pipe, run, runOk, sleep } from "./shell";

const LABEL_FILTER = `label=${LAB_LABEL}=1`;
const VM_READY_TIMEOUT_S = 180;

export function log(message: string): void {
  console.log(`[lab] ${message}`);
}

const since = (startMs: number) => formatDuration((Date.now() - startMs) / 1000);

// ------------------------------------------------------------------ up

export async function up(count: number): Promise<void> {
  const start = Date.now();
  const isolationOverride = parseIsolationOverride(process.env.LAB_ISOLATION);
  await runLabScript("engine.sh", ["start"]);
  await runLabScript("base-images.sh", []);
  const publicKey = ensureLabKey();
  await ensureNetwork();
  const vms = planVms(count);
  await warnAboutExtraVms(vms);
  const mode = await createVms(vms, publicKey, isolationOverride);
  await Promise.all(vms.map((vm) => waitForDockerd(vm)));
  await writeKnownHosts(vms);
  await Promise.all(vms.map((vm) => waitForSsh(vm)));
  writeLabJson(vms, mode);
  await preloadImages(vms);
  log(`lab up: ${vms.length} VMs (${vms.map((vm) => `${vm.name} ${vm.address}`).join(", ")}) in ${since(start)}`);
  log(`ssh: ssh ${sshOptions(SSH_KEY_PATH, KNOWN_HOSTS_PATH).join(" ")} root@${vms[0]!.address}`);
}

/**
 * One more VM for the running lab, as an operator buys a new machine after
 * losing one: vm<index> at the plan's address, with the third-party images
 * loaded, its host key pinned and lab.json listing it. Unlike `up`, it keeps
 * the deploy state: the other VMs still hold what it describes. (The e2e's
 * replacement of a lost primary; a worker by the plan until a deploy names it.)
 */
export async function addVm(index: number): Promise<VmSpec> {
  const start = Date.now();
  const vm = planVms(index)[index - 1] as VmSpec;
  if ((await containerState(vm.name)) !== undefined) throw new Error(`${vm.name} exists already: add a VM with a new index`);
  const description = JSON.parse(fs.readFileSync(LAB_JSON_PATH, "utf8")) as { isolation: IsolationMode; vms: Pick<VmSpec, "name" | "role" | "address">[] };
  await runOk("docker", ["volume", "create", "--label", `${LAB_LABEL}=1`, vm.volume]);
  await startVm(vm, ensureLabKey(), description.isolation);
  await waitForDockerd(vm);
  fs.appendFileSync(KNOWN_HOSTS_PATH, `${await hostKeyLine(vm)}\n`, { mode: 0o600 });
  await waitForSsh(vm);
  description.vms.push({ name: vm.name, role: vm.role, address: vm.address });
  fs.writeFileSync(LAB_JSON_PATH, JSON.stringify(description, null, 2) + "\n");
  await copyImages(vm, preloadImagesFor(vm));
  log(`added ${vm.name} (${vm.address}) to the lab in ${since(start)}`);
  return vm;
}

async function runLabScript(script: string, args: string[]): Promise<void> {
  const result = await run("bash", [path.join(__dirname, script), ...args], { inheritOutput: true });
  if (result.code !== 0) throw new Error(`lab/${script} ${args.join(" ")} failed (exit ${result.code}); see its output above`);
}

/** The lab's own ed25519 key; the private half stays in lab/.state/ssh and is never printed. */
function ensureLabKey(): string {
  const publicPath = `${SSH_KEY_PATH}.pub`;
  if (!fs.existsSync(SSH_KEY_PATH) || !fs.existsSync(publicPath)) {
    fs.mkdirSync(path.dirname(SSH_KEY_PATH), { recursive: true, mode: 0o700 });
    fs.rmSync(SSH_KEY_PATH, { force: true });
    fs.rmSync(publicPath, { force: true });
    const result = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ai-swarm-lab", "-f", SSH_KEY_PATH]);
    if (result.status !== 0) throw new Error(`ssh-keygen failed: ${result.stderr?.toString().trim()}`);
    log(`made the lab SSH key (${SSH_KEY_PATH})`);
  }
  return fs.readFileSync(publicPath, "utf8").trim();
}

async function ensureNetwork(): Promise<void> {
  const existing = await run("docker", ["network", "inspect", "--format", `{{range .IPAM.Config}}{{.Subnet}}{{end}} {{index .Labels "${LAB_LABEL}"}}`, LAB_NETWORK]);
  if (existing.code === 0) {
    const [subnet, label] = existing.stdout.trim().split(" ");
    if (label !== "1") throw new Error(`a network named ${LAB_NETWORK} exists but was not made by the lab (no ${LAB_LABEL}=1 label); remove or rename it`);
    if (subnet !== LAB_SUBNET) throw new Error(`network ${LAB_NETWORK} has subnet ${subnet}, expected ${LAB_SUBNET}; run the lab's down first`);
    log(`network ${LAB_NETWORK} (${LAB_SUBNET}) exists`);
    return;
  }
  await runOk("docker", ["network", "create", "--driver", "bridge", "--subnet", LAB_SUBNET, "--gateway", LAB_GATEWAY,
    "--label", `${LAB_LABEL}=1`, LAB_NETWORK]);
  log(`created network ${LAB_NETWORK} (${LAB_SUBNET})`);
}

async function warnAboutExtraVms(vms: VmSpec[]): Promise<void> {
  const names = (await runOk("docker", ["ps", "-a", "--filter", LABEL_FILTER, "--format", "{{.Names}}"])).split("\n").filter(Boolean);
  const extra = names.filter((name) => !vms.some((vm) => vm.name === name));
  if (extra.length > 0) log(`note: lab containers beyond the ${vms.length} asked for are left as they are: ${extra.join(", ")}`);
}

export async function containerState(name: string): Promise<string | undefined> {
  const result = await run("docker", ["inspect", "--format", "{{.State.Status}}", name]);
  return result.code === 0 ? result.stdout.trim() : undefined;
}

/** Creates (or starts) every VM; returns the isolation mode the host accepted. */
async function createVms(vms: VmSpec[], publicKey: string, isolationOverride: IsolationMode | undefined): Promise<IsolationMode> {
  let mode = isolationOverride;
  let created = false;
  for (const vm of vms) {
    const state = await containerState(vm.name);
    if (state === "running") {
      log(`${vm.name} (${vm.address}) is already running`);
      continue;
    }
    if (state !== undefined) {
      log(`${vm.name} exists (${state}); starting it`);
      await runOk("docker", ["start", vm.name]);
      continue;
    }
    await runOk("docker", ["volume", "create", "--label", `${LAB_LABEL}=1`, vm.volume]);
    mode = await startVm(vm, publicKey, mode);
    created = true;
  }
  // A new VM knows nothing of earlier deploys: their state no longer describes the lab.
  const forgotten = created ? forgetDeployState() : [];
  if (forgotten.length > 0) log(`a VM was created anew, so the earlier deploy state is forgotten (${forgotten.join(", ")})`);
  return mode ?? (await modeOfRunningVm(vms[0]!));
}

function parseIsolationOverride(raw: string | undefined): IsolationMode | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (raw === "privileged" || raw === "capabilities") return raw;
  throw new Error(`LAB_ISOLATION must be 'privileged' or 'capabilities', got '${raw}'`);
}

/** Tries --privileged first (unless a mode is already known) and falls back to the capability set. */
async function startVm(vm: VmSpec, publicKey: string, known: IsolationMode | undefined): Promise<IsolationMode> {
  const started = Date.now();
  const tryMode = known ?? "privileged";
  const attempt = await run("docker", ["run", ...vmRunArgs(vm, tryMode, publicKey)]);
  if (attempt.code === 0) {
    log(`started ${vm.name} (${vm.address}, ${vm.role}, ${tryMode}) in ${since(started)}`);
    return tryMode;
  }
  await run("docker", ["rm", "-f", "-v", vm.name]);
  if (tryMode !== "privileged" || !isPrivilegeRefusal(attempt.stderr)) {
    throw new Error(`starting ${vm.name} failed: ${attempt.stderr.trim()}`);
  }
  log(`this host refuses --privileged (${firstLine(attempt.stderr)}); using the explicit capability set instead`);
  await runOk("docker", ["run", ...vmRunArgs(vm, "capabilities", publicKey)]);
  log(`started ${vm.name} (${vm.address}, ${vm.role}, capabilities) in ${since(started)}`);
  return "capabilities";
}

async function modeOfRunningVm(vm: VmSpec): Promise<IsolationMode> {
  const privileged = await runOk("docker", ["inspect", "--format", "{{.HostConfig.Privileged}}", vm.name]);
  return privileged === "true" ? "privileged" : "capabilities";
}

function firstLine(text: string): string {
  const line = text.trim().split("\n")[0] ?? "";
  return line.replace(/^docker: Error response from daemon: /, "").slice(0, 160);
}

/** Polls `check` once a second until it returns true; a progress line every 5 s. */
async function waitUntil(what: string, vm: VmSpec, check: () => Promise<boolean>): Promise<void> {
  const start = Date.now();
  let lastReport = start;
  for (;;) {
    if (await check()) {
      log(`${vm.name}: ${what} answers (${since(start)})`);
      return;
    }
    const state = await containerState(vm.name);
    if (state !== "running") {
      const logs = await run("docker", ["logs", "--tail", "20", vm.name]);
      throw new Error(`${vm.name} stopped (${state ?? "gone"}) while waiting for ${what}; its last log lines:\n${logs.stdout}${logs.stderr}`);
    }
    if ((Date.now() - start) / 1000 > VM_READY_TIMEOUT_S) {
      throw new Error(`${vm.name}: ${what} did not answer within ${VM_READY_TIMEOUT_S}s (docker logs ${vm.name})`);
    }
    if (Date.now() - lastReport >= 5000) {
      log(`${vm.name}: waiting for ${what}… ${since(start)}`);
      lastReport = Date.now();
    }
    await sleep(1000);
  }
}

function waitForDockerd(vm: VmSpec): Promise<void> {
  return waitUntil("dockerd", vm, async () => (await run("docker", ["exec", vm.name, "docker", "info", "--format", "{{.ServerVersion}}"], { timeoutMs: 15000 })).code === 0);
}

/** `ssh` arguments that run `remoteCommand` on a VM as root with the lab key (a remote shell joins the words). */
export function ssh(vm: VmSpec, remoteCommand: string[]): string[] {
  return [...sshOptions(SSH_KEY_PATH, KNOWN_HOSTS_PATH), `root@${vm.address}`, ...remoteCommand];
}

function waitForSsh(vm: VmSpec): Promise<void> {
  return waitUntil("sshd", vm, async () => (await run("ssh", ssh(vm, ["true"]), { timeoutMs: 15000 })).code === 0);
}

/**
 * Pins each VM's host key, read through the engine (not over the network), so
 * ssh runs with StrictHostKeyChecking=yes and never trusts a key on first sight.
 */
async function writeKnownHosts(vms: VmSpec[]): Promise<void> {
  const lines: string[] = [];
  for (const vm of vms) lines.push(await hostKeyLine(vm));
  fs.writeFileSync(KNOWN_HOSTS_PATH, lines.join("\n") + "\n", { mode: 0o600 });
}

/** The VM's known_hosts line, its host key read through the engine. */
async function hostKeyLine(vm: VmSpec): Promise<string> {
  await waitUntil("host key", vm, async () => (await run("docker", ["exec", vm.name, "test", "-s", "/etc/ssh/ssh_host_ed25519_key.pub"])).code === 0);
  return knownHostsLine(vm.address, await runOk("docker", ["exec", vm.name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]));
}

function writeLabJson(vms: VmSpec[], isolation: IsolationMode): void {
  const description = {
    network: LAB_NETWORK,
    subnet: LAB_SUBNET,
    isolation,
    sshUser: "root",
    sshPort: 22,
    sshKeyPath: SSH_KEY_PATH,
    knownHostsPath: KNOWN_HOSTS_PATH,
    vms: vms.map(({ name, role, address }) => ({ name, role, address })),
  };
  fs.writeFileSync(LAB_JSON_PATH, JSON.stringify(description, null, 2) + "\n");
}

/**
 * Loads the images each VM needs (preloadImagesFor: the build bases into vm1,
 * the third-party images into every VM) the way an operator's nodes would get
 * them: `docker save | ssh VM docker load`, one save per VM for all it lacks,
 * so shared layers travel once. One VM at a time: the host has 2 cores.
 */
async function preloadImages(vms: VmSpec[]): Promise<void> {
  for (const vm of vms) await copyImages(vm, preloadImagesFor(vm));
}

/** Sends the images a VM lacks (or has in another version) with `docker save | ssh VM docker load`; returns those sent. */
export async function copyImages(vm: VmSpec, images: string[]): Promise<string[]> {
  const start = Date.now();
  const remote = parseImageList(await runOk("ssh", ssh(vm, ["docker", "image", "ls", "--no-trunc", "--format", "'{{.Repository}}:{{.Tag}} {{.ID}}'"])));
  const missing: string[] = [];
  for (const image of images) {
    const local = await run("docker", ["image", "inspect", "--format", "{{.Id}}", image]);
    if (local.code !== 0) throw new Error(`image ${image} is not on this host, so it cannot be loaded into ${vm.name}: lab/base-images.sh builds it`);
    const localId = local.stdout.trim();
    if (remote.get(image) !== localId) missing.push(image);
  }
  if (missing.length === 0) {
    log(`${vm.name} already has ${images.join(", ")}`);
    return [];
  }
  log(`loading ${missing.length} images into ${vm.name} (docker save | ssh docker load): ${missing.join(", ")}`);
  let lastReport = Date.now();
  await pipe({ command: "docker", args: ["save", ...missing] }, { command: "ssh", args: ssh(vm, ["docker", "load", "-q"]) }, (bytes) => {
    if (Date.now() - lastReport >= 5000) {
      log(`  ${formatBytes(bytes)} sent… ${since(start)}`);
      lastReport = Date.now();
    }
  }, (bytes) => log(`  all ${formatBytes(bytes)} sent (${since(start)}); waiting for docker load on ${vm.name}…`));
  log(`loaded ${missing.length} images into ${vm.name} in ${since(start)}`);
  return missing;
}

// ------------------------------------------------------------------ status

export async function status(): Promise<void> {
  if (!(await engineAnswers())) {
    log("no Docker engine answers (lab/engine.sh start); the lab is down");
    return;
  }
  const rows = (await runOk("docker", ["ps", "-a", "--filter", LABEL_FILTER, "--format", "{{.Names}}\t{{.State}}"]))
    .split("\n").filter(Boolean).map((line) => line.split("\t") as [string, string]).sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }));
  if (rows.length === 0) {
    log(`the lab is down (no containers labelled ${LAB_LABEL}=1)`);
    return;
  }
  const planned = planVms(rows.length);
  console.log(["VM", "STATE", "ADDRESS", "SSH", "DOCKER", "SWARM"].map((h, i) => h.padEnd([16, 9, 13, 5, 16, 0][i]!)).join(" "));
  for (const [name, state] of rows) {
    const vm = planned.find((p) => p.name === name) ?? { name, role: "worker", address: "?", volume: "" };
    const address = await runOk("docker", ["inspect", "--format", `{{(index .NetworkSettings.Networks "${LAB_NETWORK}").IPAddress}}`, name]).catch(() => "?");
    let docker = "-";
    let swarm = "-";
    let sshState = "-";
    if (state === "running") {
      const info = await run("docker", ["exec", name, "docker", "info", "--format", "{{.ServerVersion}}|{{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}"], { timeoutMs: 15000 });
      if (info.code === 0) {
        const [version, nodeState, manager] = info.stdout.trim().split("|");
        docker = version ?? "?";
        swarm = nodeState === "active" ? (manager === "true" ? "active (manager)" : "active (worker)") : nodeState ?? "?";
      } else {
        docker = "not answering";
      }
      sshState = (await run("ssh", ssh({ ...vm, address }, ["true"]), { timeoutMs: 15000 })).code === 0 ? "ok" : "no";
    }
    console.log([name.padEnd(16), state.padEnd(9), address.padEnd(13), sshState.padEnd(5), docker.padEnd(16), swarm].join(" "));
  }
}

async function engineAnswers(): Promise<boolean> {
  return (await run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 15000 })).code === 0;
}

// ------------------------------------------------------------------ down

/** Removes exactly what the lab made: containers, volumes and networks labelled ai-swarm-lab=1. */
export async function down(): Promise<void> {
  const start = Date.now();
  if (!(await engineAnswers())) {
    log("no Docker engine answers; nothing to remove");
    return;
  }
  const containers = await labelled(["ps", "-aq"]);
  if (containers.length > 0) {
    log(`removing ${containers.length} VM containers…`);
    // One `docker rm` per VM, in parallel: each has a whole engine's data to unmount.
    await Promise.all(containers.map((id) => runOk("docker", ["rm", "-f", "-v", id])));
  }
  const volumes = await labelled(["volume", "ls", "-q"]);
  if (volumes.length > 0) await runOk("docker", ["volume", "rm", ...volumes]);
  const networks = await labelled(["network", "ls", "-q"]);
  if (networks.length > 0) await runOk("docker", ["network", "rm", ...networks]);
  fs.rmSync(KNOWN_HOSTS_PATH, { force: true });
  fs.rmSync(LAB_JSON_PATH, { force: true });
  const states = forgetDeployState();
  log(
    `lab down: removed ${containers.length} containers, ${volumes.length} volumes, ${networks.length} networks` +
      `${states.length > 0 ? ` and the deploy state (${states.join(", ")})` : ""} in ${since(start)}`,
  );
}

/** Removes what deploys remembered about the lab's VMs (see isDeployState); returns what it removed. */
function forgetDeployState(): string[] {
  const states = fs.existsSync(STATE_DIR) ? fs.readdirSync(STATE_DIR).filter(isDeployState) : [];
  for (const entry of states) fs.rmSync(path.join(STATE_DIR, entry), { recursive: true, force: true });
  return states;
}

async function labelled(listCommand: string[]): Promise<string[]> {
  const out = await runOk("docker", [...listCommand, "--filter", LABEL_FILTER]);
  return out.split("\n").map((s) => s.trim()).filter(Boolean);
}
