/**
 * `matterbak export markdown|mattermost`: the backup as Markdown, or as a Mattermost
 * bulk-import archive, from the data dir alone (no server), with progress on a terminal and a
 * summary; `export mattermost --check FILE.zip` checks an archive.
 */
import { parseArgs } from "node:util";
import { type BulkCheck, checkBulkArchive } from "../../export/bulk_check.ts";
import type { ExportEvent } from "../../export/common.ts";
import { exportMarkdown } from "../../export/markdown.ts";
import { exportMattermost, PLACEHOLDER_DOMAIN } from "../../export/mattermost.ts";
import {
  EXIT_STATUS_HELP,
  ExitCode,
  InterruptedError,
  StorageError,
  UsageError,
} from "../../util/errors.ts";
import { formatBytes } from "../../util/format.ts";
import { VERSION } from "../../util/version.ts";
import type { Command, CommandDeps } from "../command.ts";
import { installInterruptHandlers } from "../interrupt.ts";
import type { Output } from "../progress.ts";

export const EXPORT_HELP =
  `matterbak ${VERSION} export: the backup as Markdown to read and keep, or as an archive to
import into another Mattermost server. Only the data dir is read; no server is needed.

USAGE
  matterbak export markdown [-d DATA] -o DIR [--since DATE] [--until DATE] [--channel NAME]...
  matterbak export mattermost [-d DATA] -o FILE.zip [--team NAME]...
  matterbak export mattermost --check FILE.zip

MARKDOWN
  One .md file per channel (a folder with a file per month for large channels) in a folder
  per team, direct/ and groups/, and an index.md linking them all. Replies are quoted under
  their root. Attachments are hard links to the backup's files (copies where linking fails).
  -o, --output DIR      where to write; replaced if it holds an earlier Markdown export,
                        refused if it holds anything else
  --since DATE          only threads started on or after DATE (YYYY-MM-DD, local time)
  --until DATE          only threads started on or before DATE
  --channel NAME        only this channel (name, display name, or the username of a direct
                        message); may be given more than once
  --copy                copy attachments instead of hard-linking them (edit the copies freely)

MATTERMOST
  A zip for \`mmctl import process\`: import.jsonl and data/ with attachments and emoji. Deleted
  posts are left out; a reply whose root is not in the backup becomes a post of its own; users
  without an e-mail address in the backup get <username>@${PLACEHOLDER_DOMAIN}.
  -o, --output FILE.zip where to write (replaced)
  --team NAME           only this team's channels (name or display name; may be given more
                        than once); direct and group messages always go
  --check FILE.zip      check an archive against the importer's rules and exit

BOTH
  -d, --data-dir DIR    the backup (default: data)
  --quiet               print only warnings and errors
  -h, --help            print this help and exit

${EXIT_STATUS_HELP}
`;

export interface MarkdownArgs {
  format: "markdown";
  dataDir: string;
  out: string;
  since: number | undefined;
  until: number | undefined;
  channels: string[];
  copy: boolean;
  quiet: boolean;
}

export interface MattermostArgs {
  format: "mattermost";
  dataDir: string;
  out: string | undefined;
  check: string | undefined;
  teams: string[];
  quiet: boolean;
}

/**
 * A day (`YYYY-MM-DD`, local midnight; `end` takes the next midnight, so the day counts) or a
 * date and time (`YYYY-MM-DDTHH:MM`, as given), in ms.
 */
export function parseDate(option: string, value: string, end: boolean): number {
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (day) {
    const [year, month, date] = [Number(day[1]), Number(day[2]), Number(day[3])];
    const start = new Date(year, month - 1, date);
    if (start.getMonth() === month - 1 && start.getDate() === date) {
      return end ? new Date(year, month - 1, date + 1).getTime() : start.getTime();
    }
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value) && !Number.isNaN(Date.parse(value))) {
    return Date.parse(value);
  }
  throw new UsageError(
    `--${option} needs a date like 2024-01-31 (or 2024-01-31T18:00), got ${JSON.stringify(value)}`,
  );
}

