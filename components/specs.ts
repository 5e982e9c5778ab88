// docker.Service arguments for every service, built by pure functions from a
// few settings and references (image names, network id, secret ids), so the
// whole shape of a spec can be read and tested without Pulumi resources.
import type * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import type { LlmProvider, WorkerLanguage } from "./config";
import { durationText } from "./durations";
import { ETCD_COMPACTION_FLAGS } from "./etcdSettings";
import { CONTAINER_PATHS, MASTER_MQTT_USER, MQTT_CONTAINER_PORT, workerMqttUser } from "./mosquitto";
import { NODE_NAME_LABEL, REGISTRY_DIR } from "./scripts";

export const MASTER_HTTP_PORT = 8888;
export const MASTER_GRPC_PORT = 50051;
export const REGISTRY_CONTAINER_PORT = 5000;

/** `docker service ps ai-system_worker-python` must work as in the original project. */
export function serviceName(stackName: string, service: string): string {
  return `${stackName}_${service}`;
}

/** The label `docker stack ls/ps/services` uses, so the stack shows up as a stack. */
export function stackLabels(stackName: string): { label: string; value: string }[] {
  return [{ label: "com.docker.stack.namespace", value: stackName }];
}

const MIB = 1024 * 1024;
const CPU = 1_000_000_000; // nanoCPUs

/** Per-container limits: small enough that four services fit on a 2-core, few-GB VM. */
export const LIMITS = {
  master: { nanoCpus: 1 * CPU, memoryBytes: 512 * MIB },
  mosquitto: { nanoCpus: 0.5 * CPU, memoryBytes: 128 * MIB },
  registry: { nanoCpus: 0.5 * CPU, memoryBytes: 256 * MIB },
  python: { nanoCpus: 0.5 * CPU, memoryBytes: 256 * MIB },
  go: { nanoCpus: 0.5 * CPU, memoryBytes: 128 * MIB },
  java: { nanoCpus: 1 * CPU, memoryBytes: 512 * MIB },
  etcd: { nanoCpus: 0.5 * CPU, memoryBytes: 256 * MIB },
} as const;

// Every field below is declared in the form the docker provider reads back from
// Docker (durations as Go prints them, "1m" not "60s"; the failure ratio with
// one decimal), so a deploy that changes nothing has nothing to update. The
// guard in tests/pulumi/service-state.test.ts holds every service to that.

/**
 * Roll one task at a time; a task that fails its health checks rolls the service back.
 * Swarm counts a task with a health check as running only once it is healthy, so the
 * monitor window after that (15 s) is for crashes right after start; longer would only
 * slow every rollout (two worker replicas: ~40 s instead of ~70 s).
 */
export const UPDATE_CONFIG: docker.types.input.ServiceUpdateConfig = {
  parallelism: 1,
  delay: durationText(5),
  failureAction: "rollback",
  monitor: durationText(15),
  maxFailureRatio: "0.0",
  // stop-first: with one replica per node a new task could not start next to the old one.
  order: "stop-first",
};

export const ROLLBACK_CONFIG: docker.types.input.ServiceRollbackConfig = {
  parallelism: 1,
  delay: durationText(0),
  failureAction: "pause",
  monitor: durationText(15),
  maxFailureRatio: "0.0",
  order: "stop-first",
};

export const RESTART_POLICY: docker.types.input.ServiceTaskSpecRestartPolicy = {
  condition: "any",
  delay: durationText(5),
  maxAttempts: 0,
  window: durationText(60),
};

/**
 * Every container runs with a read-only root filesystem, /tmp in memory, and
 * no Linux capability except those named for it (each explained where it is
 * asked for). `no-new-privileges` cannot be set: neither Swarm's service spec
 * (before API 1.46) nor the docker provider's schema has it (docs/pulumi.md).
 */
