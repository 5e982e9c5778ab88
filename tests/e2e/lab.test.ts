// The live end-to-end test of issue 5 (npm run test:e2e): on a FRESH 4-VM lab
// (any running lab is taken down first), deploy the dev stack the way
// `npm run lab` does, then check the deployed system for real and take the
// lab down again. Every check prints what it saw. Traffic goes only to the
// lab's own containers (172.28.0.0/24) and loopback.
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { down, up } from "../../lab/lab";
import { formatDuration, LAB_LABEL, LAB_NETWORK } from "../../lab/plan";
import { runOk } from "../../lab/shell";
import { deployDevStack, managerOf, onVm, prepareDeploy, registryPassword, runningTasks, stackServices } from "../../lab/stack";
import {
  NODE_LS_FORMAT,
  parseNodeLines,
  PLACEMENT_HEADER,
  placementRows,
  textTable,
  workerLanguageOf,
  workerSpread,
  type LabDescription,
  type TaskRow,
} from "../../lab/stack-plan";
import type { ParsedConfig } from "../../components/config";
import { askThroughPage, launchChromium } from "../support/browser";
import { getQuery, postQuery, waitForAnswer, type QueryView } from "../support/api";

const VM_COUNT = 4;
const LANGUAGES = ["python", "go", "java"] as const;
const QUERIES = 30;
/** Per query: with 6 workers and SIMULATED_WORK_MS 10 s, 30 queries take about a minute. */
const ANSWER_TIMEOUT_MS = 6 * 60_000;

const timings: Record<string, number> = {};
const started = Date.now();
let lab: LabDescription;
let config: ParsedConfig;
let webUrl: string;
let vmNames: string[];
let tornDown = false;

const say = (line: string) => console.log(`[e2e] ${line}`);
const seconds = (ms: number) => formatDuration(ms / 1000);

async function timed<T>(name: string, step: () => Promise<T>): Promise<T> {
  const start = Date.now();
  try {
    return await step();
  } finally {
    timings[name] = Date.now() - start;
    say(`${name}: ${seconds(timings[name])}`);
  }
}

async function teardown(): Promise<void> {
  if (tornDown) return;
  tornDown = true;
  await timed("lab down", () => down());
}

