// The WorkerCallback server with a real grpc-js client on loopback.
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkToken, GrpcServer, resolveProtoDir } from "../src/grpcServer";
import { createLogger } from "../src/log";
import { QueryService, type TaskPublisher } from "../src/queryService";
import { Scheduler } from "../src/scheduler";
import { SqliteStore } from "../src/sqliteStore";
import { call, callbackClient, PROTO_DIR, type CallbackClient } from "./helpers/fakeWorker";

const TOKEN = "the-shared-grpc-token-5f2c";
const USER_KEY = "user-api-key-7d1e";

const publisher: TaskPublisher = { connected: true, publish: () => {} };
const lines: string[] = [];
let dir: string;
let store: SqliteStore;
let service: QueryService;
let server: GrpcServer;
let client: CallbackClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "master-grpc-"));
  store = new SqliteStore(join(dir, "master.db"));
  const scheduler = new Scheduler({
    leaseMs: 30_000, taskTimeoutMs: 300_000, heartbeatTimeoutMs: 7_000,
    maxQueuedPerSession: 10, maxAttempts: 5, offlineRetentionMs: 60_000,
  });
  const log = createLogger("debug", (line) => lines.push(line));
  service = new QueryService(store, scheduler, publisher, log, { taskTopic: (id) => `t/${id}` });
  server = new GrpcServer(service, TOKEN, log);
  const port = await server.start(PROTO_DIR, "127.0.0.1", 0);
  client = callbackClient(`127.0.0.1:${port}`);
  for (const id of ["w1", "w2"]) {
    service.onWorkerMessage({ v: 1, type: "register", worker_id: id, language: "go", node: "vm1", provider: "offline", ts: 0 });
  }
});

