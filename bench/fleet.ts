/**
 * A simulated fleet: many fake workers in one Node process, each speaking the
 * worker contract of docs/protocol.md (MQTT payloads and delivery rules) and
 * proto/aiswarm/v1/worker_callback.proto (SendResult) exactly as a real
 * worker does, with the LLM call replaced by the offline provider and
 * SIMULATED_WORK_MS by `workMs`. It exists to load a master with 1000–2000
 * workers on one machine (npm run bench:cluster), so each worker is cheap:
 *
 * - one MQTT connection per worker (client id = worker id, clean session,
 *   last will `offline`), because that is what the broker and the master see;
 * - one gRPC channel for the whole fleet (grpc-js multiplexes the calls);
 * - one timer for every heartbeat (a wheel: each tick beats one slice of the
 *   fleet, so heartbeats are spread evenly over the interval) instead of one
 *   setInterval per worker;
 * - no per-worker logging: counters (Fleet.counters()) and the last few
 *   distinct errors (Fleet.lastErrors()) say what happened.
 *
 * Per task (docs/protocol.md, "Worker behaviour" and rules 2, 5, 6): take it
 * if free (no status is published), keep one that arrives while SendResult is
 * in flight (retries included) and run it next, ignore a second delivery of a
 * task held, reject anything else with a `status` carrying `rejected_task_id`;
 * "work" for `workMs` (+ jitter), then SendResult with the bearer token and a
 * 5 s deadline, retried on UNAVAILABLE, DEADLINE_EXCEEDED and
 * RESOURCE_EXHAUSTED with backoff 200 ms doubling to 5 s until
 * `resultRetryDeadlineMs`; after an accepted result say nothing, otherwise
 * publish `status idle` (unless a next task is waiting).
 *
 * Not simulated: GetTaskCredential (the offline provider never uses a user
 * key, so the contract says it is not called), HEALTH_FILE, and stdout logs.
 * Log events at or above `logLevel` (default warn: final SendResult errors and
 * malformed tasks) are published on P/logs as the contract asks.
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import mqtt, { type MqttClient } from "mqtt";
import { integerSetting } from "../components/workerSettings";
import { PayloadSchema } from "../images/master/src/protocol";

export type FleetLanguage = "python" | "go" | "java";
export type LogLevel = "debug" | "info" | "warn" | "error";

export const FLEET_LANGUAGES: readonly FleetLanguage[] = ["python", "go", "java"];
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** The contract's defaults (docs/protocol.md); its payloads are proto/mqtt/payloads.schema.json. */
const WORKER_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const CALL_DEADLINE_MS = 5_000;
const BACKOFF_FIRST_MS = 200;
const BACKOFF_MAX_MS = 5_000;
/** docs/protocol.md, "MQTT session", as every worker. */
const MQTT_KEEPALIVE_S = 10;
const OFFLINE_PUBLISH_TIMEOUT_MS = 2_000;
const RETRYABLE = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED]);

export interface FleetOptions {
  /** How many fake workers. */
  count: number;
  /** e.g. mqtt://127.0.0.1:1883 */
  brokerUrl: string;
  mqttUsername?: string;
  mqttPassword?: string;
  /** The master's WorkerCallback, host:port. */
  grpcAddress: string;
  grpcToken: string;
  /** MQTT_TOPIC_PREFIX; default ai-system. */
  topicPrefix?: string;
  /** How many fake VMs the workers are spread over (the `node` field); default ceil(count / 20). */
  nodes?: number;
  /** Languages, assigned round-robin; default python, go, java. */
  languages?: readonly FleetLanguage[];
  /** HEARTBEAT_INTERVAL_MS; default the contract's (proto/worker-settings.json). */
  heartbeatMs?: number;
  /** SIMULATED_WORK_MS; default 2000. */
  workMs?: number;
  /** Each task works workMs plus a uniform random 0..workJitterMs; default 0. */
  workJitterMs?: number;
  /** RESULT_RETRY_DEADLINE_MS; default the contract's (proto/worker-settings.json). */
  resultRetryDeadlineMs?: number;
  /** LOG_LEVEL: events at or above it are published on P/logs; default warn. */
  logLevel?: LogLevel;
  /** Goes into every worker id, so two fleets on one broker never share a client id; default 4 random hex digits. */
  idTag?: string;
  /** MQTT connects in flight while starting (Mosquitto's listen backlog is small); default 64. */
  connectConcurrency?: number;
  /** start() gives up after this long; default 30 s + 20 ms per worker. */
  startTimeoutMs?: number;
  /** Where worker_callback.proto and mqtt/payloads.schema.json are; default the repository's proto/. */
  protoDir?: string;
}

