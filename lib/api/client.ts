/**
 * The one HTTP client for the Mattermost API: every request goes through the concurrency
 * semaphore and the shared rate limiter, is retried on transient failures with backoff, is
 * watched for inactivity, and turns error answers into typed errors that name what was asked.
 */
import { ApiError, ServerError, SizeMismatchError } from "../util/errors.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { Semaphore } from "../util/semaphore.ts";
import {
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  isRetriableStatus,
  type RetryPolicy,
  serverRetryDelay,
} from "./retry.ts";
import { VERSION } from "../util/version.ts";

/**
 * Who the client acts as: a token (a personal access token or a browser session's
 * MMAUTHTOKEN) or a password login that `signIn` turns into a session of its own.
 */
export type ClientCredentials =
  | { token: string }
  | { loginId: string; password: string; mfaCode?: string | undefined };

export interface ApiClientOptions {
  /** Server root, e.g. `https://mm.example.org` (see `apiRootFromUrl`). */
  serverUrl: string;
  /** None for calls that need no login. The client alone holds the secrets from here on. */
  credentials?: ClientCredentials;
  rateLimit: number;
  concurrency: number;
  retry?: RetryPolicy;
  /** Inactivity timeout per attempt: no response or no body bytes for this long. */
  timeoutMs: number;
  fetch?: typeof fetch;
  clock?: Clock;
  random?: () => number;
  signal?: AbortSignal;
  onEvent?: (event: ClientEvent) => void;
}

export type ClientEvent =
  | { type: "request"; method: string; path: string; status: number }
  | { type: "retry"; what: string; attempt: number; delayMs: number; reason: string };

type QueryValue = string | number | boolean | undefined;

export interface RequestSpec {
  method?: "GET" | "POST";
  /** Path below `/api/v4`, starting with `/`. */
  path: string;
  query?: Record<string, QueryValue>;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** What is being fetched, for error messages ("posts of channel town-square"). */
  what: string;
  /** Accept 304 Not Modified as an answer. */
  allowNotModified?: boolean;
  /** Whether to send the token (default true). */
  auth?: boolean;
  /** Not cancelled when the run is interrupted (the logout that must follow a login). */
  survivesAbort?: boolean;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** The body, watched for inactivity; null for 304 and empty answers. */
  body: ReadableStream<Uint8Array> | null;
}

/** A body that did not arrive whole or did not parse: worth another attempt. */
export class TransientError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TransientError";
  }
}

class InactivityTimeout extends Error {
  constructor(ms: number) {
    super(`no data for ${Math.round(ms / 1000)} s`);
    this.name = "InactivityTimeout";
  }
}

/** The server root for a credentials URL given with or without `/api` or `/api/v4`. */
export function apiRootFromUrl(url: string): string {
  return url.trim().replace(/\/+$/, "").replace(/\/api(\/v4)?$/, "");
}

const MAX_REDIRECTS = 5;
const ERROR_BODY_LIMIT = 64 * 1024;

export class ApiClient {
  readonly root: string;
  readonly limiter: RateLimiter;
  readonly semaphore: Semaphore;
  readonly stats = { requests: 0, retries: 0, bytes: 0 };
  #credentials: ClientCredentials | undefined;
  /** The session token a password login opened (logged out by `signOut`). */
  #sessionToken: string | undefined;
  #fetch: typeof fetch;
  #clock: Clock;
  #random: () => number;
  #retry: RetryPolicy;
  #userAgent = `matterbak-deno/${VERSION} (${Deno.build.os}; ${Deno.build.arch})`;

  constructor(readonly options: ApiClientOptions) {
    this.root = apiRootFromUrl(options.serverUrl);
    this.#fetch = options.fetch ?? fetch;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.limiter = new RateLimiter(options.rateLimit, this.#clock);
    this.semaphore = new Semaphore(options.concurrency);
    this.#credentials = options.credentials;
  }

  /** The login id of a password login, else undefined (a token needs no login). */
  get loginId(): string | undefined {
    return this.#credentials && "loginId" in this.#credentials
      ? this.#credentials.loginId
      : undefined;
  }

  /** True while a session that `signIn` opened is open. */
  get ownsSession(): boolean {
    return this.#sessionToken !== undefined;
  }

  /**
   * The password login: sends the body `body` builds from the credentials (without the
   * Authorization header) and takes the session token from the answer's `tokenHeader`.
   * Returns the answer's JSON.
   */
  async signIn(
    spec: Omit<RequestSpec, "body" | "auth">,
    body: (login: { loginId: string; password: string; mfaCode: string | undefined }) => unknown,
    tokenHeader: string,
  ): Promise<unknown> {
    const credentials = this.#credentials;
    if (!credentials || !("loginId" in credentials)) {
      throw new Error("signIn needs password credentials");
    }
    const { value, headers } = await this.jsonWithHeaders<unknown>({
      ...spec,
      body: body({ ...credentials, mfaCode: credentials.mfaCode }),
      auth: false,
    });
    const token = headers.get(tokenHeader);
    if (!token) {
      throw new ServerError(`Malformed answer for ${spec.what}: no ${tokenHeader} header`);
    }
    this.#sessionToken = token;
    return value;
  }

