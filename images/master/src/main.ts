// Entry point: validate the config, open the database, restore the queue, then
// start gRPC, HTTP (+ Socket.IO) and MQTT. SIGTERM/SIGINT shut down cleanly.
// With STORE=etcd the master first stands by (standby.ts) and campaigns
// (leader.ts); it opens the store, fenced, only once it leads, and exits 1 the
// moment it loses the lease (Swarm starts it again, as a standby).
import { hostname } from "node:os";
import type { Etcd3 } from "etcd3";
import { ConfigError, loadConfig, type Config, type EtcdConfig } from "./config";
import { EtcdMembers } from "./etcdMembers";
import type { Fence } from "./etcdStore";
import { GrpcServer, resolveProtoDir } from "./grpcServer";
import { HttpApi, loadPublicFiles, type HealthFacts } from "./httpServer";
import { Leadership } from "./leader";
import { createLogger, errorMessage, type Logger } from "./log";
import { Metrics } from "./metrics";
import { MqttBridge } from "./mqttBridge";
import { PayloadSchema } from "./protocol";
import { QueryService } from "./queryService";
import { RateLimiter } from "./rateLimit";
import { Scheduler } from "./scheduler";
import { SHUTDOWN_STEP_MS, type StepEnd } from "./shutdown";
import { SignInBackoff } from "./signInBackoff";
import { StandbyServers } from "./standby";
import { createEtcdClient, openStore, storeWhere } from "./storeFactory";

/** A task that loses its worker this many times fails instead of looping forever. */
const MAX_ATTEMPTS = 5;
const OFFLINE_RETENTION_MS = 10 * 60_000;
const TICK_MS = 250;
/** How often finished queries past ANSWER_RETENTION_HOURS or ANSWER_RETENTION_MAX are deleted, and how many per batch. */
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

/** STORE=etcd: the client, the campaign for the leader key, the members /healthz shows. */
interface EtcdRole {
  client: Etcd3;
  leadership: Leadership;
  members: EtcdMembers;
  facts(db: boolean | undefined): Omit<HealthFacts, "mqtt">;
  close(): void;
}

function etcdRole(etcd: EtcdConfig, ttlS: number, httpPort: number, log: Logger): EtcdRole {
  const client = createEtcdClient(etcd);
  const perEndpoint = new Map(etcd.endpoints.map((endpoint) => [endpoint, createEtcdClient({ ...etcd, endpoints: [endpoint] })]));
  const members = new EtcdMembers(etcd.endpoints, perEndpoint);
  members.start();
  const leadership = new Leadership({
    client,
    key: `${etcd.prefix}/leader`,
    value: `${hostname()}:${httpPort} (pid ${process.pid})`,
    ttlS,
    log,
  });
  return {
    client,
    leadership,
    members,
    facts: (db) => {
      const seen = members.members();
      return {
        // Before the store is open (standby): etcd answers if a member that knows a Raft leader does.
        db: db ?? seen.some((m) => m.healthy),
        leader: leadership.leading,
        store: "etcd",
        members: seen,
        current_leader: leadership.leader(),
      };
    },
    close: () => {
      members.close();
      for (const c of perEndpoint.values()) c.close();
      client.close();
    },
  };
}

