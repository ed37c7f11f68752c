/**
 * The one HTTP client for the Mattermost API: every request goes through the concurrency
 * semaphore and the shared rate limiter, is retried on transient failures with backoff, must
 * arrive within its time and size limits, follows only redirects that keep the credentials on
 * the server, and turns error answers into typed errors that name what was asked.
 */
import { ApiError, ServerError, SizeMismatchError, UnsafeRedirectError } from "../util/errors.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { describeNetworkFailure } from "./network_error.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { Semaphore } from "../util/semaphore.ts";
import {
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  isRetriableStatus,
  MAX_BUDGET_GAP_MS,
  MAX_SERVER_WAIT_MS,
  type RetryPolicy,
  serverRetryDelay,
} from "./retry.ts";
import { VERSION } from "../util/version.ts";
import { SecretRegistry } from "../util/secrets.ts";

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
  /**
   * Where the client registers every secret it holds or is given (the session token too), so
   * that whatever prints or writes messages can scrub them; a private one when absent.
   */
  secrets?: SecretRegistry;
  rateLimit: number;
  concurrency: number;
  retry?: RetryPolicy;
  /**
   * Per attempt: a JSON answer must arrive whole within this time of the request; a download
   * must start within it and then keep MIN_DOWNLOAD_BYTES_PER_SECOND over every such window.
   */
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
  /**
   * A download that `consume` streams to disk: held to MIN_DOWNLOAD_BYTES_PER_SECOND instead
   * of having to arrive whole within the timeout.
   */
  stream?: boolean;
  /**
   * The largest body taken, in bytes; a larger one is refused while it streams
   * (AnswerTooLargeError). Default: JSON_MAX_BYTES for JSON, none for a stream (an attachment
   * is held to its FileInfo size by its writer).
   */
  maxBytes?: number;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** The body, held to the request's size and time limits; null for 304 and empty answers. */
  body: ReadableStream<Uint8Array> | null;
}

/** A body that did not arrive whole or did not parse: worth another attempt. */
export class TransientError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TransientError";
  }
}

/** An answer over its request's `maxBytes`: refused, never retried (it would be again). */
export class AnswerTooLargeError extends ServerError {}

/** An attempt that ran out of time (worth another attempt). */
class RequestTimeout extends Error {
  constructor(message: string) {
    super(`timeout: ${message}`);
    this.name = "RequestTimeout";
  }
}

/**
 * The largest JSON answer read, in bytes. The longest lists are pages of 200 posts (the
 * server's largest page): at 1 KB a post, about 200 KB; even 200 posts at the 16,383-rune
 * limit of a message, in ASCII, are 3.3 MB with their metadata. A page of posts over the cap is
 * asked for again in smaller pages (MattermostApi.postsPage), so no real data is refused, and
 * answers in flight (at most --concurrency) hold at most this much each while they stream.
 */
export const JSON_MAX_BYTES = 8 * 1024 * 1024;

/**
 * The least a download must deliver, averaged over every --timeout window: 10 kB/s, 600 kB a
 * minute at the default --timeout 60. A trickle (one byte every few seconds) is cut off after
 * one window and retried; a slow but real link is far faster.
 */
export const MIN_DOWNLOAD_BYTES_PER_SECOND = 10_000;

/** The server root for a credentials URL given with or without `/api` or `/api/v4`. */
export function apiRootFromUrl(url: string): string {
  return url.trim().replace(/\/+$/, "").replace(/\/api(\/v4)?$/, "");
}

/** Same-origin redirects of a GET followed in a row (a moved path, a trailing slash). */
const MAX_REDIRECTS = 3;
const ERROR_BODY_LIMIT = 64 * 1024;
/** At most this much of a server's error text goes into a message (on one line). */
const ERROR_DETAIL_CHARS = 160;

export type RedirectVerdict =
  | { kind: "follow"; url: URL }
  /** Not http(s) (file:, data:, ...): never fetched; the item fails. */
  | { kind: "scheme"; url: URL }
  /** Another origin, or a request other than GET (a login): the run stops. */
  | { kind: "origin" | "method"; url: URL }
  | { kind: "invalid" | "too-many" };

