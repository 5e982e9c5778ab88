/**
 * npm run bench:cluster: the master under a large simulated fleet.
 *
 * For each level of CLUSTER_LEVELS (workers:queries-per-second, default
 * 50:100,200:100,1000:350,2000:700), and for each master build of
 * CLUSTER_MASTER (after = the working tree's images/master/dist, default;
 * before = HEAD's build and then the working tree's, level by level;
 * before-only), on loopback:
 *
 * 1. a fresh Mosquitto and master (no auth, no TLS, LOG_LEVEL=warn, no rate
 *    limit, no per-session cap that the load could hit);
 * 2. the simulated fleet (bench/fleet.ts) in a process of its own
 *    (bench/fleet-process.ts), spread over ceil(workers/20) nodes, waited for
 *    until the master lists every worker idle;
 * 3. with CLUSTER_PAGE=1 (default) the real chat page, open in Debian's
 *    headless chromium for the whole level;
 * 4. open-loop load (bench/loadgen.ts) for CLUSTER_SECONDS (45): each query a
 *    POST /api/queries with Prefer: wait=30 on a new TCP connection;
 * 5. measured over the steady part (after CLUSTER_WARMUP_S, 15 s): the master's CPU
 *    (/proc), RSS, event-loop lag (its /metrics, scraped every second),
 *    chromium's CPU and the bytes the master pushes to the page; per query:
 *    connection failures, slow connects, HTTP status, overhead (latency −
 *    simulated work).
 *
 * Prints one Markdown row per level (and build), a second table on the
 * instrument itself (fleet, broker and load-generator health), and a legend
 * with the targets. Exits 2 on a bad CLUSTER_* setting, 1 when a level could
 * not be run; missing a target is a result, not a failure.
 *
 * Env: CLUSTER_LEVELS, CLUSTER_SECONDS (45, more than CLUSTER_WARMUP_S), CLUSTER_WARMUP_S (15), CLUSTER_PAGE (1|0),
 * CLUSTER_MASTER (after|before|before-only), CLUSTER_WORK_MS (2000),
 * CLUSTER_HEARTBEAT_MS (2000), CLUSTER_BEFORE_REF (HEAD: the revision built as "before"),
 * CLUSTER_CPU_PROF (a folder: each master writes a V8 CPU profile there).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { startMosquitto, type Broker } from "../launch/mosquitto";
import { masterMissing, REPO_ROOT, startMaster, LAUNCH_GRPC_TOKEN, type Master } from "../launch/system";
import { stopAll } from "../launch/processes";
import { CHROMIUM, launchChromium } from "../launch/browser";
import { defaultsAsEnv } from "../components/workerSettings";
import { ensureBeforeMaster, staleDistWarning } from "./before";
import {
  capacity,
  checkTargets,
  clusterSettings,
  DRAIN_S,
  eventLoopP99Ms,
  formatTable,
  legend,
  median,
  summarizeQueries,
  type ClusterSettings,
  type Level,
  type LevelRow,
  type MasterBuild,
} from "./cluster-stats";
import { processCpuMs } from "./cpu";
import { fleetIdentities, FLEET_LANGUAGES, type FleetOptions } from "./fleet";
import type { FleetCommand, FleetHealth, FleetReport } from "./fleet-process";
import { oneShot, startOpenLoop } from "./loadgen";
import { commandLine, descendantsIn, listenOverflows, machineBusyMs, processParents, rssBytes, treeCpu, treeCpuDelta, type TreeCpu } from "./proc";

const settings = readSettings();

function readSettings(): ClusterSettings {
  try {
    return clusterSettings(process.env);
  } catch (error) {
    console.error(`bench:cluster: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  }
}

const FLEET_SCRIPT = path.join(__dirname, "fleet-process.ts");
/** Follow-ups of unfinished queries stop this long after the last query of a level was sent. */
const DRAIN_MS = DRAIN_S * 1000;
/** Above this much CPU used by processes outside the benchmark, a row gets a warning. */
const OTHER_CPU_WARN_PCT = 20;

// ---- the fleet's process ----------------------------------------------------------

