// Content-derived image tags, on a copy of the repository's real proto/ and
// images/ trees (plus a stub Dockerfile where an image folder has none yet):
// changing one image's source changes exactly that image's tag; changing the
// proto changes all four; build output and caches do not count.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { contentTag, hashSources, listImageSources } from "../../components/contentTag";
import { IMAGE_NAMES } from "../../components/images";
import { REPO_ROOT } from "./helpers";

let root: string;

function copySources(from: string, to: string): void {
  fs.cpSync(from, to, {
    recursive: true,
    // Skip heavy build output while copying; the hashing ignores it anyway.
    filter: (source) => !/[/\\](node_modules|target|\.venv|dist|bin|__pycache__|\.mypy_cache|\.pytest_cache)([/\\]|$)/.test(source),
  });
}

function tags(): Record<string, string> {
  return Object.fromEntries(IMAGE_NAMES.map((name) => [name, contentTag(root, name)]));
}

function changedTags(before: Record<string, string>, after: Record<string, string>): string[] {
  return IMAGE_NAMES.filter((name) => before[name] !== after[name]);
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "ai-swarm-tags-"));
  copySources(path.join(REPO_ROOT, "proto"), path.join(root, "proto"));
  for (const name of IMAGE_NAMES) {
    const source = path.join(REPO_ROOT, "images", name);
    const target = path.join(root, "images", name);
    if (fs.existsSync(source)) copySources(source, target);
    fs.mkdirSync(target, { recursive: true });
    if (!fs.existsSync(path.join(target, "Dockerfile"))) fs.writeFileSync(path.join(target, "Dockerfile"), `FROM scratch\n# ${name}\n`);
  }
});

afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe("content tags", () => {
  it("are 12 hex characters and differ per image", () => {
    const all = tags();
    for (const tag of Object.values(all)) expect(tag).toMatch(/^[0-9a-f]{12}$/);
    expect(new Set(Object.values(all)).size).toBe(IMAGE_NAMES.length);
  });

  it("change for exactly one image when one image's source changes", () => {
    for (const name of IMAGE_NAMES) {
      const before = tags();
      fs.appendFileSync(path.join(root, "images", name, "Dockerfile"), `# edited ${name}\n`);
      expect(changedTags(before, tags())).toEqual([name]);
    }
  });

  it("change for all four images when the proto changes", () => {
    const before = tags();
    const proto = path.join(root, "proto", "aiswarm", "v1", "worker_callback.proto");
    fs.appendFileSync(proto, "\n// a comment is a change too\n");
    expect(changedTags(before, tags())).toEqual([...IMAGE_NAMES]);
  });

  it("ignore build output, dependencies and caches", () => {
    const before = tags();
    for (const dir of ["node_modules/x", "target/classes", "__pycache__", ".venv/lib", "dist", "bin"]) {
      const absolute = path.join(root, "images", "worker-go", dir);
      fs.mkdirSync(absolute, { recursive: true });
      fs.writeFileSync(path.join(absolute, "artifact"), "built");
    }
    fs.writeFileSync(path.join(root, "images", "worker-python", "module.pyc"), "bytecode");
    expect(changedTags(before, tags())).toEqual([]);
  });

  it("count a renamed file as a change (paths are hashed, not only contents)", () => {
    const dir = path.join(root, "images", "master");
    fs.writeFileSync(path.join(dir, "a.txt"), "same");
    const before = tags();
    fs.renameSync(path.join(dir, "a.txt"), path.join(dir, "b.txt"));
    expect(changedTags(before, tags())).toEqual(["master"]);
  });

  it("change when a build arg (a base image) changes", () => {
    expect(contentTag(root, "worker-java", { RUNTIME_IMAGE: "debian:bookworm-slim" })).not.toBe(
      contentTag(root, "worker-java", { RUNTIME_IMAGE: "ai-swarm-base/debian:bookworm-slim" }),
    );
  });

  it("do not depend on the order files are listed in", () => {
    const files = listImageSources(root, "worker-go");
    expect(hashSources([...files].reverse())).toBe(hashSources(files));
    expect(files.every((file) => file.path.startsWith("proto/") || file.path.startsWith("images/worker-go/"))).toBe(true);
  });

  it("name the missing Dockerfile when an image folder has none", () => {
    fs.rmSync(path.join(root, "images", "worker-go", "Dockerfile"));
    expect(() => contentTag(root, "worker-go")).toThrow(/image worker-go: images\/worker-go\/Dockerfile not found/);
  });
});
