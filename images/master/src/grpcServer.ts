// The WorkerCallback gRPC server (proto/aiswarm/v1/worker_callback.proto),
// loaded at runtime with @grpc/proto-loader. Every call must carry
// `authorization: Bearer <token>`; the token is compared in constant time and
// never logged.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createHash, timingSafeEqual } from "node:crypto";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import type { QueryService, ResultDecision } from "./queryService";
import { boundedClose, SHUTDOWN_STEP_MS, type StepEnd } from "./shutdown";

export const PROTO_FILE = "aiswarm/v1/worker_callback.proto";

/** PROTO_DIR, else the image layout (/app/dist + /app/proto), else the repo layout. */
export function resolveProtoDir(env: NodeJS.ProcessEnv = process.env, here: string = __dirname): string {
  if (env.PROTO_DIR) return resolve(env.PROTO_DIR);
  const imageLayout = resolve(here, "..", "proto");
  if (existsSync(join(imageLayout, PROTO_FILE))) return imageLayout;
  return resolve(here, "..", "..", "..", "proto");
}

export function loadServiceDefinition(protoDir: string): grpc.ServiceDefinition {
  const file = join(protoDir, PROTO_FILE);
  if (!existsSync(file)) throw new Error(`proto file not found: ${file} (set PROTO_DIR)`);
  const packageDef = protoLoader.loadSync(file, {
    includeDirs: [protoDir],
    keepCase: true,
    longs: Number,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(packageDef) as unknown as {
    aiswarm: { v1: { WorkerCallback: grpc.ServiceClientConstructor } };
  };
  return loaded.aiswarm.v1.WorkerCallback.service;
}

interface TaskResultMsg {
  task_id: string;
  worker_id: string;
  language: string;
  node: string;
  provider: string;
  answer: string;
  error: string;
  timings: { received_ms: number; started_ms: number; finished_ms: number } | null;
}

interface CredentialRequestMsg {
  task_id: string;
  worker_id: string;
}

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/** Constant-time check of the bearer token in the call metadata. */
export function checkToken(metadata: grpc.Metadata, expectedDigest: Buffer): "ok" | "missing" | "wrong" {
  const values = metadata.get("authorization");
  const header = values.length === 1 && typeof values[0] === "string" ? values[0] : undefined;
  const match = header ? /^Bearer (.+)$/.exec(header) : null;
  if (!match) return "missing";
  // Hashing first gives equal-length buffers, so timingSafeEqual can compare them.
  return timingSafeEqual(digest(match[1] as string), expectedDigest) ? "ok" : "wrong";
}

const zeroToNull = (n: number | undefined): number | null => (n ? n : null);

export class GrpcServer {
  // Channelz (gRPC's runtime introspection) is never queried here; off, it
  // keeps its per-call bookkeeping off the hot path.
  private readonly server = new grpc.Server({ "grpc.enable_channelz": 0 });
  private readonly tokenDigest: Buffer;

  constructor(
    private readonly service: QueryService,
    token: string,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.tokenDigest = digest(token);
  }

  /** Binds and starts; resolves with the bound port. */
  async start(protoDir: string, host: string, port: number): Promise<number> {
    this.server.addService(loadServiceDefinition(protoDir), {
      SendResult: this.sendResult,
      GetTaskCredential: this.getTaskCredential,
    });
    const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolvePort, reject) => {
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolvePort(bound),
      );
    });
  }

  /** Lets calls in progress finish for at most `graceMs`, then cancels them. */
  stop(graceMs = SHUTDOWN_STEP_MS): Promise<StepEnd> {
    const graceful = new Promise<void>((done) => this.server.tryShutdown(() => done()));
    return boundedClose(graceful, graceMs, () => this.server.forceShutdown());
  }

  private authorized(call: grpc.ServerUnaryCall<unknown, unknown>, method: string): grpc.ServiceError | null {
    const verdict = checkToken(call.metadata, this.tokenDigest);
    if (verdict === "ok") return null;
    const reason = verdict === "missing" ? "missing bearer token" : "wrong token";
    this.log.warn("grpc call rejected", { method, peer: call.getPeer(), reason });
    this.metrics?.resultRejected("unauthenticated");
    return status(grpc.status.UNAUTHENTICATED, reason);
  }

  private readonly sendResult: grpc.handleUnaryCall<TaskResultMsg, { accepted: boolean; duplicate: boolean }> = (
    call,
    callback,
  ) => {
    const denied = this.authorized(call, "SendResult");
    if (denied) return callback(denied);
    const r = call.request;
    if (!r.task_id || !r.worker_id) {
      return callback(status(grpc.status.INVALID_ARGUMENT, "task_id and worker_id are required"));
    }
    let decision: ResultDecision;
    try {
      decision = this.service.handleResult({
        taskId: r.task_id,
        workerId: r.worker_id,
        language: r.language,
        node: r.node,
        provider: r.provider,
        answer: r.answer,
        error: r.error,
        receivedMs: zeroToNull(r.timings?.received_ms),
        startedMs: zeroToNull(r.timings?.started_ms),
        finishedMs: zeroToNull(r.timings?.finished_ms),
      });
    } catch (err) {
      this.log.error("result handling failed", { task_id: r.task_id, error: String(err) });
      return callback(status(grpc.status.INTERNAL, "internal error"));
    }
    // The ack tells the worker its result is kept: send it once it is on disk (group commit).
    this.service.afterCommit(() => this.answerResult(decision, r, call, callback));
  };

  private answerResult(
    decision: ResultDecision,
    r: TaskResultMsg,
    call: grpc.ServerUnaryCall<TaskResultMsg, unknown>,
    callback: grpc.sendUnaryData<{ accepted: boolean; duplicate: boolean }>,
  ): void {
    if (decision === "accepted") {
      // Info, not debug: one line per answer, the audit of who answered what (the e2e counts them: none twice).
      this.log.info("result accepted", { task_id: r.task_id, worker_id: r.worker_id });
      return callback(null, { accepted: true, duplicate: false });
    }
    const fields = { task_id: r.task_id, worker_id: r.worker_id, peer: call.getPeer() };
    switch (decision) {
      case "duplicate":
        this.log.info("duplicate result acknowledged", fields);
        return callback(null, { accepted: false, duplicate: true });
      case "not_found":
        this.log.warn("result for unknown task", fields);
        return callback(status(grpc.status.NOT_FOUND, `unknown task ${r.task_id}`));
      case "permission_denied":
        this.log.warn("result from a worker that does not hold the task", fields);
        return callback(
          status(grpc.status.PERMISSION_DENIED, `worker ${r.worker_id} does not hold task ${r.task_id}`),
        );
    }
  }

  private readonly getTaskCredential: grpc.handleUnaryCall<
    CredentialRequestMsg,
    { present: boolean; api_key: string }
  > = (call, callback) => {
    const denied = this.authorized(call, "GetTaskCredential");
    if (denied) return callback(denied);
    const { task_id, worker_id } = call.request;
    if (!task_id || !worker_id) {
      return callback(status(grpc.status.INVALID_ARGUMENT, "task_id and worker_id are required"));
    }
    const decision = this.service.getCredential(task_id, worker_id);
    if (decision.kind === "ok") {
      // Log that a key was handed out, never the key.
      this.log.debug("credential requested", { task_id, worker_id, present: decision.present });
      return callback(null, { present: decision.present, api_key: decision.apiKey });
    }
    const code = decision.kind === "not_found" ? grpc.status.NOT_FOUND : grpc.status.PERMISSION_DENIED;
    this.log.warn("credential request rejected", { task_id, worker_id, reason: decision.kind });
    return callback(status(code, `${decision.kind.replace("_", " ")}: task ${task_id}`));
  };
}

/** A gRPC error with its status code and message (what a unary handler passes to its callback). */
export function status(code: grpc.status, details: string): grpc.ServiceError {
  const err = new Error(details) as grpc.ServiceError;
  err.code = code;
  err.details = details;
  err.metadata = new grpc.Metadata();
  return err;
}
