// What the docker provider keeps in state for a `docker.Service`, and how it
// diffs a program's declaration against it. The real engine showed (see
// docs/harness.md, "What the real engine showed") that a field declared in a
// form other than the one the provider reads back diffs on every `pulumi up`
// forever, restarting every task. This module is our model of the provider,
// built from the source of kreuzwerker/terraform-provider-docker's
// `docker_service` (schema in resource_docker_service.go, flatten* in
// resource_docker_service_structures.go) as bridged by pulumi-docker, and
// checked against the state the real provider wrote (tests/pulumi/fixtures):
//
//   readBackService(spec)      the provider's Read: an Engine API ServiceSpec
//                              (as Docker stores it) → the state's inputs shape
//   serviceDiff(declared, st)  Terraform's plan for one service: every field
//                              where the declaration and the state differ,
//                              sets compared unordered, schema defaults applied
//
// Used by the guard over index.ts (tests/pulumi/service-state.test.ts) and by
// the live harness after every service it creates or updates, and to decide
// whether a re-run has anything to do. Pure: no I/O.
import { shortDuration } from "../../components/durations";
import { isObject, type Json, type JsonObject } from "./json";

// ---- the schema (the part of docker_service this program can declare) ------

/** A field of the provider's schema. `object` is a MaxItems:1 block, shown by Pulumi as an object. */
export type SchemaNode =
  | { kind: "scalar"; computed?: boolean; default?: Json; forceNew?: boolean }
  | { kind: "object"; fields: Record<string, SchemaNode>; computed?: boolean; forceNew?: boolean }
  | { kind: "list"; elem: SchemaNode; computed?: boolean; forceNew?: boolean }
  | { kind: "set"; elem: SchemaNode; computed?: boolean; forceNew?: boolean }
  | { kind: "map"; computed?: boolean; forceNew?: boolean };

const scalar = (extra: Omit<Extract<SchemaNode, { kind: "scalar" }>, "kind"> = {}): SchemaNode => ({ kind: "scalar", ...extra });
const object = (fields: Record<string, SchemaNode>, extra: { computed?: boolean; forceNew?: boolean } = {}): SchemaNode => ({ kind: "object", fields, ...extra });
const list = (elem: SchemaNode, extra: { computed?: boolean; forceNew?: boolean } = {}): SchemaNode => ({ kind: "list", elem, ...extra });
const set = (elem: SchemaNode, extra: { computed?: boolean; forceNew?: boolean } = {}): SchemaNode => ({ kind: "set", elem, ...extra });
const map = (extra: { computed?: boolean; forceNew?: boolean } = {}): SchemaNode => ({ kind: "map", ...extra });

const labelSet = (extra: { computed?: boolean } = {}) => set(object({ label: scalar(), value: scalar() }), extra);
const fileRef = (idKey: string, nameKey: string) =>
  set(
    object({
      [idKey]: scalar(),
      [nameKey]: scalar(),
      fileName: scalar(),
      fileUid: scalar({ default: "0" }),
      fileGid: scalar({ default: "0" }),
      fileMode: scalar({ default: 0o444 }),
    }),
  );
const updateBlock = () =>
  object({
    parallelism: scalar({ default: 1 }),
    delay: scalar({ default: "0s" }),
    failureAction: scalar({ default: "pause" }),
    monitor: scalar({ default: "5s" }),
    // DiffSuppressFunc suppressEquivalentFloatRatio: "0" and "0.0" do not diff (compared as numbers below).
    maxFailureRatio: scalar({ default: "0.0" }),
    order: scalar({ default: "stop-first" }),
  });

