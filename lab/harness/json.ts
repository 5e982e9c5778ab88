// Small typed readers for the plain-JSON inputs the Pulumi mock monitor hands
// us. Every reader names the input path in its error, and `fieldsOf` refuses
// keys it was not told about, so a field the harness does not translate fails
// loudly instead of being dropped.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Asserts `value` is an object whose set keys are all in `known`; returns it. */
export function fieldsOf(value: Json | undefined, path: string, known: readonly string[]): JsonObject {
  if (!isObject(value)) throw new InputError(`${path}: expected an object, got ${describe(value)}`);
  const unknown = Object.keys(value).filter((key) => value[key] !== null && value[key] !== undefined && !known.includes(key));
  if (unknown.length > 0) {
    throw new InputError(
      `${path}: field(s) ${unknown.map((key) => `${path}.${key}`).join(", ")} not supported by the live harness ` +
        `(it translates only: ${known.join(", ")})`,
    );
  }
  return value;
}

/** The value of `key`, or undefined when absent or null. */
export function opt(obj: JsonObject, key: string): Json | undefined {
  const value = obj[key];
  return value === null ? undefined : value;
}

export function optString(obj: JsonObject, key: string, path: string): string | undefined {
  const value = opt(obj, key);
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new InputError(`${path}.${key}: expected a string, got ${describe(value)}`);
  return value;
}

export function reqString(obj: JsonObject, key: string, path: string): string {
  const value = optString(obj, key, path);
  if (value === undefined || value === "") throw new InputError(`${path}.${key}: is required`);
  return value;
}

export function optNumber(obj: JsonObject, key: string, path: string): number | undefined {
  const value = opt(obj, key);
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InputError(`${path}.${key}: expected a number, got ${describe(value)}`);
  }
  return value;
}

export function optBoolean(obj: JsonObject, key: string, path: string): boolean | undefined {
  const value = opt(obj, key);
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw new InputError(`${path}.${key}: expected true or false, got ${describe(value)}`);
  return value;
}

export function optStringList(obj: JsonObject, key: string, path: string): string[] | undefined {
  const value = opt(obj, key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === "string")) {
    throw new InputError(`${path}.${key}: expected a list of strings, got ${describe(value)}`);
  }
  return value;
}

export function optObjectList(obj: JsonObject, key: string, path: string): JsonObject[] | undefined {
  const value = opt(obj, key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every(isObject)) {
    throw new InputError(`${path}.${key}: expected a list of objects, got ${describe(value)}`);
  }
  return value;
}

export function optStringMap(obj: JsonObject, key: string, path: string): Record<string, string> | undefined {
  const value = opt(obj, key);
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((item) => typeof item === "string")) {
    throw new InputError(`${path}.${key}: expected a map of strings, got ${describe(value)}`);
  }
  return value as Record<string, string>;
}

export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], path: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InputError(`${path}: "${value}" is not one of ${allowed.join(", ")}`);
  }
  return value as T;
}

/** A short description of a bad value's type, never the value itself (it may be a secret). */
function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** Drops undefined members so the JSON sent to Docker carries only what was set. */
export function compact<T extends Record<string, unknown>>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) if (value !== undefined) out[key] = value;
  return out as T;
}
