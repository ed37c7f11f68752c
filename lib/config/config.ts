/**
 * credentials.json and channels.json: read, parse and check before any request is made, with
 * messages that name the file and the offending key. Parsing is pure; reading is separate.
 */
import { isObject } from "../util/objects.ts";
import { ConfigError } from "../util/errors.ts";

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

export interface TeamSelection {
  include?: string[];
  exclude?: string[];
}

export interface ChannelsConfig {
  teams?: Record<string, TeamSelection>;
  direct?: string[];
  groups?: { exact?: string[][]; subset?: string[][] };
}

export interface Parsed<T> {
  value: T;
  /** Things worth telling the user that do not stop the run (unknown keys). */
  warnings: string[];
}

/** Reads a config file as text; a missing or unreadable file is a ConfigError naming it. */
export async function readConfigFile(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ConfigError(`${what} file not found: ${path}`);
    }
    if (error instanceof Deno.errors.IsADirectory) {
      throw new ConfigError(`${what} file ${path} is a directory`);
    }
    throw new ConfigError(`Cannot read ${what} file ${path}: ${(error as Error).message}`);
  }
}

/** JSON.parse with errors that give the file, line and column. */
export function parseJsonFile(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const offset = jsonErrorOffset(text);
    const before = text.slice(0, offset);
    const line = before.split("\n").length;
    const column = offset - before.lastIndexOf("\n");
    const found = offset < text.length
      ? `unexpected ${JSON.stringify(text[offset])}`
      : "unexpected end of file";
    const hint = /,\s*[}\]]/.test(text) ? " (trailing commas are not allowed in JSON)" : "";
    throw new ConfigError(`Invalid JSON in ${path}:${line}:${column}: ${found}${hint}`, {
      cause: error,
    });
  }
}

/**
 * Offset of the first syntax error in invalid JSON. JSON.parse does not always say where
 * (V8 often quotes a snippet instead), so a small scanner finds it.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i] as string)) i++;
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const string = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") i++;
      else if ((text.charCodeAt(i) ?? 0) < 0x20) fail();
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match) fail();
    i += (match as RegExpExecArray)[0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      while (true) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ":") fail();
        i++;
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail();
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      while (true) {
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail();
      }
    } else if (c === '"') string();
    else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else number();
  };
  try {
    value();
    ws();
    return i < text.length ? i : text.length;
  } catch (offset) {
    return Math.min(offset as number, text.length);
  }
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function unknownKeys(
  obj: Record<string, unknown>,
  known: readonly string[],
  where: string,
): string[] {
  return Object.keys(obj).filter((key) => !known.includes(key)).map((key) =>
    `${where}: unknown key "${key}" ignored (known: ${known.join(", ")})`
  );
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

function stringList(value: unknown, where: string, what: string): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
    throw new ConfigError(`${where} must be a list of ${what} (strings), got ${kindOf(value)}`);
  }
  return value as string[];
}

/** Checks channels.json against matterbak's format. */
export function parseChannels(text: string, path: string): Parsed<ChannelsConfig> {
  const data = parseJsonFile(text, path);
  if (!isObject(data)) {
    throw new ConfigError(`${path}: expected an object with "teams", "direct" and/or "groups"`);
  }
  const warnings = unknownKeys(data, ["teams", "direct", "groups"], path);
  const value: ChannelsConfig = {};
  if (data.teams !== undefined) {
    if (!isObject(data.teams)) {
      throw new ConfigError(
        `${path}: "teams" must be an object mapping team names to {include, exclude}, got ${
          kindOf(data.teams)
        }`,
      );
    }
    value.teams = {};
    for (const [team, selection] of Object.entries(data.teams)) {
      const where = `${path}: "teams.${team}"`;
      if (!isObject(selection)) {
        throw new ConfigError(
          `${where} must be an object like {"include": [...]}, got ${kindOf(selection)}`,
        );
      }
      warnings.push(...unknownKeys(selection, ["include", "exclude"], where));
      const entry: TeamSelection = {};
      if (selection.include !== undefined) {
        entry.include = stringList(selection.include, `${where}.include`, "channel names");
      }
      if (selection.exclude !== undefined) {
        entry.exclude = stringList(selection.exclude, `${where}.exclude`, "channel names");
      }
      value.teams[team] = entry;
    }
  }
  if (data.direct !== undefined) {
    value.direct = stringList(data.direct, `${path}: "direct"`, "usernames");
  }
  if (data.groups !== undefined) {
    if (!isObject(data.groups)) {
      throw new ConfigError(
        `${path}: "groups" must be an object with "exact" and/or "subset", got ${
          kindOf(data.groups)
        }`,
      );
    }
    warnings.push(...unknownKeys(data.groups, ["exact", "subset"], `${path}: "groups"`));
    value.groups = {};
    for (const key of ["exact", "subset"] as const) {
      const lists = data.groups[key];
      if (lists === undefined) continue;
      const where = `${path}: "groups.${key}"`;
      if (!Array.isArray(lists)) {
        throw new ConfigError(`${where} must be a list of username lists, got ${kindOf(lists)}`);
      }
      value.groups[key] = lists.map((list, i) => stringList(list, `${where}[${i}]`, "usernames"));
    }
  }
  return { value, warnings };
}

const LOCAL_HOSTS = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

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

/** Both config files, checked before anything else; when both are wrong, both are named. */
export async function loadConfig(
  paths: { credentials: string; channels: string },
  env: SecretEnv,
  mfaCodeOption: string | undefined,
): Promise<{ credentials: Credentials; channels: ChannelsConfig; warnings: string[] }> {
  const [credentials, channels] = await Promise.allSettled([
    readConfigFile(paths.credentials, "Credentials").then((text) =>
      parseCredentials(text, paths.credentials, env, mfaCodeOption)
    ),
    readConfigFile(paths.channels, "Channels").then((text) => parseChannels(text, paths.channels)),
  ]);
  if (credentials.status === "rejected" && channels.status === "rejected") {
    const both = [credentials.reason, channels.reason];
    if (both.every((e) => e instanceof ConfigError)) {
      throw new ConfigError(both.map((e) => (e as Error).message).join("; and "));
    }
  }
  if (credentials.status === "rejected") throw credentials.reason;
  if (channels.status === "rejected") throw channels.reason;
  const mode = await Deno.stat(paths.credentials).then((info) => info.mode, () => null);
  return {
    credentials: credentials.value.value,
    channels: channels.value.value,
    warnings: [
      ...credentials.value.warnings,
      ...channels.value.warnings,
      ...secretWarnings(paths.credentials, credentials.value, mode),
    ],
  };
}
