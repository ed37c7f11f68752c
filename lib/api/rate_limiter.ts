/**
 * "At most N requests start in any one-second window", enforced exactly with a sliding log of
 * the last N start times (a fixed-window counter would let 2N through across a boundary).
 * A server-requested pause (429 Retry-After) holds back every caller, not only the one that
 * was refused.
 */
import type { Clock } from "../util/clock.ts";

export class RateLimiter {
  #starts: number[] = [];
  #next = 0;
  #pausedUntil = 0;
  #minGapMs = 0;
  #lastStart = -Infinity;
  #queue: Promise<void> = Promise.resolve();

  /** `perSecond` 0 means no limit (server pauses still apply). */
  constructor(readonly perSecond: number, readonly clock: Clock) {
    if (!(perSecond >= 0) || !Number.isFinite(perSecond)) {
      throw new RangeError(`Rate limit must be a finite number >= 0, got ${perSecond}`);
    }
  }

  /** Waits until a request may start, then records its start. Callers are served in order. */
  acquire(signal?: AbortSignal): Promise<void> {
    const turn = this.#queue.then(() => this.#waitTurn(signal));
    this.#queue = turn.catch(() => {});
    return turn;
  }

  /** Holds back all requests for `ms` from now (extends, never shortens, a pause). */
  pauseFor(ms: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, this.clock.now() + ms);
  }

  /**
   * Spaces starts at least `ms` apart until called again with 0: used while the server says
   * its own budget (X-RateLimit-Remaining) is nearly spent, to avoid 429s instead of taking them.
   */
  setMinGap(ms: number): void {
    this.#minGapMs = Math.max(0, ms);
  }

  async #waitTurn(signal?: AbortSignal): Promise<void> {
    // Whole requests only: N >= 1 allows floor(N) per second; N < 1 allows one per 1/N seconds.
    const capacity = Math.max(1, Math.floor(this.perSecond));
    const windowMs = this.perSecond >= 1 ? 1000 : 1000 / this.perSecond;
    while (true) {
      signal?.throwIfAborted();
      const now = this.clock.now();
      let earliest = Math.max(this.#pausedUntil, this.#lastStart + this.#minGapMs);
      if (this.perSecond > 0 && this.#starts.length === capacity) {
        earliest = Math.max(earliest, (this.#starts[this.#next] as number) + windowMs);
      }
      if (now >= earliest) {
        if (this.perSecond > 0) this.#record(now, capacity);
        this.#lastStart = now;
        return;
      }
      await this.clock.sleep(earliest - now, signal);
    }
  }

  #record(now: number, capacity: number): void {
    if (this.#starts.length < capacity) {
      this.#starts.push(now);
      return;
    }
    this.#starts[this.#next] = now;
    this.#next = (this.#next + 1) % capacity;
  }
}
