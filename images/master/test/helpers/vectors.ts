// The shared MQTT payload test vectors (proto/mqtt/vectors/payloads.json; their format is
// proto/mqtt/vectors/format.schema.json): every language's unit tests read the same file.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { PayloadRule, PayloadType } from "../../src/protocol";
import { PROTO_DIR } from "./fakeWorker";

export const VECTORS_DIR = join(PROTO_DIR, "mqtt", "vectors");

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface VectorCase {
  name: string;
  set?: Record<string, Json>;
  unset?: string[];
  fill?: { field: string; unit: string; times: number };
  pad_to_bytes?: number;
  text?: string;
  repeat?: number;
  hex?: string;
  valid: boolean;
  rule?: PayloadRule;
  field?: string;
  keyword?: string;
}

export interface VectorGroup {
  type: PayloadType;
  base: Record<string, Json>;
  cases: VectorCase[];
}

export const readVectorFile = (name: string): unknown => JSON.parse(readFileSync(join(VECTORS_DIR, name), "utf8"));

export function vectorGroups(): VectorGroup[] {
  return (readVectorFile("payloads.json") as { groups: VectorGroup[] }).groups;
}

/** The bytes a case stands for (format.schema.json says how). */
export function vectorBytes(group: VectorGroup, c: VectorCase): Buffer {
  if (c.text !== undefined) return Buffer.from(c.text.repeat(c.repeat ?? 1), "utf8");
  if (c.hex !== undefined) return Buffer.from(c.hex, "hex");
  const payload: Record<string, Json> = { ...group.base, ...c.set };
  for (const field of c.unset ?? []) delete payload[field];
  if (c.fill) payload[c.fill.field] = c.fill.unit.repeat(c.fill.times);
  const bytes = Buffer.from(JSON.stringify(payload), "utf8");
  if (c.pad_to_bytes === undefined) return bytes;
  if (bytes.length > c.pad_to_bytes) throw new Error(`vector "${c.name}": payload is already ${bytes.length} bytes`);
  return Buffer.concat([bytes, Buffer.alloc(c.pad_to_bytes - bytes.length, " ")]);
}
