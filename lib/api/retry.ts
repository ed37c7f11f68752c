/** Which failures are worth another attempt, and how long to wait before it. */

export interface RetryPolicy {
  /** Further attempts after the first one. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
};

/** HTTP statuses that say "try again later" rather than "this will never work". */
const RETRIABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

export function isRetriableStatus(status: number): boolean {
  return RETRIABLE_STATUSES.has(status);
}

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so retries
 * spread out but never hammer. `attempt` is 1 for the first retry; `random` is in [0, 1).
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: number): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return step / 2 + (step / 2) * random;
}

/**
 * The wait a 429 asks for, in ms: `Retry-After` (seconds), else `X-RateLimit-Reset` (seconds
 * until the bucket refills), else undefined (use backoff). As asked: see MAX_SERVER_WAIT_MS.
 */
export function serverRetryDelay(headers: Headers): number | undefined {
  for (const name of ["retry-after", "x-ratelimit-reset"]) {
    const value = headers.get(name);
    if (value === null) continue;
    const seconds = Number(value.trim());
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  }
  return undefined;
}

/**
 * The longest wait a server's answer can impose at once (a 429's Retry-After or
 * X-RateLimit-Reset). Mattermost's own limiter asks for about a second (app/ratelimit.go: the
 * time until one request is allowed again); a far larger figure is an epoch time some proxies
 * send, a misconfiguration or a hostile server, and would stall an unattended run for hours.
 */
export const MAX_SERVER_WAIT_MS = 60_000;

/**
 * The largest spacing of requests that the server's budget (X-RateLimit-Remaining, -Reset)
 * can impose. Mattermost refills at least one request per second (RateLimitSettings.PerSec is
 * a whole number), so it never needs more; spacing is only a courtesy to avoid 429s, and a
 * server that wants more can still answer 429 with a Retry-After.
 */
export const MAX_BUDGET_GAP_MS = 1000;
