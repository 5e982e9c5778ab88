// The master's core: ties the pure scheduler to the store, the in-memory API
// keys and the task publisher. HTTP, Socket.IO, MQTT and gRPC are thin adapters
// around this class, which itself does no network I/O (the publisher is injected).
//
// Who owns what of a query (one owner per fact):
// - unfinished, its dispatch state (queued or leased, worker, assigned time,
//   attempts, the dispatches that ended without an answer) is the scheduler's
//   (Scheduler.task()); this class keeps only the query text, the creation time
//   and the API key (`submissions`), and the numbers of finished queries;
// - finished, everything is its row in the store.
// A QueryView is built in one place, queryView(), from either (see QueryFacts).
import { newQueryId } from "./ids";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import { encodeTask, type IncomingMsg } from "./protocol";
import type { AttemptRecord, NodeCounts, Requeue, RequeueReason, Scheduler, TaskState, WorkerView } from "./scheduler";
import { parseHistory, type QueryRow, type QueryStatus, type QueryStore } from "./store";
import type { QueryInput } from "./validation";

export interface WorkerRef {
  id: string;
  language: string;
  node: string;
}

export type QueryEventKind = "queued" | "leased" | "requeued" | "answered" | "failed";
/** Why a dispatch ended without an answer, or why the query failed. */
export type QueryEventReason = "worker_lost" | "lease_expired" | "rejected" | "attempts_exhausted" | "worker_error";

/**
 * One step of a query's story: queued, leased to a worker (on a node), taken
 * back from it (and why), answered or failed (and why). Times are the master's.
 */
export interface QueryEvent {
  at_ms: number;
  kind: QueryEventKind;
  worker?: string;
  node?: string;
  /** leased: the attempt this dispatch counts as (a rejected one does not count). */
  attempt?: number;
  reason?: QueryEventReason;
  /** The reason in plain words. */
  detail?: string;
}

/** The public shape of a query: GET /api/queries/:id and Socket.IO `query:update`. */
export interface QueryView {
  id: string;
  status: QueryStatus;
  query: string;
  position: number;
  answer: string | null;
  error: string | null;
  provider: string | null;
  worker: WorkerRef | null;
  timings: {
    created_ms: number;
    assigned_ms: number | null;
    received_ms: number | null;
    started_ms: number | null;
    finished_ms: number | null;
    completed_ms: number | null;
  };
  attempts: number;
  /** The query's story, oldest first (added in issue 11; every other field is as before). */
  events: QueryEvent[];
}

/** A result as received over gRPC (already authenticated). */
export interface ResultInput {
  taskId: string;
  workerId: string;
  language: string;
  node: string;
  provider: string;
  answer: string;
  error: string;
  receivedMs: number | null;
  startedMs: number | null;
  finishedMs: number | null;
}

export type ResultDecision = "accepted" | "duplicate" | "not_found" | "permission_denied";

export type CredentialDecision =
  | { kind: "ok"; present: boolean; apiKey: string }
  | { kind: "not_found" }
  | { kind: "permission_denied" };

export type SubmitResult =
  | { ok: true; id: string; status: QueryStatus; position: number }
  | { ok: false; reason: "session_cap" };

export interface TaskPublisher {
  readonly connected: boolean;
  publish(topic: string, payload: string): void;
}

export interface ServiceListeners {
  queryUpdated(view: QueryView, session: string): void;
  workersChanged(): void;
  queueChanged(): void;
  /** A query ended (done or failed), once that is on disk. */
  queryFinished?(view: QueryView): void;
}

/**
 * What the service keeps of an unfinished query: only what the scheduler has
 * no use for. Everything else about it is the scheduler's (Scheduler.task()).
 */
interface Submission {
  query: string;
  createdMs: number;
  /** The user's API key: memory only, gone with the submission when the query ends. */
  apiKey: string | undefined;
}

/**
 * Everything a QueryView shows, from an unfinished query (scheduler +
 * submission) or a stored row: the one input of queryView().
 */