/** bench/fleet-process.ts as a child with an IPC channel. */
class FleetChild {
  private readonly waiters = new Map<number, (health: FleetHealth) => void>();
  private nextId = 1;
  private stopped?: (health: FleetHealth) => void;
  private stderr = "";
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000);
    });
    child.stdout?.resume();
    child.on("message", (report: FleetReport) => {
      if (report.type === "report") {
        this.waiters.get(report.id)?.(report.health);
        this.waiters.delete(report.id);
      } else if (report.type === "stopped") {
        this.stopped?.(report.health);
      }
    });
    children.add(this);
    void this.exited.then(() => children.delete(this));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts the fleet and resolves once every worker's register was acknowledged by the broker. */
  static start(options: FleetOptions, timeoutMs: number): Promise<{ fleet: FleetChild; ms: number }> {
    const child = spawn(process.execPath, ["--import", "tsx", FLEET_SCRIPT, JSON.stringify(options)], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    const fleet = new FleetChild(child);
    return new Promise((resolve, reject) => {
      const fail = (message: string): void => {
        clearTimeout(timer);
        fleet.kill();
        reject(new Error(message));
      };
      const timer = setTimeout(() => fail(`the fleet did not start within ${timeoutMs} ms: ${fleet.stderr.trim().slice(-500)}`), timeoutMs);
      child.on("message", (report: FleetReport) => {
        if (report.type === "started") {
          clearTimeout(timer);
          resolve({ fleet, ms: report.ms });
        } else if (report.type === "failed") {
          fail(`the fleet failed: ${report.message}`);
        }
      });
      child.once("exit", (code) => fail(`the fleet exited (code ${code}) while starting: ${fleet.stderr.trim().slice(-500)}`));
    });
  }

  private command(command: FleetCommand): void {
    if (this.child.connected) this.child.send(command);
  }

  /** Resets its event-loop histogram (start of the steady part). */
  mark(): void {
    this.command({ type: "mark" });
  }

  report(timeoutMs = 5_000): Promise<FleetHealth | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(id, (health) => {
        clearTimeout(timer);
        resolve(health);
      });
      this.command({ type: "report", id });
    });
  }

  /** Stops the fleet (status offline, clean disconnects) and waits for the process to end; kills it if it takes too long. */
  async stop(graceMs: number): Promise<FleetHealth | undefined> {
    let health: FleetHealth | undefined;
    const stopped = new Promise<void>((resolve) => {
      this.stopped = (h) => {
        health = h;
        resolve();
      };
    });
    this.command({ type: "stop", graceMs });
    const bound = new Promise<void>((resolve) => setTimeout(resolve, graceMs + 10_000).unref());
    await Promise.race([Promise.all([stopped, this.exited]), bound, this.exited.then(() => undefined)]);
    this.kill();
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
    return health;
  }

  /** SIGKILL by PID if it is still running. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

const children = new Set<FleetChild>();
const browsers = new Set<Browser>();

// ---- measurements -------------------------------------------------------------------

interface PageWatch {
  browser: Browser;
  page: Page;
  rootPid?: number;
  /** Socket.IO long-polling response bytes while counting (normally none: the page upgrades to a WebSocket at once). */
  pollingBytes: number;
  counting: boolean;
  /** The slowest answer to a probe so far; undefined before the first one. */
  probeMaxMs?: number;
  probeFailures: number;
  lastProbe?: string;
}

interface PageCounter {
  frames: number;
  chars: number;
}

/**
 * Counts what the page's WebSockets receive, inside the page: wraps the
 * WebSocket constructor before any page script runs (Socket.IO's client picks
 * it up when it loads), and the benchmark reads the counter at the start and
 * the end of the steady part. (Playwright's framereceived events would hand
 * every payload to this process as well; it already receives them over the
 * DevTools protocol, since it keeps the Network domain on: a cost a real
 * user's browser does not have, included in chromium's CPU.) Text frames
 * count their length (UTF-16 code units: bytes for the ASCII JSON the master sends).
 */
const COUNT_WEBSOCKET_FRAMES = `(() => {
  const counter = { frames: 0, chars: 0 };
  window.__benchCounter = counter;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      this.addEventListener("message", (event) => {
        const data = event.data;
        counter.frames += 1;
        counter.chars += typeof data === "string" ? data.length : data instanceof ArrayBuffer ? data.byteLength : data instanceof Blob ? data.size : 0;
      });
    }
  };
})();`;
// (A string, not a function: tsx would add name helpers to a function that do not exist in the page.)

