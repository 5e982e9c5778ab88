// docker:index:Network, Secret, ServiceConfig and Service, through the Docker
// Engine API of the manager, as the docker provider (kreuzwerker's
// terraform-provider-docker, bridged) behaves:
// - networks, secrets and configs: every input forces a replacement;
// - services: the diff is the provider's plan of the declared inputs against
//   the state it read back (service-state.ts): a ForceNew field replaces, any
//   other difference updates in place, none leaves the service alone. After
//   every create and update the service is read back from the Engine API,
//   converted as the provider's Read does, and compared with the declaration:
//   a field the provider would read back differently fails the deploy, since
//   every later `pulumi up` would update (and restart) the service again.
import { EngineError, type DockerEngine } from "../docker-engine";
import type { StoredResource } from "../harness-state";
import { parseDurationNs } from "../duration";
import {
  compact,
  fieldsOf,
  InputError,
  type JsonObject,
  optBoolean,
  optObjectList,
  optString,
  optStringMap,
} from "../json";
import { authForRegistry } from "../providers";
import { labelsToMap, registryAuthHeader, translateService, type ApiObject, type ConvergeSettings, type RegistryAuth } from "../service-spec";
import { describeDiffs, readBackService, serviceDiff, type ServiceEndpoint } from "../service-state";
import { inputsDiff } from "../steps";
import type { Applied, ApplyContext, ApplyRequest, ResourceKind } from "../types";
import { splitImageName } from "./image";

// ---- network ---------------------------------------------------------------

const NETWORK_FIELDS = ["name", "driver", "attachable", "internal", "ingress", "options", "labels", "ipamDriver", "ipamConfigs", "ipamOptions", "ipv6"] as const;

/** Pure: NetworkCreate body for the inputs. */
export function networkCreateBody(inputs: JsonObject, where: string): Record<string, unknown> {
  const f = fieldsOf(inputs, where, NETWORK_FIELDS);
  const ipamConfigs = optObjectList(f, "ipamConfigs", where)?.map((c, i) => {
    const at = `${where}.ipamConfigs[${i}]`;
    const g = fieldsOf(c, at, ["subnet", "ipRange", "gateway", "auxAddress"]);
    return compact({ Subnet: optString(g, "subnet", at), IPRange: optString(g, "ipRange", at), Gateway: optString(g, "gateway", at), AuxiliaryAddresses: optStringMap(g, "auxAddress", at) });
  });
  const ipamDriver = optString(f, "ipamDriver", where);
  const ipamOptions = optStringMap(f, "ipamOptions", where);
  return compact({
    Name: optString(f, "name", where),
    CheckDuplicate: true,
    Driver: optString(f, "driver", where) ?? "bridge",
    Attachable: optBoolean(f, "attachable", where),
    Internal: optBoolean(f, "internal", where),
    Ingress: optBoolean(f, "ingress", where),
    EnableIPv6: optBoolean(f, "ipv6", where),
    Options: optStringMap(f, "options", where),
    Labels: labelsToMap(f, "labels", where),
    IPAM: ipamDriver || ipamConfigs || ipamOptions ? compact({ Driver: ipamDriver ?? "default", Config: ipamConfigs, Options: ipamOptions }) : undefined,
  });
}

interface NetworkInspect {
  Id: string;
  Driver: string;
  Scope: string;
  Attachable: boolean;
  Internal: boolean;
  Options: Record<string, string> | null;
}