  /** Ends the session `signIn` opened with the request `spec` (not cancelled by an abort). */
  async signOut(spec: RequestSpec): Promise<void> {
    if (!this.#sessionToken) return;
    try {
      await this.json({ ...spec, survivesAbort: true });
    } finally {
      this.#sessionToken = undefined;
    }
  }

  #bearer(): string | undefined {
    if (this.#credentials && "token" in this.#credentials) return this.#credentials.token;
    return this.#sessionToken;
  }

  /** The URL of an API path, for messages (never carries a secret). */
  urlFor(path: string): string {
    return `${this.root}/api/v4${path}`;
  }

  /**
   * Performs the request, retrying transient failures, and hands each successful answer to
   * `consume`; a consume that fails with a TransientError (cut-off or unparsable body) is
   * retried as a whole.
   */
  async send<T>(spec: RequestSpec, consume: (response: ApiResponse) => Promise<T>): Promise<T> {
    const signal = this.#runSignal(spec);
    for (let attempt = 0;; attempt++) {
      let delayMs: number;
      let reason: string;
      try {
        return await this.semaphore.run(() => this.#attempt(spec, consume), signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const verdict = this.#classify(error);
        if (!verdict || attempt >= this.#retry.retries) throw this.#finalError(spec, error);
        reason = verdict.reason;
        delayMs = verdict.serverDelayMs ?? backoffDelay(attempt + 1, this.#retry, this.#random());
        if (verdict.serverDelayMs !== undefined) this.limiter.pauseFor(delayMs);
      }
      this.stats.retries++;
      this.options.onEvent?.({
        type: "retry",
        what: spec.what,
        attempt: attempt + 1,
        delayMs,
        reason,
      });
      await this.#clock.sleep(delayMs, signal);
    }
  }

  /** GET/POST returning parsed JSON. */
  json<T>(spec: RequestSpec): Promise<T> {
    return this.send(spec, async (response) => (await readJson(response, spec)) as T);
  }

  /** Like `json`, also returning the answer's headers. */
  jsonWithHeaders<T>(spec: RequestSpec): Promise<{ value: T; headers: Headers }> {
    return this.send(spec, async (response) => ({
      value: (await readJson(response, spec)) as T,
      headers: response.headers,
    }));
  }

  /** Conditional GET: `undefined` value when the server answers 304 for `etag`. */
  conditionalJson<T>(
    spec: RequestSpec,
    etag: string | undefined,
  ): Promise<{ value: T | undefined; etag: string | undefined }> {
    const headers = etag ? { ...spec.headers, "If-None-Match": etag } : spec.headers;
    const request = { ...spec, allowNotModified: true, ...(headers ? { headers } : {}) };
    return this.send(request, async (response) => {
      const newEtag = response.headers.get("etag") ?? undefined;
      if (response.status === 304) return { value: undefined, etag: newEtag ?? etag };
      return { value: (await readJson(response, spec)) as T, etag: newEtag };
    });
  }

  #runSignal(spec: RequestSpec): AbortSignal | undefined {
    return spec.survivesAbort ? undefined : this.options.signal;
  }

  async #attempt<T>(spec: RequestSpec, consume: (r: ApiResponse) => Promise<T>): Promise<T> {
    const runSignal = this.#runSignal(spec);
    await this.limiter.acquire(runSignal);
    const timeout = new AbortController();
    const signals = [timeout.signal, ...(runSignal ? [runSignal] : [])];
    const signal = AbortSignal.any(signals);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => timeout.abort(new InactivityTimeout(this.options.timeoutMs)),
        this.options.timeoutMs,
      );
    };
    arm();
    let response: Response | undefined;
    try {
      response = await this.#fetchFollowingRedirects(spec, signal);
      this.stats.requests++;
      const method = spec.method ?? "GET";
      this.options.onEvent?.({ type: "request", method, path: spec.path, status: response.status });
      this.#followServerBudget(response.headers);
      const ok = (response.status >= 200 && response.status < 300) ||
        (response.status === 304 && spec.allowNotModified);
      if (!ok) throw await httpError(response, spec);
      const body = response.body
        ? watchBody(response.body, (n) => {
          this.stats.bytes += n;
          arm();
        })
        : null;
      return await consume({ status: response.status, headers: response.headers, body });
    } catch (error) {
      if (timeout.signal.aborted && !runSignal?.aborted) throw timeout.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
      await response?.body?.cancel().catch(() => {});
    }
  }

