// The master's side of the MQTT contract (docs/protocol.md): topics, the payload types, the
// messages it sends, and the validation of every message it receives against the one schema,
// proto/mqtt/payloads.schema.json (ajv). What the schema cannot say lives here: the byte limit
// is checked before parsing, UTF-8 before JSON, and which topic carries which type.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";

/** Where the schema is, relative to the proto directory (resolveProtoDir). */
export const PAYLOAD_SCHEMA_FILE = "mqtt/payloads.schema.json";
/** The annotation of the schema's root that gives the largest payload in bytes. */
const MAX_BYTES_KEYWORD = "x-max-payload-bytes";
/** "v" of every payload (the schema's $defs/version). */
export const PROTOCOL_VERSION = 1;

type Language = "python" | "go" | "java" | "typescript";
/** A payload of type T: the envelope every message has, and its own fields. */
type Message<T extends string, Fields> = { v: typeof PROTOCOL_VERSION; type: T; ts: number } & Fields;

export type RegisterMsg = Message<"register", { worker_id: string; language: Language; node: string; provider: string }>;
export type HeartbeatMsg = Message<"heartbeat", { worker_id: string; language: Language; node: string; status: "idle" | "busy"; task_id: string | null; held_task_ids?: string[] | undefined }>;
export type StatusMsg = Message<"status", { worker_id: string; status: "idle" | "busy" | "offline"; task_id: string | null; rejected_task_id?: string | undefined }>;
export type TaskMsg = Message<"task", { task_id: string; query: string; lease_ms: number; has_credential: boolean }>;
export type LogMsg = Message<"log", { source: string; level: "debug" | "info" | "warn" | "error"; message: string; task_id?: string | undefined }>;
export type WorkerMsg = RegisterMsg | HeartbeatMsg | StatusMsg;
export type IncomingMsg = WorkerMsg | LogMsg;

/** Each $defs entry of the schema and the message it describes. */
export interface MessageOf {
  register: RegisterMsg;
  heartbeat: HeartbeatMsg;
  status: StatusMsg;
  rejection: StatusMsg;
  lastWill: StatusMsg;
  task: TaskMsg;
  log: LogMsg;
}
export type PayloadType = keyof MessageOf;
export const PAYLOAD_TYPES: readonly PayloadType[] = ["register", "heartbeat", "status", "rejection", "lastWill", "task", "log"];

/** Why a payload is refused: the stage that refused it (the shared test vectors name the same). */
export type PayloadRule = "too-large" | "not-json" | "not-object" | "field";
/** A top-level field the schema refuses, and the schema keyword that refuses it. */
export interface FieldProblem {
  field: string;
  keyword: string;
}
export type Verdict<T> = { ok: true; msg: T } | { ok: false; rule: PayloadRule; problems: FieldProblem[]; reason: string };

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The field each ajv error is about (the missing one for `required`); undefined when the payload is not an object. */
function fieldProblems(errors: readonly ErrorObject[]): FieldProblem[] | undefined {
  const problems: FieldProblem[] = [];
  for (const { instancePath, keyword, params } of errors) {
    // The first segment of a JSON Pointer (RFC 6901): every field is top-level.
    const field = instancePath.split("/")[1]?.replace(/~1/g, "/").replace(/~0/g, "~");
    if (field !== undefined) problems.push({ field, keyword });
    else if (keyword === "required") problems.push({ field: String(params["missingProperty"]), keyword });
    else if (keyword === "type") return undefined;
  }
  return problems;
}

/** proto/mqtt/payloads.schema.json, compiled with ajv. */
export class PayloadSchema {
  /** The largest payload a receiver parses, in bytes (the schema's x-max-payload-bytes). */
  readonly maxBytes: number;
  private readonly validators = new Map<PayloadType, ValidateFunction>();

  /** Reads and compiles the schema under protoDir (the proto directory); an error names the file. */
  static load(protoDir: string): PayloadSchema {
    const file = join(protoDir, PAYLOAD_SCHEMA_FILE);
    try {
      return new PayloadSchema(JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>);
    } catch (err) {
      throw new Error(`payload schema ${file} (set PROTO_DIR): ${(err as Error).message}`);
    }
  }