/** Who a fake worker is. */
export interface WorkerIdentity {
  id: string;
  language: FleetLanguage;
  node: string;
}

export interface FleetCounters {
  workers: number;
  /** Workers whose register and status the broker has acknowledged at least once. */
  registered: number;
  /** Workers connected to the broker now. */
  connected: number;
  /** Connects after the first one, over all workers. */
  reconnects: number;
  /** Workers holding a task now. */
  busy: number;
  /** Valid task messages received. */
  tasksReceived: number;
  /** Tasks taken to run (at once, or next after the result in flight). */
  tasksTaken: number;
  /** Of those, taken while SendResult was in flight (rule 2). */
  tasksTakenNext: number;
  /** Tasks answered with `rejected_task_id` (busy, or shutting down). */
  tasksRejected: number;
  /** Second deliveries of a task held, ignored (rule 6). */
  duplicateTasks: number;
  /** Task messages dropped as malformed. */
  malformedTasks: number;
  /** Results for which SendResult was called (once per task, retries aside). */
  resultsSent: number;
  /** SendResult calls retried (rule 5). */
  resultRetries: number;
  resultsAccepted: number;
  /** Acknowledged as duplicate (accepted=false, duplicate=true). */
  resultsDuplicate: number;
  /** Final gRPC errors, or retries that ran out of time; the worker then said idle. */
  resultsRejected: number;
  /** MQTT errors, failed publishes, anything unexpected. */
  errors: number;
  heartbeats: number;
  statuses: number;
}

export type ResultOutcome = "accepted" | "duplicate" | "rejected";

/** The counters Fleet adds up as things happen (the others are read from the workers). */
type EventCounter = Exclude<keyof FleetCounters, "workers" | "registered" | "connected" | "busy">;

/** What Fleet emits (cheap: nothing is built when nobody listens). */
export interface FleetEvents {
  task: [workerId: string, taskId: string];
  result: [workerId: string, taskId: string, outcome: ResultOutcome, detail: string];
}

export interface TaskMessage {
  task_id: string;
  query: string;
  lease_ms: number;
  has_credential: boolean;
  ts: number;
}

// ---- pure parts (unit-tested) -------------------------------------------------

/** `count` VM names vm-01 … (zero-padded to at least two digits). */
export function nodeNames(count: number): string[] {
  const width = Math.max(2, String(count).length);
  return Array.from({ length: count }, (_, i) => `vm-${String(i + 1).padStart(width, "0")}`);
}

/**
 * Identities of a fleet: languages round-robin, workers spread over the nodes
 * in contiguous blocks (so every node gets every language), ids in the
 * contract's `<language>-<node>-<hex>` form plus an index.
 */
export function fleetIdentities(count: number, nodes: number, languages: readonly FleetLanguage[], tag: string): WorkerIdentity[] {
  if (!Number.isInteger(count) || count < 1) throw new Error(`count must be a positive integer, got ${count}`);
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`nodes must be a positive integer, got ${nodes}`);
  if (languages.length === 0) throw new Error("languages must not be empty");
  const names = nodeNames(nodes);
  const width = Math.max(4, String(count - 1).length);
  return Array.from({ length: count }, (_, i) => {
    const language = languages[i % languages.length] as FleetLanguage;
    const node = names[Math.floor((i * nodes) / count)] as string;
    const id = `${language}-${node}-${tag}-${String(i).padStart(width, "0")}`;
    if (!WORKER_ID.test(id)) throw new Error(`worker id "${id}" is not valid (1-64 of [A-Za-z0-9_.-])`);
    return { id, language, node };
  });
}