export function parseExportArgs(args: string[]): MarkdownArgs | MattermostArgs {
  const [format, ...rest] = args;
  if (format !== "markdown" && format !== "mattermost") {
    throw new UsageError(
      `export needs a format: markdown or mattermost${
        format === undefined ? "" : `, got ${JSON.stringify(format)}`
      } (see matterbak export --help)`,
    );
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        "data-dir": { type: "string", short: "d" },
        output: { type: "string", short: "o" },
        quiet: { type: "boolean" },
        ...(format === "markdown"
          ? {
            since: { type: "string" },
            until: { type: "string" },
            channel: { type: "string", multiple: true },
            copy: { type: "boolean" },
          }
          : {
            team: { type: "string", multiple: true },
            check: { type: "string" },
          }),
      },
    });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "")
      .replace(/\s*\n\s*/g, " ");
    throw new UsageError(`${message} (see matterbak export --help)`);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const text = (name: string): string | undefined => {
    const value = v[name] as string | undefined;
    if (value !== undefined && value.trim() === "") throw new UsageError(`--${name} needs a value`);
    return value;
  };
  const dataDir = text("data-dir") ?? "data";
  const out = text("output");
  const quiet = v.quiet === true;
  if (format === "markdown") {
    if (out === undefined) throw new UsageError("export markdown needs -o DIR (see --help)");
    const since = text("since");
    const until = text("until");
    const result: MarkdownArgs = {
      format,
      dataDir,
      out,
      since: since === undefined ? undefined : parseDate("since", since, false),
      until: until === undefined ? undefined : parseDate("until", until, true),
      channels: (v.channel as string[] | undefined) ?? [],
      copy: v.copy === true,
      quiet,
    };
    if (result.since !== undefined && result.until !== undefined && result.since >= result.until) {
      throw new UsageError("--since must come before --until");
    }
    return result;
  }
  const check = text("check");
  if (check !== undefined && out !== undefined) {
    throw new UsageError("--check reads an archive; it takes no -o");
  }
  if (check === undefined && out === undefined) {
    throw new UsageError("export mattermost needs -o FILE.zip, or --check FILE.zip (see --help)");
  }
  return {
    format,
    dataDir,
    out,
    check,
    teams: (v.team as string[] | undefined) ?? [],
    quiet,
  };
}

/** How often the live status line is redrawn. */
const STATUS_INTERVAL_MS = 250;

/** Export events as output: a status line on a terminal, a line per channel elsewhere. */
export class ExportProgress {
  #channel = "";
  #posts = 0;
  #files = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  warnings = 0;

  constructor(readonly output: Output, readonly quiet: boolean) {
    if (output.status && !quiet) {
      this.#timer = setInterval(() => this.output.status?.(this.line()), STATUS_INTERVAL_MS);
    }
  }

  line(): string {
    return `${this.#channel} | posts ${this.#posts} | attachments ${this.#files}`;
  }

  readonly listener = (event: ExportEvent): void => {
    switch (event.type) {
      case "channel":
        this.#channel = `channel ${event.index}/${event.total} ${event.label}`;
        if (!this.quiet && !this.output.status) {
          this.output.out(`[${event.index}/${event.total}] ${event.label}`);
        }
        break;
      case "progress":
        this.#posts = event.posts;
        this.#files = event.files;
        break;
      case "warning":
        this.warnings++;
        this.output.err(`warning: ${event.message}`);
        break;
    }
  };

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.output.status?.("");
  }
}

export const exportCommand: Command = {
  name: "export",
  summary: "write the backup as Markdown, or as a Mattermost bulk-import archive",
  help: EXPORT_HELP,
  run: runExport,
};

function printCheck(output: Output, path: string, check: BulkCheck): number {
  const c = check.counts;
  output.out(
    `${path}: ${c.lines} lines: ${c.teams} teams, ${c.channels} channels, ${c.users} users, ` +
      `${c.emoji} emoji, ${c.posts} posts and ${c.directPosts} direct posts with ${c.replies} ` +
      `replies, ${c.reactions} reactions, ${c.attachments} attachments`,
  );
  for (const problem of check.problems) output.err(`problem: ${problem}`);
  if (check.moreProblems) output.err(`... and ${check.moreProblems} more problems`);
  const total = check.problems.length + check.moreProblems;
  if (total === 0) {
    output.out("No problems found: the importer's checks pass.");
    return ExitCode.ok;
  }
  output.out(`${total} problem(s) found.`);
  return ExitCode.partial;
}

