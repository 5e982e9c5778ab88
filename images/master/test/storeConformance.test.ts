// One conformance suite for both store engines: SqliteStore on a temporary file
// and EtcdStore on three real etcd members on loopback (launch/etcd.ts: TLS with
// a client certificate from the stack's CA script). Each case runs through the
// real QueryService with group commit (as main.ts runs it) where that is where
// the rule lives, closes the store and opens it again on the same data.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { etcdMissing, startEtcd, type EtcdClientTls, type EtcdCluster } from "../../../launch/etcd";
import type { EtcdConfig } from "../src/config";
import { createLogger } from "../src/log";
import type { StatusMsg } from "../src/protocol";
import { MAX_KEPT_ANSWER_CHARS, QueryService, type ResultInput } from "../src/queryService";
import { Scheduler } from "../src/scheduler";
import { EtcdStore, FencedError } from "../src/etcdStore";
import { SqliteStore } from "../src/sqliteStore";
import { parseHistory, type QueryStore } from "../src/store";
import { createEtcdClient } from "../src/storeFactory";
import { register, TaskIdPublisher } from "./helpers/service";

const offline = (id: string): StatusMsg => ({ v: 1, type: "status", worker_id: id, status: "offline", task_id: null, ts: 0 });
const result = (taskId: string, workerId: string, answer = `answer to ${taskId}`): ResultInput => ({
  taskId, workerId, language: "go", node: "vm1", provider: "offline", answer, error: "", receivedMs: 1, startedMs: 2, finishedMs: 3,
});

/** One engine under test: opens a store on the current test's data (again and again: a restart). */
interface Engine {
  name: string;
  /** Why it cannot run here (the cases are skipped, saying so), or undefined. */
  missing(): string | undefined;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A fresh, empty place for the next case's data. */
  fresh(): void;
  open(): Promise<QueryStore>;
}

function etcdConfig(cluster: EtcdCluster, tls: EtcdClientTls, prefix: string): EtcdConfig {
  return {
    endpoints: [...cluster.endpoints],
    ca: readFileSync(tls.caFile, "utf8"),
    cert: readFileSync(tls.certFile, "utf8"),
    key: readFileSync(tls.keyFile, "utf8"),
    prefix,
  };
}

let sqliteDir = "";
let sqlitePath = "";
const sqlite: Engine = {
  name: "sqlite",
  missing: () => undefined,
  setup: async () => {},
  teardown: async () => {},
  fresh() {
    if (sqliteDir !== "") rmSync(sqliteDir, { recursive: true, force: true });
    sqliteDir = mkdtempSync(join(tmpdir(), "store-conformance-"));
    sqlitePath = join(sqliteDir, "master.db");
  },
  open: () => Promise.resolve(new SqliteStore(sqlitePath)),
};

let cluster: EtcdCluster | undefined;
let prefixCounter = 0;
let prefix = "";
const etcd: Engine = {
  name: "etcd (3 members, TLS)",
  missing: etcdMissing,
  async setup() {
    cluster = await startEtcd(3);
  },
  async teardown() {
    await cluster?.stop();
  },
  fresh() {
    prefixCounter += 1;
    prefix = `/conformance-${process.pid}-${prefixCounter}`;
  },
  async open() {
    const c = cluster as EtcdCluster;
    return EtcdStore.open({ client: createEtcdClient(etcdConfig(c, c.clientTls, prefix)), prefix, ownsClient: true });
  },
};

/** The service as main.ts runs it (group commit), on `store`, with a clock the test sets. */
function serviceOn(store: QueryStore, clock = { now: 1_000_000 }, commitAtTurnEnd = false) {
  const scheduler = new Scheduler({ leaseMs: 30_000, taskTimeoutMs: 300_000, heartbeatTimeoutMs: 7_000, maxQueuedPerSession: 1000, maxAttempts: 5, offlineRetentionMs: 60_000 });
  const publisher = new TaskIdPublisher();
  const service = new QueryService(store, scheduler, publisher, createLogger("error", () => {}), {
    taskTopic: (id) => `t/${id}`,
    groupCommit: true,
    now: () => clock.now,
    // the test commits with flush(), unless it asks for main.ts's end-of-turn commits
    ...(commitAtTurnEnd ? {} : { defer: () => {} }),
  });
  const restored = service.restore();
  const submit = (query: string, session = "s1"): string => {
    const r = service.submit({ query }, session);
    if (!r.ok) throw new Error("refused");
    return r.id;
  };
  return { store, service, publisher, restored, submit, clock };
}

