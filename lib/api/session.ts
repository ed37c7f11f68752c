/**
 * Logging in and out: a personal access token or session token is used as a Bearer token; a
 * password login (with `login`, or else `user`, as login id) yields a session that is logged
 * out again at the end. Either way the account must be the `user` named in credentials.json.
 */
import type { Credentials } from "../config/credentials.ts";
import type { Clock } from "../util/clock.ts";
import { ApiError, AuthError, ServerError } from "../util/errors.ts";
import { ApiClient, type ClientCredentials, type ClientEvent } from "./client.ts";
import { type MalformedSink, MattermostApi } from "./mattermost.ts";
import type { SecretRegistry } from "../util/secrets.ts";
import { DEFAULT_RETRY_POLICY } from "./retry.ts";
import type { User } from "../model/records.ts";

/** How the client talks to the server: the limits a command was given, and test seams. */
export interface ConnectionOptions {
  rateLimit: number;
  concurrency: number;
  retries: number;
  timeoutSeconds: number;
  fetch?: typeof fetch;
  clock?: Clock;
  random?: () => number;
  signal?: AbortSignal;
  onEvent?: (event: ClientEvent) => void;
  /** Where every secret the client holds is registered, so that output is scrubbed of it. */
  secrets?: SecretRegistry;
  /** Records the server sent malformed (skipped, each reported). */
  onMalformed?: MalformedSink;
}

/** The limits of commands that have no options for them (the backup's defaults). */
export const DEFAULT_CONNECTION = {
  rateLimit: 10,
  concurrency: 4,
  retries: 5,
  timeoutSeconds: 60,
} as const;

/** The API of the server credentials.json names, as its user; `openSession` logs in. */
export function apiFor(credentials: Credentials, options: ConnectionOptions): MattermostApi {
  const { fetch, clock, random, signal, onEvent, secrets } = options;
  return new MattermostApi(
    new ApiClient({
      serverUrl: credentials.url,
      credentials: clientCredentials(credentials),
      rateLimit: options.rateLimit,
      concurrency: options.concurrency,
      retry: { ...DEFAULT_RETRY_POLICY, retries: options.retries },
      timeoutMs: options.timeoutSeconds * 1000,
      ...(fetch ? { fetch } : {}),
      ...(clock ? { clock } : {}),
      ...(random ? { random } : {}),
      ...(signal ? { signal } : {}),
      ...(onEvent ? { onEvent } : {}),
      ...(secrets ? { secrets } : {}),
    }),
    options.onMalformed,
  );
}

export interface Session {
  me: User;
}

/** A missing code, or one the server cannot parse (app/authentication.go CheckUserMfa). */
const MFA_ERROR = "mfa.validate_token.authenticate.app_error";
/** A code of the right form that is wrong, expired or already used. */
const MFA_BAD_CODE = "api.user.check_user_mfa.bad_code.app_error";
const INACTIVE_ERROR = "api.user.login.inactive.app_error";

/**
 * Logs in (a password login; a token needs none) and checks that the account is the `user`
 * of the credentials file and active. The client holds the secrets; `credentials` and
 * `credentialsPath` only name things in messages.
 */
export async function openSession(
  api: MattermostApi,
  credentials: Credentials,
  credentialsPath: string,
): Promise<Session> {
  const server = api.client.root;
  let loggedIn: User | undefined;
  try {
    loggedIn = await api.login();
  } catch (error) {
    throw loginError(error, credentials, credentialsPath, server);
  }
  let me: User;
  try {
    me = await api.me();
  } catch (error) {
    await api.logout().catch(() => {});
    if (error instanceof ApiError && error.status === 401) {
      throw new AuthError(
        `The token from ${credentialsPath} (or MATTERBAK_TOKEN) was rejected by ${server}: ` +
          `it is expired, revoked or wrong (${error.errorId ?? "HTTP 401"})`,
      );
    }
    throw notMattermost(error, server);
  }
  const mismatch = accountMismatch(me, loggedIn, credentials, credentialsPath);
  if (mismatch) {
    await api.logout().catch(() => {});
    throw new AuthError(mismatch);
  }
  if (me.delete_at > 0) {
    throw new AuthError(`User ${JSON.stringify(me.username)} is deactivated on ${server}`);
  }
  return { me };
}

