// Pulumi hands the mock monitor secret inputs wrapped in a marker object
// ({"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value}).
// `unwrapSecrets` strips the markers so the appliers see plain values, and
// collects every secret string so the `Masker` can blank them out of anything
// the harness prints (command output, error messages, stack outputs).
import { isObject, type Json, type JsonObject } from "./json";

export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";

export interface Unwrapped {
  value: Json;
  /** Top-level keys whose value was (or contained) a secret. */
  secretKeys: Set<string>;
  /** Every string found inside a secret, for masking. */
  secretStrings: Set<string>;
}

export function isSecretMarker(value: unknown): value is { value: unknown } {
  return isObject(value) && value[SECRET_SIG_KEY] === SECRET_SIG_VALUE;
}

/** Strips secret markers from a resource's inputs, remembering what was secret. */
export function unwrapSecrets(inputs: JsonObject): Unwrapped & { value: JsonObject } {
  const secretKeys = new Set<string>();
  const secretStrings = new Set<string>();
  const value: JsonObject = {};
  for (const [key, raw] of Object.entries(inputs)) {
    const before = secretStrings.size;
    const wasSecret = isSecretMarker(raw);
    value[key] = strip(raw, wasSecret, secretStrings);
    if (wasSecret || secretStrings.size > before) secretKeys.add(key);
  }
  return { value, secretKeys, secretStrings };
}

/**
 * Fields that name where a secret is used, not the secret: the SDK marks a whole object
 * secret (a docker.Image's `registry`, a service's `auth`, a command's `connection`) when
 * one field in it is, and masking the registry address or host in every log line helps
 * nobody. Their values are not collected for masking (they stay secret in the state).
 */
const IDENTIFYING_FIELDS = new Set(["server", "serverAddress", "address", "username", "user", "host", "port"]);

function strip(raw: unknown, insideSecret: boolean, found: Set<string>, field?: string): Json {
  if (isSecretMarker(raw)) return strip(raw.value, true, found, field);
  if (typeof raw === "string") {
    if (insideSecret && raw.length > 0 && !(field !== undefined && IDENTIFYING_FIELDS.has(field))) found.add(raw);
    return raw;
  }
  if (raw === undefined || raw === null || typeof raw === "number" || typeof raw === "boolean") return raw ?? null;
  if (Array.isArray(raw)) return raw.map((item) => strip(item, insideSecret, found));
  if (isObject(raw)) {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(raw)) out[key] = strip(item, insideSecret, found, key);
    return out;
  }
  // Assets, archives and resource references have no place in this program's inputs.
  throw new Error(`unsupported input value of type ${typeof raw} (${Object.prototype.toString.call(raw)})`);
}

/**
 * Replaces every known secret (and each of its lines, for multi-line keys)
 * with [secret]. Short values are skipped: masking "1" everywhere would
 * garble output without protecting anything.
 */
export class Masker {
  private readonly secrets = new Set<string>();
  private readonly publicValues = new Set<string>();

  /**
   * Values known to be public (plain stack config such as node addresses).
   * A secret object drags its plain fields along (a `connection` is secret
   * because of its key, not its host): those fields are not masked.
   */
  addPublic(values: Iterable<string>): void {
    for (const value of values) {
      this.publicValues.add(value);
      this.secrets.delete(value);
    }
  }

  add(values: Iterable<string>): void {
    for (const value of values) {
      if (value.length < 4 || this.publicValues.has(value)) continue;
      this.secrets.add(value);
      for (const line of value.split(/\r?\n/)) if (line.trim().length >= 8 && !this.publicValues.has(line.trim())) this.secrets.add(line.trim());
    }
  }

  mask(text: string): string {
    // Longest first, so a whole key is replaced before any of its lines.
    const ordered = [...this.secrets].sort((a, b) => b.length - a.length);
    let out = text;
    for (const secret of ordered) out = out.split(secret).join("[secret]");
    return out;
  }
}