for (const engine of [sqlite, etcd]) {
  const missing = engine.missing();
  if (missing !== undefined) console.log(`store conformance, ${engine.name}: skipped: ${missing}`);

  describe.skipIf(missing !== undefined)(`store conformance: ${engine.name}`, () => {
    beforeAll(() => engine.setup(), 60_000);
    afterAll(() => engine.teardown());
    beforeEach(() => engine.fresh());

    const reopen = async (before: QueryStore) => {
      await before.close();
      return serviceOn(await engine.open());
    };

    it("insert: a committed query is there after a restart, with what was submitted", async () => {
      const s = serviceOn(await engine.open());
      const id = s.service.submit({ query: "what is raft?", apiKey: "never-stored-key-123" }, "session-a");
      if (!id.ok) throw new Error("refused");
      await s.service.flush();
      const again = await reopen(s.store);
      expect(again.store.get(id.id)).toMatchObject({ id: id.id, session: "session-a", query: "what is raft?", status: "queued", attempts: 0, has_credential: 1, created_ms: 1_000_000 });
      expect(JSON.stringify(again.store.get(id.id))).not.toContain("never-stored-key-123");
      expect(again.store.get("q_unknown")).toBeUndefined();
      expect(again.store.countByStatus()).toEqual({ queued: 1, assigned: 0, done: 0, failed: 0 });
      await again.store.close();
    });

    it("queue order survives restarts, and recentBySession is newest first", async () => {
      const s = serviceOn(await engine.open());
      const ids = ["one", "two", "three", "four", "five"].map((q) => s.submit(q));
      const other = s.submit("theirs", "s2");
      await s.service.flush();
      const again = await reopen(s.store);
      expect(again.restored).toEqual({ queued: 6, assigned: 0 });
      expect(again.service.queued().filter((q) => q.session === "s1").map((q) => q.view.id)).toEqual(ids);
      expect(again.store.recentBySession("s1", 3).map((r) => r.id)).toEqual([ids[4], ids[3], ids[2]]);
      expect(again.store.recentBySession("s2", 10).map((r) => r.id)).toEqual([other]);
      // a third start still has the same order
      const third = await reopen(again.store);
      expect(third.store.active().map((r) => r.id)).toEqual([...ids, other]);
      expect(third.service.queued().map((q) => q.view.id)).toEqual([...ids, other]);
      await third.store.close();
    });

    it("assign: the lease (worker, time, attempt) is stored and restored", async () => {
      const s = serviceOn(await engine.open());
      s.service.onWorkerMessage(register("w1"));
      const a = s.submit("a");
      const b = s.submit("b");
      await s.service.flush();
      expect(s.publisher.sent).toEqual([a]);
      const again = await reopen(s.store);
      expect(again.restored).toEqual({ queued: 1, assigned: 1 });
      expect(again.store.get(a)).toMatchObject({ status: "assigned", worker_id: "w1", attempts: 1, assigned_ms: 1_000_000, queue_key: null });
      expect(again.store.get(b)).toMatchObject({ status: "queued", worker_id: null });
      expect(again.service.get(a)).toMatchObject({ status: "assigned", worker: { id: "w1" } });
      await again.store.close();
    });

    it("requeue: a query its worker lost goes back to the head, with its attempts and story", async () => {
      const s = serviceOn(await engine.open());
      s.service.onWorkerMessage(register("w1"));
      const a = s.submit("a");
      const b = s.submit("b");
      await s.service.flush();
      s.clock.now += 500;
      s.service.onWorkerMessage(offline("w1"));
      await s.service.flush();
      const again = await reopen(s.store);
      expect(again.service.queued().map((q) => q.view.id)).toEqual([a, b]);
      const row = again.store.get(a);
      expect(row).toMatchObject({ status: "queued", attempts: 1, worker_id: null, assigned_ms: null });
      expect(parseHistory(row?.history ?? null)).toMatchObject([{ worker: "w1", attempt: 1, leased_ms: 1_000_000, ended_ms: 1_000_500 }]);
      // the next worker gets it first, as its second attempt
      again.service.onWorkerMessage(register("w2"));
      await again.service.flush();
      expect(again.publisher.sent).toEqual([a]);
      expect(again.store.get(a)).toMatchObject({ status: "assigned", worker_id: "w2", attempts: 2 });
      await again.store.close();
    });

    it("finish exactly once: the first result is kept, a duplicate (also after a restart) changes nothing", async () => {
      const s = serviceOn(await engine.open());
      s.service.onWorkerMessage(register("w1"));
      const a = s.submit("a");
      await s.service.flush();
      expect(s.service.handleResult(result(a, "w1", "first answer"))).toBe("accepted");
      expect(s.service.handleResult(result(a, "w1", "second answer"))).toBe("duplicate");
      await s.service.flush();
      const again = await reopen(s.store);
      expect(again.store.get(a)).toMatchObject({ status: "done", answer: "first answer", worker_id: "w1", worker_language: "go", worker_node: "vm1", received_ms: 1, completed_ms: 1_000_000 });
      expect(again.service.handleResult(result(a, "w1", "third answer"))).toBe("duplicate");
      expect(again.service.handleResult(result("q_unknown", "w1"))).toBe("not_found");
      await again.service.flush();
      expect(again.store.get(a)?.answer).toBe("first answer");
      expect(again.store.countByStatus()).toEqual({ queued: 0, assigned: 0, done: 1, failed: 0 });
      expect(again.service.queriesByState()).toEqual({ queued: 0, assigned: 0, done: 1, failed: 0 });
      await again.store.close();
    });

    it("an answer too big for one etcd request is kept cut, saying so (the commit goes through)", async () => {
      const s = serviceOn(await engine.open());
      s.service.onWorkerMessage(register("w1"));
      const a = s.submit("a");
      await s.service.flush();
      const huge = "\u0001".repeat(MAX_KEPT_ANSWER_CHARS + 10); // 6 bytes each once escaped in JSON
      expect(s.service.handleResult(result(a, "w1", huge))).toBe("accepted");
      await s.service.flush();
      const again = await reopen(s.store);
      const answer = again.store.get(a)?.answer ?? "";
      expect(answer.startsWith("\u0001".repeat(MAX_KEPT_ANSWER_CHARS))).toBe(true);
      expect(answer.slice(MAX_KEPT_ANSWER_CHARS)).toBe(`\n[cut by the master: ${MAX_KEPT_ANSWER_CHARS + 10} characters, at most ${MAX_KEPT_ANSWER_CHARS} are kept]`);
      await again.store.close();
    });

    it("retention: finished queries older than the retention are deleted, oldest first, in bounded batches; the rest stay", async () => {
      const s = serviceOn(await engine.open());
      s.service.onWorkerMessage(register("w1"));
      const old: string[] = [];
      for (let i = 0; i < 3; i++) {
        const id = s.submit(`old ${i}`);
        s.clock.now += 1_000;
        expect(s.service.handleResult(result(id, "w1"))).toBe("accepted");
        old.push(id);
      }
      s.clock.now += 60 * 60_000; // an hour later
      const recent = s.submit("recent");
      expect(s.service.handleResult(result(recent, "w1"))).toBe("accepted");
      const waiting = s.submit("waiting"); // w1 holds it: unfinished
      await s.service.flush();
      const byAge = { maxAgeMs: 30 * 60_000, maxCount: 1_000 };
      expect(s.service.pruneFinished(byAge, 2)).toBe(2); // a bounded batch: the two oldest
      await s.service.flush();
      expect(old.map((id) => s.store.get(id) !== undefined)).toEqual([false, false, true]);
      expect(s.service.pruneFinished(byAge, 2)).toBe(1);
      expect(s.service.pruneFinished(byAge, 2)).toBe(0);
      await s.service.flush();
      expect(s.service.queriesByState()).toEqual({ queued: 0, assigned: 1, done: 1, failed: 0 });
      const again = await reopen(s.store);
      for (const id of old) expect(again.store.get(id)).toBeUndefined();
      expect(again.store.get(recent)?.status).toBe("done");
      expect(again.store.get(waiting)?.status).toBe("assigned");
      expect(again.store.recentBySession("s1", 10).map((r) => r.id)).toEqual([waiting, recent]);
      expect(again.store.countByStatus()).toEqual({ queued: 0, assigned: 1, done: 1, failed: 0 });
      await again.store.close();
    });

    it("the retention sweep deletes batch after batch, each committed, until none is left", async () => {
      const s = serviceOn(await engine.open(), { now: 1_000_000 }, true);
      s.service.onWorkerMessage(register("w1"));
      for (let i = 0; i < 7; i++) expect(s.service.handleResult(result(s.submit(`old ${i}`), "w1"))).toBe("accepted");
      await s.service.flush();
      s.clock.now += 2 * 3_600_000;
      const kept = s.submit("young");
      expect(s.service.handleResult(result(kept, "w1"))).toBe("accepted");
      await s.service.committed();
      const commits = vi.spyOn(s.store, "commitBatch");
      expect(await s.service.pruneAllFinished({ maxAgeMs: 3_600_000, maxCount: 1_000 }, 3)).toBe(7);
      expect(commits).toHaveBeenCalledTimes(3); // 3 + 3 + 1 deletions, each batch its own commit
      const again = await reopen(s.store);
      expect(again.store.recentBySession("s1", 100).map((r) => r.id)).toEqual([kept]);
      await again.store.close();
    });

    it("retention by count: past ANSWER_RETENTION_MAX the oldest finished (by completion) go first, batch by batch; unfinished ones never", async () => {
      const s = serviceOn(await engine.open());
      s.service.onWorkerMessage(register("w0"));
      const held = s.submit("held since the start"); // w0 never answers: the oldest query, unfinished
      s.service.onWorkerMessage(register("w1"));
      s.service.onWorkerMessage(register("w2"));
      // Eight finished queries; each pair is answered in the reverse of its submission
      // order, so completion order (the one retention follows) is not submission order.
      const completed: string[] = [];
      for (let i = 0; i < 4; i++) {
        const first = s.submit(`first ${i}`);
        const second = s.submit(`second ${i}`);
        for (const id of [second, first]) {
          s.clock.now += 1_000;
          const worker = s.store.get(id)?.worker_id ?? "nobody";
          const failed = completed.length % 3 === 0; // a mix of done and failed
          expect(s.service.handleResult({ ...result(id, worker), error: failed ? "model unavailable" : "" })).toBe("accepted");
          completed.push(id);
        }
      }
      const assigned = [s.submit("assigned to w1"), s.submit("assigned to w2")];
      const queued = s.submit("queued: every worker busy");
      await s.service.flush();
      const outcome = (id: string): "done" | "failed" => (completed.indexOf(id) % 3 === 0 ? "failed" : "done");
      const tally = (ids: string[]) => ({ done: ids.filter((id) => outcome(id) === "done").length, failed: ids.filter((id) => outcome(id) === "failed").length });
      expect(s.service.queriesByState()).toEqual({ queued: 1, assigned: 3, ...tally(completed) });

      const byCount = { maxAgeMs: 1_000 * 3_600_000, maxCount: 3 }; // every answer is young: only the count bound bites
      const kept = (): string[] => completed.filter((id) => s.store.get(id) !== undefined);
      for (const [deleted, left] of [[2, 6], [2, 4], [1, 3], [0, 3]] as const) {
        expect(s.service.pruneFinished(byCount, 2)).toBe(deleted);
        await s.service.flush();
        expect(kept()).toEqual(completed.slice(completed.length - left)); // the newest `left` by completion
        expect(s.service.queriesByState()).toEqual({ queued: 1, assigned: 3, ...tally(kept()) });
        expect(s.store.countByStatus()).toEqual(s.service.queriesByState());
      }
      // Both bounds at once: whichever deletes more. Two of the three kept are now past the age bound.
      s.clock.now += 60 * 60_000;
      expect(s.service.handleResult(result(held, "w0"))).toBe("accepted"); // w0 takes the queued one next
      completed.push(held);
      expect(s.service.pruneFinished({ maxAgeMs: 30 * 60_000, maxCount: 3 }, 100)).toBe(3); // the count alone would take one
      await s.service.flush();

      const again = await reopen(s.store);
      expect(completed.filter((id) => again.store.get(id) !== undefined)).toEqual([held]);
      for (const id of [...assigned, queued]) expect(again.store.get(id)?.status).toBe("assigned");
      expect(again.store.countByStatus()).toEqual({ queued: 0, assigned: 3, done: 1, failed: 0 });
      expect(again.service.queriesByState()).toEqual(again.store.countByStatus());
      await again.store.close();
    });

    it("the retention sweep applies the count bound batch after batch, each committed, to exactly ANSWER_RETENTION_MAX", async () => {
      const s = serviceOn(await engine.open(), { now: 1_000_000 }, true);
      s.service.onWorkerMessage(register("w1"));
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        s.clock.now += 1_000;
        const id = s.submit(`q ${i}`);
        expect(s.service.handleResult(result(id, "w1"))).toBe("accepted");
        ids.push(id);
      }
      const open = s.submit("open"); // w1 holds it
      await s.service.committed();
      const commits = vi.spyOn(s.store, "commitBatch");
      expect(await s.service.pruneAllFinished({ maxAgeMs: 1_000 * 3_600_000, maxCount: 5 }, 3)).toBe(7);
      expect(commits).toHaveBeenCalledTimes(3); // 3 + 3 + 1 deletions, each batch its own commit
      expect(s.service.queriesByState()).toEqual({ queued: 0, assigned: 1, done: 5, failed: 0 });
      const again = await reopen(s.store);
      expect(again.store.recentBySession("s1", 100).map((r) => r.id)).toEqual([open, ...ids.slice(7).reverse()]);
      expect(again.service.queriesByState()).toEqual({ queued: 0, assigned: 1, done: 5, failed: 0 });
      await again.store.close();
    });

    it("a batch larger than etcd's --max-txn-ops (128) commits whole, in order", async () => {
      const s = serviceOn(await engine.open());
      const ids = Array.from({ length: 300 }, (_, i) => s.submit(`bulk ${i}`, `s${i % 7}`));
      await s.service.flush();
      const again = await reopen(s.store);
      expect(again.restored).toEqual({ queued: 300, assigned: 0 });
      expect(again.service.queued().map((q) => q.view.id)).toEqual(ids);
      await again.store.close();
    });
  });
}