async function readCounter(watch: PageWatch): Promise<PageCounter | undefined> {
  try {
    return await watch.page.evaluate(() => ({ ...(window as unknown as { __benchCounter: PageCounter }).__benchCounter }));
  } catch {
    return undefined;
  }
}

/** The chat page in headless chromium, with a count of what the master sends it. */
async function openPage(url: string): Promise<PageWatch> {
  const before = new Set(childPids());
  const browser = await launchChromium();
  browsers.add(browser);
  const rootPid = childPids().find((pid) => !before.has(pid) && /chrom/i.test(commandLine(pid)));
  const page = await browser.newPage();
  const watch: PageWatch = { browser, page, rootPid, pollingBytes: 0, counting: false, probeFailures: 0 };
  await page.addInitScript({ content: COUNT_WEBSOCKET_FRAMES });
  // Socket.IO starts with HTTP long-polling before it upgrades: count those responses too.
  page.on("requestfinished", (request) => {
    if (!watch.counting || !request.url().includes("/socket.io/")) return;
    void request.sizes().then((sizes) => {
      if (watch.counting) watch.pollingBytes += sizes.responseBodySize;
    }, () => {});
  });
  await page.goto(url, { waitUntil: "load", timeout: 30_000 });
  // Connected once the first frame (the worker list) arrived; a page that never connects still runs the level.
  await page.waitForFunction(() => (window as unknown as { __benchCounter: PageCounter }).__benchCounter.frames > 0, undefined, { timeout: 15_000 }).catch(() => {});
  return watch;
}

/** A cheap read of the page (no layout): proves the renderer is alive and says how long it took to answer. */
async function probePage(watch: PageWatch): Promise<void> {
  const started = performance.now();
  try {
    watch.lastProbe = await watch.page.evaluate(() => `${document.getElementById("connection")?.textContent ?? "?"}, ${document.getElementsByTagName("*").length} elements`);
    watch.probeMaxMs = Math.max(watch.probeMaxMs ?? 0, performance.now() - started);
  } catch {
    watch.probeFailures += 1;
  }
}

function childPids(): number[] {
  const parents = processParents();
  return [...parents].filter(([, ppid]) => ppid === process.pid).map(([pid]) => pid);
}

function chromiumCpu(watch: PageWatch | undefined): TreeCpu {
  if (watch?.rootPid === undefined) return new Map();
  return treeCpu([watch.rootPid, ...descendantsIn(processParents(), watch.rootPid)]);
}

async function scrapeLagMs(master: Master): Promise<number | undefined> {
  const reply = await oneShot("127.0.0.1", master.httpPort, { method: "GET", path: "/metrics" }, 5_000);
  return reply.status === 200 && typeof reply.body === "string" ? eventLoopP99Ms(reply.body) : undefined;
}