export const SERVICE_SCHEMA: SchemaNode = object({
  name: scalar({ forceNew: true }),
  labels: labelSet({ computed: true }),
  // Never read back: the state keeps what was declared.
  auth: object({ serverAddress: scalar({ forceNew: true }), username: scalar({ forceNew: true }), password: scalar({ forceNew: true }) }, { forceNew: true }),
  convergeConfig: object({ delay: scalar({ default: "7s" }), timeout: scalar({ default: "3m" }) }),
  mode: object(
    {
      // The block is ForceNew in the schema, but a replicas change updates in place (scaling a language updated one service under the real engine).
      global: scalar({ default: false, forceNew: true }),
      replicated: object({ replicas: scalar({ default: 1 }) }, { computed: true }),
    },
    { computed: true },
  ),
  updateConfig: updateBlock(),
  rollbackConfig: updateBlock(),
  endpointSpec: object(
    {
      mode: scalar({ computed: true }),
      ports: list(
        object({
          name: scalar(),
          protocol: scalar({ default: "tcp" }),
          targetPort: scalar(),
          publishedPort: scalar({ computed: true }),
          publishMode: scalar({ default: "ingress" }),
        }),
      ),
    },
    { computed: true },
  ),
  taskSpec: object({
    containerSpec: object({
      image: scalar(),
      labels: labelSet(),
      commands: list(scalar()),
      args: list(scalar()),
      hostname: scalar(),
      env: map(),
      dir: scalar(),
      user: scalar(),
      groups: list(scalar()),
      privileges: object({
        credentialSpec: object({ file: scalar(), registry: scalar() }),
        seLinuxContext: object({ disable: scalar(), user: scalar(), role: scalar(), type: scalar(), level: scalar() }),
      }),
      readOnly: scalar({ default: false }),
      mounts: set(
        object({
          target: scalar(),
          source: scalar(),
          type: scalar(),
          readOnly: scalar({ default: false }),
          bindOptions: object({ propagation: scalar() }),
          volumeOptions: object({ noCopy: scalar(), labels: labelSet(), driverName: scalar(), driverOptions: map() }),
          tmpfsOptions: object({ sizeBytes: scalar(), mode: scalar() }),
        }),
      ),
      stopSignal: scalar(),
      stopGracePeriod: scalar({ computed: true }),
      healthcheck: object(
        {
          tests: list(scalar()),
          interval: scalar({ default: "0s" }),
          timeout: scalar({ default: "0s" }),
          startPeriod: scalar({ default: "0s" }),
          retries: scalar({ default: 0 }),
        },
        { computed: true },
      ),
      hosts: set(object({ host: scalar(), ip: scalar() }), { forceNew: true }),
      dnsConfig: object({ nameservers: list(scalar()), searches: list(scalar()), options: list(scalar()) }, { computed: true }),
      secrets: fileRef("secretId", "secretName"),
      configs: fileRef("configId", "configName"),
      isolation: scalar({ default: "default" }),
      init: scalar({ default: false }),
      sysctl: map({ forceNew: true }),
      capAdds: set(scalar()),
      capDrops: set(scalar()),
    }),
    forceUpdate: scalar({ default: 0 }),
    logDriver: object({ name: scalar(), options: map() }),
    networksAdvanceds: set(object({ id: scalar(), name: scalar(), aliases: set(scalar()), driverOpts: set(scalar()) }), { forceNew: true }),
    placement: object(
      {
        constraints: set(scalar()),
        prefs: set(scalar()),
        maxReplicas: scalar({ default: 0 }),
        platforms: set(object({ architecture: scalar(), os: scalar() })),
      },
      { computed: true },
    ),
    resources: object(
      {
        limits: object({ nanoCpus: scalar(), memoryBytes: scalar() }),
        reservation: object({
          nanoCpus: scalar(),
          memoryBytes: scalar(),
          genericResources: object({ namedResourcesSpecs: set(scalar()), discreteResourcesSpecs: set(scalar()) }),
        }),
      },
      { computed: true },
    ),
    restartPolicy: object({ condition: scalar(), delay: scalar(), maxAttempts: scalar(), window: scalar() }, { computed: true }),
    runtime: scalar({ computed: true }),
  }),
});

// ---- the provider's Read ----------------------------------------------------

type Api = { [key: string]: unknown };
const apiObject = (value: unknown): Api | undefined => (isObject(value) ? (value as Api) : undefined);
const apiList = (value: unknown): Api[] => (Array.isArray(value) ? value.filter(isObject) : []);
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : []);
const nonEmpty = <T>(items: T[]): T[] | undefined => (items.length > 0 ? items : undefined);
const durationOf = (value: unknown): string => shortDuration(typeof value === "number" ? value : 0);

/** The runtime endpoint Docker reports next to the spec (`Endpoint` in GET /services/{id}). */
export interface ServiceEndpoint {
  Spec?: { Mode?: string };
  Ports?: Api[];
}

