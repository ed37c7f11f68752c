import assert from "node:assert/strict";
import { backoffDelay, isRetriableStatus, serverRetryDelay } from "../lib/api/retry.ts";

const policy = { retries: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

Deno.test("retriable statuses are exactly 408, 429, 500, 502, 503 and 504", () => {
  const retriable = [];
  for (let status = 400; status < 600; status++) {
    if (isRetriableStatus(status)) retriable.push(status);
  }
  assert.deepEqual(retriable, [408, 429, 500, 502, 503, 504]);
});

Deno.test("backoff doubles per attempt, is capped, and jitters within the upper half", () => {
  assert.equal(backoffDelay(1, policy, 0), 250);
  assert.equal(backoffDelay(1, policy, 0.999999), 499.99975);
  assert.equal(backoffDelay(3, policy, 0), 1000);
  assert.equal(backoffDelay(20, policy, 0), 15_000);
  assert.ok(backoffDelay(20, policy, 0.9999) < 30_000);
});

Deno.test("a 429 waits for Retry-After, else X-RateLimit-Reset, else backoff", () => {
  assert.equal(serverRetryDelay(new Headers({ "Retry-After": "3" })), 3000);
  assert.equal(serverRetryDelay(new Headers({ "X-RateLimit-Reset": "2" })), 2000);
  assert.equal(
    serverRetryDelay(new Headers({ "Retry-After": "1", "X-RateLimit-Reset": "9" })),
    1000,
  );
  assert.equal(
    serverRetryDelay(new Headers({ "Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT" })),
    undefined,
  );
  assert.equal(serverRetryDelay(new Headers()), undefined);
});