afterAll(async () => {
  client.close();
  await server.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Submits a query and returns its id and the worker it went to. */
function submitAndDispatch(apiKey?: string): { id: string; holder: string } {
  const r = service.submit(apiKey ? { query: "q", apiKey } : { query: "q" }, "s");
  if (!r.ok) throw new Error("refused");
  const view = service.get(r.id);
  if (!view?.worker) throw new Error("not dispatched");
  return { id: r.id, holder: view.worker.id };
}

function result(taskId: string, workerId: string): Record<string, unknown> {
  return {
    task_id: taskId, worker_id: workerId, language: "go", node: "vm1", provider: "offline",
    answer: "42", error: "", timings: { received_ms: 1, started_ms: 2, finished_ms: 3 },
  };
}

async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

describe("authentication", () => {
  it("a wrong or missing token gets UNAUTHENTICATED, logged with the peer and never the token", async () => {
    const { id, holder } = submitAndDispatch();
    expect(await codeOf(call(client.SendResult, client, result(id, holder), "wrong-token"))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await codeOf(call(client.SendResult, client, result(id, holder), undefined))).toBe(grpc.status.UNAUTHENTICATED);
    expect(
      await codeOf(call(client.GetTaskCredential, client, { task_id: id, worker_id: holder }, `${TOKEN}x`)),
    ).toBe(grpc.status.UNAUTHENTICATED);
    const rejections = lines.filter((l) => l.includes("grpc call rejected")).map((l) => JSON.parse(l) as Record<string, string>);
    expect(rejections.map((r) => r.reason)).toEqual(["wrong token", "missing bearer token", "wrong token"]);
    expect(rejections[0]?.peer).toMatch(/127\.0\.0\.1/);
    const all = lines.join("\n");
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain("wrong-token");
    // the task is untouched and its holder can still finish it
    expect(await call(client.SendResult, client, result(id, holder), TOKEN)).toEqual({ accepted: true, duplicate: false });
  });

  it("compares tokens exactly (prefix, suffix, case, header form)", () => {
    const md = (value: string): grpc.Metadata => {
      const m = new grpc.Metadata();
      m.set("authorization", value);
      return m;
    };
    const digest = createHash("sha256").update(TOKEN).digest();
    expect(checkToken(md(`Bearer ${TOKEN}`), digest)).toBe("ok");
    expect(checkToken(md(`Bearer ${TOKEN.slice(0, -1)}`), digest)).toBe("wrong");
    expect(checkToken(md(`Bearer ${TOKEN.toUpperCase()}`), digest)).toBe("wrong");
    expect(checkToken(md(TOKEN), digest)).toBe("missing");
    expect(checkToken(new grpc.Metadata(), digest)).toBe("missing");
  });
});

describe("SendResult", () => {
  it("accepts the holder's result once; a second one is acknowledged as duplicate", async () => {
    const { id, holder } = submitAndDispatch();
    expect(await call(client.SendResult, client, result(id, holder), TOKEN)).toEqual({ accepted: true, duplicate: false });
    expect(await call(client.SendResult, client, result(id, holder), TOKEN)).toEqual({ accepted: false, duplicate: true });
    expect(service.get(id)).toMatchObject({ status: "done", answer: "42", worker: { id: holder, language: "go" } });
  });

  it("PERMISSION_DENIED for another worker or an unknown one, NOT_FOUND for an unknown task", async () => {
    service.onWorkerMessage({ v: 1, type: "status", worker_id: "w1", status: "idle", task_id: null, ts: 0 });
    service.onWorkerMessage({ v: 1, type: "status", worker_id: "w2", status: "idle", task_id: null, ts: 0 });
    const { id, holder } = submitAndDispatch();
    const other = holder === "w1" ? "w2" : "w1";
    expect(await codeOf(call(client.SendResult, client, result(id, other), TOKEN))).toBe(grpc.status.PERMISSION_DENIED);
    expect(await codeOf(call(client.SendResult, client, result(id, "nobody"), TOKEN))).toBe(grpc.status.PERMISSION_DENIED);
    expect(await codeOf(call(client.SendResult, client, result("q_unknown", holder), TOKEN))).toBe(grpc.status.NOT_FOUND);
    expect(await codeOf(call(client.SendResult, client, { ...result(id, holder), task_id: "" }, TOKEN))).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect(service.get(id)?.status).toBe("assigned");
  });
});

describe("GetTaskCredential", () => {
  it("gives the key only to the holder, and only while the task runs", async () => {
    for (const w of ["w1", "w2"]) {
      service.onWorkerMessage({ v: 1, type: "status", worker_id: w, status: "idle", task_id: null, ts: 0 });
    }
    const { id, holder } = submitAndDispatch(USER_KEY);
    const other = holder === "w1" ? "w2" : "w1";
    expect(await call(client.GetTaskCredential, client, { task_id: id, worker_id: holder }, TOKEN)).toEqual({
      present: true,
      api_key: USER_KEY,
    });
    expect(await codeOf(call(client.GetTaskCredential, client, { task_id: id, worker_id: other }, TOKEN))).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    expect(await codeOf(call(client.GetTaskCredential, client, { task_id: "q_nope", worker_id: holder }, TOKEN))).toBe(
      grpc.status.NOT_FOUND,
    );
    await call(client.SendResult, client, result(id, holder), TOKEN);
    expect(await codeOf(call(client.GetTaskCredential, client, { task_id: id, worker_id: holder }, TOKEN))).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    expect(lines.join("\n")).not.toContain(USER_KEY);
  });

  it("present=false when the user gave no key", async () => {
    for (const w of ["w1", "w2"]) {
      service.onWorkerMessage({ v: 1, type: "status", worker_id: w, status: "idle", task_id: null, ts: 0 });
    }
    const { id, holder } = submitAndDispatch();
    expect(await call(client.GetTaskCredential, client, { task_id: id, worker_id: holder }, TOKEN)).toEqual({
      present: false,
      api_key: "",
    });
  });
});

describe("proto location", () => {
  it("prefers PROTO_DIR, then the image layout, then the repo layout", () => {
    expect(resolveProtoDir({ PROTO_DIR: "/x/proto" }, "/app/dist")).toBe("/x/proto");
    // here: images/master/dist has no ../proto, so the repo's proto/ is used
    expect(resolveProtoDir({}, join(__dirname, "..", "dist"))).toBe(PROTO_DIR);
  });
});
