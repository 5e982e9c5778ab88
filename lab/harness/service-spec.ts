// The heart of the live harness: a pure, field-by-field translation of the
// inputs of a @pulumi/docker `docker.Service` (camelCase, as the TypeScript SDK
// sends them; see node_modules/@pulumi/docker/types/input.d.ts) into the
// Docker Engine API `ServiceSpec` (PascalCase, API v1.41, the engine in the lab
// VMs). Durations are Go strings ("10s") in Pulumi and nanoseconds in the API.
//
// Every object is read with `fieldsOf`, which refuses keys not listed here: an
// input this file does not translate fails loudly, naming the field, instead
// of being silently dropped from the deployed service.
import { parseDurationNs } from "./duration";
import {
  compact,
  fieldsOf,
  InputError,
  type Json,
  type JsonObject,
  oneOf,
  opt,
  optBoolean,
  optNumber,
  optObjectList,
  optString,
  optStringList,
  optStringMap,
  reqString,
} from "./json";

/** Engine API JSON: plain objects whose keys are the API's own field names. */
export type ApiObject = { [key: string]: unknown };

/** Registry credentials for pulling the service's image (X-Registry-Auth). */
export interface RegistryAuth {
  serverAddress: string;
  username?: string;
  password?: string;
}

/** The provider waits for the service to converge only when this is set. */
export interface ConvergeSettings {
  delayMs: number;
  timeoutMs: number;
}

export interface TranslatedService {
  spec: ApiObject;
  auth?: RegistryAuth;
  converge?: ConvergeSettings;
}

const SERVICE_FIELDS = [
  "name", "labels", "taskSpec", "mode", "updateConfig", "rollbackConfig", "endpointSpec", "auth", "convergeConfig",
] as const;

/** Translates the whole `docker.Service` input object. `name` must already be set. */
export function translateService(inputs: JsonObject): TranslatedService {
  const path = "docker.Service";
  const service = fieldsOf(inputs, path, SERVICE_FIELDS);
  const spec: ApiObject = compact({
    Name: reqString(service, "name", path),
    Labels: labelsToMap(service, "labels", path),
    TaskTemplate: taskSpec(opt(service, "taskSpec"), `${path}.taskSpec`),
    Mode: mode(opt(service, "mode"), `${path}.mode`),
    UpdateConfig: updateConfig(opt(service, "updateConfig"), `${path}.updateConfig`, ["pause", "continue", "rollback"]),
    RollbackConfig: updateConfig(opt(service, "rollbackConfig"), `${path}.rollbackConfig`, ["pause", "continue"]),
    EndpointSpec: endpointSpec(opt(service, "endpointSpec"), `${path}.endpointSpec`),
  });
  return compact({
    spec,
    auth: serviceAuth(opt(service, "auth"), `${path}.auth`),
    converge: convergeConfig(opt(service, "convergeConfig"), `${path}.convergeConfig`),
  });
}

// ---- task template ---------------------------------------------------------

function taskSpec(value: Json | undefined, path: string): ApiObject {
  if (value === undefined) throw new InputError(`${path}: is required`);
  const task = fieldsOf(value, path, [
    "containerSpec", "forceUpdate", "logDriver", "networksAdvanceds", "placement", "resources", "restartPolicy", "runtime",
  ]);
  return compact({
    ContainerSpec: containerSpec(opt(task, "containerSpec"), `${path}.containerSpec`),
    ForceUpdate: optNumber(task, "forceUpdate", path),
    LogDriver: logDriver(opt(task, "logDriver"), `${path}.logDriver`),
    Networks: optObjectList(task, "networksAdvanceds", path)?.map((net, i) => networkAttachment(net, `${path}.networksAdvanceds[${i}]`)),
    Placement: placement(opt(task, "placement"), `${path}.placement`),
    Resources: resources(opt(task, "resources"), `${path}.resources`),
    RestartPolicy: restartPolicy(opt(task, "restartPolicy"), `${path}.restartPolicy`),
    Runtime: optString(task, "runtime", path),
  });
}

const CONTAINER_FIELDS = [
  "image", "args", "commands", "env", "hostname", "mounts", "secrets", "configs", "healthcheck", "stopGracePeriod",
  "stopSignal", "user", "dir", "labels", "groups", "hosts", "dnsConfig", "privileges", "readOnly", "init", "isolation",
  "sysctl", "capAdds", "capDrops",
] as const;

