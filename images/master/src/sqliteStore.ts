// The SQLite engine of the query store (better-sqlite3, WAL): a single-manager
// stack and `npm run local` by default. Every query, its state and its place in
// the queue live in one file so a restarted master (even after SIGKILL) answers
// every queued and in-flight query exactly once.
// The per-query user API key is deliberately NOT a column: it never touches disk.
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { pastRetention } from "./store";
import type { AttemptRecord, Assignment, NewQuery, Outcome, Pruned, QueryRow, QueryStatus, QueryStore, RetentionBound } from "./store";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queries (
  id              TEXT PRIMARY KEY,
  seq             INTEGER NOT NULL,
  session         TEXT NOT NULL,
  query           TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('queued','assigned','done','failed')),
  queue_key       INTEGER,
  attempts        INTEGER NOT NULL DEFAULT 0,
  answer          TEXT,
  error           TEXT,
  provider        TEXT,
  worker_id       TEXT,
  worker_language TEXT,
  worker_node     TEXT,
  has_credential  INTEGER NOT NULL DEFAULT 0,
  created_ms      INTEGER NOT NULL,
  assigned_ms     INTEGER,
  received_ms     INTEGER,
  started_ms      INTEGER,
  finished_ms     INTEGER,
  completed_ms    INTEGER,
  history         TEXT
);
-- Start-up reads only unfinished queries; a partial index keeps that cheap.
CREATE INDEX IF NOT EXISTS queries_active ON queries (status) WHERE status IN ('queued','assigned');
CREATE INDEX IF NOT EXISTS queries_session ON queries (session, seq);
-- Retention deletes the oldest finished queries first.
CREATE INDEX IF NOT EXISTS queries_finished ON queries (completed_ms) WHERE status IN ('done','failed');
`;

function prepareStatements(db: Database.Database) {
return {
    insert: db.prepare(
      `INSERT INTO queries (id, seq, session, query, status, queue_key, has_credential, created_ms)
       VALUES (@id, @seq, @session, @query, 'queued', @queueKey, @hasCredential, @createdMs)`,
    ),
    assign: db.prepare(
      `UPDATE queries SET status = 'assigned', queue_key = NULL, worker_id = @workerId,
         assigned_ms = @assignedMs, attempts = @attempts WHERE id = @id`,
    ),
    requeue: db.prepare(
      `UPDATE queries SET status = 'queued', queue_key = @queueKey, worker_id = NULL,
         assigned_ms = NULL, attempts = @attempts, history = @history WHERE id = @id`,
    ),
    finish: db.prepare(
      `UPDATE queries SET status = @status, queue_key = NULL, answer = @answer, error = @error,
         provider = @provider, worker_id = @workerId, worker_language = @workerLanguage,
         worker_node = @workerNode, received_ms = @receivedMs, started_ms = @startedMs,
         finished_ms = @finishedMs, completed_ms = @completedMs,
         history = COALESCE(@history, history) WHERE id = @id`,
    ),
    get: db.prepare(`SELECT * FROM queries WHERE id = ?`),
    active: db.prepare(
      `SELECT * FROM queries WHERE status IN ('queued','assigned') ORDER BY queue_key`,
    ),
    recentBySession: db.prepare(
      `SELECT * FROM queries WHERE session = ? ORDER BY seq DESC LIMIT ?`,
    ),
    ping: db.prepare(`SELECT 1 AS ok`),
    maxSeq: db.prepare(`SELECT COALESCE(MAX(seq), 0) AS max FROM queries`),
    countByStatus: db.prepare(`SELECT status, COUNT(*) AS n FROM queries GROUP BY status`),
    countFinished: db.prepare(`SELECT COUNT(*) AS n FROM queries WHERE status IN ('done','failed')`),
    oldestFinished: db.prepare(
      `SELECT id, status, completed_ms FROM queries WHERE status IN ('done','failed') ORDER BY completed_ms, seq LIMIT ?`,
    ),
    delete: db.prepare(`DELETE FROM queries WHERE id = ?`),
    begin: db.prepare(`BEGIN`),
    commit: db.prepare(`COMMIT`),
    rollback: db.prepare(`ROLLBACK`),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteStore implements QueryStore {
  readonly engine = "sqlite";
  private readonly db: Database.Database;
  private readonly stmts: Statements;
  private nextSeq: number;
  private readonly assignAll: (list: Assignment[]) => void;

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // The master is the file's only user (one replica, updated stop-first), so
    // it keeps the lock for its lifetime: no lock system calls per transaction,
    // and the WAL index in memory. Another process opening the file while the
    // master runs gets SQLITE_BUSY.
    this.db.pragma("locking_mode = EXCLUSIVE");
    // A row is a few hundred bytes and every commit appends whole pages to the
    // WAL: 1 KiB pages made each write a quarter cheaper than 4 KiB. (Takes
    // effect when the file is created; an existing file keeps its page size.)
    this.db.pragma("page_size = 1024");
    this.db.pragma("journal_mode = WAL");
    // WAL + NORMAL: durable across process crashes (SIGKILL), no fsync per query.
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
    migrate(this.db);
    this.stmts = prepareStatements(this.db);
    this.assignAll = this.db.transaction((list: Assignment[]) => list.forEach((a) => this.assign(a)));
    this.nextSeq = (this.stmts.maxSeq.get() as { max: number }).max + 1;
  }

  insert(q: NewQuery): void {
    this.stmts.insert.run({
      id: q.id,
      seq: this.nextSeq++,
      session: q.session,
      query: q.query,
      queueKey: q.queueKey,
      hasCredential: q.hasCredential ? 1 : 0,
      createdMs: q.createdMs,
    });
  }

  /** True while a batch (group commit) is open. */
  get inBatch(): boolean {
    return this.db.inTransaction;
  }

  /**
   * Opens a batch unless one is open: the writes until commitBatch() share one
   * transaction, so one WAL commit (a few page writes) instead of one per write.
   * Nothing of it is on disk before the commit: whoever batches must hold back
   * every effect of those writes (answers, acks, task messages) until then.
   */
  beginBatch(): void {
    if (!this.db.inTransaction) this.stmts.begin.run();
  }

  /**
   * Commits the open batch, if any, before it returns (the promise is the
   * interface's: it is settled already). Rejects when the commit failed (the
   * batch is rolled back).
   */
  commitBatch(): Promise<void> {
    try {
      this.commitNow();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private commitNow(): void {
    if (!this.db.inTransaction) return;
    try {
      this.stmts.commit.run();
    } catch (error) {
      if (this.db.inTransaction) this.stmts.rollback.run();
      throw error;
    }
  }

  assign(a: Assignment): void {
    this.stmts.assign.run(a);
  }

  /** Several assignments in one transaction (one WAL commit). */
  assignMany(list: Assignment[]): void {
    if (list.length === 1 || this.db.inTransaction) list.forEach((a) => this.assign(a));
    else if (list.length > 1) this.assignAll(list);
  }

  requeue(id: string, queueKey: number, attempts: number, history: readonly AttemptRecord[] = []): void {
    this.stmts.requeue.run({ id, queueKey, attempts, history: history.length > 0 ? JSON.stringify(history) : null });
  }

  finish(o: Outcome): void {
    this.stmts.finish.run({
      id: o.id,
      status: o.status,
      answer: o.answer,
      error: o.error,
      provider: o.provider,
      workerId: o.worker?.id ?? null,
      workerLanguage: o.worker?.language ?? null,
      workerNode: o.worker?.node ?? null,
      receivedMs: o.receivedMs,
      startedMs: o.startedMs,
      finishedMs: o.finishedMs,
      completedMs: o.completedMs,
      history: o.history && o.history.length > 0 ? JSON.stringify(o.history) : null,
    });
  }

  deleteOldestFinished(bound: RetentionBound, limit: number): Pruned {
    const pruned: Pruned = { done: 0, failed: 0 };
    if (limit <= 0) return pruned;
    let kept = (this.stmts.countFinished.get() as { n: number }).n;
    // Read (lazily, stopping at the first row within the bound), then delete:
    // the connection runs no other statement while an iteration is open.
    const doomed: { id: string; status: "done" | "failed" }[] = [];
    for (const row of this.stmts.oldestFinished.iterate(limit) as Iterable<{ id: string; status: "done" | "failed"; completed_ms: number }>) {
      if (!pastRetention(bound, kept, row.completed_ms)) break;
      doomed.push(row);
      kept -= 1;
    }
    for (const row of doomed) {
      this.stmts.delete.run(row.id);
      pruned[row.status] += 1;
    }
    return pruned;
  }

  get(id: string): QueryRow | undefined {
    return this.stmts.get.get(id) as QueryRow | undefined;
  }

  /** Unfinished queries (queued and assigned), queued ones in queue order. */
  active(): QueryRow[] {
    return this.stmts.active.all() as QueryRow[];
  }

  recentBySession(session: string, limit: number): QueryRow[] {
    return this.stmts.recentBySession.all(session, limit) as QueryRow[];
  }

  countByStatus(): Record<QueryStatus, number> {
    const counts: Record<QueryStatus, number> = { queued: 0, assigned: 0, done: 0, failed: 0 };
    for (const row of this.stmts.countByStatus.all() as { status: QueryStatus; n: number }[]) {
      counts[row.status] = row.n;
    }
    return counts;
  }

  /** Cheap liveness check for /healthz. */
  ping(): boolean {
    try {
      return this.stmts.ping.get() !== undefined;
    } catch {
      return false;
    }
  }

  /** Closes the file, committing an open batch first; done when it returns. */
  close(): Promise<void> {
    try {
      if (this.db.open) {
        this.commitNow();
        this.db.close();
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

/** Adds what later versions added to a database file an older master created. */
function migrate(db: Database.Database): void {
  const columns = db.prepare(`PRAGMA table_info(queries)`).all() as { name: string }[];
  if (!columns.some((c) => c.name === "history")) db.exec(`ALTER TABLE queries ADD COLUMN history TEXT`);
}
