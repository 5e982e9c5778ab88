// Leadership among masters (STORE=etcd): one master dispatches at a time.
//
// The protocol, on etcd3's primitives:
// - campaign: grant a lease (LEADER_TTL_S), then one transaction
//   `If(createRevision(key) == 0) Then put(key, <who>, lease) Else get(key)`.
//   Whoever's put lands leads; the others watch the key from the revision of
//   their own attempt and try again when it is deleted (and, should a watch
//   stall, every TTL anyway).
// - while leading: a keepalive every TTL/3, each with a deadline; the lease is
//   ours until the send time of the last answered keepalive + the TTL it
//   returned (LeaseClock). That local deadline comes before etcd's own (etcd
//   counts from when it received the keepalive), so a master cut off from etcd
//   knows it lost the lease before another master can win it. Past that
//   deadline, or when the key is deleted or taken, leadership is lost: the
//   listeners run once (the master stops dispatching and exits).
// - the fence is {key, leaseId}: every write of the store is conditional on
//   the key still carrying our lease, so even a master that has not yet noticed
//   its loss cannot change the queue.
import type { Etcd3, IKeyValue, Watcher } from "etcd3";
import type { Fence } from "./etcdStore";
import { errorMessage, type Logger } from "./log";

/** How long before the computed end of the lease it is given up (timers fire late on a loaded machine). */
export const LEASE_SAFETY_MS = 250;

/**
 * Pure timing of a held lease: when it is still ours, when to renew it, how
 * long a keepalive may take. Times are milliseconds on one monotonic clock.
 */
export class LeaseClock {
  private validUntilMs: number;

  /** `grantSentAtMs`: when the grant request was sent; `ttlS`: the TTL etcd granted. */
  constructor(
    readonly ttlMs: number,
    grantSentAtMs: number,
    ttlS: number,
    private readonly safetyMs = LEASE_SAFETY_MS,
  ) {
    this.validUntilMs = grantSentAtMs + ttlS * 1000;
  }

  /** Renew three times per TTL, as etcd's Go client does: two keepalives may fail before the lease is at risk. */
  get keepaliveIntervalMs(): number {
    return Math.max(50, Math.floor(this.ttlMs / 3));
  }

  /** A keepalive sent at `sentAtMs` was answered with `ttlS` (0 or less: etcd says the lease is gone). */
  renewed(sentAtMs: number, ttlS: number): void {
    if (ttlS <= 0) {
      this.validUntilMs = Number.NEGATIVE_INFINITY;
      return;
    }
    this.validUntilMs = Math.max(this.validUntilMs, sentAtMs + ttlS * 1000);
  }

  /** From this moment on the lease may have expired in etcd: leadership must be given up. */
  deadlineMs(): number {
    return this.validUntilMs - this.safetyMs;
  }

  expired(nowMs: number): boolean {
    return nowMs >= this.deadlineMs();
  }

  /** How long a keepalive sent now may wait for its answer: one interval, and never past the deadline. */
  callTimeoutMs(nowMs: number): number {
    return Math.max(1, Math.min(this.keepaliveIntervalMs, this.deadlineMs() - nowMs));
  }
}

export type LeadershipState = "standby" | "leading" | "lost" | "closed";

/** What one campaign attempt saw: we lead, or who does and at which revision we looked. */
export type AttemptResult = { won: true } | { won: false; holder: string | undefined; revision: string };

/** Reads the outcome of the campaign transaction. Pure. */
export function readAttempt(succeeded: boolean, headerRevision: string, holder: IKeyValue | undefined): AttemptResult {
  if (succeeded) return { won: true };
  return { won: false, holder: holder?.value.toString("utf8"), revision: headerRevision };
}

/** Whether a watch event on the leader key ends our leadership. Pure. */
export function keyEventEndsLeadership(event: "put" | "delete", kv: IKeyValue, leaseId: string): boolean {
  return event === "delete" || kv.lease !== leaseId;
}

export interface LeadershipOptions {
  client: Etcd3;
  /** The leader key, e.g. `${ETCD_PREFIX}/leader`. */
  key: string;
  /** Who this master is (its id and address); the value of the key while it leads, shown by standbys. */
  value: string;
  ttlS: number;
  log: Logger;
  now?: () => number;
}

