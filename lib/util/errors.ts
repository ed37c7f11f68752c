/**
 * Typed errors for expected failures, and the single mapping from errors to exit statuses.
 *
 * Only `ExpectedError` subclasses are shown to users as a one-line message; anything else is a
 * bug and is reported with its stack trace (exit status 1).
 */
import { basename } from "node:path";

export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  partial: 3,
  auth: 4,
  server: 5,
  damaged: 6,
  locked: 7,
  sigint: 130,
  sigterm: 143,
} as const;
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/** Exit statuses as documented in `--help` and the README. */
export const EXIT_STATUS_HELP = `EXIT STATUS
  0    success
  1    unexpected error (a bug: please report it with the stack trace)
  2    usage or configuration error (options, config files, data dir, zip, export or report
       path; a full or read-only disk)
  3    completed with problems (items that failed after retries, config names matching nothing)
  4    authentication failed
  5    server unreachable or not a usable Mattermost server
  6    matterbak verify found damaged or missing files (the next backup run repairs them)
  7    the data dir is in use by another run
  130  interrupted by SIGINT (Ctrl+C)
  143  interrupted by SIGTERM`;

/** Base of every failure we expect and explain; `exitCode` says how the run ends. */
export abstract class ExpectedError extends Error {
  abstract readonly exitCode: ExitCode;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A bad command line option or value. */
export class UsageError extends ExpectedError {
  readonly exitCode = ExitCode.usage;
}

/** A config file (credentials.json, channels.json) that is missing or wrong. */
export class ConfigError extends ExpectedError {
  readonly exitCode = ExitCode.usage;
}

/** The data dir or output zip cannot be used (not a directory, not writable, disk full). */
export class StorageError extends ExpectedError {
  readonly exitCode = ExitCode.usage;
}

/**
 * An output outside the data dir (the zip, an export) that cannot be written: a full or
 * read-only disk there, a folder that cannot be made. The data dir is not at fault.
 */
export class OutputError extends StorageError {}

/** Another run holds the data dir's lock. */
export class LockedError extends ExpectedError {
  readonly exitCode = ExitCode.locked;
}

/** Login failed, the token was rejected, or it belongs to another user. */
export class AuthError extends ExpectedError {
  readonly exitCode = ExitCode.auth;
}

/** The server could not be reached, or does not answer like a Mattermost server. */
export class ServerError extends ExpectedError {
  readonly exitCode = ExitCode.server;
}

/**
 * The server redirected a request to another origin, or redirected a login or another POST:
 * following could hand the token or the password to someone else, and every later request
 * would go the same way, so the run stops instead of failing item after item.
 */
export class UnsafeRedirectError extends ServerError {}

/** An HTTP error answer from the API, with the server's error id and request id. */
export class ApiError extends ExpectedError {
  readonly exitCode = ExitCode.server;
  /** For 429: the wait the server asked for, in ms. */
  retryAfterMs: number | undefined;
  constructor(
    message: string,
    readonly status: number,
    readonly errorId: string | undefined,
    readonly requestId: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The byte count of a download did not match what the server announced (retried). */
export class SizeMismatchError extends Error {
  constructor(readonly path: string, readonly expected: number, readonly actual: number) {
    super(`Expected ${expected} bytes for ${basename(path)} but received ${actual}`);
    this.name = "SizeMismatchError";
  }
}

/** The run was stopped by a signal; `signal` picks the exit status. */
export class InterruptedError extends ExpectedError {
  readonly exitCode: ExitCode;
  constructor(readonly signal: "SIGINT" | "SIGTERM") {
    super(`Interrupted by ${signal}`);
    this.exitCode = signal === "SIGINT" ? ExitCode.sigint : ExitCode.sigterm;
  }
}

/** Exit status for an error that ended the run. */
export function exitCodeFor(error: unknown): ExitCode {
  return error instanceof ExpectedError ? error.exitCode : ExitCode.unexpected;
}

/** A short description of any thrown value, for per-item failure reports. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Failures that end the whole run rather than one item: a full disk or unusable data dir
 * (nothing more can be saved), a redirect that would hand credentials over, and an
 * interruption.
 */
export function isFatal(error: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || error instanceof StorageError ||
    error instanceof UnsafeRedirectError;
}
