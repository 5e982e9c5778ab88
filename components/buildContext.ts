// Build contexts and content tags of the four images, computed the way pulumi-docker
// decides whether an image needs a rebuild.
//
// What the provider does (pulumi-docker, provider/provider.go and provider/hash.go): in
// Check, a docker.Image gets `build.contextDigest = hashContext(build.context,
// build.dockerfile)`, and Diff reports `~build` (rebuild + push) when that digest or any
// other build input (args, platform, dockerfile, context) changed. `hashContext` hashes
//   1. the Dockerfile's content, under the name "Dockerfile" with mode 0, then
//   2. every non-directory entry of an `fsutil.Walk` over the context with the exclude
//      patterns of the ignore file: its relative path (forward slashes, cleaned), its Go
//      `fs.FileMode.String()` (e.g. "-rw-r--r--", "-rwxr-xr-x", "Lrwxrwxrwx") and the
//      sha256 of its content (of the link target for a symlink),
// all into one SHA-256. The ignore file (`getIgnorePatterns`) is `<dockerfile>.dockerignore`
// when it exists (the path as given, relative to the program's working directory), else
// `<context>/.dockerignore`; only the first one found is used, with Docker's .dockerignore
// semantics (last matching pattern wins, `!` re-includes, a pattern matching a directory
// covers everything under it, `*` does not cross `/`).
//
// Every image's context is the repository root (each image builds in the .proto and the MQTT
// payload schema from proto/), so each has its own images/<name>/Dockerfile.dockerignore
// narrowing the context to proto/ (less the payload test vectors) plus its own folder. This module reproduces the provider's walk with @balena/dockerignore (a port
// of Docker's matcher) so that
//   - the content tag of an image changes exactly when the provider's digest does (the tag
//     in imageName is itself an input of the image: a tag that changed for an unrelated edit would
//     rebuild the image just the same);
//   - the lab harness can build from a context holding exactly these files (the classic
//     builder ignores Dockerfile.dockerignore) and compute the digest the provider would.
// The byte layout of `contextDigest` is not the provider's; the same changes change both.
//
// Pure: `goFileModeString`, `contextDigest`, `tagOf`, `tarEntries`, `tarFileList`, `couldReincludeUnder`.
// Reading the file system: `walkContext`, `contextFiles`, `providerContextFiles`,
// `contentTag`, `readIgnorePatterns` (and `ContextFile.read`).
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import dockerignore from "@balena/dockerignore";

export const TAG_LENGTH = 12;

/** One entry of a build context, as the provider's walk reports it. */
export interface ContextFile {
  /** Relative to the context directory, forward slashes. */
  path: string;
  /** The lstat mode (file type bits and permissions): a symlink is a link, never followed. */
  mode: number;
  /** The content the digest covers: the file's bytes, or the link target for a symlink. */
  read(): Buffer;
}

/** images/<name>/Dockerfile, relative to the repository root (the context). */
export function dockerfileOf(imageName: string): string {
  return `images/${imageName}/Dockerfile`;
}

/** images/<name>/Dockerfile.dockerignore: the ignore file BuildKit and pulumi-docker use for that image. */
export function ignoreFileOf(imageName: string): string {
  return `${dockerfileOf(imageName)}.dockerignore`;
}

// ------------------------------------------------------------------ pure

// File type and special bits of a POSIX st_mode (as Node reports it).
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;

/**
 * Go's `fs.FileMode.String()` for the FileMode `os.Lstat` makes of this POSIX mode:
 * the type letters of "dalTLDpSugct?" that apply (or "-"), then "rwxrwxrwx" with "-" for
 * each unset bit. Regular file 0644 → "-rw-r--r--", directory → "drwxr-xr-x",
 * symlink → "Lrwxrwxrwx", setuid 0755 → "urwxr-xr-x".
 */
export function goFileModeString(mode: number): string {
  const type = mode & S_IFMT;
  // In the order of Go's "dalTLDpSugct?": d L D p S u g c t (a, l, T and ? never come from lstat).
  let letters = "";
  if (type === S_IFDIR) letters += "d";
  if (type === S_IFLNK) letters += "L";
  if (type === S_IFBLK || type === S_IFCHR) letters += "D";
  if (type === S_IFIFO) letters += "p";
  if (type === S_IFSOCK) letters += "S";
  if (mode & S_ISUID) letters += "u";
  if (mode & S_ISGID) letters += "g";
  if (type === S_IFCHR) letters += "c";
  if (mode & S_ISVTX) letters += "t";
  const rwx = "rwxrwxrwx";
  let permissions = "";
  for (let i = 0; i < 9; i++) permissions += mode & (1 << (8 - i)) ? rwx[i] : "-";
  return (letters || "-") + permissions;
}

