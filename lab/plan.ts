// Pure description of the lab: which VMs exist, their addresses, and the exact
// `docker run` arguments that make each one. No I/O here, so it is unit-tested
// without an engine (lab/plan.test.ts).
import * as path from "node:path";

/** Every container, volume and network the lab makes carries this label; `down` removes by it. */
export const LAB_LABEL = "ai-swarm-lab";
export const LAB_NETWORK = "ai-swarm-lab";
/** Chosen to avoid Docker's default pools (172.17–172.27 are handed out first) and common LANs. */
export const LAB_SUBNET = "172.28.0.0/24";
export const LAB_GATEWAY = "172.28.0.1";
/** vm1 gets .11, vm2 .12, … */
const FIRST_HOST_OCTET = 11;
export const MAX_VMS = 20;
export const DEFAULT_VM_COUNT = 4;

export const VM_IMAGE = "ai-swarm-lab/vm:bookworm";
/** Base and third-party images a real manager would pull; the lab preloads them into vm1. */
export const PRELOAD_IMAGES = [
  "ai-swarm-base/debian:bookworm",
  "ai-swarm-base/debian:bookworm-slim",
  "ai-swarm-base/node:20",
  "ai-swarm-base/python:3.11",
  "ai-swarm-base/go:1.26",
  "ai-swarm-base/maven:3-jdk17",
  "ai-swarm-base/mosquitto:2",
  "ai-swarm-base/registry:2",
  "ai-swarm-base/etcd:3.4",
] as const;

export const STATE_DIR = path.join(__dirname, ".state");
/** Screenshots of the deployed page, saved by the e2e (test 5) and listed by `npm run evidence`. */
export const EVIDENCE_DIR = path.join(STATE_DIR, "evidence");
export const SSH_KEY_PATH = path.join(STATE_DIR, "ssh", "id_ed25519");
export const KNOWN_HOSTS_PATH = path.join(STATE_DIR, "ssh", "known_hosts");
/** Written by `up` for other tools (the live harness, the e2e test): VMs, addresses, key paths. */
export const LAB_JSON_PATH = path.join(STATE_DIR, "lab.json");

/**
 * What deploys to the lab remember: the live harness's state (and its key and
 * last-run summary), the Pulumi CLI's local backend and the stack variants.
 * They describe resources on the lab's VMs, so `lab down` forgets them with
 * the VMs (a fresh lab must be deployed from nothing, not from a stale state).
 */
export function isDeployState(entry: string): boolean {
  return /^harness-state\./.test(entry) || entry === "pulumi" || entry === "variants";
}

export type VmRole = "manager" | "worker";

export interface VmSpec {
  /** Container name, also the VM's hostname and its swarm node name. */
  name: string;
  role: VmRole;
  address: string;
  /** Volume holding the VM's own /var/lib/docker. */
  volume: string;
}

/** How the host lets a Docker-in-Docker VM run. */
export type IsolationMode = "privileged" | "capabilities";

/** Parses the VM count from `--vms N` or LAB_VMS; the error names the bad input. */
export function parseVmCount(raw: string | undefined, source: string): number {
  if (raw === undefined || raw.trim() === "") return DEFAULT_VM_COUNT;
  const value = raw.trim();
  if (!/^\d+$/.test(value)) {
    throw new Error(`${source} must be a whole number of VMs from 1 to ${MAX_VMS}, got '${raw}'`);
  }
  const count = Number(value);
  if (count < 1 || count > MAX_VMS) {
    throw new Error(`${source} must be from 1 to ${MAX_VMS}, got ${count}`);
  }
  return count;
}

export function vmName(index: number): string {
  return `ai-swarm-vm${index}`;
}

/** vm1 is the manager-to-be; the others are workers. */
export function planVms(count: number): VmSpec[] {
  const subnetPrefix = LAB_SUBNET.split(".").slice(0, 3).join(".");
  return Array.from({ length: count }, (_, i) => {
    const index = i + 1;
    return {
      name: vmName(index),
      role: index === 1 ? "manager" : "worker",
      address: `${subnetPrefix}.${FIRST_HOST_OCTET + i}`,
      volume: `${vmName(index)}-docker`,
    };
  });
}

/**
 * The explicit capability set that replaces --privileged where the host refuses
 * it (here: the sandbox lacks CAP_SYS_RESOURCE). Measured to run dockerd, swarm
 * mode and VXLAN overlays inside the container.
 */
const CAPABILITY_FLAGS = [
  "--cap-add", "ALL",
  "--cap-drop", "SYS_RESOURCE",
  "--security-opt", "seccomp=unconfined",
  "--security-opt", "apparmor=unconfined",
  "--security-opt", "systempaths=unconfined",
  "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
];

/** Arguments after `docker run` that create one VM. */
export function vmRunArgs(vm: VmSpec, mode: IsolationMode, authorizedKey: string): string[] {
  return [
    "-d",
    "--name", vm.name,
    "--hostname", vm.name,
    "--network", LAB_NETWORK,
    "--ip", vm.address,
    "--label", `${LAB_LABEL}=1`,
    "--label", `${LAB_LABEL}.role=${vm.role}`,
    "--restart", "no",
    "--tmpfs", "/run",
    "-v", `${vm.volume}:/var/lib/docker`,
    "-e", `LAB_AUTHORIZED_KEY=${authorizedKey}`,
    ...(mode === "privileged" ? ["--privileged"] : CAPABILITY_FLAGS),
    VM_IMAGE,
  ];
}

/** True when `docker run --privileged` failed because the host will not grant it. */
export function isPrivilegeRefusal(stderr: string): boolean {
  return /unable to apply caps|operation not permitted|privileged.*not allowed/i.test(stderr);
}

/** ssh options for reaching a lab VM as root with the lab key, pinned to the lab's known_hosts. */
export function sshOptions(keyPath: string, knownHostsPath: string): string[] {
  return [
    "-i", keyPath,
    "-o", "IdentitiesOnly=yes",
    "-o", "BatchMode=yes",
    "-o", `UserKnownHostsFile=${knownHostsPath}`,
    "-o", "StrictHostKeyChecking=yes",
    "-o", "ConnectTimeout=5",
    "-o", "LogLevel=ERROR",
  ];
}

/** One known_hosts line for a VM from its host public key ("ssh-ed25519 AAAA… comment"). */
export function knownHostsLine(address: string, hostPublicKey: string): string {
  const [type, key] = hostPublicKey.trim().split(/\s+/);
  if (!type || !key) throw new Error(`not an SSH public key: '${hostPublicKey.slice(0, 40)}'`);
  return `${address} ${type} ${key}`;
}

/** Parses `docker image ls --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}'` into name → image id. */
export function parseImageList(output: string): Map<string, string> {
  const images = new Map<string, string>();
  for (const line of output.split("\n")) {
    const [name, id] = line.trim().split(/\s+/);
    if (name && id && !name.includes("<none>")) images.set(name, id);
  }
  return images;
}

/** Formats seconds for progress lines: "7s", "1m05s". */
export function formatDuration(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
}

/** Bytes for progress lines: "812 MB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} kB`;
  if (bytes < 1024 ** 3) return `${Math.round(bytes / 1024 ** 2)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}