function containerSpec(value: Json | undefined, path: string): ApiObject {
  if (value === undefined) throw new InputError(`${path}: is required`);
  const c = fieldsOf(value, path, CONTAINER_FIELDS);
  return compact({
    Image: reqString(c, "image", path),
    Args: optStringList(c, "args", path),
    Command: optStringList(c, "commands", path),
    Env: envList(optStringMap(c, "env", path)),
    Hostname: optString(c, "hostname", path),
    Dir: optString(c, "dir", path),
    User: optString(c, "user", path),
    Groups: optStringList(c, "groups", path),
    Labels: labelsToMap(c, "labels", path),
    Mounts: optObjectList(c, "mounts", path)?.map((m, i) => mount(m, `${path}.mounts[${i}]`)),
    Secrets: optObjectList(c, "secrets", path)?.map((s, i) => secretReference(s, `${path}.secrets[${i}]`)),
    Configs: optObjectList(c, "configs", path)?.map((s, i) => configReference(s, `${path}.configs[${i}]`)),
    // The provider's expand always sends a health config (healthcheck is Optional+Computed): an empty one
    // inherits the image's HEALTHCHECK, and Docker reads it back as zero durations.
    HealthCheck: healthcheck(opt(c, "healthcheck"), `${path}.healthcheck`) ?? {},
    StopGracePeriod: durationField(c, "stopGracePeriod", path),
    StopSignal: optString(c, "stopSignal", path),
    Hosts: optObjectList(c, "hosts", path)?.map((h, i) => hostEntry(h, `${path}.hosts[${i}]`)),
    DNSConfig: dnsConfig(opt(c, "dnsConfig"), `${path}.dnsConfig`),
    Privileges: privileges(opt(c, "privileges"), `${path}.privileges`),
    ReadOnly: optBoolean(c, "readOnly", path),
    Init: optBoolean(c, "init", path),
    Isolation: oneOf(optString(c, "isolation", path), ["default", "process", "hyperv"], `${path}.isolation`),
    Sysctls: optStringMap(c, "sysctl", path),
    CapabilityAdd: optStringList(c, "capAdds", path),
    CapabilityDrop: optStringList(c, "capDrops", path),
  });
}

/** {A: "1"} → ["A=1"], in a stable (sorted) order so re-runs produce the same spec. */
function envList(env: Record<string, string> | undefined): string[] | undefined {
  if (env === undefined) return undefined;
  return Object.keys(env)
    .sort()
    .map((key) => `${key}=${env[key]}`);
}

function mount(m: JsonObject, path: string): ApiObject {
  const f = fieldsOf(m, path, ["type", "target", "source", "readOnly", "bindOptions", "volumeOptions", "tmpfsOptions"]);
  return compact({
    Type: oneOf(reqString(f, "type", path), ["bind", "volume", "tmpfs", "npipe"], `${path}.type`),
    Target: reqString(f, "target", path),
    Source: optString(f, "source", path),
    ReadOnly: optBoolean(f, "readOnly", path),
    BindOptions: bindOptions(opt(f, "bindOptions"), `${path}.bindOptions`),
    VolumeOptions: volumeOptions(opt(f, "volumeOptions"), `${path}.volumeOptions`),
    TmpfsOptions: tmpfsOptions(opt(f, "tmpfsOptions"), `${path}.tmpfsOptions`),
  });
}

function bindOptions(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["propagation"]);
  const propagations = ["private", "rprivate", "shared", "rshared", "slave", "rslave"] as const;
  return compact({ Propagation: oneOf(optString(f, "propagation", path), propagations, `${path}.propagation`) });
}

function volumeOptions(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["noCopy", "labels", "driverName", "driverOptions"]);
  const driverName = optString(f, "driverName", path);
  const driverOptions = optStringMap(f, "driverOptions", path);
  return compact({
    NoCopy: optBoolean(f, "noCopy", path),
    Labels: labelsToMap(f, "labels", path),
    DriverConfig: driverName || driverOptions ? compact({ Name: driverName, Options: driverOptions }) : undefined,
  });
}

function tmpfsOptions(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["sizeBytes", "mode"]);
  return compact({ SizeBytes: optNumber(f, "sizeBytes", path), Mode: optNumber(f, "mode", path) });
}

/** Docker's default file mode for secrets and configs (0444), as the provider documents. */
const DEFAULT_FILE_MODE = 0o444;

function fileTarget(f: JsonObject, path: string): ApiObject {
  return {
    Name: reqString(f, "fileName", path),
    UID: optString(f, "fileUid", path) ?? "0",
    GID: optString(f, "fileGid", path) ?? "0",
    Mode: optNumber(f, "fileMode", path) ?? DEFAULT_FILE_MODE,
  };
}

