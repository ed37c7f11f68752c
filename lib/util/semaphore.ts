/** A counting semaphore with FIFO hand-off; waiting can be aborted. */
export class Semaphore {
  #available: number;
  #waiters: Array<{ resolve: () => void; reject: (reason: unknown) => void }> = [];
  #inUse = 0;
  /** Highest number of permits held at once. */
  peak = 0;

  constructor(readonly permits: number) {
    if (!Number.isInteger(permits) || permits < 1) {
      throw new RangeError(`Semaphore permits must be a positive integer, got ${permits}`);
    }
    this.#available = permits;
  }

  get inUse(): number {
    return this.#inUse;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#available > 0) {
      this.#available--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const waiter = {
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
          reject,
        };
        const onAbort = () => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(signal?.reason);
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.#waiters.push(waiter);
      });
    }
    this.#inUse++;
    this.peak = Math.max(this.peak, this.#inUse);
  }

  release(): void {
    this.#inUse--;
    const next = this.#waiters.shift();
    if (next) next.resolve();
    else this.#available++;
  }

  /** Runs `task` while holding a permit. */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}

/**
 * Maps `items` through `task` with at most `limit` running at once. After a failure no new
 * item starts, running ones finish, and the first error is thrown.
 */
export async function mapPooled<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await task(items[index] as T, index);
      } catch (error) {
        if (!failed) firstError = error;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw firstError;
  return results;
}

/**
 * Runs `task` for each item of `items` as they come (an async generator need not be collected
 * first), with at most `limit` running at once. After a failure no new item starts, running
 * ones finish, and the first error is thrown.
 */
export async function forEachPooled<T>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let firstError: unknown;
  let failed = false;
  for await (const item of items) {
    if (failed) break;
    const run: Promise<void> = task(item).catch((error) => {
      if (!failed) firstError = error;
      failed = true;
    }).finally(() => running.delete(run));
    running.add(run);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failed) throw firstError;
}
