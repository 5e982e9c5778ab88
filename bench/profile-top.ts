/**
 * `npx tsx bench/profile-top.ts <file.cpuprofile> [N]`: where a V8 CPU profile
 * (node --cpu-prof, e.g. from CLUSTER_CPU_PROF) spent its time — the top N
 * functions by self time, then self time per source file (node_modules
 * grouped by package, Node's own code as `node:`). Prints Markdown.
 */
import { readFileSync } from "node:fs";
import path from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time (ms) per profile node id. */
export function selfTimes(profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  return self;
}

/** A readable place for a source URL: a package name under node_modules, `node:…`, or the path from images/. */
export function placeOf(url: string): string {
  if (url === "") return "(native / V8)";
  if (url.startsWith("node:")) return "node:";
  const modules = url.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "/node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1] ?? ""}` : (rest[0] ?? url);
  }
  const local = url.replace(/^file:\/\//, "");
  const images = local.indexOf("/images/");
  return images >= 0 ? local.slice(images + 1) : path.basename(local);
}

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

function main(): void {
  const [file, topRaw] = process.argv.slice(2);
  if (file === undefined) {
    console.error("usage: tsx bench/profile-top.ts <file.cpuprofile> [N]");
    process.exit(2);
  }
  const top = topRaw === undefined ? 25 : Number(topRaw);
  if (!Number.isInteger(top) || top < 1) {
    console.error(`N must be a positive integer, got "${topRaw}"`);
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const self = selfTimes(profile);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = self.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const place = placeOf(url);
    const key = `${functionName || "(anonymous)"} ${place}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
    byPlace.set(place, (byPlace.get(place) ?? 0) + ms);
  }
  const pct = (ms: number) => `${((100 * ms) / total).toFixed(1)} %`;
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  console.log(`${path.basename(file)}: ${(total / 1000).toFixed(1)} s of samples\n`);
  console.log(table(["function", "self ms", "share"], sorted(byFunction).slice(0, top).map(([k, ms]) => [k, ms.toFixed(0), pct(ms)])));
  console.log("");
  console.log(table(["where", "self ms", "share"], sorted(byPlace).map(([k, ms]) => [k, ms.toFixed(0), pct(ms)])));
}

if (require.main === module) main();
