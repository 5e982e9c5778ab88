// The etcd engine of the query store: a stack of several managers keeps its
// queries in etcd (v3 API, Raft), so a master started on any manager carries on
// from what the last leader committed.
//
// Layout: one key per query, `${prefix}/queries/<id>`, whose value is the whole
// row as JSON (QueryRow plus `seq`, the insertion order recentBySession() sorts
// by). Reads are served from an in-memory mirror loaded by open(): the leader
// is the only writer and every write it makes is fenced, so the mirror is exact.
// Writes change the mirror at once (reads see the open batch, as SQLite's do)
// and mark the id; commitBatch() turns the marked ids into puts of the whole row
// (or deletes), several writes to one id in a batch coalesced into one put, in
// one transaction, or several sequential ones above etcd's --max-txn-ops or
// --max-request-bytes. Every transaction is fenced: it applies only if the
// fence key (the leader key) is still attached to this master's lease, else it
// rejects with FencedError and writes nothing.
import { CompareResult, CompareTarget, type Etcd3, type ICompare, type IRequestOp } from "etcd3";
import { z } from "zod";
import { pastRetention } from "./store";
import type { AttemptRecord, Assignment, NewQuery, Outcome, Pruned, QueryRow, QueryStatus, QueryStore, RetentionBound } from "./store";

/** The leader key and the lease it must be attached to for a write to apply. */
export interface Fence {
  key: string;
  leaseId: string;
}

/** A commit refused because the fence key is not (or no longer) on our lease: this master does not lead. */
export class FencedError extends Error {
  constructor(fence: Fence) {
    super(`etcd refused the write: ${fence.key} is not held by lease ${fence.leaseId} (this master no longer leads)`);
    this.name = "FencedError";
  }
}

export interface EtcdStoreOptions {
  client: Etcd3;
  /** Key prefix of this stack's state, e.g. `/ai-swarm` (no trailing slash). */
  prefix: string;
  /** Every write is conditional on it; optional only for tests of the store alone. */
  fence?: Fence;
  /** Operations per transaction: etcd's --max-txn-ops (default 128). */
  maxTxnOps?: number;
  /** Key + value bytes per transaction, below etcd's --max-request-bytes (default 1.5 MiB). */
  maxTxnBytes?: number;
  /** Rows per range request when loading (default LOAD_PAGE_ROWS). */
  loadPageSize?: number;
  /** close() closes the client too. */
  ownsClient?: boolean;
}

/** Rows per range request of the start-up load: with the largest rows (~1 MiB) a response stays under the client's ETCD_MAX_RESPONSE_BYTES. */
export const LOAD_PAGE_ROWS = 100;
/** etcd's default --max-txn-ops. */
export const DEFAULT_MAX_TXN_OPS = 128;
/** Under etcd's default --max-request-bytes (1.5 MiB), with room for the request's own framing. */
export const DEFAULT_MAX_TXN_BYTES = 1024 * 1024;

type StoredRow = QueryRow & { seq: number };

interface Op {
  request: IRequestOp;
  bytes: number;
}

export class EtcdStore implements QueryStore {
  readonly engine = "etcd";
  private readonly rows = new Map<string, StoredRow>();
  /** Each session's ids in insertion (seq) order. */
  private readonly bySession = new Map<string, string[]>();
  /** Finished ids in completion order (the order retention deletes them in). */
  private readonly finishedOrder = new Map<string, number>();
  /** Ids written in the open batch: put if the row exists, else delete. */
  private dirty = new Set<string>();
  private batchOpen = false;
  private nextSeq: number;
  /** The commits handed over so far, in order (one at a time). */
  private tail: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private closed = false;
  private readonly client: Etcd3;
  private readonly keyPrefix: string;
  private readonly compare: ICompare[];
  private readonly maxTxnOps: number;
  private readonly maxTxnBytes: number;

  private constructor(private readonly opts: EtcdStoreOptions, loaded: StoredRow[]) {
    this.client = opts.client;
    this.keyPrefix = `${opts.prefix}/queries/`;
    this.compare = opts.fence
      ? [{ key: Buffer.from(opts.fence.key), target: CompareTarget.Lease, result: CompareResult.Equal, lease: opts.fence.leaseId }]
      : [];
    this.maxTxnOps = opts.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    this.maxTxnBytes = opts.maxTxnBytes ?? DEFAULT_MAX_TXN_BYTES;
    loaded.sort((a, b) => a.seq - b.seq);
    for (const row of loaded) {
      this.rows.set(row.id, row);
      this.sessionIds(row.session).push(row.id);
    }
    for (const row of loaded.filter(isFinished).sort((a, b) => (a.completed_ms ?? 0) - (b.completed_ms ?? 0))) {
      this.finishedOrder.set(row.id, row.completed_ms ?? 0);
    }
    this.nextSeq = (loaded.at(-1)?.seq ?? 0) + 1;
  }