function hardened(capAdds: string[] = []): Pick<docker.types.input.ServiceTaskSpecContainerSpec, "readOnly" | "capDrops" | "capAdds"> {
  return { readOnly: true, capDrops: ["ALL"], ...(capAdds.length > 0 && { capAdds }) };
}

/**
 * /tmp as a tmpfs (the root filesystem is read-only): health files, the JVM's perf data, temp files.
 * Mode 1777 like a real /tmp. (Docker 20.10's Swarm gives the mount the mode of the image's own
 * /tmp whatever this says, so every image keeps a 1777 /tmp too; seen on the lab.)
 */
const TMP_MOUNT: docker.types.input.ServiceTaskSpecContainerSpecMount = {
  type: "tmpfs",
  target: "/tmp",
  tmpfsOptions: { sizeBytes: 64 * MIB, mode: 0o1777 },
};

/** `pulumi up` waits until every task runs (and is healthy), so a broken rollout fails the deploy. */
export const CONVERGE_CONFIG: docker.types.input.ServiceConvergeConfig = { delay: durationText(5), timeout: durationText(300) };

const MANAGER_ONLY = ["node.role==manager"];

export interface PublishedPort {
  name: string;
  target: number;
  published: number;
}

/** What every service of the stack shares: its name prefix, how ports are published, the MQTT topic prefix. */
export interface StackServiceSettings {
  stackName: string;
  endpointMode: "vip" | "dnsrr";
  publishMode: "ingress" | "host";
  topicPrefix: string;
}

/** vip|dnsrr and ingress|host come from config; the schema already rejects dnsrr + ingress. */
export function endpointSpec(
  settings: Pick<StackServiceSettings, "endpointMode" | "publishMode">,
  ports: readonly PublishedPort[] = [],
): docker.types.input.ServiceEndpointSpec {
  return {
    mode: settings.endpointMode,
    ...(ports.length > 0 && {
      ports: ports.map((port) => ({
        name: port.name,
        protocol: "tcp",
        targetPort: port.target,
        publishedPort: port.published,
        publishMode: settings.publishMode,
      })),
    }),
  };
}

/** A reference from a service to a Docker secret, mounted at /run/secrets/<fileName>. */
export interface SecretMount {
  secretId: pulumi.Input<string>;
  secretName: pulumi.Input<string>;
  fileName: string;
  fileUid?: string;
  fileGid?: string;
  fileMode?: number;
}

/** A reference from a service to a Docker config. */
export interface ConfigMount {
  configId: pulumi.Input<string>;
  configName: pulumi.Input<string>;
}

export function secretFile(name: string): string {
  return `/run/secrets/${name}`;
}

/** Health check timings; the test itself comes from each image's HEALTHCHECK (Docker inherits it when `tests` is empty). */
function healthTimings(startPeriodSeconds: number): docker.types.input.ServiceTaskSpecContainerSpecHealthcheck {
  return { interval: durationText(10), timeout: durationText(5), retries: 3, startPeriod: durationText(startPeriodSeconds) };
}

function stopGracePeriod(shutdownGraceMs: number): string {
  // Longer than the worker's own grace, so Docker never kills a task that is finishing its work.
  return durationText(Math.ceil(shutdownGraceMs / 1000) + 10);
}

export interface RegistryAuth {
  serverAddress: pulumi.Input<string>;
  username: pulumi.Input<string>;
  password: pulumi.Input<string>;
}

/** The parts every service spec has: name, stack label, rollout, convergence. */
function serviceArgs(settings: StackServiceSettings, service: string, rest: Omit<docker.ServiceArgs, "name" | "labels">): docker.ServiceArgs {
  return {
    name: serviceName(settings.stackName, service),
    labels: stackLabels(settings.stackName),
    ...rest,
    updateConfig: UPDATE_CONFIG,
    rollbackConfig: ROLLBACK_CONFIG,
    convergeConfig: CONVERGE_CONFIG,
  };
}