/**
 * The provider's Read of a service, as `GET /services/{id}` returns it: the
 * state Pulumi keeps, in the shape of the `docker.Service` inputs. `auth` and
 * `convergeConfig` are never read (the state keeps what was declared).
 */
export function readBackService(spec: Api, endpoint: ServiceEndpoint | undefined, kept: { auth?: Json; convergeConfig?: Json } = {}): JsonObject {
  const task = apiObject(spec["TaskTemplate"]) ?? {};
  const mode = apiObject(spec["Mode"]) ?? {};
  const replicated = apiObject(mode["Replicated"]);
  return prune({
    name: spec["Name"],
    labels: labelsOf(spec["Labels"]),
    auth: kept.auth,
    convergeConfig: kept.convergeConfig,
    mode: { global: mode["Global"] !== undefined, ...(replicated && { replicated: { replicas: replicated["Replicas"] ?? 0 } }) },
    updateConfig: updateConfigOf(spec["UpdateConfig"]),
    rollbackConfig: updateConfigOf(spec["RollbackConfig"]),
    endpointSpec: endpointOf(endpoint, apiObject(spec["EndpointSpec"])),
    taskSpec: {
      containerSpec: containerSpecOf(apiObject(task["ContainerSpec"]) ?? {}),
      forceUpdate: task["ForceUpdate"] ?? 0,
      logDriver: logDriverOf(task["LogDriver"]),
      networksAdvanceds: apiList(task["Networks"]).map((net) => ({
        id: net["Target"],
        ...(strings(net["Aliases"]).length > 0 && { aliases: strings(net["Aliases"]) }),
        driverOpts: Object.entries(apiObject(net["DriverOpts"]) ?? {}).map(([key, value]) => `${key}=${String(value)}`),
      })),
      placement: placementOf(apiObject(task["Placement"])),
      resources: resourcesOf(apiObject(task["Resources"])),
      restartPolicy: restartPolicyOf(apiObject(task["RestartPolicy"])),
      runtime: task["Runtime"] ?? "container",
    },
  }) as JsonObject;
}

/**
 * The runtime endpoint when Docker has filled it in, else the spec's (Docker leaves the
 * runtime one empty for a dnsrr service without ports): resourceDockerServiceRead.
 */
function endpointOf(endpoint: ServiceEndpoint | undefined, endpointSpec: Api | undefined): Api | undefined {
  const ports = (list: Api[] | undefined) =>
    (list ?? []).map((port) => ({
      name: port["Name"],
      protocol: port["Protocol"],
      targetPort: port["TargetPort"],
      publishedPort: port["PublishedPort"],
      publishMode: port["PublishMode"],
    }));
  if (endpoint?.Spec?.Mode) return { mode: endpoint.Spec.Mode, ports: ports(endpoint.Ports) };
  if (typeof endpointSpec?.["Mode"] === "string" && endpointSpec["Mode"] !== "") {
    return { mode: endpointSpec["Mode"], ports: ports(apiList(endpointSpec["Ports"])) };
  }
  return undefined;
}

function labelsOf(value: unknown): Api[] | undefined {
  const labels = apiObject(value);
  return labels ? nonEmpty(Object.entries(labels).map(([label, text]) => ({ label, value: text }))) : undefined;
}

function updateConfigOf(value: unknown): Api | undefined {
  const config = apiObject(value);
  if (!config) return undefined;
  return {
    parallelism: config["Parallelism"] ?? 0,
    delay: durationOf(config["Delay"]),
    failureAction: config["FailureAction"] ?? "",
    monitor: durationOf(config["Monitor"]),
    // strconv.FormatFloat(ratio, 'f', 1, 64)
    maxFailureRatio: (typeof config["MaxFailureRatio"] === "number" ? config["MaxFailureRatio"] : 0).toFixed(1),
    order: config["Order"] ?? "",
  };
}

