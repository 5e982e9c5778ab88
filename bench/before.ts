/**
 * The master as committed at a revision (CLUSTER_BEFORE_REF, default HEAD), built once into lab/.state/master-before/
 * so npm run bench:cluster can measure "before" and "after" (the working
 * tree's images/master/dist) in the same run. Only read-only git commands:
 * `git archive HEAD images/master proto | tar -x`, then npm ci and npm run
 * build in that copy. A stamp names the commit it was built from; a later run
 * at the same HEAD reuses the build.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../launch/system";

export const BEFORE_DIR = path.join(REPO_ROOT, "lab/.state/master-before");
const STAMP = path.join(BEFORE_DIR, ".built-from");
export const BEFORE_MAIN = path.join(BEFORE_DIR, "images/master/dist/main.js");

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const result = spawnSync(command, args, { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-15).join("\n");
    throw new Error(`${command} ${args.join(" ")} failed in ${path.relative(REPO_ROOT, cwd) || "."} (exit ${result.status}): ${result.error?.message ?? output}`);
  }
  return result.stdout;
}

/** Path of the built master (main.js) of revision `ref`, building it first if needed. */
export function ensureBeforeMaster(ref: string, say: (line: string) => void): string {
  const head = run("git", ["rev-parse", "--verify", "--end-of-options", `${ref}^{commit}`], REPO_ROOT).trim();
  if (existsSync(BEFORE_MAIN) && existsSync(STAMP) && readFileSync(STAMP, "utf8").trim() === head) {
    say(`before: the master of ${ref} (${head.slice(0, 12)}) already built in ${path.relative(REPO_ROOT, BEFORE_DIR)}`);
    return BEFORE_MAIN;
  }
  say(`before: building the master of ${ref} (${head.slice(0, 12)}) in ${path.relative(REPO_ROOT, BEFORE_DIR)} (npm ci compiles better-sqlite3: a few minutes, once)`);
  rmSync(BEFORE_DIR, { recursive: true, force: true });
  mkdirSync(BEFORE_DIR, { recursive: true });
  run("bash", ["-o", "pipefail", "-c", `git archive --format=tar ${head} images/master proto | tar -x -C "${BEFORE_DIR}"`], REPO_ROOT);
  const masterDir = path.join(BEFORE_DIR, "images/master");
  // better-sqlite3 is compiled by node-gyp: point it at this Node's headers, as scripts/setup.sh does.
  const env = { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir ?? path.dirname(path.dirname(process.execPath)) };
  run("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], masterDir, env);
  run("npm", ["run", "--silent", "build"], masterDir, env);
  if (!existsSync(BEFORE_MAIN)) throw new Error(`the build of ${ref}'s master made no ${path.relative(REPO_ROOT, BEFORE_MAIN)}`);
  writeFileSync(STAMP, `${head}\n`);
  return BEFORE_MAIN;
}

/** A warning when images/master/src has files newer than dist/main.js (the "after" build may be stale). */
export function staleDistWarning(): string | undefined {
  const main = path.join(REPO_ROOT, "images/master/dist/main.js");
  if (!existsSync(main)) return undefined;
  const built = statSync(main).mtimeMs;
  const src = path.join(REPO_ROOT, "images/master/src");
  const newer = readdirSync(src).filter((name) => statSync(path.join(src, name)).mtimeMs > built);
  if (newer.length === 0) return undefined;
  return `warning: images/master/src has files newer than dist/main.js (${newer.slice(0, 3).join(", ")}${newer.length > 3 ? ", …" : ""}): "after" measures the last build; run npm run build in images/master`;
}
