// A tiny worker for tests, speaking the real contract: MQTT (register, status,
// heartbeat, last will, tasks) and the gRPC WorkerCallback client.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import mqtt, { type MqttClient } from "mqtt";
import { join, resolve } from "node:path";

export const PROTO_DIR = resolve(__dirname, "..", "..", "..", "..", "proto");

export interface TaskMsg {
  task_id: string;
  query: string;
  lease_ms: number;
  has_credential: boolean;
}

export interface Ack {
  accepted: boolean;
  duplicate: boolean;
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => void;

export interface CallbackClient extends grpc.Client {
  SendResult: Unary<Record<string, unknown>, Ack>;
  GetTaskCredential: Unary<{ task_id: string; worker_id: string }, { present: boolean; api_key: string }>;
}

export function callbackClient(address: string): CallbackClient {
  const def = protoLoader.loadSync(join(PROTO_DIR, "aiswarm/v1/worker_callback.proto"), {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    aiswarm: { v1: { WorkerCallback: new (addr: string, creds: grpc.ChannelCredentials) => CallbackClient } };
  };
  return new pkg.aiswarm.v1.WorkerCallback(address, grpc.credentials.createInsecure());
}

export function call<Req, Res>(
  method: Unary<Req, Res>,
  client: grpc.Client,
  req: Req,
  token: string | undefined,
): Promise<Res> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return new Promise((resolvePromise, reject) => {
    method.call(client, req, md, { deadline: Date.now() + 5000 }, (err, res) =>
      err ? reject(err) : resolvePromise(res as Res),
    );
  });
}

export interface FakeWorkerOptions {
  id: string;
  brokerPort: number;
  grpcAddress: string;
  token: string;
  prefix?: string;
  node?: string;
  autoAnswer?: boolean;
  heartbeatMs?: number;
}

export class FakeWorker {
  readonly tasks: TaskMsg[] = [];
  readonly acks: Ack[] = [];
  readonly credentials: { present: boolean; api_key: string }[] = [];
  current: TaskMsg | null = null;
  private mqtt!: MqttClient;
  private readonly grpc: CallbackClient;
  private heartbeat?: NodeJS.Timeout;
  private readonly prefix: string;
  /** When false, tasks are held until answer() is called. */
  autoAnswer: boolean;

  constructor(private readonly opts: FakeWorkerOptions) {
    this.prefix = opts.prefix ?? "ai-system";
    this.autoAnswer = opts.autoAnswer ?? true;
    this.grpc = callbackClient(opts.grpcAddress);
  }

  private topic(kind: string): string {
    return `${this.prefix}/workers/${this.opts.id}/${kind}`;
  }

  private send(kind: string, body: Record<string, unknown>): void {
    this.mqtt.publish(this.topic(kind), JSON.stringify({ v: 1, type: kind, worker_id: this.opts.id, ts: Date.now(), ...body }), {
      qos: 1,
    });
  }

  async start(): Promise<void> {
    const offline = { v: 1, type: "status", worker_id: this.opts.id, status: "offline", task_id: null, ts: Date.now() };
    this.mqtt = mqtt.connect(`mqtt://127.0.0.1:${this.opts.brokerPort}`, {
      clientId: this.opts.id,
      reconnectPeriod: 200,
      will: { topic: this.topic("status"), payload: Buffer.from(JSON.stringify(offline)), qos: 1, retain: false },
    });
    this.mqtt.on("message", (_topic, payload) => void this.onTask(JSON.parse(payload.toString()) as TaskMsg));
    // After every (re)connect: subscribe, register, say what we are doing.
    const announce = async (): Promise<void> => {
      await this.mqtt.subscribeAsync(this.topic("tasks"), { qos: 1 });
      this.send("register", { language: "typescript", node: this.opts.node ?? "vm-test", provider: "offline" });
      this.send("status", { status: this.current ? "busy" : "idle", task_id: this.current?.task_id ?? null });
    };
    this.mqtt.on("connect", () => void announce().catch(() => {}));
    await new Promise<void>((resolvePromise) => this.mqtt.once("connect", () => resolvePromise()));
    await announce();
    this.heartbeat = setInterval(() => {
      this.send("heartbeat", {
        language: "typescript",
        node: this.opts.node ?? "vm-test",
        status: this.current ? "busy" : "idle",
        task_id: this.current?.task_id ?? null,
      });
    }, this.opts.heartbeatMs ?? 200);
  }

  private async onTask(task: TaskMsg): Promise<void> {
    if (this.current?.task_id === task.task_id) return;
    if (this.current) {
      this.send("status", { status: "busy", task_id: this.current.task_id, rejected_task_id: task.task_id });
      return;
    }
    this.tasks.push(task);
    this.current = task;
    this.send("status", { status: "busy", task_id: task.task_id });
    if (task.has_credential) {
      this.credentials.push(
        await call(this.grpc.GetTaskCredential, this.grpc, { task_id: task.task_id, worker_id: this.opts.id }, this.opts.token),
      );
    }
    if (this.autoAnswer) await this.answer();
  }

  /** Sends the result of the task in hand (retrying while the master is down), then goes idle. */
  async answer(deadlineMs = 20_000): Promise<Ack> {
    const task = this.current;
    if (!task) throw new Error("no task in hand");
    const now = Date.now();
    const result = {
      task_id: task.task_id,
      worker_id: this.opts.id,
      language: "typescript",
      node: this.opts.node ?? "vm-test",
      provider: "offline",
      answer: `echo: ${task.query}`,
      error: "",
      timings: { received_ms: now, started_ms: now, finished_ms: now },
    };
    const end = Date.now() + deadlineMs;
    for (;;) {
      try {
        const ack = await call(this.grpc.SendResult, this.grpc, result, this.opts.token);
        this.acks.push(ack);
        this.current = null;
        this.send("status", { status: "idle", task_id: null });
        return ack;
      } catch (err) {
        const code = (err as grpc.ServiceError).code;
        if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) throw err;
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Stops like a clean worker: offline status, disconnect. */
  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    if (this.mqtt.connected) this.send("status", { status: "offline", task_id: null });
    await this.mqtt.endAsync();
    this.grpc.close();
  }
}
