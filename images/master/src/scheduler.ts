// The scheduler: pure logic, no I/O, time passed in by the caller, so every
// delivery rule of docs/protocol.md can be unit-tested without a network.
//
// It owns the FIFO queue of waiting tasks, the worker registry and the leases.
// Callers feed it events (a query, an MQTT message, a result, the clock) and
// act on what it returns (publish dispatches, persist requeues).
//
// It is also the one owner of an unfinished task's dispatch state: whether it
// waits or is leased, to which worker, since when, how many attempts it has
// used (the count changes only in countAttempt) and the dispatches that ended
// without an answer (its story). It decides all of them, so it keeps them; the
// query service keeps only what the scheduler has no use for (the query text,
// the creation time, the API key) and reads the rest through task(). See
// README.md, "Layout".
import type { HeartbeatMsg, RegisterMsg, StatusMsg } from "./protocol";

export interface SchedulerOptions {
  leaseMs: number;
  taskTimeoutMs: number;
  heartbeatTimeoutMs: number;
  maxQueuedPerSession: number;
  /** Dispatches after which a task that keeps losing its worker fails. */
  maxAttempts: number;
  /** How long an offline worker stays in the list for display. */
  offlineRetentionMs: number;
}

export type WorkerStatus = "idle" | "busy" | "offline";

/** How many workers of one node are in each state, by language (for the cluster view). */
export interface NodeCounts {
  node: string;
  idle: number;
  busy: number;
  offline: number;
  /** Online workers by language: idle and busy. */
  languages: Map<string, { idle: number; busy: number }>;
}

export interface WorkerView {
  id: string;
  language: string;
  node: string;
  status: WorkerStatus;
  task_id: string | null;
  last_seen_ms: number;
}

export interface Dispatch {
  taskId: string;
  workerId: string;
  leaseMs: number;
  attempt: number;
  /** When it was leased (the caller persists it as assigned_ms). */
  assignedMs: number;
}

export type RequeueReason = "lease_expired" | "worker_offline" | "heartbeat_timeout" | "rejected" | "lost_on_reconnect";

/**
 * One dispatch that ended without an answer: who had it (on which node), the
 * attempt it counted as, from when to when, and why it ended (a RequeueReason;
 * a string because stored ones are read back from the database).
 */
export interface AttemptRecord {
  worker: string;
  node: string;
  attempt: number;
  leased_ms: number;
  ended_ms: number;
  reason: string;
}

/** An unfinished task's dispatch state, as the scheduler keeps it (a snapshot). */
export interface TaskState {
  id: string;
  session: string;
  /** Dispatches that count (a rejected one does not). */
  attempts: number;
  /** Dispatches that ended without an answer, oldest first. */
  history: readonly AttemptRecord[];
  /**
   * The lease: who holds the task and since when; null while it waits. A task
   * that has just ended (complete(), or a Requeue with failed) keeps its last one.
   */
  holder: { workerId: string; assignedMs: number } | null;
}

/** A task taken back from a worker: queued again at the head, or failed for good. */
export interface Requeue {
  taskId: string;
  workerId: string;
  reason: RequeueReason;
  /** Set when the task is back in the queue; its new (lowest) queue key. */
  queueKey?: number;
  /** True when the task ran out of attempts and must be failed. */
  failed: boolean;
  /** The task after it was taken back (its history ends with this dispatch). */
  task: TaskState;
}

export type EnqueueResult = { ok: true; queueKey: number } | { ok: false; reason: "session_cap" };

/** Who may report on a task: the holder, someone else, or nobody (not active). */
export type HolderCheck = "held" | "not_held" | "not_active";

/** A task as persisted, for rebuilding the scheduler after a restart. */
export interface RestoredTask {
  id: string;
  session: string;
  attempts: number;
  queueKey: number;
  history?: readonly AttemptRecord[];
  /** assignedMs: when it was leased before the restart (default: now). */
  lease?: { workerId: string; assignedMs?: number };
}

