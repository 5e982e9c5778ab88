// The resource monitor the program talks to. It is Pulumi's own MockMonitor
// (so the SDK behaves exactly as under `pulumi.runtime.setMocks`), with a
// `newResource` that APPLIES each resource to the lab and returns the real
// outputs. The subclass only peeks at each request for what the mock API does
// not pass on (additionalSecretOutputs, parent) and keeps the stack outputs.
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { applyRemoteCommand } from "./appliers/command";
import { applyImage } from "./appliers/image";
import { applyRandom } from "./appliers/random";
import { applyNetwork, applyService, applySwarmData } from "./appliers/swarm";
import { InputError, type JsonObject } from "./json";
import { Masker, unwrapSecrets } from "./secrets";
import type { Applied, ApplyContext, ApplyRequest } from "./types";
import type { HarnessState } from "./harness-state";
import type { ProviderRegistry } from "./providers";

type Applier = (req: ApplyRequest, ctx: ApplyContext) => Promise<Applied>;

/** Every custom resource type the harness can apply. Anything else fails loudly. */
const APPLIERS: Record<string, Applier> = {
  "command:remote:Command": applyRemoteCommand,
  "docker:index/image:Image": applyImage,
  "docker:index/network:Network": applyNetwork,
  "docker:index/secret:Secret": (req, ctx) => applySwarmData("secret", req, ctx),
  "docker:index/serviceConfig:ServiceConfig": (req, ctx) => applySwarmData("config", req, ctx),
  "docker:index/service:Service": applyService,
  "random:index/randomPassword:RandomPassword": applyRandom,
  "random:index/randomString:RandomString": applyRandom,
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
}

interface OutputsRequest {
  getUrn(): string;
  getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined;
}

export class LiveMonitor extends MockMonitor {
  /** The request being registered right now (read synchronously by newResource). */
  private current: RegisterRequest | undefined;
  stackOutputs: Record<string, unknown> | undefined;
  failure: Error | undefined;
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly ctx: Omit<ApplyContext, "progress">,
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

  override registerResourceOutputs(req: OutputsRequest, callback: (err: unknown, response: unknown) => void): void {
    if (req.getUrn().includes("::pulumi:pulumi:Stack::")) this.stackOutputs = req.getOutputs()?.toJavaScript();
    super.registerResourceOutputs(req, callback);
  }

  /** How many resources of each outcome were applied. */
  summary(): Map<string, number> {
    return this.counts;
  }

  private async apply(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string | undefined; state: Record<string, unknown> }> {
    const extraSecretOutputs = this.current?.getAdditionalsecretoutputsList() ?? [];
    this.current = undefined;
    if (this.failure) throw terminating("not applied: an earlier resource failed");
    if (!args.custom || args.type === "pulumi:pulumi:Stack") return { id: undefined, state: {} };
    const label = `${args.type} ${args.name}`;
    const started = Date.now();
    try {
      const { value: inputs, secretKeys, secretStrings } = unwrapSecrets(args.inputs as JsonObject);
      this.ctx.masker.add(secretStrings);
      if (args.type.startsWith("pulumi:providers:")) {
        const id = `provider-${args.name}-${this.counts.size}-${Date.now().toString(36)}`;
        this.ctx.providers.register(id, args.type, args.name, inputs);
        this.count("registered");
        this.reporter.line(`  registered provider ${args.type.slice("pulumi:providers:".length)} ${args.name}`);
        return { id, state: args.inputs };
      }
      const applier = APPLIERS[args.type];
      if (!applier) {
        throw new InputError(`${label}: resource type ${args.type} is not supported by the live harness (supported: ${Object.keys(APPLIERS).join(", ")})`);
      }
      if (AUTONAMED.has(args.type) && inputs["name"] === undefined) {
        inputs["name"] = `${args.name}-${Math.random().toString(16).slice(2, 9)}`;
        this.reporter.line(`  note: ${label} has no name; auto-named ${inputs["name"]} as Pulumi would`);
      }
      const request: ApplyRequest = { type: args.type, name: args.name, inputs, secretInputKeys: secretKeys, provider: args.provider ?? "" };
      const progress = (message: string) => this.reporter.line(`    ${this.ctx.masker.mask(message)}`);
      this.reporter.line(`  … ${label}`);
      const applied = await applier(request, { ...this.ctx, progress });
      this.count(applied.outcome);
      this.reporter.line(`  ✓ ${applied.outcome} ${label} (${seconds(started)})`);
      return { id: applied.id, state: withSecrets(applied, [...extraSecretOutputs, ...(applied.secretOutputs ?? [])]) };
    } catch (error) {
      const failure = new Error(this.ctx.masker.mask(`${label} failed after ${seconds(started)}: ${(error as Error).message}`));
      if (!this.failure) {
        this.failure = failure;
        this.onFailure(failure);
      }
      throw terminating(failure.message);
    }
  }

  private count(outcome: string): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
  }
}

/** Output keys that must stay secret are returned as secret Outputs, as the engine would mark them. */
function withSecrets(applied: Applied, secretKeys: string[]): Record<string, unknown> {
  const state: Record<string, unknown> = { ...applied.outputs };
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
