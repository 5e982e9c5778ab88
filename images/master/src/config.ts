// Configuration from the environment, validated with zod before anything starts.
// A bad value stops start-up with a message naming the variable (never its value
// when the variable is a secret).
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Config {
  httpPort: number;
  grpcPort: number;
  bindHost: string;
  mqtt: {
    host: string;
    port: number;
    username?: string;
    password?: string;
    tls: boolean;
    caFile?: string;
    topicPrefix: string;
  };
  grpcToken: string;
  dbPath: string;
  maxQueryChars: number;
  maxQueuedPerSession: number;
  leaseMs: number;
  taskTimeoutMs: number;
  heartbeatTimeoutMs: number;
  rateLimitPerMinute: number;
  logLevel: LogLevel;
  web: WebConfig;
  /** Which engine keeps the queries: SQLite at dbPath, or etcd (then `etcd` is set). */
  store: "sqlite" | "etcd";
  etcd?: EtcdConfig;
  /** Finished queries older than this are deleted (both engines). */
  answerRetentionMs: number;
  /** Past this many finished queries, the oldest are deleted (both engines). */
  answerRetentionMax: number;
  /** STORE=etcd: TTL of the leader lease, in seconds (see leader.ts). */
  leaderTtlS: number;
}

/** The etcd members and this master's client certificate (PEM contents, read from the files). */
export interface EtcdConfig {
  endpoints: string[];
  ca: string;
  cert: string;
  key: string;
  /** Key prefix of this stack's state, e.g. `/ai-swarm`. */
  prefix: string;
}

/** The front door of the web port. */
export interface WebConfig {
  /** PEM certificate (chain) and key: the port serves HTTPS. */
  tls?: { cert: string; key: string };
  /** Access control is on when set. */
  authToken?: string;
  metricsOpen: boolean;
  sessionTtlMs: number;
}

