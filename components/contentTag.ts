// Content-derived image tags: the tag of an image is a hash of exactly what its
// build reads (proto/ plus images/<name>/) and of its build args, so changing
// one image's source changes only that image's tag and rolls only its service,
// while a proto change rolls all four. `hashSources` is pure; `listImageSources`
// is the only file-system reading.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface SourceFile {
  /** Path relative to the repository root, with forward slashes. */
  path: string;
  content: Buffer;
}

/** Directory names that are build output, dependencies or caches, never source. */
const IGNORED_DIRS = new Set([
  "node_modules", "dist", ".venv", "venv", "target", "bin", "__pycache__",
  ".pytest_cache", ".mypy_cache", ".ruff_cache", ".gradle", ".cache", ".idea", ".vscode",
]);
/** Files that are generated or local state (generated protobuf code is rebuilt from proto/ inside the build). */
const IGNORED_FILE = /(\.pyc$|\.db$|\.db-wal$|\.db-shm$|\.pb\.go$|_pb2(_grpc)?\.pyi?$|^\.DS_Store$)/;

export const TAG_LENGTH = 12;

/**
 * 12 hex characters of sha256 over the sorted relative paths and contents of the
 * files, followed by the sorted build args (a new base image is a new image).
 */
export function hashSources(files: readonly SourceFile[], buildArgs: Record<string, string> = {}): string {
  const hash = createHash("sha256");
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of sorted) {
    // Length-prefix every field so ("ab","c") and ("a","bc") cannot collide.
    hash.update(`file ${Buffer.byteLength(file.path)}:${file.path} ${file.content.length}:`);
    hash.update(file.content);
  }
  for (const name of Object.keys(buildArgs).sort()) {
    const value = buildArgs[name] ?? "";
    hash.update(`arg ${name.length}:${name} ${value.length}:${value}`);
  }
  return hash.digest("hex").slice(0, TAG_LENGTH);
}

/** Every source file of one image: proto/ and images/<imageName>/, relative to repoRoot. */
export function listImageSources(repoRoot: string, imageName: string): SourceFile[] {
  const imageDir = path.join(repoRoot, "images", imageName);
  if (!fs.existsSync(path.join(imageDir, "Dockerfile"))) {
    throw new Error(`image ${imageName}: ${path.join("images", imageName, "Dockerfile")} not found under ${repoRoot}`);
  }
  return [...walk(repoRoot, "proto"), ...walk(repoRoot, path.join("images", imageName))];
}

function walk(repoRoot: string, relativeDir: string): SourceFile[] {
  const absoluteDir = path.join(repoRoot, relativeDir);
  if (!fs.existsSync(absoluteDir)) return [];
  const files: SourceFile[] = [];
  for (const entry of fs.readdirSync(absoluteDir, { withFileTypes: true })) {
    const relative = path.join(relativeDir, entry.name);
    if (entry.isDirectory()) {
      if (!IGNORED_DIRS.has(entry.name) && !entry.name.endsWith(".egg-info")) files.push(...walk(repoRoot, relative));
    } else if (entry.isFile() && !IGNORED_FILE.test(entry.name)) {
      files.push({ path: relative.split(path.sep).join("/"), content: fs.readFileSync(path.join(repoRoot, relative)) });
    }
  }
  return files;
}

/** The tag for one image as built from repoRoot with these build args. */
export function contentTag(repoRoot: string, imageName: string, buildArgs: Record<string, string> = {}): string {
  return hashSources(listImageSources(repoRoot, imageName), buildArgs);
}
