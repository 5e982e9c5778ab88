// `npx tsx lab/image-smoke.ts`: the offline image smoke test (issue 3).
//
//  1. makes sure the Docker engine and the offline base images exist (lab/engine.sh, lab/base-images.sh);
//  2. builds the four app images from images/*/Dockerfile with the ai-swarm-base/* images as
//     build args, tagged ai-swarm/<name>:smoke (the layer cache makes a second run take seconds),
//     each from a tar of exactly its context files (images/<name>/Dockerfile.dockerignore, as
//     pulumi-docker hashes them: components/buildContext.ts) piped into `docker build -`;
//  3. runs Mosquitto, the master and one worker per language as containers on one user-defined
//     bridge network, waits for three idle workers, gets one answer from each language through
//     the master's REST API and waits for every app container's HEALTHCHECK to say "healthy";
//  4. prints each image's size against its target;
//  5. removes every container, network and volume it made (by label), also on Ctrl-C.
// It ends with "image smoke: N passed, N failed" and exits non-zero on any failure.
//
// Traffic: only 127.0.0.1 (the master's published HTTP port) and the containers it starts.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { CONTEXT_TAR_ARGS, contextFiles, dockerfileOf, tarEntries, tarFileList } from "../components/buildContext";
import { listWorkers, submit, waitForAnswer, type QueryView, type WorkerView } from "../launch/api";
import { formatDuration } from "./plan";
import { run, runOk, sleep } from "./shell";

const REPO_ROOT = path.resolve(__dirname, "..");
const WORK_DIR = path.join(__dirname, ".state", "image-smoke");
const RUN_LABEL = "ai-swarm.image-smoke";
const LANGUAGES = ["python", "go", "java"] as const;
type Language = (typeof LANGUAGES)[number];

const WORKERS_TIMEOUT_MS = 120_000;
const HEALTH_TIMEOUT_MS = 120_000;
const QUERY_TIMEOUT_MS = 60_000;
const MAX_QUERY_ROUNDS = 8;

// ------------------------------------------------------------------ what is built

/** One app image: its folder under images/, the build args pointing at local bases, its size target. */
export interface AppImage {
  name: "master" | "worker-python" | "worker-go" | "worker-java";
  buildArgs: Record<string, string>;
  targetMb: number;
}

/** The four images, their build args (the offline bases of lab/base-images.sh) and size targets. */
export const APP_IMAGES: AppImage[] = [
  { name: "worker-go", buildArgs: { GO_IMAGE: "ai-swarm-base/go:1.26" }, targetMb: 25 },
  { name: "worker-python", buildArgs: { PYTHON_IMAGE: "ai-swarm-base/python:3.11" }, targetMb: 150 },
  {
    name: "worker-java",
    buildArgs: { MAVEN_IMAGE: "ai-swarm-base/maven:3-jdk17", RUNTIME_IMAGE: "ai-swarm-base/debian:bookworm-slim" },
    targetMb: 200,
  },
  { name: "master", buildArgs: { NODE_IMAGE: "ai-swarm-base/node:20" }, targetMb: 200 },
];
const MOSQUITTO_BASE = "ai-swarm-base/mosquitto:2";

export const imageTag = (image: AppImage) => `ai-swarm/${image.name}:smoke`;

// ------------------------------------------------------------------ checks and output

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Set on SIGINT/SIGTERM: from then on only the clean-up speaks, the interrupted steps stay quiet. */
let interrupted = false;

function say(line: string): void {
  if (!interrupted) console.log(line);
}

function log(message: string): void {
  say(`[image-smoke] ${message}`);
}

function record(checks: Check[], check: Check): void {
  checks.push(check);
  log(`${check.ok ? "PASS" : "FAIL"} ${check.name}: ${check.detail}`);
}

const since = (startMs: number) => formatDuration((Date.now() - startMs) / 1000);

/** Decimal megabytes, as `docker image ls` shows them. */
export const toMb = (bytes: number) => bytes / 1e6;

