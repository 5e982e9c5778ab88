// A stack deployed by an earlier version of the program updates in place:
// every URN that version registered (tests/fixtures/urns) is registered again
// or is an alias of a resource the program registers now, as the engine
// resolves aliases (lab/harness/aliases.ts). Otherwise the engine would create
// a second copy of the resource and delete the first: a new swarm secret, a
// replaced service, a re-run command.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { describe, expect, it } from "vitest";
import { aliasUrns, urnOf } from "../../lab/harness/aliases";
import { engineConfigFromStackFile, runProgram, TEST_SSH_KEY } from "./helpers";

const BEFORE = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "fixtures", "urns", "before-component-library.json"), "utf8")) as Record<"dev" | "cluster", string[]>;

describe.each([
  { stack: "dev" as const, file: "Pulumi.dev.yaml", secrets: { sshPrivateKey: TEST_SSH_KEY } as Record<string, string> },
  {
    stack: "cluster" as const,
    file: "Pulumi.cluster.example.yaml",
    secrets: { sshPrivateKey: TEST_SSH_KEY, "registry.password": "registry-password-for-tests-9f3c", "llm.apiKey": "AIzaFakeGeminiKeyForTests-7731" },
  },
])("$stack: every earlier URN is still a resource or an alias", ({ stack, file, secrets }) => {
  it("covers every URN of the version before the component library", async () => {
    const run = await runProgram(engineConfigFromStackFile(file, secrets), stack);
    const now = new Set(run.resources.map((resource) => resource.urn));
    const aliased = new Map(run.resources.flatMap((resource) => resource.aliasUrns.map((alias) => [alias, resource.urn] as const)));
    // A component that no longer exists holds nothing (it is a grouping): the engine just drops it. Every
    // custom resource must be covered.
    const custom = BEFORE[stack].filter((urn) => !/::ai-swarm:index:[A-Za-z]+::[^:]+$/.test(urn));
    const uncovered = custom.filter((urn) => !now.has(urn) && !aliased.has(urn));
    expect(uncovered).toEqual([]);
    // And no earlier URN is claimed by two resources (the engine would refuse it).
    const claims = new Map<string, number>();
    for (const resource of run.resources) for (const alias of resource.aliasUrns) if (custom.includes(alias)) claims.set(alias, (claims.get(alias) ?? 0) + 1);
    expect([...claims].filter(([, n]) => n > 1)).toEqual([]);
  });
});

describe("alias URNs as the engine resolves them", () => {
  const urn = (parent: string, type: string, name: string) => urnOf("dev", "p", parent, type, name);
  const oldParent = urn("", "t:index:Old", "c");
  const newParent = urn("", "t:index:New", "c");

  it("a renamed child of a re-typed component: its old name under the component's old URN", () => {
    const aliases = aliasUrns("dev", "p", { type: "x:R", name: "c-join", parentUrn: newParent }, [{ name: "join" }], [oldParent]);
    expect(aliases).toContain("urn:pulumi:dev::p::t:index:Old$x:R::join");
    expect(aliases).toContain("urn:pulumi:dev::p::t:index:New$x:R::join");
    expect(aliases).toContain("urn:pulumi:dev::p::t:index:Old$x:R::c-join");
  });

  it("forms URNs exactly as the SDK's MockMonitor does (the harness's stored state is keyed by them)", () => {
    // newUrn is private in the typings; it is what MockMonitor.registerResource answers with.
    const monitor = new MockMonitor({ newResource: () => ({ id: undefined, state: {} }), call: () => ({}) }) as unknown as { newUrn(parent: string, type: string, name: string): string };
    const stackUrn = `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::pulumi:pulumi:Stack::s`;
    const component = monitor.newUrn(stackUrn, "t:index:C", "c");
    for (const [parent, type, name] of [["", "x:R", "a"], [stackUrn, "x:R", "b"], [stackUrn, "t:index:C", "c"], [component, "x:R", "c-r"]] as const) {
      expect(urnOf(pulumi.getStack(), pulumi.getProject(), parent, type, name)).toBe(monitor.newUrn(parent, type, name));
    }
  });

  it("under the stack (as the live harness runs) a component's child is qualified by the component's type only", () => {
    const stackUrn = "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev";
    const component = urn(stackUrn, "t:index:New", "c");
    expect(component).toBe("urn:pulumi:dev::p::pulumi:pulumi:Stack$t:index:New::c");
    expect(urn(component, "x:R", "c-r")).toBe("urn:pulumi:dev::p::t:index:New$x:R::c-r");
    const oldComponent = urn(stackUrn, "t:index:Old", "c");
    expect(aliasUrns("dev", "p", { type: "x:R", name: "c-r", parentUrn: component }, [{ name: "r" }], [oldComponent])).toContain("urn:pulumi:dev::p::t:index:Old$x:R::r");
  });

  it("a child moved to another parent names the old parent; a URN alias stands as it is", () => {
    const app = urn("", "t:index:App", "app");
    expect(aliasUrns("dev", "p", { type: "x:S", name: "broker-service", parentUrn: newParent }, [{ name: "mosquitto", parentUrn: app }], [])).toEqual([
      "urn:pulumi:dev::p::t:index:App$x:S::mosquitto",
    ]);
    expect(aliasUrns("dev", "p", { type: "x:S", name: "n", parentUrn: "" }, [{ urn: "urn:pulumi:dev::p::x:S::old" }], [])).toEqual(["urn:pulumi:dev::p::x:S::old"]);
  });
});