/**
 * Why the session's account is not the one credentials.json names, if it is not. A password
 * login is checked by the id its answer gave (the login id need not be the username); the
 * username must still be `user`, which names the zip as in matterbak.
 */
function accountMismatch(
  me: User,
  loggedIn: User | undefined,
  credentials: Credentials,
  credentialsPath: string,
): string | undefined {
  if (loggedIn && me.id !== loggedIn.id) {
    return `The session opened for user ${JSON.stringify(loggedIn.username)} belongs to ` +
      `${JSON.stringify(me.username)} on the server; log in again`;
  }
  if (me.username.toLowerCase() === credentials.user.toLowerCase()) return undefined;
  const names = `but ${credentialsPath} names ${JSON.stringify(credentials.user)} in "user"`;
  if (!loggedIn) return `The token belongs to user ${JSON.stringify(me.username)}, ${names}`;
  return `The login ${JSON.stringify(credentials.login ?? credentials.user)} is the account ` +
    `of user ${JSON.stringify(me.username)}, ${names}`;
}

/** What the client needs of the credentials: the token, or the password login. */
function clientCredentials(credentials: Credentials): ClientCredentials {
  if (credentials.token) return { token: credentials.token };
  return {
    loginId: credentials.login ?? credentials.user,
    password: credentials.password ?? "",
    mfaCode: credentials.mfaCode,
  };
}

export async function closeSession(api: MattermostApi): Promise<void> {
  await api.logout();
}

/**
 * What the server's masked "invalid credentials" error says it accepts as login id
 * (api4/user.go login picks the id from EnableSignInWithUsername/Email).
 */
const LOGIN_ID_HINTS: Record<string, string> = {
  "api.user.login.invalid_credentials_email":
    'the server accepts only email addresses as login: set "login" to yours',
  "api.user.login.invalid_credentials_username": "the server accepts only usernames as login",
};

function loginError(
  error: unknown,
  credentials: Credentials,
  credentialsPath: string,
  server: string,
): unknown {
  const mfaCode = credentials.mfaCode;
  if (!(error instanceof ApiError)) return notMattermost(error, server);
  const loginId = credentials.login ?? credentials.user;
  if (error.status === 401 || error.status === 400 || error.status === 403) {
    if (error.errorId === MFA_ERROR) {
      return new AuthError(
        mfaCode
          ? `The code given is not a valid MFA code for ${loginId} on ${server} (6 digits)`
          : `${server} requires an MFA code for ${loginId}: pass --mfa-code or set MATTERBAK_MFA_CODE`,
      );
    }
    if (error.errorId === MFA_BAD_CODE) {
      return new AuthError(
        `The MFA code was rejected by ${server} for ${loginId}: it is wrong, expired or ` +
          `already used; run again with a fresh code`,
      );
    }
    if (error.errorId === INACTIVE_ERROR) {
      return new AuthError(`User ${JSON.stringify(loginId)} is deactivated on ${server}`);
    }
    if (error.errorId) {
      const hint = LOGIN_ID_HINTS[error.errorId];
      const field = credentials.login ? '"login"' : '"user"';
      return new AuthError(
        `Login to ${server} as ${JSON.stringify(loginId)} failed (${error.errorId}): ` +
          `${hint ? `${hint}; ` : ""}check ${field} and the password in ${credentialsPath} ` +
          `(or MATTERBAK_PASSWORD)`,
      );
    }
  }
  return notMattermost(error, server);
}

/** An answer without the server's JSON error shape means we are not talking to Mattermost. */
function notMattermost(error: unknown, server: string): unknown {
  if (error instanceof ApiError && !error.errorId) {
    return new ServerError(
      `${server} does not look like a Mattermost server (${error.message}); ` +
        `check "url" in the credentials file`,
    );
  }
  return error;
}
