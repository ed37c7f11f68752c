/** `matterbak view [-d DATA] -o SITE`: the offline website of a backup (lib/view/site.ts). */
import { buildSite, type ViewSummary } from "../../view/site.ts";
import { EXIT_STATUS_HELP, ExitCode, UsageError } from "../../util/errors.ts";
import { parseOptions } from "../args.ts";
import { VERSION } from "../../util/version.ts";
import type { Command, CommandDeps } from "../command.ts";
import type { Output } from "../progress.ts";

export const VIEW_HELP =
  `matterbak ${VERSION} view: build an offline website of the backup that anyone can open
(SITE/index.html, by double-click), read without JavaScript and search. Run it again after a
backup (or use backup --view SITE): only channels that changed are read and written again.

USAGE
  matterbak view [-d DATA] -o SITE

OPTIONS
  -d, --data-dir DIR      the backup to show (default: data)
  -o, --output DIR        the site folder: new, empty, or a site built before (default: site)
  --full                  rebuild every page, even those whose inputs look unchanged
  --time-zone ZONE        IANA time zone of the times in the pages (default: this machine's;
                          with JavaScript the reader's own zone is shown)
  --quiet                 print only warnings and errors
  -h, --help              print this help and exit

${EXIT_STATUS_HELP}
`;

export interface ViewCliOptions {
  dataDir: string;
  siteDir: string;
  full: boolean;
  timeZone: string | undefined;
  quiet: boolean;
}

const VIEW_OPTIONS = {
  "data-dir": { type: "string", short: "d" },
  output: { type: "string", short: "o" },
  full: { type: "boolean" },
  "time-zone": { type: "string" },
  quiet: { type: "boolean" },
} as const;

export function parseViewArgs(args: string[]): ViewCliOptions {
  const v = parseOptions(args, VIEW_OPTIONS, "matterbak view --help").values;
  for (const name of ["data-dir", "output", "time-zone"] as const) {
    if (v[name] !== undefined && v[name].trim() === "") {
      throw new UsageError(`--${name} needs a value`);
    }
  }
  const timeZone = v["time-zone"];
  if (timeZone !== undefined) checkTimeZone(timeZone);
  return {
    dataDir: v["data-dir"] ?? "data",
    siteDir: v.output ?? "site",
    full: v.full ?? false,
    timeZone,
    quiet: v.quiet ?? false,
  };
}

export function checkTimeZone(zone: string): void {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
  } catch {
    throw new UsageError(
      `--time-zone ${JSON.stringify(zone)} is not an IANA time zone (e.g. Europe/Berlin)`,
    );
  }
}

/** Builds the site and prints what was done; warnings for files of the backup that are damaged. */
export async function runView(
  options: { dataDir: string; siteDir: string; full?: boolean; timeZone?: string | undefined },
  output: Output,
  quiet: boolean,
): Promise<ViewSummary> {
  const summary = await buildSite({
    dataDir: options.dataDir,
    siteDir: options.siteDir,
    ...(options.full ? { full: true } : {}),
    ...(options.timeZone ? { timeZone: options.timeZone } : {}),
    ...(quiet ? {} : { log: (line: string) => output.out(line) }),
  });
  for (const d of summary.damaged) {
    output.err(`warning: left out of the site: ${d.path.join("/")}: ${d.reason}`);
  }
  if (!quiet) {
    output.out(
      `Site ${options.siteDir}: ${summary.channels} channels (${summary.rebuilt} rebuilt), ` +
        `${summary.posts} posts (${summary.postsRead} read), ${summary.pagesWritten} pages and ${summary.threadsWritten} ` +
        `threads written, ${summary.filesPlaced} files placed, in ${
          summary.seconds.toFixed(1)
        } s. ` +
        `Open ${options.siteDir}/index.html.`,
    );
  }
  return summary;
}

export const viewCommand: Command = {
  name: "view",
  summary: "build or refresh an offline, searchable website of the backup",
  help: VIEW_HELP,
  async run(args: string[], deps: CommandDeps): Promise<number> {
    const options = parseViewArgs(args);
    const summary = await runView(options, deps.output, options.quiet);
    return summary.damaged.length ? ExitCode.partial : ExitCode.ok;
  },
};
