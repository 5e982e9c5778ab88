// What every resource kind implements, and what it receives and returns.
import type { JsonObject } from "./json";
import type { Masker } from "./secrets";
import type { HarnessState, StoredResource } from "./harness-state";
import type { ProviderRegistry } from "./providers";

export interface ApplyRequest {
  type: string;
  name: string;
  urn: string;
  /** Inputs with secret markers removed (after the kind's check, when it has one). */
  inputs: JsonObject;
  /** Top-level input keys that were secret (their outputs stay secret). */
  secretInputKeys: Set<string>;
  /** The provider reference ("urn::id") or "" for the default provider. */
  provider: string;
}

export interface ApplyContext {
  masker: Masker;
  providers: ProviderRegistry;
  state: HarnessState;
  /** Directory relative paths in inputs are resolved against (the Pulumi project). */
  projectDir: string;
  /** Prints a progress line for the resource being applied (masked). */
  progress(message: string): void;
  /** A warning the real engine would print (collected; a clean deploy has none). */
  warn(message: string): void;
}

/** What happened to a resource, as `pulumi up` reports it. */
export type Outcome = "created" | "updated" | "replaced" | "unchanged" | "deleted" | "retained" | "registered";

export interface Applied {
  id: string;
  /** Output properties; keys listed in `secretOutputs` are returned as secrets. */
  outputs: JsonObject;
  secretOutputs?: string[];
}

/** The provider's answer to "what would change": nothing, an in-place update, or a replacement. */
export interface Diff {
  action: "same" | "update" | "replace";
  /** The input paths that differ, for the progress line. */
  fields: string[];
}

/**
 * One resource type as its provider behaves: `check` fills defaults and
 * computed inputs (stored and diffed like the provider's Check), `diff`
 * compares new inputs with the stored resource, the rest act on the lab.
 */
export interface ResourceKind {
  check?(req: ApplyRequest, ctx: ApplyContext): Promise<JsonObject> | JsonObject;
  diff(prior: StoredResource, req: ApplyRequest): Diff;
  create(req: ApplyRequest, ctx: ApplyContext): Promise<Applied>;
  /** Defaults to create (for kinds whose update is the same call). */
  update?(req: ApplyRequest, prior: StoredResource, ctx: ApplyContext): Promise<Applied>;
  /** Runs with the stored resource only, as the provider's Delete does. Defaults to doing nothing. */
  delete?(prior: StoredResource, ctx: ApplyContext): Promise<void>;
}