interface QueryFacts {
  id: string;
  status: QueryStatus;
  query: string;
  /** 1-based place in the queue; 0 unless queued. */
  position: number;
  createdMs: number;
  assignedMs: number | null;
  /** Who holds it (unfinished), or who answered or reported the error (finished). */
  worker: WorkerRef | null;
  attempts: number;
  /** Dispatches that ended without an answer, oldest first. */
  history: readonly AttemptRecord[];
  answer: string | null;
  error: string | null;
  provider: string | null;
  receivedMs: number | null;
  startedMs: number | null;
  finishedMs: number | null;
  completedMs: number | null;
}

/** How long, and how many, finished queries are kept (ANSWER_RETENTION_HOURS, ANSWER_RETENTION_MAX). */
export interface Retention {
  maxAgeMs: number;
  maxCount: number;
}

export interface ServiceOptions {
  taskTopic(workerId: string): string;
  now?: () => number;
  /**
   * Group commit: every write of one event-loop turn goes into one batch,
   * committed at the end of the turn (setImmediate) — one SQLite transaction,
   * or one (fenced) etcd transaction; everything that makes a write visible
   * outside (task messages, query updates, answers to long-polls, acks through
   * afterCommit) waits for that commit. Off (the default), each write commits
   * at once and effects happen immediately: SQLite only (etcd writes need it).
   */
  groupCommit?: boolean;
  /** Called when a group commit fails (the batch is rolled back): memory and disk disagree now. */
  onCommitError?: (error: unknown) => void;
  /** How the end-of-turn commit is scheduled (default setImmediate). */
  defer?: (fn: () => void) => void;
}

const noListeners: ServiceListeners = {
  queryUpdated: () => {},
  workersChanged: () => {},
  queueChanged: () => {},
};

export class QueryService {
  /** Unfinished queries: what the scheduler does not keep (same ids as its tasks). */
  private readonly submissions = new Map<string, Submission>();
  private readonly waiters = new Map<string, Set<(view: QueryView) => void>>();
  /** False once the master stops: long-polls then answer at once. */
  private waiting = true;
  /** Finished queries by outcome (unfinished ones are the scheduler's queue and leases). */
  private readonly finished: { done: number; failed: number };
  private readonly now: () => number;
  private listeners: ServiceListeners = noListeners;
  private seenWorkersVersion = -1;
  private readonly groupCommit: boolean;
  private readonly defer: (fn: () => void) => void;
  /** Effects held back until the open batch is committed. */
  private pendingEffects: (() => void)[] = [];
  /** Effects of the batch whose commit is in flight (undefined: none is). */
  private committingEffects: (() => void)[] | undefined;
  /** The commits handed over so far, in order (never rejects: see flush()). */
  private commits: Promise<void> = Promise.resolve();
  /** Flushes started and not settled yet. */
  private queuedCommits = 0;
  private flushScheduled = false;

  constructor(
    private readonly store: QueryStore,
    private readonly scheduler: Scheduler,
    private readonly publisher: TaskPublisher,
    private readonly log: Logger,
    private readonly opts: ServiceOptions,
    private metrics?: Metrics,
  ) {
    this.now = opts.now ?? Date.now;
    const counts = store.countByStatus();
    this.finished = { done: counts.done, failed: counts.failed };
    this.groupCommit = opts.groupCommit ?? false;
    this.defer = opts.defer ?? ((fn) => void setImmediate(fn));
  }

  setListeners(listeners: ServiceListeners): void {
    this.listeners = listeners;
  }

  setMetrics(metrics: Metrics): void {
    this.metrics = metrics;
  }

  /** Rebuilds the queue and the leases from the database after a (re)start. */
  restore(): { queued: number; assigned: number } {
    const rows = this.store.active();
    this.scheduler.restore(
      rows.map((r) => ({
        id: r.id,
        session: r.session,
        attempts: r.attempts,
        queueKey: r.queue_key ?? 0,
        history: parseHistory(r.history),
        lease:
          r.status === "assigned" && r.worker_id
            ? { workerId: r.worker_id, assignedMs: r.assigned_ms ?? undefined }
            : undefined,
      })),
      this.now(),
    );
    // The API key is never stored: after a restart the query runs without one.
    for (const r of rows) this.submissions.set(r.id, { query: r.query, createdMs: r.created_ms, apiKey: undefined });
    return { queued: this.scheduler.queueDepth, assigned: this.scheduler.leaseCount };
  }

  // ---- queries -------------------------------------------------------------