function containerSpecOf(c: Api): Api {
  // Docker's Go type names the field Healthcheck (what GET returns); the API docs, and what we send, say HealthCheck.
  const health = apiObject(c["Healthcheck"] ?? c["HealthCheck"]);
  const privileges = apiObject(c["Privileges"]);
  const dns = apiObject(c["DNSConfig"]);
  const env = strings(c["Env"]);
  const sysctls = apiObject(c["Sysctls"]);
  return {
    image: c["Image"],
    labels: labelsOf(c["Labels"]),
    commands: nonEmpty(strings(c["Command"])),
    args: nonEmpty(strings(c["Args"])),
    hostname: c["Hostname"] ?? "",
    // mapStringSliceToMap: split at the first "="; an empty list writes nothing (null, not {}).
    env: env.length > 0 ? Object.fromEntries(env.map((entry) => (entry.includes("=") ? [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)] : [entry, ""]))) : undefined,
    dir: c["Dir"] ?? "",
    user: c["User"] ?? "",
    groups: nonEmpty(strings(c["Groups"])),
    privileges: privileges && {
      credentialSpec: apiObject(privileges["CredentialSpec"]) && { file: apiObject(privileges["CredentialSpec"])?.["File"], registry: apiObject(privileges["CredentialSpec"])?.["Registry"] },
      seLinuxContext: apiObject(privileges["SELinuxContext"]) && lowerKeys(apiObject(privileges["SELinuxContext"]) ?? {}),
    },
    readOnly: c["ReadOnly"] ?? false,
    mounts: apiList(c["Mounts"]).map((m) => ({
      target: m["Target"],
      source: m["Source"] ?? "",
      type: m["Type"],
      readOnly: m["ReadOnly"] ?? false,
      bindOptions: apiObject(m["BindOptions"]) && { propagation: apiObject(m["BindOptions"])?.["Propagation"] },
      volumeOptions: apiObject(m["VolumeOptions"]) && volumeOptionsOf(apiObject(m["VolumeOptions"]) ?? {}),
      tmpfsOptions: apiObject(m["TmpfsOptions"]) && { sizeBytes: apiObject(m["TmpfsOptions"])?.["SizeBytes"], mode: apiObject(m["TmpfsOptions"])?.["Mode"] },
    })),
    stopSignal: c["StopSignal"] ?? "",
    stopGracePeriod: typeof c["StopGracePeriod"] === "number" ? shortDuration(c["StopGracePeriod"]) : undefined,
    healthcheck: health && {
      tests: nonEmpty(strings(health["Test"])),
      interval: durationOf(health["Interval"]),
      timeout: durationOf(health["Timeout"]),
      startPeriod: durationOf(health["StartPeriod"]),
      retries: health["Retries"] ?? 0,
    },
    hosts: strings(c["Hosts"]).map((line) => {
      const [ip, ...names] = line.split(/\s+/);
      return { ip, host: names.join(" ") };
    }),
    dnsConfig: dns && { nameservers: nonEmpty(strings(dns["Nameservers"])), searches: nonEmpty(strings(dns["Search"])), options: nonEmpty(strings(dns["Options"])) },
    secrets: apiList(c["Secrets"]).map((s) => fileRefOf(s, "secretId", s["SecretID"], "secretName", s["SecretName"])),
    configs: apiList(c["Configs"]).map((s) => fileRefOf(s, "configId", s["ConfigID"], "configName", s["ConfigName"])),
    isolation: c["Isolation"] || undefined,
    init: c["Init"] ?? false,
    sysctl: sysctls && Object.keys(sysctls).length > 0 ? sysctls : undefined,
    capAdds: nonEmpty(strings(c["CapabilityAdd"])),
    capDrops: nonEmpty(strings(c["CapabilityDrop"])),
  };
}

function lowerKeys(value: Api): Api {
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key.charAt(0).toLowerCase() + key.slice(1), item]));
}

function volumeOptionsOf(v: Api): Api {
  const driver = apiObject(v["DriverConfig"]);
  return { noCopy: v["NoCopy"] ?? false, labels: labelsOf(v["Labels"]), driverName: driver?.["Name"], driverOptions: apiObject(driver?.["Options"]) };
}

function fileRefOf(ref: Api, idKey: string, id: unknown, nameKey: string, name: unknown): Api {
  const file = apiObject(ref["File"]) ?? {};
  return {
    [idKey]: id,
    ...(typeof name === "string" && name !== "" && { [nameKey]: name }),
    fileName: file["Name"],
    ...(typeof file["UID"] === "string" && file["UID"] !== "" && { fileUid: file["UID"] }),
    ...(typeof file["GID"] === "string" && file["GID"] !== "" && { fileGid: file["GID"] }),
    fileMode: file["Mode"] ?? 0,
  };
}