describe("issue 5: the live deployment on a fresh 4-VM lab", () => {
  beforeAll(async () => {
    await timed("lab down before (fresh start)", () => down());
    await timed("lab up", () => up(VM_COUNT));
    ({ lab, config } = prepareDeploy());
    await timed("deploy", () => deployDevStack());
    const manager = config.nodes.find((node) => node.role === "manager");
    webUrl = `http://${manager?.host}:${config.ports.web}`;
    vmNames = lab.vms.map((vm) => vm.name);
    say(`web: ${webUrl}; VMs: ${vmNames.join(", ")}`);
  });

  afterAll(async () => {
    await teardown();
    timings["whole test"] = Date.now() - started;
    say("wall times:");
    for (const [name, ms] of Object.entries(timings)) say(`  ${name.padEnd(30)} ${seconds(ms)}`);
  });

  it("1. docker node ls on the manager shows four Ready nodes", async () => {
    const nodes = parseNodeLines(await onVm(managerOf(lab), `docker node ls --format '${NODE_LS_FORMAT}'`));
    say(`nodes:\n${textTable(["HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER"], nodes.map((n) => [n.hostname, n.status, n.availability, n.managerStatus]))}`);
    expect(nodes.map((node) => node.hostname).sort()).toEqual([...vmNames].sort());
    expect(nodes.every((node) => node.status === "Ready" && node.availability === "Active")).toBe(true);
    expect(nodes.filter((node) => node.managerStatus === "Leader").map((node) => node.hostname)).toEqual([managerOf(lab).name]);
  });

  it("2. the registry answers only over TLS and only with credentials; every app image comes from it", async () => {
    const registry = `${managerOf(lab).address}:${config.registry.port}`;
    const ca = await onVm(managerOf(lab), `cat /etc/docker/certs.d/${registry}/ca.crt`);
    expect(ca).toContain("BEGIN CERTIFICATE");

    const plain = await request(`http://${registry}/v2/_catalog`, {});
    say(`plain HTTP: ${plain.status ?? plain.error} (no registry API: ${plain.apiVersion === undefined})`);
    expect(plain.status === undefined || plain.status === 400).toBe(true);
    expect(plain.apiVersion).toBeUndefined();

    const untrusted = await request(`https://${registry}/v2/_catalog`, {});
    say(`TLS without the deploy's CA: ${untrusted.error ?? untrusted.status}`);
    expect(untrusted.error).toMatch(/certificate/i);

    const anonymous = await request(`https://${registry}/v2/_catalog`, { ca });
    const wrong = await request(`https://${registry}/v2/_catalog`, { ca, user: config.registry.username, password: "wrong-password-123" });
    const right = await request(`https://${registry}/v2/_catalog`, { ca, user: config.registry.username, password: registryPassword() });
    say(`TLS with the CA: no credentials ${anonymous.status}, wrong ${wrong.status}, right ${right.status}: ${right.body}`);
    expect([anonymous.status, wrong.status, right.status]).toEqual([401, 401, 200]);
    const catalog = JSON.parse(right.body) as { repositories: string[] };
    expect(catalog.repositories).toEqual(expect.arrayContaining(["ai-swarm/master", ...LANGUAGES.map((l) => `ai-swarm/worker-${l}`)]));

    const images = await serviceImages();
    say(`service images:\n${textTable(["SERVICE", "IMAGE"], [...images])}`);
    for (const [service, image] of images) {
      if (service.endsWith("_mosquitto") || service.endsWith("_registry")) {
        // Third-party images the manager has preloaded (as it would pull them); the registry cannot serve itself.
        expect(image, service).toBe(service.endsWith("_registry") ? config.baseImages.registry : config.baseImages.mosquitto);
        continue;
      }
      expect(image, service).toMatch(new RegExp(`^${escape(registry)}/ai-swarm/[a-z-]+:[0-9a-f]{12}(@sha256:[0-9a-f]{64})?$`));
    }
    expect(images.size).toBe(6);
  });

  it("3. worker replicas of each language run on ≥2 VMs, and the three languages span ≥3 VMs", async () => {
    const tasks = await runningTasks(managerOf(lab), config.stackName);
    say(`placement:\n${textTable(PLACEMENT_HEADER, placementRows(tasks))}`);
    const spread = workerSpread(tasks);
    for (const language of LANGUAGES) {
      expect([...(spread.get(language) ?? [])].length, `${language} workers on distinct VMs`).toBeGreaterThanOrEqual(2);
    }
    const allWorkerVms = new Set([...spread.values()].flatMap((nodes) => [...nodes]));
    expect(allWorkerVms.size).toBeGreaterThanOrEqual(3);
    expect([...allWorkerVms].every((node) => vmNames.includes(node))).toBe(true);
  });

  it(`4. ${QUERIES} queries through the REST API are all answered, by all three languages, from ≥3 VMs`, async () => {
    const answers = await timed("30 queries", async () => Promise.all((await submitMany("rest")).map((id) => waitForAnswer(webUrl, id, ANSWER_TIMEOUT_MS))));
    say(`answers by language and VM: ${JSON.stringify(tally(answers))}`);
    expect(answers.filter((a) => a.status !== "done").map((a) => `${a.id}: ${a.status} ${a.error}`)).toEqual([]);
    expect(new Set(answers.map((a) => a.worker?.language))).toEqual(new Set(LANGUAGES));
    for (const answer of answers) {
      expect(vmNames, `query ${answer.id} names its VM`).toContain(answer.worker?.node);
      expect(answer.answer ?? "").not.toBe("");
    }
    expect(new Set(answers.map((a) => a.worker?.node)).size).toBeGreaterThanOrEqual(3);
  });

  it("5. the deployed page answers a query and shows the worker's language and VM", async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(webUrl);
      const answer = await askThroughPage(page, "What does a Docker Swarm manager do?", 120_000);
      say(`browser: ${answer.language} worker ${answer.workerId} on ${answer.node}: ${answer.text.slice(0, 80)}`);
      expect(LANGUAGES).toContain(answer.language);
      expect(vmNames).toContain(answer.node);
      expect(answer.text).not.toBe("");
    } finally {
      await browser.close();
    }
  });

  it(`6. stopping a worker VM during a burst of ${QUERIES} queries loses none`, async () => {
    const manager = managerOf(lab);
    const before = await runningTasks(manager, config.stackName);
    const victim = workerVmToStop(before, manager.name);
    say(`will stop ${victim} (worker replicas there: ${before.filter((t) => t.node === victim).map((t) => t.task).join(", ")})`);
    const ids = await submitMany("failover");
    const inFlight = await waitForTaskOn(victim, ids);
    say(`stopping ${victim} (docker stop) while it works on ${inFlight.length} of the queries: ${inFlight.join(", ")}`);
    await timed(`docker stop ${victim}`, () => runOk("docker", ["stop", victim]));
    // docker stop gives the VM 10 s: its workers may still finish the task in hand (graceful shutdown).
    const stoppedAtMs = Date.now();
    const answers = await timed("30 queries with a VM stopped", () => Promise.all(ids.map((id) => waitForAnswer(webUrl, id, ANSWER_TIMEOUT_MS))));
    const redone = answers.filter((a) => inFlight.includes(a.id));
    say(`answers: ${JSON.stringify(tally(answers))}; in flight on ${victim} at the stop: ${redone.map((a) => `${a.id} → ${a.worker?.node} (attempts ${a.attempts})`).join(", ")}`);
    expect(answers.filter((a) => a.status !== "done").map((a) => `${a.id}: ${a.status} ${a.error}`)).toEqual([]);
    // Nothing can come from the stopped VM after it stopped: a query answered there was finished during the stop's grace period.
    for (const answer of answers.filter((a) => a.worker?.node === victim)) {
      expect(answer.timings["completed_ms"] ?? Infinity, `query ${answer.id} answered by ${victim} after it stopped`).toBeLessThanOrEqual(stoppedAtMs + 1000);
    }
    const after = await waitForReschedule(victim);
    say(`swarm rescheduled the worker replicas:\n${textTable(PLACEMENT_HEADER, placementRows(after))}`);
  });

  it("7. teardown leaves no lab container, volume or network", async () => {
    await teardown();
    const byLabel = `label=${LAB_LABEL}=1`;
    const leftovers = {
      containersByLabel: await list(["ps", "-aq", "--filter", byLabel]),
      volumesByLabel: await list(["volume", "ls", "-q", "--filter", byLabel]),
      networksByLabel: await list(["network", "ls", "-q", "--filter", byLabel]),
      containersByName: await list(["ps", "-a", "--format", "{{.Names}}", "--filter", "name=ai-swarm-vm"]),
      volumesByName: await list(["volume", "ls", "-q", "--filter", "name=ai-swarm-vm"]),
      networksByName: (await list(["network", "ls", "--format", "{{.Name}}"])).filter((name) => name === LAB_NETWORK),
    };
    say(`after lab down: ${JSON.stringify(leftovers)}`);
    expect(leftovers).toEqual({
      containersByLabel: [], volumesByLabel: [], networksByLabel: [], containersByName: [], volumesByName: [], networksByName: [],
    });
  });
});