async function runExport(args: string[], deps: CommandDeps): Promise<number> {
  const { output } = deps;
  const options = parseExportArgs(args);
  if (options.format === "mattermost" && options.check !== undefined) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(options.check);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new StorageError(`${options.check} does not exist`);
      }
      throw error;
    }
    if (!info.isFile) throw new UsageError(`--check ${options.check} is not a file`);
    return printCheck(output, options.check, await checkBulkArchive(options.check));
  }
  const controller = new AbortController();
  const progress = new ExportProgress(output, options.quiet);
  const uninstall = installInterruptHandlers(controller, {
    notify: (message) => output.err(message),
    beforeExit: () => progress.stop(),
  });
  const common = {
    dataDir: options.dataDir,
    out: options.out as string,
    emit: progress.listener,
    signal: controller.signal,
    ...(deps.fsRecorder ? { recorder: deps.fsRecorder } : {}),
  };
  const say = (line: string) => {
    if (!options.quiet) output.out(line);
  };
  try {
    if (options.format === "markdown") {
      const s = await exportMarkdown({
        ...common,
        channels: options.channels,
        copy: options.copy,
        ...(options.since === undefined ? {} : { since: options.since }),
        ...(options.until === undefined ? {} : { until: options.until }),
      });
      progress.stop();
      say(
        `Wrote ${s.out} in ${(s.durationMs / 1000).toFixed(1)} s: ${s.channels} channel(s), ` +
          `${s.files} Markdown file(s), ${s.posts} posts in ${s.threads} threads` +
          `${
            s.orphans ? ` (${s.orphans} replies whose root is not in the backup, on their own)` : ""
          }`,
      );
      say(
        `Attachments: ${s.attachments} (${
          formatBytes(s.attachmentBytes)
        }): ${s.linked} hard-linked, ` +
          `${s.copied} copied, ${s.missingAttachments} not in the backup`,
      );
      if (s.damaged) say(`${s.damaged} damaged file(s) of the backup skipped (see the warnings)`);
      return s.damaged + s.missingAttachments > 0 ? ExitCode.partial : ExitCode.ok;
    }
    const s = await exportMattermost({ ...common, teams: options.teams });
    progress.stop();
    say(
      `Wrote ${s.out} (${formatBytes(s.bytes)}) in ${(s.durationMs / 1000).toFixed(1)} s: ` +
        `${s.teams} team(s), ${s.channels} channel(s), ${s.directChannels} direct and group ` +
        `message(s), ${s.users} user(s) (${s.placeholderEmails} with a placeholder e-mail, ` +
        `${s.unknownUsers} not in the backup), ${s.emoji} emoji`,
    );
    say(
      `Posts: ${s.posts} in ${s.threads} threads (${s.orphans} replies whose root is not in the ` +
        `backup, as posts of their own); ${s.deletedLeftOut} deleted left out; ` +
        `${s.addedReplies} replies added for long messages, many attachments or long threads`,
    );
    say(
      `Attachments: ${s.attachments} (${formatBytes(s.attachmentBytes)}), ` +
        `${s.missingAttachments} not in the backup`,
    );
    if (s.postsWithHistory) {
      say(
        `${s.postsWithHistory} post(s) have earlier versions in the backup: the import format ` +
          `has no edit history, so only their current text is in the archive`,
      );
    }
    if (s.damaged) say(`${s.damaged} damaged file(s) of the backup skipped (see the warnings)`);
    if (s.skippedChannels) say(`${s.skippedChannels} conversation(s) left out (see the warnings)`);
    const problems = s.check.problems.length + s.check.moreProblems;
    for (const problem of s.check.problems) output.err(`problem: ${problem}`);
    if (problems) output.err(`The archive fails ${problems} of the importer's checks.`);
    else say("The archive passes the importer's checks (see --check).");
    return s.damaged + s.missingAttachments + s.skippedChannels + problems > 0
      ? ExitCode.partial
      : ExitCode.ok;
  } catch (error) {
    progress.stop();
    const reason = controller.signal.aborted ? controller.signal.reason : error;
    if (reason instanceof InterruptedError) {
      output.err(
        `Interrupted by ${reason.signal}: nothing was written; any earlier output is unchanged`,
      );
    }
    throw reason;
  } finally {
    progress.stop();
    uninstall();
  }
}