/** Validates a task payload against the payload schema (the master's validation); undefined when it must be dropped. */
export function parseTask(schema: PayloadSchema, payload: Uint8Array): TaskMessage | undefined {
  const verdict = schema.validate("task", payload);
  if (!verdict.ok) return undefined;
  const { task_id, query, lease_ms, has_credential, ts } = verdict.msg;
  return { task_id, query, lease_ms, has_credential, ts };
}

/** The offline provider's answer, word for word as in every language. */
export function offlineAnswer(workerId: string, query: string): string {
  return `[offline] No LLM is configured on worker ${workerId}, so this is not a real answer (set GEMINI_API_KEY or OPENAI_BASE_URL to get one). Your question was: ${query}`;
}

/** Rule 5's backoff: 200 ms doubling, at most 5 s. */
export function nextBackoffMs(previousMs: number | undefined): number {
  return previousMs === undefined ? BACKOFF_FIRST_MS : Math.min(previousMs * 2, BACKOFF_MAX_MS);
}

/** Heartbeat wheel: `slots` ticks of `tickMs` make one heartbeat interval (tick at most 100 ms). */
export function heartbeatWheel(heartbeatMs: number): { slots: number; tickMs: number } {
  const slots = Math.max(1, Math.ceil(heartbeatMs / 100));
  return { slots, tickMs: heartbeatMs / slots };
}

// ---- the fleet ----------------------------------------------------------------

type Unary = (
  request: Record<string, unknown>,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: { accepted?: boolean; duplicate?: boolean }) => void,
) => grpc.ClientUnaryCall;

interface CallbackClient extends grpc.Client {
  SendResult: Unary;
}

interface Resolved {
  count: number;
  brokerUrl: string;
  mqttUsername?: string;
  mqttPassword?: string;
  grpcToken: string;
  prefix: string;
  heartbeatMs: number;
  workMs: number;
  workJitterMs: number;
  resultRetryDeadlineMs: number;
  logLevel: LogLevel;
  connectConcurrency: number;
  startTimeoutMs: number;
}

interface Held {
  task: TaskMessage;
  receivedMs: number;
}

/** What the workers of one fleet share: settings, the gRPC channel, counters, the error log. */
class FleetContext {
  readonly counts: Record<EventCounter, number> = {
    reconnects: 0,
    tasksReceived: 0,
    tasksTaken: 0,
    tasksTakenNext: 0,
    tasksRejected: 0,
    duplicateTasks: 0,
    malformedTasks: 0,
    resultsSent: 0,
    resultRetries: 0,
    resultsAccepted: 0,
    resultsDuplicate: 0,
    resultsRejected: 0,
    errors: 0,
    heartbeats: 0,
    statuses: 0,
  };
  readonly errorLog: string[] = [];
  /** Set by stop(): every callback after this is a no-op. */
  closed = false;

  constructor(
    readonly options: Resolved,
    readonly callback: CallbackClient,
    readonly payloadSchema: PayloadSchema,
    readonly events: EventEmitter<FleetEvents>,
  ) {}

  count(name: EventCounter): void {
    this.counts[name] += 1;
  }

  error(message: string): void {
    this.counts.errors += 1;
    if (this.errorLog.includes(message)) return;
    this.errorLog.push(message);
    if (this.errorLog.length > 10) this.errorLog.shift();
  }

  logEnabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(this.options.logLevel);
  }
}

/**
 * The fleet. Emits "task" (workerId, taskId) for every valid task message and
 * "result" (workerId, taskId, outcome, detail) once per task after SendResult.
 */
export class Fleet extends EventEmitter<FleetEvents> {
  readonly identities: readonly WorkerIdentity[];
  private readonly context: FleetContext;
  private readonly workers: SimWorker[];
  private heartbeatTimer?: NodeJS.Timeout;
  private started = false;