  /** Loads every stored query of `prefix` into the mirror (page by page, at one revision). */
  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    const prefix = Buffer.from(`${opts.prefix}/queries/`);
    const end = prefixEnd(prefix);
    const pageSize = opts.loadPageSize ?? LOAD_PAGE_ROWS;
    const loaded: StoredRow[] = [];
    let from = prefix;
    let revision: string | undefined;
    for (;;) {
      const page = await opts.client.kv.range({ key: from, range_end: end, limit: pageSize, revision });
      revision ??= page.header.revision;
      for (const kv of page.kvs) loaded.push(parseRow(kv.key.toString(), kv.value.toString()));
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return new EtcdStore(opts, loaded);
  }

  // ---- writes ----------------------------------------------------------------

  insert(q: NewQuery): void {
    if (this.rows.has(q.id)) throw new Error(`EtcdStore.insert: query ${q.id} exists already`);
    this.writing(q.id);
    const row: StoredRow = {
      id: q.id,
      seq: this.nextSeq++,
      session: q.session,
      query: q.query,
      status: "queued",
      queue_key: q.queueKey,
      attempts: 0,
      answer: null,
      error: null,
      provider: null,
      worker_id: null,
      worker_language: null,
      worker_node: null,
      has_credential: q.hasCredential ? 1 : 0,
      created_ms: q.createdMs,
      assigned_ms: null,
      received_ms: null,
      started_ms: null,
      finished_ms: null,
      completed_ms: null,
      history: null,
    };
    this.rows.set(q.id, row);
    this.sessionIds(q.session).push(q.id);
  }

  assign(a: Assignment): void {
    const row = this.existing(a.id, "assign");
    Object.assign(row, { status: "assigned", queue_key: null, worker_id: a.workerId, assigned_ms: a.assignedMs, attempts: a.attempts });
  }

  assignMany(list: Assignment[]): void {
    for (const a of list) this.assign(a);
  }

  requeue(id: string, queueKey: number, attempts: number, history: readonly AttemptRecord[] = []): void {
    const row = this.existing(id, "requeue");
    Object.assign(row, {
      status: "queued",
      queue_key: queueKey,
      worker_id: null,
      assigned_ms: null,
      attempts,
      history: history.length > 0 ? JSON.stringify(history) : null,
    });
  }

  finish(o: Outcome): void {
    const row = this.existing(o.id, "finish");
    Object.assign(row, {
      status: o.status,
      queue_key: null,
      answer: o.answer,
      error: o.error,
      provider: o.provider,
      worker_id: o.worker?.id ?? null,
      worker_language: o.worker?.language ?? null,
      worker_node: o.worker?.node ?? null,
      received_ms: o.receivedMs,
      started_ms: o.startedMs,
      finished_ms: o.finishedMs,
      completed_ms: o.completedMs,
      history: o.history && o.history.length > 0 ? JSON.stringify(o.history) : row.history,
    });
    this.finishedOrder.delete(o.id);
    this.finishedOrder.set(o.id, o.completedMs);
  }

  deleteOldestFinished(bound: RetentionBound, limit: number): Pruned {
    const pruned: Pruned = { done: 0, failed: 0 };
    for (const [id, completedMs] of this.finishedOrder) {
      if (pruned.done + pruned.failed >= limit || !pastRetention(bound, this.finishedOrder.size, completedMs)) break;
      const row = this.existing(id, "deleteOldestFinished");
      pruned[row.status === "done" ? "done" : "failed"] += 1;
      this.rows.delete(id);
      this.finishedOrder.delete(id);
      const ids = this.bySession.get(row.session) ?? [];
      const at = ids.indexOf(id);
      if (at >= 0) ids.splice(at, 1);
      if (ids.length === 0) this.bySession.delete(row.session);
    }
    return pruned;
  }

  // ---- batches ---------------------------------------------------------------

  get inBatch(): boolean {
    return this.batchOpen;
  }

  beginBatch(): void {
    this.ensureUsable();
    this.batchOpen = true;
  }

  commitBatch(): Promise<void> {
    if (!this.batchOpen) return this.tail;
    this.batchOpen = false;
    const ids = this.dirty;
    this.dirty = new Set();
    // The rows as they stand now: later writes belong to the next batch.
    const transactions = this.chunk([...ids].map((id) => this.op(id)));
    const commit = this.tail.then(async () => {
      if (this.failure) throw this.failure;
      for (const success of transactions) await this.transaction(success);
    });
    this.tail = commit.catch((error: unknown) => {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
    });
    return commit;
  }

  // ---- reads -------------------------------------------------------------------

  get(id: string): QueryRow | undefined {
    const row = this.rows.get(id);
    return row ? publicRow(row) : undefined;
  }