  submit(input: QueryInput, session: string): SubmitResult {
    const now = this.now();
    const id = newQueryId(now);
    const queued = this.scheduler.enqueue(id, session);
    if (!queued.ok) return queued;
    try {
      this.write(() =>
        this.store.insert({
          id,
          session,
          query: input.query,
          queueKey: queued.queueKey,
          hasCredential: input.apiKey !== undefined,
          createdMs: now,
        }),
      );
    } catch (error) {
      // Not stored means not accepted: take it out of the queue again, so the
      // scheduler never holds a task the rest of the service does not know.
      this.scheduler.forget(id);
      throw error;
    }
    this.submissions.set(id, { query: input.query, createdMs: now, apiKey: input.apiKey });
    this.pump();
    const view = this.get(id) as QueryView;
    if (view.status === "queued") this.effect(() => this.listeners.queryUpdated(view, session));
    this.listeners.queueChanged();
    return { ok: true, id, status: view.status, position: view.position };
  }

  get(id: string): QueryView | undefined {
    const task = this.scheduler.task(id);
    if (task) return queryView(this.activeFacts(task));
    const row = this.store.get(id);
    return row ? queryView(rowFacts(row)) : undefined;
  }

  /** The session a query belongs to; undefined for an unknown id. */
  sessionOf(id: string): string | undefined {
    return this.scheduler.sessionOf(id) ?? this.store.get(id)?.session;
  }

  /** Resolves when the query is done or failed, or when `ms` have passed. */
  waitFor(id: string, ms: number): Promise<QueryView | undefined> {
    const view = this.get(id);
    if (!view || view.status === "done" || view.status === "failed" || ms <= 0 || !this.waiting) {
      // What is read may be in the open batch: show it once it is on disk.
      return this.committed().then(() => view);
    }
    return new Promise((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const finish = (final: QueryView): void => {
        clearTimeout(timer);
        set.delete(finish);
        if (set.size === 0) this.waiters.delete(id);
        resolve(final);
      };
      const timer = setTimeout(() => finish(this.get(id) as QueryView), ms);
      set.add(finish);
    });
  }

  /**
   * The master is stopping: every long-poll answers now (once what it shows is
   * on disk) with the query as it stands, and later ones do not wait.
   */
  stopWaiting(): void {
    this.waiting = false;
    this.afterCommit(() => {
      for (const [id, set] of this.waiters) {
        const view = this.get(id) as QueryView;
        for (const finish of [...set]) finish(view);
      }
    });
  }

  /** The session's latest queries, newest first (for a page that reconnects). */
  recent(session: string, limit = 100): QueryView[] {
    return this.store.recentBySession(session, limit).map((row) => {
      const task = this.scheduler.task(row.id);
      return queryView(task ? this.activeFacts(task) : rowFacts(row));
    });
  }

  /** Waiting queries with their sessions, head first (to push new positions). */
  queued(): { view: QueryView; session: string }[] {
    return this.queuedFor(() => true);
  }

  /**
   * Waiting queries of the sessions `wanted` says yes to, head first: only
   * their views are built (the position pushes go to connected pages only).
   */
  queuedFor(wanted: (session: string) => boolean): { view: QueryView; session: string }[] {
    const out: { view: QueryView; session: string }[] = [];
    this.scheduler.queuedIds().forEach((id, index) => {
      const session = this.scheduler.sessionOf(id) as string;
      if (wanted(session)) out.push({ view: queryView(this.activeFacts(this.scheduler.task(id) as TaskState, index + 1)), session });
    });
    return out;
  }

  queueDepth(): number {
    return this.scheduler.queueDepth;
  }

  /** Queries leased to a worker right now. */
  inFlight(): number {
    return this.scheduler.leaseCount;
  }

  /** The workers of one node (the cluster view's details). */
  nodeWorkers(node: string): WorkerView[] {
    return this.scheduler.nodeWorkers(node);
  }

  nodeCounts(node: string): NodeCounts | undefined {
    return this.scheduler.nodeCounts(node);
  }

  nodes(): string[] {
    return [...this.scheduler.nodes()];
  }

  /** Nodes whose workers changed since the last call. */
  takeChangedNodes(): string[] {
    return this.scheduler.takeChangedNodes();
  }