  constructor(options: FleetOptions) {
    super();
    const count = options.count;
    const nodes = options.nodes ?? Math.ceil(count / 20);
    const heartbeatMs = options.heartbeatMs ?? integerSetting("HEARTBEAT_INTERVAL_MS").default;
    const workMs = options.workMs ?? 2000;
    const atLeast = (name: string, value: number, min: number): void => {
      if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}, got ${value}`);
    };
    atLeast("heartbeatMs", heartbeatMs, 1);
    atLeast("workMs", workMs, 0);
    atLeast("workJitterMs", options.workJitterMs ?? 0, 0);
    const logLevel = options.logLevel ?? "warn";
    if (!LOG_LEVELS.includes(logLevel)) throw new Error(`logLevel must be one of ${LOG_LEVELS.join(", ")}`);
    const resolved: Resolved = {
      count,
      brokerUrl: options.brokerUrl,
      mqttUsername: options.mqttUsername,
      mqttPassword: options.mqttPassword,
      grpcToken: options.grpcToken,
      prefix: options.topicPrefix ?? "ai-system",
      heartbeatMs,
      workMs,
      workJitterMs: options.workJitterMs ?? 0,
      resultRetryDeadlineMs: options.resultRetryDeadlineMs ?? integerSetting("RESULT_RETRY_DEADLINE_MS").default,
      logLevel,
      connectConcurrency: Math.max(1, options.connectConcurrency ?? 64),
      startTimeoutMs: options.startTimeoutMs ?? 30_000 + 20 * count,
    };
    const tag = options.idTag ?? Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0");
    this.identities = fleetIdentities(count, nodes, options.languages ?? FLEET_LANGUAGES, tag);
    const protoDir = options.protoDir ?? path.resolve(__dirname, "..", "proto");
    const callback = makeCallbackClient(protoDir, options.grpcAddress);
    this.context = new FleetContext(resolved, callback, PayloadSchema.load(protoDir), this);
    this.workers = this.identities.map((identity) => new SimWorker(this.context, identity));
  }

  /** Connects every worker (a bounded number at a time); resolves once each one's register and status are acknowledged by the broker. */
  async start(): Promise<void> {
    if (this.started) throw new Error("the fleet was already started");
    this.started = true;
    this.startHeartbeats();
    const o = this.context.options;
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < this.workers.length && !this.context.closed) {
        const worker = this.workers[next++] as SimWorker;
        await worker.start();
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const c = this.counters();
        reject(new Error(`fleet: ${c.registered} of ${c.workers} workers registered after ${o.startTimeoutMs} ms (last errors: ${this.context.errorLog.join(" | ") || "none"})`));
      }, o.startTimeoutMs);
    });
    try {
      await Promise.race([Promise.all(Array.from({ length: Math.min(o.connectConcurrency, this.workers.length) }, lane)), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops like SIGTERM on every worker: no more tasks (a waiting one and any
   * new one are rejected), the tasks in hand may finish within `graceMs`
   * (default 5 s), then `status offline`, a clean disconnect and the gRPC
   * channel closed. Bounded: about graceMs + 3 s at most. Returns the final counters.
   */
  async stop(options: { graceMs?: number } = {}): Promise<FleetCounters> {
    const graceMs = options.graceMs ?? 5_000;
    if (!this.context.closed) {
      for (const worker of this.workers) worker.stopTaking();
      const deadline = Date.now() + graceMs;
      while (this.workers.some((w) => w.holdsTask) && Date.now() < deadline) await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
      clearInterval(this.heartbeatTimer);
      this.context.closed = true;
      await Promise.all(this.workers.map((w) => w.close()));
      this.context.callback.close();
    }
    return this.counters();
  }

  counters(): FleetCounters {
    let registered = 0;
    let connected = 0;
    let busy = 0;
    for (const w of this.workers) {
      if (w.registered) registered += 1;
      if (w.connected) connected += 1;
      if (w.holdsTask) busy += 1;
    }
    return { workers: this.workers.length, registered, connected, busy, ...this.context.counts };
  }

  /** The last few distinct error messages (no per-worker logging otherwise). */
  lastErrors(): string[] {
    return [...this.context.errorLog];
  }

  private startHeartbeats(): void {
    const { slots, tickMs } = heartbeatWheel(this.context.options.heartbeatMs);
    let slot = 0;
    this.heartbeatTimer = setInterval(() => {
      for (let i = slot; i < this.workers.length; i += slots) this.workers[i]?.heartbeat();
      slot = (slot + 1) % slots;
    }, tickMs);
  }
}

function makeCallbackClient(protoDir: string, address: string): CallbackClient {
  const definition = protoLoader.loadSync(path.join(protoDir, "aiswarm/v1/worker_callback.proto"), {
    includeDirs: [protoDir],
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    aiswarm: { v1: { WorkerCallback: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => CallbackClient } };
  };
  // Reconnect quickly after a master restart (as the Python worker does); no channelz bookkeeping.
  return new loaded.aiswarm.v1.WorkerCallback(address, grpc.credentials.createInsecure(), {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 5000,
    "grpc.enable_channelz": 0,
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One fake worker: its own MQTT connection, its task slots, no timers of its own but the work timer. */
class SimWorker {
  private client?: MqttClient;
  private inHand?: Held;
  private waiting?: Held;
  /** The task in hand is done; SendResult (with its retries) is in flight. */
  private sendingResult = false;
  private accepting = true;
  private workTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private call?: grpc.ClientUnaryCall;
  private connects = 0;
  registered = false;
  private readonly topic: { register: string; heartbeat: string; status: string; tasks: string; logs: string };

  constructor(
    private readonly fleet: FleetContext,
    private readonly identity: WorkerIdentity,
  ) {
    const base = `${fleet.options.prefix}/workers/${identity.id}`;
    this.topic = { register: `${base}/register`, heartbeat: `${base}/heartbeat`, status: `${base}/status`, tasks: `${base}/tasks`, logs: `${fleet.options.prefix}/logs` };
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  get holdsTask(): boolean {
    return this.inHand !== undefined;
  }

  /** Connects; resolves after the first register and status are acknowledged. */
  start(): Promise<void> {
    const o = this.fleet.options;
    return new Promise((resolve) => {
      const client = mqtt.connect(o.brokerUrl, {
        clientId: this.identity.id,
        username: o.mqttUsername,
        password: o.mqttPassword,
        clean: true,
        protocolVersion: 4,
        keepalive: MQTT_KEEPALIVE_S,
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
        resubscribe: false, // we subscribe on every connect ourselves, before announcing
        will: { topic: this.topic.status, payload: Buffer.from(this.offlinePayload()), qos: 1, retain: false },
      });
      this.client = client;
      client.on("connect", () => this.onConnect(client, resolve));
      client.on("message", (_topic, payload) => this.onTask(payload));
      // The will carries the time of the connect it goes with: refresh it before the next one.
      client.on("close", () => {
        if (client.options.will) client.options.will.payload = Buffer.from(this.offlinePayload());
      });
      client.on("error", (error) => this.fleet.error(`mqtt: ${error.message}`));
    });
  }

  private onConnect(client: MqttClient, firstAnnounced: () => void): void {
    this.connects += 1;
    if (this.connects > 1) this.fleet.count("reconnects");
    // Small QoS 1 packets: Nagle would hold each one for the broker's delayed ACK.
    (client.stream as Partial<Socket>).setNoDelay?.(true);
    // Subscribe first and announce once the broker granted it, so a task leased
    // right after our register cannot be published before we listen.
    client.subscribe(this.topic.tasks, { qos: 1 }, (error, granted) => {
      if (error || granted?.[0]?.qos === 128) {
        this.fleet.error(`subscribe ${this.topic.tasks}: ${error?.message ?? "refused by the broker"}`);
        return;
      }
      this.publish(this.topic.register, { v: 1, type: "register", worker_id: this.identity.id, language: this.identity.language, node: this.identity.node, provider: "offline", ts: Date.now() });
      this.publishStatus(undefined, (ok) => {
        if (!ok) return;
        this.registered = true;
        firstAnnounced();
      });
    });
  }

  heartbeat(): void {
    if (!this.connected) return; // the Python worker drops them too: stale heartbeats are no use
    const { status, taskId } = this.statusNow();
    // Shutting down with nothing in hand: an "idle" heartbeat would make the
    // master lease us tasks we can only reject, and the master's schema has no
    // "offline" heartbeat; `status offline` follows shortly anyway.
    if (status === "offline") return;
    this.fleet.count("heartbeats");
    this.publish(this.topic.heartbeat, {
      v: 1,
      type: "heartbeat",
      worker_id: this.identity.id,
      language: this.identity.language,
      node: this.identity.node,
      status,
      task_id: taskId,
      // Every task held (in hand, then waiting to run next): the master renews each lease.
      held_task_ids: [this.inHand, this.waiting].flatMap((h) => (h ? [h.task.task_id] : [])),
      ts: Date.now(),
    });
  }

  /** SIGTERM, step one: no more tasks; the one waiting to run next is given back at once. */
  stopTaking(): void {
    this.accepting = false;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) this.reject(waiting.task.task_id);
  }

  /** SIGTERM, last step: abandon what is in hand (the master re-dispatches it), say offline, disconnect. */
  async close(): Promise<void> {
    clearTimeout(this.workTimer);
    clearTimeout(this.retryTimer);
    this.call?.cancel(); // its 5 s deadline timer would otherwise outlive stop()
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, OFFLINE_PUBLISH_TIMEOUT_MS);
        this.fleet.count("statuses");
        client.publish(this.topic.status, this.offlinePayload(), { qos: 1, retain: false }, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => client.end(true, {}, () => resolve()), 1_000);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---- tasks -----------------------------------------------------------------

  private onTask(payload: Buffer): void {
    if (this.fleet.closed) return;
    const task = parseTask(this.fleet.payloadSchema, payload);
    if (!task) {
      this.fleet.count("malformedTasks");
      this.event("error", "dropped a malformed task message");
      return;
    }
    this.fleet.count("tasksReceived");
    if (this.fleet.events.listenerCount("task") > 0) this.fleet.events.emit("task", this.identity.id, task.task_id);
    const held = { task, receivedMs: Date.now() };
    // Rule 6: a second delivery of a task we hold (in hand, or waiting to run next).
    if (this.inHand?.task.task_id === task.task_id || this.waiting?.task.task_id === task.task_id) {
      this.fleet.count("duplicateTasks");
      return;
    }
    if (!this.accepting) {
      this.reject(task.task_id);
      return;
    }
    if (this.inHand === undefined) {
      this.fleet.count("tasksTaken");
      this.run(held);
      return;
    }
    // Rule 2: the master freed us when it accepted the result we are still
    // waiting on; this task runs next (one at most).
    if (this.sendingResult && this.waiting === undefined) {
      this.fleet.count("tasksTaken");
      this.fleet.count("tasksTakenNext");
      this.waiting = held;
      return;
    }
    this.reject(task.task_id);
  }

  private reject(taskId: string): void {
    this.fleet.count("tasksRejected");
    this.publishStatus(taskId);
  }

  /** Takes a task: no status (the master counts us busy from the lease); heartbeats say busy. */
  private run(held: Held): void {
    this.inHand = held;
    const o = this.fleet.options;
    this.event("info", `task ${held.task.task_id} started`, held.task.task_id);
    const startedMs = Date.now();
    const workMs = o.workMs + (o.workJitterMs > 0 ? Math.random() * o.workJitterMs : 0);
    // A timer may fire a millisecond before Date.now() says the time is up: wait out the rest.
    const finish = (): void => {
      const left = startedMs + workMs - Date.now();
      if (left > 0) {
        this.workTimer = setTimeout(finish, left);
        return;
      }
      this.workTimer = undefined;
      void this.deliver(held, startedMs);
    };
    this.workTimer = setTimeout(finish, workMs);
  }

  private async deliver(held: Held, startedMs: number): Promise<void> {
    const { task, receivedMs } = held;
    this.sendingResult = true; // from now on a next task may arrive (rule 2)
    this.fleet.count("resultsSent");
    const result = {
      task_id: task.task_id,
      worker_id: this.identity.id,
      language: this.identity.language,
      node: this.identity.node,
      provider: "offline",
      answer: offlineAnswer(this.identity.id, task.query),
      error: "",
      timings: { received_ms: receivedMs, started_ms: startedMs, finished_ms: Date.now() },
    };
    const { outcome, detail } = await this.sendResult(result);
    if (this.fleet.closed) return;
    if (outcome === "accepted") this.fleet.count("resultsAccepted");
    else if (outcome === "duplicate") this.fleet.count("resultsDuplicate");
    else this.fleet.count("resultsRejected");
    if (this.fleet.events.listenerCount("result") > 0) this.fleet.events.emit("result", this.identity.id, task.task_id, outcome, detail);
    this.event("info", `task ${task.task_id} done in ${Date.now() - receivedMs} ms`, task.task_id);
    // The task in hand is over; the one waiting (if any) runs now, with no status in between.
    const next = this.waiting;
    this.waiting = undefined;
    this.inHand = undefined;
    this.sendingResult = false;
    if (next) {
      this.run(next);
      return;
    }
    // After an accepted result the master already freed us: say nothing.
    // Otherwise it must hear that we are free (unless we are shutting down: offline comes next).
    if (outcome !== "accepted" && this.accepting) this.publishStatus();
  }

  /** SendResult with rule 5's retries. */
  private async sendResult(result: Record<string, unknown>): Promise<{ outcome: ResultOutcome; detail: string }> {
    const deadline = Date.now() + this.fleet.options.resultRetryDeadlineMs;
    let delay: number | undefined;
    for (;;) {
      const reply = await this.callSendResult(result);
      if (this.fleet.closed) return { outcome: "rejected", detail: "fleet stopped" };
      if (reply.error === undefined) {
        if (reply.ack?.accepted) return { outcome: "accepted", detail: "" };
        // accepted=false: a duplicate (or, not in the contract, neither flag set): the master did not take it.
        return { outcome: "duplicate", detail: reply.ack?.duplicate ? "duplicate" : "not accepted" };
      }
      const code = reply.error.code;
      const name = grpc.status[code] ?? String(code);
      delay = nextBackoffMs(delay);
      if (!RETRYABLE.has(code) || Date.now() + delay > deadline) {
        const why = RETRYABLE.has(code) ? `${name} until the retry deadline` : name;
        this.fleet.error(`SendResult: ${name}: ${reply.error.details}`);
        this.event("error", `SendResult for task ${String(result.task_id)} rejected: ${why}`, String(result.task_id));
        return { outcome: "rejected", detail: name };
      }
      this.fleet.count("resultRetries");
      await new Promise<void>((resolve) => {
        this.retryTimer = setTimeout(resolve, delay);
      });
      if (this.fleet.closed) return { outcome: "rejected", detail: "fleet stopped" };
    }
  }

  private callSendResult(result: Record<string, unknown>): Promise<{ ack?: { accepted?: boolean; duplicate?: boolean }; error?: grpc.ServiceError }> {
    const client = this.fleet.callback;
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${this.fleet.options.grpcToken}`);
    return new Promise((resolve) => {
      this.call = client.SendResult(result, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (error, ack) => {
        this.call = undefined;
        resolve(error ? { error } : { ack });
      });
    });
  }

  // ---- MQTT ------------------------------------------------------------------

  private statusNow(): { status: "idle" | "busy" | "offline"; taskId: string | null } {
    if (this.inHand) return { status: "busy", taskId: this.inHand.task.task_id };
    // Shutting down with nothing in hand: a rejection says offline, so the
    // master does not lease us the task again (an "idle" would invite that).
    return { status: this.accepting ? "idle" : "offline", taskId: null };
  }

  private publishStatus(rejectedTaskId?: string, done?: (ok: boolean) => void): void {
    const { status, taskId } = this.statusNow();
    const body: Record<string, unknown> = { v: 1, type: "status", worker_id: this.identity.id, status, task_id: taskId, ts: Date.now() };
    if (rejectedTaskId !== undefined) body.rejected_task_id = rejectedTaskId;
    this.fleet.count("statuses");
    this.publish(this.topic.status, body, done);
  }

  private offlinePayload(): string {
    return JSON.stringify({ v: 1, type: "status", worker_id: this.identity.id, status: "offline", task_id: null, ts: Date.now() });
  }

  private event(level: LogLevel, message: string, taskId?: string): void {
    if (!this.fleet.logEnabled(level)) return;
    const body: Record<string, unknown> = { v: 1, type: "log", source: this.identity.id, level, message, ts: Date.now() };
    if (taskId !== undefined) body.task_id = taskId;
    this.publish(this.topic.logs, body);
  }

  private publish(topic: string, body: Record<string, unknown>, done?: (ok: boolean) => void): void {
    const client = this.client;
    if (!client?.connected) {
      done?.(false);
      return;
    }
    client.publish(topic, JSON.stringify(body), { qos: 1, retain: false }, (error) => {
      if (error) this.fleet.error(`publish ${topic.slice(topic.lastIndexOf("/") + 1)}: ${error.message}`);
      done?.(error === undefined || error === null);
    });
  }
}