async function run(cfg: Config, log: Logger): Promise<void> {
  // The .proto and the MQTT payload schema (proto/mqtt/payloads.schema.json) are read here,
  // before anything starts, so a missing file stops start-up with its path.
  const protoDir = resolveProtoDir();
  const payloadSchema = PayloadSchema.load(protoDir);
  const web = cfg.web;
  const webAuth = web.authToken === undefined
    ? undefined
    : { token: web.authToken, sessionTtlMs: web.sessionTtlMs, metricsOpen: web.metricsOpen };
  /** Set once this master leads (the metrics read it; a standby reports an empty queue). */
  let leading: QueryService | undefined;
  const role = cfg.store === "etcd" && cfg.etcd !== undefined ? etcdRole(cfg.etcd, cfg.leaderTtlS, cfg.httpPort, log) : undefined;
  const metrics = new Metrics({
    queueDepth: () => leading?.queueDepth() ?? 0,
    queriesByState: () => leading?.queriesByState() ?? {},
    workers: () => leading?.workers() ?? [],
    leadership: role && (() => ({ leading: role.leadership.leading, transitions: role.leadership.transitions })),
  });
  let ports = { httpPort: cfg.httpPort, grpcPort: cfg.grpcPort };
  let fence: Fence | undefined;
  if (role !== undefined) {
    const standby = new StandbyServers({
      metrics,
      files: loadPublicFiles(),
      health: () => ({ mqtt: false, ...role.facts(undefined) }),
      leader: () => role.leadership.leader(),
      tls: web.tls,
      auth: webAuth,
    });
    ports = { httpPort: await standby.start(cfg.bindHost, cfg.httpPort), grpcPort: cfg.grpcPort };
    const stopStandby = (signal: string): void => {
      log.info("shutting down", { signal, role: "standby" });
      role.leadership.close();
      void standby.close().finally(() => {
        role.close();
        log.info("stopped");
        process.exit(0);
      });
    };
    process.once("SIGTERM", stopStandby);
    process.once("SIGINT", stopStandby);
    // Once it leads, nothing may go out after the lease is lost: not a task, not an answer, not a commit
    // (commits are fenced in etcd anyway). Exiting at once guarantees it; Swarm starts a new standby.
    role.leadership.onLost((reason) => {
      log.error("lost leadership: stopped dispatching; exiting (a restarted master stands by)", { reason });
      process.exit(1);
    });
    log.info("standing by: campaigning for leadership (the gRPC port opens once this master leads)", { http_port: ports.httpPort, ttl_s: cfg.leaderTtlS });
    fence = await role.leadership.campaign().catch(async (error: unknown): Promise<never> => {
      // close() on SIGTERM ends the campaign: stopStandby exits 0 once the ports are closed.
      if (role.leadership.state === "closed") await new Promise<never>(() => undefined);
      throw error;
    });
    process.removeListener("SIGTERM", stopStandby);
    process.removeListener("SIGINT", stopStandby);
    await standby.close();
  }
  const store = await openStore(cfg, fence, role?.client);
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
  leading = service;
  service.setMetrics(metrics);
  const restored = service.restore();
  log.info("queries restored", { ...storeWhere(cfg), ...restored });

  const rateLimiter = new RateLimiter(cfg.rateLimitPerMinute);
  const signInBackoff = new SignInBackoff();
  const grpcServer = new GrpcServer(service, cfg.grpcToken, log, metrics);
  const http = new HttpApi({
    service,
    rateLimiter,
    signInBackoff,
    metrics,
    log,
    maxQueryChars: cfg.maxQueryChars,
    health: () => ({ mqtt: mqtt.connected, ...(role?.facts(store.ping()) ?? { db: store.ping(), leader: true, store: "sqlite" }) }),
    tls: web.tls,
    auth: webAuth,
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

  const grpcPort = await grpcServer.start(protoDir, cfg.bindHost, ports.grpcPort);
  const httpPort = await http.listen(ports.httpPort, cfg.bindHost);
  log.info("servers listening", { http_port: httpPort, grpc_port: grpcPort, proto_dir: protoDir });

  const timers = [
    setInterval(() => service.tick(), TICK_MS),
    setInterval(() => {
      rateLimiter.prune(Date.now());
      signInBackoff.prune(Date.now());
    }, 60_000),
    setInterval(() => void sweepRetention(), RETENTION_SWEEP_MS),
  ];
  // Retention: old answers (by age and by count) deleted in bounded batches, one commit after another.
  const retention = { maxAgeMs: cfg.answerRetentionMs, maxCount: cfg.answerRetentionMax };
  let sweeping = false;
  const sweepRetention = async (): Promise<void> => {
    if (sweeping) return;
    sweeping = true;
    try {
      const deleted = await service.pruneAllFinished(retention, RETENTION_BATCH);
      if (deleted > 0) log.info("old answers deleted", { deleted, retention_hours: retention.maxAgeMs / 3_600_000, retention_max: retention.maxCount });
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
    if (role !== undefined) {
      // Everything accepted is committed: hand over now rather than after the TTL.
      await role.leadership.resign();
      role.close();
    }
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
