/**
 * credentials.json: the server, the user and the secret, checked before any request is made;
 * every secret (file, environment, --mfa-code) is resolved here and nowhere else.
 */
import { isObject } from "../util/objects.ts";
import { ConfigError } from "../util/errors.ts";
import { kindOf, type Parsed, parseJsonFile, unknownKeys } from "./json_file.ts";

export interface Credentials {
  /** The account's username (names the zip; the account must be this user). */
  user: string;
  /** Login id for a password login when it is not the username: an email or LDAP/AD id. */
  login?: string;
  /** For a password login on an account with MFA. */
  mfaCode?: string;
  url: string;
  password?: string;
  token?: string;
}

export interface SecretEnv {
  MATTERBAK_PASSWORD?: string | undefined;
  MATTERBAK_TOKEN?: string | undefined;
  MATTERBAK_MFA_CODE?: string | undefined;
}

/**
 * Checks credentials.json and resolves every secret in this one place: `MATTERBAK_PASSWORD`
 * and `MATTERBAK_TOKEN` override the file's, a token wins over a password, and the MFA code
 * comes from `--mfa-code` (`mfaCodeOption`), else `MATTERBAK_MFA_CODE`.
 */
export function parseCredentials(
  text: string,
  path: string,
  env: SecretEnv,
  mfaCodeOption?: string,
): Parsed<Credentials> & { secretInFile: boolean } {
  const data = parseJsonFile(text, path);
  if (!isObject(data)) {
    throw new ConfigError(
      `${path}: expected an object with "user", "url" and "password" or "token"`,
    );
  }
  const warnings = unknownKeys(data, ["user", "login", "url", "password", "token"], path);
  const text_ = (key: string): string | undefined => {
    const value = data[key];
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value.trim() === "") {
      throw new ConfigError(`${path}: "${key}" must be a non-empty string, got ${kindOf(value)}`);
    }
    return value;
  };
  const user = text_("user")?.trim().replace(/^@/, "");
  const login = text_("login")?.trim();
  const url = text_("url")?.trim();
  if (!user) throw new ConfigError(`${path}: "user" is missing (your Mattermost username)`);
  if (!url) throw new ConfigError(`${path}: "url" is missing (e.g. "https://mm.example.org")`);
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(url);
  } catch {
    throw new ConfigError(`${path}: "url" is not a valid URL: ${withoutSecrets(url)}`);
  }
  // Checked first, so that no message below repeats a secret the URL carries.
  if (parsedUrl.username || parsedUrl.password || parsedUrl.search) {
    throw new ConfigError(
      `${path}: "url" must not carry user info or a query; put secrets in "password" or "token"`,
    );
  }
  if (parsedUrl.protocol !== "https:" && parsedUrl.protocol !== "http:") {
    throw new ConfigError(`${path}: "url" must start with https:// or http://, got ${url}`);
  }
  const token = nonEmpty(env.MATTERBAK_TOKEN) ?? text_("token");
  const password = nonEmpty(env.MATTERBAK_PASSWORD) ?? text_("password");
  if (!token && !password) {
    throw new ConfigError(
      `${path}: no secret: give "password" or "token" (or set MATTERBAK_PASSWORD or MATTERBAK_TOKEN)`,
    );
  }
  const value: Credentials = { user, url };
  if (login) value.login = login;
  if (token) value.token = token;
  else if (password) value.password = password;
  const mfaCode = nonEmpty(mfaCodeOption) ?? nonEmpty(env.MATTERBAK_MFA_CODE);
  if (mfaCode && !token) value.mfaCode = mfaCode;
  const secretInFile = data.token !== undefined || data.password !== undefined;
  return { value, warnings, secretInFile };
}

/** A URL as written, for messages: user info and query hidden, as either may hold a secret. */
function withoutSecrets(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/is, "$1…@").replace(/\?.*/s, "?…");
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

const LOCAL_HOSTS = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

/** A command line is visible to every user of the machine (`ps`), an environment is not. */
export const MFA_OPTION_WARNING =
  "--mfa-code shows the code to other users of this machine (ps); set MATTERBAK_MFA_CODE instead";

/**
 * Warnings about how secrets are kept and sent: a credentials file others can read (POSIX
 * mode bits; `mode` is null on Windows) and a plain-http URL to a host other than this one.
 */
export function secretWarnings(
  path: string,
  credentials: Parsed<Credentials> & { secretInFile: boolean },
  mode: number | null,
): string[] {
  const warnings: string[] = [];
  const { url, token } = credentials.value;
  if (credentials.secretInFile && mode !== null && (mode & 0o077) !== 0) {
    warnings.push(
      `${path} can be read by other users (mode ${
        (mode & 0o777).toString(8)
      }); run: chmod 600 ${path}`,
    );
  }
  const parsed = new URL(url);
  if (parsed.protocol === "http:" && !LOCAL_HOSTS.test(parsed.hostname)) {
    warnings.push(
      `${url} uses plain http: your ${
        token ? "token" : "password"
      } travels unencrypted; use https://`,
    );
  }
  return warnings;
}