  // ---- group commit ----------------------------------------------------------

  /** Runs `fn` once every write made so far is on disk (at once when nothing is pending). */
  afterCommit(fn: () => void): void {
    this.effect(fn);
  }

  /** Resolves once every write made so far is on disk. */
  committed(): Promise<void> {
    return new Promise((resolve) => this.effect(resolve));
  }

  /**
   * Commits the open batch and runs the effects that waited for it, in order.
   * One commit is in flight at a time: a flush called meanwhile commits the
   * writes made since, after the one in flight resolved (and its effects ran).
   * Resolves once this batch's effects ran; rejects when its commit failed and
   * there is no onCommitError.
   */
  flush(): Promise<void> {
    this.flushScheduled = false;
    // None in flight or queued: commit now (same turn), else after the last one.
    const next = (this.queuedCommits === 0 ? this.commitOpenBatch() : this.commits.then(() => this.commitOpenBatch())).finally(() => {
      this.queuedCommits -= 1;
    });
    this.queuedCommits += 1;
    this.commits = next.catch(() => {});
    return next;
  }

  private async commitOpenBatch(): Promise<void> {
    if (!this.store.inBatch && this.pendingEffects.length === 0) return;
    const effects = this.pendingEffects;
    this.pendingEffects = [];
    // Effects asked for while this commit is in flight, with no write of their
    // own (e.g. a read of what this batch wrote), wait for this commit too.
    this.committingEffects = effects;
    const started = performance.now();
    try {
      await this.store.commitBatch();
    } catch (error) {
      // Nothing of the batch is known to be durable: none of its effects may happen.
      this.committingEffects = undefined;
      this.log.error("database commit failed", { engine: this.store.engine, error: String(error) });
      if (this.opts.onCommitError) this.opts.onCommitError(error);
      else throw error;
      return;
    }
    this.metrics?.observeCommit(this.store.engine, (performance.now() - started) / 1000);
    // (an effect that asks for another effect appends to this same list)
    for (const fn of effects) {
      try {
        fn();
      } catch (error) {
        this.log.error("an effect after commit failed", { error: String(error) });
      }
    }
    this.committingEffects = undefined;
  }

  /**
   * Retention: deletes up to `limit` finished queries that completed more than
   * `retention.maxAgeMs` ago or are more than the `retention.maxCount` newest
   * finished ones, oldest (by completion) first (a write like any other: it
   * joins the batch, and on etcd it is fenced). Returns how many it deleted.
   */
  pruneFinished(retention: Retention, limit: number): number {
    let pruned = { done: 0, failed: 0 };
    this.write(() => {
      pruned = this.store.deleteOldestFinished({ before: this.now() - retention.maxAgeMs, keep: retention.maxCount }, limit);
    });
    this.finished.done -= pruned.done;
    this.finished.failed -= pruned.failed;
    return pruned.done + pruned.failed;
  }

