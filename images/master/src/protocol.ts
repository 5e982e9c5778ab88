// THE implementation of the MQTT payload schema in docs/protocol.md: topics,
// payload shapes and the validation every received message goes through.
import { z } from "zod";

export const PROTOCOL_VERSION = 1;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

const WORKER_ID = /^[A-Za-z0-9_.-]{1,64}$/;

const workerId = z.string().regex(WORKER_ID, "worker id must be 1-64 of [A-Za-z0-9_.-]");
const language = z.enum(["python", "go", "java", "typescript"]);
const timestamp = z.number().int().min(0);
const taskIdOrNull = z.string().nullable();

const base = { v: z.literal(PROTOCOL_VERSION), ts: timestamp };

export const registerSchema = z.object({
  ...base,
  type: z.literal("register"),
  worker_id: workerId,
  language,
  node: z.string(),
  provider: z.string(),
});

export const heartbeatSchema = z.object({
  ...base,
  type: z.literal("heartbeat"),
  worker_id: workerId,
  language,
  node: z.string(),
  status: z.enum(["idle", "busy"]),
  task_id: taskIdOrNull,
});

export const statusSchema = z.object({
  ...base,
  type: z.literal("status"),
  worker_id: workerId,
  status: z.enum(["idle", "busy", "offline"]),
  task_id: taskIdOrNull,
  rejected_task_id: z.string().optional(),
});

export const taskSchema = z.object({
  ...base,
  type: z.literal("task"),
  task_id: z.string().min(1),
  query: z.string().min(1).max(16000),
  lease_ms: z.number().int().min(0),
  has_credential: z.boolean(),
});

export const logSchema = z.object({
  ...base,
  type: z.literal("log"),
  source: z.string(),
  level: z.enum(["debug", "info", "warn", "error"]),
  message: z.string(),
  task_id: z.string().optional(),
});

export type RegisterMsg = z.infer<typeof registerSchema>;
export type HeartbeatMsg = z.infer<typeof heartbeatSchema>;
export type StatusMsg = z.infer<typeof statusSchema>;
export type TaskMsg = z.infer<typeof taskSchema>;
export type LogMsg = z.infer<typeof logSchema>;
export type WorkerMsg = RegisterMsg | HeartbeatMsg | StatusMsg;
export type IncomingMsg = WorkerMsg | LogMsg;

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

const schemaByType = {
  register: registerSchema,
  heartbeat: heartbeatSchema,
  status: statusSchema,
  log: logSchema,
} as const;

/**
 * Validates one received MQTT message. The reason never contains payload
 * content, so it can be logged as it is.
 */
export function parseIncoming(prefix: string, topic: string, payload: Uint8Array): ParseResult {
  const expected = expectedType(prefix, topic);
  if (!expected) return { ok: false, reason: "unexpected topic" };
  if (payload.byteLength > MAX_PAYLOAD_BYTES) return { ok: false, reason: "payload over 64 KiB" };
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return { ok: false, reason: "not a JSON object" };
  }
  const record = json as Record<string, unknown>;
  if (record.v !== PROTOCOL_VERSION) return { ok: false, reason: "wrong or missing v" };
  if (record.type !== expected.type) {
    return { ok: false, reason: `type is not ${expected.type}` };
  }
  const parsed = schemaByType[expected.type].safeParse(json);
  if (!parsed.success) {
    // Field names only: values may hold anything the sender put there.
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join(".") || "(root)"))];
    return { ok: false, reason: `invalid field(s): ${fields.join(", ")}` };
  }
  const msg = parsed.data;
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
