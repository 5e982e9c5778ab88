// Fixed-window rate limit per client (IP): at most `perMinute` hits per minute.
// Pure: the caller passes the time. 0 disables it.

export class RateLimiter {
  private readonly windows = new Map<string, { startMs: number; count: number }>();

  constructor(private readonly perMinute: number) {}

  /** Counts a hit; false when the client is over its limit for this minute. */
  allow(client: string, now: number): boolean {
    if (this.perMinute === 0) return true;
    const window = this.windows.get(client);
    if (!window || now - window.startMs >= 60_000) {
      this.windows.set(client, { startMs: now, count: 1 });
      return true;
    }
    if (window.count >= this.perMinute) return false;
    window.count += 1;
    return true;
  }

  /** Drops finished windows so the map does not grow with every client ever seen. */
  prune(now: number): void {
    for (const [client, window] of this.windows) {
      if (now - window.startMs >= 60_000) this.windows.delete(client);
    }
  }
}
