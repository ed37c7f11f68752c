/**
 * `matterbak list [--json]`: logs in and shows every team, channel, direct and group message
 * the user can back up, by the names channels.json uses; `--json` prints a channels.json that
 * selects all of it, to edit down.
 */
import { apiFor, closeSession, DEFAULT_CONNECTION, openSession } from "../../api/session.ts";
import { loadCredentials } from "../../config/load.ts";
import { listConversations, selectionBasis } from "../../sync/listing.ts";
import { type Backupable, backupable, selectEverything } from "../../sync/selection.ts";
import { ExitCode, UsageError } from "../../util/errors.ts";
import { VERSION } from "../../util/version.ts";
import { parseOptions } from "../args.ts";
import { type Command, type CommandDeps, secretEnv } from "../command.ts";

const LIST_OPTIONS = {
  credentials: { type: "string" },
  json: { type: "boolean" },
  "mfa-code": { type: "string" },
} as const;

export const LIST_HELP =
  `matterbak ${VERSION} list: what you can back up, by the names channels.json uses.

USAGE
  matterbak list [options]

OPTIONS
  --credentials FILE   credentials JSON (default: credentials.json)
  --json               print a channels.json that selects everything, to edit down:
                         matterbak list --json > channels.json
  --mfa-code CODE      MFA code for a password login (or MATTERBAK_MFA_CODE)
  -h, --help           print this help and exit

It logs in (and out again after a password login) and changes nothing.
`;

export const listCommand: Command = {
  name: "list",
  summary: "list the teams, channels, direct and group messages you can back up",
  help: LIST_HELP,
  run: runList,
};

async function runList(args: string[], deps: CommandDeps): Promise<number> {
  const v = parseOptions(args, LIST_OPTIONS, "matterbak list --help").values;
  const path = v.credentials ?? "credentials.json";
  if (path.trim() === "") throw new UsageError("--credentials needs a path");
  const { credentials, warnings } = await loadCredentials(path, secretEnv(deps), v["mfa-code"]);
  for (const warning of warnings) deps.output.err(`warning: ${warning}`);
  const api = apiFor(credentials, {
    ...DEFAULT_CONNECTION,
    secrets: deps.secrets,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  const { me } = await openSession(api, credentials, path);
  let what: Backupable;
  try {
    const conversations = await listConversations(
      api,
      me,
      { direct: true, groups: true },
      DEFAULT_CONNECTION.concurrency,
    );
    what = backupable(selectionBasis(conversations, me));
  } finally {
    await closeSession(api);
  }
  const lines = v.json
    ? [JSON.stringify(selectEverything(what), null, 2)]
    : describe(what, `${me.username} on ${api.client.root}`);
  for (const line of lines) deps.output.out(line);
  return ExitCode.ok;
}

/** Names in a column, then what else there is to say about each. */
function table(rows: Array<[string, string]>): string[] {
  const width = Math.max(0, ...rows.map(([name]) => name.length));
  return rows.map(([name, rest]) =>
    `  ${rest ? `${name.padEnd(width)}  ${rest}` : name}`.trimEnd()
  );
}

function describe(what: Backupable, who: string): string[] {
  const lines = [`What ${who} can back up, by the names channels.json uses:`];
  for (const { team, channels } of what.teams) {
    lines.push("", `Team ${team.name} (${team.display_name}), its channels:`);
    lines.push(...table(channels.map((c) => {
      const notes = [
        c.display_name,
        c.type === "P" ? "private" : "",
        c.delete_at > 0 ? "archived" : "",
      ].filter(Boolean);
      return [c.name, notes.join(", ")];
    })));
    if (channels.length === 0) lines.push("  (no channels)");
  }
  lines.push("", `Direct messages ("direct"), by the other's username:`);
  lines.push(...table(what.direct.map((d) => [d.username, d.self ? "yourself" : ""])));
  if (what.direct.length === 0) lines.push("  (none)");
  lines.push("", `Group messages ("groups"), by the other members:`);
  lines.push(...what.groups.map((g) => `  ${g.usernames.join(", ")}`));
  if (what.groups.length === 0) lines.push("  (none)");
  lines.push(
    "",
    "matterbak list --json > channels.json writes a channels.json that selects all of it.",
  );
  return lines;
}
