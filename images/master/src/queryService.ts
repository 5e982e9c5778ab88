// The master's core: ties the pure scheduler to the store, the in-memory API
// keys and the task publisher. HTTP, Socket.IO, MQTT and gRPC are thin adapters
// around this class, which itself does no network I/O (the publisher is injected).
import { newQueryId } from "./ids";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import { encodeTask, type IncomingMsg } from "./protocol";
import type { NodeCounts, Requeue, RequeueReason, Scheduler, WorkerView } from "./scheduler";
import { parseHistory, type AttemptRecord, type QueryRow, type QueryStatus, type QueryStore } from "./store";
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

/** What the master keeps in memory for a query that is not finished. */
interface ActiveQuery {
  id: string;
  session: string;
  query: string;
  status: "queued" | "assigned";
  createdMs: number;
  assignedMs: number | null;
  workerId: string | null;
  attempts: number;
  /** Dispatches that ended without an answer (stored with the query). */
  history: AttemptRecord[];
}

export interface ServiceOptions {
  taskTopic(workerId: string): string;
  now?: () => number;
  /**
   * Group commit: every write of one event-loop turn goes into one SQLite
   * transaction, committed at the end of the turn (setImmediate); everything
   * that makes a write visible outside (task messages, query updates, answers
   * to long-polls, acks through afterCommit) waits for that commit. Off (the
   * default), each write commits at once and effects happen immediately.
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
  private readonly active = new Map<string, ActiveQuery>();
  /** Per-query user API keys: memory only, deleted when the query ends. */
  private readonly apiKeys = new Map<string, string>();
  private readonly waiters = new Map<string, Set<(view: QueryView) => void>>();
  private readonly counts: Record<QueryStatus, number>;
  private readonly now: () => number;
  private listeners: ServiceListeners = noListeners;
  private seenWorkersVersion = -1;
  private readonly groupCommit: boolean;
  private readonly defer: (fn: () => void) => void;
  /** Effects held back until the open batch is committed. */
  private pendingEffects: (() => void)[] = [];
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
    this.counts = store.countByStatus();
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
    const now = this.now();
    this.scheduler.restore(
      rows.map((r) => ({
        id: r.id,
        session: r.session,
        attempts: r.attempts,
        queueKey: r.queue_key ?? 0,
        lease:
          r.status === "assigned" && r.worker_id
            ? { workerId: r.worker_id }
            : undefined,
      })),
      now,
    );
    for (const r of rows) {
      this.active.set(r.id, {
        id: r.id,
        session: r.session,
        query: r.query,
        status: r.status === "assigned" && r.worker_id ? "assigned" : "queued",
        createdMs: r.created_ms,
        assignedMs: r.assigned_ms,
        workerId: r.worker_id,
        attempts: r.attempts,
        history: parseHistory(r.history),
      });
    }
    return { queued: this.scheduler.queueDepth, assigned: this.scheduler.leaseCount };
  }

  // ---- queries -------------------------------------------------------------

  submit(input: QueryInput, session: string): SubmitResult {
    const now = this.now();
    const id = newQueryId(now);
    const queued = this.scheduler.enqueue(id, session);
    if (!queued.ok) return queued;
    const hasKey = input.apiKey !== undefined;
    try {
      this.write(() =>
        this.store.insert({
          id,
          session,
          query: input.query,
          queueKey: queued.queueKey,
          hasCredential: hasKey,
          createdMs: now,
        }),
      );
    } catch (error) {
      // Not stored means not accepted: take it out of the queue again, so the
      // scheduler never holds a task the rest of the service does not know.
      this.scheduler.forget(id);
      throw error;
    }
    if (input.apiKey !== undefined) this.apiKeys.set(id, input.apiKey);
    this.active.set(id, {
      id,
      session,
      query: input.query,
      status: "queued",
      createdMs: now,
      assignedMs: null,
      workerId: null,
      attempts: 0,
      history: [],
    });
    this.counts.queued += 1;
    this.pump();
    const view = this.get(id) as QueryView;
    if (view.status === "queued") this.effect(() => this.listeners.queryUpdated(view, session));
    this.listeners.queueChanged();
    return { ok: true, id, status: view.status, position: view.position };
  }

  get(id: string): QueryView | undefined {
    const active = this.active.get(id);
    if (active) return this.activeView(active);
    const row = this.store.get(id);
    return row ? rowView(row) : undefined;
  }

  /** The session a query belongs to; undefined for an unknown id. */
  sessionOf(id: string): string | undefined {
    return this.active.get(id)?.session ?? this.store.get(id)?.session;
  }

  /** Resolves when the query is done or failed, or when `ms` have passed. */
  waitFor(id: string, ms: number): Promise<QueryView | undefined> {
    const view = this.get(id);
    if (!view || view.status === "done" || view.status === "failed" || ms <= 0) {
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

  /** The session's latest queries, newest first (for a page that reconnects). */
  recent(session: string, limit = 100): QueryView[] {
    return this.store.recentBySession(session, limit).map((row) => {
      const active = this.active.get(row.id);
      return active ? this.activeView(active) : rowView(row);
    });
  }

  /** Waiting queries with their sessions, head first (to push new positions). */
  queued(): { view: QueryView; session: string }[] {
    return this.scheduler.queuedIds().map((id, index) => {
      const active = this.active.get(id) as ActiveQuery;
      return { view: this.activeView(active, index + 1), session: active.session };
    });
  }

  /**
   * Waiting queries of the sessions `wanted` says yes to, head first: only
   * their views are built (the position pushes go to connected pages only).
   */
  queuedFor(wanted: (session: string) => boolean): { view: QueryView; session: string }[] {
    const out: { view: QueryView; session: string }[] = [];
    this.scheduler.queuedIds().forEach((id, index) => {
      const active = this.active.get(id) as ActiveQuery;
      if (wanted(active.session)) out.push({ view: this.activeView(active, index + 1), session: active.session });
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

  /** Commits the open batch and runs the effects that waited for it. */
  flush(): void {
    this.flushScheduled = false;
    try {
      this.store.commitBatch();
    } catch (error) {
      // Nothing of the batch is on disk: none of its effects may happen.
      this.pendingEffects = [];
      this.log.error("database commit failed", { error: String(error) });
      if (this.opts.onCommitError) this.opts.onCommitError(error);
      else throw error;
      return;
    }
    const effects = this.pendingEffects;
    this.pendingEffects = [];
    for (const fn of effects) {
      try {
        fn();
      } catch (error) {
        this.log.error("an effect after commit failed", { error: String(error) });
      }
    }
  }

  queriesByState(): Record<QueryStatus, number> {
    return { ...this.counts };
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
        this.scheduler.onHeartbeat(msg, now);
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
    const active = this.active.get(r.taskId);
    if (!active) {
      const decision = this.store.get(r.taskId) ? "duplicate" : "not_found";
      if (decision === "not_found") this.metrics?.resultRejected("not_found");
      return decision;
    }
    if (this.scheduler.checkHolder(r.taskId, r.workerId) !== "held") {
      this.metrics?.resultRejected("not_held");
      return "permission_denied";
    }
    this.scheduler.complete(r.taskId);
    this.finish(active, {
      status: r.error !== "" ? "failed" : "done",
      answer: r.error !== "" ? null : r.answer,
      error: r.error !== "" ? r.error : null,
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
      const apiKey = this.apiKeys.get(taskId);
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
    const now = this.now();
    // Persist before publishing: a crash in between leaves a lease that
    // expires and re-dispatches, never a task that is out but not recorded.
    this.write(() =>
      this.store.assignMany(
        dispatches.map((d) => ({ id: d.taskId, workerId: d.workerId, assignedMs: now, attempts: d.attempt })),
      ),
    );
    for (const d of dispatches) {
      const active = this.active.get(d.taskId) as ActiveQuery;
      active.status = "assigned";
      active.workerId = d.workerId;
      active.assignedMs = now;
      active.attempts = d.attempt;
      this.counts.queued -= 1;
      this.counts.assigned += 1;
      const payload = encodeTask({
        task_id: d.taskId,
        query: active.query,
        lease_ms: d.leaseMs,
        has_credential: this.apiKeys.has(d.taskId),
        ts: now,
      });
      const topic = this.opts.taskTopic(d.workerId);
      const view = this.activeView(active, 0);
      this.effect(() => {
        this.publisher.publish(topic, payload);
        this.listeners.queryUpdated(view, active.session);
      });
      this.log.debug("task dispatched", { task_id: d.taskId, worker_id: d.workerId, attempt: d.attempt });
    }
    this.listeners.queueChanged();
  }

  private applyRequeues(requeues: Requeue[]): void {
    const now = this.now();
    for (const r of requeues) {
      const active = this.active.get(r.taskId);
      if (!active) continue;
      this.log.warn(r.failed ? "task failed: out of attempts" : "task requeued at head", {
        task_id: r.taskId,
        worker_id: r.workerId,
        reason: r.reason,
        attempts: active.attempts,
      });
      // The story keeps who had it and why it came back (the scheduler knows why, we know when).
      active.history.push({
        worker: r.workerId,
        node: this.scheduler.workerIdentity(r.workerId)?.node ?? "unknown",
        attempt: active.attempts,
        leased_ms: active.assignedMs ?? now,
        ended_ms: now,
        reason: r.reason,
      });
      if (r.failed) {
        this.finish(active, {
          status: "failed",
          answer: null,
          error: `no worker finished this query after ${active.attempts} attempts (last: ${r.reason})`,
          provider: null,
          worker: null,
          receivedMs: null,
          startedMs: null,
          finishedMs: null,
        });
        continue;
      }
      if (r.reason === "rejected") active.attempts = Math.max(0, active.attempts - 1);
      this.write(() => this.store.requeue(r.taskId, r.queueKey as number, active.attempts, active.history));
      active.status = "queued";
      active.workerId = null;
      active.assignedMs = null;
      this.counts.assigned -= 1;
      this.counts.queued += 1;
      const view = this.activeView(active);
      this.effect(() => this.listeners.queryUpdated(view, active.session));
    }
    if (requeues.length > 0) this.listeners.queueChanged();
  }

  private finish(
    active: ActiveQuery,
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
    const completedMs = this.now();
    this.write(() => this.store.finish({ id: active.id, completedMs, ...outcome, history: active.history }));
    this.apiKeys.delete(active.id);
    this.active.delete(active.id);
    this.counts[active.status] -= 1;
    this.counts[outcome.status] += 1;
    this.metrics?.observeLatency(completedMs - active.createdMs);
    const view: QueryView = {
      id: active.id,
      status: outcome.status,
      query: active.query,
      position: 0,
      answer: outcome.answer,
      error: outcome.error,
      provider: outcome.provider,
      worker: outcome.worker,
      timings: {
        created_ms: active.createdMs,
        assigned_ms: active.assignedMs,
        received_ms: outcome.receivedMs,
        started_ms: outcome.startedMs,
        finished_ms: outcome.finishedMs,
        completed_ms: completedMs,
      },
      attempts: active.attempts,
      events: storyOf(active.createdMs, active.history, { atMs: active.assignedMs, holder: outcome.worker ?? this.holderRef(active), attempt: active.attempts }, {
        status: outcome.status,
        atMs: completedMs,
        attempts: active.attempts,
        workerError: outcome.worker !== null,
      }),
    };
    this.effect(() => {
      this.listeners.queryUpdated(view, active.session);
      this.listeners.queryFinished?.(view);
      for (const resolve of [...(this.waiters.get(active.id) ?? [])]) resolve(view);
    });
  }

  /** Holds back `fn` until the open batch is committed (runs it now without one). */
  private effect(fn: () => void): void {
    if (this.groupCommit && this.store.inBatch) this.pendingEffects.push(fn);
    else fn();
  }

  /** A store write; with group commit it joins the turn's batch. */
  private write(fn: () => void): void {
    if (this.groupCommit) {
      this.store.beginBatch();
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.defer(() => this.flush());
      }
    }
    fn();
  }

  private holderRef(a: ActiveQuery): WorkerRef | null {
    return a.workerId ? (this.scheduler.workerIdentity(a.workerId) ?? unknownWorker(a.workerId)) : null;
  }

  private activeView(a: ActiveQuery, position?: number): QueryView {
    const worker = this.holderRef(a);
    return {
      id: a.id,
      status: a.status,
      query: a.query,
      position: a.status === "queued" ? (position ?? this.scheduler.positionOf(a.id)) : 0,
      answer: null,
      error: null,
      provider: null,
      worker,
      timings: {
        created_ms: a.createdMs,
        assigned_ms: a.assignedMs,
        received_ms: null,
        started_ms: null,
        finished_ms: null,
        completed_ms: null,
      },
      attempts: a.attempts,
      events: storyOf(a.createdMs, a.history, a.status === "assigned" ? { atMs: a.assignedMs, holder: worker, attempt: a.attempts } : null, null),
    };
  }

  private notifyWorkersIfChanged(): void {
    if (this.scheduler.workersVersion === this.seenWorkersVersion) return;
    this.seenWorkersVersion = this.scheduler.workersVersion;
    this.listeners.workersChanged();
  }
}

function unknownWorker(id: string): WorkerRef {
  return { id, language: "unknown", node: "unknown" };
}

function rowView(row: QueryRow): QueryView {
  return {
    id: row.id,
    status: row.status,
    query: row.query,
    position: 0,
    answer: row.answer,
    error: row.error,
    provider: row.provider,
    worker: row.worker_id
      ? {
          id: row.worker_id,
          language: row.worker_language ?? "unknown",
          node: row.worker_node ?? "unknown",
        }
      : null,
    timings: {
      created_ms: row.created_ms,
      assigned_ms: row.assigned_ms,
      received_ms: row.received_ms,
      started_ms: row.started_ms,
      finished_ms: row.finished_ms,
      completed_ms: row.completed_ms,
    },
    attempts: row.attempts,
    events: storyOf(
      row.created_ms,
      parseHistory(row.history),
      row.status === "queued"
        ? null
        : {
            atMs: row.assigned_ms,
            holder: row.worker_id ? { id: row.worker_id, language: row.worker_language ?? "unknown", node: row.worker_node ?? "unknown" } : null,
            attempt: row.attempts,
          },
      row.status === "done" || row.status === "failed"
        ? { status: row.status, atMs: row.completed_ms ?? row.created_ms, attempts: row.attempts, workerError: row.worker_id !== null }
        : null,
    ),
  };
}

const END_WORDS: Record<string, { reason: QueryEventReason; detail: string }> = {
  worker_offline: { reason: "worker_lost", detail: "worker lost: it went offline" },
  heartbeat_timeout: { reason: "worker_lost", detail: "worker lost: it stopped sending heartbeats" },
  lease_expired: { reason: "lease_expired", detail: "lease expired: no answer in time" },
  rejected: { reason: "rejected", detail: "rejected: the worker was busy" },
};

/** Plain words for why a dispatch ended without an answer. */
export function requeueWords(reason: RequeueReason | string): { reason: QueryEventReason; detail: string } {
  return END_WORDS[reason] ?? { reason: "worker_lost", detail: `taken back (${reason})` };
}

/**
 * A query's story from what is kept anyway: created, the dispatches that ended
 * without an answer, the current (or last) lease, and the end.
 */
function storyOf(
  createdMs: number,
  history: readonly AttemptRecord[],
  lease: { atMs: number | null; holder: WorkerRef | null; attempt: number } | null,
  end: { status: "done" | "failed"; atMs: number; attempts: number; workerError: boolean } | null,
): QueryEvent[] {
  const events: QueryEvent[] = [{ at_ms: createdMs, kind: "queued" }];
  for (const h of history) {
    events.push({ at_ms: h.leased_ms, kind: "leased", worker: h.worker, node: h.node, attempt: h.attempt });
    events.push({ at_ms: h.ended_ms, kind: "requeued", worker: h.worker, node: h.node, ...requeueWords(h.reason) });
  }
  // A query failed for want of attempts has no current lease: its last one is in the history.
  const exhausted = end?.status === "failed" && !end.workerError;
  const holder = lease?.holder ?? null;
  if (lease && lease.atMs !== null && holder !== null && !exhausted) {
    events.push({ at_ms: lease.atMs, kind: "leased", worker: holder.id, node: holder.node, attempt: lease.attempt });
  }
  if (end?.status === "done") {
    events.push({ at_ms: end.atMs, kind: "answered", worker: holder?.id, node: holder?.node });
  } else if (end && exhausted) {
    events.push({
      at_ms: end.atMs,
      kind: "failed",
      reason: "attempts_exhausted",
      detail: `attempts exhausted: no worker finished it in ${end.attempts} attempts`,
    });
  } else if (end) {
    events.push({ at_ms: end.atMs, kind: "failed", worker: holder?.id, node: holder?.node, reason: "worker_error", detail: "the worker reported an error" });
  }
  return events;
}