/** The size table: one row per image, "MISS" where the image is over its target. */
export function sizeTable(rows: { image: AppImage; bytes: number | null }[]): string[] {
  const lines = ["image            size       target    verdict"];
  for (const { image, bytes } of rows) {
    const size = bytes === null ? "not built" : `${toMb(bytes).toFixed(1)} MB`;
    const verdict = bytes === null ? "-" : toMb(bytes) <= image.targetMb ? "ok" : "MISS";
    lines.push(`${image.name.padEnd(16)} ${size.padEnd(10)} ≤ ${String(image.targetMb).padEnd(3)} MB  ${verdict}`);
  }
  return lines;
}

export function summaryLine(checks: Check[]): string {
  const failed = checks.filter((c) => !c.ok).length;
  return `image smoke: ${checks.length - failed} passed, ${failed} failed`;
}

// ------------------------------------------------------------------ step 1: engine and bases

async function runLabScript(script: string, args: string[]): Promise<void> {
  const result = await run("bash", [path.join(__dirname, script), ...args], { inheritOutput: true });
  if (result.code !== 0) throw new Error(`lab/${script} ${args.join(" ")} failed (exit ${result.code}); see its output above`);
}

// ------------------------------------------------------------------ step 2: build

async function buildImages(images: AppImage[], checks: Check[]): Promise<boolean> {
  let allBuilt = true;
  for (const image of images) {
    const start = Date.now();
    const logFile = path.join(WORK_DIR, `build-${image.name}.log`);
    log(`building ${imageTag(image)} (full log: ${path.relative(REPO_ROOT, logFile)})`);
    const args = ["build", "-f", dockerfileOf(image.name), "-t", imageTag(image)];
    for (const [key, value] of Object.entries(image.buildArgs)) args.push("--build-arg", `${key}=${value}`);
    // The context is a tar of exactly the files pulumi-docker hashes for this image (the
    // classic builder would read only the root .dockerignore, not Dockerfile.dockerignore).
    const { code, contextBytes } = await dockerBuild([...args, "-"], tarEntries(contextFiles(REPO_ROOT, image.name)), logFile, start);
    const ok = code === 0;
    const context = `context ${(contextBytes / 1e6).toFixed(1)} MB`;
    record(checks, { name: `build ${image.name}`, ok, detail: ok ? `built in ${since(start)}, ${context}` : `docker build exited ${code} after ${since(start)} (${context})` });
    if (!ok) {
      allBuilt = false;
      const tail = fs.readFileSync(logFile, "utf8").trim().split("\n").slice(-25);
      for (const line of tail) say(`    ${line}`);
    }
  }
  return allBuilt;
}

/**
 * Runs `tar <contextEntries> | docker build … -` (tar in the repository root), the whole
 * output into `logFile`, each "Step N/M" as a progress line. A tar failure is a build failure.
 */
function dockerBuild(args: string[], contextEntries: string[], logFile: string, start: number): Promise<{ code: number; contextBytes: number }> {
  return new Promise((resolve, reject) => {
    const out = fs.createWriteStream(logFile);
    const tar = spawn("tar", [...CONTEXT_TAR_ARGS], { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
    const child = spawn("docker", args, { stdio: ["pipe", "pipe", "pipe"] });
    let contextBytes = 0;
    tar.stdout.on("data", (chunk: Buffer) => (contextBytes += chunk.length));
    tar.stdout.pipe(child.stdin);
    child.stdin.on("error", () => undefined); // EPIPE when docker exits without reading all of it
    tar.stderr.on("data", (chunk: Buffer) => out.write(chunk));
    tar.stdin.on("error", () => undefined);
    tar.stdin.end(tarFileList(contextEntries));
    let pending = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out.write(chunk);
      const lines = (pending + chunk.toString()).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines.filter((l) => l.startsWith("Step "))) say(`    ${since(start).padStart(6)}  ${line.slice(0, 110)}`);
    });
    child.stderr.on("data", (chunk: Buffer) => out.write(chunk));
    const ended = (proc: ReturnType<typeof spawn>, what: string) =>
      new Promise<number>((done, fail) => {
        proc.on("error", (err) => fail(new Error(`cannot run ${what}: ${err.message}`)));
        proc.on("close", (code, signal) => done(code ?? (signal ? 128 : 1)));
      });
    const docker = ended(child, "docker").then((code) => {
      // Nobody reads the archive any more: stop tar rather than let it block.
      if (tar.exitCode === null && tar.signalCode === null) tar.kill("SIGTERM");
      return code;
    });
    Promise.all([ended(tar, "tar"), docker]).then(
      ([tarCode, dockerCode]) => out.end(() => resolve({ code: dockerCode !== 0 ? dockerCode : tarCode, contextBytes })),
      (err: unknown) => {
        for (const proc of [tar, child]) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
        out.end(() => reject(err));
      },
    );
  });
}