/**
 * What to do with a redirect to `location` (relative to `from`) of a `method` request to the
 * server at `origin`, after `hops` redirects already followed. Only a GET stays a GET when
 * followed, and only the server's own origin may see the token; anything else is refused.
 */
export function redirectVerdict(
  method: string,
  origin: string,
  location: string,
  from: URL,
  hops: number,
): RedirectVerdict {
  let url: URL;
  try {
    url = new URL(location, from);
  } catch {
    return { kind: "invalid" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { kind: "scheme", url };
  if (url.origin !== origin) return { kind: "origin", url };
  if (method !== "GET") return { kind: "method", url };
  if (hops >= MAX_REDIRECTS) return { kind: "too-many" };
  return { kind: "follow", url };
}

export class ApiClient {
  readonly root: string;
  readonly limiter: RateLimiter;
  readonly semaphore: Semaphore;
  readonly stats = { requests: 0, retries: 0, bytes: 0 };
  #credentials: ClientCredentials | undefined;
  #secrets: SecretRegistry;
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
    this.#secrets = options.secrets ?? new SecretRegistry();
    const credentials = options.credentials;
    if (credentials && "token" in credentials) this.#secrets.add(credentials.token);
    if (credentials && "loginId" in credentials) {
      this.#secrets.add(credentials.password, { basicUser: credentials.loginId });
    }
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
    this.#secrets.add(token);
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
    // However the attempt ends, aborting this closes the connection (an endless body too).
    const finished = new AbortController();
    const signal = AbortSignal.any([
      timeout.signal,
      finished.signal,
      ...(runSignal ? [runSignal] : []),
    ]);
    const { timeoutMs } = this.options;
    const seconds = timeoutMs / 1000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let windowBytes = 0;
    // Headers (and all of a JSON answer) must come within the timeout of the request.
    timer = setTimeout(
      () =>
        timeout.abort(
          new RequestTimeout(`no ${spec.stream ? "" : "complete "}answer within ${seconds} s`),
        ),
      timeoutMs,
    );
    let response: Response | undefined;
    let body: WatchedBody | undefined;
    try {
      response = await this.#fetchFollowingRedirects(spec, signal);
      this.stats.requests++;
      const method = spec.method ?? "GET";
      this.options.onEvent?.({ type: "request", method, path: spec.path, status: response.status });
      this.#followServerBudget(response.headers);
      const ok = (response.status >= 200 && response.status < 300) ||
        (response.status === 304 && spec.allowNotModified);
      if (!ok) throw await httpError(response, spec, this.#secrets);
      if (spec.stream) {
        // From here a download is judged by its pace: every window must bring enough bytes.
        const minBytes = MIN_DOWNLOAD_BYTES_PER_SECOND * seconds;
        const endWindow = () => {
          if (windowBytes < minBytes) {
            timeout.abort(
              new RequestTimeout(
                `slower than ${MIN_DOWNLOAD_BYTES_PER_SECOND / 1000} kB/s over ${seconds} s ` +
                  `(${windowBytes} bytes)`,
              ),
            );
            return;
          }
          windowBytes = 0;
          timer = setTimeout(endWindow, timeoutMs);
        };
        clearTimeout(timer);
        timer = setTimeout(endWindow, timeoutMs);
      }
      const maxBytes = spec.maxBytes ?? (spec.stream ? undefined : JSON_MAX_BYTES);
      body = response.body
        ? watchBody(response.body, spec.what, maxBytes, (n) => {
          this.stats.bytes += n;
          windowBytes += n;
        })
        : undefined;
      return await consume({
        status: response.status,
        headers: response.headers,
        body: body?.stream ?? null,
      });
    } catch (error) {
      if (timeout.signal.aborted && !runSignal?.aborted) throw timeout.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
      await body?.release();
      await response?.body?.cancel().catch(() => {});
      finished.abort();
    }
  }

  /**
   * Mattermost's limiter reports its budget on every answer. When few requests remain, space
   * ours by the time the server needs to refill one (its reset time over the missing tokens),
   * at most MAX_BUDGET_GAP_MS.
   */
  #followServerBudget(headers: Headers): void {
    const remaining = Number(headers.get("x-ratelimit-remaining") ?? NaN);
    const limit = Number(headers.get("x-ratelimit-limit") ?? NaN);
    const reset = Number(headers.get("x-ratelimit-reset") ?? NaN);
    if (![remaining, limit, reset].every(Number.isFinite)) return;
    const low = remaining <= this.options.concurrency && limit > remaining && reset > 0;
    const gap = Math.min((reset * 1000) / (limit - remaining), MAX_BUDGET_GAP_MS);
    this.limiter.setMinGap(low ? gap : 0);
  }

  async #fetchFollowingRedirects(spec: RequestSpec, signal: AbortSignal): Promise<Response> {
    const url = new URL(this.urlFor(spec.path));
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const method = spec.method ?? "GET";
    const headers = new Headers({ "User-Agent": this.#userAgent, Accept: "application/json" });
    for (const [key, value] of Object.entries(spec.headers ?? {})) headers.set(key, value);
    const bearer = spec.auth === false ? undefined : this.#bearer();
    if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
    const init: RequestInit = {
      method,
      headers,
      signal,
      // Every redirect is judged here (redirectVerdict): fetch would follow any of them.
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
      const verdict = redirectVerdict(method, url.origin, location, target, hop);
      if (verdict.kind === "follow") {
        target = verdict.url;
        continue;
      }
      throw this.#redirectError(spec, method, verdict);
    }
  }

  #redirectError(
    spec: RequestSpec,
    method: string,
    verdict: Exclude<RedirectVerdict, { kind: "follow" }>,
  ): ServerError {
    const hint = `check "url" in the credentials file (if the server moved, its new address)`;
    switch (verdict.kind) {
      case "invalid":
        return new ServerError(
          `Refused ${spec.what}: ${this.root} redirected it to an invalid URL`,
        );
      case "too-many":
        return new ServerError(`Too many redirects for ${spec.what} from ${this.root}`);
      case "scheme":
        return new ServerError(
          `Refused ${spec.what}: ${this.root} redirected it to a ${verdict.url.protocol} URL ` +
            `(${shortUrl(verdict.url)}), which is never read`,
        );
      case "origin":
        return new UnsafeRedirectError(
          `${this.root} redirected ${spec.what} to another server, ${verdict.url.origin}; ` +
            `stopping so that no password or token goes there: ${hint}`,
        );
      case "method":
        return new UnsafeRedirectError(
          `${this.root} redirected ${spec.what} (a ${method}) to ${shortUrl(verdict.url)}; ` +
            `a ${method} is never sent on, so that a password stays where it was sent: ${hint}`,
        );
    }
  }

  #classify(error: unknown): { reason: string; serverDelayMs?: number } | undefined {
    if (error instanceof ApiError) {
      if (!isRetriableStatus(error.status)) return undefined;
      const reason = `HTTP ${error.status}`;
      if (error.status === 429) {
        const asked = error.retryAfterMs;
        if (asked === undefined) return { reason };
        const wait = Math.min(asked, MAX_SERVER_WAIT_MS);
        return {
          reason: wait < asked
            ? `${reason}; the server asked for ${asked / 1000} s, at most ${
              MAX_SERVER_WAIT_MS / 1000
            } s is waited`
            : reason,
          serverDelayMs: wait,
        };
      }
      return { reason };
    }
    if (
      error instanceof TransientError || error instanceof RequestTimeout ||
      error instanceof SizeMismatchError
    ) {
      return { reason: error.message };
    }
    // fetch rejects with TypeError for network failures (refused, reset, DNS, TLS).
    if (error instanceof TypeError) return { reason: describeNetworkFailure(error) };
    return undefined;
  }

  #finalError(spec: RequestSpec, error: unknown): unknown {
    if (error instanceof ApiError || error instanceof ServerError) return error;
    if (
      error instanceof TransientError || error instanceof RequestTimeout ||
      error instanceof SizeMismatchError
    ) {
      return new ServerError(`Cannot get ${spec.what} from ${this.root}: ${error.message}`, {
        cause: error,
      });
    }
    if (error instanceof TypeError) {
      const why = describeNetworkFailure(error);
      return new ServerError(`Cannot reach ${this.root} for ${spec.what}: ${why}`, {
        cause: error,
      });
    }
    return error;
  }
}

