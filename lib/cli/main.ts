/**
 * The command line: matterbak's options and defaults plus our own, parsed and checked into
 * BackupOptions, and `main`, which runs the backup and maps its outcome to an exit status.
 */
import { parseArgs } from "node:util";
import { type BackupOptions, runBackup } from "../sync/backup.ts";
import type { RunSummary } from "../util/events.ts";
import { writeFileAtomic } from "../store/atomic_write.ts";
import {
  EXIT_STATUS_HELP,
  ExitCode,
  exitCodeFor,
  ExpectedError,
  InterruptedError,
  UsageError,
} from "../util/errors.ts";
import { installInterruptHandlers } from "./interrupt.ts";
import { type Output, Reporter } from "./progress.ts";
import { VERSION } from "../util/version.ts";

export const HELP =
  `matterbak ${VERSION}: back up Mattermost channels with all posts, threads, files,
users and emoji; run it again to bring the backup up to date.

USAGE
  matterbak [options]

OPTIONS (matterbak-compatible)
  --credentials FILE      credentials JSON: user, url, password or token (default: credentials.json)
  --channels FILE         channel selection JSON (default: channels.json)
  -d, --data-dir DIR      where the backup is kept and updated (default: data)
  -o, --output-zip FILE   zip of the data dir, rewritten each run (default: matterbak_<user>.zip)
  --update-old-posts      re-crawl every selected channel in full and repair anything missing
  --skip-direct           skip direct messages
  --skip-groups           skip group messages
  --skip-teams            skip team channels
  --skip-users            store no user records or pictures (implies --skip-user-images)
  --skip-user-images      store no profile pictures
  --skip-emojis           skip custom emoji
  --rate-limit N          at most N requests start in any one second; 0 = no limit (default: 10)
  --initial-jitter S      random sleep of up to S seconds at start (default: 0)
  --step-jitter S         random sleep of up to S seconds between phases (default: 0)
  --version               print the version and exit
  -h, --help              print this help and exit

MORE OPTIONS
  --concurrency N         requests and channels in flight at once (default: 4)
  --retries N             retries of a failed request (default: 5)
  --timeout S             give up on a request after S seconds without data (default: 60)
  --mfa-code CODE         MFA code for a password login (or MATTERBAK_MFA_CODE)
  --quiet                 print only warnings and errors (for cron)
  --report FILE           write the run summary as JSON to FILE

ENVIRONMENT
  MATTERBAK_PASSWORD, MATTERBAK_TOKEN   override the secret in the credentials file
  MATTERBAK_MFA_CODE                    MFA code, like --mfa-code

${EXIT_STATUS_HELP}
`;

export interface CliOptions extends BackupOptions {
  quiet: boolean;
  report: string | undefined;
}

export type ParsedCommand =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "backup"; options: CliOptions };

function number(
  name: string,
  value: string | undefined,
  fallback: number,
  rule: { integer?: boolean; min: number; max?: number },
): number {
  if (value === undefined) return fallback;
  const parsed = Number(value.trim());
  if (value.trim() === "" || !Number.isFinite(parsed)) {
    throw new UsageError(`--${name} needs a number, got ${JSON.stringify(value)}`);
  }
  if (rule.integer && !Number.isInteger(parsed)) {
    throw new UsageError(`--${name} needs a whole number, got ${JSON.stringify(value)}`);
  }
  if (parsed < rule.min || (rule.max !== undefined && parsed > rule.max)) {
    const range = rule.max === undefined
      ? `at least ${rule.min}`
      : `from ${rule.min} to ${rule.max}`;
    throw new UsageError(`--${name} must be ${range}, got ${value}`);
  }
  return parsed;
}

export function parseCommandLine(args: string[]): ParsedCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        credentials: { type: "string" },
        channels: { type: "string" },
        "data-dir": { type: "string", short: "d" },
        "output-zip": { type: "string", short: "o" },
        "update-old-posts": { type: "boolean" },
        "skip-direct": { type: "boolean" },
        "skip-groups": { type: "boolean" },
        "skip-teams": { type: "boolean" },
        "skip-users": { type: "boolean" },
        "skip-user-images": { type: "boolean" },
        "skip-emojis": { type: "boolean" },
        "rate-limit": { type: "string" },
        "initial-jitter": { type: "string" },
        "step-jitter": { type: "string" },
        concurrency: { type: "string" },
        retries: { type: "string" },
        timeout: { type: "string" },
        "mfa-code": { type: "string" },
        quiet: { type: "boolean" },
        report: { type: "string" },
        version: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "")
      .replace(/\s*\n\s*/g, " ");
    throw new UsageError(`${message} (see --help)`);
  }
  const v = parsed.values;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  const path = (name: string, value: string | undefined, fallback: string): string => {
    if (value !== undefined && value.trim() === "") throw new UsageError(`--${name} needs a path`);
    return value ?? fallback;
  };
  const options: CliOptions = {
    credentials: path("credentials", v.credentials, "credentials.json"),
    channels: path("channels", v.channels, "channels.json"),
    dataDir: path("data-dir", v["data-dir"], "data"),
    outputZip: v["output-zip"] === undefined ? undefined : path("output-zip", v["output-zip"], ""),
    updateOldPosts: v["update-old-posts"] ?? false,
    skipDirect: v["skip-direct"] ?? false,
    skipGroups: v["skip-groups"] ?? false,
    skipTeams: v["skip-teams"] ?? false,
    skipUsers: v["skip-users"] ?? false,
    skipUserImages: (v["skip-user-images"] ?? false) || (v["skip-users"] ?? false),
    skipEmojis: v["skip-emojis"] ?? false,
    rateLimit: number("rate-limit", v["rate-limit"], 10, { min: 0 }),
    initialJitter: number("initial-jitter", v["initial-jitter"], 0, { min: 0, max: 86_400 }),
    stepJitter: number("step-jitter", v["step-jitter"], 0, { min: 0, max: 86_400 }),
    concurrency: number("concurrency", v.concurrency, 4, { integer: true, min: 1, max: 64 }),
    retries: number("retries", v.retries, 5, { integer: true, min: 0, max: 100 }),
    timeoutSeconds: number("timeout", v.timeout, 60, { min: 1, max: 86_400 }),
    mfaCode: v["mfa-code"],
    quiet: v.quiet ?? false,
    report: v.report === undefined ? undefined : path("report", v.report, ""),
  };
  if (options.rateLimit < 0) throw new UsageError("--rate-limit must be 0 or more");
  return { kind: "backup", options };
}

