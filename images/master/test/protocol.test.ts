import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020";
import { afterEach, describe, expect, it } from "vitest";
import { encodeLog, encodeTask, parseIncoming, PAYLOAD_SCHEMA_FILE, PAYLOAD_TYPES, PayloadSchema, topics } from "../src/protocol";
import { PROTO_DIR } from "./helpers/fakeWorker";
import { readVectorFile, vectorBytes, vectorGroups } from "./helpers/vectors";

const schema = PayloadSchema.load(PROTO_DIR);
const P = "ai-system";
const enc = (v: unknown): Buffer => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));
const status = { v: 1, type: "status", worker_id: "python-vm2-1a2b", status: "idle", task_id: null, ts: 1 };
const register = { v: 1, type: "register", worker_id: "python-vm2-1a2b", language: "python", node: "vm2", provider: "offline", ts: 1 };
const topicOf = (kind: string): string => `${P}/workers/python-vm2-1a2b/${kind}`;

describe("the shared test vectors (proto/mqtt/vectors)", () => {
  it("are written in their documented format and cover every message type of the schema", () => {
    const ajv = new Ajv2020({ strict: true, strictRequired: false });
    const validate = ajv.compile(readVectorFile("format.schema.json") as object);
    expect(validate(readVectorFile("payloads.json")), JSON.stringify(validate.errors)).toBe(true);
    expect(new Set(vectorGroups().map((g) => g.type))).toEqual(new Set(PAYLOAD_TYPES));
  });

  for (const group of vectorGroups()) {
    describe(group.type, () => {
      it.each(group.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
        const verdict = schema.validate(group.type, vectorBytes(group, c));
        if (c.valid) {
          expect(verdict).toMatchObject({ ok: true });
          return;
        }
        expect(verdict).toMatchObject({ ok: false, rule: c.rule });
        if (verdict.ok || c.rule !== "field") return;
        expect([...new Set(verdict.problems.map((p) => p.field))]).toEqual([c.field]);
        expect(verdict.problems.map((p) => p.keyword)).toContain(c.keyword);
      });
    });
  }
});

describe("received messages (parseIncoming)", () => {
  it("reads the type its topic carries, under any prefix", () => {
    expect(parseIncoming(schema, P, topicOf("status"), enc(status))).toEqual({ ok: true, msg: status });
    expect(parseIncoming(schema, P, topicOf("register"), enc(register))).toEqual({ ok: true, msg: register });
    expect(parseIncoming(schema, "lab/x", "lab/x/workers/python-vm2-1a2b/status", enc(status)).ok).toBe(true);
    expect(parseIncoming(schema, "lab/x", topicOf("status"), enc(status))).toEqual({ ok: false, reason: "unexpected topic" });
  });

  it.each([
    ["a type for another topic", topicOf("status"), enc(register), /type/],
    ["a worker_id that differs from the topic", topicOf("status"), enc({ ...status, worker_id: "someone-else" }), /differs/],
    ["a topic the master does not read", `${P}/workers/w1/tasks`, enc(status), /unexpected topic/],
    ["a deeper topic", `${P}/workers/w1/status/x`, enc(status), /unexpected topic/],
    ["an unknown status", topicOf("status"), enc({ ...status, status: "sleeping" }), /^invalid field\(s\): status \(enum\)$/],
    ["over 64 KiB", topicOf("status"), enc({ ...status, pad: "x".repeat(70_000) }), /^payload over 64 KiB$/],
    ["not JSON", topicOf("status"), enc("{not json"), /^not UTF-8 JSON$/],
  ])("refuses %s with a reason that holds no content", (_name, topic, payload, reason) => {
    const result = parseIncoming(schema, P, topic, payload);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(reason);
    expect(result.reason).not.toMatch(/someone-else|sleeping|xxxx/);
  });
});

describe("messages the master sends", () => {
  it("a task and a log validate against the schema and carry no key", () => {
    const task = encodeTask({ task_id: "q_1", query: "What is Docker Swarm?", lease_ms: 30000, has_credential: true, ts: 5 });
    expect(schema.validate("task", enc(task))).toEqual({
      ok: true,
      msg: { v: 1, type: "task", task_id: "q_1", query: "What is Docker Swarm?", lease_ms: 30000, has_credential: true, ts: 5 },
    });
    expect(task).not.toMatch(/api_?key/i);
    for (const taskId of ["q_1", undefined]) {
      const log = encodeLog({ source: "master", level: "warn", message: "m", task_id: taskId, ts: 6 });
      expect(schema.validate("log", enc(log))).toMatchObject({ ok: true });
    }
  });

  it("on the documented topics", () => {
    const t = topics("ai-system");
    const workerTopics = ["ai-system/workers/+/register", "ai-system/workers/+/heartbeat", "ai-system/workers/+/status"];
    expect(t.subscriptions(true)).toEqual([...workerTopics, "ai-system/logs"]);
    expect(t.subscriptions(false)).toEqual(workerTopics);
    expect(t.tasks("w-1")).toBe("ai-system/workers/w-1/tasks");
  });
});

describe("loading the schema", () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));
  const protoDirWith = (text: string): string => {
    dir = mkdtempSync(join(tmpdir(), "payload-schema-"));
    mkdirSync(join(dir, "mqtt"));
    writeFileSync(join(dir, PAYLOAD_SCHEMA_FILE), text);
    return dir;
  };

  it("takes the byte limit from the schema", () => {
    expect(schema.maxBytes).toBe(64 * 1024);
  });

  it("names the file when it is missing, not JSON, or not a schema of the payloads", () => {
    expect(() => PayloadSchema.load("/nonexistent/proto")).toThrow(/^payload schema \/nonexistent\/proto\/mqtt\/payloads\.schema\.json \(set PROTO_DIR\): ENOENT/);
    expect(() => PayloadSchema.load(protoDirWith("{"))).toThrow(/payloads\.schema\.json \(set PROTO_DIR\): .*JSON/);
    expect(() => PayloadSchema.load(protoDirWith('{"$id":"x:y","$defs":{}}'))).toThrow(/x-max-payload-bytes must be a positive integer/);
    expect(() => PayloadSchema.load(protoDirWith('{"$id":"x:y","x-max-payload-bytes":10,"$defs":{}}'))).toThrow(/no \$defs\/register/);
  });
});