  active(): QueryRow[] {
    const out: StoredRow[] = [];
    for (const row of this.rows.values()) if (!isFinished(row)) out.push(row);
    // As SQLite's ORDER BY queue_key: assigned ones (no key) first, then the queue.
    out.sort((a, b) => (a.queue_key ?? -Infinity) - (b.queue_key ?? -Infinity) || a.seq - b.seq);
    return out.map(publicRow);
  }

  recentBySession(session: string, limit: number): QueryRow[] {
    const ids = this.bySession.get(session) ?? [];
    const out: QueryRow[] = [];
    for (let i = ids.length - 1; i >= 0 && out.length < limit; i--) out.push(publicRow(this.rows.get(ids[i] as string) as StoredRow));
    return out;
  }

  countByStatus(): Record<QueryStatus, number> {
    const counts: Record<QueryStatus, number> = { queued: 0, assigned: 0, done: 0, failed: 0 };
    for (const row of this.rows.values()) counts[row.status] += 1;
    return counts;
  }

  /** False once a commit failed or the store was closed (the mirror may be ahead of etcd). */
  ping(): boolean {
    return this.failure === undefined && !this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const pending = this.commitBatch();
    this.closed = true;
    try {
      await pending;
    } finally {
      if (this.opts.ownsClient) this.client.close();
    }
  }

  // ---- internals -----------------------------------------------------------------

  private writing(id: string): void {
    this.ensureUsable();
    if (!this.batchOpen) {
      throw new Error(`EtcdStore: write of ${id} outside a batch (call beginBatch() first; etcd writes are durable only once commitBatch() resolved)`);
    }
    this.dirty.add(id);
  }

  private ensureUsable(): void {
    if (this.closed) throw new Error("EtcdStore: the store is closed");
  }

  private existing(id: string, what: string): StoredRow {
    const row = this.rows.get(id);
    if (!row) throw new Error(`EtcdStore.${what}: no query ${id}`);
    this.writing(id);
    return row;
  }

  private sessionIds(session: string): string[] {
    let ids = this.bySession.get(session);
    if (!ids) this.bySession.set(session, (ids = []));
    return ids;
  }

  private op(id: string): Op {
    const key = Buffer.from(this.keyPrefix + id);
    const row = this.rows.get(id);
    if (!row) return { request: { request_delete_range: { key } }, bytes: key.length };
    const value = Buffer.from(JSON.stringify(row));
    return { request: { request_put: { key, value } }, bytes: key.length + value.length };
  }

  /** Splits the operations into transactions within --max-txn-ops and the request size. */
  private chunk(ops: Op[]): IRequestOp[][] {
    const out: IRequestOp[][] = [];
    let current: IRequestOp[] = [];
    let bytes = 0;
    for (const op of ops) {
      if (current.length > 0 && (current.length >= this.maxTxnOps || bytes + op.bytes > this.maxTxnBytes)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(op.request);
      bytes += op.bytes;
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  private async transaction(success: IRequestOp[]): Promise<void> {
    const response = await this.client.kv.txn({ compare: this.compare, success, failure: [] });
    if (!response.succeeded && this.opts.fence) throw new FencedError(this.opts.fence);
  }
}

function isFinished(row: QueryRow): boolean {
  return row.status === "done" || row.status === "failed";
}

/** The row without the engine's own field. */
function publicRow(row: StoredRow): QueryRow {
  const { seq: _seq, ...rest } = row;
  return rest;
}

/** The end of the key range holding every key that starts with `prefix`. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

const nullableString = z.string().nullable();
const nullableInt = z.number().int().nullable();
/** What a stored value must be: the row as insert() and the other writes leave it. */
const storedRowSchema = z.object({
  id: z.string().min(1),
  seq: z.number().int().min(1),
  session: z.string(),
  query: z.string(),
  status: z.enum(["queued", "assigned", "done", "failed"]),
  queue_key: nullableInt,
  attempts: z.number().int().min(0),
  answer: nullableString,
  error: nullableString,
  provider: nullableString,
  worker_id: nullableString,
  worker_language: nullableString,
  worker_node: nullableString,
  has_credential: z.number().int(),
  created_ms: z.number(),
  assigned_ms: z.number().nullable(),
  received_ms: z.number().nullable(),
  started_ms: z.number().nullable(),
  finished_ms: z.number().nullable(),
  completed_ms: z.number().nullable(),
  history: nullableString,
});

/** A stored row; a value that is not one stops the load naming its key and the fields at fault. */
function parseRow(key: string, text: string): StoredRow {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`etcd key ${key}: not JSON`);
  }
  const parsed = storedRowSchema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(value)"}: ${issue.message}`);
    throw new Error(`etcd key ${key}: not a stored query (${problems.join("; ")})`);
  }
  return parsed.data;
}