export interface RegistryRefs {
  image: pulumi.Input<string>;
  /** Changes when the certificate or the password file changes, so the registry restarts and reloads them. */
  revision: pulumi.Input<string>;
  /** The port the registry is published on (on the manager). */
  port: number;
  /**
   * With several managers, the primary's node name: the registry is pinned there (its address
   * is the primary's, and its CA key and files live there). Unset (one manager): any manager.
   */
  pinnedTo?: string;
}

/** The private registry, on the manager, serving TLS with the deploy-time certificate and htpasswd auth. */
export function registryServiceArgs(settings: StackServiceSettings, refs: RegistryRefs): docker.ServiceArgs {
  return serviceArgs(settings, "registry", {
    taskSpec: {
      containerSpec: {
        image: refs.image,
        env: {
          REGISTRY_HTTP_ADDR: `0.0.0.0:${REGISTRY_CONTAINER_PORT}`,
          REGISTRY_HTTP_TLS_CERTIFICATE: "/certs/registry.crt",
          REGISTRY_HTTP_TLS_KEY: "/certs/registry.key",
          REGISTRY_AUTH: "htpasswd",
          REGISTRY_AUTH_HTPASSWD_REALM: "ai-swarm registry",
          REGISTRY_AUTH_HTPASSWD_PATH: "/auth/htpasswd",
          REGISTRY_STORAGE_DELETE_ENABLED: "true",
          // An env change updates in place (container labels force a replacement in some provider versions).
          AI_SWARM_REVISION: refs.revision,
        },
        mounts: [
          { type: "bind", source: `${REGISTRY_DIR}/certs`, target: "/certs", readOnly: true },
          { type: "bind", source: `${REGISTRY_DIR}/auth`, target: "/auth", readOnly: true },
          { type: "volume", source: serviceName(settings.stackName, "registry-data"), target: "/var/lib/registry" },
          TMP_MOUNT,
        ],
        // Runs as root but needs no capability: port 5000, files it owns, data on its volume.
        ...hardened(),
        stopGracePeriod: durationText(10),
      },
      placement: { constraints: refs.pinnedTo === undefined ? MANAGER_ONLY : [`node.labels.${NODE_NAME_LABEL}==${refs.pinnedTo}`] },
      resources: { limits: LIMITS.registry },
      restartPolicy: RESTART_POLICY,
    },
    mode: { replicated: { replicas: 1 } },
    endpointSpec: endpointSpec(settings, [{ name: "registry", target: REGISTRY_CONTAINER_PORT, published: refs.port }]),
  });
}

export interface MosquittoRefs {
  networkId: pulumi.Input<string>;
  /** The broker image, pinned by digest where a registry served it (components/pinnedImages.ts). */
  image: pulumi.Input<string>;
  configFile: ConfigMount;
  aclFile: ConfigMount;
  passwordFile: SecretMount;
  /** Published port, when MQTT is reachable from outside the swarm. */
  publishedPort?: number;
}

/** The uid/gid eclipse-mosquitto:2 runs the broker as: the password file is readable by it alone. */
export const MOSQUITTO_UID = "1883";

export function mosquittoServiceArgs(settings: StackServiceSettings, refs: MosquittoRefs): docker.ServiceArgs {
  const ports: PublishedPort[] = refs.publishedPort === undefined ? [] : [{ name: "mqtt", target: MQTT_CONTAINER_PORT, published: refs.publishedPort }];
  return serviceArgs(settings, "mosquitto", {
    taskSpec: {
      containerSpec: {
        image: refs.image,
        args: ["mosquitto", "-c", CONTAINER_PATHS.configFile],
        configs: [
          { ...refs.configFile, fileName: CONTAINER_PATHS.configFile, fileMode: 0o444 },
          { ...refs.aclFile, fileName: CONTAINER_PATHS.aclFile, fileMode: 0o444 },
        ],
        secrets: [refs.passwordFile],
        mounts: [
          { type: "volume", source: serviceName(settings.stackName, "mosquitto-data"), target: CONTAINER_PATHS.dataDir.replace(/\/$/, "") },
          TMP_MOUNT,
        ],
        // Starts as root like eclipse-mosquitto:2: its entrypoint hands /mosquitto to the broker's user
        // (CHOWN), then the broker drops to that user (SETUID, SETGID).
        ...hardened(["CHOWN", "SETUID", "SETGID"]),
        stopGracePeriod: durationText(10),
      },
      networksAdvanceds: [{ id: refs.networkId, aliases: [MOSQUITTO_ALIAS] }],
      placement: { constraints: MANAGER_ONLY },
      resources: { limits: LIMITS.mosquitto },
      restartPolicy: RESTART_POLICY,
    },
    mode: { replicated: { replicas: 1 } },
    endpointSpec: endpointSpec(settings, ports),
  });
}

