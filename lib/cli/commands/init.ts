/**
 * `matterbak init`: writes credentials.json after checking the login against the server. At a
 * terminal it asks for what the options and environment do not give (the secret without
 * showing it); in scripts the options and MATTERBAK_TOKEN or MATTERBAK_PASSWORD give it all.
 * The file is written atomically and readable only by its owner, never with a wrong login.
 */
import { apiFor, closeSession, DEFAULT_CONNECTION, openSession } from "../../api/session.ts";
import { parseCredentials } from "../../config/credentials.ts";
import { writeFileAtomic } from "../../store/atomic_write.ts";
import { ExitCode, UsageError } from "../../util/errors.ts";
import { VERSION } from "../../util/version.ts";
import { parseOptions } from "../args.ts";
import { type Command, type CommandDeps, secretEnv } from "../command.ts";

const INIT_OPTIONS = {
  credentials: { type: "string" },
  url: { type: "string" },
  user: { type: "string" },
  login: { type: "string" },
  "mfa-code": { type: "string" },
  force: { type: "boolean" },
} as const;

export const INIT_HELP =
  `matterbak ${VERSION} init: write credentials.json, after checking the login.

USAGE
  matterbak init [options]

At a terminal it asks for the server's URL, your username and a personal access token or
password (not shown as you type). Options and the environment answer instead, for scripts:

OPTIONS
  --credentials FILE   where to write (default: credentials.json)
  --url URL            the server, e.g. https://mm.example.org
  --user NAME          your Mattermost username
  --login ID           sign in with this email or LDAP id instead of the username (password only)
  --mfa-code CODE      MFA code to check a password login (or MATTERBAK_MFA_CODE)
  --force              replace an existing file
  -h, --help           print this help and exit

ENVIRONMENT
  MATTERBAK_TOKEN      the token to store (a secret is never taken from an option: other
  MATTERBAK_PASSWORD   users can see a command line)

The file gets mode 600 (only you can read it). A token is better for unattended runs: it does
not expire and needs no MFA code.
`;

export const initCommand: Command = {
  name: "init",
  summary: "write credentials.json (asks at a terminal; checks the login)",
  help: INIT_HELP,
  run: runInit,
};

/** What the user typed for the URL: `mm.example.org` means https. */
export function normalizeUrl(url: string): string {
  const trimmed = url.trim();
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
}

async function runInit(args: string[], deps: CommandDeps): Promise<number> {
  const v = parseOptions(args, INIT_OPTIONS, "matterbak init --help").values;
  const { output, terminal } = deps;
  const path = v.credentials ?? "credentials.json";
  if (path.trim() === "") throw new UsageError("--credentials needs a path");
  if (!v.force && await Deno.lstat(path).then(() => true, () => false)) {
    throw new UsageError(`${path} exists; pass --force to replace it`);
  }
  const answer = async (option: string, question: string, given: string | undefined) => {
    const value = given ?? await terminal?.ask(question);
    if (value === undefined) {
      throw new UsageError(`--${option} is needed (there is no terminal to ask at)`);
    }
    if (value.trim() === "") throw new UsageError(`No ${option} given`);
    return value.trim();
  };
  const url = normalizeUrl(
    await answer("url", "Mattermost server URL (e.g. https://mm.example.org): ", v.url),
  );
  const user = await answer("user", "Your Mattermost username: ", v.user);
  const file: Record<string, string> = { user, url };
  const env = secretEnv(deps);
  if (env.MATTERBAK_TOKEN) file.token = env.MATTERBAK_TOKEN;
  else if (env.MATTERBAK_PASSWORD) file.password = env.MATTERBAK_PASSWORD;
  else if (!terminal) {
    throw new UsageError(
      "No secret: set MATTERBAK_TOKEN or MATTERBAK_PASSWORD (a secret is never an option: " +
        "other users can see a command line)",
    );
  } else {
    const kind = await terminal.ask(
      "Sign in with a personal access token (t) or your password (p)? [t] ",
    );
    const password = /^p/i.test(kind ?? "");
    const secret = await terminal.askSecret(
      password ? "Password (not shown): " : "Token (not shown): ",
    );
    if (!secret) throw new UsageError(`No ${password ? "password" : "token"} given`);
    if (password) {
      file.password = secret;
      const login = v.login ??
        await terminal.ask("Sign-in name if not your username (email or LDAP id; Enter if none): ");
      if (login) file.login = login;
    } else {
      file.token = secret;
    }
  }
  if (v.login && !file.login) file.login = v.login;
  const text = JSON.stringify(file, null, 2) + "\n";
  // The checks of every run; nothing from the environment overrides what is to be stored.
  const { value: credentials } = parseCredentials(
    text,
    path,
    {},
    v["mfa-code"] ?? env.MATTERBAK_MFA_CODE,
  );
  // One retry: someone is waiting at the terminal, and a wrong URL fails the same every time.
  const api = apiFor(credentials, {
    ...DEFAULT_CONNECTION,
    retries: 1,
    secrets: deps.secrets,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  output.out(`Checking the login on ${api.client.root} ...`);
  const { me } = await openSession(api, credentials, path);
  await closeSession(api);
  await writeFileAtomic(path, text, { mode: 0o600 });
  output.out(
    `Logged in as ${me.username} (${me.id}) with a ${file.token ? "token" : "password"}; ` +
      `wrote ${path}${Deno.build.os === "windows" ? "" : " (mode 600: only you can read it)"}`,
  );
  output.out(
    "Next: matterbak list --json > channels.json, edit it down to what you want backed up, " +
      "then run matterbak",
  );
  return ExitCode.ok;
}
