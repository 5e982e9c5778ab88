// Back-off for failed sign-ins (wrong token), per client address. Pure: the
// caller passes the time.
//
// After MAX_FAILURES failures within WINDOW_MS from one address, that address is
// blocked (every attempt, right or wrong, is refused) for 1 s; from then on each
// further failure blocks it again for twice as long, up to 5 min. A success
// forgets the address; so do WINDOW_MS without a failure.

const WINDOW_MS = 10 * 60_000;
const MAX_FAILURES = 5;
const FIRST_BLOCK_MS = 1_000;
const MAX_BLOCK_MS = 5 * 60_000;
/** Addresses remembered at most; past it the least recently failing ones are dropped. */
const MAX_ENTRIES = 10_000;

interface Entry {
  /** Failure times within the window, oldest first (at most MAX_FAILURES kept). */
  failures: number[];
  blocks: number;
  blockedUntilMs: number;
}

export type BackoffCheck = { ok: true } | { ok: false; retryAfterS: number };

export class SignInBackoff {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = MAX_ENTRIES) {}

  /** Whether `address` may try now; if not, how many seconds until it may. */
  check(address: string, now: number): BackoffCheck {
    const entry = this.entries.get(address);
    if (!entry || entry.blockedUntilMs <= now) return { ok: true };
    return { ok: false, retryAfterS: Math.ceil((entry.blockedUntilMs - now) / 1000) };
  }

  failure(address: string, now: number): void {
    const entry = this.entries.get(address) ?? { failures: [], blocks: 0, blockedUntilMs: 0 };
    entry.failures = entry.failures.filter((t) => now - t < WINDOW_MS);
    if (entry.failures.length === 0 && entry.blockedUntilMs <= now) entry.blocks = 0;
    entry.failures.push(now);
    if (entry.failures.length > MAX_FAILURES) entry.failures.shift();
    if (entry.failures.length >= MAX_FAILURES || entry.blocks > 0) {
      entry.blockedUntilMs = now + Math.min(FIRST_BLOCK_MS * 2 ** entry.blocks, MAX_BLOCK_MS);
      entry.blocks += 1;
    }
    // Re-inserted, so the map's order is the order of the latest failure.
    this.entries.delete(address);
    this.entries.set(address, entry);
    if (this.entries.size > this.maxEntries) this.prune(now);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  success(address: string): void {
    this.entries.delete(address);
  }

  /** Forgets addresses with no failure in the window and no block running. */
  prune(now: number): void {
    for (const [address, entry] of this.entries) {
      const last = entry.failures[entry.failures.length - 1] ?? 0;
      if (now - last >= WINDOW_MS && entry.blockedUntilMs <= now) this.entries.delete(address);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