export const network: ResourceKind = {
  // Every docker_network input is ForceNew.
  diff: (prior, req) => inputsDiff(prior.inputs, req.inputs, { replaceOn: "all" }),

  async create(req, ctx) {
    const where = `${req.type} ${req.name}`;
    const body = networkCreateBody(req.inputs, where);
    const name = body["Name"] as string;
    const { engine } = await ctx.providers.docker(req.provider, where);
    const existing = await inspectOrUndefined<NetworkInspect>(engine, `/networks/${encodeURIComponent(name)}`);
    let id: string;
    if (existing) {
      const drift = networkDrift(body, existing);
      if (drift.length > 0) {
        throw new Error(`${where}: network ${name} already exists with different settings (${drift.join("; ")}); networks cannot be changed in place — remove it first`);
      }
      ctx.progress(`network ${name} exists with these settings: adopted`);
      id = existing.Id;
    } else {
      id = (await engine.call<{ Id: string }>("POST", "/networks/create", body)).Id;
    }
    const inspect = await engine.call<NetworkInspect>("GET", `/networks/${id}`);
    return { id, outputs: { ...req.inputs, name, driver: inspect.Driver, scope: inspect.Scope, internal: inspect.Internal } };
  },

  async delete(prior, ctx) {
    const { engine } = await ctx.providers.docker(prior.provider, `${prior.type} ${prior.name}`);
    await removeIfPresent(engine, `/networks/${prior.id}`);
  },
};

function networkDrift(wanted: Record<string, unknown>, actual: NetworkInspect): string[] {
  const drift: string[] = [];
  if (wanted["Driver"] !== actual.Driver) drift.push(`driver ${actual.Driver} ≠ ${String(wanted["Driver"])}`);
  if ((wanted["Attachable"] ?? false) !== actual.Attachable) drift.push(`attachable ${actual.Attachable}`);
  for (const [key, value] of Object.entries((wanted["Options"] as Record<string, string> | undefined) ?? {})) {
    if ((actual.Options ?? {})[key] !== value) drift.push(`option ${key}=${(actual.Options ?? {})[key] ?? "(unset)"}`);
  }
  return drift;
}

// ---- secrets and configs ---------------------------------------------------

type DataKind = "secret" | "config";

/** Pure: decoded data of a Secret (`data`, base64) or ServiceConfig (`data` base64 or `dataRaw`). */
export function objectData(kind: DataKind, inputs: JsonObject, where: string): { name: string; data: Buffer; labels?: Record<string, string> } {
  const known = kind === "secret" ? (["name", "data", "labels"] as const) : (["name", "data", "dataRaw", "labels"] as const);
  const f = fieldsOf(inputs, where, known);
  const name = optString(f, "name", where);
  if (!name) throw new InputError(`${where}.name: is required`);
  const encoded = optString(f, "data", where);
  const raw = kind === "config" ? optString(f, "dataRaw", where) : undefined;
  if ((encoded === undefined) === (raw === undefined)) {
    throw new InputError(`${where}: set exactly one of data${kind === "config" ? " or dataRaw" : ""}`);
  }
  const data = raw !== undefined ? Buffer.from(raw, "utf8") : decodeBase64(encoded as string, `${where}.data`);
  return { name, data, labels: labelsToMap(f, "labels", where) };
}

/** The provider accepts standard and URL-safe base64 and rejects anything else. */
function decodeBase64(text: string, where: string): Buffer {
  const normalized = text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(normalized) || normalized.replace(/=+$/, "").length % 4 === 1) {
    throw new InputError(`${where}: is not base64 (docker.${where.includes("Secret") ? "Secret" : "ServiceConfig"} data must be base64-encoded)`);
  }
  return Buffer.from(normalized, "base64");
}

interface ObjectSummary {
  ID: string;
  Spec: { Name: string };
}

/** docker:index:Secret (kind "secret") and docker:index:ServiceConfig ("config"): immutable, so any change replaces. */
export function swarmData(kind: DataKind): ResourceKind {
  const collection = kind === "secret" ? "secrets" : "configs";
  return {
    diff: (prior, req) => inputsDiff(prior.inputs, req.inputs, { replaceOn: "all" }),

    async create(req, ctx) {
      const where = `${req.type} ${req.name}`;
      const { name, data, labels } = objectData(kind, req.inputs, where);
      if (kind === "secret") ctx.masker.add([data.toString("utf8")]);
      const { engine } = await ctx.providers.docker(req.provider, where);
      const existing = await findByName(engine, collection, name);
      if (existing) await removeReplacedObject(engine, collection, existing, where);
      const body = compact({ Name: name, Labels: labels, Data: data.toString("base64") });
      const id = (await engine.call<{ ID: string }>("POST", `/${collection}/create`, body)).ID;
      return { id, outputs: { ...req.inputs, name }, secretOutputs: kind === "secret" ? ["data", ...req.secretInputKeys] : [...req.secretInputKeys] };
    },

    async delete(prior, ctx) {
      const { engine } = await ctx.providers.docker(prior.provider, `${prior.type} ${prior.name}`);
      await removeIfPresent(engine, `/${collection}/${prior.id}`);
    },
  };
}

