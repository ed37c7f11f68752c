/**
 * Logging in and out: a personal access token or session token is used as a Bearer token; a
 * password login yields a session that is logged out again at the end. Either way the account
 * must be the `user` named in credentials.json.
 */
import type { Credentials } from "../config/config.ts";
import { ApiError, AuthError, ServerError } from "../util/errors.ts";
import type { MattermostApi } from "./mattermost.ts";
import type { User } from "../model/records.ts";

export interface Session {
  me: User;
  /** Server version from X-Version-ID, when the server sends it. */
  serverVersion: string | undefined;
  /** True when we created the session (password login) and must log it out. */
  ownsSession: boolean;
}

const MFA_ERROR = "mfa.validate_token.authenticate.app_error";
const INACTIVE_ERROR = "api.user.login.inactive.app_error";

export async function openSession(
  api: MattermostApi,
  credentials: Credentials,
  credentialsPath: string,
  mfaCode: string | undefined,
): Promise<Session> {
  const server = api.client.root;
  let ownsSession = false;
  if (credentials.token) {
    api.client.token = credentials.token;
  } else {
    try {
      const { token } = await api.login(credentials.user, credentials.password ?? "", mfaCode);
      api.client.token = token;
      ownsSession = true;
    } catch (error) {
      throw loginError(error, credentials, credentialsPath, server, mfaCode);
    }
  }
  let me: User;
  let serverVersion: string | undefined;
  try {
    ({ user: me, version: serverVersion } = await api.me());
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      throw new AuthError(
        `The token from ${credentialsPath} (or MATTERBAK_TOKEN) was rejected by ${server}: ` +
          `it is expired, revoked or wrong (${error.errorId ?? "HTTP 401"})`,
      );
    }
    throw notMattermost(error, server);
  }
  if (me.username.toLowerCase() !== credentials.user.toLowerCase()) {
    if (ownsSession) await closeSession(api, { me, serverVersion, ownsSession }).catch(() => {});
    throw new AuthError(
      `The token belongs to user ${JSON.stringify(me.username)}, but ${credentialsPath} names ` +
        `${JSON.stringify(credentials.user)}`,
    );
  }
  if (me.delete_at > 0) {
    throw new AuthError(`User ${JSON.stringify(me.username)} is deactivated on ${server}`);
  }
  return { me, serverVersion, ownsSession };
}

export async function closeSession(api: MattermostApi, session: Session): Promise<void> {
  if (session.ownsSession) await api.logout();
}

function loginError(
  error: unknown,
  credentials: Credentials,
  credentialsPath: string,
  server: string,
  mfaCode: string | undefined,
): unknown {
  if (!(error instanceof ApiError)) return notMattermost(error, server);
  if (error.status === 401 || error.status === 400 || error.status === 403) {
    if (error.errorId === MFA_ERROR) {
      return new AuthError(
        mfaCode
          ? `The MFA code was not accepted by ${server} for ${credentials.user}`
          : `${server} requires an MFA code for ${credentials.user}: pass --mfa-code or set MATTERBAK_MFA_CODE`,
      );
    }
    if (error.errorId === INACTIVE_ERROR) {
      return new AuthError(`User ${JSON.stringify(credentials.user)} is deactivated on ${server}`);
    }
    if (error.errorId) {
      return new AuthError(
        `Login to ${server} as ${JSON.stringify(credentials.user)} failed (${error.errorId}): ` +
          `check the user and password in ${credentialsPath} (or MATTERBAK_PASSWORD)`,
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
