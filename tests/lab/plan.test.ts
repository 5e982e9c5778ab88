import { describe, expect, it } from "vitest";
import {
  DEFAULT_VM_COUNT,
  LAB_LABEL,
  LAB_NETWORK,
  VM_IMAGE,
  formatBytes,
  formatDuration,
  isPrivilegeRefusal,
  knownHostsLine,
  parseImageList,
  parseVmCount,
  planVms,
  preloadImagesFor,
  BUILD_BASE_IMAGES,
  THIRD_PARTY_IMAGES,
  labManagerCount,
  sshOptions,
  vmRunArgs,
  isDeployState,
} from "../../lab/plan";

describe("parseVmCount", () => {
  it("defaults to five VMs when nothing is given", () => {
    expect(parseVmCount(undefined, "LAB_VMS")).toBe(DEFAULT_VM_COUNT);
    expect(parseVmCount("  ", "LAB_VMS")).toBe(5);
  });

  it("accepts a whole number in range", () => {
    expect(parseVmCount("2", "--vms")).toBe(2);
    expect(parseVmCount(" 20 ", "--vms")).toBe(20);
  });

  it.each(["0", "21", "-1", "2.5", "four", "3vms"])("rejects %s and names the input and its source", (raw) => {
    expect(() => parseVmCount(raw, "--vms")).toThrow(/--vms/);
    expect(() => parseVmCount(raw, "--vms")).toThrow(new RegExp(raw.replace(".", "\\.")));
  });
});

describe("planVms", () => {
  it("makes vm1-vm3 the managers (vm1 the primary), the others workers, and gives .11, .12, … on the lab subnet", () => {
    const vms = planVms(DEFAULT_VM_COUNT);
    expect(vms.map((vm) => [vm.name, vm.role, vm.address, vm.volume])).toEqual([
      ["ai-swarm-vm1", "manager", "172.28.0.11", "ai-swarm-vm1-docker"],
      ["ai-swarm-vm2", "manager", "172.28.0.12", "ai-swarm-vm2-docker"],
      ["ai-swarm-vm3", "manager", "172.28.0.13", "ai-swarm-vm3-docker"],
      ["ai-swarm-vm4", "worker", "172.28.0.14", "ai-swarm-vm4-docker"],
      ["ai-swarm-vm5", "worker", "172.28.0.15", "ai-swarm-vm5-docker"],
    ]);
  });

  it("has an odd number of managers: 1 below three VMs, else 3", () => {
    expect([1, 2, 3, 4, 5, 20].map(labManagerCount)).toEqual([1, 1, 3, 3, 3, 3]);
    expect(planVms(2).map((vm) => vm.role)).toEqual(["manager", "worker"]);
  });

  it("keeps addresses distinct for the largest lab", () => {
    const addresses = planVms(20).map((vm) => vm.address);
    expect(new Set(addresses).size).toBe(20);
    expect(addresses.at(-1)).toBe("172.28.0.30");
  });
});

describe("vmRunArgs", () => {
  const vm = planVms(2)[1]!;
  const key = "ssh-ed25519 AAAAC3Nza lab";

  it("labels, names and addresses the VM and gives it its own docker volume", () => {
    const args = vmRunArgs(vm, "privileged", key);
    const pairs = (flag: string) => args.flatMap((a, i) => (args[i - 1] === flag ? [a] : []));
    expect(pairs("--name")).toEqual(["ai-swarm-vm2"]);
    expect(pairs("--hostname")).toEqual(["ai-swarm-vm2"]);
    expect(pairs("--network")).toEqual([LAB_NETWORK]);
    expect(pairs("--ip")).toEqual(["172.28.0.12"]);
    expect(pairs("--label")).toEqual([`${LAB_LABEL}=1`, `${LAB_LABEL}.role=worker`]);
    expect(pairs("-v")).toContain("ai-swarm-vm2-docker:/var/lib/docker");
    expect(pairs("-e")).toEqual([`LAB_AUTHORIZED_KEY=${key}`]);
    expect(pairs("--tmpfs")).toEqual(["/run"]);
    expect(args.at(-1)).toBe(VM_IMAGE);
  });

  it("uses --privileged only in privileged mode", () => {
    expect(vmRunArgs(vm, "privileged", key)).toContain("--privileged");
    expect(vmRunArgs(vm, "privileged", key)).not.toContain("--cap-add");
  });

  it("uses the explicit capability set from DESIGN.md otherwise", () => {
    const args = vmRunArgs(vm, "capabilities", key).join(" ");
    expect(args).not.toContain("--privileged");
    for (const part of [
      "--cap-add ALL",
      "--cap-drop SYS_RESOURCE",
      "--security-opt seccomp=unconfined",
      "--security-opt apparmor=unconfined",
      "--security-opt systempaths=unconfined",
      "-v /sys/fs/cgroup:/sys/fs/cgroup:rw",
    ]) {
      expect(args).toContain(part);
    }
  });
});