async function findByName(engine: DockerEngine, collection: string, name: string): Promise<ObjectSummary | undefined> {
  const filters = encodeURIComponent(JSON.stringify({ name: [name] }));
  const list = await engine.call<ObjectSummary[]>("GET", `/${collection}?filters=${filters}`);
  return list.find((item) => item.Spec.Name === name);
}

/** Secrets and configs are immutable; the old one can only go when no service uses it. */
async function removeReplacedObject(engine: DockerEngine, collection: string, existing: ObjectSummary, where: string): Promise<void> {
  try {
    await engine.call("DELETE", `/${collection}/${existing.ID}`);
  } catch (error) {
    if (error instanceof EngineError && error.status === 400) {
      throw new Error(
        `${where}: ${collection.slice(0, -1)} ${existing.Spec.Name} exists with other data and is in use, so it cannot be replaced ` +
          "(Pulumi would replace it too and fail the same way unless the name changes with the content). " +
          "Give it a content-derived name, or remove the stack's services first.",
      );
    }
    throw error;
  }
}

// ---- services --------------------------------------------------------------

interface ServiceInspect {
  ID: string;
  Version: { Index: number };
  UpdatedAt?: string;
  Spec: ApiObject;
  Endpoint?: ServiceEndpoint;
  UpdateStatus?: { State?: string; StartedAt?: string; Message?: string };
}