const byPath = (a: ContextFile, b: ContextFile) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

function lengthPrefixed(hash: ReturnType<typeof createHash>, value: string | Buffer): void {
  const bytes = typeof value === "string" ? Buffer.from(value) : value;
  hash.update(`${bytes.length}:`);
  hash.update(bytes);
}

/**
 * The context digest: sha256 hex over the Dockerfile's content (as "Dockerfile", mode 0),
 * then, for each file in path order, its path, its Go mode string and the sha256 of its
 * content, exactly the inputs of pulumi-docker's hashContext. Pure but for `read()`.
 */
export function contextDigest(files: readonly ContextFile[], dockerfileContent: Buffer | string): string {
  const hash = createHash("sha256");
  const entry = (name: string, mode: string, content: Buffer | string) => {
    // Length-prefix every field so ("ab","c") and ("a","bc") cannot collide.
    lengthPrefixed(hash, name);
    lengthPrefixed(hash, mode);
    lengthPrefixed(hash, createHash("sha256").update(content).digest());
  };
  entry("Dockerfile", goFileModeString(0), dockerfileContent);
  for (const file of [...files].sort(byPath)) entry(file.path, goFileModeString(file.mode), file.read());
  return hash.digest("hex");
}

/** 12 hex characters from a context digest and the build args, sorted (a new base image is a new tag). */
export function tagOf(digest: string, buildArgs: Record<string, string> = {}): string {
  const hash = createHash("sha256");
  lengthPrefixed(hash, digest);
  for (const name of Object.keys(buildArgs).sort()) {
    lengthPrefixed(hash, name);
    lengthPrefixed(hash, buildArgs[name] ?? "");
  }
  return hash.digest("hex").slice(0, TAG_LENGTH);
}

/**
 * Everything a tar of the context must hold, in an order where a directory precedes its
 * content: each file plus each of its parent directories (as bare directory entries, for
 * `tar --no-recursion`), relative paths with forward slashes.
 */
export function tarEntries(files: readonly Pick<ContextFile, "path">[]): string[] {
  const entries = new Set<string>();
  for (const file of files) {
    const parts = file.path.split("/");
    for (let i = 1; i < parts.length; i++) entries.add(parts.slice(0, i).join("/"));
    entries.add(file.path);
  }
  // A parent is a prefix of its children, so plain string order puts it first.
  return [...entries].sort();
}

/**
 * GNU tar arguments that write to stdout an archive of exactly the NUL-separated names read
 * from stdin (`tarFileList`), relative to tar's working directory: no directory is pulled in
 * whole (--no-recursion) and a name is never taken for an option (--verbatim-files-from).
 */
export const CONTEXT_TAR_ARGS: readonly string[] = ["--create", "--file=-", "--null", "--verbatim-files-from", "--no-recursion", "--files-from=-"];

/** The stdin of `tar ${CONTEXT_TAR_ARGS}`: each entry followed by a NUL. */
export function tarFileList(entries: readonly string[]): string {
  return entries.map((entry) => `${entry}\0`).join("");
}

/** One .dockerignore pattern as Docker parses it: comments and blank lines dropped, `!` split off. */
interface Pattern {
  negated: boolean;
  segments: string[];
}

function parsePatterns(patterns: readonly string[]): Pattern[] {
  const parsed: Pattern[] = [];
  for (const line of patterns) {
    let text = line.trim();
    if (text === "" || text.startsWith("#")) continue;
    const negated = text.startsWith("!");
    if (negated) text = text.slice(1).trim();
    text = path.posix.normalize(text).replace(/^\/+/, "").replace(/\/+$/, "");
    if (text === "" || text === ".") continue;
    parsed.push({ negated, segments: text.split("/") });
  }
  return parsed;
}

