// The shell the program runs on the nodes. Every script is syntax-checked by
// the system's POSIX sh. The ones that need only standard tools (openssl,
// files) run for real in a temp directory. The swarm ones need a Docker
// engine, which is out of reach here: they run against a small fake `docker`
// on PATH that records its arguments and answers from a state file — enough to
// check the decisions (init only when not in a swarm, the token from stdin,
// which labels are removed). The live lab harness runs them on real engines.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  asRoot,
  dispatcherHeartbeatScript,
  drainAndRemoveScript,
  joinTokenScript,
  nodeLabelScript,
  placementScript,
  registryReadyScript,
  readCaScript,
  installCaScript,
  registryTlsScript,
  removeRegistryCaScript,
  webTlsScript,
  drainRemovedNodesScript,
  pinImagesScript,
  pullImagesScript,
  REBALANCE_PAUSE_LABEL,
  rebalanceScript,
  shellQuote,
  UNEVEN_SPREAD_AWK,
  swarmInitScript,
  swarmJoinScript,
  swarmLeaveScript,
  swarmRejoinScript,
  removeNodesScript,
  nodeRolesScript,
  knownNodeIdsScript,
  writeStdinToFileScript,
} from "../../components/scripts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ai-swarm-scripts-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function openssl(...args: string[]): string {
  const result = spawnSync("openssl", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(result.stderr);
  return result.stdout;
}