/** What the master and the workers both need: their image from the private registry, the overlay, the gRPC token, their MQTT password. */
export interface AppRefs {
  networkId: pulumi.Input<string>;
  image: pulumi.Input<string>;
  registryAuth: RegistryAuth;
  grpcToken: SecretMount;
  mqttPassword: SecretMount;
}

/** DNS names of the broker and the master on the stack's overlay network (service names have an underscore). */
export const MOSQUITTO_ALIAS = "mosquitto";
export const MASTER_ALIAS = "master";

/** Environment shared by the master and the workers. */
function brokerEnv(settings: StackServiceSettings, username: string, passwordFile: string): Record<string, string> {
  return {
    // The network alias, not the service name: "<stack>_mosquitto" has an underscore,
    // which is no valid DNS host name (Java's URI and grpc-java refuse it).
    MQTT_HOST: MOSQUITTO_ALIAS,
    MQTT_PORT: String(MQTT_CONTAINER_PORT),
    MQTT_USERNAME: username,
    MQTT_PASSWORD_FILE: passwordFile,
    MQTT_TOPIC_PREFIX: settings.topicPrefix,
  };
}

/** The front door's Docker secrets (components/webAccess.ts), each absent when its part is off. */
export interface WebRefs {
  certificate?: SecretMount;
  privateKey?: SecretMount;
  token?: SecretMount;
  /** Serve /metrics without the token. */
  metricsOpen: boolean;
}

/** The master's store in a stack with more than one manager: the etcd members and its client certificate. */
export interface MasterEtcdRefs {
  /** Every member's client URL. */
  endpoints: readonly string[];
  ca: SecretMount;
  certificate: SecretMount;
  privateKey: SecretMount;
}

/** Leader and standby (images/master/README.md, leadership): two masters, never two on one manager. */
export const MASTER_ETCD_REPLICAS = 2;

export interface MasterRefs extends AppRefs {
  /** STORE=etcd on these members; absent, SQLite on the manager's volume (a one-manager stack). */
  etcd?: MasterEtcdRefs;
  web: WebRefs;
  /** The published port of the page and the REST API. */
  webPort: number;
  /** The timings the stack config sets; unset ones keep the image's default. */
  timings: MasterTimings;
}

/** The master's timings of proto/worker-settings.json, as far as the stack config sets them. */
export interface MasterTimings {
  heartbeatTimeoutMs?: number;
  leaseMs?: number;
  taskTimeoutMs?: number;
}

/** The variables whose value the stack config sets, as strings; an unset one is left out (the image's default holds). */
function setVariables(values: Record<string, number | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).flatMap(([name, value]) => (value === undefined ? [] : [[name, String(value)]])));
}

/** The master's front-door variables (images/master/README.md): HTTPS when a certificate is mounted, the token when set. */
function webEnv(web: WebRefs): Record<string, string> {
  return {
    ...(web.certificate && { WEB_TLS_CERT_FILE: secretFile(web.certificate.fileName) }),
    ...(web.privateKey && { WEB_TLS_KEY_FILE: secretFile(web.privateKey.fileName) }),
    ...(web.token && { WEB_AUTH_TOKEN_FILE: secretFile(web.token.fileName) }),
    ...(web.metricsOpen && { WEB_METRICS_OPEN: "true" }),
  };
}