// ------------------------------------------------------------------ step 3: run

interface Stack {
  runId: string;
  network: string;
  volume: string;
  mosquitto: string;
  master: string;
  workers: Record<Language, string>;
  httpBase: string;
}

const labelFilter = (runId?: string) => `label=${RUN_LABEL}${runId ? `=${runId}` : ""}`;

/** A derived Mosquitto image whose config listens on 1883 for anyone (the network is private). */
async function buildBrokerImage(): Promise<string> {
  const context = path.join(WORK_DIR, "mosquitto");
  fs.mkdirSync(context, { recursive: true });
  fs.writeFileSync(path.join(context, "mosquitto.conf"), "listener 1883\nallow_anonymous true\nset_tcp_nodelay true\n");
  fs.writeFileSync(
    path.join(context, "Dockerfile"),
    `ARG BASE_IMAGE\nFROM \${BASE_IMAGE}\nCOPY mosquitto.conf /mosquitto/config/mosquitto.conf\n`,
  );
  const tag = "ai-swarm-smoke/mosquitto:2";
  await runOk("docker", ["build", "-q", "--build-arg", `BASE_IMAGE=${MOSQUITTO_BASE}`, "-t", tag, context]);
  return tag;
}

async function startStack(brokerImage: string): Promise<Stack> {
  const runId = `ai-swarm-smoke-${process.pid}-${randomBytes(2).toString("hex")}`;
  const label = ["--label", `${RUN_LABEL}=${runId}`];
  const stack: Stack = {
    runId,
    network: `${runId}-net`,
    volume: `${runId}-data`,
    mosquitto: `${runId}-mosquitto`,
    master: `${runId}-master`,
    workers: { python: `${runId}-worker-python`, go: `${runId}-worker-go`, java: `${runId}-worker-java` },
    httpBase: "",
  };
  activeRunId = runId;
  log(`run ${runId}: network, broker, master, three workers`);
  // Nothing new after an interrupt: the clean-up may already have run.
  const create = (args: string[]) => (interrupted ? Promise.reject(new Error("interrupted")) : runOk("docker", args));
  await create(["network", "create", "--driver", "bridge", ...label, stack.network]);
  await create(["volume", "create", ...label, stack.volume]);
  const common = ["run", "-d", ...label, "--network", stack.network];
  await create([...common, "--name", stack.mosquitto, brokerImage]);
  // The token reaches docker through its environment (`-e NAME` without a value), never argv.
  process.env.GRPC_TOKEN = randomBytes(24).toString("hex");
  await create([
    ...common, "--name", stack.master, "--network-alias", "master",
    "-e", "GRPC_TOKEN", "-e", `MQTT_HOST=${stack.mosquitto}`,
    "-v", `${stack.volume}:/data`, "-p", "127.0.0.1::8888", "ai-swarm/master:smoke",
  ]);
  for (const language of LANGUAGES) {
    await create([
      ...common, "--name", stack.workers[language],
      "-e", "GRPC_TOKEN", "-e", `MQTT_HOST=${stack.mosquitto}`, "-e", "MASTER_GRPC_ADDR=master:50051",
      "-e", "SIMULATED_WORK_MS=0", "-e", `NODE_HOSTNAME=smoke-${language}`,
      `ai-swarm/worker-${language}:smoke`,
    ]);
  }
  // Docker picked a free loopback port for the master's HTTP ("127.0.0.1::8888").
  const published = await runOk("docker", ["port", stack.master, "8888/tcp"]);
  stack.httpBase = `http://${parsePublishedAddress(published)}`;
  log(`master HTTP published on ${stack.httpBase}`);
  return stack;
}

