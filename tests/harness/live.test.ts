// The harness against real parts: a real sshd on loopback, the real Pulumi
// SDK running a real program through deploy(), real commands, and (when this
// machine has a Docker engine) the SSH-forwarded Engine API.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerEngine } from "../../lab/harness/docker-engine";
import { deploy, destroy } from "../../lab/harness/deploy";
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
    interface Variant {
      mode?: string;
      version?: string;
      trigger?: string;
      extra?: boolean;
      previous?: boolean;
      renamed?: boolean;
      kept?: boolean;
      guard?: boolean;
      warn?: boolean;
      engineHost?: string;
    }

    /** One project dir per scenario (its state persists across deploys of that scenario). */
    const scenario = (tag: string) => {
      const projectDir = path.join(workDir, tag);
      fs.mkdirSync(projectDir, { recursive: true });
      const outFile = path.join(projectDir, "written.txt");
      const logFile = path.join(projectDir, "log.txt");
      const stateFile = path.join(projectDir, "state.json");
      fs.writeFileSync(path.join(projectDir, "secrets.yaml"), `sshPrivateKey: |\n${sshd.privateKey.replace(/^/gm, "  ")}`);
      const writeConfig = (variant: Variant) =>
        fs.writeFileSync(
          path.join(projectDir, "Pulumi.test.yaml"),
          [
            "config:",
            `  ai-swarm:mode: ${variant.mode ?? "ok"}`,
            `  ai-swarm:sshPort: ${sshd.port}`,
            `  ai-swarm:sshUser: ${sshd.user}`,
            `  ai-swarm:outFile: ${outFile}`,
            `  ai-swarm:logFile: ${logFile}`,
            `  ai-swarm:version: "${variant.version ?? "1"}"`,
            `  ai-swarm:trigger: ${variant.trigger ?? "a"}`,
            `  ai-swarm:extra: ${variant.extra ? "yes" : "no"}`,
            `  ai-swarm:previous: ${variant.previous ? "yes" : "no"}`,
            `  ai-swarm:renamed: ${variant.renamed ? "yes" : "no"}`,
            `  ai-swarm:kept: ${variant.kept ? "yes" : "no"}`,
            `  ai-swarm:guard: ${variant.guard ? "yes" : "no"}`,
            `  ai-swarm:warn: ${variant.warn ? "yes" : "no"}`,
            ...(variant.engineHost ? [`  ai-swarm:engineHost: ${variant.engineHost}`] : []),
            "  ai-swarm:sshPrivateKey:",
            "    secure: v1:placeholder",
            "",
          ].join("\n"),
        );
      const common = { stack: "test", projectDir, secretsFile: path.join(projectDir, "secrets.yaml"), stateFile };
      const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").trim().split("\n") : []);
      return {
        outFile,
        stateFile,
        log,
        /** Deploys the variant; resolves with what deploy() returned plus the log lines added by this run. */
        async up(variant: Variant = {}) {
          writeConfig(variant);
          const before = log().length;
          const lines: string[] = [];
          const result = await deploy({ ...common, program: path.join(__dirname, "fixtures", "program.js"), log: (line) => lines.push(line) });
          return { ...result, lines, ran: log().slice(before) };
        },
        start(variant: Variant = {}) {
          writeConfig(variant);
          const lines: string[] = [];
          return { result: deploy({ ...common, program: path.join(__dirname, "fixtures", "program.js"), log: (line) => lines.push(line) }), lines };
        },
        async destroy() {
          const before = log().length;
          const summary = await destroy({ ...common, log: () => undefined });
          return { summary, ran: log().slice(before) };
        },
      };
    };

    it("applies every resource for real, in dependency order, and returns outputs with secrets masked", async () => {
      const s = scenario("first");
      const { outputs, counts, lines, ran } = await s.up();
      const password = fs.readFileSync(s.outFile, "utf8");
      expect(password).toMatch(/^[A-Za-z0-9]{20}$/);
      expect(outputs["greeting"]).toBe("written hello");
      expect(outputs["password"]).toBe("[secret]");
      expect(outputs["told"]).toBe("pw is [secret]");
      expect(counts.get("created")).toBe(3);
      expect(ran).toEqual(["create write v1", "create tell"]);
      const text = lines.join("\n");
      expect(text).toMatch(/✓ created command:remote:Command write/);
      // What the command printed, as the engine shows it under the resource (logging defaults to stdout and stderr), secrets masked.
      expect(lines).toContain("    | written hello");
      expect(lines).toContain("    | pw is [secret]");
      expect(text.indexOf("✓ created command:remote:Command write")).toBeLessThan(text.indexOf("… command:remote:Command tell"));
      expect(text).not.toContain(password);
      expect(text).not.toContain(sshd.privateKey.split("\n")[1]);
      // The state keeps what Pulumi's would, secrets encrypted: neither the password nor the key is in it.
      const state = fs.readFileSync(s.stateFile, "utf8");
      expect(state).toContain("command:remote:Command");
      expect(state).not.toContain(password);
      expect(state).not.toContain(sshd.privateKey.split("\n")[1]);
      expect(fs.statSync(s.stateFile).mode & 0o777).toBe(0o600);
    });

    it("a re-run with nothing changed does nothing: every resource unchanged, no command runs, same password", async () => {
      const s = scenario("again");
      await s.up();
      const firstPassword = fs.readFileSync(s.outFile, "utf8");
      const second = await s.up();
      expect(second.ran).toEqual([]);
      expect(Object.fromEntries(second.counts)).toEqual({ unchanged: 3 });
      expect(second.summary.warnings).toEqual([]);
      expect(second.outputs["greeting"]).toBe("written hello");
      expect(fs.readFileSync(s.outFile, "utf8")).toBe(firstPassword);
      expect(second.lines.join("\n")).toMatch(/= unchanged command:remote:Command write/);
    });

    it("an edited command is updated (its create runs again); changed triggers replace it, the old one deleted after", async () => {
      const s = scenario("change");
      await s.up();
      const edited = await s.up({ version: "2" });
      expect(edited.ran).toEqual(["create write v2"]);
      expect(Object.fromEntries(edited.counts)).toEqual({ updated: 1, unchanged: 2 });
      const retriggered = await s.up({ version: "2", trigger: "b" });
      expect(retriggered.ran).toEqual(["create tell", "delete tell"]);
      expect(Object.fromEntries(retriggered.counts)).toEqual({ replaced: 1, unchanged: 2, deleted: 1 });
    });

    it("a resource the program no longer declares is deleted with the inputs it was created with (stdin included)", async () => {
      const s = scenario("remove");
      const added = await s.up({ extra: true });
      expect(added.ran).toContain("create extra");
      const removed = await s.up({ extra: false });
      expect(removed.ran).toEqual(["delete extra from-stdin"]);
      expect(Object.fromEntries(removed.counts)).toEqual({ unchanged: 3, deleted: 1 });
      expect(fs.readFileSync(s.stateFile, "utf8")).not.toContain("command:remote:Command::extra");
    });

    it("a re-typed component and a renamed resource, with aliases, keep their state: unchanged, not created again and deleted", async () => {
      const s = scenario("alias");
      await s.up();
      const renamed = await s.up({ renamed: true });
      expect(renamed.ran).toEqual([]);
      expect(Object.fromEntries(renamed.counts)).toEqual({ unchanged: 3 });
      expect(renamed.lines.join("\n")).toMatch(/Command written was .*Command write \(alias\)/);
      const state = fs.readFileSync(s.stateFile, "utf8");
      expect(state).toContain("ai-swarm:test:Team$command:remote:Command::written");
      expect(state).toContain("ai-swarm:test:Team$random:index/randomPassword:RandomPassword::pw");
      expect(state).not.toContain("ai-swarm:test:Group$");
      // Without the alias the engine would create the new one and delete the old.
    });

    it("the previous output the server refuses (AcceptEnv) is the provider's warning, not an error", async () => {
      const s = scenario("previous");
      await s.up({ previous: true });
      const replaced = await s.up({ previous: true, trigger: "b" });
      expect(replaced.summary.warnings).toEqual([
        expect.stringMatching(/tell: Unable to set 'PULUMI_COMMAND_STDERR'\. This only works if your SSH server is configured to accept these variables via AcceptEnv/),
      ]);
      expect(replaced.summary.warnings.join("")).not.toContain(fs.readFileSync(s.outFile, "utf8"));
    });

    it("destroy deletes every resource, dependents first, and leaves an empty state", async () => {
      const s = scenario("destroy");
      await s.up({ extra: true });
      const { summary, ran } = await s.destroy();
      expect(ran).toEqual(["delete extra from-stdin", "delete tell", "delete write"]);
      expect(summary.counts).toEqual({ deleted: 4 });
      const again = await s.destroy();
      expect(again.ran).toEqual([]);
    });

    it("a StackReference to the stack itself reads the outputs of its last successful run", async () => {
      const s = scenario("self-reference");
      const first = await s.up();
      expect(first.outputs["runs"]).toBe(1);
      const second = await s.up();
      expect(second.outputs["runs"]).toBe(2);
      expect(second.lines.join("\n")).toContain("= read pulumi:pulumi:StackReference self (organization/ai-swarm/test: 4 outputs of the last run)");
      expect(Object.fromEntries(second.counts)).toEqual({ unchanged: 3 });
    });

    it("a RunError thrown in an apply (the quorum guard) fails the deploy with its message, before the command it gates runs", async () => {
      const s = scenario("guard");
      await s.up({ guard: true });
      const refused = await s.start({ guard: true, trigger: "b" }).result.then(() => undefined, (e: Error) => e);
      expect(refused?.message).toContain("refused: this stack already ran 1 time(s)");
      expect(s.log().filter((line) => line === "create tell")).toHaveLength(1);
    });

    it("a provider whose host changes is updated under the same id (as the engine's registry), so the resources that refer to it follow it", async () => {
      const s = scenario("provider-host");
      await s.up({ engineHost: "ssh://root@192.0.2.1:22" });
      const idOf = () => Object.values((JSON.parse(fs.readFileSync(s.stateFile, "utf8")) as { resources: Record<string, { type: string; id: string }> }).resources).find((r) => r.type === "pulumi:providers:docker")?.id;
      const before = idOf();
      expect(before).toBeDefined();
      const moved = await s.up({ engineHost: "ssh://root@192.0.2.4:22" });
      expect(moved.summary.resources.filter((r) => r.type === "pulumi:providers:docker").map((r) => r.outcome)).toEqual(["updated"]);
      expect(idOf()).toBe(before);
      const again = await s.up({ engineHost: "ssh://root@192.0.2.4:22" });
      expect(again.summary.resources.filter((r) => r.type === "pulumi:providers:docker").map((r) => r.outcome)).toEqual(["unchanged"]);
    });

    it("a retainOnDelete resource leaves the state without its delete running", async () => {
      const s = scenario("kept");
      expect((await s.up({ kept: true })).ran.sort()).toEqual(["create kept", "create tell", "create write v1"]);
      const dropped = await s.up({ kept: false });
      expect(dropped.ran).toEqual([]);
      expect(Object.fromEntries(dropped.counts)).toEqual({ unchanged: 3, retained: 1 });
      expect(dropped.lines.join("\n")).toContain("✓ retained command:remote:Command kept (retainOnDelete: dropped from the state, not deleted)");
      expect(fs.readFileSync(s.stateFile, "utf8")).not.toContain("command:remote:Command::kept");
    });

    it("the program's pulumi.log.warn is a warning of the run (shown and in the summary)", async () => {
      const s = scenario("warn");
      const warned = await s.up({ warn: true });
      expect(warned.summary.warnings).toEqual(["this stack is only a test"]);
      expect(warned.lines).toContain("  warning: this stack is only a test");
    });

    it("a failing command stops the deploy with its stderr, secrets masked", async () => {
      const s = scenario("fail");
      const error = await s.start({ mode: "fail" }).result.then(() => undefined, (e: Error) => e);
      expect(error?.message).toMatch(/command:remote:Command tell failed .*create command exited 3/);
      expect(error?.message).toContain("pw is [secret]");
      expect(error?.message).not.toContain(fs.readFileSync(s.outFile, "utf8"));
    });

    it("an unknown resource type fails loudly, naming the type", async () => {
      await expect(scenario("unknown").start({ mode: "unknown" }).result).rejects.toThrow(/resource type mystery:index:Thing is not supported by the live harness/);
    });

    it("environment the server refuses fails the command, as with the real provider", async () => {
      await expect(scenario("badenv").start({ mode: "badenv" }).result).rejects.toThrow(/refuses environment variable\(s\) NOT_ACCEPTED/);
    });
  });
});

function writeKey(dir: string, key: string): string {
  const file = path.join(dir, "key");
  fs.writeFileSync(file, key, { mode: 0o600 });
  return file;
}
