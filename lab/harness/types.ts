// What every applier receives and returns.
import type { JsonObject } from "./json";
import type { Masker } from "./secrets";
import type { HarnessState } from "./harness-state";
import type { ProviderRegistry } from "./providers";

export interface ApplyRequest {
  type: string;
  name: string;
  /** Inputs with secret markers removed. */
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
}

/** "created" / "updated" / "unchanged" tell the operator what happened for real. */
export type Outcome = "created" | "updated" | "unchanged" | "ran" | "registered" | "skipped";

export interface Applied {
  id: string;
  /** Output properties; keys listed in `secretOutputs` are returned as secrets. */
  outputs: Record<string, unknown>;
  secretOutputs?: string[];
  outcome: Outcome;
}