interface Task {
  id: string;
  session: string;
  attempts: number;
  queueKey: number;
  /** Replaced, never changed in place: snapshots handed out stay as they were. */
  history: readonly AttemptRecord[];
}

interface Lease {
  taskId: string;
  workerId: string;
  /** When the task was leased to this worker (kept across a restart). */
  assignedMs: number;
  /** Start of the task timeout: the dispatch, or the restart that restored the lease. */
  dispatchedMs: number;
  /** When the lease was granted or restored: the holder must be heard of since. */
  grantedMs: number;
  deadlineMs: number;
  /**
   * The holder (re-)registered after this lease was granted: a task published
   * while it was reconnecting is lost with its clean session, so the next
   * status or heartbeat that says what it holds must name this task.
   */
  unconfirmed?: boolean;
}

interface Worker {
  id: string;
  language: string;
  node: string;
  /** What the worker last said about itself. */
  reported: "idle" | "busy";
  online: boolean;
  lastSeenMs: number;
}

export class Scheduler {
  private readonly tasks = new Map<string, Task>();
  /** Task ids waiting, head first, sorted by queue key. */
  private readonly queue: string[] = [];
  private readonly queuedBySession = new Map<string, number>();
  private readonly leases = new Map<string, Lease>();
  private readonly leaseByWorker = new Map<string, string>();
  private readonly workers = new Map<string, Worker>();
  /** Workers that can take a task now, longest-idle first. */
  private readonly idle = new Set<string>();
  private minKey = 0;
  private maxKey = 0;
  /** Worker ids by node, so one node's workers are found without a scan of all. */
  private readonly byNode = new Map<string, Set<string>>();
  /** Nodes whose workers changed (joined, left, changed status) since takeChangedNodes(). */
  private readonly changedNodes = new Set<string>();
  /** Bumped on every change of the worker list, so callers know when to broadcast. */
  workersVersion = 0;

  constructor(private readonly opts: SchedulerOptions) {}

  // ---- queries -------------------------------------------------------------

  /** Appends a new task at the tail, unless its session already has too many waiting. */
  enqueue(id: string, session: string): EnqueueResult {
    if ((this.queuedBySession.get(session) ?? 0) >= this.opts.maxQueuedPerSession) {
      return { ok: false, reason: "session_cap" };
    }
    const task: Task = { id, session, attempts: 0, queueKey: ++this.maxKey, history: [] };
    this.tasks.set(id, task);
    this.pushTail(task);
    return { ok: true, queueKey: task.queueKey };
  }

  /** Drops a task that is still queued (its submission could not be stored). */
  forget(id: string): void {
    const task = this.tasks.get(id);
    const index = this.queue.indexOf(id);
    if (!task || index < 0) return;
    this.queue.splice(index, 1);
    this.adjustSessionCount(task.session, -1);
    this.tasks.delete(id);
  }

  /** Rebuilds queue and leases from the store; leases get a fresh deadline. */
  restore(tasks: RestoredTask[], now: number): void {
    const sorted = [...tasks].sort((a, b) => a.queueKey - b.queueKey);
    for (const t of sorted) {
      const task: Task = { id: t.id, session: t.session, attempts: t.attempts, queueKey: t.queueKey, history: t.history ?? [] };
      this.tasks.set(t.id, task);
      this.minKey = Math.min(this.minKey, t.queueKey);
      this.maxKey = Math.max(this.maxKey, t.queueKey);
      if (t.lease) {
        // The task timeout restarts too: the master's downtime is not the worker's fault.
        this.grantLease(t.id, t.lease.workerId, t.lease.assignedMs ?? now, now);
      } else {
        this.pushTail(task);
      }
    }
  }

  /** An unfinished task's dispatch state, or undefined once it ended (or was never here). */
  task(id: string): TaskState | undefined {
    const task = this.tasks.get(id);
    return task ? this.stateOf(task, this.leases.get(id)) : undefined;
  }

