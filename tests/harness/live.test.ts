// The harness against real parts: a real sshd on loopback, the real Pulumi
// SDK running a real program through deploy(), real commands, and (when this
// machine has a Docker engine) the SSH-forwarded Engine API.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerEngine } from "../../lab/harness/docker-engine";
import { deploy } from "../../lab/harness/deploy";
import { assertEnvAccepted, openSocketTunnel, removeTempFiles, runRemote, type SshTarget } from "../../lab/harness/ssh";
import { sshdAvailable, startSshd, type TestSshd } from "./sshd";

const canRun = sshdAvailable();
if (!canRun) console.log("skipping live harness tests: /usr/sbin/sshd not installed (apt-get install -y openssh-server)");

describe.skipIf(!canRun)("live harness against a real sshd", () => {
  let sshd: TestSshd;
  let target: SshTarget;
  let workDir: string;

  beforeAll(async () => {
    sshd = await startSshd();
    target = { host: "127.0.0.1", port: sshd.port, user: sshd.user, privateKey: sshd.privateKey };
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "harness-live-"));
  });

  afterAll(async () => {
    await sshd?.stop();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    removeTempFiles();
  });

  describe("runRemote", () => {
    it("runs the command in the remote shell, pipes stdin, returns stdout, stderr and the exit code", async () => {
      const result = await runRemote(target, 'read line; echo "got $line"; echo oops >&2; exit 4', { stdin: "hello\n" });
      expect(result).toEqual({ code: 4, stdout: "got hello\n", stderr: "oops\n" });
    });

    it("sends environment variables the server accepts", async () => {
      const result = await runRemote(target, 'echo "$HARNESS_A|$HARNESS_B"', { env: { HARNESS_A: "one", HARNESS_B: "two words" } });
      expect(result.stdout).toBe("one|two words\n");
    });

    it("fails, like the provider, when the server refuses a variable (AcceptEnv)", async () => {
      await expect(assertEnvAccepted(target, ["HARNESS_OK", "REFUSED_VAR"])).rejects.toThrow(/refuses environment variable\(s\) REFUSED_VAR/);
      await expect(assertEnvAccepted(target, ["HARNESS_OK"])).resolves.toBeUndefined();
    });

    it("verifies the host key when one is given", async () => {
      const ok = await runRemote({ ...target, hostKey: sshd.hostPublicKey }, "echo ok");
      expect(ok.stdout).toBe("ok\n");
      const wrongKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
      const bad = await runRemote({ ...target, hostKey: wrongKey }, "echo ok");
      expect(bad.code).toBe(255);
      expect(bad.stdout).toBe("");
    });
  });

  const dockerSock = "/var/run/docker.sock";
  if (!fs.existsSync(dockerSock)) console.warn(`[skip] socket forwarding test: no Docker engine here (${dockerSock} missing; bash lab/engine.sh start)`);
  it.skipIf(!fs.existsSync(dockerSock))("forwards a remote Docker socket over SSH and speaks the Engine API through it", async () => {
    const tunnel = await openSocketTunnel({ user: sshd.user, host: "127.0.0.1", port: sshd.port }, [
      "-i", path.join(workDir, "key"), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    ].map((arg) => (arg.endsWith("/key") ? writeKey(workDir, sshd.privateKey) : arg)));
    try {
      const version = await new DockerEngine(tunnel.socketPath).call<{ ApiVersion: string }>("GET", "/version");
      expect(version.ApiVersion).toMatch(/^1\.\d+$/);
    } finally {
      tunnel.close();
    }
  });

  describe("deploy(): a real program under the live monitor", () => {
    const run = async (mode: string, tag: string) => {
      const projectDir = path.join(workDir, tag);
      fs.mkdirSync(projectDir, { recursive: true });
      const outFile = path.join(projectDir, "written.txt");
      fs.writeFileSync(
        path.join(projectDir, "Pulumi.test.yaml"),
        `config:\n  ai-swarm:mode: ${mode}\n  ai-swarm:sshPort: ${sshd.port}\n  ai-swarm:sshUser: ${sshd.user}\n  ai-swarm:outFile: ${outFile}\n  ai-swarm:sshPrivateKey:\n    secure: v1:placeholder\n`,
      );
      fs.writeFileSync(path.join(projectDir, "secrets.yaml"), `sshPrivateKey: |\n${sshd.privateKey.replace(/^/gm, "  ")}`);
      const lines: string[] = [];
      const result = deploy({
        stack: "test",
        projectDir,
        program: path.join(__dirname, "fixtures", "program.js"),
        secretsFile: path.join(projectDir, "secrets.yaml"),
        stateFile: path.join(workDir, "state.json"),
        log: (line) => lines.push(line),
      });
      return { result, lines, outFile };
    };

    it("applies every resource for real, in dependency order, and returns outputs with secrets masked", async () => {
      const { result, lines, outFile } = await run("ok", "ok");
      const { outputs, counts } = await result;
      const password = fs.readFileSync(outFile, "utf8");
      expect(password).toMatch(/^[A-Za-z0-9]{20}$/);
      expect(outputs["greeting"]).toBe("written hello");
      expect(outputs["password"]).toBe("[secret]");
      expect(outputs["told"]).toBe("pw is [secret]");
      expect(counts.get("ran")).toBe(2);
      expect(counts.get("created")).toBe(1);
      const log = lines.join("\n");
      expect(log).toMatch(/✓ ran command:remote:Command write/);
      expect(log.indexOf("✓ ran command:remote:Command write")).toBeLessThan(log.indexOf("… command:remote:Command tell"));
      expect(log).not.toContain(password);
      expect(log).not.toContain(sshd.privateKey.split("\n")[1]);
    });

    it("a re-run keeps the generated password (harness state) and runs the commands again", async () => {
      const first = await run("ok", "again1");
      await first.result;
      const second = await run("ok", "again2");
      const { counts } = await second.result;
      expect(fs.readFileSync(second.outFile, "utf8")).toBe(fs.readFileSync(first.outFile, "utf8"));
      expect(counts.get("unchanged")).toBe(1);
    });

    it("a failing command stops the deploy with its stderr, secrets masked", async () => {
      const { result, outFile } = await run("fail", "fail");
      const error = await result.then(() => undefined, (e: Error) => e);
      expect(error?.message).toMatch(/command:remote:Command tell failed .*create command exited 3/);
      expect(error?.message).toContain("pw is [secret]");
      expect(error?.message).not.toContain(fs.readFileSync(outFile, "utf8"));
    });

    it("an unknown resource type fails loudly, naming the type", async () => {
      const { result } = await run("unknown", "unknown");
      await expect(result).rejects.toThrow(/resource type mystery:index:Thing is not supported by the live harness/);
    });

    it("environment the server refuses fails the command, as with the real provider", async () => {
      const { result } = await run("badenv", "badenv");
      await expect(result).rejects.toThrow(/refuses environment variable\(s\) NOT_ACCEPTED/);
    });
  });
});

function writeKey(dir: string, key: string): string {
  const file = path.join(dir, "key");
  fs.writeFileSync(file, key, { mode: 0o600 });
  return file;
}