export const service: ResourceKind = {
  diff(prior, req) {
    const diffs = serviceDiff(req.inputs, prior.outputs);
    if (diffs.length === 0) return { action: "same", fields: [] };
    return { action: diffs.some((d) => d.replaces) ? "replace" : "update", fields: diffs.map((d) => d.path) };
  },

  create: (req, ctx) => applyService(req, undefined, ctx),
  update: (req, prior, ctx) => applyService(req, prior, ctx),

  async delete(prior, ctx) {
    const where = `${prior.type} ${prior.name}`;
    const { engine } = await ctx.providers.docker(prior.provider, where);
    if (!(await removeIfPresent(engine, `/services/${prior.id}`))) return;
    // Like the provider with a stop grace period: wait until the service's tasks are gone.
    const graceMs = parseGraceMs(prior.outputs);
    const deadline = Date.now() + graceMs + 30_000;
    const filters = encodeURIComponent(JSON.stringify({ service: [prior.id] }));
    for (;;) {
      const answer = await engine.request("GET", `/tasks?filters=${filters}`);
      // Once the service is gone, Docker answers a filter naming it with 404: nothing left to wait for.
      if (answer.status === 404) return;
      if (answer.status !== 200) throw new EngineError(answer.status, `Docker Engine API GET /tasks → HTTP ${answer.status}: ${answer.body.trim()}`);
      const tasks = JSON.parse(answer.body) as TaskInspect[];
      const left = tasks.filter((task) => !["complete", "shutdown", "failed", "rejected", "orphaned", "remove"].includes(task.Status.State)).length;
      if (tasks.length === 0 || left === 0) return;
      if (Date.now() > deadline) throw new Error(`${where}: ${left} task(s) still running ${Math.round((graceMs + 30_000) / 1000)} s after the service was removed`);
      ctx.progress(`${String(prior.outputs["name"])}: removed, ${left} task(s) stopping`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  },
};

async function applyService(req: ApplyRequest, prior: StoredResource | undefined, ctx: ApplyContext): Promise<Applied> {
  const where = `${req.type} ${req.name}`;
  const { spec, auth, converge } = translateService(req.inputs);
  const name = spec["Name"] as string;
  const endpoint = await ctx.providers.docker(req.provider, where);
  const task = spec["TaskTemplate"] as { ContainerSpec: { Image: string } };
  const pullAuth = auth ?? authForRegistry(endpoint.registryAuth, splitImageName(task.ContainerSpec.Image).registryHost);
  const headers: Record<string, string> = pullAuth ? { "X-Registry-Auth": registryAuthHeader(pullAuth) } : {};
  // Without a stored resource, a service of that name (made by an earlier harness state) is adopted and updated.
  const existing = await inspectOrUndefined<ServiceInspect>(endpoint.engine, `/services/${encodeURIComponent(prior?.id ?? name)}`);
  if (prior && !existing) ctx.progress(`${name}: not found on the swarm any more; creating it again`);
  if (!prior && existing) ctx.progress(`${name}: exists on the swarm but not in the harness state; adopting it`);
  let id: string;
  let warnings: string[] | null | undefined;
  if (existing) {
    // The provider's update sends the spec as declared (no registry query).
    const answer = await endpoint.engine.call<{ Warnings?: string[] | null }>("POST", `/services/${existing.ID}/update?version=${existing.Version.Index}`, spec, headers);
    id = existing.ID;
    warnings = answer.Warnings;
  } else {
    // The provider's create sets QueryRegistry: the client pins a tag-only image to tag@digest.
    await pinImageOnCreate(task.ContainerSpec, pullAuth, endpoint.engine, ctx);
    const answer = await endpoint.engine.call<{ ID: string; Warnings?: string[] | null }>("POST", "/services/create", spec, headers);
    id = answer.ID;
    warnings = answer.Warnings;
  }
  for (const warning of warnings ?? []) ctx.warn(`${name}: Docker: ${warning}`);
  const updatedAt = existing ? (await endpoint.engine.call<ServiceInspect>("GET", `/services/${id}`)).UpdatedAt : undefined;
  if (converge) await waitForConvergence(endpoint.engine, id, name, spec, converge, ctx, updatedAt);
  else ctx.progress(`${name}: no convergeConfig, so (like the provider) not waiting for tasks to run`);
  // Read back as the provider's Read does, and hold the declaration to it.
  const stored = await endpoint.engine.call<ServiceInspect>("GET", `/services/${id}`);
  const state = readBackService(stored.Spec, stored.Endpoint, { auth: req.inputs["auth"] ?? null, convergeConfig: req.inputs["convergeConfig"] ?? null });
  const diffs = serviceDiff(req.inputs, state);
  if (diffs.length > 0) {
    throw new Error(
      `${where}: Docker stores the service in a form the provider reads back differently, so every later deploy would update it again:\n` +
        describeDiffs(name, diffs).map((line) => `    ${line}`).join("\n"),
    );
  }
  return { id, outputs: state, secretOutputs: ["auth", ...req.secretInputKeys] };
}

/**
 * The Docker client's resolveContainerSpecImage, as the provider's create runs it: a
 * tag-only image whose registry answers becomes tag@digest. Only the stack's own
 * registry is asked (the one the service has credentials for): the lab reaches no other.
 */
async function pinImageOnCreate(container: { Image: string }, auth: RegistryAuth | undefined, engine: DockerEngine, ctx: ApplyContext): Promise<void> {
  if (/@sha256:[0-9a-f]{64}$/.test(container.Image)) return;
  const registryHost = splitImageName(container.Image).registryHost;
  if (!auth || auth.serverAddress.replace(/^https?:\/\//, "").replace(/\/+$/, "") !== registryHost) {
    ctx.progress(`${container.Image}: no registry of this stack serves it, so (as on an offline create) it keeps its tag`);
    return;
  }
  const answer = await engine.request("GET", `/distribution/${encodeURIComponent(container.Image)}/json`, undefined, { "X-Registry-Auth": registryAuthHeader(auth) });
  if (answer.status !== 200) return;
  const digest = (JSON.parse(answer.body) as { Descriptor?: { Digest?: string } }).Descriptor?.Digest;
  if (digest) container.Image = `${container.Image}@${digest}`;
}

function parseGraceMs(state: JsonObject): number {
  const text = String(((state["taskSpec"] as JsonObject | undefined)?.["containerSpec"] as JsonObject | undefined)?.["stopGracePeriod"] ?? "10s");
  try {
    return parseDurationNs(text, "stopGracePeriod") / 1e6;
  } catch {
    return 10_000;
  }
}

/** DELETE that treats "already gone" as done; true when something was removed. */
async function removeIfPresent(engine: DockerEngine, apiPath: string): Promise<boolean> {
  const answer = await engine.request("DELETE", apiPath);
  if (answer.status === 404) return false;
  if (answer.status < 200 || answer.status >= 300) throw new EngineError(answer.status, `Docker Engine API DELETE ${apiPath} → HTTP ${answer.status}: ${answer.body.trim()}`);
  return true;
}

interface TaskInspect {
  ID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Err?: string; Message?: string };
}

/** How long an update may take before Docker reports a rolling update (when the task template changed). */
const UPDATE_START_GRACE_MS = 3000;

/**
 * Polls like the provider's convergeConfig: every `delay` until all replicas run, or `timeout`.
 * After an update (`updatedAt`, the service's UpdatedAt), Docker's UpdateStatus of an update
 * that replaces tasks must have started after it and completed: the replicas that ran before
 * the update do not count. An update that replaces no task shows no UpdateStatus: after a short
 * grace, the running replicas are the updated service.
 */
async function waitForConvergence(
  engine: DockerEngine,
  id: string,
  name: string,
  spec: Record<string, unknown>,
  converge: ConvergeSettings,
  ctx: ApplyContext,
  updatedAt?: string,
): Promise<void> {
  const mode = spec["Mode"] as { Replicated?: { Replicas: number } };
  const started = Date.now();
  const deadline = started + converge.timeoutMs;
  let lastReport = "";
  for (;;) {
    const service = await engine.call<ServiceInspect>("GET", `/services/${id}`);
    const ours = updatedAt === undefined || (service.UpdateStatus?.StartedAt !== undefined && Date.parse(service.UpdateStatus.StartedAt) >= Date.parse(updatedAt) - 1000);
    const state = ours ? service.UpdateStatus?.State : undefined;
    if (state === "rollback_completed" || state === "paused" || state === "rollback_paused") {
      throw new Error(`${name}: update ${state}: ${service.UpdateStatus?.Message ?? "no message"}`);
    }
    if (updatedAt !== undefined && !ours && Date.now() - started < UPDATE_START_GRACE_MS) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      continue;
    }
    const filters = encodeURIComponent(JSON.stringify({ service: [id], "desired-state": ["running"] }));
    const tasks = await engine.call<TaskInspect[]>("GET", `/tasks?filters=${filters}`);
    const running = tasks.filter((task) => task.Status.State === "running").length;
    const wanted = mode.Replicated?.Replicas ?? tasks.length;
    const updating = state === "updating" || state === "rollback_started";
    const report = `${name}: ${running}/${wanted} tasks running${updating ? ` (${state})` : ""}`;
    if (report !== lastReport) ctx.progress(report);
    lastReport = report;
    if (running === wanted && !updating) return;
    if (Date.now() > deadline) {
      const errors = tasks.map((task) => task.Status.Err).filter((err): err is string => Boolean(err));
      throw new Error(`${name}: did not converge within ${converge.timeoutMs / 1000}s (${report})${errors.length ? `; task errors: ${[...new Set(errors)].join("; ")}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, converge.delayMs));
  }
}

async function inspectOrUndefined<T>(engine: DockerEngine, apiPath: string): Promise<T | undefined> {
  const res = await engine.request("GET", apiPath);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new EngineError(res.status, `Docker Engine API GET ${apiPath} → HTTP ${res.status}: ${res.body.trim()}`);
  return JSON.parse(res.body) as T;
}