export class Leadership {
  private stateValue: LeadershipState = "standby";
  private leaseIdValue: string | undefined;
  private holder: string | undefined;
  private clock: LeaseClock | undefined;
  private readonly lostListeners: ((reason: string) => void)[] = [];
  private watcher: Watcher | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private transitionCount = 0;
  private readonly now: () => number;

  constructor(private readonly options: LeadershipOptions) {
    if (!Number.isInteger(options.ttlS) || options.ttlS < 1) throw new RangeError(`ttlS must be a whole number of seconds ≥ 1, got ${options.ttlS}`);
    this.now = options.now ?? (() => performance.now());
  }

  get state(): LeadershipState {
    return this.stateValue;
  }

  get leading(): boolean {
    return this.stateValue === "leading";
  }

  /** The fence while leading (key + our lease), undefined otherwise. */
  fence(): Fence | undefined {
    return this.leading && this.leaseIdValue !== undefined ? { key: this.options.key, leaseId: this.leaseIdValue } : undefined;
  }

  /** The value of the leader key as last seen: who leads (ourselves while leading). */
  leader(): string | undefined {
    return this.leading ? this.options.value : this.holder;
  }

  /** Times this master became leader or lost leadership. */
  get transitions(): number {
    return this.transitionCount;
  }

  /** Runs `listener` once when leadership, once won, is lost (with the reason). */
  onLost(listener: (reason: string) => void): void {
    this.lostListeners.push(listener);
  }

  /** Resolves with the fence once this master leads; rejects if close() is called first. */
  async campaign(): Promise<Fence> {
    const { client, key, value, ttlS, log } = this.options;
    const callMs = Math.max(500, Math.floor((ttlS * 1000) / 3));
    while (this.stateValue === "standby") {
      let leaseId: string | undefined;
      try {
        const sentAt = this.now();
        const grant = await client.leaseClient.leaseGrant({ TTL: ttlS }, { deadline: Date.now() + callMs });
        leaseId = grant.ID;
        const txn = await client
          .if(key, "Create", "==", 0)
          .then(client.put(key).value(value).lease(leaseId))
          .else(client.get(key))
          .options({ deadline: Date.now() + callMs })
          .commit();
        const attempt = readAttempt(txn.succeeded, txn.header.revision, txn.responses[0]?.response_range?.kvs[0]);
        if (this.stateValue !== "standby") {
          void this.revoke(leaseId);
          break;
        }
        if (attempt.won) {
          this.win(leaseId, new LeaseClock(ttlS * 1000, sentAt, Number(grant.TTL)));
          return { key, leaseId };
        }
        void this.revoke(leaseId);
        if (attempt.holder !== this.holder) log.info("standing by; another master leads", { leader: attempt.holder ?? null });
        this.holder = attempt.holder;
        await this.waitForVacancy(attempt.revision, ttlS * 1000);
      } catch (err) {
        if (leaseId !== undefined) void this.revoke(leaseId);
        if (this.stateValue !== "standby") break;
        log.warn("leader campaign: etcd did not answer; trying again", { error: errorMessage(err) });
        await this.sleep(callMs);
      }
    }
    throw new Error(`campaign ended: leadership is ${this.stateValue}`);
  }

  /** Gives up leadership at once (the lease is revoked, so the key goes and a standby takes over without waiting for the TTL). */
  async resign(): Promise<void> {
    const leaseId = this.leaseIdValue;
    const wasLeading = this.leading;
    this.stop("closed");
    if (wasLeading && leaseId !== undefined) {
      await this.revoke(leaseId);
      this.options.log.info("resigned leadership", { lease: leaseId });
    }
  }

  /** Stops campaigning or leading without revoking (the lease then expires by itself). */
  close(): void {
    this.stop("closed");
  }

  // ---- leading ------------------------------------------------------------------