/** The master's store variables: SQLite on its volume, or etcd with its TLS files as Docker secrets. */
function storeEnv(etcd: MasterEtcdRefs | undefined): Record<string, string> {
  if (etcd === undefined) return { DB_PATH: "/data/master.db" };
  return {
    STORE: "etcd",
    ETCD_ENDPOINTS: etcd.endpoints.join(","),
    ETCD_CA_FILE: secretFile(etcd.ca.fileName),
    ETCD_CERT_FILE: secretFile(etcd.certificate.fileName),
    ETCD_KEY_FILE: secretFile(etcd.privateKey.fileName),
  };
}

export function masterServiceArgs(settings: StackServiceSettings, refs: MasterRefs): docker.ServiceArgs {
  const { web, etcd } = refs;
  const webSecrets = [web.certificate, web.privateKey, web.token].filter((mount): mount is SecretMount => mount !== undefined);
  const etcdSecrets = etcd === undefined ? [] : [etcd.ca, etcd.certificate, etcd.privateKey];
  return serviceArgs(settings, "master", {
    auth: refs.registryAuth,
    taskSpec: {
      containerSpec: {
        image: refs.image,
        env: {
          HTTP_PORT: String(MASTER_HTTP_PORT),
          GRPC_PORT: String(MASTER_GRPC_PORT),
          ...brokerEnv(settings, MASTER_MQTT_USER, secretFile(refs.mqttPassword.fileName)),
          GRPC_TOKEN_FILE: secretFile(refs.grpcToken.fileName),
          ...storeEnv(etcd),
          ...webEnv(web),
          ...setVariables({
            HEARTBEAT_TIMEOUT_MS: refs.timings.heartbeatTimeoutMs,
            LEASE_MS: refs.timings.leaseMs,
            TASK_TIMEOUT_MS: refs.timings.taskTimeoutMs,
          }),
        },
        secrets: [refs.grpcToken, refs.mqttPassword, ...webSecrets, ...etcdSecrets],
        // SQLite: the queue lives on this volume, so the master stays on the manager that holds it.
        // etcd: nothing on the node; any manager will do.
        mounts: etcd === undefined ? [{ type: "volume", source: serviceName(settings.stackName, "master-data"), target: "/data" }, TMP_MOUNT] : [TMP_MOUNT],
        // The test is the image's own HEALTHCHECK (it knows whether it serves HTTPS); the spec sets the timings.
        healthcheck: healthTimings(20),
        ...hardened(),
        stopGracePeriod: durationText(20),
      },
      networksAdvanceds: [{ id: refs.networkId, aliases: [MASTER_ALIAS] }],
      placement: etcd === undefined ? { constraints: MANAGER_ONLY } : { constraints: MANAGER_ONLY, maxReplicas: 1 },
      resources: { limits: LIMITS.master },
      restartPolicy: RESTART_POLICY,
    },
    mode: { replicated: { replicas: etcd === undefined ? 1 : MASTER_ETCD_REPLICAS } },
    endpointSpec: endpointSpec(settings, [{ name: "web", target: MASTER_HTTP_PORT, published: refs.webPort }]),
  });
}

/** How a worker asks its LLM (config llm.*, without the key). */
export interface LlmSettings {
  provider: LlmProvider;
  baseUrl?: string;
  model?: string;
}

/** What one worker service runs: its language, how many, and the worker settings from config. */
export interface WorkerSettings {
  language: WorkerLanguage;
  replicas: number;
  maxReplicasPerNode: number;
  simulatedWorkMs: number;
  shutdownGraceMs: number;
  /** HEARTBEAT_INTERVAL_MS when the stack config sets it; unset, the image's default. */
  heartbeatIntervalMs?: number;
  llm: LlmSettings;
}

export interface WorkerRefs extends AppRefs {
  llmApiKey?: SecretMount;
}

