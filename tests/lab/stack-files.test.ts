// `npm run lab` never leaves the tracked Pulumi.dev.yaml changed (issue 9):
// the Pulumi CLI reads a copy (cliConfigCopy), and a file the CLI edits anyway
// is put back byte for byte (restoreTrackedFile). The edits modelled here are
// the ones the real CLI made to Pulumi.dev.yaml (tests/fixtures/real-engine/
// README.md): an encryption salt, encrypted secrets, numbers turned to strings.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { cliConfigCopy, restoreTrackedFile, STACK_FILE } from "../../lab/stack";

const TRACKED = fs.readFileSync(STACK_FILE, "utf8");
const CLI_EDITED = `encryptionsalt: v1:Zm9vYmFy:v1:c2FsdA==:bWFj\n${TRACKED.replace("ai-swarm:maxReplicasPerNode: 1", 'ai-swarm:maxReplicasPerNode: "1"')}  ai-swarm:sshPrivateKey:\n    secure: v1:AAAA\n`;

describe("cliConfigCopy: the file the Pulumi CLI reads (--config-file)", () => {
  it("is the tracked file when the CLI has written nothing yet", () => {
    expect(cliConfigCopy(TRACKED, undefined)).toBe(TRACKED);
  });

  it("keeps the encryption salt the CLI wrote (into the tracked file or an earlier copy) and nothing else of its edits", () => {
    const copy = cliConfigCopy(TRACKED, undefined, CLI_EDITED);
    expect(copy).toBe(`encryptionsalt: v1:Zm9vYmFy:v1:c2FsdA==:bWFj\n${TRACKED}`);
    const doc = parseYaml(copy) as { config: Record<string, unknown> };
    expect(doc.config["ai-swarm:maxReplicasPerNode"]).toBe(1);
    expect(doc.config["ai-swarm:sshPrivateKey"]).toBeUndefined();
    // Next run: the salt comes from the previous copy.
    expect(cliConfigCopy(TRACKED, copy)).toBe(copy);
  });
});

describe("restoreTrackedFile", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-files-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("puts a file the CLI edited back byte for byte, and leaves an untouched one alone", () => {
    const file = path.join(dir, "Pulumi.dev.yaml");
    fs.writeFileSync(file, TRACKED);
    const original = fs.readFileSync(file);
    expect(restoreTrackedFile(file, original)).toBe(false);
    fs.writeFileSync(file, CLI_EDITED);
    expect(restoreTrackedFile(file, original)).toBe(true);
    expect(fs.readFileSync(file).equals(original)).toBe(true);
  });
});