export class ConfigError extends Error {}

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().min(1);
const nonNegativeInt = z.coerce.number().int().min(0);
const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
// Topic prefix: MQTT wildcards and empty levels would break every topic we build.
const topicPrefix = z
  .string()
  .min(1)
  .regex(/^[^#+\s]+$/, "must not contain '#', '+' or spaces")
  .refine((v) => !v.startsWith("/") && !v.endsWith("/"), "must not start or end with '/'");

// Plain variables: name -> schema with default. Empty strings count as unset.
const envSchema = z.object({
  HTTP_PORT: port.default(8888),
  GRPC_PORT: port.default(50051),
  BIND_HOST: z.string().min(1).default("0.0.0.0"),
  MQTT_HOST: z.string().min(1).default("mosquitto"),
  MQTT_PORT: port.default(1883),
  MQTT_USERNAME: z.string().min(1).optional(),
  MQTT_TLS: bool.default(false),
  MQTT_CA_FILE: z.string().min(1).optional(),
  MQTT_TOPIC_PREFIX: topicPrefix.default("ai-system"),
  DB_PATH: z.string().min(1).default("/data/master.db"),
  MAX_QUERY_CHARS: positiveInt.max(16000).default(4000),
  MAX_QUEUED_PER_SESSION: positiveInt.default(10),
  LEASE_MS: positiveInt.default(30000),
  TASK_TIMEOUT_MS: positiveInt.default(300000),
  HEARTBEAT_TIMEOUT_MS: positiveInt.default(7000),
  RATE_LIMIT_PER_MINUTE: nonNegativeInt.default(120),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  WEB_TLS_CERT_FILE: z.string().min(1).optional(),
  WEB_TLS_KEY_FILE: z.string().min(1).optional(),
  WEB_METRICS_OPEN: bool.default(false),
  // 1 minute to 30 days; 12 hours by default.
  WEB_SESSION_TTL_MS: positiveInt.min(60_000).max(30 * 24 * 3_600_000).default(12 * 3_600_000),
  STORE: z.enum(["sqlite", "etcd"]).default("sqlite"),
  ETCD_ENDPOINTS: z.string().min(1).optional(),
  ETCD_CA_FILE: z.string().min(1).optional(),
  ETCD_CERT_FILE: z.string().min(1).optional(),
  ETCD_KEY_FILE: z.string().min(1).optional(),
  ETCD_PREFIX: z
    .string()
    .regex(/^(\/[A-Za-z0-9._-]+)+$/, "must be like /ai-swarm: '/'-separated names of letters, digits, '.', '_', '-', no trailing '/'")
    .default("/ai-swarm"),
  // A week by default; at least 36 s (0.01 h), at most ten years.
  ANSWER_RETENTION_HOURS: z.coerce.number().min(0.01).max(87_600).default(168),
  // How many finished queries are kept at most (the README's "Retention, bounded" has the sizes):
  // at least 100 (a page's history outlives the next sweep), at most a million (each sweep
  // counts them on SQLite: 1 ms at 50 000, 22 ms at a million; npm run bench:retention).
  ANSWER_RETENTION_MAX: positiveInt.min(100).max(1_000_000).default(50_000),
  // Failover takes about this long after a leader dies; below 2 s an event-loop stall or an
  // etcd election (1 s by default) could depose a healthy leader.
  LEADER_TTL_S: z.coerce.number().int().min(2).max(60).default(5),
});

const MIN_WEB_TOKEN_CHARS = 16;

type ReadFile = (path: string) => string;

const defaultReadFile: ReadFile = (path) => readFileSync(path, "utf8");

/** Reads a secret from NAME_FILE (wins) or NAME; trailing newlines are trimmed. */
function readSecret(
  env: NodeJS.ProcessEnv,
  name: string,
  readFile: ReadFile,
  problems: string[],
): string | undefined {
  const file = nonEmpty(env[`${name}_FILE`]);
  if (file !== undefined) {
    try {
      const value = readFile(file).replace(/[\r\n]+$/, "");
      if (value === "") problems.push(`${name}_FILE: file ${file} is empty`);
      return value === "" ? undefined : value;
    } catch {
      problems.push(`${name}_FILE: cannot read file ${file}`);
      return undefined;
    }
  }
  return nonEmpty(env[name]);
}

function canRead(path: string, readFile: ReadFile): boolean {
  try {
    readFile(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A certificate and its key from the files the variables `names` (e.g.
 * WEB_TLS_CERT_FILE, WEB_TLS_KEY_FILE) name: both or neither, readable, PEM,
 * and a matching pair. Problems name the variable, never a file's content.
 */
function readTlsPair(
  env: NodeJS.ProcessEnv,
  names: { cert: string; key: string; purpose: string },
  readFile: ReadFile,
  problems: string[],
): { cert: string; key: string } | undefined {
  const certFile = nonEmpty(env[names.cert]);
  const keyFile = nonEmpty(env[names.key]);
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    const [missing, given] = certFile === undefined ? [names.cert, names.key] : [names.key, names.cert];
    problems.push(`${missing}: required when ${given} is set (${names.purpose} needs both)`);
    return undefined;
  }
  const read = (name: string, path: string): string | undefined => {
    try {
      return readFile(path);
    } catch {
      problems.push(`${name}: cannot read file ${path}`);
      return undefined;
    }
  };
  const cert = read(names.cert, certFile);
  const key = read(names.key, keyFile);
  if (cert === undefined || key === undefined) return undefined;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    problems.push(`${names.cert}: ${certFile} is not a PEM certificate`);
    return undefined;
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) {
      problems.push(`${names.key}: ${keyFile} is not the key of the certificate in ${names.cert}`);
      return undefined;
    }
  } catch {
    problems.push(`${names.key}: ${keyFile} is not a PEM private key`);
    return undefined;
  }
  return { cert, key };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

/** Validates the environment; throws ConfigError listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv, readFile: ReadFile = defaultReadFile): Config {
  const problems: string[] = [];
  const plain: Record<string, string | undefined> = {};
  for (const key of Object.keys(envSchema.shape)) plain[key] = nonEmpty(env[key]);
  const parsed = envSchema.safeParse(plain);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join(".")}: ${issue.message}`);
    }
  }
  if (parsed.success && parsed.data.TASK_TIMEOUT_MS < parsed.data.LEASE_MS) {
    // The rule of proto/worker-settings.json among the master's own timings (its other rules
    // involve the workers' settings and are checked by the Pulumi stack config).
    problems.push(
      `TASK_TIMEOUT_MS: ${parsed.data.TASK_TIMEOUT_MS} must be at least LEASE_MS (${parsed.data.LEASE_MS}): the first lease ends within the task timeout`,
    );
  }
  const mqttPassword = readSecret(env, "MQTT_PASSWORD", readFile, problems);
  const grpcToken = readSecret(env, "GRPC_TOKEN", readFile, problems);
  if (grpcToken === undefined && !problems.some((p) => p.startsWith("GRPC_TOKEN"))) {
    problems.push("GRPC_TOKEN: required (set GRPC_TOKEN or GRPC_TOKEN_FILE)");
  }
  const caFile = parsed.success ? parsed.data.MQTT_CA_FILE : undefined;
  if (caFile !== undefined && !canRead(caFile, readFile)) {
    problems.push(`MQTT_CA_FILE: cannot read file ${caFile}`);
  }
  const webToken = readSecret(env, "WEB_AUTH_TOKEN", readFile, problems);
  if (webToken !== undefined && webToken.length < MIN_WEB_TOKEN_CHARS) {
    const name = nonEmpty(env.WEB_AUTH_TOKEN_FILE) !== undefined ? "WEB_AUTH_TOKEN_FILE" : "WEB_AUTH_TOKEN";
    problems.push(`${name}: the token must be at least ${MIN_WEB_TOKEN_CHARS} characters`);
  }
  const webTls = readTlsPair(env, { cert: "WEB_TLS_CERT_FILE", key: "WEB_TLS_KEY_FILE", purpose: "HTTPS" }, readFile, problems);
  // (checked even when another variable is bad, so every problem is listed at once)
  const etcd = nonEmpty(env.STORE) === "etcd" ? readEtcd(env, parsed.success ? parsed.data.ETCD_PREFIX : "", readFile, problems) : undefined;
  if (!parsed.success || problems.length > 0 || grpcToken === undefined) {
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  const e = parsed.data;
  return {
    httpPort: e.HTTP_PORT,
    grpcPort: e.GRPC_PORT,
    bindHost: e.BIND_HOST,
    mqtt: {
      host: e.MQTT_HOST,
      port: e.MQTT_PORT,
      username: e.MQTT_USERNAME,
      password: mqttPassword,
      tls: e.MQTT_TLS,
      caFile: e.MQTT_CA_FILE,
      topicPrefix: e.MQTT_TOPIC_PREFIX,
    },
    grpcToken,
    dbPath: e.DB_PATH,
    maxQueryChars: e.MAX_QUERY_CHARS,
    maxQueuedPerSession: e.MAX_QUEUED_PER_SESSION,
    leaseMs: e.LEASE_MS,
    taskTimeoutMs: e.TASK_TIMEOUT_MS,
    heartbeatTimeoutMs: e.HEARTBEAT_TIMEOUT_MS,
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    logLevel: e.LOG_LEVEL,
    web: {
      tls: webTls,
      authToken: webToken,
      metricsOpen: e.WEB_METRICS_OPEN,
      sessionTtlMs: e.WEB_SESSION_TTL_MS,
    },
    store: e.STORE,
    etcd,
    answerRetentionMs: Math.round(e.ANSWER_RETENTION_HOURS * 3_600_000),
    answerRetentionMax: e.ANSWER_RETENTION_MAX,
    leaderTtlS: e.LEADER_TTL_S,
  };
}

/**
 * STORE=etcd: the members (https URLs: they take only TLS with client
 * certificates), the CA that signed them and this master's certificate and key.
 */
function readEtcd(env: NodeJS.ProcessEnv, prefix: string, readFile: ReadFile, problems: string[]): EtcdConfig | undefined {
  const before = problems.length;
  const endpoints: string[] = [];
  const list = nonEmpty(env.ETCD_ENDPOINTS);
  if (list === undefined) problems.push("ETCD_ENDPOINTS: required with STORE=etcd (comma-separated https:// URLs of the etcd members)");
  for (const entry of (list ?? "").split(",").map((e) => e.trim()).filter((e) => e !== "")) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      problems.push(`ETCD_ENDPOINTS: "${entry}" is not a URL`);
      continue;
    }
    if (url.protocol !== "https:") problems.push(`ETCD_ENDPOINTS: "${entry}" must be https:// (the members take only TLS with client certificates)`);
    else if (url.port === "" || (url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.username !== "") {
      problems.push(`ETCD_ENDPOINTS: "${entry}" must be https://host:port, nothing else`);
    } else endpoints.push(url.origin);
  }
  let ca: string | undefined;
  const caFile = nonEmpty(env.ETCD_CA_FILE);
  if (caFile === undefined) problems.push("ETCD_CA_FILE: required with STORE=etcd (the CA that signed the etcd members)");
  else {
    try {
      ca = readFile(caFile);
      new X509Certificate(ca);
    } catch {
      problems.push(ca === undefined ? `ETCD_CA_FILE: cannot read file ${caFile}` : `ETCD_CA_FILE: ${caFile} is not a PEM certificate`);
      ca = undefined;
    }
  }
  const pair = readTlsPair(env, { cert: "ETCD_CERT_FILE", key: "ETCD_KEY_FILE", purpose: "the etcd client certificate" }, readFile, problems);
  if (pair === undefined && nonEmpty(env.ETCD_CERT_FILE) === undefined && nonEmpty(env.ETCD_KEY_FILE) === undefined) {
    problems.push("ETCD_CERT_FILE, ETCD_KEY_FILE: required with STORE=etcd (the members authenticate clients by certificate)");
  }
  if (problems.length > before || ca === undefined || pair === undefined) return undefined;
  return { endpoints, ca, cert: pair.cert, key: pair.key, prefix };
}