/**
 * Provider settings per docs/protocol.md "Providers": the key goes to the
 * variable of the provider that uses it (auto uses a server key for Gemini and
 * a base URL for an OpenAI-compatible server).
 */
export function llmEnv(llm: LlmSettings, apiKeyFile: string | undefined): Record<string, string> {
  const env: Record<string, string> = { LLM_PROVIDER: llm.provider };
  const keyVariable = llm.provider === "openai" ? "OPENAI_API_KEY_FILE" : "GEMINI_API_KEY_FILE";
  if (apiKeyFile !== undefined && llm.provider !== "offline") env[keyVariable] = apiKeyFile;
  if (llm.baseUrl !== undefined) env[llm.provider === "gemini" ? "GEMINI_BASE_URL" : "OPENAI_BASE_URL"] = llm.baseUrl;
  if (llm.model !== undefined) env[llm.provider === "gemini" ? "GEMINI_MODEL" : "OPENAI_MODEL"] = llm.model;
  return env;
}

export function workerServiceArgs(settings: StackServiceSettings, worker: WorkerSettings, refs: WorkerRefs): docker.ServiceArgs {
  const { language } = worker;
  const secrets = [refs.grpcToken, refs.mqttPassword, ...(refs.llmApiKey ? [refs.llmApiKey] : [])];
  return serviceArgs(settings, `worker-${language}`, {
    auth: refs.registryAuth,
    taskSpec: {
      containerSpec: {
        image: refs.image,
        env: {
          // Swarm expands the templates per task: every worker reports the VM it runs on, and
          // its slot keeps the default worker ids of one service's replicas on a VM apart.
          NODE_HOSTNAME: "{{.Node.Hostname}}",
          TASK_SLOT: "{{.Task.Slot}}",
          ...brokerEnv(settings, workerMqttUser(language), secretFile(refs.mqttPassword.fileName)),
          MASTER_GRPC_ADDR: `${MASTER_ALIAS}:${MASTER_GRPC_PORT}`,
          GRPC_TOKEN_FILE: secretFile(refs.grpcToken.fileName),
          ...llmEnv(worker.llm, refs.llmApiKey && secretFile(refs.llmApiKey.fileName)),
          SIMULATED_WORK_MS: String(worker.simulatedWorkMs),
          SHUTDOWN_GRACE_MS: String(worker.shutdownGraceMs),
          ...setVariables({ HEARTBEAT_INTERVAL_MS: worker.heartbeatIntervalMs }),
        },
        secrets,
        healthcheck: healthTimings(language === "java" ? 40 : 20),
        mounts: [TMP_MOUNT],
        ...hardened(),
        stopGracePeriod: stopGracePeriod(worker.shutdownGraceMs),
      },
      networksAdvanceds: [{ id: refs.networkId }],
      placement: { maxReplicas: worker.maxReplicasPerNode },
      resources: { limits: LIMITS[language] },
      restartPolicy: RESTART_POLICY,
    },
    mode: { replicated: { replicas: worker.replicas } },
    endpointSpec: endpointSpec(settings),
  });
}

/** etcd's ports in every member's container, on the stack network only (never published). */
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/** The member's name, service suffix and DNS alias on the stack network (`etcd-<node>`). */
export function etcdMemberName(node: string): string {
  return `etcd-${node}`;
}

/** The client URL of the member on `node`, as the master and the other members reach it. */
export function etcdClientUrl(node: string): string {
  return `https://${etcdMemberName(node)}:${ETCD_CLIENT_PORT}`;
}

export function etcdPeerUrl(node: string): string {
  return `https://${etcdMemberName(node)}:${ETCD_PEER_PORT}`;
}

export interface EtcdMemberRefs {
  networkId: pulumi.Input<string>;
  /** images/etcd, pinned by the digest its build pushed. */
  image: pulumi.Input<string>;
  registryAuth: RegistryAuth;
  /** The stack CA's certificate, and this member's certificate and key (server and client). */
  ca: SecretMount;
  certificate: SecretMount;
  privateKey: SecretMount;
}