  constructor(schema: Record<string, unknown>) {
    this.maxBytes = Number(schema[MAX_BYTES_KEYWORD]);
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1) throw new Error(`${MAX_BYTES_KEYWORD} must be a positive integer`);
    // strictRequired is off: $defs/rejection requires a field that $defs/status (its $ref) defines.
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).addVocabulary([MAX_BYTES_KEYWORD]);
    ajv.addSchema(schema);
    for (const type of PAYLOAD_TYPES) {
      const validate = ajv.getSchema(`${String(schema["$id"])}#/$defs/${type}`);
      if (!validate) throw new Error(`no $defs/${type}`);
      this.validators.set(type, validate);
    }
  }

  /** Validates received bytes as a `type` message. A refusal's reason holds no payload content. */
  validate<K extends PayloadType>(type: K, payload: Uint8Array): Verdict<MessageOf[K]> {
    const refuse = (rule: PayloadRule, reason: string, problems: FieldProblem[] = []) => ({ ok: false as const, rule, problems, reason });
    if (payload.byteLength > this.maxBytes) return refuse("too-large", `payload over ${this.maxBytes / 1024} KiB`);
    let json: unknown;
    try {
      json = JSON.parse(strictUtf8.decode(payload));
    } catch {
      return refuse("not-json", "not UTF-8 JSON");
    }
    const validate = this.validators.get(type) as ValidateFunction<MessageOf[K]>;
    if (validate(json)) return { ok: true, msg: json };
    const problems = fieldProblems(validate.errors ?? []);
    if (!problems) return refuse("not-object", "not a JSON object");
    return refuse("field", `invalid field(s): ${problems.map((p) => `${p.field} (${p.keyword})`).join(", ")}`, problems);
  }
}

export interface Topics {
  prefix: string;
  /**
   * Subscriptions of the master. Worker log events are only read when the
   * master prints debug lines (the only thing it does with them), so at other
   * levels their parsing costs nothing.
   */
  subscriptions(withWorkerLogs: boolean): string[];
  tasks(workerId: string): string;
  logs: string;
}

export function topics(prefix: string): Topics {
  return {
    prefix,
    subscriptions: (withWorkerLogs) => [
      `${prefix}/workers/+/register`,
      `${prefix}/workers/+/heartbeat`,
      `${prefix}/workers/+/status`,
      ...(withWorkerLogs ? [`${prefix}/logs`] : []),
    ],
    tasks: (workerId) => `${prefix}/workers/${workerId}/tasks`,
    logs: `${prefix}/logs`,
  };
}

export type ParseResult = { ok: true; msg: IncomingMsg } | { ok: false; reason: string };

/** Which payload type a topic carries, or undefined for topics we do not read. */
function expectedType(
  prefix: string,
  topic: string,
): { type: IncomingMsg["type"]; workerId?: string } | undefined {
  if (topic === `${prefix}/logs`) return { type: "log" };
  const head = `${prefix}/workers/`;
  if (!topic.startsWith(head)) return undefined;
  const parts = topic.slice(head.length).split("/");
  if (parts.length !== 2) return undefined;
  const [id, kind] = parts as [string, string];
  if (kind === "register" || kind === "heartbeat" || kind === "status") {
    return { type: kind, workerId: id };
  }
  return undefined;
}

/**
 * Validates one received MQTT message: the payload against the type its topic carries, and
 * the worker_id against the topic. The reason never contains payload content, so it can be
 * logged as it is.
 */
export function parseIncoming(schema: PayloadSchema, prefix: string, topic: string, payload: Uint8Array): ParseResult {
  const expected = expectedType(prefix, topic);
  if (!expected) return { ok: false, reason: "unexpected topic" };
  const verdict = schema.validate(expected.type, payload);
  if (!verdict.ok) return { ok: false, reason: verdict.reason };
  const msg = verdict.msg;
  if (expected.workerId !== undefined && "worker_id" in msg && msg.worker_id !== expected.workerId) {
    return { ok: false, reason: "worker_id differs from topic" };
  }
  return { ok: true, msg };
}

export function encodeTask(task: Omit<TaskMsg, "v" | "type">): string {
  const msg: TaskMsg = { v: PROTOCOL_VERSION, type: "task", ...task };
  return JSON.stringify(msg);
}

export function encodeLog(log: Omit<LogMsg, "v" | "type">): string {
  const msg: LogMsg = { v: PROTOCOL_VERSION, type: "log", ...log };
  return JSON.stringify(msg);
}