  /**
   * Retention, all of it: batches of `batchSize` deleted one commit after
   * another until none is left (each batch a bounded transaction). Resolves
   * with how many it deleted, once they are committed.
   */
  async pruneAllFinished(retention: Retention, batchSize: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const n = this.pruneFinished(retention, batchSize);
      await this.committed();
      deleted += n;
      if (n < batchSize) return deleted;
    }
  }

  queriesByState(): Record<QueryStatus, number> {
    return { queued: this.scheduler.queueDepth, assigned: this.scheduler.leaseCount, ...this.finished };
  }

  workers(): WorkerView[] {
    return this.scheduler.listWorkers();
  }

  // ---- worker side ---------------------------------------------------------

  onWorkerMessage(msg: IncomingMsg): void {
    const now = this.now();
    switch (msg.type) {
      case "register":
        this.scheduler.onRegister(msg, now);
        this.log.info("worker registered", {
          worker_id: msg.worker_id,
          language: msg.language,
          node: msg.node,
          provider: msg.provider,
        });
        break;
      case "heartbeat":
        this.applyRequeues(this.scheduler.onHeartbeat(msg, now));
        break;
      case "status":
        this.applyRequeues(this.scheduler.onStatus(msg, now));
        break;
      case "log":
        this.log.debug("worker log", {
          source: msg.source,
          level: msg.level,
          message: msg.message.slice(0, 500),
          task_id: msg.task_id,
        });
        return;
    }
    this.pump();
  }

  handleResult(r: ResultInput): ResultDecision {
    const holder = this.scheduler.checkHolder(r.taskId, r.workerId);
    if (holder === "not_active") {
      const decision = this.store.get(r.taskId) ? "duplicate" : "not_found";
      if (decision === "not_found") this.metrics?.resultRejected("not_found");
      return decision;
    }
    if (holder === "not_held") {
      this.metrics?.resultRejected("not_held");
      return "permission_denied";
    }
    this.finish(this.scheduler.complete(r.taskId) as TaskState, {
      status: r.error !== "" ? "failed" : "done",
      answer: r.error !== "" ? null : keptText(r.answer),
      error: r.error !== "" ? keptText(r.error) : null,
      provider: r.provider,
      worker: { id: r.workerId, language: r.language, node: r.node },
      receivedMs: r.receivedMs,
      startedMs: r.startedMs,
      finishedMs: r.finishedMs,
    });
    this.pump();
    return "accepted";
  }

  getCredential(taskId: string, workerId: string): CredentialDecision {
    const holder = this.scheduler.checkHolder(taskId, workerId);
    if (holder === "held") {
      const apiKey = this.submissions.get(taskId)?.apiKey;
      return { kind: "ok", present: apiKey !== undefined, apiKey: apiKey ?? "" };
    }
    const known = holder === "not_held" || this.store.get(taskId) !== undefined;
    this.metrics?.resultRejected(known ? "credential_not_held" : "credential_not_found");
    return known ? { kind: "permission_denied" } : { kind: "not_found" };
  }

  /** Clock tick: lease expiry and heartbeat timeouts (only while the broker is up). */
  tick(): void {
    if (!this.publisher.connected) return;
    this.applyRequeues(this.scheduler.tick(this.now()));
    this.pump();
  }

  /** The broker came back: forgive the silence, then hand out waiting work. */
  brokerReconnected(): void {
    this.scheduler.resumeAfterOutage(this.now());
    this.pump();
  }

  /** Leases waiting queries to idle workers and publishes the tasks. */
  pump(): void {
    if (this.publisher.connected) {
      const dispatches = this.scheduler.dispatch(this.now());
      if (dispatches.length > 0) this.publishDispatches(dispatches);
    }
    this.notifyWorkersIfChanged();
  }

  // ---- internals -----------------------------------------------------------

  private publishDispatches(dispatches: ReturnType<Scheduler["dispatch"]>): void {
    // Persist before publishing: a crash in between leaves a lease that
    // expires and re-dispatches, never a task that is out but not recorded.
    this.write(() =>
      this.store.assignMany(
        dispatches.map((d) => ({ id: d.taskId, workerId: d.workerId, assignedMs: d.assignedMs, attempts: d.attempt })),
      ),
    );
    for (const d of dispatches) {
      const task = this.scheduler.task(d.taskId) as TaskState;
      const submission = this.submissionOf(task);
      const payload = encodeTask({
        task_id: d.taskId,
        query: submission.query,
        lease_ms: d.leaseMs,
        has_credential: submission.apiKey !== undefined,
        ts: d.assignedMs,
      });
      const topic = this.opts.taskTopic(d.workerId);
      const view = queryView(this.activeFacts(task));
      this.effect(() => {
        this.publisher.publish(topic, payload);
        this.listeners.queryUpdated(view, task.session);
      });
      this.log.debug("task dispatched", { task_id: d.taskId, worker_id: d.workerId, attempt: d.attempt });
    }
    this.listeners.queueChanged();
  }

  private applyRequeues(requeues: Requeue[]): void {
    for (const r of requeues) {
      const task = r.task;
      this.log.warn(r.failed ? "task failed: out of attempts" : "task requeued at head", {
        task_id: r.taskId,
        worker_id: r.workerId,
        reason: r.reason,
        attempts: task.history.at(-1)?.attempt,
      });
      if (r.failed) {
        this.finish(task, {
          status: "failed",
          answer: null,
          error: `no worker finished this query after ${task.attempts} attempts (last: ${r.reason})`,
          provider: null,
          worker: null,
          receivedMs: null,
          startedMs: null,
          finishedMs: null,
        });
        continue;
      }
      // The story's new step (the scheduler added it to the history) is stored with the requeue.
      this.write(() => this.store.requeue(r.taskId, r.queueKey as number, task.attempts, task.history));
      const view = queryView(this.activeFacts(task));
      this.effect(() => this.listeners.queryUpdated(view, task.session));
    }
    if (requeues.length > 0) this.listeners.queueChanged();
  }

  /** Ends a query: `ended` is its last dispatch state (Scheduler.complete() or a failed Requeue). */
  private finish(
    ended: TaskState,
    outcome: {
      status: "done" | "failed";
      answer: string | null;
      error: string | null;
      provider: string | null;
      worker: WorkerRef | null;
      receivedMs: number | null;
      startedMs: number | null;
      finishedMs: number | null;
    },
  ): void {
    const submission = this.submissionOf(ended);
    const completedMs = this.now();
    // The facts the row will hold: the view shown now is the view read back later.
    const facts: QueryFacts = {
      id: ended.id,
      query: submission.query,
      position: 0,
      createdMs: submission.createdMs,
      assignedMs: ended.holder?.assignedMs ?? null,
      attempts: ended.attempts,
      history: ended.history,
      ...outcome,
      completedMs,
    };
    this.write(() => this.store.finish({ id: ended.id, completedMs, ...outcome, history: ended.history }));
    this.submissions.delete(ended.id);
    this.finished[outcome.status] += 1;
    this.metrics?.observeLatency(completedMs - submission.createdMs);
    const view = queryView(facts);
    this.effect(() => {
      this.listeners.queryUpdated(view, ended.session);
      this.listeners.queryFinished?.(view);
      for (const resolve of [...(this.waiters.get(ended.id) ?? [])]) resolve(view);
    });
  }

  /** Holds back `fn` until the open batch (or the one being committed) is durable; runs it now without one. */
  private effect(fn: () => void): void {
    if (this.groupCommit && this.store.inBatch) this.pendingEffects.push(fn);
    else if (this.groupCommit && this.committingEffects !== undefined) this.committingEffects.push(fn);
    else fn();
  }

  /** A store write; with group commit it joins the turn's batch. */
  private write(fn: () => void): void {
    if (this.groupCommit) {
      this.store.beginBatch();
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // (a failed commit is reported through onCommitError; without it, the rejection is unhandled: a crash)
        this.defer(() => void this.flush());
      }
    }
    fn();
  }

  private submissionOf(task: TaskState): Submission {
    return this.submissions.get(task.id) as Submission;
  }

  /** The facts of an unfinished query: the scheduler's dispatch state and the submission. */
  private activeFacts(task: TaskState, position?: number): QueryFacts {
    const submission = this.submissionOf(task);
    const holder = task.holder;
    return {
      id: task.id,
      status: holder ? "assigned" : "queued",
      query: submission.query,
      position: holder ? 0 : (position ?? this.scheduler.positionOf(task.id)),
      createdMs: submission.createdMs,
      assignedMs: holder?.assignedMs ?? null,
      worker: holder ? (this.scheduler.workerIdentity(holder.workerId) ?? unknownWorker(holder.workerId)) : null,
      attempts: task.attempts,
      history: task.history,
      answer: null,
      error: null,
      provider: null,
      receivedMs: null,
      startedMs: null,
      finishedMs: null,
      completedMs: null,
    };
  }

  private notifyWorkersIfChanged(): void {
    if (this.scheduler.workersVersion === this.seenWorkersVersion) return;
    this.seenWorkersVersion = this.scheduler.workersVersion;
    this.listeners.workersChanged();
  }
}

