// docker:index:Network, Secret, ServiceConfig and Service, created through the
// Docker Engine API of the manager. Re-runs are idempotent: an existing
// network is reused when its settings match, an existing secret/config when
// its data hash (kept in the harness state) matches, and an existing service
// is updated in place with its current version index.
import { EngineError, type DockerEngine } from "../docker-engine";
import { sha256 } from "../harness-state";
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
import { labelsToMap, registryAuthHeader, translateService, type ConvergeSettings } from "../service-spec";
import type { Applied, ApplyContext, ApplyRequest } from "../types";
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

export async function applyNetwork(req: ApplyRequest, ctx: ApplyContext): Promise<Applied> {
  const where = `${req.type} ${req.name}`;
  const body = networkCreateBody(req.inputs, where);
  const name = body["Name"] as string;
  const { engine } = await ctx.providers.docker(req.provider, where);
  const existing = await inspectOrUndefined<NetworkInspect>(engine, `/networks/${encodeURIComponent(name)}`);
  let id: string;
  let outcome: Applied["outcome"];
  if (existing) {
    const drift = networkDrift(body, existing);
    if (drift.length > 0) {
      throw new Error(`${where}: network ${name} already exists with different settings (${drift.join("; ")}); networks cannot be changed in place — remove it first`);
    }
    id = existing.Id;
    outcome = "unchanged";
  } else {
    id = (await engine.call<{ Id: string }>("POST", "/networks/create", body)).Id;
    outcome = "created";
  }
  const inspect = await engine.call<NetworkInspect>("GET", `/networks/${id}`);
  return { id, outputs: { ...req.inputs, name, driver: inspect.Driver, scope: inspect.Scope, internal: inspect.Internal }, outcome };
}

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

export async function applySwarmData(kind: DataKind, req: ApplyRequest, ctx: ApplyContext): Promise<Applied> {
  const where = `${req.type} ${req.name}`;
  const { name, data, labels } = objectData(kind, req.inputs, where);
  if (kind === "secret") ctx.masker.add([data.toString("utf8")]);
  const { engine } = await ctx.providers.docker(req.provider, where);
  const collection = kind === "secret" ? "secrets" : "configs";
  const hash = sha256(data);
  const existing = await findByName(engine, collection, name);
  let outcome: Applied["outcome"] = "created";
  let id: string;
  if (existing && ctx.state.dataHash(kind, name) === hash) {
    id = existing.ID;
    outcome = "unchanged";
  } else {
    if (existing) await removeReplacedObject(engine, collection, existing, where);
    const body = compact({ Name: name, Labels: labels, Data: data.toString("base64") });
    id = (await engine.call<{ ID: string }>("POST", `/${collection}/create`, body)).ID;
    ctx.state.rememberDataHash(kind, name, hash);
    if (existing) outcome = "updated";
  }
  return { id, outputs: { ...req.inputs, name }, secretOutputs: kind === "secret" ? ["data", ...req.secretInputKeys] : [...req.secretInputKeys], outcome };
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
  UpdateStatus?: { State?: string; Message?: string };
}

export async function applyService(req: ApplyRequest, ctx: ApplyContext): Promise<Applied> {
  const where = `${req.type} ${req.name}`;
  const { spec, auth, converge } = translateService(req.inputs);
  const name = spec["Name"] as string;
  const endpoint = await ctx.providers.docker(req.provider, where);
  const image = ((spec["TaskTemplate"] as { ContainerSpec: { Image: string } }).ContainerSpec.Image);
  const pullAuth = auth ?? authForRegistry(endpoint.registryAuth, splitImageName(image).registryHost);
  const headers: Record<string, string> = pullAuth ? { "X-Registry-Auth": registryAuthHeader(pullAuth) } : {};
  const existing = await inspectOrUndefined<ServiceInspect>(endpoint.engine, `/services/${encodeURIComponent(name)}`);
  let id: string;
  let warnings: string[] | null | undefined;
  if (existing) {
    const answer = await endpoint.engine.call<{ Warnings?: string[] | null }>(
      "POST",
      `/services/${existing.ID}/update?version=${existing.Version.Index}`,
      spec,
      headers,
    );
    id = existing.ID;
    warnings = answer.Warnings;
  } else {
    const answer = await endpoint.engine.call<{ ID: string; Warnings?: string[] | null }>("POST", "/services/create", spec, headers);
    id = answer.ID;
    warnings = answer.Warnings;
  }
  for (const warning of warnings ?? []) ctx.progress(`engine warning: ${warning}`);
  if (converge) await waitForConvergence(endpoint.engine, id, name, spec, converge, ctx);
  else ctx.progress(`${name}: no convergeConfig, so (like the provider) not waiting for tasks to run`);
  return { id, outputs: { ...req.inputs, name }, secretOutputs: ["auth", ...req.secretInputKeys], outcome: existing ? "updated" : "created" };
}

interface TaskInspect {
  ID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Err?: string; Message?: string };
}

/** Polls like the provider's convergeConfig: every `delay` until all replicas run, or `timeout`. */
async function waitForConvergence(
  engine: DockerEngine,
  id: string,
  name: string,
  spec: Record<string, unknown>,
  converge: ConvergeSettings,
  ctx: ApplyContext,
): Promise<void> {
  const mode = spec["Mode"] as { Replicated?: { Replicas: number } };
  const deadline = Date.now() + converge.timeoutMs;
  let lastReport = "";
  for (;;) {
    const service = await engine.call<ServiceInspect>("GET", `/services/${id}`);
    const state = service.UpdateStatus?.State;
    if (state === "rollback_completed" || state === "paused" || state === "rollback_paused") {
      throw new Error(`${name}: update ${state}: ${service.UpdateStatus?.Message ?? "no message"}`);
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