function secretReference(s: JsonObject, path: string): ApiObject {
  const f = fieldsOf(s, path, ["secretId", "secretName", "fileName", "fileUid", "fileGid", "fileMode"]);
  return compact({
    File: fileTarget(f, path),
    SecretID: reqString(f, "secretId", path),
    SecretName: optString(f, "secretName", path),
  });
}

function configReference(s: JsonObject, path: string): ApiObject {
  const f = fieldsOf(s, path, ["configId", "configName", "fileName", "fileUid", "fileGid", "fileMode"]);
  return compact({
    File: fileTarget(f, path),
    ConfigID: reqString(f, "configId", path),
    ConfigName: optString(f, "configName", path),
  });
}

function healthcheck(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["tests", "interval", "timeout", "retries", "startPeriod"]);
  const test = optStringList(f, "tests", path);
  if (test && test.length > 0 && !["NONE", "CMD", "CMD-SHELL"].includes(test[0] as string)) {
    throw new InputError(`${path}.tests: must start with NONE, CMD or CMD-SHELL (got "${test[0]}")`);
  }
  return compact({
    Test: test,
    Interval: durationField(f, "interval", path),
    Timeout: durationField(f, "timeout", path),
    Retries: optNumber(f, "retries", path),
    StartPeriod: durationField(f, "startPeriod", path),
  });
}

/** /etc/hosts line format the API documents: "IP_address canonical_hostname". */
function hostEntry(h: JsonObject, path: string): string {
  const f = fieldsOf(h, path, ["host", "ip"]);
  return `${reqString(f, "ip", path)} ${reqString(f, "host", path)}`;
}

function dnsConfig(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["nameservers", "searches", "options"]);
  return compact({
    Nameservers: optStringList(f, "nameservers", path),
    Search: optStringList(f, "searches", path),
    Options: optStringList(f, "options", path),
  });
}

function privileges(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["credentialSpec", "seLinuxContext"]);
  const cred = opt(f, "credentialSpec");
  const selinux = opt(f, "seLinuxContext");
  const credPath = `${path}.credentialSpec`;
  const selinuxPath = `${path}.seLinuxContext`;
  const credFields = cred === undefined ? undefined : fieldsOf(cred, credPath, ["file", "registry"]);
  const selinuxFields =
    selinux === undefined ? undefined : fieldsOf(selinux, selinuxPath, ["disable", "user", "role", "type", "level"]);
  return compact({
    CredentialSpec: credFields && compact({ File: optString(credFields, "file", credPath), Registry: optString(credFields, "registry", credPath) }),
    SELinuxContext:
      selinuxFields &&
      compact({
        Disable: optBoolean(selinuxFields, "disable", selinuxPath),
        User: optString(selinuxFields, "user", selinuxPath),
        Role: optString(selinuxFields, "role", selinuxPath),
        Type: optString(selinuxFields, "type", selinuxPath),
        Level: optString(selinuxFields, "level", selinuxPath),
      }),
  });
}

function logDriver(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["name", "options"]);
  return compact({ Name: reqString(f, "name", path), Options: optStringMap(f, "options", path) });
}

/** `id` (preferred) or the deprecated `name`; the API's Target accepts either. */
function networkAttachment(net: JsonObject, path: string): ApiObject {
  const f = fieldsOf(net, path, ["id", "name", "aliases", "driverOpts"]);
  const id = optString(f, "id", path);
  const name = optString(f, "name", path);
  if (id && name) throw new InputError(`${path}: set either id or name, not both (the provider rejects both)`);
  const target = id ?? name;
  if (!target) throw new InputError(`${path}.id: is required (the network to attach)`);
  return compact({
    Target: target,
    Aliases: optStringList(f, "aliases", path),
    DriverOpts: keyValueList(optStringList(f, "driverOpts", path), `${path}.driverOpts`),
  });
}

