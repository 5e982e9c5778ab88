// `npm run evidence`: prints, as Markdown, what the original assignment asked
// to show about the running lab deployment — the swarm's nodes, where every
// replica runs, answers with the VM that produced each, the cluster summary
// the page shows, and the page's screenshots saved by the e2e.
//
// The master has no endpoint that lists past queries (only GET
// /api/queries/:id for an id you know), so this submits a few fresh queries
// through the REST API and shows those; it adds nothing to the master.
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { EVIDENCE_DIR, formatDuration } from "./plan";
import { managerOf, labStackConfig, onVm, readLab, stackOutput, stackServices } from "./stack";
import { markdownTable } from "./stack-plan";
import { postQuery, request, waitForAnswer, type ApiOptions, type QueryView } from "../launch/api";

const FRESH_QUERIES = 6;
const ANSWER_TIMEOUT_MS = 180_000;

async function main(): Promise<void> {
  const lab = readLab();
  const config = labStackConfig();
  const manager = managerOf(lab);
  const webUrl = String(stackOutput("webUrl"));
  // The front door: the stack's CA for HTTPS and the access token as a bearer (the deploy's own outputs).
  const token = String(stackOutput("webToken"));
  const access: ApiOptions = {
    ...(webUrl.startsWith("https:") && { ca: String(stackOutput("webCaCert")) }),
    ...(token !== "web.auth is off" && { token }),
  };
  const out: string[] = [];
  out.push(`# ai-swarm on the lab: evidence (${new Date().toISOString()})`, "");
  out.push(`Stack \`${config.stackName}\`, manager ${manager.name} (${manager.address}), web ${webUrl}.`, "");

  out.push("## Nodes of the swarm", "", "`docker node ls` on the manager:", "", "```text");
  out.push(await onVm(manager, "docker node ls"), "```", "");

  out.push("## Where each replica runs", "");
  out.push("`docker service ps --filter desired-state=running <service>` on the manager, for every service of the stack (the NODE column is the VM):", "");
  for (const service of await stackServices(manager, config.stackName)) {
    const tasks = await onVm(manager, `docker service ps --filter desired-state=running --format 'table {{.Name}}\\t{{.Node}}\\t{{.CurrentState}}\\t{{.Image}}' ${service}`);
    out.push(`### ${service}`, "", "```text", tasks, "```", "");
  }

  out.push("## Answers and the VM that produced each", "");
  out.push(
    `The master's REST API has no endpoint listing past queries (only \`GET /api/queries/:id\`), so these are ${FRESH_QUERIES} ` +
      `fresh queries submitted now with \`POST ${webUrl}/api/queries\` and read back with \`GET /api/queries/:id\`. ` +
      "`worker.node` is the VM's hostname, which Swarm gives each worker as NODE_HOSTNAME={{.Node.Hostname}}.",
    "",
  );
  const answers = await askFreshQueries(webUrl, access);
  out.push(markdownTable(["#", "query", "language", "VM (worker.node)", "worker id", "status", "answer (start)", "created → completed"], answers.map(answerRow)), "");

  out.push("## The cluster view", "");
  out.push(`What the page's cluster view shows, as \`GET ${webUrl}/api/cluster\` serves it now (one row per VM):`, "");
  out.push(...(await clusterSection(webUrl, access)), "");
  out.push(...screenshotSection(), "");
  console.log(out.join("\n"));
}

async function askFreshQueries(webUrl: string, access: ApiOptions): Promise<QueryView[]> {
  const asked: { id: string; options: ApiOptions }[] = [];
  for (let i = 1; i <= FRESH_QUERIES; i++) {
    // One session per query: a session may only queue a few queries at once (and reads only its own).
    const options = { ...access, sessionId: `evidence-${randomUUID()}` };
    const { status, body } = await postQuery(webUrl, { query: `Evidence question ${i}: name one use of a message queue.` }, options);
    if (status !== 202 || typeof body["id"] !== "string") throw new Error(`POST /api/queries answered ${status}: ${JSON.stringify(body)}`);
    asked.push({ id: body["id"], options });
  }
  return Promise.all(asked.map(({ id, options }) => waitForAnswer(webUrl, id, ANSWER_TIMEOUT_MS, options)));
}

interface ClusterNode {
  node: string;
  workers: number;
  idle: number;
  busy: number;
  languages: { language: string; idle: number; busy: number }[];
  answers_per_min: number;
}

async function clusterSection(webUrl: string, access: ApiOptions): Promise<string[]> {
  const reply = await request(`${webUrl}/api/cluster`, {}, access);
  if (reply.status !== 200) throw new Error(`GET /api/cluster answered ${reply.status}`);
  const summary = JSON.parse(reply.text) as { totals: Record<string, unknown>; nodes: ClusterNode[] };
  const t = summary.totals;
  const rows = summary.nodes.map((n) => [n.node, String(n.workers), String(n.busy), String(n.idle), n.languages.map((l) => `${l.language} ${l.idle + l.busy}`).join(" · "), String(n.answers_per_min)]);
  return [
    `Totals: ${String(t["vms"])} VMs, ${String(t["workers"])} workers (${String(t["busy"])} busy, ${String(t["idle"])} idle), queue ${String(t["queue_depth"])}, ` +
      `${String(t["answers_per_min"])} answers in the last minute, median answer ${t["median_answer_ms"] === null ? "-" : `${String(t["median_answer_ms"])} ms`}.`,
    "",
    markdownTable(["VM", "workers", "busy", "idle", "languages", "answers / min"], rows),
  ];
}

/** The page's screenshots saved by the last e2e run (`npm run test:e2e`, test 5), if any. */
function screenshotSection(): string[] {
  const out = ["## The page", ""];
  const files = fs.existsSync(EVIDENCE_DIR) ? fs.readdirSync(EVIDENCE_DIR).filter((f) => f.endsWith(".png")).sort() : [];
  if (files.length === 0) {
    out.push(`No screenshots in ${path.relative(process.cwd(), EVIDENCE_DIR)}/: \`npm run test:e2e\` saves them there (desktop and phone sizes) on the lab it deploys.`);
    return out;
  }
  out.push("Screenshots of the deployed page (chat and cluster view) saved by `npm run test:e2e` on the lab:", "");
  for (const file of files) {
    const full = path.join(EVIDENCE_DIR, file);
    const rel = path.relative(process.cwd(), full);
    out.push(`- [${file}](${rel}) (${fs.statSync(full).mtime.toISOString()})`);
  }
  return out;
}

function answerRow(view: QueryView, index: number): string[] {
  const created = view.timings["created_ms"];
  const completed = view.timings["completed_ms"];
  const took = typeof created === "number" && typeof completed === "number" ? formatDuration((completed - created) / 1000) : "-";
  const answer = (view.answer ?? view.error ?? "").replace(/\s+/g, " ").slice(0, 70);
  return [String(index + 1), view.query, view.worker?.language ?? "-", view.worker?.node ?? "-", view.worker?.id ?? "-", view.status, answer, took];
}

main().catch((error: unknown) => {
  console.error(`evidence: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
