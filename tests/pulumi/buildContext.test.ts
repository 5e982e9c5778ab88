// Build contexts, context digests and content tags (components/buildContext.ts), on a copy of
// the repository's real proto/ and images/ trees with their Dockerfile.dockerignore files:
// the digest is what pulumi-docker hashes into build.contextDigest, so an edit under one
// image's folder must change exactly that image's digest (and tag), an edit of the .proto or
// of the MQTT payload schema (which every image embeds) all four, and build output and the
// payload test vectors none.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  contentTag,
  contextDigest,
  contextFiles,
  couldReincludeUnder,
  dockerfileOf,
  goFileModeString,
  providerContextFiles,
  readIgnorePatterns,
  tarEntries,
  walkContext,
  type ContextFile,
} from "../../components/buildContext";
import { IMAGE_NAMES, type ImageName } from "../../components/images";
import { dockerImage, imageContextDigest } from "../../lab/harness/appliers/image";
import type { StoredResource } from "../../lab/harness/harness-state";
import type { JsonObject } from "../../lab/harness/json";
import type { ApplyContext, ApplyRequest } from "../../lab/harness/types";
import { REPO_ROOT } from "./helpers";

/** Heavy build output is not copied (the walk would skip it anyway; other tests create some). */
const HEAVY = /[/\\](node_modules|target|\.venv|dist|bin|__pycache__|\.mypy_cache|\.pytest_cache)([/\\]|$)/;

let root: string;

function copySources(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true, filter: (source) => !HEAVY.test(source) });
}

function digestOf(name: ImageName): string {
  return contextDigest(contextFiles(root, name), fs.readFileSync(path.join(root, dockerfileOf(name))));
}

function snapshot(): Record<ImageName, { digest: string; tag: string }> {
  const all = {} as Record<ImageName, { digest: string; tag: string }>;
  for (const name of IMAGE_NAMES) all[name] = { digest: digestOf(name), tag: contentTag(root, name) };
  return all;
}

/** Images whose digest changed, and (separately) whose tag changed: both must agree. */
function changed(before: ReturnType<typeof snapshot>, after: ReturnType<typeof snapshot>): { digests: ImageName[]; tags: ImageName[] } {
  return {
    digests: IMAGE_NAMES.filter((name) => before[name].digest !== after[name].digest),
    tags: IMAGE_NAMES.filter((name) => before[name].tag !== after[name].tag),
  };
}

const write = (relative: string, content: string) => {
  const file = path.join(root, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
};

/** A real source file of the image (not its Dockerfile): the first one the context holds with this extension. */
function sourceFileOf(name: ImageName): string {
  const extension = { master: ".ts", "worker-python": ".py", "worker-go": ".go", "worker-java": ".java" }[name];
  const file = contextFiles(root, name).find((f) => f.path.startsWith(`images/${name}/`) && f.path.endsWith(extension));
  if (!file) throw new Error(`no ${extension} file in the context of ${name}`);
  return file.path;
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "ai-swarm-context-"));
  copySources(path.join(REPO_ROOT, "proto"), path.join(root, "proto"));
  for (const name of IMAGE_NAMES) copySources(path.join(REPO_ROOT, "images", name), path.join(root, "images", name));
  // Files outside proto/ and images/: none of them may count.
  fs.copyFileSync(path.join(REPO_ROOT, ".dockerignore"), path.join(root, ".dockerignore"));
  write("README.md", "# repo\n");
  write("components/images.ts", "export {};\n");
});

afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe("the context of each image", () => {
  it("holds its Dockerfile, the proto, the payload schema, and only paths under proto/ and images/<name>/", () => {
    for (const name of IMAGE_NAMES) {
      const paths = contextFiles(root, name).map((f) => f.path);
      expect(paths).toContain(dockerfileOf(name));
      expect(paths).toContain("proto/aiswarm/v1/worker_callback.proto");
      expect(paths).toContain("proto/mqtt/payloads.schema.json");
      expect(paths.filter((p) => p.startsWith("proto/mqtt/vectors/")), name).toEqual([]);
      expect(paths.filter((p) => !p.startsWith("proto/") && !p.startsWith(`images/${name}/`))).toEqual([]);
    }
  });

  it("of the real checkout leaves out its build output, dependencies and generated code", () => {
    const output = /(^|\/)(node_modules|dist|\.venv|__pycache__|\.pytest_cache|\.mypy_cache|target|bin|build)\/|aiswarm_worker\/pb\/|\.pb\.go$|internal\/protocol\/payloads\.schema\.json$|\.egg-info\/|\.db$/;
    for (const name of IMAGE_NAMES) {
      const paths = contextFiles(REPO_ROOT, name).map((f) => f.path);
      expect(paths.filter((p) => output.test(p)), name).toEqual([]);
      expect(paths.length, name).toBeGreaterThan(3);
    }
    // The Go worker keeps its hand-written generate.go next to the generated code it leaves out.
    expect(contextFiles(REPO_ROOT, "worker-go").map((f) => f.path)).toContain("images/worker-go/internal/pb/generate.go");
  });

  it("is the one the provider picks: <dockerfile>.dockerignore before the root .dockerignore", () => {
    for (const name of IMAGE_NAMES) {
      const picked = providerContextFiles(root, path.join(root, dockerfileOf(name)));
      expect(picked.ignoreFile).toBe(path.join(root, `${dockerfileOf(name)}.dockerignore`));
      expect(picked.files.map((f) => f.path)).toEqual(contextFiles(root, name).map((f) => f.path));
    }
    // Without the per-Dockerfile file the provider falls back to the root one (all of images/).
    fs.rmSync(path.join(root, "images", "worker-go", "Dockerfile.dockerignore"));
    const fallback = providerContextFiles(root, path.join(root, dockerfileOf("worker-go")));
    expect(fallback.ignoreFile).toBe(path.join(root, ".dockerignore"));
    expect(fallback.files.some((f) => f.path.startsWith("images/master/"))).toBe(true);
  });

  it("is walked without entering excluded trees (node_modules, other images)", () => {
    write("images/master/node_modules/pkg/index.js", "module.exports = 1;\n");
    write("images/worker-go/bin/worker", "ELF");
    const entered: string[] = [];
    walkContext(root, readIgnorePatterns(path.join(root, "images", "worker-go", "Dockerfile.dockerignore")), {
      onDirectory: (dir) => entered.push(dir),
    });
    expect(entered).toContain("images");
    expect(entered).toContain("images/worker-go/internal/pb");
    expect(entered.filter((dir) => /^images\/(master|worker-python|worker-java)|\/bin$|^components/.test(dir))).toEqual([]);
  });

  it("is an error naming images/<name>/Dockerfile.dockerignore when that file is missing", () => {
    fs.rmSync(path.join(root, "images", "worker-go", "Dockerfile.dockerignore"));
    expect(() => contextFiles(root, "worker-go")).toThrow(/image worker-go: images\/worker-go\/Dockerfile\.dockerignore not found/);
    expect(() => contentTag(root, "worker-go")).toThrow(/Dockerfile\.dockerignore/);
  });

  it("names the missing Dockerfile when an image folder has none", () => {
    fs.rmSync(path.join(root, "images", "worker-go", "Dockerfile"));
    expect(() => contentTag(root, "worker-go")).toThrow(/image worker-go: images\/worker-go\/Dockerfile not found/);
  });
});

