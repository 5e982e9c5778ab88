// The resource monitor the program talks to. It is Pulumi's own MockMonitor
// (so the SDK behaves exactly as under `pulumi.runtime.setMocks`), with a
// `newResource` that does what the engine does with each registered resource:
// look up what the state holds for its URN, ask the resource's kind (its
// provider's behaviour) what changed, and create, update, replace or leave it
// alone for real in the lab, handing the program the real outputs. After the
// program ends, deploy.ts deletes what it no longer declares (see `pending`).
import * as pulumi from "@pulumi/pulumi";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import * as resproto from "@pulumi/pulumi/proto/resource_pb";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { aliasSpecsOf, aliasUrns, urnOf as aliasesUrnOf, type AliasMessage } from "./aliases";
import { remoteCommand } from "./appliers/command";
import { dockerImage } from "./appliers/image";
import { randomValue } from "./appliers/random";
import { network, service, swarmData } from "./appliers/swarm";
import type { HarnessState, StoredResource } from "./harness-state";
import { InputError, type Json, type JsonObject } from "./json";
import { Masker, unwrapSecrets } from "./secrets";
import { inputsDiff } from "./steps";
import type { Applied, ApplyContext, ApplyRequest, Outcome, ResourceKind } from "./types";
import type { ProviderRegistry } from "./providers";


/** Every custom resource type the harness can apply. Anything else fails loudly. */
export const KINDS: Record<string, ResourceKind> = {
  "command:remote:Command": remoteCommand,
  "docker:index/image:Image": dockerImage,
  "docker:index/network:Network": network,
  "docker:index/secret:Secret": swarmData("secret"),
  "docker:index/serviceConfig:ServiceConfig": swarmData("config"),
  "docker:index/service:Service": service,
  "random:index/randomPassword:RandomPassword": randomValue,
  "random:index/randomString:RandomString": randomValue,
};

/** Docker objects Pulumi would auto-name ("<logical name>-<7 hex>") when `name` is unset. */
const AUTONAMED = new Set(["docker:index/network:Network", "docker:index/secret:Secret", "docker:index/serviceConfig:ServiceConfig", "docker:index/service:Service"]);

export interface Reporter {
  line(text: string): void;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getAdditionalsecretoutputsList(): string[];
  getDependenciesList(): string[];
  getDeletebeforereplace(): boolean;
  getRetainondelete(): boolean | undefined;
  getAliasesList(): AliasMessage[];
}

interface ReadRequest {
  getType(): string;
  getName(): string;
  getId(): string;
  getParent(): string;
}

interface OutputsRequest {
  getUrn(): string;
  getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined;
}

/** What one resource came to, for the summary. */
export interface ResourceReport {
  urn: string;
  type: string;
  name: string;
  outcome: Outcome;
  seconds: number;
  fields?: string[];
}

export type HarnessContext = Omit<ApplyContext, "progress">;

export class LiveMonitor extends MockMonitor {
  /** The request being registered right now (read synchronously by newResource). */
  private current: RegisterRequest | undefined;
  stackOutputs: Record<string, unknown> | undefined;
  failure: Error | undefined;
  /** URNs the program registered in this run. */
  readonly registered = new Set<string>();
  readonly reports: ResourceReport[] = [];
  /** Every registered resource's earlier URNs (its aliases, and its parent's, as the engine resolves them). */
  private readonly aliases = new Map<string, string[]>();

  constructor(
    private readonly ctx: HarnessContext,
    private readonly reporter: Reporter,
    private readonly onFailure: (error: Error) => void,
  ) {
    super({
      newResource: (args) => this.apply(args),
      call: (args) => {
        throw new InputError(`function ${args.token}: provider functions (invokes) are not supported by the live harness`);
      },
    });
  }

  override registerResource(req: RegisterRequest, callback: (err: unknown, response: unknown) => void): Promise<void> {
    this.current = req;
    return super.registerResource(req, callback);
  }

