/**
 * `matterbak [backup] [options]`: matterbak's options and defaults plus our own, parsed and
 * checked into BackupOptions, then one backup run with its progress, summary and report.
 */
import { DEFAULT_CONNECTION } from "../../api/session.ts";
import { type BackupOptions, runBackup } from "../../sync/backup.ts";
import { FailureLog } from "../../sync/failures.ts";
import type { RunSummary } from "../../util/events.ts";
import { dirname, resolve } from "node:path";
import { checkWritableFolder, writeFileAtomic } from "../../store/atomic_write.ts";
import {
  EXIT_STATUS_HELP,
  ExitCode,
  exitCodeFor,
  InterruptedError,
  UsageError,
} from "../../util/errors.ts";
import { parseOptions } from "../args.ts";
import { installInterruptHandlers } from "../interrupt.ts";
import { type Output, Reporter } from "../progress.ts";
import { type Command, type CommandDeps, secretEnv } from "../command.ts";
import { VERSION } from "../../util/version.ts";
import { checkSiteLocation, checkSitePlacement } from "../../view/site.ts";
import { runView } from "./view.ts";
import type { SecretRegistry } from "../../util/secrets.ts";

/** The backup's options: also the body of the top-level help, since options alone back up. */
export const BACKUP_OPTIONS_HELP = `OPTIONS (matterbak-compatible)
  --credentials FILE      credentials JSON: user, url, password or token (default: credentials.json)
  --channels FILE         channel selection JSON (default: channels.json)
  -d, --data-dir DIR      where the backup is kept and updated (default: data)
  -o, --output-zip FILE   zip of the data dir, updated each run (default: matterbak_<user>.zip)
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
  -h, --help              print this help and exit

MORE OPTIONS
  --concurrency N         requests and channels in flight at once (default: 4)
  --retries N             retries of a failed request (default: 5)
  --timeout S             a JSON answer must arrive whole in S seconds, a download bring
                          10 kB/s over every S seconds (default: 60)
  --mfa-code CODE         MFA code for a password login; others see it in ps: use MATTERBAK_MFA_CODE
  --quiet                 print only warnings and errors (for cron)
  --report FILE           write the run summary as JSON to FILE
  --view SITE             then build or refresh the offline website in SITE (see matterbak view)

ENVIRONMENT
  MATTERBAK_PASSWORD, MATTERBAK_TOKEN   override the secret in the credentials file
  MATTERBAK_MFA_CODE                    MFA code, like --mfa-code
`;

export const BACKUP_HELP =
  `matterbak ${VERSION} backup: back up Mattermost channels with all posts, threads, files,
users and emoji; run it again to bring the backup up to date.

USAGE
  matterbak [backup] [options]   (options alone mean the backup, as in matterbak)

${BACKUP_OPTIONS_HELP}
${EXIT_STATUS_HELP}
`;

export interface CliOptions extends BackupOptions {
  quiet: boolean;
  report: string | undefined;
  view: string | undefined;
}

/** A number option's value, checked against `rule`; `fallback` when the option is absent. */
export function numberOption(
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
      ? `${rule.min} or more`
      : `from ${rule.min} to ${rule.max}`;
    throw new UsageError(`--${name} must be ${range}, got ${value}`);
  }
  return parsed;
}

const BACKUP_OPTIONS = {
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
  view: { type: "string" },
} as const;

/** The backup's options, checked; `--help` is handled before this by the dispatcher. */
export function parseBackupArgs(args: string[]): CliOptions {
  const v = parseOptions(args, BACKUP_OPTIONS).values;
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
    rateLimit: numberOption("rate-limit", v["rate-limit"], DEFAULT_CONNECTION.rateLimit, {
      min: 0,
    }),
    initialJitter: numberOption("initial-jitter", v["initial-jitter"], 0, { min: 0, max: 86_400 }),
    stepJitter: numberOption("step-jitter", v["step-jitter"], 0, { min: 0, max: 86_400 }),
    concurrency: numberOption("concurrency", v.concurrency, DEFAULT_CONNECTION.concurrency, {
      integer: true,
      min: 1,
      max: 64,
    }),
    retries: numberOption("retries", v.retries, DEFAULT_CONNECTION.retries, {
      integer: true,
      min: 0,
      max: 100,
    }),
    timeoutSeconds: numberOption("timeout", v.timeout, DEFAULT_CONNECTION.timeoutSeconds, {
      min: 1,
      max: 86_400,
    }),
    mfaCode: v["mfa-code"],
    quiet: v.quiet ?? false,
    report: v.report === undefined ? undefined : path("report", v.report, ""),
    view: v.view === undefined ? undefined : path("view", v.view, ""),
  };
  // Before the run, not after hours of it.
  if (options.view !== undefined) checkSitePlacement(options.dataDir, options.view);
  return options;
}

