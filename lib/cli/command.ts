/** What every subcommand is to the dispatcher in main.ts. */
import type { Output } from "./progress.ts";

export interface CommandDeps {
  env: (name: string) => string | undefined;
  output: Output;
  fetch?: typeof fetch;
}

export interface Command {
  name: string;
  /** One line for the list of commands. */
  summary: string;
  /** The full text of `matterbak help <name>` and `matterbak <name> --help`. */
  help: string;
  /**
   * Runs with the arguments after the command's name and returns the exit status; an
   * expected failure is thrown, and main.ts turns it into a message and a status.
   */
  run(args: string[], deps: CommandDeps): Promise<number>;
}