function sh(script: string, options: { stdin?: string; env?: Record<string, string> } = {}) {
  const result = spawnSync("sh", ["-c", script], {
    input: options.stdin ?? "",
    encoding: "utf8",
    env: { ...process.env, ...options.env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const ALL_SCRIPTS: [string, string][] = [
  ["swarm init", swarmInitScript("10.0.0.1")],
  ["swarm init with an address pool", swarmInitScript("10.0.0.1", { cidr: "172.29.0.0/16", maskLength: 24 })],
  ["join token", joinTokenScript("worker")],
  ["join", swarmJoinScript("10.0.0.2", "10.0.0.1")],
  ["leave", swarmLeaveScript()],
  ["labels", nodeLabelScript("abc123", { zone: "a", "ai-swarm.node": "vm2" }, "vm2")],
  ["drain", drainAndRemoveScript("abc123")],
  ["tls", registryTlsScript("IP:10.0.0.1", "10.0.0.1")],
  ["read the CA", readCaScript()],
  ["install the CA", installCaScript()],
  ["write file", writeStdinToFileScript("/etc/docker/certs.d/10.0.0.1:5000/ca.crt", "644")],
  ["remove ca", removeRegistryCaScript("10.0.0.1:5000")],
  ["registry ready", registryReadyScript("10.0.0.1:5000", "aiswarm")],
  ["placement", placementScript(["ai-system_worker-go"])],
  ["web tls", webTlsScript("IP:10.0.0.1,DNS:chat.example", "10.0.0.1")],
  ["drain removed nodes", drainRemovedNodesScript(["vm1", "vm2"])],
  ["rejoin", swarmRejoinScript("10.0.0.2", "10.0.0.1", { name: "vm2", role: "worker" })],
  ["rejoin as a manager", swarmRejoinScript("10.0.0.2", "10.0.0.1", { name: "vm2", role: "manager" })],
  ["known node ids", knownNodeIdsScript(["vm1", "vm2"])],
  ["remove nodes", removeNodesScript(["vm1", "vm3"])],
  ["node roles", nodeRolesScript([{ name: "vm1", role: "manager" }, { name: "vm2", role: "worker" }])],
  ["pin images", pinImagesScript(["eclipse-mosquitto:2", "registry:2@sha256:" + "a".repeat(64)])],
  ["pull images", pullImagesScript("10.0.0.1:5000", "aiswarm", [`10.0.0.1:5000/ai-swarm/master@sha256:${"a".repeat(64)}`])],
  ["rebalance", rebalanceScript(["ai-system_worker-go", "ai-system_worker-java"])],
  ["placement with rebalance", placementScript(["ai-system_worker-go"], 300, rebalanceScript(["ai-system_worker-go"]))],
];

describe("every script", () => {
  it.each(ALL_SCRIPTS)("%s is valid POSIX sh (sh -n), also when wrapped for sudo", (_name, script) => {
    for (const variant of [script, asRoot(script, "deploy")]) {
      const result = spawnSync("sh", ["-n", "-c", variant], { encoding: "utf8" });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
    }
  });

  it("shellQuote survives quotes, spaces and $", () => {
    for (const value of ["plain", "it's", "a b  c", "$HOME `id` \"q\"", "'''"]) {
      expect(sh(`printf '%s' ${shellQuote(value)}`).stdout).toBe(value);
    }
  });

  it("asRoot leaves root's scripts alone and sends others through non-interactive sudo", () => {
    expect(asRoot("echo hi", "root")).toBe("echo hi");
    expect(asRoot("echo 'hi'", "deploy")).toBe(`sudo -n sh -c 'echo '\\''hi'\\'''`);
  });
});

describe("registry TLS on the manager (real openssl)", () => {

  it("makes a CA and a server certificate for the address, prints only the CA, and is idempotent", () => {
    const first = sh(registryTlsScript("IP:10.0.0.1", "10.0.0.1", dir));
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toBe(fs.readFileSync(path.join(dir, "ca.crt"), "utf8"));
    expect(first.stdout).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(first.stdout).not.toContain("PRIVATE KEY");
    expect(openssl("verify", "-CAfile", path.join(dir, "ca.crt"), path.join(dir, "certs", "registry.crt"))).toContain("OK");
    expect(openssl("x509", "-in", path.join(dir, "certs", "registry.crt"), "-noout", "-text")).toContain("IP Address:10.0.0.1");
    // Keys: readable by root only; the CA key is not in the directory the registry container mounts.
    expect(fs.statSync(path.join(dir, "ca.key")).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, "certs", "registry.key")).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.join(dir, "certs")).sort()).toEqual(["registry.crt", "registry.key", "san"]);

    const certBefore = fs.readFileSync(path.join(dir, "certs", "registry.crt"), "utf8");
    const second = sh(registryTlsScript("IP:10.0.0.1", "10.0.0.1", dir));
    expect(second.stdout).toBe(first.stdout);
    expect(fs.readFileSync(path.join(dir, "certs", "registry.crt"), "utf8")).toBe(certBefore);
  });

  it("serves TLS that a client trusting only the CA accepts for that address", async () => {
    expect(sh(registryTlsScript("IP:127.0.0.1", "127.0.0.1", dir)).status).toBe(0);
    const server = https.createServer(
      { cert: fs.readFileSync(path.join(dir, "certs", "registry.crt")), key: fs.readFileSync(path.join(dir, "certs", "registry.key")) },
      (_request, response) => response.end("{}"),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const get = (ca: Buffer | undefined) =>
      new Promise<number>((resolve, reject) => {
        https.get({ host: "127.0.0.1", port, path: "/v2/", ca }, (response) => resolve(response.statusCode ?? 0)).on("error", reject);
      });
    try {
      expect(await get(fs.readFileSync(path.join(dir, "ca.crt")))).toBe(200);
      await expect(get(undefined)).rejects.toThrow(/self-signed|unable to (verify|get)/);
    } finally {
      server.close();
    }
  });

  it("re-issues the server certificate (same CA) when the manager's address changes", () => {
    const first = sh(registryTlsScript("IP:10.0.0.1", "10.0.0.1", dir));
    const second = sh(registryTlsScript("DNS:manager.example", "manager.example", dir));
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    expect(openssl("x509", "-in", path.join(dir, "certs", "registry.crt"), "-noout", "-text")).toContain("DNS:manager.example");
  });
});

describe("the stack's CA on every manager, for the day the primary is lost (real openssl)", () => {

  it("a manager holding the primary's copy signs with the same CA: the new registry certificate verifies against the CA every node trusts", () => {
    const primary = path.join(dir, "primary");
    const other = path.join(dir, "other");
    const ca = sh(registryTlsScript("IP:10.0.0.1", "10.0.0.1", primary)).stdout;
    const read = sh(readCaScript(primary));
    expect(read.status, read.stderr).toBe(0);
    expect(read.stdout).toContain("PRIVATE KEY");
    const install = sh(installCaScript(other, [path.join(other, "certs")]), { stdin: read.stdout });
    expect(install.status, install.stderr).toBe(0);
    expect(install.stdout).toBe("");
    expect(fs.statSync(path.join(other, "ca.key")).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(other).filter((entry) => entry.startsWith(".install"))).toEqual([]);
    // The other manager becomes the primary: same CA printed, a certificate for its own address.
    const promoted = sh(registryTlsScript("IP:10.0.0.4", "10.0.0.4", other));
    expect(promoted.status, promoted.stderr).toBe(0);
    expect(promoted.stdout).toBe(ca);
    fs.writeFileSync(path.join(dir, "trusted.crt"), ca);
    expect(openssl("verify", "-CAfile", path.join(dir, "trusted.crt"), path.join(other, "certs", "registry.crt"))).toContain("OK");
    expect(openssl("x509", "-in", path.join(other, "certs", "registry.crt"), "-noout", "-text")).toContain("IP Address:10.0.0.4");
  });

  it("installing the same CA again changes nothing; another CA replaces it and drops the certificates the old one issued", () => {
    const first = path.join(dir, "first");
    const second = path.join(dir, "second");
    sh(registryTlsScript("IP:10.0.0.1", "10.0.0.1", first));
    sh(registryTlsScript("IP:10.0.0.1", "10.0.0.1", second));
    const before = fs.readFileSync(path.join(second, "certs", "registry.crt"), "utf8");
    const own = sh(readCaScript(second)).stdout;
    expect(sh(installCaScript(second, [path.join(second, "certs")]), { stdin: own }).status).toBe(0);
    expect(fs.readFileSync(path.join(second, "certs", "registry.crt"), "utf8")).toBe(before);
    const other = sh(readCaScript(first)).stdout;
    expect(sh(installCaScript(second, [path.join(second, "certs")]), { stdin: other }).status).toBe(0);
    expect(fs.existsSync(path.join(second, "certs", "registry.crt"))).toBe(false);
    expect(fs.readFileSync(path.join(second, "ca.crt"), "utf8")).toBe(fs.readFileSync(path.join(first, "ca.crt"), "utf8"));
  });

  it("refuses stdin without a key or a certificate, naming what is missing, and leaves the CA it had", () => {
    const target = path.join(dir, "target");
    sh(registryTlsScript("IP:10.0.0.1", "10.0.0.1", target));
    const caBefore = fs.readFileSync(path.join(target, "ca.crt"), "utf8");
    const noKey = sh(installCaScript(target, []), { stdin: caBefore });
    expect(noKey.status).not.toBe(0);
    expect(noKey.stderr).toContain("no private key on stdin");
    const keyOnly = sh(readCaScript(target)).stdout.split("-----BEGIN CERTIFICATE-----")[0] ?? "";
    const noCert = sh(installCaScript(target, []), { stdin: keyOnly });
    expect(noCert.status).not.toBe(0);
    expect(noCert.stderr).toContain("no certificate on stdin");
    expect(fs.readFileSync(path.join(target, "ca.crt"), "utf8")).toBe(caBefore);
  });
});

describe("the web page's certificate on the manager (real openssl)", () => {
  const split = (stdout: string) => {
    const at = stdout.indexOf("-----BEGIN PRIVATE KEY-----");
    return { cert: stdout.slice(0, at), key: stdout.slice(at) };
  };

  it("signs it with the registry's CA for every name, prints the certificate then the key, and keeps them across runs", () => {
    const registry = sh(registryTlsScript("IP:127.0.0.1", "127.0.0.1", dir));
    expect(registry.status, registry.stderr).toBe(0);
    const web = path.join(dir, "web");
    const first = sh(webTlsScript("IP:127.0.0.1,DNS:chat.example", "127.0.0.1", dir, web));
    expect(first.status, first.stderr).toBe(0);
    const { cert, key } = split(first.stdout);
    expect(cert).toMatch(/^-----BEGIN CERTIFICATE-----[\s\S]*-----END CERTIFICATE-----\n$/);
    expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    fs.writeFileSync(path.join(dir, "web.pem"), cert);
    expect(openssl("verify", "-CAfile", path.join(dir, "ca.crt"), path.join(dir, "web.pem"))).toContain("OK");
    const text = openssl("x509", "-in", path.join(dir, "web.pem"), "-noout", "-text");
    expect(text).toContain("IP Address:127.0.0.1");
    expect(text).toContain("DNS:chat.example");
    expect(fs.statSync(path.join(web, "web.key")).mode & 0o777).toBe(0o600);
    // The registry's CA was reused, not replaced.
    expect(sh(registryTlsScript("IP:127.0.0.1", "127.0.0.1", dir)).stdout).toBe(registry.stdout);
    expect(sh(webTlsScript("IP:127.0.0.1,DNS:chat.example", "127.0.0.1", dir, web)).stdout).toBe(first.stdout);
  });

  it("re-issues when the names change, and makes the CA itself if the registry's is not there yet", () => {
    const web = path.join(dir, "web");
    const first = sh(webTlsScript("IP:127.0.0.1", "127.0.0.1", dir, web));
    expect(first.status, first.stderr).toBe(0);
    expect(fs.existsSync(path.join(dir, "ca.key"))).toBe(true);
    const second = sh(webTlsScript("IP:127.0.0.1,DNS:other.example", "127.0.0.1", dir, web));
    expect(split(second.stdout).cert).not.toBe(split(first.stdout).cert);
  });
});

describe("writing files from stdin", () => {
  it("writes the content atomically with the mode, creating the directory", () => {
    const target = path.join(dir, "certs.d", "10.0.0.1:5000", "ca.crt");
    const result = sh(writeStdinToFileScript(target, "644"), { stdin: "PEM\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(fs.readFileSync(target, "utf8")).toBe("PEM\n");
    expect(fs.statSync(target).mode & 0o777).toBe(0o644);
    expect(fs.existsSync(`${target}.tmp`)).toBe(false);
  });
});

/** A stand-in `docker` for the swarm scripts: logs its argv, answers `info` from files in $FAKE. */
function installFakeDocker(state: { swarm: string; control?: boolean; labels?: string; loginFailures?: number; unknownNode?: boolean }): Record<string, string> {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(dir, "state"), state.swarm);
  fs.writeFileSync(path.join(dir, "control"), String(state.control ?? false));
  fs.writeFileSync(path.join(dir, "labels"), state.labels ?? "");
  fs.writeFileSync(path.join(dir, "login-failures"), String(state.loginFailures ?? 0));
  if (state.unknownNode === true) fs.writeFileSync(path.join(dir, "unknown-node"), "");
  fs.writeFileSync(
    path.join(bin, "docker"),
    [
      "#!/bin/sh",
      'echo "$*" >> "$FAKE/calls"',
      'case "$*" in',
      '  *LocalNodeState*) cat "$FAKE/state" ;;',
      '  *ControlAvailable*) cat "$FAKE/control" ;;',
      '  *NodeID*) echo node-id-123 ;;',
      '  *HeartbeatPeriod*) cat "$FAKE/heartbeat" 2>/dev/null || echo 5s ;;',
      '  "swarm update --dispatcher-heartbeat "*) echo "$4" > "$FAKE/heartbeat"; echo "Swarm updated." ;;',
      '  "swarm init"*) echo active > "$FAKE/state"; echo true > "$FAKE/control"; echo "docker swarm join --token SWMTKN-1-secret 10.0.0.1:2377" ;;',
      '  "swarm join"*) echo active > "$FAKE/state"; echo "This node joined a swarm as a worker." ;;',
      '  "swarm leave"*) echo inactive > "$FAKE/state" ;;',
      '  "node inspect"*) if [ -e "$FAKE/unknown-node" ]; then echo "Error: No such node: x" >&2; exit 1; fi; cat "$FAKE/labels" ;;',
      '  login*) cat > "$FAKE/login-stdin"; n=$(cat "$FAKE/login-failures"); if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$FAKE/login-failures"; exit 1; fi; ls "$DOCKER_CONFIG" > /dev/null ;;',
      "esac",
    ].join("\n"),
    { mode: 0o755 },
  );
  return { PATH: `${bin}:${process.env["PATH"] ?? ""}`, FAKE: dir };
}

function calls(): string[] {
  const file = path.join(dir, "calls");
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : [];
}

describe("swarm scripts against a fake docker", () => {
  it("init runs swarm init when the node is not in a swarm, hides its output and prints the node id", () => {
    const env = installFakeDocker({ swarm: "inactive" });
    const result = sh(swarmInitScript("10.0.0.1"), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("node-id-123\n");
    expect(result.stdout + result.stderr).not.toContain("SWMTKN");
    expect(calls()).toContain("swarm init --advertise-addr 10.0.0.1");
  });

  it("init takes the overlay address pool from config, and only when one is set", () => {
    const env = installFakeDocker({ swarm: "inactive" });
    const result = sh(swarmInitScript("10.0.0.1", { cidr: "172.29.0.0/16", maskLength: 24 }), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(calls()).toContain("swarm init --advertise-addr 10.0.0.1 --default-addr-pool 172.29.0.0/16 --default-addr-pool-mask-length 24");
    expect(swarmInitScript("10.0.0.1", { cidr: "172.29.0.0/16" })).not.toContain("mask-length");
    expect(swarmInitScript("10.0.0.1")).not.toContain("--default-addr-pool");
  });

  it("init changes nothing on a node that already manages a swarm", () => {
    const env = installFakeDocker({ swarm: "active", control: true });
    const result = sh(swarmInitScript("10.0.0.1"), { env });
    expect(result.status).toBe(0);
    expect(calls().some((call) => call.startsWith("swarm init"))).toBe(false);
  });

  it("init refuses a node that is a worker in some other swarm", () => {
    const env = installFakeDocker({ swarm: "active", control: false });
    const result = sh(swarmInitScript("10.0.0.1"), { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("is in a swarm but is not a manager");
  });

  it("the dispatcher heartbeat is updated only when it differs, quietly, and the period in force is printed", () => {
    const env = installFakeDocker({ swarm: "active", control: true });
    const first = sh(dispatcherHeartbeatScript(2), { env });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toBe("2s\n");
    const again = sh(dispatcherHeartbeatScript(2), { env });
    expect(again.stdout).toBe("2s\n");
    expect(calls().filter((call) => call.startsWith("swarm update"))).toEqual(["swarm update --dispatcher-heartbeat 2s"]);
    expect(() => dispatcherHeartbeatScript(0.5)).toThrow("whole number of seconds ≥ 1, got 0.5");
  });

  it("join takes the token from stdin, joins once, and leaves a joined node alone", () => {
    const env = installFakeDocker({ swarm: "inactive" });
    const first = sh(swarmJoinScript("10.0.0.2", "10.0.0.1"), { env, stdin: "SWMTKN-1-abc\n" });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toBe("node-id-123\n");
    expect(calls()).toContain("swarm join --advertise-addr 10.0.0.2 --token SWMTKN-1-abc 10.0.0.1:2377");
    const again = sh(swarmJoinScript("10.0.0.2", "10.0.0.1"), { env, stdin: "SWMTKN-1-abc" });
    expect(again.status).toBe(0);
    expect(calls().filter((call) => call.startsWith("swarm join"))).toHaveLength(1);
  });

  it("join fails clearly without a token", () => {
    const env = installFakeDocker({ swarm: "inactive" });
    const result = sh(swarmJoinScript("10.0.0.2", "10.0.0.1"), { env, stdin: "" });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("no join token on stdin");
  });

  it("leave leaves only when still in the swarm", () => {
    const env = installFakeDocker({ swarm: "active" });
    sh(swarmLeaveScript(), { env });
    sh(swarmLeaveScript(), { env });
    expect(calls().filter((call) => call.startsWith("swarm leave"))).toEqual(["swarm leave --force"]);
  });

  it("labels: adds the configured ones and removes only labels it set before", () => {
    const env = installFakeDocker({ swarm: "active", labels: "zone,rack,ai-swarm.node" });
    const result = sh(nodeLabelScript("abc123", { zone: "b", "ai-swarm.node": "vm2" }, "vm2"), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("abc123\n");
    const update = calls().find((call) => call.startsWith("node update")) ?? "";
    expect(update).toContain("--label-rm rack");
    expect(update).not.toContain("--label-rm zone");
    expect(update).toContain("--label-add ai-swarm.labels=ai-swarm.node,zone --label-add ai-swarm.node=vm2 --label-add zone=b abc123");
  });

  it("labels: a node in some other swarm (its id unknown here) fails, naming it and the way out", () => {
    const env = installFakeDocker({ swarm: "active", unknownNode: true });
    const result = sh(nodeLabelScript("zzz999", { "ai-swarm.node": "vm3" }, "vm3"), { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("vm3 is in another swarm");
    expect(result.stderr).toContain("docker swarm leave --force");
    expect(calls().some((call) => call.startsWith("node update"))).toBe(false);
  });

  it("drain: drains, then removes the node from the swarm", () => {
    const env = installFakeDocker({ swarm: "active" });
    const result = sh(drainAndRemoveScript("abc123", 2), { env });
    expect(result.status, result.stderr).toBe(0);
    const swarmCalls = calls().filter((call) => call.startsWith("node update") || call.startsWith("node rm"));
    expect(swarmCalls).toEqual(["node update --availability drain abc123", "node rm --force abc123"]);
  });

  it("registry ready: retries the login with the password from stdin in a throw-away config", () => {
    const env = installFakeDocker({ swarm: "active", loginFailures: 2 });
    const result = sh(registryReadyScript("10.0.0.1:5000", "aiswarm", 5, 0), { env, stdin: "pw-123\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("registry 10.0.0.1:5000 ready\n");
    expect(fs.readFileSync(path.join(dir, "login-stdin"), "utf8")).toBe("pw-123");
    const logins = calls().filter((call) => call.startsWith("login"));
    expect(logins).toHaveLength(3);
    expect(logins[0]).toBe("login --username aiswarm --password-stdin 10.0.0.1:5000");
  });

  it("registry ready: gives up with a clear message", () => {
    const env = installFakeDocker({ swarm: "active", loginFailures: 99 });
    const result = sh(registryReadyScript("10.0.0.1:5000", "aiswarm", 2, 0), { env, stdin: "pw-123\n" });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("registry 10.0.0.1:5000 did not accept a login");
    expect(result.stderr).not.toContain("pw-123");
  });
});

/** A stand-in `docker` whose answers are the given `case` arms (argv logged to $FAKE/calls). */
function scriptedDocker(arms: string[]): Record<string, string> {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, "docker"), ["#!/bin/sh", 'echo "$*" >> "$FAKE/calls"', 'case "$*" in', ...arms.map((arm) => `  ${arm}`), "esac"].join("\n"), { mode: 0o755 });
  return { PATH: `${bin}:${process.env["PATH"] ?? ""}`, FAKE: dir };
}

describe("day-two scripts against a fake docker", () => {
  it("drain: drains only the nodes this program labelled that left the config, once", () => {
    const env = scriptedDocker([
      '"node ls -q") printf "id1\\nid4\\nidx\\n" ;;',
      '*"ai-swarm.node"*id1) echo vm1 ;;',
      '*"ai-swarm.node"*id4) echo vm4 ;;',
      '*"ai-swarm.node"*idx) echo ;;',
      '*Availability*id4) if [ -e "$FAKE/drained" ]; then echo drain; else echo active; fi ;;',
      '*Availability*) echo active ;;',
      '"node update --availability drain id4") touch "$FAKE/drained" ;;',
    ]);
    const first = sh(drainRemovedNodesScript(["vm1", "vm2"]), { env });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toBe("drained vm4: no longer in the stack config\n");
    expect(calls().filter((call) => call.startsWith("node update"))).toEqual(["node update --availability drain id4"]);
    expect(sh(drainRemovedNodesScript(["vm1", "vm2"]), { env }).stdout).toBe("");
  });

  /** Nodes for the fake: id → name, role, status; `node demote`/`rm` change the state files under $FAKE. */
  function swarmOf(
    nodes: { id: string; name: string; role: string; status: string; running?: boolean }[],
    options: { rmRefusals?: number; updateRefusals?: number } = {},
  ) {
    fs.writeFileSync(path.join(dir, "rm-refusals"), String(options.rmRefusals ?? 0));
    fs.writeFileSync(path.join(dir, "update-refusals"), String(options.updateRefusals ?? 0));
    for (const node of nodes) fs.writeFileSync(path.join(dir, `role-${node.id}`), node.role);
    return scriptedDocker([
      `"node ls -q") for id in $(ls "$FAKE" | sed -n 's/^role-//p'); do echo "$id"; done ;;`,
      ...nodes.map((node) => `*"ai-swarm.node"*" ${node.id}") echo ${node.name} ;;`),
      ...nodes.map((node) => `*Status.State*" ${node.id}") echo ${node.status} ;;`),
      '*Spec.Role*) cat "$FAKE/role-${*##* }" ;;',
      // A manager is in Raft; a worker is not.
      '*"in raft"*) if [ "$(cat "$FAKE/role-${*##* }")" = manager ]; then echo in raft; fi ;;',
      '"node demote "*) echo worker > "$FAKE/role-${*##* }" ;;',
      ...nodes.map((node) => `"node ps ${node.id} "*) ${node.running ? "echo 'Running 2 minutes ago'" : "true"} ;;`),
      '"node update --availability drain "*) left=$(cat "$FAKE/update-refusals"); if [ "$left" -gt 0 ]; then echo $((left - 1)) > "$FAKE/update-refusals"; echo "rpc error: code = Unknown desc = update out of sequence" >&2; exit 1; fi ;;',
      '"node rm --force "*) left=$(cat "$FAKE/rm-refusals"); if [ "$left" -gt 0 ]; then echo $((left - 1)) > "$FAKE/rm-refusals"; echo "node is a member of the raft cluster" >&2; exit 1; fi; rm "$FAKE/role-${*##* }" ;;',
    ]);
  }

  it("remove: demotes, drains, skips the wait for a down node and removes every labelled node no longer in config, one progress line each", () => {
    const env = swarmOf([
      { id: "id1", name: "vm1", role: "manager", status: "ready" },
      { id: "id2", name: "vm2", role: "manager", status: "down", running: true },
      { id: "id3", name: "vm3", role: "worker", status: "ready" },
      { id: "id5", name: "vm5", role: "worker", status: "ready" },
    ]);
    const result = sh(removeNodesScript(["vm1", "vm3"], 3, 3), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("removing vm2 (down)…\n  demoted vm2\nremoved vm2\nremoving vm5 (ready)…\nremoved vm5\n");
    const changes = calls().filter((call) => /^node (demote|update|rm|ps)/.test(call));
    expect(changes).toEqual([
      "node demote id2",
      "node update --availability drain id2",
      "node rm --force id2",
      "node update --availability drain id5",
      "node ps id5 --filter desired-state=running --format {{.CurrentState}}",
      "node rm --force id5",
    ]);
    expect(sh(removeNodesScript(["vm1", "vm3"], 3, 3), { env }).stdout).toBe("");
  });

  it("remove: waits (bounded) for a reachable node's tasks, and retries rm while a demoted manager is still leaving Raft", () => {
    const env = swarmOf([{ id: "id4", name: "vm4", role: "manager", status: "ready", running: true }], { rmRefusals: 2 });
    const result = sh(removeNodesScript(["vm1"], 2, 5), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("removing vm4 (ready)…\n  demoted vm4\nremoved vm4\n");
    expect(calls().filter((call) => call.startsWith("node ps"))).toHaveLength(2); // one check per second, for at most 2 s
    expect(calls().filter((call) => call.startsWith("node rm"))).toHaveLength(3);
  });

  it("remove: retries the drain while Swarm refuses it right after the demote (update out of sequence)", () => {
    const env = swarmOf([{ id: "id5", name: "vm5", role: "manager", status: "ready" }], { updateRefusals: 2 });
    const result = sh(removeNodesScript(["vm4"], 2, 5), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("removing vm5 (ready)…\n  demoted vm5\nremoved vm5\n");
    expect(calls().filter((call) => call.startsWith("node update"))).toHaveLength(3);
    // Refused for good: the script fails with Swarm's reason.
    const stuck = swarmOf([{ id: "id6", name: "vm6", role: "worker", status: "ready" }], { updateRefusals: 99 });
    const failed = sh(removeNodesScript(["vm4"], 2, 2), { env: stuck });
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain("update out of sequence");
  });

  it("remove: fails, naming Docker's reason, when rm keeps refusing", () => {
    const env = swarmOf([{ id: "id4", name: "vm4", role: "worker", status: "down" }], { rmRefusals: 99 });
    const result = sh(removeNodesScript(["vm1"], 2, 2), { env });
    expect(result.status).not.toBe(0);
    expect(result.stdout).toBe("removing vm4 (down)…\n");
    expect(result.stderr).toContain("node is a member of the raft cluster");
  });

  it("roles: demotes a configured worker that is still a manager, and changes nothing when every role matches", () => {
    const env = swarmOf([
      { id: "id1", name: "vm1", role: "manager", status: "ready" },
      { id: "id2", name: "vm2", role: "manager", status: "ready" },
      { id: "id4", name: "vm4", role: "manager", status: "ready" },
    ]);
    const roles = [
      { name: "vm1", role: "manager" },
      { name: "vm2", role: "worker" },
      { name: "vm4", role: "manager" },
    ] as const;
    const result = sh(nodeRolesScript(roles), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("demoted vm2 to worker\n");
    expect(calls().filter((call) => /^node (promote|demote)/.test(call))).toEqual(["node demote id2"]);
    expect(sh(nodeRolesScript(roles), { env }).stdout).toBe("");
  });

  it("roles: never promotes (the joins do): a configured manager that is a worker fails the deploy, naming it and where to look", () => {
    const env = swarmOf([
      { id: "id1", name: "vm1", role: "manager", status: "ready" },
      { id: "id4", name: "vm4", role: "worker", status: "ready" },
    ]);
    const result = sh(nodeRolesScript([{ name: "vm1", role: "manager" }, { name: "vm4", role: "manager" }]), { env });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("vm4 is configured as a manager but is a worker: its join (swarm-join-vm4) did not make it one");
    expect(calls().filter((call) => /^node (promote|demote)/.test(call))).toEqual([]);
  });

  it("node ids: a lost manager (down, no longer configured) is demoted and out of Raft before the ids are listed; nothing else is touched", () => {
    const env = swarmOf([
      { id: "id1", name: "vm1", role: "manager", status: "down" },
      { id: "id2", name: "vm2", role: "manager", status: "ready" },
      { id: "id3", name: "vm3", role: "manager", status: "down" },
      { id: "id6", name: "vm6", role: "manager", status: "ready" },
      { id: "id7", name: "vm7", role: "worker", status: "down" },
    ]);
    // vm3 is down but still configured (it may come back); vm6 left the config but is up: swarm-members demotes it.
    const result = sh(knownNodeIdsScript(["vm2", "vm3", "vm4"], 3, 3), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("id1\nid2\nid3\nid6\nid7\n");
    expect(result.stderr).toBe("demoted vm1 (down, no longer configured): out of Raft before a manager joins\n");
    expect(calls().filter((call) => /^node (promote|demote)/.test(call))).toEqual(["node demote id1"]);
    const again = sh(knownNodeIdsScript(["vm2", "vm3", "vm4"], 3, 3), { env });
    expect(again.stderr).toBe("");
    expect(calls().filter((call) => /^node (promote|demote)/.test(call))).toEqual(["node demote id1"]);
  });

  it("node ids: a demoted manager Swarm still lists in Raft after the wait fails the deploy, naming it", () => {
    const stuck = scriptedDocker([
      '"node ls -q") echo id1 ;;',
      '*"ai-swarm.node"*) echo vm1 ;;',
      "*Spec.Role*) echo manager ;;",
      "*Status.State*) echo down ;;",
      '*"in raft"*) echo in raft ;;',
    ]);
    const result = sh(knownNodeIdsScript(["vm2"], 2, 3), { env: stuck });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("demoted vm1 (down, no longer configured), but Swarm still lists it in Raft after 2 s");
  });

  it("roles: leaves alone a node this program did not label, also when no node is a worker", () => {
    const env = swarmOf([
      { id: "id1", name: "vm1", role: "manager", status: "ready" },
      { id: "idx", name: "", role: "manager", status: "ready" },
    ]);
    const result = sh(nodeRolesScript([{ name: "vm1", role: "manager" }]), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("");
    expect(calls().filter((call) => /^node (promote|demote)/.test(call))).toEqual([]);
  });

  it.each([
    ["pending", ""],
    ["error", "node removed"],
    ["active", "rpc error: node not found"],
  ])("rejoin: a node left %s by a swarm that removed it leaves that state, then joins", (state, error) => {
    const env = scriptedDocker([
      `"info --format {{.Swarm.LocalNodeState}}") if [ -e "$FAKE/joined" ]; then echo active; elif [ -e "$FAKE/left" ]; then echo inactive; else echo ${state}; fi ;;`,
      `"info --format {{.Swarm.Error}}") echo ${shellQuote(error)} ;;`,
      '"info --format {{.Swarm.NodeID}}") echo new-id ;;',
      '"swarm leave --force") touch "$FAKE/left" ;;',
      '"swarm join "*) touch "$FAKE/joined" ;;',
    ]);
    const result = sh(swarmRejoinScript("10.0.0.2", "10.0.0.1", { name: "vm2", role: "worker" }), { env, stdin: "SWMTKN-1-abc\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("new-id\n");
    expect(result.stderr).toContain(`leaving a stale swarm state (${state}`);
    expect(calls().filter((call) => call.startsWith("swarm"))).toEqual(["swarm leave --force", "swarm join --advertise-addr 10.0.0.2 --token SWMTKN-1-abc 10.0.0.1:2377"]);
  });

  it("rejoin: an active node whose id the swarm no longer knows (removed while it was up) leaves, then joins", () => {
    const env = scriptedDocker([
      `"info --format {{.Swarm.LocalNodeState}}") if [ -e "$FAKE/joined" ]; then echo active; elif [ -e "$FAKE/left" ]; then echo inactive; else echo active; fi ;;`,
      '"info --format {{.Swarm.Error}}") echo ;;',
      `"info --format {{.Swarm.NodeID}}") if [ -e "$FAKE/left" ]; then echo new-id; else echo old-id; fi ;;`,
      '"swarm leave --force") touch "$FAKE/left" ;;',
      '"swarm join "*) touch "$FAKE/joined" ;;',
    ]);
    const result = sh(swarmRejoinScript("10.0.0.2", "10.0.0.1", { name: "vm2", role: "worker" }), { env, stdin: "SWMTKN-1-abc\nid-primary\nid-other\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("new-id\n");
    expect(result.stderr).toContain("leaving a stale swarm state (active: this swarm no longer knows node id old-id (it was removed))");
    expect(calls().filter((call) => call.startsWith("swarm"))).toEqual(["swarm leave --force", "swarm join --advertise-addr 10.0.0.2 --token SWMTKN-1-abc 10.0.0.1:2377"]);
  });

  it("rejoin: a join Docker stops waiting for (it goes on in the background) is waited out until the node is active; any other failure fails with Docker's message", () => {
    const background = "Error response from daemon: Timeout was reached before node joined. The attempt to join the swarm will continue in the background.";
    const env = scriptedDocker([
      // pending after the join, active on the second look
      `"info --format {{.Swarm.LocalNodeState}}") if [ -e "$FAKE/looked" ]; then echo active; elif [ -e "$FAKE/joined" ]; then touch "$FAKE/looked"; echo pending; else echo inactive; fi ;;`,
      '"info --format {{.Swarm.Error}}") echo ;;',
      '"info --format {{.Swarm.NodeID}}") echo new-id ;;',
      `"swarm join "*) touch "$FAKE/joined"; echo ${shellQuote(background)} >&2; exit 1 ;;`,
    ]);
    const result = sh(swarmRejoinScript("10.0.0.2", "10.0.0.1", { name: "vm2", role: "worker" }), { env, stdin: "SWMTKN-1-abc\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("new-id\n");
    expect(result.stderr).toContain("the join takes longer than Docker waits; waiting for it (at most 120 s)");
    expect(result.stderr).not.toContain("SWMTKN");
    const refused = scriptedDocker([
      '"info --format {{.Swarm.LocalNodeState}}") echo inactive ;;',
      '"info --format {{.Swarm.Error}}") echo ;;',
      '"swarm join "*) echo "Error response from daemon: rpc error: code = InvalidArgument desc = A valid join token is necessary" >&2; exit 1 ;;',
    ]);
    fs.rmSync(path.join(dir, "calls"));
    const failed = sh(swarmRejoinScript("10.0.0.2", "10.0.0.1", { name: "vm2", role: "manager" }), { env: refused, stdin: "SWMTKN-1-abc\n" });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain("A valid join token is necessary");
    // Not a Raft failure: no second try.
    expect(calls().filter((call) => call.startsWith("swarm join"))).toHaveLength(1);
    expect(failed.stderr).not.toContain("join attempt");
  });

  it("rejoin as a manager: a worker configured as a manager leaves, joins again with the manager token through the primary, and removes its old worker entry", () => {
    const env = scriptedDocker([
      `"info --format {{.Swarm.LocalNodeState}}") if [ -e "$FAKE/joined" ]; then echo active; elif [ -e "$FAKE/left" ]; then echo inactive; else echo active; fi ;;`,
      '"info --format {{.Swarm.Error}}") echo ;;',
      `"info --format {{.Swarm.NodeID}}") if [ -e "$FAKE/joined" ]; then echo manager-id; else echo worker-id; fi ;;`,
      `"info --format {{.Swarm.ControlAvailable}}") if [ -e "$FAKE/joined" ]; then echo true; else echo false; fi ;;`,
      '"swarm leave --force") touch "$FAKE/left" ;;',
      '"swarm join "*) touch "$FAKE/joined" ;;',
      // The swarm as the new manager sees it: itself (not labelled yet), its old worker entry, another node's worker entry, vm4 as a manager elsewhere.
      `"node ls -q") echo manager-id; [ -e "$FAKE/removed" ] || echo worker-id; echo other-id; echo odd-id ;;`,
      `*ai-swarm.node*Spec.Role*" worker-id") echo vm4 worker ;;`,
      `*ai-swarm.node*Spec.Role*" other-id") echo vm5 worker ;;`,
      `*ai-swarm.node*Spec.Role*" odd-id") echo vm4 manager ;;`,
      // The new manager's control API needs a moment: the first rm is refused.
      '"node rm --force worker-id") if [ -e "$FAKE/rm-tried" ]; then touch "$FAKE/removed"; else touch "$FAKE/rm-tried"; echo "This node is not a swarm manager" >&2; exit 1; fi ;;',
    ]);
    const vm4 = { name: "vm4", role: "manager" } as const;
    const result = sh(swarmRejoinScript("10.0.0.4", "10.0.0.1", vm4, 3), { env, stdin: "SWMTKN-1-mgr\nid-primary\nworker-id\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("manager-id\n");
    expect(result.stderr).toContain("promoting this worker: joining again as a manager through 10.0.0.1 (its tasks start again elsewhere)");
    expect(result.stderr).toContain("removed an old worker entry of vm4 from the swarm");
    expect(calls().filter((call) => /^(swarm|node rm)/.test(call))).toEqual([
      "swarm leave --force",
      "swarm join --advertise-addr 10.0.0.4 --token SWMTKN-1-mgr 10.0.0.1:2377",
      "node rm --force worker-id",
      "node rm --force worker-id",
    ]);
    expect(fs.existsSync(path.join(dir, "removed"))).toBe(true);
    // Now a manager with no old entry: a second run changes nothing. (A worker configured as a worker is never moved: next test.)
    fs.rmSync(path.join(dir, "calls"));
    const again = sh(swarmRejoinScript("10.0.0.4", "10.0.0.1", vm4, 3), { env, stdin: "SWMTKN-1-mgr\nid-primary\nmanager-id\n" });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toBe("manager-id\n");
    expect(again.stderr).toBe("");
    expect(calls().filter((call) => /^(swarm|node rm)/.test(call))).toEqual([]);
  });

  it("rejoin as a manager: an old worker entry a failed run left (it left, then its join failed) is removed once it is a manager", () => {
    const env = scriptedDocker([
      `"info --format {{.Swarm.LocalNodeState}}") if [ -e "$FAKE/joined" ]; then echo active; else echo inactive; fi ;;`,
      '"info --format {{.Swarm.Error}}") echo ;;',
      '"info --format {{.Swarm.NodeID}}") if [ -e "$FAKE/joined" ]; then echo manager-id; fi ;;',
      `"info --format {{.Swarm.ControlAvailable}}") if [ -e "$FAKE/joined" ]; then echo true; else echo false; fi ;;`,
      '"swarm join "*) touch "$FAKE/joined" ;;',
      '"node ls -q") echo manager-id; echo stale-id ;;',
      `*ai-swarm.node*Spec.Role*" stale-id") echo vm4 worker ;;`,
      '"node rm --force stale-id") true ;;',
    ]);
    const result = sh(swarmRejoinScript("10.0.0.4", "10.0.0.1", { name: "vm4", role: "manager" }, 3), { env, stdin: "SWMTKN-1-mgr\nid-primary\nstale-id\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("manager-id\n");
    expect(result.stderr).not.toContain("promoting this worker");
    expect(result.stderr).toContain("removed an old worker entry of vm4 from the swarm");
    expect(calls().filter((call) => /^(swarm|node rm)/.test(call))).toEqual(["swarm join --advertise-addr 10.0.0.4 --token SWMTKN-1-mgr 10.0.0.1:2377", "node rm --force stale-id"]);
  });

  it("rejoin: a worker configured as a worker stays one (no promotion without the manager role)", () => {
    const env = scriptedDocker([
      '"info --format {{.Swarm.LocalNodeState}}") echo active ;;',
      '"info --format {{.Swarm.Error}}") echo ;;',
      '"info --format {{.Swarm.NodeID}}") echo worker-id ;;',
      '"info --format {{.Swarm.ControlAvailable}}") echo false ;;',
    ]);
    const result = sh(swarmRejoinScript("10.0.0.4", "10.0.0.1", { name: "vm4", role: "worker" }), { env, stdin: "SWMTKN-1-wrk\nworker-id\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("worker-id\n");
    expect(calls().filter((call) => /^(swarm|node)/.test(call))).toEqual([]);
  });

  it("rejoin: a manager's join that fails on Raft leaves the half-made state and is tried again; after the last try it fails with Docker's message", () => {
    const raft = "Error response from daemon: manager stopped: can't initialize raft node: rpc error: code = Unavailable desc = connection error";
    const env = scriptedDocker([
      `"info --format {{.Swarm.LocalNodeState}}") if [ -e "$FAKE/joined" ]; then echo active; else echo inactive; fi ;;`,
      '"info --format {{.Swarm.Error}}") echo ;;',
      '"info --format {{.Swarm.NodeID}}") echo new-id ;;',
      '"swarm leave --force") true ;;',
      // Refused on Raft twice, then joined.
      `"swarm join "*) n=$(cat "$FAKE/joins" 2>/dev/null || echo 0); echo $((n + 1)) > "$FAKE/joins"; if [ "$n" -lt 2 ]; then echo ${shellQuote(raft)} >&2; exit 1; fi; touch "$FAKE/joined" ;;`,
    ]);
    const result = sh(swarmRejoinScript("10.0.0.6", "10.0.0.1", { name: "vm6", role: "manager" }), { env, stdin: "SWMTKN-1-mgr\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("new-id\n");
    expect(result.stderr).toContain("join attempt 1 of 3 failed: " + raft + "; leaving the half-made state, trying again in 5 s");
    expect(result.stderr).toContain("join attempt 2 of 3 failed");
    expect(calls().filter((call) => call.startsWith("swarm"))).toEqual([
      "swarm join --advertise-addr 10.0.0.6 --token SWMTKN-1-mgr 10.0.0.1:2377",
      "swarm leave --force",
      "swarm join --advertise-addr 10.0.0.6 --token SWMTKN-1-mgr 10.0.0.1:2377",
      "swarm leave --force",
      "swarm join --advertise-addr 10.0.0.6 --token SWMTKN-1-mgr 10.0.0.1:2377",
    ]);
    fs.rmSync(path.join(dir, "calls"));
    fs.rmSync(path.join(dir, "joined"));
    fs.writeFileSync(path.join(dir, "joins"), "-5");
    const failed = sh(swarmRejoinScript("10.0.0.6", "10.0.0.1", { name: "vm6", role: "manager" }), { env, stdin: "SWMTKN-1-mgr\n" });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain("join attempt 2 of 3 failed");
    expect(failed.stderr.trim().split("\n").at(-1)).toBe(raft);
    expect(calls().filter((call) => call.startsWith("swarm join"))).toHaveLength(3);
  });

  it("rejoin: leaves a healthy member alone (its id listed, or no list) and fails clearly without a token", () => {
    const env = scriptedDocker([
      '"info --format {{.Swarm.LocalNodeState}}") echo active ;;',
      '"info --format {{.Swarm.Error}}") echo ;;',
      '"info --format {{.Swarm.NodeID}}") echo same-id ;;',
    ]);
    for (const stdin of ["SWMTKN-1-abc\n", "SWMTKN-1-abc\nid-primary\nsame-id\n"]) {
      const result = sh(swarmRejoinScript("10.0.0.2", "10.0.0.1", { name: "vm2", role: "worker" }), { env, stdin });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toBe("same-id\n");
    }
    expect(calls().filter((call) => call.startsWith("swarm"))).toEqual([]);
    const empty = sh(swarmRejoinScript("10.0.0.2", "10.0.0.1", { name: "vm2", role: "worker" }), { env, stdin: "" });
    expect(empty.status).toBe(1);
    expect(empty.stderr).toContain("no join token on stdin");
  });

  it("pin: a pulled image gets its repository digest, a local one keeps its tag, a digest stays, a missing one is pulled", () => {
    const digest = `sha256:${"d".repeat(64)}`;
    const env = scriptedDocker([
      `"image inspect --format {{range .RepoDigests}}{{println .}}{{end}} eclipse-mosquitto:2") echo "eclipse-mosquitto@${digest}" ;;`,
      `"image inspect --format {{range .RepoDigests}}{{println .}}{{end}} 10.0.0.1:5000/r/registry:2") echo "other/registry@sha256:${"f".repeat(64)}"; echo "10.0.0.1:5000/r/registry@${digest}" ;;`,
      '"image inspect --format"*) echo ;;',
      '"image inspect eclipse-mosquitto:2") if [ -e "$FAKE/pulled" ]; then echo "[]"; else exit 1; fi ;;',
      '"image inspect"*) echo "[]" ;;',
      '"pull -q eclipse-mosquitto:2") touch "$FAKE/pulled" ;;',
    ]);
    const refs = ["eclipse-mosquitto:2", "ai-swarm-base/registry:2", `registry:2@${digest}`, "10.0.0.1:5000/r/registry:2"];
    const result = sh(pinImagesScript(refs), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual([`eclipse-mosquitto:2@${digest}`, "ai-swarm-base/registry:2", `registry:2@${digest}`, `10.0.0.1:5000/r/registry:2@${digest}`]);
    expect(calls()).toContain("pull -q eclipse-mosquitto:2");
  });

  it("pin: an image the manager cannot pull fails, naming it", () => {
    const env = scriptedDocker(['"image inspect"*) exit 1 ;;', '"pull"*) exit 1 ;;']);
    const result = sh(pinImagesScript(["nosuch/image:1"]), { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("cannot pull nosuch/image:1 on the manager");
  });

  it("placement: waits until every service runs its replicas on active nodes, then prints the placement", () => {
    const env = scriptedDocker([
      `"node ls --format"*) printf "vm1 Active\\nvm2 Active\\nvm4 Drain\\n" ;;`,
      '"service inspect"*) echo 2 ;;',
      // First look: one replica still on the drained vm4; afterwards both on active nodes.
      `"service ps --filter desired-state=running --format {{.Node}} {{.CurrentState}} s1") if [ -e "$FAKE/seen" ]; then printf "vm1 Running 3 seconds ago\\nvm2 Running 1 second ago\\n"; else touch "$FAKE/seen"; printf "vm1 Running 3 seconds ago\\nvm4 Running 1 minute ago\\n"; fi ;;`,
      `"service ps --filter desired-state=running --format {{.Name}} {{.Node}} {{.CurrentState}} s1") printf "s1.1 vm1 Running 5 seconds ago\\ns1.2 vm2 Running 3 seconds ago\\n" ;;`,
    ]);
    const result = sh(placementScript(["s1"], 30).replace("sleep 2", "sleep 0"), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("s1.1 vm1 Running 5 seconds ago\ns1.2 vm2 Running 3 seconds ago\n");
    expect(calls().filter((call) => call.includes("--format {{.Node}} {{.CurrentState}}"))).toHaveLength(2);
  });

  it("placement: a service that does not converge in time fails the deploy, naming it", () => {
    const env = scriptedDocker([
      '"node ls --format"*) echo "vm1 Active" ;;',
      '"service inspect"*) echo 2 ;;',
      '"service ps"*"{{.Node}} {{.CurrentState}}"*) printf "vm1 Running 3 seconds ago\\nvm1 Starting 1 second ago\\n" ;;',
      '"service ps"*) echo "table" ;;',
    ]);
    const result = sh(placementScript(["s1"], 0), { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("not converged within 0 s: s1");
  });
});

/** The uneven-spread decision: awk reading `node`/`load`/`task` lines; prints the service to move next, its plan and the nodes to pause (or nothing). */
function nextToMove(lines: string[], moved: string[] = []): string {
  const result = spawnSync("awk", ["-v", `moved= ${moved.map((name) => `${name} `).join("")}`, UNEVEN_SPREAD_AWK], { input: lines.join("\n") + "\n", encoding: "utf8" });
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
  return result.stdout.trim();
}

const task = (service: string, node: string) => `task ${service} ${node}`;

/** Eligible nodes with their load: the tasks given plus `pinned` other tasks (etcd, the master, the broker, the registry) per node. */
function swarmLines(nodes: string[], tasks: [string, string][], pinned: Record<string, number> = {}): string[] {
  return [
    ...nodes.flatMap((node) => [`node ${node}`, `load ${node} ${tasks.filter(([, on]) => on === node).length + (pinned[node] ?? 0)}`]),
    ...tasks.map(([service, node]) => task(service, node)),
  ];
}
const FIVE = ["vm1", "vm2", "vm3", "vm4", "vm5"];
/** The dev lab's managers after a cold deploy: etcd on each; registry, broker and the two masters spread over them. */
const MANAGERS_PINNED = { vm1: 3, vm2: 2, vm3: 2 };

describe("the uneven-spread decision (UNEVEN_SPREAD_AWK)", () => {
  it("leaves an even spread alone: no node runs two worker tasks more than another", () => {
    // 3 services x 2 replicas on 5 nodes: 2,1,1,1,1 is as even as it gets.
    const tasks: [string, string][] = [["go", "vm1"], ["go", "vm2"], ["java", "vm3"], ["java", "vm4"], ["python", "vm5"], ["python", "vm1"]];
    expect(nextToMove(swarmLines(FIVE, tasks, MANAGERS_PINNED))).toBe("");
  });

  it("every worker on the two non-manager VMs (CI, e2e test 3): uneven however busy the managers are; the plan keeps what it can", () => {
    // Swarm's own rule (fewest tasks in all) put all six there: 3 each against the managers' 2-3 pinned tasks.
    const tasks: [string, string][] = [["python", "vm4"], ["python", "vm5"], ["go", "vm4"], ["go", "vm5"], ["java", "vm4"], ["java", "vm5"]];
    const lines = swarmLines(FIVE, tasks, MANAGERS_PINNED);
    // python stays; go goes to the two least loaded managers, every other eligible node paused meanwhile.
    expect(nextToMove(lines)).toBe("go vm2,vm3 vm1 vm4 vm5");
    // java next: one task onto the manager with no worker planned, one kept where it runs.
    expect(nextToMove(lines, ["go"])).toBe("java vm1,vm4 vm2 vm3 vm5");
    expect(nextToMove(lines, ["go", "java"])).toBe("");
  });

  it("a manager with pinned tasks and no worker, while others run two, gets one", () => {
    const tasks: [string, string][] = [["go", "vm2"], ["go", "vm5"], ["java", "vm3"], ["java", "vm4"], ["python", "vm2"], ["python", "vm3"]];
    expect(nextToMove(swarmLines(FIVE, tasks, { vm1: 3 }))).toBe("python vm1,vm2 vm3 vm4 vm5");
  });

  it("after a node came back empty: moves the first service the plan places differently, each at most once", () => {
    // vm5 was down: its tasks went to vm2-vm4 (vm1: 3 pinned; vm2-vm4: 2 workers each; vm5: 0).
    const tasks: [string, string][] = [["python", "vm2"], ["python", "vm3"], ["go", "vm4"], ["go", "vm2"], ["java", "vm3"], ["java", "vm4"]];
    const lines = swarmLines(FIVE, tasks, { vm1: 3 });
    // go keeps vm4 and takes vm5, the emptier of the two nodes without a worker planned.
    expect(nextToMove(lines)).toBe("go vm4,vm5 vm1 vm2 vm3");
    expect(nextToMove(lines, ["go"])).toBe("java vm1,vm3 vm2 vm4 vm5");
    expect(nextToMove(lines, ["python", "go", "java"])).toBe("");
  });

  it("moves a service whose own tasks are uneven even when the worker counts are not (maxReplicasPerNode 2)", () => {
    const tasks: [string, string][] = [["go", "vm1"], ["go", "vm1"], ["java", "vm2"], ["java", "vm2"]];
    expect(nextToMove(swarmLines(["vm1", "vm2"], tasks))).toBe("go vm1,vm2");
    expect(nextToMove(swarmLines(["vm1", "vm2"], tasks), ["go"])).toBe("java vm1,vm2");
  });

  it("plans each service as evenly as it can be: never more of it on a node than now, however many nodes it leaves", () => {
    // Three go tasks, two of them on vm1 (maxReplicasPerNode 2): the plan spreads them over vm1, vm2 and vm3.
    const tasks: [string, string][] = [["go", "vm1"], ["go", "vm1"], ["go", "vm2"], ["java", "vm1"]];
    expect(nextToMove(swarmLines(["vm1", "vm2", "vm3"], tasks))).toBe("go vm1,vm2,vm3");
    // Two nodes, max 1, two replicas each: 2,2 is all there is.
    expect(nextToMove(swarmLines(["vm1", "vm2"], [["go", "vm1"], ["go", "vm2"], ["java", "vm1"], ["java", "vm2"]], { vm1: 3 }))).toBe("");
  });

  it("counts only eligible nodes: a task on a node not listed (down or drained) does not count, an eligible node without tasks does", () => {
    expect(nextToMove(["node vm1", "load vm1 1", "node vm2", "load vm2 0", task("go", "vm9"), task("go", "vm9"), task("go", "vm1")])).toBe("");
    expect(nextToMove(swarmLines(["vm1", "vm2", "vm3"], [["go", "vm1"], ["go", "vm1"]]))).toBe("go vm1,vm2 vm3");
  });

  it("decides nothing without eligible nodes or tasks", () => {
    expect(nextToMove([task("go", "vm1"), task("go", "vm1"), task("go", "vm1")])).toBe("");
    expect(nextToMove(swarmLines(FIVE, []))).toBe("");
  });

  it("converges on 150 random spreads: each service moved where planned, at most once, leaves an even spread that plans no move", () => {
    // A seeded generator (mulberry32): the same 150 cases every run.
    let seed = 20261130;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = (from: number, to: number) => from + Math.floor(random() * (to - from + 1));
    for (let run = 0; run < 150; run++) {
      const nodes = FIVE.concat(["vm6"]).slice(0, pick(2, 6));
      const max = pick(1, 2);
      const pinned = Object.fromEntries(nodes.map((node) => [node, pick(0, 3)]));
      const placed = new Map<string, string[]>();
      for (const service of ["python", "go", "java"].slice(0, pick(1, 3))) {
        const room = nodes.flatMap((node) => Array.from({ length: max }, () => node));
        placed.set(service, Array.from({ length: pick(1, nodes.length * max) }, () => room.splice(Math.floor(random() * room.length), 1)[0] ?? ""));
      }
      const lines = () => swarmLines(nodes, [...placed].flatMap(([service, on]) => on.map((node): [string, string] => [service, node])), pinned);
      const moved: string[] = [];
      for (let next = nextToMove(lines()); next !== ""; next = nextToMove(lines(), moved)) {
        const [service = "", onto = ""] = next.split(" ");
        expect(moved, `case ${run}: ${service} planned twice`).not.toContain(service);
        placed.set(service, onto.split(","));
        moved.push(service);
      }
      const perNode = (on: string[]) => nodes.map((node) => on.filter((n) => n === node).length);
      const spreadOf = (counts: number[]) => Math.max(...counts) - Math.min(...counts);
      const label = `case ${run}: ${JSON.stringify(Object.fromEntries(placed))}`;
      expect(spreadOf(perNode([...placed.values()].flat())), label).toBeLessThanOrEqual(1);
      for (const on of placed.values()) {
        expect(spreadOf(perNode(on)), label).toBeLessThanOrEqual(1);
        expect(Math.max(...perNode(on)), label).toBeLessThanOrEqual(max);
      }
      expect(nextToMove(lines()), label).toBe("");
    }
  });
});

describe("image pulls and rebalance against a fake docker", () => {
  const held = `10.0.0.1:5000/ai-swarm/master@sha256:${"a".repeat(64)}`;
  const fresh = `10.0.0.1:5000/ai-swarm/worker-go@sha256:${"b".repeat(64)}`;

  it("pull: pulls only what the node lacks, logged in with the password from stdin in a throw-away config, then logs out", () => {
    const env = scriptedDocker([
      `"image inspect ${held}") echo "[]" ;;`,
      '"image inspect"*) exit 1 ;;',
      'login*) cat > "$FAKE/login-stdin"; echo "$DOCKER_CONFIG" > "$FAKE/config-dir" ;;',
      '"pull -q"*) echo "$DOCKER_CONFIG" > "$FAKE/pull-config" ;;',
      'logout*) ;;',
    ]);
    const result = sh(pullImagesScript("10.0.0.1:5000", "aiswarm", [held, fresh]), { env, stdin: "pw-123\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe(`has ${held}\npulled ${fresh}\n`);
    expect(fs.readFileSync(path.join(dir, "login-stdin"), "utf8")).toBe("pw-123");
    const configDir = fs.readFileSync(path.join(dir, "config-dir"), "utf8").trim();
    expect(fs.readFileSync(path.join(dir, "pull-config"), "utf8").trim()).toBe(configDir);
    expect(fs.existsSync(configDir)).toBe(false);
    expect(calls().filter((call) => /^(login|pull|logout)/.test(call))).toEqual([
      "login --username aiswarm --password-stdin 10.0.0.1:5000",
      `pull -q ${fresh}`,
      "logout 10.0.0.1:5000",
    ]);
    expect(calls().join("\n")).not.toContain("pw-123");
  });

  it("pull: a node that holds every image does not log in (no registry needed)", () => {
    const env = scriptedDocker(['"image inspect"*) echo "[]" ;;', "login*) exit 1 ;;"]);
    const result = sh(pullImagesScript("10.0.0.1:5000", "aiswarm", [held, fresh]), { env, stdin: "pw-123\n" });
    expect(result.status, result.stderr).toBe(0);
    expect(calls().some((call) => call.startsWith("login"))).toBe(false);
  });

  it("pull: fails naming the image it cannot pull, and without a password says so", () => {
    const env = scriptedDocker(['"image inspect"*) exit 1 ;;', "login*) cat >/dev/null ;;", '"pull"*) exit 1 ;;']);
    const failed = sh(pullImagesScript("10.0.0.1:5000", "aiswarm", [fresh]), { env, stdin: "pw-123\n" });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain(`cannot pull ${fresh} from 10.0.0.1:5000`);
    const noPassword = sh(pullImagesScript("10.0.0.1:5000", "aiswarm", [fresh]), { env, stdin: "" });
    expect(noPassword.status).toBe(1);
    expect(noPassword.stderr).toContain("no registry password on stdin");
  });

  /**
   * A swarm for the rebalance: nodes and their pinned tasks (etcd, master, broker, registry), the worker services'
   * tasks under $FAKE/ps, paused nodes under $FAKE/paused (with the rebalance's label). A force-update replaces the
   * service's tasks one at a time, stop-first, each where Swarm's scheduler would put it (swarmkit's nodeLess: an
   * Active node, fewest tasks of the service, then fewest tasks in all; at most one per node here).
   */
  function swarmOfWorkers(nodes: string[], pinned: Record<string, number>, tasks: Record<string, string[]>, options: { failing?: string; ignorePause?: boolean } = {}) {
    fs.mkdirSync(path.join(dir, "ps"));
    fs.mkdirSync(path.join(dir, "paused"));
    fs.writeFileSync(path.join(dir, "nodes"), nodes.join(" "));
    fs.writeFileSync(path.join(dir, "pinned"), Object.entries(pinned).flatMap(([node, n]) => Array.from({ length: n }, () => `${node} Running\n`)).join(""));
    for (const [service, on] of Object.entries(tasks)) fs.writeFileSync(path.join(dir, "ps", service), on.map((node) => `${node} Running 1 minute ago\n`).join(""));
    const schedule = [
      'svc="${*##* }"; n=$(grep -c . "$FAKE/ps/$svc"); i=0',
      'while [ $i -lt $n ]; do',
      '  sed -i 1d "$FAKE/ps/$svc"',
      '  to=$(for h in $(cat "$FAKE/nodes"); do [ -e "$FAKE/paused/$h" ] && continue; echo "$h $(grep -c "^$h " "$FAKE/ps/$svc") $(cat "$FAKE"/ps/* "$FAKE/pinned" | grep -c "^$h ")"; done | awk \'$2 < 1\' | sort -s -k2,2n -k3,3n | head -n 1 | cut -d" " -f1)',
      '  [ -n "$to" ] || exit 1',
      '  echo "$to Running 1 second ago" >> "$FAKE/ps/$svc"; i=$((i + 1))',
      'done',
    ].join("\n");
    return scriptedDocker([
      `"node ls --format {{.Hostname}} {{.Status}} {{.Availability}}") for h in $(cat "$FAKE/nodes"); do if [ -e "$FAKE/paused/$h" ]; then echo "$h Ready Pause"; else echo "$h Ready Active"; fi; done; echo "vm9 Down Active" ;;`,
      '"node ls -q") for h in $(cat "$FAKE/nodes"); do echo "$h"; done ;;',
      `"node inspect --format"*) for h in $(cat "$FAKE/nodes"); do if [ -e "$FAKE/paused/$h" ]; then echo "$h true"; else echo "$h "; fi; done ;;`,
      `"node update --availability pause --label-add ${REBALANCE_PAUSE_LABEL}=true "*) ${options.ignorePause ? ":" : 'touch "$FAKE/paused/${*##* }"'} ;;`,
      `"node update --availability active --label-rm ${REBALANCE_PAUSE_LABEL} "*) rm "$FAKE/paused/\${*##* }" ;;`,
      '"service ps --filter desired-state=running --format {{.Node}} {{.CurrentState}} "*) cat "$FAKE/ps/${*##* }" ;;',
      '"node ps --filter desired-state=running --format {{.CurrentState}} "*) cat "$FAKE"/ps/* "$FAKE/pinned" | awk -v n="${*##* }" \'$1 == n { print "Running" }\' ;;',
      ...(options.failing ? [`"service update --force --detach=false --quiet ${options.failing}") exit 1 ;;`] : []),
      `"service update --force --detach=false --quiet "*) ${schedule} ;;`,
    ]);
  }
  const tasksOn = (service: string) => fs.readFileSync(path.join(dir, "ps", service), "utf8").split("\n").filter(Boolean).map((line) => line.split(" ")[0]);
  const pausedNow = () => fs.readdirSync(path.join(dir, "paused"));
  /** CI's cold deploy: Swarm put every worker on the two non-manager VMs, the managers busy with 3, 3 and 3 pinned tasks. */
  const ALL_ON_TWO = { s1: ["vm4", "vm5"], s2: ["vm4", "vm5"], s3: ["vm4", "vm5"] };
  const BUSY_MANAGERS = { vm1: 3, vm2: 3, vm3: 3 };

  it("rebalance: moves each planned service with the other nodes paused, so Swarm puts the tasks where planned; then resumes them", () => {
    const env = swarmOfWorkers(FIVE, BUSY_MANAGERS, ALL_ON_TWO);
    const result = sh(rebalanceScript(["s1", "s2", "s3"]), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe(
      [
        "before: vm1=0 vm2=0 vm3=0 vm4=3 vm5=3 ",
        "rebalancing s2 onto vm1,vm2",
        "rebalancing s3 onto vm3,vm4",
        "after: vm1=1 vm2=1 vm3=1 vm4=2 vm5=1 ",
        "",
      ].join("\n"),
    );
    expect([tasksOn("s1"), tasksOn("s2").sort(), tasksOn("s3").sort()]).toEqual([["vm4", "vm5"], ["vm1", "vm2"], ["vm3", "vm4"]]);
    expect(pausedNow()).toEqual([]);
    const nodeUpdates = calls().filter((call) => call.startsWith("node update"));
    expect(nodeUpdates.filter((call) => call.includes("--availability pause")).map((call) => call.split(" ").pop())).toEqual(["vm3", "vm4", "vm5", "vm1", "vm2", "vm5"]);
    expect(nodeUpdates.filter((call) => call.includes("--availability active")).map((call) => call.split(" ").pop()).sort()).toEqual(["vm1", "vm2", "vm3", "vm4", "vm5", "vm5"]);
  });

  it("rebalance: the pause is what moves them: with a docker that ignores it, Swarm's rule puts every task straight back", () => {
    const env = swarmOfWorkers(FIVE, BUSY_MANAGERS, ALL_ON_TWO, { ignorePause: true });
    const result = sh(rebalanceScript(["s1", "s2", "s3"]), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain("rebalancing s2 onto vm1,vm2");
    expect(result.stdout).toContain("after: vm1=0 vm2=0 vm3=0 vm4=3 vm5=3 ");
  });

  it("rebalance: an even spread moves nothing and pauses nothing; a second run after a rebalance moves nothing", () => {
    const env = swarmOfWorkers(FIVE, BUSY_MANAGERS, { s1: ["vm4", "vm5"], s2: ["vm1", "vm2"], s3: ["vm3", "vm4"] });
    const result = sh(rebalanceScript(["s1", "s2", "s3"]), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("before: vm1=1 vm2=1 vm3=1 vm4=2 vm5=1 \nspread is even: nothing moved\nafter: vm1=1 vm2=1 vm3=1 vm4=2 vm5=1 \n");
    expect(calls().some((call) => call.startsWith("service update") || call.startsWith("node update"))).toBe(false);
  });

  it("rebalance: nodes an interrupted run left paused (its label on them) are resumed first, and said so", () => {
    const env = swarmOfWorkers(FIVE, BUSY_MANAGERS, { s1: ["vm4", "vm5"], s2: ["vm1", "vm2"], s3: ["vm3", "vm4"] });
    fs.writeFileSync(path.join(dir, "paused", "vm2"), "");
    const result = sh(rebalanceScript(["s1", "s2", "s3"]), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.split("\n")[0]).toBe("resumed vm2, left paused by an interrupted rebalance");
    expect(result.stdout).toContain("spread is even: nothing moved");
    expect(pausedNow()).toEqual([]);
  });

  it("rebalance: a force-update that fails ends it naming the service, with every node it paused resumed", () => {
    const env = swarmOfWorkers(FIVE, BUSY_MANAGERS, ALL_ON_TWO, { failing: "s2" });
    const result = sh(rebalanceScript(["s1", "s2", "s3"]), { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("force-updating s2 failed");
    expect(result.stdout).toContain("rebalancing s2 onto vm1,vm2");
    expect(pausedNow()).toEqual([]);
    expect(calls().filter((call) => call.includes("--availability pause"))).toHaveLength(3);
  });

  it("placement with rebalance: rebalances (progress on stderr) before it prints the placement on stdout", () => {
    const env = swarmOfWorkers(FIVE, BUSY_MANAGERS, ALL_ON_TWO);
    const arms = fs.readFileSync(path.join(dir, "bin", "docker"), "utf8");
    fs.writeFileSync(
      path.join(dir, "bin", "docker"),
      arms.replace('case "$*" in', 'case "$*" in\n  "service inspect"*) echo 2 ;;\n  "service ps --filter desired-state=running --format {{.Name}}"*) echo placement ;;'),
    );
    const result = sh(placementScript(["s1", "s2", "s3"], 30, rebalanceScript(["s1", "s2", "s3"])).replace("sleep 2", "sleep 0"), { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("placement\n");
    expect(result.stderr).toContain("rebalancing s2 onto vm1,vm2");
    expect(result.stderr).toContain("after: vm1=1 vm2=1 vm3=1 vm4=2 vm5=1");
  });
});