export interface MainDeps {
  env: (name: string) => string | undefined;
  output: Output;
  fetch?: typeof fetch;
}

/** Console output; on a terminal the status line is redrawn in place below the log lines. */
function consoleOutput(): Output {
  const encoder = new TextEncoder();
  if (!Deno.stdout.isTerminal()) {
    // deno-lint-ignore no-console
    return { out: (line) => console.log(line), err: (line) => console.error(line) };
  }
  let status = "";
  const write = (text: string) => Deno.stdout.writeSync(encoder.encode(text));
  const above = (print: () => void) => {
    if (status) write("\r\x1b[2K");
    print();
    if (status) write(status);
  };
  return {
    // deno-lint-ignore no-console
    out: (line) => above(() => console.log(line)),
    // deno-lint-ignore no-console
    err: (line) => above(() => console.error(line)),
    status: (line) => {
      const width = Deno.consoleSize().columns - 1;
      status = line.length > width ? line.slice(0, width) : line;
      write(`\r\x1b[2K${status}`);
    },
  };
}

export const defaultMainDeps = (): MainDeps => ({
  env: (name) => Deno.env.get(name),
  output: consoleOutput(),
});

/** Runs the command line and returns the exit status. The only place errors become statuses. */
export async function main(args: string[], deps: MainDeps = defaultMainDeps()): Promise<number> {
  const { output } = deps;
  let command: ParsedCommand;
  try {
    command = parseCommandLine(args);
  } catch (error) {
    output.err(`error: ${(error as Error).message}`);
    return exitCodeFor(error);
  }
  if (command.kind === "help") {
    output.out(HELP);
    return ExitCode.ok;
  }
  if (command.kind === "version") {
    output.out(`matterbak ${VERSION}`);
    return ExitCode.ok;
  }
  const { options } = command;
  const reporter = new Reporter(output, options.quiet);
  const controller = new AbortController();
  const uninstall = installInterruptHandlers(controller, (message) => output.err(message));
  let summary: RunSummary | undefined;
  let status: number;
  try {
    summary = await runBackup(options, {
      env: {
        MATTERBAK_PASSWORD: deps.env("MATTERBAK_PASSWORD"),
        MATTERBAK_TOKEN: deps.env("MATTERBAK_TOKEN"),
        MATTERBAK_MFA_CODE: deps.env("MATTERBAK_MFA_CODE"),
      },
      emit: reporter.listener,
      signal: controller.signal,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
    reporter.summary(summary);
    status = summary.failures.length + summary.unmatched.length > 0
      ? ExitCode.partial
      : ExitCode.ok;
  } catch (error) {
    const reason = controller.signal.aborted ? controller.signal.reason : error;
    if (reason instanceof InterruptedError) {
      reporter.interrupted(reason.signal);
    } else if (reason instanceof ExpectedError) {
      output.err(`error: ${reason.message}`);
    } else {
      output.err(`error: unexpected failure (a bug, please report it):`);
      output.err(reason instanceof Error ? reason.stack ?? reason.message : String(reason));
    }
    status = exitCodeFor(reason);
  } finally {
    reporter.stop();
    uninstall();
  }
  if (options.report) await writeReport(options.report, status, summary, reporter, output);
  return status;
}

async function writeReport(
  path: string,
  status: number,
  summary: RunSummary | undefined,
  reporter: Reporter,
  output: Output,
): Promise<void> {
  const report = {
    version: VERSION,
    exitStatus: status,
    finishedAt: new Date().toISOString(),
    ...(summary ??
      { counts: reporter.saved, failures: reporter.failures, channelsDone: reporter.channelsDone }),
  };
  try {
    await writeFileAtomic(path, JSON.stringify(report, null, 2) + "\n");
  } catch (error) {
    output.err(`error: cannot write the report ${path}: ${(error as Error).message}`);
  }
}