  /**
   * Mattermost's limiter reports its budget on every answer. When few requests remain, space
   * ours by the time the server needs to refill one (its reset time over the missing tokens).
   */
  #followServerBudget(headers: Headers): void {
    const remaining = Number(headers.get("x-ratelimit-remaining") ?? NaN);
    const limit = Number(headers.get("x-ratelimit-limit") ?? NaN);
    const reset = Number(headers.get("x-ratelimit-reset") ?? NaN);
    if (![remaining, limit, reset].every(Number.isFinite)) return;
    const low = remaining <= this.options.concurrency && limit > remaining && reset > 0;
    this.limiter.setMinGap(low ? (reset * 1000) / (limit - remaining) : 0);
  }

  async #fetchFollowingRedirects(spec: RequestSpec, signal: AbortSignal): Promise<Response> {
    const url = new URL(this.urlFor(spec.path));
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers = new Headers({ "User-Agent": this.#userAgent, Accept: "application/json" });
    for (const [key, value] of Object.entries(spec.headers ?? {})) headers.set(key, value);
    const bearer = spec.auth === false ? undefined : this.#bearer();
    if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
    const init: RequestInit = {
      method: spec.method ?? "GET",
      headers,
      signal,
      redirect: "manual",
      // No cookie jar: the server would prefer a cookie over the Bearer header (CSRF trouble).
      credentials: "omit",
    };
    if (spec.body !== undefined) {
      headers.set("Content-Type", "application/json");
      init.body = JSON.stringify(spec.body);
    }
    let target = url;
    for (let hop = 0;; hop++) {
      const response = await this.#fetch(target, init);
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || response.status === 304 || !location) {
        return response;
      }
      await response.body?.cancel();
      if (hop >= MAX_REDIRECTS) {
        throw new ServerError(`Too many redirects for ${spec.what} (${redactUrl(url)})`);
      }
      const next = new URL(location, target);
      // The token is for the Mattermost server only: never hand it to another origin.
      if (next.origin !== url.origin) headers.delete("Authorization");
      target = next;
    }
  }

  #classify(error: unknown): { reason: string; serverDelayMs?: number } | undefined {
    if (error instanceof ApiError) {
      if (!isRetriableStatus(error.status)) return undefined;
      const reason = `HTTP ${error.status}`;
      if (error.status === 429) {
        const delay = error.retryAfterMs;
        return delay === undefined ? { reason } : { reason, serverDelayMs: delay };
      }
      return { reason };
    }
    if (
      error instanceof TransientError || error instanceof InactivityTimeout ||
      error instanceof SizeMismatchError
    ) {
      return { reason: error.message };
    }
    // fetch rejects with TypeError for network failures (refused, reset, DNS, TLS).
    if (error instanceof TypeError) return { reason: error.message };
    return undefined;
  }

  #finalError(spec: RequestSpec, error: unknown): unknown {
    if (error instanceof ApiError || error instanceof ServerError) return error;
    if (
      error instanceof TransientError || error instanceof InactivityTimeout ||
      error instanceof SizeMismatchError
    ) {
      return new ServerError(`Cannot get ${spec.what} from ${this.root}: ${error.message}`, {
        cause: error,
      });
    }
    if (error instanceof TypeError) {
      return new ServerError(`Cannot reach ${this.root} for ${spec.what}: ${error.message}`, {
        cause: error,
      });
    }
    return error;
  }
}

async function httpError(response: Response, spec: RequestSpec): Promise<ApiError> {
  const text = await readTextLimited(response, ERROR_BODY_LIMIT).catch(() => "");
  let errorId: string | undefined;
  let detail = "";
  let requestId = response.headers.get("x-request-id") ?? undefined;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if (typeof parsed.id === "string") errorId = parsed.id;
    if (typeof parsed.message === "string") detail = parsed.message;
    if (typeof parsed.request_id === "string") requestId = parsed.request_id;
  } catch {
    // Proxies answer with HTML or plain text (the server's own 429 says "limit exceeded").
    detail = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 120);
  }
  const parts = [`HTTP ${response.status}`, errorId, detail].filter(Boolean).join(" ");
  const error = new ApiError(
    `Cannot get ${spec.what}: ${parts}`,
    response.status,
    errorId,
    requestId,
  );
  error.retryAfterMs = response.status === 429 ? serverRetryDelay(response.headers) : undefined;
  return error;
}

async function readTextLimited(response: Response, limit: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(concat(chunks).subarray(0, limit));
}

/** Largest answer read into memory (lists, records, images); attachments are streamed. */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** Reads the whole body as bytes, refusing more than `limit`. */
export async function readBytes(
  response: ApiResponse,
  what = "answer",
  limit = MAX_ANSWER_BYTES,
): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.length;
    if (size > limit) throw new ServerError(`Refused ${what}: larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return concat(chunks);
}

async function readJson(response: ApiResponse, spec: RequestSpec): Promise<unknown> {
  const bytes = await readBytes(response, spec.what);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    // The server streams some lists; an error part-way leaves invalid JSON. Worth a retry.
    throw new TransientError(`invalid JSON in answer for ${spec.what}`, { cause: error });
  }
}

function watchBody(
  body: ReadableStream<Uint8Array>,
  onChunk: (size: number) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        // A connection that breaks mid-body is worth another attempt.
        throw new TransientError(`body cut off: ${errorText(error)}`, { cause: error });
      }
      const { done, value } = chunk;
      if (done) return controller.close();
      onChunk(value.length);
      controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A URL with any `access_token` query value hidden, for messages. */
export function redactUrl(url: URL | string): string {
  const copy = new URL(url);
  if (copy.searchParams.has("access_token")) copy.searchParams.set("access_token", "REDACTED");
  if (copy.password) copy.password = "REDACTED";
  return copy.toString();
}