describe.skipIf(etcdMissing() !== undefined)("etcd engine only: fencing, TLS, bad data", () => {
  let members: EtcdCluster;
  let client: Etcd3;
  beforeAll(async () => {
    members = await startEtcd(3);
    client = createEtcdClient(etcdConfig(members, members.clientTls, "/unused"));
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await members?.stop();
  });

  const count = async (p: string): Promise<number> => Number((await client.kv.range({ key: Buffer.from(`${p}/queries/`), range_end: Buffer.from(`${p}/queries0`), count_only: true })).count);
  const revision = async (): Promise<number> => Number((await client.kv.range({ key: Buffer.from("/none") })).header.revision);

  it("above --max-txn-ops a batch is split into sequential transactions (128 operations each)", async () => {
    const store = await EtcdStore.open({ client, prefix: "/split" });
    store.beginBatch();
    for (let i = 0; i < 300; i++) store.insert({ id: `q${String(i).padStart(3, "0")}`, session: "s", query: `q ${i}`, queueKey: i + 1, hasCredential: false, createdMs: i });
    const before = await revision();
    await store.commitBatch();
    expect(await revision()).toBe(before + 3); // 128 + 128 + 44: three transactions, one revision each
    expect(await count("/split")).toBe(300);
  });

  it("a commit is fenced: applied while the leader key is on our lease, refused (nothing written) once it is not", async () => {
    const ours = client.lease(30, { autoKeepAlive: false });
    const theirs = client.lease(30, { autoKeepAlive: false });
    const oursId = await ours.grant();
    const theirsId = await theirs.grant();
    await client.put("/fenced/leader").value("master-a").lease(oursId);
    const leader = await EtcdStore.open({ client, prefix: "/fenced", fence: { key: "/fenced/leader", leaseId: oursId } });
    const deposed = await EtcdStore.open({ client, prefix: "/fenced", fence: { key: "/fenced/leader", leaseId: theirsId } });
    leader.beginBatch();
    leader.insert({ id: "q1", session: "s", query: "by the leader", queueKey: 1, hasCredential: false, createdMs: 1 });
    await leader.commitBatch();
    expect(await count("/fenced")).toBe(1);

    deposed.beginBatch();
    deposed.insert({ id: "q2", session: "s", query: "by a deposed master", queueKey: 2, hasCredential: false, createdMs: 2 });
    for (let i = 3; i < 300; i++) deposed.insert({ id: `q${i}`, session: "s", query: "more", queueKey: i, hasCredential: false, createdMs: i });
    await expect(deposed.commitBatch()).rejects.toBeInstanceOf(FencedError);
    expect(await count("/fenced")).toBe(1);
    expect(deposed.ping()).toBe(false);
    // once refused, it refuses everything after (its mirror is ahead of etcd)
    deposed.beginBatch();
    deposed.insert({ id: "q-after", session: "s", query: "after the refusal", queueKey: 400, hasCredential: false, createdMs: 5 });
    await expect(deposed.commitBatch()).rejects.toBeInstanceOf(FencedError);

    // the leader loses its lease (expired or revoked): its key is gone, its next commit is refused
    await ours.revoke();
    leader.beginBatch();
    leader.finish({ id: "q1", status: "done", answer: "late", error: null, provider: null, worker: null, receivedMs: null, startedMs: null, finishedMs: null, completedMs: 6 });
    await expect(leader.commitBatch()).rejects.toThrow(/no longer leads/);
    const stored = await client.get("/fenced/queries/q1").string();
    expect(JSON.parse(stored ?? "{}")).toMatchObject({ status: "queued", query: "by the leader" });
    await theirs.revoke();
  });

  it("a client whose certificate another CA signed is refused", async () => {
    const stranger = createEtcdClient(etcdConfig(members, members.strangerTls(), "/stranger"));
    try {
      // the members end the TLS handshake: "alert bad certificate"
      await expect(EtcdStore.open({ client: stranger, prefix: "/stranger" })).rejects.toThrow(/bad certificate/);
    } finally {
      stranger.close();
    }
    // while the master's own certificate is served
    expect(await count("/stranger")).toBe(0);
  });

  it("a stored value that is not a query stops the load, naming the key and the fields", async () => {
    await client.put("/bad/queries/q1").value("not json");
    await expect(EtcdStore.open({ client, prefix: "/bad" })).rejects.toThrow("etcd key /bad/queries/q1: not JSON");
    await client.put("/bad/queries/q1").value(JSON.stringify({ id: "q1", seq: 1, session: "s", query: "q", status: "lost" }));
    await expect(EtcdStore.open({ client, prefix: "/bad" })).rejects.toThrow(/etcd key \/bad\/queries\/q1: not a stored query \(status: .*queue_key/);
  });

  it("loads page by page: more rows than one range request returns", async () => {
    const store = await EtcdStore.open({ client, prefix: "/pages" });
    store.beginBatch();
    for (let i = 0; i < 25; i++) store.insert({ id: `q${String(i).padStart(2, "0")}`, session: "s", query: `q ${i}`, queueKey: i + 1, hasCredential: false, createdMs: i });
    await store.commitBatch();
    const again = await EtcdStore.open({ client, prefix: "/pages", loadPageSize: 10 });
    expect(again.active().map((r) => r.id)).toEqual(Array.from({ length: 25 }, (_, i) => `q${String(i).padStart(2, "0")}`));
  });

  it("loads rows with the largest answers kept, more than gRPC's default 4 MiB per response", async () => {
    const store = await EtcdStore.open({ client, prefix: "/big" });
    const answer = "\u0001".repeat(MAX_KEPT_ANSWER_CHARS); // ~768 KiB once escaped in JSON
    for (let i = 0; i < 10; i++) {
      store.beginBatch();
      store.insert({ id: `q${i}`, session: "s", query: "q", queueKey: i + 1, hasCredential: false, createdMs: i });
      store.finish({ id: `q${i}`, status: "done", answer, error: null, provider: null, worker: null, receivedMs: null, startedMs: null, finishedMs: null, completedMs: 10 + i });
      await store.commitBatch();
    }
    const again = await EtcdStore.open({ client, prefix: "/big" });
    expect(again.countByStatus().done).toBe(10);
    expect(again.get("q9")?.answer).toBe(answer);
  });

  it("a write outside a batch is refused, naming the query", async () => {
    const store = await EtcdStore.open({ client, prefix: "/nobatch" });
    expect(() => store.insert({ id: "q1", session: "s", query: "q", queueKey: 1, hasCredential: false, createdMs: 1 })).toThrow(/write of q1 outside a batch/);
    expect(store.get("q1")).toBeUndefined();
  });
});