  /**
   * A read. The only one the program makes is a StackReference to its own stack (the quorum guard):
   * answered, as the engine does, with the stack's outputs from the last successful run (the state;
   * this run's outputs are stored only when it succeeds). Anything else fails loudly.
   */
  override async readResource(req: ReadRequest, callback: (err: unknown, response: unknown) => void): Promise<void> {
    const own = `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
    if (req.getType() !== "pulumi:pulumi:StackReference" || req.getId() !== own) {
      const failure = new InputError(`read of ${req.getType()} ${req.getId()}: the live harness reads only a StackReference to this stack (${own})`);
      callback(failure, undefined);
      return;
    }
    const { values, secretKeys } = this.ctx.state.outputs();
    const outputs: Record<string, unknown> = { ...values };
    for (const key of secretKeys) if (key in outputs) outputs[key] = pulumi.secret(outputs[key]);
    const state = { name: own, outputs, secretOutputNames: secretKeys };
    const serialized = await pulumi.runtime.serializeProperties("stack reference", state);
    const urn = urnOf(req.getParent(), req.getType(), req.getName());
    const response = new resproto.ReadResourceResponse();
    response.setUrn(urn);
    response.setProperties(Struct.fromJavaScript(serialized as Parameters<typeof Struct.fromJavaScript>[0]));
    this.reporter.line(`  = read ${req.getType()} ${req.getName()} (${own}: ${Object.keys(values).length} outputs of the last run)`);
    callback(null, response);
  }

  override registerResourceOutputs(req: OutputsRequest, callback: (err: unknown, response: unknown) => void): void {
    if (req.getUrn().includes("::pulumi:pulumi:Stack::")) this.stackOutputs = req.getOutputs()?.toJavaScript();
    super.registerResourceOutputs(req, callback);
  }

  /** How many resources came to each outcome. */
  summary(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const report of this.reports) counts.set(report.outcome, (counts.get(report.outcome) ?? 0) + 1);
    return counts;
  }

  private async apply(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string | undefined; state: Record<string, unknown> }> {
    const request = this.current;
    this.current = undefined;
    if (this.failure) throw terminating("not applied: an earlier resource failed");
    const parent = request?.getParent() ?? "";
    const urn = urnOf(parent, args.type, args.name);
    const earlier = aliasUrns(pulumi.getStack(), pulumi.getProject(), { type: args.type, name: args.name, parentUrn: parent }, aliasSpecsOf(request?.getAliasesList() ?? []), this.aliases.get(parent) ?? []);
    this.aliases.set(urn, earlier);
    if (!args.custom || args.type === "pulumi:pulumi:Stack") return { id: undefined, state: {} };
    this.registered.add(urn);
    const label = `${args.type} ${args.name}`;
    const started = Date.now();
    try {
      const { value: inputs, secretKeys, secretStrings } = unwrapSecrets(args.inputs as JsonObject);
      this.ctx.masker.add(secretStrings);
      const prior = this.ctx.state.get(urn) ?? this.adoptAlias(urn, earlier);
      const base = {
        urn,
        type: args.type,
        name: args.name,
        provider: args.provider ?? "",
        dependencies: request?.getDependenciesList() ?? [],
        deleteBeforeReplace: request?.getDeletebeforereplace() ?? false,
        ...(request?.getRetainondelete() === true && { retainOnDelete: true }),
      };
      if (args.type.startsWith("pulumi:providers:")) return this.provider(base, inputs, prior, started);

      const kind = KINDS[args.type];
      if (!kind) {
        throw new InputError(`${label}: resource type ${args.type} is not supported by the live harness (supported: ${Object.keys(KINDS).join(", ")})`);
      }
      if (AUTONAMED.has(args.type) && inputs["name"] === undefined) {
        inputs["name"] = prior && typeof prior.inputs["name"] === "string" ? prior.inputs["name"] : `${args.name}-${Math.random().toString(16).slice(2, 9)}`;
        this.reporter.line(`  note: ${label} has no name; auto-named ${String(inputs["name"])} as Pulumi would`);
      }
      const progress = (message: string) => this.reporter.line(`    ${this.ctx.masker.mask(message)}`);
      const ctx: ApplyContext = { ...this.ctx, progress };
      const req: ApplyRequest = { type: args.type, name: args.name, urn, inputs, secretInputKeys: secretKeys, provider: base.provider };
      if (kind.check) req.inputs = await kind.check(req, ctx);

      const extraSecretOutputs = request?.getAdditionalsecretoutputsList() ?? [];
      const diff = prior && prior.type === args.type ? kind.diff(prior, req) : undefined;
      if (prior && diff?.action === "same") {
        // Nothing to do: the stored resource stands, with its outputs.
        this.ctx.state.put({ ...prior, ...base, inputs: req.inputs, secretInputKeys: [...secretKeys] });
        this.report({ urn, type: args.type, name: args.name, outcome: "unchanged", seconds: 0 }, `  = unchanged ${label}`);
        return { id: prior.id, state: withSecrets(prior.outputs, [...prior.secretOutputKeys, ...extraSecretOutputs]) };
      }

      let applied: Applied;
      let outcome: Outcome;
      const fields = diff?.fields ?? [];
      this.reporter.line(`  … ${label}${prior ? ` (${diff?.action}: ${fields.join(", ")})` : ""}`);
      if (!prior || !diff) {
        applied = await kind.create(req, ctx);
        outcome = "created";
      } else if (diff.action === "update") {
        applied = await (kind.update ?? ((r: ApplyRequest, _p: StoredResource, c: ApplyContext) => kind.create(r, c)))(req, prior, ctx);
        outcome = "updated";
      } else if (base.deleteBeforeReplace) {
        if (prior.retainOnDelete === true) this.reporter.line(`    kept ${label} (retainOnDelete): not deleted before its replacement`);
        else await kind.delete?.(prior, ctx);
        this.ctx.state.remove(urn);
        applied = await kind.create(req, ctx);
        outcome = "replaced";
      } else {
        // Create first, delete the old one after the whole update (Pulumi's default order).
        this.ctx.state.addPendingDelete(prior);
        applied = await kind.create(req, ctx);
        outcome = "replaced";
      }
      const secretOutputs = [...new Set([...(applied.secretOutputs ?? []), ...extraSecretOutputs])];
      this.ctx.state.put({ ...base, id: applied.id, inputs: req.inputs, outputs: applied.outputs, secretInputKeys: [...secretKeys], secretOutputKeys: secretOutputs });
      this.report(
        { urn, type: args.type, name: args.name, outcome, seconds: (Date.now() - started) / 1000, fields },
        `  ✓ ${outcome} ${label} (${seconds(started)})`,
      );
      return { id: applied.id, state: withSecrets(applied.outputs, secretOutputs) };
    } catch (error) {
      const failure = new Error(this.ctx.masker.mask(`${label} failed after ${seconds(started)}: ${(error as Error).message}`));
      if (!this.failure) {
        this.failure = failure;
        this.onFailure(failure);
      }
      throw terminating(failure.message);
    }
  }

  /**
   * A provider resource keeps its id, as the engine's provider registry does on an update (a config change its
   * DiffConfig does not call a replacement, e.g. the docker provider's `host` when the primary changes): every
   * resource referring to it, a deleted one too, is then handled with the new config.
   */
  private provider(
    base: Omit<StoredResource, "id" | "inputs" | "outputs" | "secretInputKeys" | "secretOutputKeys">,
    inputs: JsonObject,
    prior: StoredResource | undefined,
    started: number,
  ): { id: string; state: Record<string, unknown> } {
    const same = prior !== undefined && inputsDiff(prior.inputs, inputs).action === "same";
    const id = prior ? prior.id : `provider-${base.name}-${Date.now().toString(36)}`;
    const outcome = same ? "unchanged" : prior ? "updated" : "registered";
    this.ctx.providers.register(id, base.type, base.name, inputs);
    this.ctx.state.put({ ...base, id, inputs, outputs: inputs, secretInputKeys: [], secretOutputKeys: [] });
    this.report(
      { urn: base.urn, type: base.type, name: base.name, outcome, seconds: (Date.now() - started) / 1000 },
      `  ${same ? "=" : "✓"} ${outcome} provider ${base.type.slice("pulumi:providers:".length)} ${base.name}`,
    );
    return { id, state: inputs };
  }

  /** A record stored under one of the resource's earlier URNs moves to its URN, as the engine does with aliases. */
  private adoptAlias(urn: string, earlier: string[]): StoredResource | undefined {
    for (const alias of earlier) {
      const record = this.ctx.state.get(alias);
      if (!record) continue;
      this.ctx.state.remove(alias);
      const moved = { ...record, urn };
      this.ctx.state.put(moved);
      this.reporter.line(`  note: ${urn.split("::").slice(-2).join(" ")} was ${alias.split("::").slice(-2).join(" ")} (alias)`);
      return moved;
    }
    return undefined;
  }

  private report(report: ResourceReport, line: string): void {
    this.reports.push(report);
    this.reporter.line(line);
  }
}

/** The URN the mock monitor gives a resource (the parent's type qualifies the type, as in MockMonitor.newUrn). */
export function urnOf(parent: string, type: string, name: string): string {
  return aliasesUrnOf(pulumi.getStack(), pulumi.getProject(), parent, type, name);
}

/** Every string under a stored resource's secret inputs and outputs, for the masker. */
export function secretStringsOf(record: StoredResource): string[] {
  const out: string[] = [];
  const walk = (value: Json | undefined) => {
    if (typeof value === "string" && value.length > 0) out.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") Object.values(value).forEach(walk);
  };
  for (const key of record.secretInputKeys) walk(record.inputs[key]);
  for (const key of record.secretOutputKeys) walk(record.outputs[key]);
  return out;
}

/** Output keys that must stay secret are returned as secret Outputs, as the engine would mark them. */
function withSecrets(outputs: JsonObject, secretKeys: string[]): Record<string, unknown> {
  const state: Record<string, unknown> = { ...outputs };
  for (const key of new Set(secretKeys)) if (key in state) state[key] = pulumi.secret(state[key]);
  return state;
}

/**
 * The error handed back to the SDK. Code UNAVAILABLE is what the real engine's
 * monitor answers once a deployment has failed: the SDK then stops quietly
 * instead of raising one unhandled rejection per pending resource. The
 * failure itself has already been reported through onFailure.
 */
function terminating(message: string): Error {
  const GRPC_UNAVAILABLE = 14;
  return Object.assign(new Error(message), { code: GRPC_UNAVAILABLE });
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

export { Masker };
export type { ProviderRegistry };