/**
 * The most of an answer (or a worker's error message) the master keeps, in
 * characters. A row must fit in one etcd request (--max-request-bytes, 1.5 MiB)
 * even when every character is escaped in JSON (up to 6 bytes), so a worker's
 * oversized answer cannot stop every commit; both engines keep the same.
 */
export const MAX_KEPT_ANSWER_CHARS = 128 * 1024;

/** The text as kept: whole, or cut at MAX_KEPT_ANSWER_CHARS with a note saying so. */
function keptText(text: string): string {
  if (text.length <= MAX_KEPT_ANSWER_CHARS) return text;
  return `${text.slice(0, MAX_KEPT_ANSWER_CHARS)}\n[cut by the master: ${text.length} characters, at most ${MAX_KEPT_ANSWER_CHARS} are kept]`;
}

function unknownWorker(id: string): WorkerRef {
  return { id, language: "unknown", node: "unknown" };
}

/** The facts of a stored query (finished ones are read from here only). */
function rowFacts(row: QueryRow): QueryFacts {
  return {
    id: row.id,
    status: row.status,
    query: row.query,
    position: 0,
    createdMs: row.created_ms,
    assignedMs: row.assigned_ms,
    worker: row.worker_id
      ? { id: row.worker_id, language: row.worker_language ?? "unknown", node: row.worker_node ?? "unknown" }
      : null,
    attempts: row.attempts,
    history: parseHistory(row.history),
    answer: row.answer,
    error: row.error,
    provider: row.provider,
    receivedMs: row.received_ms,
    startedMs: row.started_ms,
    finishedMs: row.finished_ms,
    completedMs: row.completed_ms,
  };
}

