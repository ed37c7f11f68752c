import assert from "node:assert/strict";
import { mapPooled, Semaphore } from "../lib/util/semaphore.ts";

Deno.test("the semaphore never lets more than its permits run", async () => {
  const semaphore = new Semaphore(3);
  let running = 0;
  let peak = 0;
  await Promise.all(Array.from({ length: 20 }, () =>
    semaphore.run(async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
    })));
  assert.equal(peak, 3);
  assert.equal(semaphore.peak, 3);
  assert.equal(semaphore.inUse, 0);
});

Deno.test("an aborted waiter leaves the queue and does not take a permit", async () => {
  const semaphore = new Semaphore(1);
  await semaphore.acquire();
  const controller = new AbortController();
  const waiting = semaphore.acquire(controller.signal);
  controller.abort(new Error("cancelled"));
  await assert.rejects(waiting, /cancelled/);
  semaphore.release();
  await semaphore.acquire();
  assert.equal(semaphore.inUse, 1);
});

Deno.test("mapPooled keeps order, bounds parallelism and reports the first failure", async () => {
  let running = 0;
  let peak = 0;
  const results = await mapPooled([1, 2, 3, 4, 5, 6], 2, async (n) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 6 - n));
    running--;
    return n * 10;
  });
  assert.deepEqual(results, [10, 20, 30, 40, 50, 60]);
  assert.equal(peak, 2);
  const started: number[] = [];
  await assert.rejects(
    mapPooled([1, 2, 3, 4], 1, (n) => {
      started.push(n);
      return n === 2 ? Promise.reject(new Error("boom")) : Promise.resolve(n);
    }),
    /boom/,
  );
  assert.deepEqual(started, [1, 2]);
});