// ---------------------------------------------------------------- helpers

interface HttpResult {
  status?: number;
  body: string;
  error?: string;
  /** The Docker-Distribution-Api-Version header: present only when the registry API answered. */
  apiVersion?: string;
}

/** One GET to the registry; never throws (a refused or failed TLS connection is a result too). */
function request(url: string, options: { ca?: string; user?: string; password?: string }): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  if (options.user !== undefined) headers["authorization"] = `Basic ${Buffer.from(`${options.user}:${options.password ?? ""}`).toString("base64")}`;
  const client = url.startsWith("https:") ? https : http;
  return new Promise((resolve) => {
    const req = client.get(url, { headers, timeout: 10_000, ...(options.ca !== undefined && { ca: options.ca }) }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        const apiVersion = res.headers["docker-distribution-api-version"];
        resolve({ status: res.statusCode, body, ...(typeof apiVersion === "string" && { apiVersion }) });
      });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (error) => resolve({ body: "", error: error.message }));
  });
}

async function serviceImages(): Promise<Map<string, string>> {
  const images = new Map<string, string>();
  for (const service of await stackServices(managerOf(lab), config.stackName)) {
    images.set(service, await onVm(managerOf(lab), `docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' ${service}`));
  }
  return images;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Submits QUERIES queries, each in its own session (a session may queue only a few). */
async function submitMany(tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= QUERIES; i++) {
    const { status, body } = await postQuery(webUrl, { query: `e2e ${tag} ${i}: what is a swarm task?` }, `e2e-${tag}-${randomUUID()}`);
    if (status !== 202 || typeof body["id"] !== "string") throw new Error(`query ${i} refused: ${status} ${JSON.stringify(body)}`);
    ids.push(body["id"]);
  }
  return ids;
}

/** "language@vm" → count. */
function tally(answers: QueryView[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) {
    const key = `${a.worker?.language ?? "?"}@${a.worker?.node ?? "?"}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The worker VM (never the manager) running the most worker replicas. */
function workerVmToStop(tasks: TaskRow[], managerName: string): string {
  const perVm = new Map<string, number>();
  for (const task of tasks) {
    if (workerLanguageOf(task.service) === undefined || task.node === managerName) continue;
    perVm.set(task.node, (perVm.get(task.node) ?? 0) + 1);
  }
  const [victim] = [...perVm.entries()].sort((a, b) => b[1] - a[1])[0] ?? [];
  if (victim === undefined) throw new Error("no VM other than the manager runs a worker");
  return victim;
}

/** Waits until at least one of the queries is assigned to a worker on `vm`; returns those ids. */
async function waitForTaskOn(vm: string, ids: string[]): Promise<string[]> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const views = await Promise.all(ids.map((id) => getQuery(webUrl, id)));
    const there = views.filter((v) => v.status === "assigned" && v.worker?.node === vm).map((v) => v.id);
    if (there.length > 0) return there;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`no query was assigned to a worker on ${vm} within 60 s`);
}

/** Waits until every worker replica runs again, none on the stopped VM. */
async function waitForReschedule(stopped: string): Promise<TaskRow[]> {
  const wanted = LANGUAGES.reduce((sum, language) => sum + config.replicas[language], 0);
  const deadline = Date.now() + 180_000;
  for (;;) {
    const workers = (await runningTasks(managerOf(lab), config.stackName)).filter((t) => workerLanguageOf(t.service) !== undefined);
    if (workers.length === wanted && workers.every((t) => t.node !== stopped)) return workers;
    if (Date.now() > deadline) throw new Error(`worker replicas not rescheduled off ${stopped} within 180 s: ${JSON.stringify(workers)}`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function list(args: string[]): Promise<string[]> {
  return (await runOk("docker", args)).split("\n").map((s) => s.trim()).filter(Boolean);
}