/** `docker port` prints e.g. "127.0.0.1:49153"; only a loopback address is accepted. */
export function parsePublishedAddress(output: string): string {
  const line = output.split("\n").map((l) => l.trim()).find((l) => l.startsWith("127.0.0.1:"));
  if (!line || !/^127\.0\.0\.1:\d+$/.test(line)) throw new Error(`no 127.0.0.1 port published for the master (docker port said '${output.trim()}')`);
  return line;
}

/** Languages with an idle worker registered from its own smoke node (NODE_HOSTNAME=smoke-<lang>). */
export function idleLanguages(workers: WorkerView[]): Language[] {
  return LANGUAGES.filter((language) =>
    workers.some((w) => w.language === language && w.node === `smoke-${language}` && w.status === "idle"),
  );
}

async function waitForIdleWorkers(stack: Stack, checks: Check[]): Promise<boolean> {
  const start = Date.now();
  let seen: Language[] = [];
  let lastError = "";
  while (Date.now() - start < WORKERS_TIMEOUT_MS) {
    try {
      const idle = idleLanguages(await listWorkers(stack.httpBase));
      if (idle.join() !== seen.join()) log(`idle workers after ${since(start)}: ${idle.join(", ") || "none"}`);
      seen = idle;
      if (idle.length === LANGUAGES.length) break;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await requireRunning(stack);
    await sleep(1000);
  }
  for (const language of LANGUAGES) {
    const ok = seen.includes(language);
    record(checks, {
      name: `${language} worker registered idle`,
      ok,
      detail: ok ? `node smoke-${language}, within ${since(start)}` : `not idle after ${since(start)}${lastError ? ` (last error: ${lastError})` : ""}`,
    });
  }
  return seen.length === LANGUAGES.length;
}

/** Fails fast, with a clear message, when a container of the run has stopped. */
async function requireRunning(stack: Stack): Promise<void> {
  for (const name of allContainers(stack)) {
    const state = await runOk("docker", ["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name]);
    if (!state.startsWith("running")) throw new Error(`container ${name} is not running (${state}); its logs are below`);
  }
}

const allContainers = (stack: Stack) => [stack.mosquitto, stack.master, ...LANGUAGES.map((l) => stack.workers[l])];

/** What is wrong with a finished query as an answer from `language`, or null when it is right. */
export function answerProblem(query: QueryView): string | null {
  if (query.status !== "done") return `status ${query.status}${query.error ? `: ${query.error}` : ""}`;
  if (!query.worker) return "no worker named in the answer";
  if (query.worker.node !== `smoke-${query.worker.language}`) return `node '${query.worker.node}', expected smoke-${query.worker.language}`;
  if (typeof query.answer !== "string" || query.answer.length === 0) return "empty answer";
  return null;
}

/**
 * The master picks the worker, so queries are sent three at a time until every language has
 * answered one (bounded by MAX_QUERY_ROUNDS); each answer names its worker's language.
 */
async function answerFromEachLanguage(stack: Stack, checks: Check[]): Promise<void> {
  const answered = new Map<Language, QueryView>();
  const problems: string[] = [];
  for (let round = 1; round <= MAX_QUERY_ROUNDS && answered.size < LANGUAGES.length; round++) {
    const ids = await Promise.all(LANGUAGES.map((_, i) => submit(stack.httpBase, `image smoke round ${round} query ${i + 1}: what is Docker Swarm?`, undefined, { sessionId: stack.runId })));
    for (const query of await Promise.all(ids.map((id) => waitForAnswer(stack.httpBase, id, QUERY_TIMEOUT_MS, { sessionId: stack.runId })))) {
      const problem = answerProblem(query);
      if (problem) problems.push(`${query.id}: ${problem}`);
      const language = query.worker?.language as Language | undefined;
      if (!problem && language && LANGUAGES.includes(language) && !answered.has(language)) answered.set(language, query);
    }
    log(`round ${round}: answered by ${[...answered.keys()].join(", ") || "none"} so far`);
  }
  for (const language of LANGUAGES) {
    const query = answered.get(language);
    record(checks, {
      name: `query answered by ${language}`,
      ok: query !== undefined,
      detail: query
        ? `${query.id} by ${query.worker!.id}: "${query.answer!.slice(0, 60).replace(/\s+/g, " ")}…"`
        : `no answer from ${language} in ${MAX_QUERY_ROUNDS} rounds${problems.length ? `; problems: ${problems.join("; ")}` : ""}`,
    });
  }
  if (problems.length > 0) record(checks, { name: "every query answered", ok: false, detail: problems.join("; ") });
}

/** Waits until each app container's own HEALTHCHECK says healthy (the broker image has none). */
async function waitForHealthy(stack: Stack, checks: Check[]): Promise<void> {
  const start = Date.now();
  const pending = new Map([[stack.master, "master"], ...LANGUAGES.map((l) => [stack.workers[l], `worker-${l}`] as [string, string])]);
  const states = new Map<string, string>();
  while (pending.size > 0 && Date.now() - start < HEALTH_TIMEOUT_MS) {
    for (const [container, name] of [...pending]) {
      const state = await runOk("docker", ["inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}", container]);
      states.set(name, state);
      if (state === "healthy" || state === "no healthcheck") {
        pending.delete(container);
        record(checks, { name: `${name} healthcheck`, ok: state === "healthy", detail: `${state} after ${since(start)}` });
      }
    }
    if (pending.size > 0) await sleep(2000);
  }
  for (const name of pending.values()) {
    record(checks, { name: `${name} healthcheck`, ok: false, detail: `still '${states.get(name)}' after ${since(start)}` });
  }
}

async function printContainerLogs(stack: Stack): Promise<void> {
  for (const name of allContainers(stack)) {
    const result = await run("docker", ["logs", "--tail", "30", name]);
    log(`last lines of ${name}:`);
    for (const line of (result.stdout + result.stderr).trim().split("\n")) say(`    ${line}`);
  }
}

// ------------------------------------------------------------------ step 5: clean up

let activeRunId: string | null = null;

/** Removes every container, network and volume labelled with this run id (or, with none, any run's). */
async function removeRun(runId?: string): Promise<void> {
  const filter = labelFilter(runId);
  const containers = (await runOk("docker", ["ps", "-aq", "--filter", filter])).split("\n").filter(Boolean);
  if (containers.length > 0) await runOk("docker", ["rm", "-f", "-v", ...containers]);
  const networks = (await runOk("docker", ["network", "ls", "-q", "--filter", filter])).split("\n").filter(Boolean);
  if (networks.length > 0) await runOk("docker", ["network", "rm", ...networks]);
  const volumes = (await runOk("docker", ["volume", "ls", "-q", "--filter", filter])).split("\n").filter(Boolean);
  if (volumes.length > 0) await runOk("docker", ["volume", "rm", ...volumes]);
}

/** Leftovers of earlier runs whose process is gone (killed with SIGKILL, say). */
async function removeStaleRuns(): Promise<void> {
  const labels = await runOk("docker", ["ps", "-a", "--filter", labelFilter(), "--format", `{{.Label "${RUN_LABEL}"}}`]);
  const networks = await runOk("docker", ["network", "ls", "--filter", labelFilter(), "--format", `{{.Label "${RUN_LABEL}"}}`]);
  for (const runId of new Set([...labels.split("\n"), ...networks.split("\n")].filter(Boolean))) {
    const pid = Number(/^ai-swarm-smoke-(\d+)-/.exec(runId)?.[1]);
    if (Number.isInteger(pid) && isAlive(pid)) continue;
    log(`removing leftovers of an earlier run: ${runId}`);
    await removeRun(runId);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function cleanUp(): Promise<void> {
  if (!activeRunId) return;
  const runId = activeRunId;
  activeRunId = null;
  await removeRun(runId);
  console.log(`[image-smoke] removed the containers, network and volume of ${runId}`);
}

// ------------------------------------------------------------------ main

async function sizes(images: AppImage[]): Promise<{ image: AppImage; bytes: number | null }[]> {
  const rows = [];
  for (const image of images) {
    const result = await run("docker", ["image", "inspect", "--format", "{{.Size}}", imageTag(image)]);
    rows.push({ image, bytes: result.code === 0 ? Number(result.stdout.trim()) : null });
  }
  return rows;
}

async function smoke(checks: Check[]): Promise<void> {
  const start = Date.now();
  fs.mkdirSync(WORK_DIR, { recursive: true });
  // The classic builder takes FROM images from the local engine and never asks a registry.
  process.env.DOCKER_BUILDKIT = "0";
  await runLabScript("engine.sh", ["start"]);
  await runLabScript("base-images.sh", []);
  await removeStaleRuns();
  const images = APP_IMAGES;
  const buildStart = Date.now();
  const built = await buildImages(images, checks);
  log(`builds took ${since(buildStart)}`);
  if (built) {
    const stack = await startStack(await buildBrokerImage());
    try {
      if (await waitForIdleWorkers(stack, checks)) await answerFromEachLanguage(stack, checks);
      await waitForHealthy(stack, checks);
    } catch (err) {
      record(checks, { name: "run", ok: false, detail: err instanceof Error ? err.message : String(err) });
    }
    if (checks.some((c) => !c.ok)) await printContainerLogs(stack);
    await cleanUp();
  } else {
    record(checks, { name: "run the containers", ok: false, detail: "skipped: an image did not build" });
  }
  const rows = await sizes(images);
  log("image sizes (MB = 10^6 bytes, as docker image ls shows them):");
  for (const line of sizeTable(rows)) say(`    ${line}`);
  for (const { image, bytes } of rows) {
    if (bytes === null) continue;
    const ok = toMb(bytes) <= image.targetMb;
    record(checks, { name: `${image.name} size`, ok, detail: `${toMb(bytes).toFixed(1)} MB, target ≤ ${image.targetMb} MB${ok ? "" : " (MISS)"}` });
  }
  log(`image smoke took ${since(start)}`);
}

function onSignal(checks: Check[], signal: NodeJS.Signals): void {
  interrupted = true;
  console.log(`[image-smoke] ${signal}: removing what this run made`);
  cleanUp()
    .catch((err: unknown) => console.log(`[image-smoke] clean-up failed: ${err instanceof Error ? err.message : String(err)}`))
    .finally(() => {
      checks.push({ name: "image smoke", ok: false, detail: `interrupted by ${signal}` });
      console.log(summaryLine(checks));
      process.exit(130);
    });
}

if (require.main === module) {
  const checks: Check[] = [];
  let finished = false;
  // A pending fetch does not always keep Node's event loop alive: without this timer the
  // process could end mid-run with exit code 0 and no summary, the worst way for a test to end.
  const keepAlive = setInterval(() => undefined, 60_000);
  process.once("exit", (code) => {
    if (finished || interrupted) return;
    console.log(`[image-smoke] error: the process ended before the smoke test finished (exit ${code})`);
    console.log(summaryLine([...checks, { name: "image smoke", ok: false, detail: "ended early" }]));
    process.exitCode = 1;
  });
  process.once("SIGINT", (signal) => onSignal(checks, signal));
  process.once("SIGTERM", (signal) => onSignal(checks, signal));
  smoke(checks)
    .catch(async (err: unknown) => {
      record(checks, { name: "image smoke", ok: false, detail: err instanceof Error ? err.message : String(err) });
      await cleanUp().catch((e: unknown) => log(`clean-up failed: ${e instanceof Error ? e.message : String(e)}`));
    })
    .finally(() => {
      finished = true;
      clearInterval(keepAlive);
      if (interrupted) return; // the signal handler reports and exits
      console.log(summaryLine(checks));
      if (checks.some((c) => !c.ok)) process.exitCode = 1;
    });
}