/**
 * The one place a QueryView (GET /api/queries/:id, Socket.IO `query:update`,
 * the long-poll and `Prefer: wait` answers) is built.
 */
function queryView(f: QueryFacts): QueryView {
  return {
    id: f.id,
    status: f.status,
    query: f.query,
    position: f.position,
    answer: f.answer,
    error: f.error,
    provider: f.provider,
    worker: f.worker,
    timings: {
      created_ms: f.createdMs,
      assigned_ms: f.assignedMs,
      received_ms: f.receivedMs,
      started_ms: f.startedMs,
      finished_ms: f.finishedMs,
      completed_ms: f.completedMs,
    },
    attempts: f.attempts,
    events: storyOf(f),
  };
}

const END_WORDS: Record<string, { reason: QueryEventReason; detail: string }> = {
  worker_offline: { reason: "worker_lost", detail: "worker lost: it went offline" },
  heartbeat_timeout: { reason: "worker_lost", detail: "worker lost: it stopped sending heartbeats" },
  lease_expired: { reason: "lease_expired", detail: "lease expired: no answer in time" },
  rejected: { reason: "rejected", detail: "rejected: the worker was busy" },
  lost_on_reconnect: { reason: "worker_lost", detail: "worker lost it: it reconnected without it" },
};

/** Plain words for why a dispatch ended without an answer. */
export function requeueWords(reason: RequeueReason | string): { reason: QueryEventReason; detail: string } {
  return END_WORDS[reason] ?? { reason: "worker_lost", detail: `taken back (${reason})` };
}

/**
 * A query's story from what is kept anyway: created, the dispatches that ended
 * without an answer, the current (or last) lease, and the end.
 */
function storyOf(f: QueryFacts): QueryEvent[] {
  const events: QueryEvent[] = [{ at_ms: f.createdMs, kind: "queued" }];
  for (const h of f.history) {
    events.push({ at_ms: h.leased_ms, kind: "leased", worker: h.worker, node: h.node, attempt: h.attempt });
    events.push({ at_ms: h.ended_ms, kind: "requeued", worker: h.worker, node: h.node, ...requeueWords(h.reason) });
  }
  // A query failed for want of attempts has no worker: its last lease is in the history.
  const exhausted = f.status === "failed" && f.worker === null;
  const holder = f.worker;
  if (f.status !== "queued" && f.assignedMs !== null && holder !== null && !exhausted) {
    events.push({ at_ms: f.assignedMs, kind: "leased", worker: holder.id, node: holder.node, attempt: f.attempts });
  }
  const endMs = f.completedMs ?? f.createdMs;
  if (f.status === "done") {
    events.push({ at_ms: endMs, kind: "answered", worker: holder?.id, node: holder?.node });
  } else if (exhausted) {
    events.push({
      at_ms: endMs,
      kind: "failed",
      reason: "attempts_exhausted",
      detail: `attempts exhausted: no worker finished it in ${f.attempts} attempts`,
    });
  } else if (f.status === "failed") {
    events.push({ at_ms: endMs, kind: "failed", worker: holder?.id, node: holder?.node, reason: "worker_error", detail: "the worker reported an error" });
  }
  return events;
}
