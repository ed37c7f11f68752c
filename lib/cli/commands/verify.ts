/** `matterbak verify [-d DATA] [--zip FILE] [--sample PERCENT] [--json]` (lib/verify/verify.ts). */
import { parseArgs } from "node:util";
import { EXIT_STATUS_HELP, ExitCode, UsageError } from "../../util/errors.ts";
import { VERSION } from "../../util/version.ts";
import { verifyBackup, type VerifyProgress, type VerifyReport } from "../../verify/verify.ts";
import type { Command, CommandDeps } from "../command.ts";
import { installInterruptHandlers } from "../interrupt.ts";
import type { Output } from "../progress.ts";
import { formatBytes } from "../../util/format.ts";
import { numberOption } from "./backup.ts";

export const VERIFY_HELP =
  `matterbak ${VERSION} verify: check that the backup is intact, and name what is not.

Cheapest checks first: the files against the manifest of the backup (.matterbak/manifest.sha256,
which every backup run keeps): missing, unexpected and leftover temporary files; then every file
read through: its size and SHA-256, the shape of every post, record and state file, attachments
of posts, threads and authors; then, with --zip, the zip. What is damaged or missing is recorded
in .matterbak/repair.json, and the next plain backup run fetches exactly those items again.

USAGE
  matterbak verify [-d DATA] [--zip FILE] [--sample PERCENT] [--json]

OPTIONS
  -d, --data-dir DIR      the backup to check (default: data)
  --zip FILE              also check the zip: every entry's CRC-32, and every file of the
                          manifest in it with the same content (a zip older than the latest run
                          is reported as stale, not damaged)
  --sample PERCENT        read the content of a random PERCENT % of the files (the others: their
                          presence and size); 0 to 100, default 100
  --json                  print the findings and the summary as one JSON object (monitoring)
  -h, --help              print this help and exit

The data dir's lock is taken (a backup running meanwhile would look like damage): while a
backup runs, verify exits with 7. A data dir that cannot be locked (read-only) is checked
without it, and nothing is recorded.

${EXIT_STATUS_HELP}
`;

export interface VerifyCliOptions {
  dataDir: string;
  zip: string | undefined;
  sample: number;
  json: boolean;
}

export function parseVerifyArgs(args: string[]): VerifyCliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        "data-dir": { type: "string", short: "d" },
        zip: { type: "string" },
        sample: { type: "string" },
        json: { type: "boolean" },
      },
    });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "")
      .replace(/\s*\n\s*/g, " ");
    throw new UsageError(`${message} (see matterbak verify --help)`);
  }
  const v = parsed.values;
  for (const name of ["data-dir", "zip"] as const) {
    if (v[name] !== undefined && v[name].trim() === "") {
      throw new UsageError(`--${name} needs a path`);
    }
  }
  return {
    dataDir: v["data-dir"] ?? "data",
    zip: v.zip,
    sample: numberOption("sample", v.sample, 100, { min: 0, max: 100 }),
    json: v.json ?? false,
  };
}

/** How often the progress line is redrawn. */
const PROGRESS_MS = 250;

export async function runVerify(options: VerifyCliOptions, output: Output): Promise<VerifyReport> {
  const controller = new AbortController();
  const status = options.json ? undefined : output.status;
  const uninstall = installInterruptHandlers(controller, {
    notify: (message) => output.err(message),
    beforeExit: () => status?.(""),
  });
  let drawn = 0;
  try {
    const report = await verifyBackup({
      dataDir: options.dataDir,
      zip: options.zip,
      sample: options.sample,
      signal: controller.signal,
      ...(status
        ? {
          progress: (progress) => {
            const now = performance.now();
            if (now - drawn < PROGRESS_MS) return;
            drawn = now;
            status(progressLine(progress));
          },
        }
        : {}),
    });
    status?.("");
    if (options.json) {
      output.out(JSON.stringify({ version: VERSION, exitStatus: exitStatusOf(report), ...report }));
    } else {
      printReport(report, options, output);
    }
    return report;
  } catch (error) {
    status?.("");
    throw controller.signal.aborted ? controller.signal.reason : error;
  } finally {
    uninstall();
  }
}

/** The status line: what verify is doing, and while reading, how far it is. */
export function progressLine({ phase, files, bytes, total }: VerifyProgress): string {
  const count = files.toLocaleString("en-US");
  if (phase === "listing") return `verify: listing the data dir, ${count} files so far`;
  if (phase === "zip") return `verify: reading the zip, ${count} entries, ${formatBytes(bytes)}`;
  if (!total) return `verify: reading ${count} files, ${formatBytes(bytes)}`;
  const share = Math.floor((files / total) * 100);
  return `verify: reading ${count} of ${total.toLocaleString("en-US")} files (${share} %), ` +
    formatBytes(bytes);
}

export function exitStatusOf(report: VerifyReport): number {
  return report.counts.damaged + report.counts.missing > 0 ? ExitCode.damaged : ExitCode.ok;
}

function printReport(report: VerifyReport, options: VerifyCliOptions, output: Output): void {
  for (const finding of report.findings) {
    output.out(`${finding.kind}: ${finding.path}: ${finding.reason}`);
  }
  const { counts } = report;
  const number = (n: number) => n.toLocaleString("en-US");
  output.out(
    `${number(report.files)} files, ${formatBytes(report.bytesRead)} checked in ${
      report.seconds.toFixed(1)
    } s: ${number(counts.damaged)} damaged, ${number(counts.missing)} missing, ${
      number(counts.unexpected)
    } unexpected` +
      (counts.warning ? `, ${number(counts.warning)} warning(s)` : "") +
      (options.sample < 100 ? ` (--sample ${options.sample}: the content of a random share)` : ""),
  );
  if (report.zip) {
    output.out(
      `Zip ${report.zip.path}: ${number(report.zip.entries)} entries read through` +
        (report.zip.stale ? `, stale (${number(report.zip.stale)} file(s) newer)` : ""),
    );
  }
  if (report.repair?.items) {
    output.out(
      `The next backup run repairs ${number(report.repair.items)} item(s) (recorded in ` +
        `${report.repair.file})`,
    );
  }
}

export const verifyCommand: Command = {
  name: "verify",
  summary: "check that the backup is intact (exit 6 when damaged); the next run repairs it",
  help: VERIFY_HELP,
  async run(args: string[], deps: CommandDeps): Promise<number> {
    const options = parseVerifyArgs(args);
    return exitStatusOf(await runVerify(options, deps.output));
  },
};