  /** The session of an unfinished task (cheaper than task() when that is all one needs). */
  sessionOf(id: string): string | undefined {
    return this.tasks.get(id)?.session;
  }

  /** 1-based place in the queue, 0 when not waiting. */
  positionOf(taskId: string): number {
    const task = this.tasks.get(taskId);
    if (!task || this.leases.has(taskId)) return 0;
    // The queue is sorted by queue key (new tasks get the highest, requeued
    // ones the lowest): a binary search instead of a scan of the whole queue.
    let lo = 0;
    let hi = this.queue.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const key = (this.tasks.get(this.queue[mid] as string) as Task).queueKey;
      if (key === task.queueKey) return this.queue[mid] === taskId ? mid + 1 : this.queue.indexOf(taskId) + 1;
      if (key < task.queueKey) lo = mid + 1;
      else hi = mid - 1;
    }
    return this.queue.indexOf(taskId) + 1;
  }

  /** Waiting task ids, head first. */
  queuedIds(): readonly string[] {
    return this.queue;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get leaseCount(): number {
    return this.leases.size;
  }

  /** Leases the head of the queue to idle workers while both exist. */
  dispatch(now: number): Dispatch[] {
    const out: Dispatch[] = [];
    while (this.queue.length > 0 && this.idle.size > 0) {
      const workerId = this.idle.values().next().value as string;
      const taskId = this.queue.shift() as string;
      const task = this.tasks.get(taskId) as Task;
      this.adjustSessionCount(task.session, -1);
      this.countAttempt(task, +1);
      this.grantLease(taskId, workerId, now, now);
      const worker = this.workers.get(workerId) as Worker;
      // Until it says otherwise, a worker that was just given a task is busy.
      worker.reported = "busy";
      this.refreshIdle(worker);
      this.changed(worker);
      out.push({ taskId, workerId, leaseMs: this.opts.leaseMs, attempt: task.attempts, assignedMs: now });
    }
    return out;
  }

  /** Checks who holds a task (for results and credential requests). */
  checkHolder(taskId: string, workerId: string): HolderCheck {
    const lease = this.leases.get(taskId);
    if (lease) return lease.workerId === workerId ? "held" : "not_held";
    return this.tasks.has(taskId) ? "not_held" : "not_active";
  }

  /**
   * Ends a task on its holder's accepted result, which frees the holder at once
   * (docs/protocol.md rule 2: it takes a task that arrives while it is still
   * reading our ack). The caller checked the holder first. Returns the task as
   * it ended (with the lease it ended under), undefined for an unknown one.
   */
  complete(taskId: string): TaskState | undefined {
    const task = this.tasks.get(taskId);
    const lease = this.leases.get(taskId);
    const ended = task ? this.stateOf(task, lease) : undefined;
    if (lease) {
      const worker = this.workers.get(lease.workerId);
      if (worker) worker.reported = "idle";
      this.releaseLease(lease);
      this.changed(worker);
    }
    this.tasks.delete(taskId);
    return ended;
  }

  // ---- workers -------------------------------------------------------------

  onRegister(msg: RegisterMsg, now: number): void {
    const known = this.workers.get(msg.worker_id);
    const worker = this.touchWorker(msg.worker_id, msg.language, msg.node, now);
    // A fresh (re)connect: ready for work unless it tells us otherwise next.
    if (!known || !known.online) worker.reported = "idle";
    worker.online = true;
    const lease = this.leaseOf(worker.id);
    if (lease) lease.unconfirmed = true;
    this.refreshIdle(worker);
  }

  /**
   * Returns the task a worker lost while reconnecting (docs/protocol.md rule 3):
   * it holds a lease granted before its last register, and its first word on
   * what it holds since then (a heartbeat's held_task_ids, or a status idle:
   * nothing in hand means nothing waiting either) does not name the task.
   */
  private checkHeld(worker: Worker, held: readonly string[] | undefined, now: number): Requeue[] {
    const lease = this.leaseOf(worker.id);
    if (!lease?.unconfirmed || held === undefined) return [];
    lease.unconfirmed = false;
    return held.includes(lease.taskId) ? [] : [this.takeBack(lease, "lost_on_reconnect", now)];
  }

  onHeartbeat(msg: HeartbeatMsg, now: number): Requeue[] {
    const worker = this.touchWorker(msg.worker_id, msg.language, msg.node, now);
    worker.online = true;
    const requeued = this.checkHeld(worker, msg.held_task_ids, now);
    this.setReported(worker, msg.status, msg.task_id);
    // Every task the worker holds (the one in hand and the one waiting to run
    // next, rule 2); a worker that predates held_task_ids names only task_id.
    for (const taskId of msg.held_task_ids ?? (msg.task_id ? [msg.task_id] : [])) {
      const lease = this.leases.get(taskId);
      if (lease && lease.workerId === worker.id) this.renewLease(lease, now);
    }
    this.refreshIdle(worker);
    return requeued;
  }

  onStatus(msg: StatusMsg, now: number): Requeue[] {
    const requeued: Requeue[] = [];
    const rejected = msg.rejected_task_id ? this.leases.get(msg.rejected_task_id) : undefined;
    if (rejected && rejected.workerId === msg.worker_id) {
      requeued.push(this.takeBack(rejected, "rejected", now));
    }
    // Status carries no identity: workers we never heard of wait for their
    // register or heartbeat (a restarted master hears one within seconds).
    const worker = this.workers.get(msg.worker_id);
    if (!worker) {
      const lease = this.leaseOf(msg.worker_id);
      if (msg.status === "offline" && lease) requeued.push(this.takeBack(lease, "worker_offline", now));
      return requeued;
    }
    worker.lastSeenMs = now;
    if (msg.status === "offline") {
      requeued.push(...this.markOffline(worker, "worker_offline", now));
    } else {
      worker.online = true;
      requeued.push(...this.checkHeld(worker, msg.status === "idle" ? [] : undefined, now));
      this.setReported(worker, msg.status, msg.task_id);
      this.refreshIdle(worker);
    }
    this.changed(worker);
    return requeued;
  }

  /** Expires leases and silent workers; forgets long-offline workers. */
  tick(now: number): Requeue[] {
    const requeued: Requeue[] = [];
    // (Deleting the entry being visited is safe while iterating a Map.)
    for (const lease of this.leases.values()) {
      const holder = this.workers.get(lease.workerId);
      const holderGone =
        (!holder || !holder.online) && now - lease.grantedMs > this.opts.heartbeatTimeoutMs;
      if (now >= lease.deadlineMs) requeued.push(this.takeBack(lease, "lease_expired", now));
      else if (holderGone) requeued.push(this.takeBack(lease, "worker_offline", now));
    }
    for (const worker of this.workers.values()) {
      const silentFor = now - worker.lastSeenMs;
      if (worker.online && silentFor > this.opts.heartbeatTimeoutMs) {
        requeued.push(...this.markOffline(worker, "heartbeat_timeout", now));
      } else if (!worker.online && silentFor > this.opts.offlineRetentionMs) {
        this.workers.delete(worker.id);
        this.unindex(worker);
        this.changed(worker);
      }
    }
    return requeued;
  }

  /**
   * After the broker connection comes back: nothing could be heard meanwhile,
   * so silence is not the workers' fault. Gives them and their leases a fresh start.
   */
  resumeAfterOutage(now: number): void {
    for (const worker of this.workers.values()) if (worker.online) worker.lastSeenMs = now;
    for (const lease of this.leases.values()) {
      lease.grantedMs = now;
      lease.deadlineMs = Math.max(lease.deadlineMs, now + this.opts.leaseMs);
    }
  }

  /** Language and node of a worker we know, for showing who holds a task. */
  workerIdentity(id: string): { id: string; language: string; node: string } | undefined {
    const w = this.workers.get(id);
    return w ? { id: w.id, language: w.language, node: w.node } : undefined;
  }

  listWorkers(): WorkerView[] {
    return [...this.workers.values()].map((w) => this.viewOf(w));
  }

  /** The workers of one node, by id (empty for a node nobody is on). */
  nodeWorkers(node: string): WorkerView[] {
    const ids = this.byNode.get(node);
    if (!ids) return [];
    return [...ids].sort().map((id) => this.viewOf(this.workers.get(id) as Worker));
  }

  /** Counts of one node's workers, or undefined once no worker is known on it. */
  nodeCounts(node: string): NodeCounts | undefined {
    const ids = this.byNode.get(node);
    if (!ids) return undefined;
    const counts: NodeCounts = { node, idle: 0, busy: 0, offline: 0, languages: new Map() };
    for (const id of ids) {
      const w = this.workers.get(id) as Worker;
      const status = this.statusOf(w);
      counts[status] += 1;
      if (status === "offline") continue;
      let byLanguage = counts.languages.get(w.language);
      if (!byLanguage) {
        byLanguage = { idle: 0, busy: 0 };
        counts.languages.set(w.language, byLanguage);
      }
      byLanguage[status] += 1;
    }
    return counts;
  }

  /** Every node a known worker is on. */
  nodes(): IterableIterator<string> {
    return this.byNode.keys();
  }

  /** The nodes whose workers changed since the last call (and forgets them). */
  takeChangedNodes(): string[] {
    const nodes = [...this.changedNodes];
    this.changedNodes.clear();
    return nodes;
  }

  // ---- internals -----------------------------------------------------------

  /**
   * What a worker says about itself counts only while it holds no lease (during
   * a lease it is busy for the master, rule 2), and "busy" with a task that has
   * ended is stale: it was sent before the result was accepted, which freed it.
   */
  private setReported(worker: Worker, reported: "idle" | "busy", taskId: string | null): void {
    if (this.leaseByWorker.has(worker.id)) return;
    if (reported === "busy" && taskId !== null && !this.tasks.has(taskId)) return;
    worker.reported = reported;
  }

  private viewOf(w: Worker): WorkerView {
    return {
      id: w.id,
      language: w.language,
      node: w.node,
      status: this.statusOf(w),
      task_id: this.leaseByWorker.get(w.id) ?? null,
      last_seen_ms: w.lastSeenMs,
    };
  }

  /** Records that a worker changed: the list's version and its node's flag. O(1). */
  private changed(worker: Worker | undefined): void {
    this.workersVersion++;
    if (worker) this.changedNodes.add(worker.node);
  }

  private index(worker: Worker): void {
    let ids = this.byNode.get(worker.node);
    if (!ids) {
      ids = new Set();
      this.byNode.set(worker.node, ids);
    }
    ids.add(worker.id);
  }

  private unindex(worker: Worker): void {
    const ids = this.byNode.get(worker.node);
    if (!ids) return;
    ids.delete(worker.id);
    if (ids.size === 0) this.byNode.delete(worker.node);
  }

  private statusOf(w: Worker): WorkerStatus {
    if (!w.online) return "offline";
    return this.leaseByWorker.has(w.id) || w.reported === "busy" ? "busy" : "idle";
  }

  private touchWorker(id: string, language: string, node: string, now: number): Worker {
    let worker = this.workers.get(id);
    if (!worker) {
      worker = { id, language, node, reported: "busy", online: true, lastSeenMs: now };
      this.workers.set(id, worker);
      this.index(worker);
      this.changed(worker);
    }
    if (worker.node !== node) {
      // Moved to another node (a new container with the same id): both nodes change.
      this.changed(worker);
      this.unindex(worker);
      worker.node = node;
      this.index(worker);
      this.changed(worker);
    }
    if (worker.language !== language || !worker.online) this.changed(worker);
    worker.language = language;
    worker.lastSeenMs = now;
    return worker;
  }

  private markOffline(worker: Worker, reason: RequeueReason, now: number): Requeue[] {
    worker.online = false;
    this.idle.delete(worker.id);
    this.changed(worker);
    const lease = this.leaseOf(worker.id);
    return lease ? [this.takeBack(lease, reason, now)] : [];
  }

  private leaseOf(workerId: string): Lease | undefined {
    const taskId = this.leaseByWorker.get(workerId);
    return taskId === undefined ? undefined : this.leases.get(taskId);
  }

  /** Keeps the idle set equal to: online, says idle, holds no lease. */
  private refreshIdle(worker: Worker): void {
    const free = worker.online && worker.reported === "idle" && !this.leaseByWorker.has(worker.id);
    if (free === this.idle.has(worker.id)) return;
    if (free) this.idle.add(worker.id);
    else this.idle.delete(worker.id);
    this.changed(worker);
  }

  private grantLease(taskId: string, workerId: string, assignedMs: number, now: number): void {
    const lease: Lease = {
      taskId,
      workerId,
      assignedMs,
      dispatchedMs: now,
      grantedMs: now,
      deadlineMs: now + this.opts.leaseMs,
    };
    this.leases.set(taskId, lease);
    this.leaseByWorker.set(workerId, taskId);
  }

  /** A heartbeat naming the task extends it, but never past the task timeout. */
  private renewLease(lease: Lease, now: number): void {
    const cap = lease.dispatchedMs + this.opts.taskTimeoutMs;
    lease.deadlineMs = Math.max(lease.deadlineMs, Math.min(now + this.opts.leaseMs, cap));
  }

  private releaseLease(lease: Lease): void {
    this.leases.delete(lease.taskId);
    if (this.leaseByWorker.get(lease.workerId) === lease.taskId) {
      this.leaseByWorker.delete(lease.workerId);
    }
    const worker = this.workers.get(lease.workerId);
    if (worker) this.refreshIdle(worker);
  }

  /**
   * Takes a leased task back to the head of the queue (or fails it), adding
   * the dispatch that ended to its history.
   */
  private takeBack(lease: Lease, reason: RequeueReason, now: number): Requeue {
    this.releaseLease(lease);
    const worker = this.workers.get(lease.workerId);
    this.changed(worker);
    const task = this.tasks.get(lease.taskId) as Task;
    const ended: AttemptRecord = {
      worker: lease.workerId,
      node: worker?.node ?? "unknown",
      attempt: task.attempts,
      leased_ms: lease.assignedMs,
      ended_ms: now,
      reason,
    };
    task.history = [...task.history, ended];
    // A worker that was busy never worked on it: that dispatch does not count.
    if (reason === "rejected") this.countAttempt(task, -1);
    else if (task.attempts >= this.opts.maxAttempts) {
      this.tasks.delete(task.id);
      return { taskId: task.id, workerId: lease.workerId, reason, failed: true, task: this.stateOf(task, lease) };
    }
    task.queueKey = --this.minKey;
    this.queue.unshift(task.id);
    this.adjustSessionCount(task.session, +1);
    return { taskId: task.id, workerId: lease.workerId, reason, queueKey: task.queueKey, failed: false, task: this.stateOf(task, undefined) };
  }

  /** The only place a task's attempt count changes: +1 per dispatch, -1 for a dispatch a busy worker rejected. */
  private countAttempt(task: Task, delta: 1 | -1): void {
    task.attempts = Math.max(0, task.attempts + delta);
  }

  private stateOf(task: Task, lease: Lease | undefined): TaskState {
    return {
      id: task.id,
      session: task.session,
      attempts: task.attempts,
      history: task.history,
      holder: lease ? { workerId: lease.workerId, assignedMs: lease.assignedMs } : null,
    };
  }

  private pushTail(task: Task): void {
    this.queue.push(task.id);
    this.adjustSessionCount(task.session, +1);
  }

  private adjustSessionCount(session: string, delta: number): void {
    const next = (this.queuedBySession.get(session) ?? 0) + delta;
    if (next <= 0) this.queuedBySession.delete(session);
    else this.queuedBySession.set(session, next);
  }
}