/** ["a=1"] → {a: "1"}: the provider's list form of driver options. */
function keyValueList(items: string[] | undefined, path: string): Record<string, string> | undefined {
  if (items === undefined) return undefined;
  const out: Record<string, string> = {};
  items.forEach((item, i) => {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new InputError(`${path}[${i}]: "${item}" is not key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  });
  return out;
}

function placement(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["constraints", "maxReplicas", "prefs", "platforms"]);
  return compact({
    Constraints: optStringList(f, "constraints", path),
    MaxReplicas: optNumber(f, "maxReplicas", path),
    Preferences: optStringList(f, "prefs", path)?.map((pref, i) => spreadPreference(pref, `${path}.prefs[${i}]`)),
    Platforms: optObjectList(f, "platforms", path)?.map((p, i) => {
      const pf = fieldsOf(p, `${path}.platforms[${i}]`, ["architecture", "os"]);
      return { Architecture: reqString(pf, "architecture", `${path}.platforms[${i}]`), OS: reqString(pf, "os", `${path}.platforms[${i}]`) };
    }),
  });
}

/** "spread=node.labels.zone" → {Spread: {SpreadDescriptor: "node.labels.zone"}} (the only kind Swarm has). */
function spreadPreference(pref: string, path: string): ApiObject {
  const match = /^spread=(.+)$/.exec(pref);
  if (!match) throw new InputError(`${path}: "${pref}" is not a placement preference (expected spread=<descriptor>)`);
  return { Spread: { SpreadDescriptor: match[1] } };
}

function resources(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["limits", "reservation"]);
  const limits = opt(f, "limits");
  const reservation = opt(f, "reservation");
  return compact({
    Limits: limits === undefined ? undefined : cpuMemory(fieldsOf(limits, `${path}.limits`, ["nanoCpus", "memoryBytes"]), `${path}.limits`),
    Reservations: reservation === undefined ? undefined : reservations(reservation, `${path}.reservation`),
  });
}

function cpuMemory(f: JsonObject, path: string): ApiObject {
  return compact({ NanoCPUs: optNumber(f, "nanoCpus", path), MemoryBytes: optNumber(f, "memoryBytes", path) });
}

function reservations(value: Json, path: string): ApiObject {
  const f = fieldsOf(value, path, ["nanoCpus", "memoryBytes", "genericResources"]);
  const generic = opt(f, "genericResources");
  return compact({ ...cpuMemory(f, path), GenericResources: generic === undefined ? undefined : genericResources(generic, `${path}.genericResources`) });
}

/** "GPU=UUID1" (named) and "SSD=3" (discrete) → the API's GenericResources list. */
function genericResources(value: Json, path: string): ApiObject[] {
  const f = fieldsOf(value, path, ["namedResourcesSpecs", "discreteResourcesSpecs"]);
  const named = Object.entries(keyValueList(optStringList(f, "namedResourcesSpecs", path), `${path}.namedResourcesSpecs`) ?? {});
  const discrete = Object.entries(keyValueList(optStringList(f, "discreteResourcesSpecs", path), `${path}.discreteResourcesSpecs`) ?? {});
  return [
    ...named.map(([Kind, Value]) => ({ NamedResourceSpec: { Kind, Value } })),
    ...discrete.map(([Kind, text]) => {
      const count = Number(text);
      if (!Number.isInteger(count)) throw new InputError(`${path}.discreteResourcesSpecs: ${Kind}=${text} is not an integer`);
      return { DiscreteResourceSpec: { Kind, Value: count } };
    }),
  ];
}

function restartPolicy(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["condition", "delay", "maxAttempts", "window"]);
  return compact({
    Condition: oneOf(optString(f, "condition", path), ["none", "on-failure", "any"], `${path}.condition`),
    Delay: durationField(f, "delay", path),
    MaxAttempts: optNumber(f, "maxAttempts", path),
    Window: durationField(f, "window", path),
  });
}

// ---- service-level blocks --------------------------------------------------

/** No mode means one replica, as the provider defaults it. */
function mode(value: Json | undefined, path: string): ApiObject {
  if (value === undefined) return { Replicated: { Replicas: 1 } };
  const f = fieldsOf(value, path, ["global", "replicated"]);
  const global = optBoolean(f, "global", path) ?? false;
  const replicated = opt(f, "replicated");
  if (global && replicated !== undefined) throw new InputError(`${path}: global and replicated cannot both be set`);
  if (global) return { Global: {} };
  if (replicated === undefined) return { Replicated: { Replicas: 1 } };
  const r = fieldsOf(replicated, `${path}.replicated`, ["replicas"]);
  const replicas = optNumber(r, "replicas", `${path}.replicated`) ?? 1;
  if (!Number.isInteger(replicas) || replicas < 0) throw new InputError(`${path}.replicated.replicas: must be a whole number ≥ 0`);
  return { Replicated: { Replicas: replicas } };
}

/**
 * updateConfig and rollbackConfig share a shape. Inside a block that is set,
 * unset fields take the provider's documented defaults (parallelism 1,
 * delay 0s, failureAction pause, monitor 5s, maxFailureRatio 0.0, order stop-first).
 */
function updateConfig(value: Json | undefined, path: string, actions: readonly string[]): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["parallelism", "delay", "failureAction", "monitor", "maxFailureRatio", "order"]);
  const ratioText = optString(f, "maxFailureRatio", path) ?? "0.0";
  const ratio = Number(ratioText);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new InputError(`${path}.maxFailureRatio: "${ratioText}" is not a number between 0 and 1`);
  }
  return {
    Parallelism: optNumber(f, "parallelism", path) ?? 1,
    Delay: durationField(f, "delay", path) ?? 0,
    FailureAction: oneOf(optString(f, "failureAction", path), actions, `${path}.failureAction`) ?? "pause",
    Monitor: durationField(f, "monitor", path) ?? 5e9,
    MaxFailureRatio: ratio,
    Order: oneOf(optString(f, "order", path), ["stop-first", "start-first"], `${path}.order`) ?? "stop-first",
  };
}

function endpointSpec(value: Json | undefined, path: string): ApiObject | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["mode", "ports"]);
  const endpointMode = oneOf(optString(f, "mode", path), ["vip", "dnsrr"], `${path}.mode`);
  const ports = optObjectList(f, "ports", path)?.map((p, i) => portConfig(p, `${path}.ports[${i}]`));
  if (endpointMode === "dnsrr" && ports?.some((p) => p["PublishMode"] === "ingress")) {
    throw new InputError(`${path}: dnsrr cannot publish ports in ingress mode (Docker refuses it); use publishMode host`);
  }
  return compact({ Mode: endpointMode, Ports: ports });
}

function portConfig(p: JsonObject, path: string): ApiObject {
  const f = fieldsOf(p, path, ["name", "protocol", "targetPort", "publishedPort", "publishMode"]);
  const target = optNumber(f, "targetPort", path);
  if (target === undefined) throw new InputError(`${path}.targetPort: is required`);
  return compact({
    Name: optString(f, "name", path),
    Protocol: oneOf(optString(f, "protocol", path), ["tcp", "udp", "sctp"], `${path}.protocol`) ?? "tcp",
    TargetPort: target,
    PublishedPort: optNumber(f, "publishedPort", path),
    PublishMode: oneOf(optString(f, "publishMode", path), ["ingress", "host"], `${path}.publishMode`) ?? "ingress",
  });
}

function serviceAuth(value: Json | undefined, path: string): RegistryAuth | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["serverAddress", "username", "password"]);
  return compact({
    serverAddress: reqString(f, "serverAddress", path),
    username: optString(f, "username", path),
    password: optString(f, "password", path),
  });
}

/** Provider defaults: check every 7s, give up after 3m. */
function convergeConfig(value: Json | undefined, path: string): ConvergeSettings | undefined {
  if (value === undefined) return undefined;
  const f = fieldsOf(value, path, ["delay", "timeout"]);
  return {
    delayMs: (durationField(f, "delay", path) ?? 7e9) / 1e6,
    timeoutMs: (durationField(f, "timeout", path) ?? 180e9) / 1e6,
  };
}

// ---- shared helpers --------------------------------------------------------

/** [{label, value}] → {label: value}, the API's map form. */
export function labelsToMap(obj: JsonObject, key: string, path: string): Record<string, string> | undefined {
  const list = optObjectList(obj, key, path);
  if (list === undefined) return undefined;
  const out: Record<string, string> = {};
  list.forEach((item, i) => {
    const f = fieldsOf(item, `${path}.${key}[${i}]`, ["label", "value"]);
    out[reqString(f, "label", `${path}.${key}[${i}]`)] = optString(f, "value", `${path}.${key}[${i}]`) ?? "";
  });
  return out;
}

function durationField(obj: JsonObject, key: string, path: string): number | undefined {
  const text = optString(obj, key, path);
  return text === undefined ? undefined : parseDurationNs(text, `${path}.${key}`);
}

/**
 * The X-Registry-Auth header value: URL-safe base64 of the JSON the engine
 * expects, WITH its "=" padding. Docker 20.10 decodes it with Go's padded
 * base64.URLEncoding and, when that fails, silently uses no credentials.
 */
export function registryAuthHeader(auth: RegistryAuth): string {
  const json = JSON.stringify(compact({ username: auth.username, password: auth.password, serveraddress: auth.serverAddress }));
  return Buffer.from(json, "utf8").toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}
