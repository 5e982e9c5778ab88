// `npm run evidence`: prints, as Markdown, what the original assignment asked
// to show about the running lab deployment — the swarm's nodes, where every
// replica runs, and answers with the VM that produced each.
//
// The master has no endpoint that lists past queries (only GET
// /api/queries/:id for an id you know), so this submits a few fresh queries
// through the REST API and shows those; it adds nothing to the master.
import { randomUUID } from "node:crypto";
import { formatDuration } from "./plan";
import { managerOf, labStackConfig, onVm, readLab, stackOutput, stackServices } from "./stack";
import { markdownTable } from "./stack-plan";
import { postQuery, waitForAnswer, type ApiOptions, type QueryView } from "../tests/support/api";

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
