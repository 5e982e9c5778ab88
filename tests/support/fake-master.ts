import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { MqttClient } from "mqtt";
import { encodeTask, topics } from "../../images/master/src/protocol";
import { LAUNCH_GRPC_TOKEN, REPO_ROOT } from "../../launch/system";
import { eventually } from "../../launch/ports";
import { connectMqtt, type MqttAccess } from "./mqtt-spy";

/**
 * A scriptable stand-in for the master, for the scenarios the real master cannot
 * be made to produce on demand: it serves the real `WorkerCallback` contract
 * (proto/aiswarm/v1/worker_callback.proto) with grpc-js on loopback, answers each
 * SendResult by a script (accept, duplicate, delay, a gRPC error code), checks the
 * token like the master (UNAUTHENTICATED), records every call, and publishes tasks
 * on MQTT with the master's own encoder.
 */

const PROTO = path.join(REPO_ROOT, "proto/aiswarm/v1/worker_callback.proto");
const PREFIX = "ai-system";

/** How the fake answers one SendResult call; when the script is empty it accepts (duplicate for a task already accepted). */
export interface ResultStep {
  /** Fail the call with this code instead of answering (the result is not kept). */
  fail?: grpc.status;
  /** Answer `accepted=false, duplicate=true` whatever came before. */
  duplicate?: boolean;
  /** Hold the answer back this long (the result is recorded on arrival, as a busy master would). */
  delayMs?: number;
}

export interface ResultCall {
  taskId: string;
  request: Record<string, unknown>;
  /** What the fake answered: "accepted", "duplicate", or a gRPC status name. */
  answer: string;
  at: number;
}

export interface CredentialCall {
  taskId: string;
  workerId: string;
}

interface UnaryCall {
  request: Record<string, unknown>;
  metadata: grpc.Metadata;
}
type Callback = (error: grpc.ServiceError | null, response?: Record<string, unknown>) => void;

function definition(): grpc.ServiceDefinition {
  const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true })) as unknown as {
    aiswarm: { v1: { WorkerCallback: grpc.ServiceClientConstructor } };
  };
  return loaded.aiswarm.v1.WorkerCallback.service;
}

function failure(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

export class FakeMaster {
  /** Steps for the next SendResult calls, consumed one per call (calls with a wrong token do not consume one). */
  readonly script: ResultStep[] = [];
  /** Per-task user keys handed out by GetTaskCredential. */
  readonly credentials = new Map<string, string>();
  readonly results: ResultCall[] = [];
  readonly credentialCalls: CredentialCall[] = [];
  /** Calls refused with UNAUTHENTICATED (missing or wrong token). */
  unauthenticated = 0;

  private constructor(
    private readonly server: grpc.Server,
    private readonly mqttClient: MqttClient,
    readonly grpcAddr: string,
    private readonly token: string,
  ) {}

  static async start(mqttPort: number, access: MqttAccess = {}, token = LAUNCH_GRPC_TOKEN): Promise<FakeMaster> {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    const client = await connectMqtt(mqttPort, `fake-master-${process.pid}-${port}`, access);
    const fake = new FakeMaster(server, client, `127.0.0.1:${port}`, token);
    server.addService(definition(), {
      SendResult: (call: UnaryCall, callback: Callback) => fake.sendResult(call, callback),
      GetTaskCredential: (call: UnaryCall, callback: Callback) => fake.getTaskCredential(call, callback),
    });
    return fake;
  }

  /** Publishes a task on the worker's task topic, as the master leases one. */
  async sendTask(workerId: string, taskId: string, options: { query?: string; hasCredential?: boolean } = {}): Promise<void> {
    const payload = encodeTask({ task_id: taskId, query: options.query ?? `question ${taskId}`, lease_ms: 30_000, has_credential: options.hasCredential ?? false, ts: Date.now() });
    await this.mqttClient.publishAsync(topics(PREFIX).tasks(workerId), payload, { qos: 1 });
  }

  /** Waits until at least `count` SendResult calls have arrived (whatever their answer). */
  async resultCalls(count: number, timeoutMs = 20_000): Promise<ResultCall[]> {
    return eventually(`${count} SendResult call(s) at the fake master`, () => (this.results.length >= count ? this.results : undefined), timeoutMs);
  }

  async close(): Promise<void> {
    this.server.forceShutdown();
    await this.mqttClient.endAsync(true);
  }

  private authorized(metadata: grpc.Metadata, callback: Callback): boolean {
    if (metadata.get("authorization")[0] === `Bearer ${this.token}`) return true;
    this.unauthenticated += 1;
    callback(failure(grpc.status.UNAUTHENTICATED, "missing or wrong token"));
    return false;
  }

  private sendResult(call: UnaryCall, callback: Callback): void {
    if (!this.authorized(call.metadata, callback)) return;
    const taskId = String(call.request.task_id);
    const step = this.script.shift() ?? {};
    const duplicate = step.duplicate === true || this.results.some((r) => r.taskId === taskId && r.answer === "accepted");
    const answer = step.fail !== undefined ? grpc.status[step.fail] ?? String(step.fail) : duplicate ? "duplicate" : "accepted";
    this.results.push({ taskId, request: call.request, answer, at: Date.now() });
    const reply = (): void => {
      if (step.fail !== undefined) callback(failure(step.fail, "scripted failure"));
      else callback(null, { accepted: !duplicate, duplicate });
    };
    if (step.delayMs === undefined) reply();
    else setTimeout(reply, step.delayMs);
  }

  private getTaskCredential(call: UnaryCall, callback: Callback): void {
    if (!this.authorized(call.metadata, callback)) return;
    const taskId = String(call.request.task_id);
    this.credentialCalls.push({ taskId, workerId: String(call.request.worker_id) });
    const key = this.credentials.get(taskId);
    callback(null, { present: key !== undefined, api_key: key ?? "" });
  }
}
