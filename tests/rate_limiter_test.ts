import assert from "node:assert/strict";
import { RateLimiter } from "../lib/api/rate_limiter.ts";
import { FakeClock } from "./fake_clock.ts";

async function startTimes(
  limiter: RateLimiter,
  clock: FakeClock,
  count: number,
): Promise<number[]> {
  const starts: number[] = [];
  for (let i = 0; i < count; i++) {
    await limiter.acquire();
    starts.push(clock.now());
  }
  return starts;
}

/** Largest number of starts inside any window [t, t + 1000). */
function maxInWindow(starts: number[], windowMs = 1000): number {
  let max = 0;
  for (const t of starts) {
    max = Math.max(
      max,
      starts.filter((s) => s >= t && s < t + windowMs).length,
    );
  }
  return max;
}

Deno.test("at most N requests start in any one-second window", async () => {
  const clock = new FakeClock();
  const starts = await startTimes(new RateLimiter(10, clock), clock, 95);
  assert.equal(maxInWindow(starts), 10);
  // Ten start at once, then each further ten a second later: 95 take 9 s, not less.
  assert.equal(starts.at(-1), 9000);
});

Deno.test("concurrent callers are served in order and still limited", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(3, clock);
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 7 }, (_, i) => limiter.acquire().then(() => order.push(i))),
  );
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(clock.now(), 2000);
});

Deno.test("rate 0 means no limit", async () => {
  const clock = new FakeClock();
  const starts = await startTimes(new RateLimiter(0, clock), clock, 500);
  assert.equal(starts.at(-1), 0);
});

Deno.test("a rate below one allows one start per 1/N seconds", async () => {
  const clock = new FakeClock();
  const starts = await startTimes(new RateLimiter(0.5, clock), clock, 3);
  assert.deepEqual(starts, [0, 2000, 4000]);
});

Deno.test("a server pause holds back every caller, even with no limit", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(0, clock);
  limiter.pauseFor(3000);
  const starts = await startTimes(limiter, clock, 2);
  assert.deepEqual(starts, [3000, 3000]);
});

Deno.test("an aborted wait rejects and does not block later callers", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(1, clock);
  await limiter.acquire();
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assert.rejects(limiter.acquire(controller.signal), /stop/);
  await limiter.acquire();
  assert.equal(clock.now(), 1000);
});

Deno.test("invalid rates are refused", () => {
  assert.throws(() => new RateLimiter(-1, new FakeClock()), RangeError);
  assert.throws(() => new RateLimiter(Infinity, new FakeClock()), RangeError);
});

Deno.test("a minimum gap spaces starts until it is lifted", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter(0, clock);
  limiter.setMinGap(250);
  const spaced = await startTimes(limiter, clock, 3);
  assert.deepEqual(spaced, [0, 250, 500]);
  limiter.setMinGap(0);
  assert.deepEqual(await startTimes(limiter, clock, 2), [500, 500]);
});