  private win(leaseId: string, clock: LeaseClock): void {
    this.stateValue = "leading";
    this.transitionCount += 1;
    this.leaseIdValue = leaseId;
    this.clock = clock;
    this.holder = this.options.value;
    this.options.log.info("leading", { lease: leaseId, ttl_s: this.options.ttlS });
    this.armWatchdog();
    this.scheduleKeepalive(clock.keepaliveIntervalMs);
    void this.watchOwnKey(leaseId);
  }

  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    const clock = this.clock;
    if (clock === undefined || this.stateValue !== "leading") return;
    const wait = clock.deadlineMs() - this.now();
    if (wait <= 0) {
      this.lose(`no keepalive answered within the lease (${this.options.ttlS} s)`);
      return;
    }
    this.watchdog = setTimeout(() => this.armWatchdog(), wait);
  }

  private scheduleKeepalive(delayMs: number): void {
    clearTimeout(this.keepaliveTimer);
    if (this.stateValue !== "leading") return;
    this.keepaliveTimer = setTimeout(() => void this.keepalive(), delayMs);
  }

  private async keepalive(): Promise<void> {
    const clock = this.clock;
    const leaseId = this.leaseIdValue;
    if (clock === undefined || leaseId === undefined || this.stateValue !== "leading") return;
    const sentAt = this.now();
    try {
      const ttlS = await this.keepaliveOnce(leaseId, clock.callTimeoutMs(sentAt));
      if (this.stateValue !== "leading") return;
      clock.renewed(sentAt, ttlS);
      if (ttlS <= 0) {
        this.lose("etcd says the lease has expired");
        return;
      }
      this.armWatchdog();
      this.scheduleKeepalive(clock.keepaliveIntervalMs);
    } catch (err) {
      if (this.stateValue !== "leading") return;
      this.options.log.warn("leader keepalive failed; retrying", {
        error: errorMessage(err),
        lease_left_ms: Math.round(clock.deadlineMs() - this.now()),
      });
      this.scheduleKeepalive(100);
    }
  }

  /** One keepalive on its own stream, answered within `timeoutMs` or rejected. Resolves with the TTL etcd returns. */
  private async keepaliveOnce(leaseId: string, timeoutMs: number): Promise<number> {
    const stream = await this.options.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs });
    return new Promise<number>((resolve, reject) => {
      stream.on("data", (res: { TTL: string }) => {
        stream.end();
        resolve(Number(res.TTL));
      });
      stream.on("error", (err: Error) => reject(err));
      stream.write({ ID: leaseId });
    });
  }

  private async watchOwnKey(leaseId: string): Promise<void> {
    try {
      const watcher = await this.options.client.watch().key(this.options.key).create();
      if (this.stateValue !== "leading") {
        void watcher.cancel();
        return;
      }
      this.watcher = watcher;
      watcher.on("put", (kv) => {
        if (keyEventEndsLeadership("put", kv, leaseId)) this.lose(`the leader key was taken by ${kv.value.toString("utf8")}`);
      });
      watcher.on("delete", (kv) => {
        if (keyEventEndsLeadership("delete", kv, leaseId)) this.lose("the leader key was deleted (lease expired or revoked)");
      });
      watcher.on("error", () => undefined); // the keepalive deadline decides; a broken watch alone does not
    } catch (err) {
      this.options.log.warn("cannot watch the leader key; the lease deadline alone guards leadership", { error: errorMessage(err) });
    }
  }

  private lose(reason: string): void {
    if (this.stateValue !== "leading") return;
    this.transitionCount += 1;
    this.stop("lost");
    for (const listener of this.lostListeners) listener(reason);
  }

  // ---- standing by ----------------------------------------------------------------

  /** Resolves when the key is deleted after `revision`, after `maxWaitMs`, or at close(). */
  private async waitForVacancy(revision: string, maxWaitMs: number): Promise<void> {
    let watcher: Watcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(resolve, maxWaitMs);
      void this.options.client
        .watch()
        .key(this.options.key)
        .startRevision(String(BigInt(revision) + 1n))
        .create()
        .then((w) => {
          if (done) {
            void w.cancel().catch(() => undefined);
            return;
          }
          watcher = w;
          w.on("delete", () => resolve());
          w.on("put", (kv) => {
            this.holder = kv.value.toString("utf8");
          });
          w.on("error", () => resolve());
        })
        .catch(() => undefined);
    });
    done = true;
    clearTimeout(timer);
    this.wake = undefined;
    if (watcher !== undefined) await watcher.cancel().catch(() => undefined);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      setTimeout(resolve, ms);
    });
  }

  private stop(state: "lost" | "closed"): void {
    if (this.stateValue === "lost" || this.stateValue === "closed") return;
    this.stateValue = state;
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.watchdog);
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher !== undefined) void watcher.cancel().catch(() => undefined);
    this.wake?.();
  }

  private async revoke(leaseId: string): Promise<void> {
    try {
      await this.options.client.leaseClient.leaseRevoke({ ID: leaseId }, { deadline: Date.now() + 2_000 });
    } catch {
      // Unrevoked, it expires within its TTL.
    }
  }
}
