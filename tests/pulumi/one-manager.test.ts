// A 1-manager stack keeps every resource, option and input it had before
// multi-manager support (issue 14): the engine would otherwise update or
// replace something on the next `pulumi up` of every running 1-manager stack.
// fixtures/one-manager-resources.json is what the program registered for this
// config before that change (commit 3226825, via resourceShapes); a resource
// gained or lost, or any input changed, fails here by name.
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { engineConfigFromStackFile, missingDockerfiles, ONE_MANAGER_NODES, resourceShapes, runProgram, TEST_SSH_KEY } from "./helpers";

const FIXTURE = path.join(__dirname, "fixtures", "one-manager-resources.json");

type Shape = { type: string; name: string };
const byKey = (shapes: unknown[]): Map<string, unknown> => new Map(shapes.map((shape) => [`${(shape as Shape).type} ${(shape as Shape).name}`, shape]));

const missing = missingDockerfiles();
if (missing.length > 0) console.warn(`SKIPPED the 1-manager guard: ${missing.join(", ")} missing`);

describe.skipIf(missing.length > 0)("a 1-manager stack", () => {
  it("registers the same resources with the same options and inputs as before multi-manager support", async () => {
    const run = await runProgram(engineConfigFromStackFile("Pulumi.dev.yaml", { sshPrivateKey: TEST_SSH_KEY }, { nodes: ONE_MANAGER_NODES }));
    const now = byKey(resourceShapes(run));
    const before = byKey(JSON.parse(fs.readFileSync(FIXTURE, "utf8")) as unknown[]);
    expect([...now.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [key, shape] of before) expect(now.get(key), key).toEqual(shape);
    // Kept-on-delete is a resource option, not an input: a 1-manager stack still deletes (and so cleans up) what it removes.
    expect(run.resources.filter((resource) => resource.retainOnDelete).map((resource) => resource.name)).toEqual([]);
  });
});
