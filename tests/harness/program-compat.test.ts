// Contract between the Pulumi program and the live harness, without a lab:
// runs the REAL index.ts with the dev stack config under plain Pulumi mocks,
// records every resource it registers, and checks the harness can translate
// each one (types it knows, every docker input field it translates). A field
// or type added to the program that the harness would drop fails here first.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { planBuild } from "../../lab/harness/appliers/image";
import { passwordRules } from "../../lab/harness/appliers/random";
import { networkCreateBody, objectData } from "../../lab/harness/appliers/swarm";
import type { JsonObject } from "../../lab/harness/json";
import { unwrapSecrets } from "../../lab/harness/secrets";
import { translateService } from "../../lab/harness/service-spec";
import { buildEngineConfig } from "../../lab/harness/stack-config";
import { mockPinnedImages, mockStdout, programRejections } from "../pulumi/helpers";

const ROOT = path.resolve(__dirname, "..", "..");
const PROGRAM = path.join(ROOT, "index.ts");
const STACK_FILE = path.join(ROOT, "Pulumi.dev.yaml");
const NEEDED = [PROGRAM, STACK_FILE, ...["master", "worker-python", "worker-go", "worker-java"].map((name) => path.join(ROOT, "images", name, "Dockerfile"))];
const missing = NEEDED.filter((file) => !fs.existsSync(file));
const ready = missing.length === 0;
if (!ready) console.log(`skipping program/harness contract test: not written yet: ${missing.map((f) => path.relative(ROOT, f)).join(", ")}`);

interface Registered {
  type: string;
  name: string;
  inputs: JsonObject;
}

async function registerDevStack(): Promise<Registered[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "harness-compat-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "key")]);
  const key = fs.readFileSync(path.join(dir, "key"), "utf8");
  fs.rmSync(dir, { recursive: true });
  const { config, secretKeys } = buildEngineConfig("ai-swarm", fs.readFileSync(STACK_FILE, "utf8"), { sshPrivateKey: key });
  const registered: Registered[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, name: args.name, inputs: unwrapSecrets(args.inputs as JsonObject).value });
        // A first deploy: the stack has no outputs yet.
        if (args.type === "pulumi:pulumi:StackReference") return { id: String(args.inputs["name"]), state: { name: args.inputs["name"], outputs: {}, secretOutputNames: [] } };
        // The commands print what the helpers' mocks print (a certificate and key for web-tls and every etcd-tls-*).
        const stdout = args.name.endsWith("-resolve") ? mockPinnedImages(String(args.inputs["create"])) : mockStdout(args.name);
        return { id: `${args.name}-id`, state: { ...args.inputs, stdout, result: "generated-value-123", repoDigest: `r@sha256:${"0".repeat(64)}`, imageName: args.inputs["imageName"] } };
      },
      call: () => ({}),
    },
    "ai-swarm",
    "dev",
    false,
    "organization",
  );
  pulumi.runtime.setAllConfig(config, secretKeys);
  // An error thrown inside an apply fails the run, as in the engine, instead of leaving an RPC that never ends.
  const rejected = programRejections();
  try {
    // Imported through vitest's TypeScript pipeline (plain require cannot load .ts here).
    await Promise.race([pulumi.runtime.runInPulumiStack(async () => (await import(PROGRAM)) as Record<string, unknown>), rejected.first]);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    await Promise.race([(require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> }).waitForRPCs(), rejected.first]);
  } finally {
    rejected.stop();
  }
  return registered;
}

describe.skipIf(!ready)("the dev stack's resources are all applicable by the live harness", () => {
  it("every type is known and every input translates", async () => {
    const registered = await registerDevStack();
    const custom = registered.filter((r) => !r.type.startsWith("ai-swarm:") && r.type !== "pulumi:pulumi:Stack");
    const problems: string[] = [];
    for (const r of custom) {
      try {
        switch (r.type) {
          case "docker:index/service:Service":
            translateService(r.inputs);
            break;
          case "docker:index/network:Network":
            networkCreateBody(r.inputs, r.name);
            break;
          case "docker:index/secret:Secret":
            objectData("secret", r.inputs, r.name);
            break;
          case "docker:index/serviceConfig:ServiceConfig":
            objectData("config", r.inputs, r.name);
            break;
          case "docker:index/image:Image":
            planBuild(r.inputs, ROOT, r.name);
            break;
          case "random:index/randomPassword:RandomPassword":
            passwordRules(r.inputs, r.name);
            break;
          case "command:remote:Command":
          case "pulumi:providers:docker":
            break;
          case "pulumi:pulumi:StackReference":
            // The harness reads only the stack's own outputs (the quorum guard).
            if (r.inputs["name"] !== "organization/ai-swarm/dev") problems.push(`${r.type} ${r.name}: reads ${String(r.inputs["name"])}, not this stack`);
            break;
          default:
            problems.push(`${r.type} ${r.name}: type not supported by the harness`);
        }
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    expect(problems).toEqual([]);
    expect(custom.filter((r) => r.type === "docker:index/service:Service").length).toBeGreaterThanOrEqual(5);
  });
});