function logDriverOf(value: unknown): Api | undefined {
  const driver = apiObject(value);
  return driver && { name: driver["Name"], options: apiObject(driver["Options"]) };
}

function placementOf(p: Api | undefined): Api | undefined {
  if (!p) return undefined;
  return {
    constraints: nonEmpty(strings(p["Constraints"])),
    prefs: nonEmpty(apiList(p["Preferences"]).map((pref) => `spread=${String(apiObject(pref["Spread"])?.["SpreadDescriptor"] ?? "")}`)),
    maxReplicas: p["MaxReplicas"] ?? 0,
    platforms: apiList(p["Platforms"]).map((platform) => ({ architecture: platform["Architecture"], os: platform["OS"] })),
  };
}

function resourcesOf(r: Api | undefined): Api | undefined {
  if (!r) return undefined;
  const limits = apiObject(r["Limits"]);
  const reservation = apiObject(r["Reservations"]);
  return {
    limits: limits && { nanoCpus: limits["NanoCPUs"] ?? 0, memoryBytes: limits["MemoryBytes"] ?? 0 },
    reservation: reservation && { nanoCpus: reservation["NanoCPUs"] ?? 0, memoryBytes: reservation["MemoryBytes"] ?? 0 },
  };
}

/** Each field only when Docker has it (the provider checks every pointer). */
function restartPolicyOf(r: Api | undefined): Api | undefined {
  if (!r) return undefined;
  return {
    condition: r["Condition"],
    delay: r["Delay"] === undefined ? undefined : durationOf(r["Delay"]),
    maxAttempts: r["MaxAttempts"],
    window: r["Window"] === undefined ? undefined : durationOf(r["Window"]),
  };
}

/** Drops undefined members, recursively. */
function prune(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(prune);
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = prune(item);
    return out;
  }
  return value;
}

// ---- the plan: declared inputs against the state -----------------------------

export interface FieldDiff {
  /** Input path, e.g. taskSpec.restartPolicy.window */
  path: string;
  declared: Json | undefined;
  readBack: Json | undefined;
  /** The provider replaces the service for this change (ForceNew). */
  replaces: boolean;
}

/**
 * Terraform's plan for one service: every declared field whose state differs.
 * Undeclared fields diff only when the state holds a non-zero value the schema
 * does not compute or default (SDKv2 cannot tell null from zero). Sets compare
 * unordered, with each element's schema defaults applied.
 */
export function serviceDiff(declared: JsonObject, state: JsonObject): FieldDiff[] {
  const out: FieldDiff[] = [];
  diffNode(SERVICE_SCHEMA, declared, state, "", false, out);
  return out;
}

/** One line per difference: "taskSpec.restartPolicy.window: declared "60s", the provider reads back "1m"". */
export function describeDiffs(service: string, diffs: readonly FieldDiff[]): string[] {
  return diffs.map(
    (d) =>
      `${service}: ${d.path}: declared ${show(d.declared)}, the provider reads back ${show(d.readBack)}` + (d.replaces ? " (forces replacement)" : ""),
  );
}

function show(value: Json | undefined): string {
  return value === undefined ? "nothing" : JSON.stringify(value);
}

