/**
 * The entry of the command line: picks the command (bare options are the backup, as in
 * matterbak), answers help and version, and is the one place where a failure becomes a message
 * and an exit status.
 */
import {
  EXIT_STATUS_HELP,
  ExitCode,
  exitCodeFor,
  ExpectedError,
  InterruptedError,
  UsageError,
} from "../util/errors.ts";
import { VERSION } from "../util/version.ts";
import type { Command, CommandDeps } from "./command.ts";
import { BACKUP_OPTIONS_HELP, backupCommand } from "./commands/backup.ts";
import { verifyCommand } from "./commands/verify.ts";
import { viewCommand } from "./commands/view.ts";
import { initCommand } from "./commands/init.ts";
import { listCommand } from "./commands/list.ts";
import { exportCommand } from "./commands/export.ts";
import { consoleOutput } from "./console.ts";
import type { Output } from "./progress.ts";
import { SecretRegistry } from "../util/secrets.ts";
import { processTerminal } from "./terminal.ts";

export type MainDeps = Omit<CommandDeps, "secrets">;

const COMMANDS: readonly Command[] = [
  backupCommand,
  verifyCommand,
  initCommand,
  listCommand,
  viewCommand,
  exportCommand,
];

export const HELP =
  `matterbak ${VERSION}: a complete copy of the Mattermost conversations you are part of.

USAGE
  matterbak [backup] [options]   back up, or bring the backup up to date
  matterbak init                 write credentials.json (asks for URL, user and token)
  matterbak list [--json]        what you can back up; --json: a channels.json selecting all
  matterbak verify [-d DATA] [--zip FILE] [--sample PERCENT] [--json]
                                 check that the backup is intact (exit 6 when not)
  matterbak view [-d DATA] -o SITE   build the offline website of the backup
  matterbak export FORMAT ...    the backup as Markdown or a Mattermost import archive
  matterbak help [COMMAND]       this help, or a command's (also: matterbak COMMAND --help)
  matterbak -V, --version        print the version

COMMANDS
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}

${BACKUP_OPTIONS_HELP}
${EXIT_STATUS_HELP}
`;

export type Invocation =
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "run"; command: Command; args: string[] };

/** Which command runs with which arguments; help and version win over everything else. */
export function parseInvocation(rawArgs: readonly string[]): Invocation {
  // `deno task backup -- --help` passes the `--` on.
  const args = rawArgs[0] === "--" ? rawArgs.slice(1) : [...rawArgs];
  const [first, ...rest] = args;
  if (first === "help") {
    if (rest.length === 0) return { kind: "help", text: HELP };
    return { kind: "help", text: commandNamed(rest[0] as string).help };
  }
  const named = first !== undefined && !first.startsWith("-") ? commandNamed(first) : undefined;
  const command = named ?? backupCommand;
  const commandArgs = named ? rest : args;
  if (commandArgs.some((a) => a === "--help" || a === "-h")) {
    return { kind: "help", text: named ? command.help : HELP };
  }
  if (commandArgs.some((a) => a === "--version" || a === "-V")) return { kind: "version" };
  return { kind: "run", command, args: commandArgs };
}

function commandNamed(name: string): Command {
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    throw new UsageError(
      `Unknown command '${name}'; the commands are ${COMMANDS.map((c) => c.name).join(", ")}, ` +
        `and options alone run the backup (see --help)`,
    );
  }
  return command;
}

export const defaultMainDeps = (): MainDeps => {
  const terminal = processTerminal();
  return {
    env: (name) => Deno.env.get(name),
    output: consoleOutput(),
    ...(terminal ? { terminal } : {}),
  };
};

/**
 * `output` with every line scrubbed of `secrets` and of control characters: the one way out to
 * the console. Names and messages come from the server; an escape sequence in a team's name
 * must not clear the screen, set the clipboard or rewrite the line a warning is on.
 */
export function scrubbedOutput(output: Output, secrets: SecretRegistry): Output {
  const status = output.status;
  const clean = (line: string) => visibleControls(secrets.scrub(line));
  return {
    out: (line) => output.out(clean(line)),
    err: (line) => output.err(clean(line)),
    ...(status ? { status: (line: string) => status(clean(line)) } : {}),
  };
}

/** Control characters (C0, DEL, C1) but line feed and tab. */
// deno-lint-ignore no-control-regex -- matching them is the point
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * Control characters written as `\uXXXX`: visible on a terminal, and in JSON output the same
 * character still (JSON.stringify writes C0 that way already; C1 and DEL it leaves raw).
 */
export function visibleControls(line: string): string {
  return line.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Runs the command line and returns the exit status. The only place errors become statuses. */
export async function main(args: string[], deps: MainDeps = defaultMainDeps()): Promise<number> {
  // Every line printed, the final error and its stack trace included, passes the scrubber.
  const secrets = new SecretRegistry();
  const output = scrubbedOutput(deps.output, secrets);
  try {
    const invocation = parseInvocation(args);
    switch (invocation.kind) {
      case "help":
        output.out(invocation.text);
        return ExitCode.ok;
      case "version":
        output.out(`matterbak ${VERSION}`);
        return ExitCode.ok;
      case "run":
        return await invocation.command.run(invocation.args, { ...deps, output, secrets });
    }
  } catch (error) {
    // An interruption was already reported by the command, with what it saved.
    if (error instanceof InterruptedError) return error.exitCode;
    if (error instanceof ExpectedError) {
      output.err(`error: ${error.message}`);
    } else {
      output.err(`error: unexpected failure (a bug, please report it):`);
      output.err(error instanceof Error ? error.stack ?? error.message : String(error));
    }
    return exitCodeFor(error);
  }
}