describe("isPrivilegeRefusal", () => {
  it("recognises the runtime refusing the privileged capability set", () => {
    const stderr =
      "docker: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: unable to apply caps: operation not permitted: unknown.";
    expect(isPrivilegeRefusal(stderr)).toBe(true);
  });

  it("does not mistake other failures for it", () => {
    expect(isPrivilegeRefusal("docker: Error response from daemon: Address already in use.")).toBe(false);
    expect(isPrivilegeRefusal("Unable to find image 'ai-swarm-lab/vm:bookworm' locally")).toBe(false);
  });
});

describe("ssh helpers", () => {
  it("pins host keys and never prompts", () => {
    const opts = sshOptions("/k/id", "/k/known").join(" ");
    expect(opts).toContain("-i /k/id");
    expect(opts).toContain("UserKnownHostsFile=/k/known");
    expect(opts).toContain("StrictHostKeyChecking=yes");
    expect(opts).toContain("BatchMode=yes");
  });

  it("turns a host public key into a known_hosts line without its comment", () => {
    expect(knownHostsLine("172.28.0.11", "ssh-ed25519 AAAAkey root@ai-swarm-vm1\n")).toBe("172.28.0.11 ssh-ed25519 AAAAkey");
    expect(() => knownHostsLine("172.28.0.11", "garbage")).toThrow(/not an SSH public key/);
  });
});

describe("parseImageList", () => {
  it("maps names to ids and skips untagged images", () => {
    const out = "ai-swarm-base/node:20 sha256:aaa\n<none>:<none> sha256:bbb\n\nai-swarm-base/go:1.26 sha256:ccc\n";
    expect([...parseImageList(out)]).toEqual([
      ["ai-swarm-base/node:20", "sha256:aaa"],
      ["ai-swarm-base/go:1.26", "sha256:ccc"],
    ]);
  });
});

describe("formatting", () => {
  it("formats durations and sizes for progress lines", () => {
    expect(formatDuration(7.4)).toBe("7s");
    expect(formatDuration(65)).toBe("1m05s");
    expect(formatBytes(2048)).toBe("2 kB");
    expect(formatBytes(812 * 1024 * 1024)).toBe("812 MB");
    expect(formatBytes(1.5 * 1024 ** 3)).toBe("1.50 GB");
  });
});

describe("isDeployState: what lab down forgets with the VMs", () => {
  it("the harness state, its key and summary, the Pulumi backend and the stack variants; nothing else", () => {
    for (const entry of ["harness-state.dev.json", "harness-state.dev.json.key", "harness-state.dev.last-run.json", "pulumi", "variants"]) {
      expect(isDeployState(entry), entry).toBe(true);
    }
    for (const entry of ["ssh", "lab.json", "pulumi-passphrase", "dockerd.log", "dockerd.pid", "base-images"]) {
      expect(isDeployState(entry), entry).toBe(false);
    }
  });
});

describe("preloadImagesFor", () => {
  it("loads the build bases into vm1 only, and Mosquitto, the registry and etcd into every VM", () => {
    const [vm1, ...others] = planVms(DEFAULT_VM_COUNT);
    expect(preloadImagesFor(vm1!)).toEqual([...BUILD_BASE_IMAGES, ...THIRD_PARTY_IMAGES]);
    for (const vm of others) expect(preloadImagesFor(vm)).toEqual(["ai-swarm-base/mosquitto:2", "ai-swarm-base/registry:2", "ai-swarm-base/etcd:3.4"]);
    expect(BUILD_BASE_IMAGES.some((image) => (THIRD_PARTY_IMAGES as readonly string[]).includes(image))).toBe(false);
  });
});