function diffNode(node: SchemaNode, declared: unknown, state: unknown, path: string, forceNew: boolean, out: FieldDiff[]): void {
  const replaces = forceNew || Boolean(node.forceNew);
  if (declared === undefined || declared === null) {
    if (node.computed) return;
    const implied = node.kind === "scalar" ? node.default : undefined;
    if (isZero(state) || (implied !== undefined && sameScalar(implied, state, path))) return;
    if (node.kind === "object" && isObject(state)) {
      // An undeclared block: only its non-defaulted, non-zero members count.
      for (const [key, child] of Object.entries(node.fields)) diffNode(child, undefined, state[key], join(path, key), replaces, out);
      return;
    }
    out.push({ path, declared: undefined, readBack: state as Json, replaces });
    return;
  }
  switch (node.kind) {
    case "scalar":
      if (!sameScalar(declared, state, path)) out.push({ path, declared: declared as Json, readBack: state as Json | undefined, replaces });
      return;
    case "object": {
      if (!isObject(declared)) throw new Error(`${path}: expected an object`);
      for (const key of Object.keys(declared)) {
        if (!(key in node.fields)) throw new Error(`${join(path, key)}: not a field of docker.Service this model knows (add it to SERVICE_SCHEMA from the provider's schema)`);
      }
      const stateObject = isObject(state) ? state : {};
      for (const [key, child] of Object.entries(node.fields)) diffNode(child, declared[key], stateObject[key], join(path, key), replaces, out);
      return;
    }
    case "map": {
      const a = isObject(declared) ? declared : {};
      const b = isObject(state) ? state : {};
      for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (a[key] !== b[key]) out.push({ path: `${path}.${key}`, declared: a[key], readBack: b[key], replaces });
      }
      return;
    }
    case "list": {
      const a = Array.isArray(declared) ? declared : [];
      const b = Array.isArray(state) ? state : [];
      if (a.length !== b.length && !(a.length === 0 && b.length === 0)) {
        out.push({ path, declared: declared as Json, readBack: state as Json | undefined, replaces });
        return;
      }
      a.forEach((item, i) => diffNode(node.elem, item, b[i], `${path}[${i}]`, replaces, out));
      return;
    }
    case "set": {
      const a = (Array.isArray(declared) ? declared : []).map((item) => canonical(node.elem, item));
      const b = (Array.isArray(state) ? state : []).map((item) => canonical(node.elem, item));
      const missing = multisetMinus(a, b);
      const extra = multisetMinus(b, a);
      if (missing.length > 0 || extra.length > 0) {
        out.push({ path, declared: missing.map((m) => JSON.parse(m) as Json), readBack: extra.map((e) => JSON.parse(e) as Json), replaces });
      }
      return;
    }
  }
}

/** A set element as Terraform hashes it: defaults applied, zero values dropped, keys sorted. */
function canonical(node: SchemaNode, value: unknown): string {
  return JSON.stringify(normalize(node, value) ?? null);
}

function normalize(node: SchemaNode, value: unknown): unknown {
  switch (node.kind) {
    case "scalar": {
      const v = value === undefined || value === null ? node.default : value;
      if (isZero(v)) return undefined;
      return typeof v === "number" ? v : String(v);
    }
    case "object": {
      if (!isObject(value)) return undefined;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(node.fields).sort()) {
        const child = normalize(node.fields[key] as SchemaNode, value[key]);
        if (child !== undefined) out[key] = child;
      }
      return Object.keys(out).length > 0 ? out : undefined;
    }
    case "map":
      return isObject(value) && Object.keys(value).length > 0 ? Object.fromEntries(Object.entries(value).sort(([x], [y]) => (x < y ? -1 : 1))) : undefined;
    case "list":
      return Array.isArray(value) && value.length > 0 ? value.map((item) => normalize(node.elem, item) ?? null) : undefined;
    case "set":
      return Array.isArray(value) && value.length > 0 ? value.map((item) => canonical(node.elem, item)).sort() : undefined;
  }
}

function multisetMinus(a: string[], b: string[]): string[] {
  const rest = [...b];
  return a.filter((item) => {
    const i = rest.indexOf(item);
    if (i === -1) return true;
    rest.splice(i, 1);
    return false;
  });
}

function sameScalar(a: unknown, b: unknown, path: string): boolean {
  if (a === b || (isZero(a) && isZero(b))) return true;
  // Terraform keeps numbers as numbers and text as text; the two compare by their text.
  if ((typeof a === "number" || typeof a === "string") && (typeof b === "number" || typeof b === "string")) {
    if (String(a) === String(b)) return true;
    // max_failure_ratio has DiffSuppressFunc suppressEquivalentFloatRatio: "0" and "0.0" are the same ratio.
    return path.endsWith("maxFailureRatio") && Number(a) === Number(b) && Number.isFinite(Number(a));
  }
  return false;
}

function isZero(value: unknown): boolean {
  if (value === undefined || value === null || value === "" || value === 0 || value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (isObject(value)) return Object.values(value).every(isZero);
  return false;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** A state (or declaration) in canonical form: schema fields only, zero values dropped, sets sorted. For comparing whole states. */
export function canonicalState(state: JsonObject): unknown {
  return normalize(SERVICE_SCHEMA, state) ?? {};
}
