// The store of queries: one interface, two engines. SqliteStore (sqliteStore.ts)
// keeps them in a SQLite file for a single-manager stack; EtcdStore (etcdStore.ts)
// keeps them in etcd, replicated by Raft, for a stack of several managers.
// QueryService and main.ts depend only on this file.
//
// Reads are synchronous: SQLite reads its file, etcd serves them from an
// in-memory mirror it loads when opened (the leader is etcd's only writer, its
// writes fenced, so the mirror is exact). Writes go into a batch (group commit)
// that commitBatch() makes durable; nothing a batch says may be shown outside
// before its commit resolved.
// The per-query user API key is deliberately NOT stored: it never leaves memory.
import type { AttemptRecord } from "./scheduler";

export type { AttemptRecord };

export type QueryStatus = "queued" | "assigned" | "done" | "failed";

export interface QueryRow {
  id: string;
  session: string;
  query: string;
  status: QueryStatus;
  queue_key: number | null;
  attempts: number;
  answer: string | null;
  error: string | null;
  provider: string | null;
  worker_id: string | null;
  worker_language: string | null;
  worker_node: string | null;
  has_credential: number;
  created_ms: number;
  assigned_ms: number | null;
  received_ms: number | null;
  started_ms: number | null;
  finished_ms: number | null;
  completed_ms: number | null;
  /** JSON: the attempts that ended without an answer (see AttemptRecord), or null. */
  history: string | null;
}

export interface NewQuery {
  id: string;
  session: string;
  query: string;
  queueKey: number;
  hasCredential: boolean;
  createdMs: number;
}

export interface Assignment {
  id: string;
  workerId: string;
  assignedMs: number;
  attempts: number;
}

export interface Outcome {
  id: string;
  status: "done" | "failed";
  answer: string | null;
  error: string | null;
  provider: string | null;
  worker: { id: string; language: string; node: string } | null;
  receivedMs: number | null;
  startedMs: number | null;
  finishedMs: number | null;
  completedMs: number;
  /** The attempts that ended without an answer, when they changed (else the stored list stays). */
  history?: readonly AttemptRecord[];
}

/** What deleteOldestFinished() removed, by outcome. */
export interface Pruned {
  done: number;
  failed: number;
}

/**
 * Retention's two bounds on finished (done or failed) queries: by age and by
 * count. A finished query is past them when it completed before `before`, or
 * when more than `keep` finished queries would be kept with it.
 */
export interface RetentionBound {
  /** Completion time (ms since the epoch): finished queries that completed before it go. */
  before: number;
  /** At most this many finished queries are kept: past it the oldest go. */
  keep: number;
}

/**
 * Whether the oldest finished query still kept is past the bound, when `kept`
 * finished queries are kept (it among them) and it completed at `completedMs`.
 * Both engines walk their finished queries oldest first and delete while this
 * holds (then every younger one is within the bound too).
 */
export function pastRetention(bound: RetentionBound, kept: number, completedMs: number): boolean {
  return kept > bound.keep || completedMs < bound.before;
}

/** Which engine a store is (for /healthz and the logs). */
export type StoreEngine = "sqlite" | "etcd";

export interface QueryStore {
  readonly engine: StoreEngine;

  // ---- writes: into the open batch -----------------------------------------
  insert(q: NewQuery): void;
  assign(a: Assignment): void;
  /** Several assignments in one write (one commit). */
  assignMany(list: Assignment[]): void;
  requeue(id: string, queueKey: number, attempts: number, history?: readonly AttemptRecord[]): void;
  finish(o: Outcome): void;
  /**
   * Retention: deletes at most `limit` finished (done or failed) queries past
   * `bound` (see pastRetention), oldest (by completion) first, and says how
   * many of each. Unfinished queries are never deleted.
   */
  deleteOldestFinished(bound: RetentionBound, limit: number): Pruned;

  // ---- batches (group commit) ----------------------------------------------
  /** True while a batch is open (writes made and not yet handed to commitBatch()). */
  readonly inBatch: boolean;
  /**
   * Opens a batch unless one is open: the writes until commitBatch() are made
   * durable together. Whoever batches holds back every effect of those writes
   * (answers, acks, task messages) until the commit resolved.
   */
  beginBatch(): void;
  /**
   * Makes the open batch durable. The batch is taken when this is called:
   * writes made while the promise is pending form the next batch. Rejects when
   * the commit failed (then memory and the store may disagree: the caller
   * must stop, see QueryService's onCommitError).
   */
  commitBatch(): Promise<void>;

  // ---- reads: synchronous, and they see the open batch ----------------------
  get(id: string): QueryRow | undefined;
  /** Unfinished queries (queued and assigned), queued ones in queue order. */
  active(): QueryRow[];
  /** The session's latest queries, newest first. */
  recentBySession(session: string, limit: number): QueryRow[];
  countByStatus(): Record<QueryStatus, number>;
  /** Cheap liveness check for /healthz. */
  ping(): boolean;

  /** Commits an open batch, then lets go of the file or the connection. */
  close(): Promise<void>;
}

/** The stored attempt history of a row (an unreadable one counts as none). */
export function parseHistory(text: string | null): AttemptRecord[] {
  if (text === null) return [];
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? (value as AttemptRecord[]) : [];
  } catch {
    return [];
  }
}
