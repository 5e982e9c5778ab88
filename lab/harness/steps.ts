// The engine's bookkeeping, as pure functions: how inputs differ, and in
// which order resources the program no longer declares are deleted.
import { isObject, type Json, type JsonObject } from "./json";
import type { StoredResource } from "./harness-state";
import type { Diff } from "./types";

/**
 * The default diff of most providers: the top-level inputs that differ (deep
 * equality). A change to one of `replaceOn` replaces the resource; any other
 * change updates it. `ignore` drops paths the provider leaves out of its diff.
 */
export function inputsDiff(
  prior: JsonObject,
  next: JsonObject,
  options: { replaceOn?: readonly string[] | "all"; ignore?: (path: string) => boolean } = {},
): Diff {
  const fields = differingPaths(prior, next, "").filter((field) => !(options.ignore?.(field) ?? false));
  if (fields.length === 0) return { action: "same", fields };
  const replaceOn = options.replaceOn ?? [];
  const replaces = replaceOn === "all" || fields.some((field) => replaceOn.includes(field.split(/[.[]/)[0] as string));
  return { action: replaces ? "replace" : "update", fields };
}

/** Paths where two JSON values differ; objects are walked, anything else is compared whole. */
export function differingPaths(a: Json | undefined, b: Json | undefined, path: string): string[] {
  const empty = (value: Json | undefined) => value === undefined || value === null;
  if (empty(a) && empty(b)) return [];
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((key) => differingPaths(a[key], b[key], path === "" ? key : `${path}.${key}`));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path === "" ? "(all)" : path];
}

/**
 * Deletes go dependents first: a resource is deleted before everything it
 * depends on (Pulumi's reverse topological order). Among independent
 * resources the later-created goes first. Providers go last.
 */
export function deleteOrder(records: readonly StoredResource[]): StoredResource[] {
  const byUrn = new Map(records.map((record) => [record.urn, record]));
  const remaining = new Set(records);
  const ordered: StoredResource[] = [];
  const isProvider = (record: StoredResource) => record.type.startsWith("pulumi:providers:");
  while (remaining.size > 0) {
    // Ready: nothing still waiting to be deleted depends on it.
    const ready = [...remaining].filter(
      (candidate) =>
        ![...remaining].some((other) => other !== candidate && (other.dependencies.includes(candidate.urn) || other.provider.startsWith(`${candidate.urn}::`))),
    );
    const next = ready.filter((record) => !isProvider(record));
    const pick = (next.length > 0 ? next : ready).at(-1) ?? [...remaining][0];
    if (!pick) break;
    ordered.push(pick);
    remaining.delete(pick);
    byUrn.delete(pick.urn);
  }
  return ordered;
}
