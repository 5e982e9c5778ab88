import { describe, expect, it } from "vitest";
import { encodeTask, parseIncoming, taskSchema, topics } from "../src/protocol";

const P = "ai-system";
const enc = (v: unknown): Buffer => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));

const register = { v: 1, type: "register", worker_id: "python-vm2-1a2b", language: "python", node: "vm2", provider: "offline", ts: 1764355200000 };
const heartbeat = { v: 1, type: "heartbeat", worker_id: "python-vm2-1a2b", language: "python", node: "vm2", status: "busy", task_id: "q_1", ts: 1 };
const status = { v: 1, type: "status", worker_id: "python-vm2-1a2b", status: "idle", task_id: null, ts: 1 };
const log = { v: 1, type: "log", source: "python-vm2-1a2b", level: "info", message: "hello", ts: 1 };

const topicOf = (kind: string): string => `${P}/workers/python-vm2-1a2b/${kind}`;

describe("valid payloads from docs/protocol.md", () => {
  it.each([
    ["register", register],
    ["heartbeat", heartbeat],
    ["status", status],
    ["status", { ...status, status: "busy", task_id: "q_1", rejected_task_id: "q_2" }],
    ["status", { ...status, status: "offline" }],
  ])("accepts a %s", (kind, payload) => {
    const result = parseIncoming(P, topicOf(kind), enc(payload));
    expect(result).toEqual({ ok: true, msg: payload });
  });

  it("accepts a log, with or without task_id, and ignores unknown fields", () => {
    expect(parseIncoming(P, `${P}/logs`, enc(log)).ok).toBe(true);
    expect(parseIncoming(P, `${P}/logs`, enc({ ...log, task_id: "q_1", extra: [1] })).ok).toBe(true);
  });

  it("honours a custom prefix", () => {
    expect(parseIncoming("lab/x", "lab/x/workers/python-vm2-1a2b/status", enc(status)).ok).toBe(true);
    expect(parseIncoming("lab/x", topicOf("status"), enc(status))).toEqual({ ok: false, reason: "unexpected topic" });
  });
});

describe("malformed payloads are refused with a reason that holds no content", () => {
  const cases: [string, string, Buffer, RegExp][] = [
    ["not JSON", topicOf("status"), enc("{not json"), /not JSON/],
    ["JSON but not an object", topicOf("status"), enc("[1,2]"), /not a JSON object/],
    ["JSON null", topicOf("status"), enc("null"), /not a JSON object/],
    ["a JSON string", topicOf("status"), enc('"status"'), /not a JSON object/],
    ["missing v", topicOf("status"), enc({ ...status, v: undefined }), /v/],
    ["wrong v", topicOf("status"), enc({ ...status, v: 2 }), /v/],
    ["v as a string", topicOf("status"), enc({ ...status, v: "1" }), /v/],
    ["unknown type", topicOf("status"), enc({ ...status, type: "hello" }), /type/],
    ["type for another topic", topicOf("status"), enc(register), /type/],
    ["missing worker_id", topicOf("status"), enc({ ...status, worker_id: undefined }), /worker_id/],
    ["worker_id differs from topic", topicOf("status"), enc({ ...status, worker_id: "someone-else" }), /differs/],
    ["bad worker_id characters", `${P}/workers/bad id/status`, enc({ ...status, worker_id: "bad id" }), /worker_id/],
    ["worker_id too long", `${P}/workers/${"a".repeat(65)}/status`, enc({ ...status, worker_id: "a".repeat(65) }), /worker_id/],
    ["unknown status", topicOf("status"), enc({ ...status, status: "sleeping" }), /status/],
    ["task_id a number", topicOf("status"), enc({ ...status, task_id: 7 }), /task_id/],
    ["task_id missing", topicOf("status"), enc({ ...status, task_id: undefined }), /task_id/],
    ["rejected_task_id not a string", topicOf("status"), enc({ ...status, rejected_task_id: 1 }), /rejected_task_id/],
    ["ts negative", topicOf("status"), enc({ ...status, ts: -1 }), /ts/],
    ["ts a float", topicOf("status"), enc({ ...status, ts: 1.5 }), /ts/],
    ["ts a string", topicOf("status"), enc({ ...status, ts: "1" }), /ts/],
    ["unknown language", topicOf("register"), enc({ ...register, language: "cobol" }), /language/],
    ["node not a string", topicOf("register"), enc({ ...register, node: 3 }), /node/],
    ["provider missing", topicOf("register"), enc({ ...register, provider: undefined }), /provider/],
    ["heartbeat without identity", topicOf("heartbeat"), enc({ ...heartbeat, language: undefined }), /language/],
    ["heartbeat with bad status", topicOf("heartbeat"), enc({ ...heartbeat, status: 1 }), /status/],
    ["log with bad level", `${P}/logs`, enc({ ...log, level: "fatal" }), /level/],
    ["log without message", `${P}/logs`, enc({ ...log, message: undefined }), /message/],
    ["over 64 KiB", topicOf("status"), enc({ ...status, pad: "x".repeat(70_000) }), /64 KiB/],
    ["a topic the master does not read", `${P}/workers/w1/tasks`, enc(status), /unexpected topic/],
    ["a deeper topic", `${P}/workers/w1/status/x`, enc(status), /unexpected topic/],
  ];

  it.each(cases)("%s", (_name, topic, payload, reason) => {
    const result = parseIncoming(P, topic, payload);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toMatch(reason);
      // no payload values in the reason
      expect(result.reason).not.toMatch(/someone-else|sleeping|cobol|fatal|xxxx/);
    }
  });

  it("invalid UTF-8 / binary garbage", () => {
    expect(parseIncoming(P, topicOf("status"), Buffer.from([0xff, 0xfe, 0x00, 0x01])).ok).toBe(false);
  });
});

describe("task payloads the master publishes", () => {
  it("encodes a task that validates against the documented schema", () => {
    const text = encodeTask({ task_id: "q_1", query: "What is Docker Swarm?", lease_ms: 30000, has_credential: false, ts: 5 });
    const parsed = taskSchema.parse(JSON.parse(text));
    expect(parsed).toEqual({ v: 1, type: "task", task_id: "q_1", query: "What is Docker Swarm?", lease_ms: 30000, has_credential: false, ts: 5 });
    expect(text).not.toMatch(/api_?key/i);
  });

  it("builds the documented topics", () => {
    const t = topics("ai-system");
    const workerTopics = ["ai-system/workers/+/register", "ai-system/workers/+/heartbeat", "ai-system/workers/+/status"];
    expect(t.subscriptions(true)).toEqual([...workerTopics, "ai-system/logs"]);
    expect(t.subscriptions(false)).toEqual(workerTopics);
    expect(t.tasks("w-1")).toBe("ai-system/workers/w-1/tasks");
  });
});