/** Waits until /api/workers lists every id as idle (an array of workers, or an object with one under `workers`). */
async function waitUntilListed(master: Master, ids: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  for (;;) {
    const reply = await oneShot("127.0.0.1", master.httpPort, { method: "GET", path: "/api/workers" }, 15_000);
    const body = reply.body as unknown;
    const list = Array.isArray(body) ? body : (body as { workers?: unknown } | undefined)?.workers;
    if (Array.isArray(list)) {
      const idle = new Set((list as { id?: string; status?: string }[]).filter((w) => w.status === "idle").map((w) => w.id));
      seen = ids.filter((id) => idle.has(id)).length;
      if (seen === ids.length) return;
    }
    if (Date.now() > deadline) throw new Error(`the master lists ${seen} of ${ids.length} workers idle after ${timeoutMs} ms (GET /api/workers: ${reply.status ?? reply.error})`);
    await sleep(500);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

interface CpuReading {
  master?: number;
  broker?: number;
  fleet?: number;
  bench: number;
  chromium: TreeCpu;
  /** Busy time of the whole machine. */
  machine?: number;
  at: number;
}

function readCpu(pids: { master?: number; broker?: number; fleet?: number }, watch: PageWatch | undefined): CpuReading {
  return { master: processCpuMs(pids.master), broker: processCpuMs(pids.broker), fleet: processCpuMs(pids.fleet), bench: selfCpuMs(), chromium: chromiumCpu(watch), machine: machineBusyMs(), at: performance.now() };
}

/** CPU ms the machine spent between two readings on anything but the processes of the benchmark (other jobs skew every number). */
function otherCpuMs(a: CpuReading, b: CpuReading): number | undefined {
  const spent = (x: number | undefined, y: number | undefined): number | undefined => (x === undefined || y === undefined ? undefined : y - x);
  const parts = [spent(a.machine, b.machine), spent(a.master, b.master), spent(a.broker, b.broker), spent(a.fleet, b.fleet)];
  if (parts.some((part) => part === undefined)) return undefined;
  const [machine, master, broker, fleet] = parts as number[];
  return (machine as number) - (master as number) - (broker as number) - (fleet as number) - (b.bench - a.bench) - treeCpuDelta(a.chromium, b.chromium);
}

function cpuPct(beforeMs: number | undefined, afterMs: number | undefined, wallMs: number): number | undefined {
  return beforeMs === undefined || afterMs === undefined ? undefined : ((afterMs - beforeMs) / wallMs) * 100;
}

function selfCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

// ---- one level ------------------------------------------------------------------------

interface Instrument {
  master: MasterBuild;
  level: Level;
  achievedRate: number;
  fleetStartS: number;
  fleetCpuPct?: number;
  fleetRssMb?: number;
  fleetLoopP99Ms?: number;
  brokerCpuPct?: number;
  benchCpuPct?: number;
  otherCpuPct?: number;
  benchLoopP99Ms: number;
  sendLagP99Ms?: number;
  connectMaxMs?: number;
  /** TcpExt ListenOverflows during the load (machine-wide). */
  listenOverflows?: number;
  queueWaitP99Ms?: number;
  late: number;
  fleet?: FleetHealth;
  probeMaxMs?: number;
  framesPerS?: number;
  lastProbe?: string;
  notes: string[];
}

async function runLevel(level: Level, build: MasterBuild, masterMain: string | undefined): Promise<{ row: LevelRow; instrument: Instrument }> {
  const notes: string[] = [];
  let broker: Broker | undefined;
  let master: Master | undefined;
  let fleet: FleetChild | undefined;
  let watch: PageWatch | undefined;
  try {
    broker = await startMosquitto();
    master = await startMaster({
      mqttPort: broker.port,
      masterMain,
      // A profile per master, written when it exits (SIGTERM at the end of the level).
      ...(settings.cpuProfDir !== undefined && {
        nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${settings.cpuProfDir}`, `--cpu-prof-name=master-${build}-${level.workers}-${level.rate}.cpuprofile`],
      }),
      env: {
        LOG_LEVEL: "warn",
        RATE_LIMIT_PER_MINUTE: "0",
        MAX_QUEUED_PER_SESSION: "1000000",
        // The contract's defaults (startMaster's are shortened for tests).
        ...defaultsAsEnv("HEARTBEAT_TIMEOUT_MS", "LEASE_MS"),
      },
    });
    const nodes = Math.ceil(level.workers / 20);
    const idTag = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0");
    const fleetOptions: FleetOptions = {
      count: level.workers,
      nodes,
      brokerUrl: `mqtt://127.0.0.1:${broker.port}`,
      grpcAddress: master.grpcAddr,
      grpcToken: LAUNCH_GRPC_TOKEN,
      heartbeatMs: settings.heartbeatMs,
      workMs: settings.workMs,
      idTag,
    };
    const started = performance.now();
    const startTimeout = 60_000 + 30 * level.workers;
    const fleetStart = await FleetChild.start(fleetOptions, startTimeout);
    fleet = fleetStart.fleet;
    await waitUntilListed(master, fleetIdentities(level.workers, nodes, FLEET_LANGUAGES, idTag).map((w) => w.id), startTimeout);
    const fleetStartS = (performance.now() - started) / 1000;
    if (settings.page) watch = await openPage(master.url);

    // The load, and the measurements over its steady part.
    const benchLoop = monitorEventLoopDelay({ resolution: 10 });
    benchLoop.enable();
    const overflows0 = listenOverflows();
    const load = startOpenLoop({ host: "127.0.0.1", port: master.httpPort, rate: level.rate, seconds: settings.seconds, drainMs: DRAIN_MS });
    const t0 = load.startedAt;
    await sleep(t0 + settings.warmupS * 1000 - performance.now());
    const pids = { master: master.process.pid, broker: broker.process.pid, fleet: fleet.pid };
    const cpu0 = readCpu(pids, watch);
    fleet.mark();
    benchLoop.reset();
    const page0 = watch ? await readCounter(watch) : undefined;
    if (watch) watch.counting = true;
    const lags: number[] = [];
    // prom-client resets its event-loop histogram at every scrape: this one
    // drops what built up since the master started (the fleet's registration).
    await scrapeLagMs(master);
    let rssMax = rssBytes(pids.master) ?? 0;
    let scrapeFailures = 0;
    let sampling = false;
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, rssBytes(pids.master) ?? 0);
      if (sampling) return;
      sampling = true;
      void scrapeLagMs(master as Master).then((lag) => {
        if (lag === undefined) scrapeFailures += 1;
        else lags.push(lag);
      }).finally(() => {
        sampling = false;
      });
    }, 1000);
    let probing = false;
    const prober = setInterval(() => {
      if (!watch || probing) return;
      probing = true;
      void probePage(watch).finally(() => {
        probing = false;
      });
    }, 2000);
    await sleep(t0 + settings.seconds * 1000 - performance.now());
    clearInterval(sampler);
    clearInterval(prober);
    if (watch) watch.counting = false;
    const cpu1 = readCpu(pids, watch);
    const wallMs = cpu1.at - cpu0.at;
    const page1 = watch ? await readCounter(watch) : undefined;
    const pageFrames = page0 && page1 ? page1.frames - page0.frames : undefined;
    const pageBytes = page0 && page1 ? page1.chars - page0.chars + (watch?.pollingBytes ?? 0) : undefined;
    const otherMs = otherCpuMs(cpu0, cpu1);
    const benchLoopP99Ms = benchLoop.percentile(99) / 1e6;
    benchLoop.disable();
    const fleetRss = rssBytes(pids.fleet);
    const steadyHealth = await fleet.report();
    if (!master.process.isRunning) notes.push(`the master exited during the level:\n${master.process.tail(10)}`);
    if (scrapeFailures > 0) notes.push(`${scrapeFailures} /metrics scrapes without aiswarm_master_nodejs_eventloop_lag_p99_seconds`);
    if (watch && watch.rootPid === undefined) notes.push("chromium's process was not found: its CPU is not measured");
    if (watch && watch.probeFailures > 0) notes.push(`${watch.probeFailures} page probes failed`);
    if (watch && pageBytes === undefined) notes.push("the page's frame counter could not be read: bytes to the page not measured");
    if (watch && pageFrames === 0) notes.push("the page received no WebSocket frame during the steady part");

    const records = await load.done;
    const overflows1 = listenOverflows();
    // The fleet's counters once every query settled (stopping adds its own rejections).
    const drainedHealth = await fleet.report();
    const queries = summarizeQueries(records, settings.workMs, settings.warmupS * 1000);
    if (queries.startup !== undefined && settings.warmupS > 0) {
      notes.push(`start-up transient (queries sent in the first ${settings.warmupS} s, not in the row): overhead p50 ${queries.startup.p50.toFixed(0)} / p99 ${queries.startup.p99.toFixed(0)} / max ${queries.startup.max.toFixed(0)} ms`);
    }
    const finalHealth = await fleet.stop(2_000);
    fleet = undefined;
    const otherCpuPct = otherMs === undefined ? undefined : Math.max(0, (otherMs / wallMs) * 100);
    if (otherCpuPct !== undefined && otherCpuPct > OTHER_CPU_WARN_PCT) {
      notes.push(`other work on the machine used ${otherCpuPct.toFixed(0)}% CPU (100 = one core) during the steady part: every number of this row is skewed`);
    }
    const fleetCapacity = capacity(level, settings.workMs);
    if (level.rate >= 0.9 * fleetCapacity) {
      notes.push(`offered ${level.rate} q/s is ${((100 * level.rate) / fleetCapacity).toFixed(0)}% of the fleet's capacity (${level.workers} workers × 1000/${settings.workMs} ms = ${fleetCapacity.toFixed(0)} q/s): queries wait for a free worker, so overhead is mostly queueing, not the master`);
    }
    const row: LevelRow = {
      master: build,
      level,
      page: settings.page,
      queries,
      masterCpuPct: cpuPct(cpu0.master, cpu1.master, wallMs),
      masterRssMaxMb: rssMax > 0 ? rssMax / 1024 / 1024 : undefined,
      lagP99MaxMs: lags.length > 0 ? Math.max(...lags) : undefined,
      lagP99MedianMs: median(lags),
      chromiumCpuPct: watch?.rootPid === undefined ? undefined : (treeCpuDelta(cpu0.chromium, cpu1.chromium) / wallMs) * 100,
      pageKBps: pageBytes === undefined ? undefined : pageBytes / 1024 / (wallMs / 1000),
      notes,
    };
    const instrument: Instrument = {
      master: build,
      level,
      achievedRate: records.length / settings.seconds,
      fleetStartS,
      fleetCpuPct: cpuPct(cpu0.fleet, cpu1.fleet, wallMs),
      fleetRssMb: fleetRss === undefined ? undefined : fleetRss / 1024 / 1024,
      fleetLoopP99Ms: steadyHealth?.loopP99Ms,
      brokerCpuPct: cpuPct(cpu0.broker, cpu1.broker, wallMs),
      benchCpuPct: cpuPct(cpu0.bench, cpu1.bench, wallMs),
      otherCpuPct,
      benchLoopP99Ms,
      sendLagP99Ms: queries.sendLagP99Ms,
      connectMaxMs: queries.connectMaxMs,
      listenOverflows: overflows0 === undefined || overflows1 === undefined ? undefined : overflows1 - overflows0,
      queueWaitP99Ms: queries.queueWait?.p99,
      late: queries.late,
      fleet: drainedHealth ?? finalHealth ?? steadyHealth,
      probeMaxMs: watch?.probeMaxMs,
      framesPerS: pageFrames === undefined ? undefined : pageFrames / (wallMs / 1000),
      lastProbe: watch?.lastProbe,
      notes,
    };
    return { row, instrument };
  } finally {
    if (watch) {
      await watch.browser.close().catch(() => {});
      browsers.delete(watch.browser);
    }
    if (fleet) await fleet.stop(0);
    await master?.process.stop();
    await broker?.stop();
  }
}

// ---- output ----------------------------------------------------------------------------

const fmt = (value: number | undefined, digits = 0): string => (value === undefined || !Number.isFinite(value) ? "n/a" : value.toFixed(digits));

function instrumentTable(rows: readonly Instrument[]): string {
  const header = [
    "| master | workers | q/s | achieved q/s | fleet ready s | answered late | queue wait p99 ms | connect max ms | listen overflows | send lag p99 ms | load-gen loop p99 ms | load-gen CPU % | fleet CPU % | fleet RSS MB | fleet loop p99 ms | broker CPU % | other CPU % | fleet: tasks / rejected / dup tasks / dup results / result errors / retries / reconnects / errors | page probe max ms | page frames/s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
  ];
  const lines = rows.map((r) => {
    const c = r.fleet?.counters;
    const counters = c ? `${c.tasksReceived} / ${c.tasksRejected} / ${c.duplicateTasks} / ${c.resultsDuplicate} / ${c.resultsRejected} / ${c.resultRetries} / ${c.reconnects} / ${c.errors}` : "n/a";
    return `| ${r.master} | ${r.level.workers} | ${r.level.rate} | ${fmt(r.achievedRate, 1)} | ${fmt(r.fleetStartS, 1)} | ${r.late} | ${fmt(r.queueWaitP99Ms)} | ${fmt(r.connectMaxMs)} | ${fmt(r.listenOverflows)} | ${fmt(r.sendLagP99Ms, 1)} | ${fmt(r.benchLoopP99Ms, 1)} | ${fmt(r.benchCpuPct)} | ${fmt(r.fleetCpuPct)} | ${fmt(r.fleetRssMb)} | ${fmt(r.fleetLoopP99Ms, 1)} | ${fmt(r.brokerCpuPct)} | ${fmt(r.otherCpuPct)} | ${counters} | ${fmt(r.probeMaxMs)} | ${fmt(r.framesPerS, 1)} |`;
  });
  return [...header, ...lines].join("\n");
}

function notesOf(row: LevelRow, instrument: Instrument): string[] {
  const out: string[] = [];
  const q = row.queries;
  const label = `${row.master} ${row.level.workers}:${row.level.rate}`;
  if (Object.keys(q.connErrors).length > 0) out.push(`${label}: connection failures ${JSON.stringify(q.connErrors)}`);
  if (Object.keys(q.refusedByStatus).length > 0) out.push(`${label}: HTTP refusals ${JSON.stringify(q.refusedByStatus)}`);
  for (const note of row.notes) out.push(`${label}: ${note}`);
  for (const error of instrument.fleet?.errors ?? []) out.push(`${label}: fleet error: ${error}`);
  if (instrument.lastProbe !== undefined) out.push(`${label}: page at the last probe: ${instrument.lastProbe}`);
  return out;
}

// ---- main ------------------------------------------------------------------------------

async function main(): Promise<number> {
  const notBuilt = settings.masters.includes("after") ? masterMissing() : undefined;
  if (notBuilt !== undefined) throw new Error(notBuilt);
  if (settings.page && CHROMIUM === undefined) throw new Error("chromium is not installed (apt-get install -y chromium), or run with CLUSTER_PAGE=0");
  const stale = settings.masters.includes("after") ? staleDistWarning() : undefined;
  if (stale) console.log(stale);
  const mains: Record<MasterBuild, string | undefined> = { after: undefined, before: undefined };
  if (settings.masters.includes("before")) mains.before = ensureBeforeMaster(settings.beforeRef, (line) => console.log(line));
  console.log(
    `bench:cluster: levels ${settings.levels.map((l) => `${l.workers}:${l.rate}`).join(", ")}; ${settings.seconds} s each; page ${settings.page ? "open" : "none"}; master ${settings.masters.join(" then ")}; ${settings.workMs} ms simulated work\n`,
  );
  const rows: LevelRow[] = [];
  const instruments: Instrument[] = [];
  const notes: string[] = [];
  let failures = 0;
  for (const level of settings.levels) {
    for (const build of settings.masters) {
      try {
        const { row, instrument } = await runLevel(level, build, mains[build]);
        rows.push(row);
        instruments.push(instrument);
        notes.push(...notesOf(row, instrument));
        console.log(formatTable([row], rows.length === 1));
        if (row.notes.some((n) => n.startsWith("the master exited"))) failures += 1;
      } catch (error) {
        failures += 1;
        const message = error instanceof Error ? error.message : String(error);
        console.log(`| ${build} | ${level.workers} | ${level.rate} | could not be run: ${message.split("\n")[0]} |`);
        notes.push(`${build} ${level.workers}:${level.rate}: could not be run: ${message}`);
      }
    }
  }
  console.log(`\nsummary\n\n${formatTable(rows, true)}\n\ninstrument (is the load what it should be?)\n\n${instrumentTable(instruments)}\n`);
  console.log(legend(settings));
  console.log("- instrument: achieved q/s = queries sent / seconds; answered late = answered only after the POST's 30 s wait; queue wait = the master's assigned − created; listen overflows = the kernel's TcpExt ListenOverflows during the load (accept queues that overflowed, machine-wide); send lag = how late the load generator sent queries; loop p99 = event-loop delay of that process (includes the 10 ms sampling resolution); other CPU % = the machine's busy time not spent by the master, broker, fleet, load generator or chromium (other jobs on the machine: every number above is skewed when it is high); fleet counters from the start of the level until every query settled.");
  if (notes.length > 0) console.log(`\nnotes\n${notes.map((n) => `- ${n}`).join("\n")}`);
  const missed = rows.filter((r) => checkTargets(r).met === false).length;
  if (missed > 0) console.log(`\n${missed} row(s) miss their targets (a result, not a failure of the run).`);
  return failures > 0 ? 1 : 0;
}

async function cleanUp(): Promise<void> {
  for (const browser of browsers) await browser.close().catch(() => {});
  await Promise.all([...children].map((child) => child.stop(0)));
  await stopAll();
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    console.error(`bench:cluster: ${signal}, stopping every process started here`);
    void cleanUp().then(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await cleanUp();
    process.exit(code);
  },
  async (error: unknown) => {
    console.error(`bench:cluster: ${error instanceof Error ? error.message : String(error)}`);
    await cleanUp();
    process.exit(1);
  },
);