const GLOB_CHARS = /[*?[\\]/;

/**
 * Whether some `!` pattern could re-include a path strictly under the excluded directory
 * `dir` (relative, forward slashes), so the walk has to descend into it. A pattern with no
 * more segments than `dir` matches the files under `dir` exactly when it matches `dir` (or
 * one of its parents), and that is already decided by `dir` being excluded; only a longer
 * pattern whose leading segments can match `dir`'s, or one with `**`, can differ.
 * Conservative: a segment with glob characters is taken to match.
 */
export function couldReincludeUnder(dir: string, patterns: readonly string[]): boolean {
  const dirSegments = dir.split("/");
  return parsePatterns(patterns).some(
    (pattern) =>
      pattern.negated &&
      (pattern.segments.some((segment) => segment.includes("**")) ||
        (pattern.segments.length > dirSegments.length &&
          dirSegments.every((segment, i) => {
            const patternSegment = pattern.segments[i] as string;
            return GLOB_CHARS.test(patternSegment) || patternSegment === segment;
          }))),
  );
}

// ------------------------------------------------------------------ reading the file system

/** The lines of an ignore file (the matcher drops comments and blank lines). */
export function readIgnorePatterns(file: string): string[] {
  return fs.readFileSync(file, "utf8").split(/\r?\n/);
}

/**
 * The entries of `contextDir` that the provider's walk hashes under these ignore patterns:
 * every non-directory entry not excluded, symlinks as links, in path order. Directories that
 * are excluded and that no `!` pattern can reach into are not entered (node_modules trees are
 * large); `onDirectory` sees each directory entered ("" for the context itself).
 */
export function walkContext(
  contextDir: string,
  patterns: readonly string[],
  options: { onDirectory?: (relativeDir: string) => void } = {},
): ContextFile[] {
  // Docker matches case-sensitively on Linux; the library's default is case-insensitive.
  const matcher = dockerignore({ ignorecase: false }).add([...patterns]);
  const files: ContextFile[] = [];
  const visit = (relativeDir: string) => {
    options.onDirectory?.(relativeDir);
    const entries = fs.readdirSync(relativeDir === "" ? contextDir : path.join(contextDir, relativeDir), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const relative = relativeDir === "" ? entry.name : `${relativeDir}/${entry.name}`;
      const ignored = matcher.ignores(relative);
      if (entry.isDirectory()) {
        if (!ignored || couldReincludeUnder(relative, patterns)) visit(relative);
        continue;
      }
      if (ignored) continue;
      const absolute = path.join(contextDir, relative);
      const mode = fs.lstatSync(absolute).mode;
      const isLink = (mode & S_IFMT) === S_IFLNK;
      files.push({
        path: relative,
        mode,
        read: () => (isLink ? Buffer.from(fs.readlinkSync(absolute)) : fs.readFileSync(absolute)),
      });
    }
  };
  visit("");
  return files;
}

/**
 * The files of one image's build context (the repository root) exactly as pulumi-docker's
 * walk includes them, under the patterns of images/<name>/Dockerfile.dockerignore.
 */
export function contextFiles(repoRoot: string, imageName: string): ContextFile[] {
  const dockerfile = path.join(repoRoot, dockerfileOf(imageName));
  if (!fs.existsSync(dockerfile)) throw new Error(`image ${imageName}: ${dockerfileOf(imageName)} not found under ${repoRoot}`);
  const ignoreFile = path.join(repoRoot, ignoreFileOf(imageName));
  if (!fs.existsSync(ignoreFile)) {
    throw new Error(
      `image ${imageName}: ${ignoreFileOf(imageName)} not found under ${repoRoot}; every image needs one, ` +
        "or its build context would be the whole repository",
    );
  }
  return walkContext(repoRoot, readIgnorePatterns(ignoreFile));
}

/**
 * The provider's rule for any context and Dockerfile (absolute paths, or relative to the
 * working directory as the provider resolves them): the patterns of `<dockerfile>.dockerignore`
 * if it exists, else of `<context>/.dockerignore`, else none.
 */
export function providerContextFiles(contextDir: string, dockerfile: string): { files: ContextFile[]; ignoreFile?: string } {
  const candidates = [`${dockerfile}.dockerignore`, path.join(contextDir, ".dockerignore")];
  const ignoreFile = candidates.find((file) => fs.existsSync(file) && fs.statSync(file).isFile());
  return { files: walkContext(contextDir, ignoreFile ? readIgnorePatterns(ignoreFile) : []), ignoreFile };
}

/** The tag for one image as built from repoRoot with these build args: 12 hex characters. */
export function contentTag(repoRoot: string, imageName: string, buildArgs: Record<string, string> = {}): string {
  const files = contextFiles(repoRoot, imageName);
  return tagOf(contextDigest(files, fs.readFileSync(path.join(repoRoot, dockerfileOf(imageName)))), buildArgs);
}