/** Where the member's volume is mounted; etcd's data directory is below it (etcd makes it 0700). */
const ETCD_VOLUME_TARGET = "/var/lib/etcd";

/**
 * The etcd member on `node` (images/etcd/README.md): pinned to that node by its
 * ai-swarm.node label, its own volume, TLS with client certificates on the peer
 * and the client port, the settings as etcd's own ETCD_* variables (the
 * entrypoint reads them to bootstrap or join), the compaction flags as arguments.
 * `members` is every manager's node name, in config order.
 */
export function etcdServiceArgs(settings: StackServiceSettings, node: string, members: readonly string[], refs: EtcdMemberRefs): docker.ServiceArgs {
  if (!members.includes(node)) throw new Error(`etcd member ${node} is not one of the members (${members.join(", ")})`);
  const name = etcdMemberName(node);
  const tls = { ca: secretFile(refs.ca.fileName), cert: secretFile(refs.certificate.fileName), key: secretFile(refs.privateKey.fileName) };
  return serviceArgs(settings, name, {
    auth: refs.registryAuth,
    taskSpec: {
      containerSpec: {
        image: refs.image,
        args: [...ETCD_COMPACTION_FLAGS],
        env: {
          ETCD_NAME: name,
          ETCD_DATA_DIR: `${ETCD_VOLUME_TARGET}/data`,
          ETCD_LISTEN_PEER_URLS: `https://0.0.0.0:${ETCD_PEER_PORT}`,
          ETCD_LISTEN_CLIENT_URLS: `https://0.0.0.0:${ETCD_CLIENT_PORT}`,
          ETCD_INITIAL_ADVERTISE_PEER_URLS: etcdPeerUrl(node),
          ETCD_ADVERTISE_CLIENT_URLS: etcdClientUrl(node),
          ETCD_INITIAL_CLUSTER: members.map((member) => `${etcdMemberName(member)}=${etcdPeerUrl(member)}`).join(","),
          ETCD_INITIAL_CLUSTER_TOKEN: serviceName(settings.stackName, "etcd"),
          CLUSTER_ENDPOINTS: members.map(etcdClientUrl).join(","),
          ETCD_CLIENT_CERT_AUTH: "true",
          ETCD_TRUSTED_CA_FILE: tls.ca,
          ETCD_CERT_FILE: tls.cert,
          ETCD_KEY_FILE: tls.key,
          ETCD_PEER_CLIENT_CERT_AUTH: "true",
          ETCD_PEER_TRUSTED_CA_FILE: tls.ca,
          ETCD_PEER_CERT_FILE: tls.cert,
          ETCD_PEER_KEY_FILE: tls.key,
          ETCD_LOGGER: "zap",
        },
        secrets: [refs.ca, refs.certificate, refs.privateKey],
        mounts: [{ type: "volume", source: serviceName(settings.stackName, `etcd-data-${node}`), target: ETCD_VOLUME_TARGET }, TMP_MOUNT],
        // Runs as root (the volume's owner) and needs no capability: ports above 1024, its own files.
        ...hardened(),
        stopGracePeriod: durationText(20),
      },
      networksAdvanceds: [{ id: refs.networkId, aliases: [name] }],
      placement: { constraints: [`node.labels.${NODE_NAME_LABEL}==${node}`] },
      resources: { limits: LIMITS.etcd },
      restartPolicy: RESTART_POLICY,
    },
    mode: { replicated: { replicas: 1 } },
    // DNS round-robin whatever endpointMode says: a member accepts a peer only when the peer's
    // certificate name (etcd-<node>) resolves to the address the connection comes from (etcd
    // checks peer certificates' DNS SANs since 3.2), and a virtual IP is not that address.
    endpointSpec: endpointSpec({ ...settings, endpointMode: "dnsrr" }),
  });
}
