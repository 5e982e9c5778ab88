// Entry point: validate the config, open the database, restore the queue, then
// start gRPC, HTTP (+ Socket.IO) and MQTT. SIGTERM/SIGINT shut down cleanly.
import { ConfigError, loadConfig, type Config } from "./config";
import { GrpcServer, resolveProtoDir } from "./grpcServer";
import { HttpApi } from "./httpServer";
import { createLogger, errorMessage, type Logger } from "./log";
import { Metrics } from "./metrics";
import { MqttBridge } from "./mqttBridge";
import { PayloadSchema } from "./protocol";
import { QueryService } from "./queryService";
import { RateLimiter } from "./rateLimit";
import { Scheduler } from "./scheduler";
import { SHUTDOWN_STEP_MS, type StepEnd } from "./shutdown";
import { SignInBackoff } from "./signInBackoff";
import { openStore, storeWhere } from "./storeFactory";

/** A task that loses its worker this many times fails instead of looping forever. */
const MAX_ATTEMPTS = 5;
const OFFLINE_RETENTION_MS = 10 * 60_000;
const TICK_MS = 250;
/** How often finished queries past ANSWER_RETENTION_HOURS are deleted, and how many per batch. */
const RETENTION_SWEEP_MS = 60_000;
const RETENTION_BATCH = 1_000;

async function main(): Promise<void> {
  let cfg: Config;
  try {
    cfg = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), level: "error", msg: err.message })}\n`);
    process.exit(1);
  }
  const log = createLogger(cfg.logLevel);
  await run(cfg, log);
}

async function run(cfg: Config, log: Logger): Promise<void> {
  // The .proto and the MQTT payload schema (proto/mqtt/payloads.schema.json) are read here,
  // before anything starts, so a missing file stops start-up with its path.
  const protoDir = resolveProtoDir();
  const payloadSchema = PayloadSchema.load(protoDir);
  // (STORE=etcd: the leader part campaigns first and passes its fence here.)
  const store = await openStore(cfg);
  const scheduler = new Scheduler({
    leaseMs: cfg.leaseMs,
    taskTimeoutMs: cfg.taskTimeoutMs,
    heartbeatTimeoutMs: cfg.heartbeatTimeoutMs,
    maxQueuedPerSession: cfg.maxQueuedPerSession,
    maxAttempts: MAX_ATTEMPTS,
    offlineRetentionMs: OFFLINE_RETENTION_MS,
  });
  const mqtt = new MqttBridge(cfg.mqtt, log, payloadSchema, cfg.logLevel === "debug");
  const service = new QueryService(store, scheduler, mqtt, log, {
    taskTopic: (workerId) => mqtt.topics.tasks(workerId),
    // One transaction per event-loop turn; tasks, updates and acks after its commit.
    groupCommit: true,
    onCommitError: () => {
      // Memory is ahead of the disk now: start again from what the disk holds
      // (nothing of the failed batch was acknowledged to anyone).
      log.error("exiting after a failed database commit; a restart reloads the last committed state");
      process.exit(1);
    },
  });
  const metrics = new Metrics({
    queueDepth: () => service.queueDepth(),
    queriesByState: () => service.queriesByState(),
    workers: () => service.workers(),
  });
  service.setMetrics(metrics);
  const restored = service.restore();
  log.info("queries restored", { ...storeWhere(cfg), ...restored });

  const rateLimiter = new RateLimiter(cfg.rateLimitPerMinute);
  const signInBackoff = new SignInBackoff();
  const grpcServer = new GrpcServer(service, cfg.grpcToken, log, metrics);
  const web = cfg.web;
  const http = new HttpApi({
    service,
    rateLimiter,
    signInBackoff,
    metrics,
    log,
    maxQueryChars: cfg.maxQueryChars,
    health: () => ({ mqtt: mqtt.connected, db: store.ping() }),
    tls: web.tls,
    auth: web.authToken === undefined
      ? undefined
      : { token: web.authToken, sessionTtlMs: web.sessionTtlMs, metricsOpen: web.metricsOpen },
  });
  const scheme = web.tls ? "https" : "http";
  log.info("web front door", {
    scheme,
    access_control: web.authToken === undefined ? "off" : "token",
    metrics_open: web.authToken === undefined || web.metricsOpen,
  });
  if (web.authToken !== undefined && !web.tls) {
    log.warn("WEB_AUTH_TOKEN is set without WEB_TLS_CERT_FILE/WEB_TLS_KEY_FILE: the token and the session cookie cross the network in clear text");
  }

  const grpcPort = await grpcServer.start(protoDir, cfg.bindHost, cfg.grpcPort);
  const httpPort = await http.listen(cfg.httpPort, cfg.bindHost);
  log.info("servers listening", { http_port: httpPort, grpc_port: grpcPort, proto_dir: protoDir });

  const timers = [
    setInterval(() => service.tick(), TICK_MS),
    setInterval(() => {
      rateLimiter.prune(Date.now());
      signInBackoff.prune(Date.now());
    }, 60_000),
    setInterval(() => void sweepRetention(), RETENTION_SWEEP_MS),
  ];
  // Retention: old answers deleted in bounded batches, one commit after another.
  let sweeping = false;
  const sweepRetention = async (): Promise<void> => {
    if (sweeping) return;
    sweeping = true;
    try {
      const deleted = await service.pruneAllFinished(cfg.answerRetentionMs, RETENTION_BATCH);
      if (deleted > 0) log.info("old answers deleted", { deleted, retention_hours: cfg.answerRetentionMs / 3_600_000 });
    } finally {
      sweeping = false;
    }
  };
  void sweepRetention();
  let announced = false;
  mqtt.start({
    message: (msg) => service.onWorkerMessage(msg),
    connected: (firstTime) => {
      if (!firstTime) service.brokerReconnected();
      else service.pump();
      if (announced) return;
      announced = true;
      mqtt.publishLog("info", "master ready");
      log.info("master ready", {
        http: `${scheme}://127.0.0.1:${httpPort}`,
        grpc: `127.0.0.1:${grpcPort}`,
        broker: `${cfg.mqtt.host}:${cfg.mqtt.port}`,
      });
    },
  });

  let stopping = false;
  // Each step is bounded (SHUTDOWN_STEP_MS, then forced) and they run side by
  // side; the store is committed last, so nothing accepted is lost.
  const step = async (name: string, stop: () => Promise<StepEnd>): Promise<void> => {
    const end = await stop().catch((): StepEnd => "failed");
    if (end === "timed_out") log.warn("shutdown step timed out; forced it", { step: name, limit_ms: SHUTDOWN_STEP_MS });
    else if (end === "failed") log.warn("shutdown step failed; forced it", { step: name });
  };
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal, step_limit_ms: SHUTDOWN_STEP_MS });
    timers.forEach(clearInterval);
    await service.flush(); // what is pending is committed and its effects (acks, tasks) go out
    await Promise.all([
      step("web", () => http.close(SHUTDOWN_STEP_MS)),
      step("grpc", () => grpcServer.stop(SHUTDOWN_STEP_MS)),
      step("mqtt", () => mqtt.stop(SHUTDOWN_STEP_MS)),
    ]);
    await service.flush(); // what arrived meanwhile (a result, a query) is kept too
    await store.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  process.stdout.write(
    `${JSON.stringify({ ts: new Date().toISOString(), level: "error", msg: "master failed to start", error: errorMessage(err) })}\n`,
  );
  process.exit(1);
});