describe("context digests and content tags", () => {
  it("tags are 12 hex characters and differ per image", () => {
    const all = snapshot();
    for (const { tag, digest } of Object.values(all)) {
      expect(tag).toMatch(/^[0-9a-f]{12}$/);
      expect(digest).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(new Set(Object.values(all).map((s) => s.tag)).size).toBe(IMAGE_NAMES.length);
  });

  it("an edit under images/<name>/ changes that image's digest and tag and no other image's", () => {
    for (const name of IMAGE_NAMES) {
      const source = sourceFileOf(name);
      const before = snapshot();
      fs.appendFileSync(path.join(root, source), "\n");
      expect(changed(before, snapshot()), source).toEqual({ digests: [name], tags: [name] });
    }
  });

  it("a new file, a Dockerfile edit or a rename under images/<name>/ changes only that image", () => {
    let before = snapshot();
    write("images/worker-go/internal/extra/extra.go", "package extra\n");
    expect(changed(before, snapshot())).toEqual({ digests: ["worker-go"], tags: ["worker-go"] });
    before = snapshot();
    fs.appendFileSync(path.join(root, dockerfileOf("worker-java")), "# edited\n");
    expect(changed(before, snapshot())).toEqual({ digests: ["worker-java"], tags: ["worker-java"] });
    write("images/master/src/a.ts", "export const same = 1;\n");
    before = snapshot();
    fs.renameSync(path.join(root, "images/master/src/a.ts"), path.join(root, "images/master/src/b.ts"));
    expect(changed(before, snapshot())).toEqual({ digests: ["master"], tags: ["master"] });
  });

  it("a proto edit changes all four", () => {
    const before = snapshot();
    fs.appendFileSync(path.join(root, "proto", "aiswarm", "v1", "worker_callback.proto"), "\n// a comment is a change too\n");
    expect(changed(before, snapshot())).toEqual({ digests: [...IMAGE_NAMES], tags: [...IMAGE_NAMES] });
  });

  it("a payload schema edit changes all four: each image embeds proto/mqtt/payloads.schema.json", () => {
    const schema = path.join(root, "proto", "mqtt", "payloads.schema.json");
    const before = snapshot();
    fs.writeFileSync(schema, fs.readFileSync(schema, "utf8").replace('"maxLength": 16000', '"maxLength": 16001'));
    expect(changed(before, snapshot())).toEqual({ digests: [...IMAGE_NAMES], tags: [...IMAGE_NAMES] });
  });

  it("build output, dependencies, caches, generated code, test vectors and files outside the context change none", () => {
    const before = snapshot();
    for (const file of [
      "images/master/node_modules/better-sqlite3/index.js",
      "images/master/dist/main.js",
      "images/master/data/master.db",
      "images/master/master.db-wal",
      "images/worker-python/.venv/lib/python3.11/site.py",
      "images/worker-python/build/lib/x.py",
      "images/worker-python/src/aiswarm_worker/__pycache__/worker.cpython-311.pyc",
      "images/worker-python/.pytest_cache/v/cache/lastfailed",
      "images/worker-python/.mypy_cache/3.11/x.json",
      "images/worker-python/src/aiswarm_worker.egg-info/PKG-INFO",
      "images/worker-python/src/aiswarm_worker/pb/worker_callback_pb2.py",
      "images/worker-python/src/aiswarm_worker/pb/payloads.schema.json",
      "images/worker-go/bin/worker",
      "images/worker-go/internal/pb/worker_callback.pb.go",
      "images/worker-go/internal/protocol/payloads.schema.json",
      "proto/mqtt/vectors/payloads.json",
      "proto/mqtt/vectors/new.json",
      "images/worker-java/target/classes/io/aiswarm/worker/Main.class",
      "components/new.ts",
      "lab/harness/x.ts",
      "docs/new.md",
      ".gitignore",
    ]) {
      write(file, `built ${file}\n`);
    }
    expect(changed(before, snapshot())).toEqual({ digests: [], tags: [] });
  });

  it("a mode change (chmod +x) changes the digest: the provider hashes the mode string", () => {
    const source = sourceFileOf("worker-go");
    const before = snapshot();
    fs.chmodSync(path.join(root, source), 0o755);
    expect(changed(before, snapshot())).toEqual({ digests: ["worker-go"], tags: ["worker-go"] });
  });

  it("a symlink counts as a link: changing its target changes the digest", () => {
    const link = path.join(root, "images", "worker-go", "link");
    fs.symlinkSync("go.mod", link);
    const file = contextFiles(root, "worker-go").find((f) => f.path === "images/worker-go/link");
    expect(file && goFileModeString(file.mode)).toBe("Lrwxrwxrwx");
    expect(file?.read().toString()).toBe("go.mod");
    const before = snapshot();
    fs.rmSync(link);
    fs.symlinkSync("go.sum", link);
    expect(changed(before, snapshot())).toEqual({ digests: ["worker-go"], tags: ["worker-go"] });
  });

  it("a build arg (a base image) changes the tag, not the digest", () => {
    expect(contentTag(root, "worker-java", { RUNTIME_IMAGE: "debian:bookworm-slim" })).not.toBe(
      contentTag(root, "worker-java", { RUNTIME_IMAGE: "ai-swarm-base/debian:bookworm-slim" }),
    );
  });

  it("does not depend on the order files are listed in, and covers path, mode and content", () => {
    const file = (p: string, mode: number, content: string): ContextFile => ({ path: p, mode, read: () => Buffer.from(content) });
    const files = [file("a/x", 0o100644, "1"), file("b", 0o100644, "2")];
    const digest = contextDigest(files, "FROM scratch\n");
    expect(contextDigest([...files].reverse(), "FROM scratch\n")).toBe(digest);
    expect(contextDigest(files, "FROM scratch\n# x\n")).not.toBe(digest);
    expect(contextDigest([file("a/y", 0o100644, "1"), files[1] as ContextFile], "FROM scratch\n")).not.toBe(digest);
    expect(contextDigest([file("a/x", 0o100755, "1"), files[1] as ContextFile], "FROM scratch\n")).not.toBe(digest);
    expect(contextDigest([file("a/x", 0o100644, "3"), files[1] as ContextFile], "FROM scratch\n")).not.toBe(digest);
    // Length-prefixed fields: moving a byte from a path to the content is a change.
    expect(contextDigest([file("ab", 0o100644, "c")], "")).not.toBe(contextDigest([file("a", 0o100644, "bc")], ""));
  });

  const imageInputs = (name: ImageName): JsonObject => ({
    imageName: `r:5000/ai-swarm/${name}:x`,
    build: { context: ".", dockerfile: dockerfileOf(name), args: {}, platform: "linux/amd64" },
  });

  it("is the digest imageContextDigest reports for the program's docker.Image inputs", () => {
    for (const name of IMAGE_NAMES) expect(imageContextDigest(imageInputs(name), root)).toBe(digestOf(name));
  });

  it("the harness's docker.Image check + diff: an edit under images/worker-go updates worker-go only, on ~build", async () => {
    // Only projectDir is read by check; diff reads only the stored inputs.
    const ctx = { projectDir: root } as ApplyContext;
    const checked = async (name: ImageName) =>
      (await dockerImage.check?.({ type: "docker:index/image:Image", name, urn: name, inputs: imageInputs(name), secretInputKeys: new Set(), provider: "" }, ctx)) ?? {};
    const before = Object.fromEntries(await Promise.all(IMAGE_NAMES.map(async (name) => [name, await checked(name)] as const)));
    expect((before["worker-go"]?.["build"] as JsonObject)["contextDigest"]).toBe(digestOf("worker-go"));
    fs.appendFileSync(path.join(root, sourceFileOf("worker-go")), "\n");
    const diffs: Record<string, unknown> = {};
    for (const name of IMAGE_NAMES) {
      const req = { inputs: await checked(name) } as ApplyRequest;
      diffs[name] = dockerImage.diff({ inputs: before[name] ?? {} } as StoredResource, req);
    }
    expect(diffs).toEqual({
      master: { action: "same", fields: [] },
      "worker-python": { action: "same", fields: [] },
      "worker-go": { action: "update", fields: ["build.contextDigest"] },
      "worker-java": { action: "same", fields: [] },
    });
  });
});

describe("Go's FileMode.String()", () => {
  it("spells regular files, directories, symlinks and the special bits like Go", () => {
    expect(goFileModeString(0)).toBe("----------");
    expect(goFileModeString(0o100644)).toBe("-rw-r--r--");
    expect(goFileModeString(0o100755)).toBe("-rwxr-xr-x");
    expect(goFileModeString(0o040755)).toBe("drwxr-xr-x");
    expect(goFileModeString(0o120777)).toBe("Lrwxrwxrwx");
    expect(goFileModeString(0o104755)).toBe("urwxr-xr-x");
    expect(goFileModeString(0o041777)).toBe("dtrwxrwxrwx");
    expect(goFileModeString(0o020620)).toBe("Dcrw--w----");
  });
});

describe("@balena/dockerignore semantics in the walk (Docker's .dockerignore rules)", () => {
  let tiny: string;
  beforeEach(() => {
    tiny = fs.mkdtempSync(path.join(os.tmpdir(), "ai-swarm-ignore-"));
    for (const file of ["keep/a.txt", "keep/sub/b.txt", "drop/x.txt", "drop/rescued.txt", "top.txt", "star/one.txt", "star/deep/two.txt", "Case/c.txt"]) {
      fs.mkdirSync(path.join(tiny, path.dirname(file)), { recursive: true });
      fs.writeFileSync(path.join(tiny, file), file);
    }
  });
  afterEach(() => fs.rmSync(tiny, { recursive: true, force: true }));

  const PATTERNS = ["# a comment", "*", "!keep/", "!star/", "star/*.txt", "!drop/rescued.txt", "!case/"];

  it("`!` re-includes a file under an excluded parent; `*` does not cross `/`; matching is case-sensitive", () => {
    const entered: string[] = [];
    const paths = walkContext(tiny, PATTERNS, { onDirectory: (dir) => entered.push(dir) }).map((f) => f.path);
    expect(paths).toEqual(["drop/rescued.txt", "keep/a.txt", "keep/sub/b.txt", "star/deep/two.txt"]);
    // drop/ is excluded but had to be entered for the `!` pattern; Case/ is not case/.
    expect(entered).toContain("drop");
    expect(entered).not.toContain("Case");
  });

  it("couldReincludeUnder: only a longer `!` pattern reaching into the directory (or `**`) forces a descent", () => {
    expect(couldReincludeUnder("drop", PATTERNS)).toBe(true);
    expect(couldReincludeUnder("top", PATTERNS)).toBe(false);
    expect(couldReincludeUnder("images", ["*", "!images/worker-go/"])).toBe(true);
    expect(couldReincludeUnder("images/master", ["*", "!images/worker-go/"])).toBe(false);
    expect(couldReincludeUnder("images/worker-go/bin", ["*", "!images/worker-go/", "images/worker-go/bin/"])).toBe(false);
    expect(couldReincludeUnder("images/master", ["*", "!images/*/src"])).toBe(true);
    expect(couldReincludeUnder("anything", ["*", "!**/keep"])).toBe(true);
  });

  it("tarEntries lists each file after its parent directories, once", () => {
    const files = walkContext(tiny, PATTERNS);
    expect(tarEntries(files)).toEqual(["drop", "drop/rescued.txt", "keep", "keep/a.txt", "keep/sub", "keep/sub/b.txt", "star", "star/deep", "star/deep/two.txt"]);
  });
});