export const backupCommand: Command = {
  name: "backup",
  summary: "back up, or bring the backup up to date (the default command)",
  help: BACKUP_HELP,
  run: runBackupCommand,
};

async function runBackupCommand(args: string[], deps: CommandDeps): Promise<number> {
  const { output } = deps;
  const options = parseBackupArgs(args);
  if (options.view !== undefined) await checkSiteLocation(options.dataDir, options.view);
  // A report that cannot be written is found before the backup, not after it.
  if (options.report) {
    await checkWritableFolder(dirname(resolve(options.report)), `--report ${options.report}`);
  }
  const reporter = new Reporter(output, { quiet: options.quiet });
  const controller = new AbortController();
  const uninstall = installInterruptHandlers(controller, {
    notify: (message) => output.err(message),
    beforeExit: () => reporter.stop(),
    signals: deps.signals,
  });
  let summary: RunSummary | undefined;
  let status: number = ExitCode.unexpected;
  const failures = new FailureLog(reporter.listener, controller.signal);
  let failure: { reason: unknown } | undefined;
  try {
    summary = await runBackup(options, {
      failures,
      env: secretEnv(deps),
      emit: reporter.listener,
      signal: controller.signal,
      secrets: deps.secrets,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
      ...(deps.fsRecorder ? { fsRecorder: deps.fsRecorder } : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
    });
    reporter.summary(summary);
    status = summary.failures.length + summary.unmatched.length > 0
      ? ExitCode.partial
      : ExitCode.ok;
    if (summary.zipFailed !== undefined) {
      output.err(
        `error: ${summary.zipFailed}; the backup in ${options.dataDir} is complete, only its ` +
          `zip was not written (an earlier zip is left as it was)`,
      );
      // As for the report: a run that succeeded did not do all it was asked (status 2).
      if (status === ExitCode.ok) status = ExitCode.usage;
    }
    if (options.view !== undefined) {
      const view = await runView(
        { dataDir: options.dataDir, siteDir: options.view },
        output,
        options.quiet,
      );
      if (view.damaged.length) status = ExitCode.partial;
    }
  } catch (error) {
    const reason = controller.signal.aborted ? controller.signal.reason : error;
    if (reason instanceof InterruptedError) reporter.interrupted(reason.signal);
    status = exitCodeFor(reason);
    failure = { reason };
  } finally {
    reporter.stop();
    uninstall();
  }
  const reported = !options.report ||
    await writeReport(options.report, status, summary, reporter, failures, output, deps.secrets);
  // Monitoring reads the report: a run that could not write it did not succeed (status 2).
  if (!reported && status === ExitCode.ok) status = ExitCode.usage;
  if (failure) throw failure.reason;
  return status;
}

/** Writes the report; false (with a message) when it could not be written. */
async function writeReport(
  path: string,
  status: number,
  summary: RunSummary | undefined,
  reporter: Reporter,
  failures: FailureLog,
  output: Output,
  secrets: SecretRegistry,
): Promise<boolean> {
  // Failure messages quote the server, which may echo a secret: the file is scrubbed like output.
  const report = secrets.scrubValue({
    version: VERSION,
    exitStatus: status,
    finishedAt: new Date().toISOString(),
    ...(summary ??
      { counts: reporter.saved, failures: failures.items, channelsDone: reporter.channelsDone }),
  });
  try {
    await writeFileAtomic(path, JSON.stringify(report, null, 2) + "\n");
    return true;
  } catch (error) {
    output.err(`error: cannot write the report ${path}: ${(error as Error).message}`);
    return false;
  }
}