/**
 * The typed error of a refused answer. The server's words are untrusted: any secret they echo
 * (an Authorization header, a login body) is scrubbed before the text is cut short, so no
 * fragment of it survives the cut, and the text is kept to one line.
 */
async function httpError(
  response: Response,
  spec: RequestSpec,
  secrets: SecretRegistry,
): Promise<ApiError> {
  const text = await readTextLimited(response, ERROR_BODY_LIMIT).catch(() => "");
  let errorId: string | undefined;
  let detail = "";
  let requestId = response.headers.get("x-request-id") ?? undefined;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if (typeof parsed.id === "string") errorId = oneLine(secrets.scrub(parsed.id));
    if (typeof parsed.message === "string") detail = oneLine(secrets.scrub(parsed.message));
    if (typeof parsed.request_id === "string") requestId = parsed.request_id;
  } catch {
    // Proxies answer with HTML or plain text (the server's own 429 says "limit exceeded").
    detail = oneLine(secrets.scrub(text).replace(/<[^>]*>/g, " "));
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

/** A server's text for a message: one line, at most ERROR_DETAIL_CHARS. */
function oneLine(text: string): string {
  const line = text.replace(/[\s\p{Cc}]+/gu, " ").trim();
  return line.length > ERROR_DETAIL_CHARS ? `${line.slice(0, ERROR_DETAIL_CHARS)}…` : line;
}

async function readTextLimited(response: Response, limit: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      const part = value.subarray(0, limit - size);
      size += part.length;
      text += decoder.decode(part, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text + decoder.decode();
}

/** The whole body as text, decoded as it streams (the size cap is the watched body's). */
async function readText(response: ApiResponse): Promise<string> {
  if (!response.body) return "";
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of response.body) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

async function readJson(response: ApiResponse, spec: RequestSpec): Promise<unknown> {
  const text = await readText(response);
  try {
    return JSON.parse(text);
  } catch (error) {
    // The server streams some lists; an error part-way leaves invalid JSON. Worth a retry.
    throw new TransientError(`invalid JSON in answer for ${spec.what}`, { cause: error });
  }
}

interface WatchedBody {
  stream: ReadableStream<Uint8Array>;
  /** Lets go of the underlying body (cancels it unless it was read to the end). */
  release(): Promise<void>;
}

/**
 * The body as the consumer reads it: counted, refused past `maxBytes` before the chunk that
 * crosses it is handed on, and a connection that breaks mid-body is a TransientError.
 */
function watchBody(
  body: ReadableStream<Uint8Array>,
  what: string,
  maxBytes: number | undefined,
  onChunk: (size: number) => void,
): WatchedBody {
  const reader = body.getReader();
  let size = 0;
  const stream = new ReadableStream<Uint8Array>({
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
      size += value.length;
      if (maxBytes !== undefined && size > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new AnswerTooLargeError(`Refused ${what}: larger than ${maxBytes} bytes`);
      }
      onChunk(value.length);
      controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { stream, release: () => reader.cancel().catch(() => {}) };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A URL for a message: without secrets, and short (a `data:` URL can be megabytes). */
function shortUrl(url: URL): string {
  const text = redactUrl(url);
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

/** A URL with any `access_token` query value hidden, for messages. */
export function redactUrl(url: URL | string): string {
  const copy = new URL(url);
  if (copy.searchParams.has("access_token")) copy.searchParams.set("access_token", "REDACTED");
  if (copy.password) copy.password = "REDACTED";
  return copy.toString();
}
