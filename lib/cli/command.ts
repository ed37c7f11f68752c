/** What every subcommand is to the dispatcher in main.ts. */
import type { SecretEnv } from "../config/credentials.ts";
import type { Output } from "./progress.ts";
import type { SecretRegistry } from "../util/secrets.ts";
import type { Terminal } from "./terminal.ts";
import type { SignalSource } from "./interrupt.ts";
import type { FsRecorder } from "../store/atomic_write.ts";
import type { Clock } from "../util/clock.ts";

export interface CommandDeps {
  env: (name: string) => string | undefined;
  /** Scrubbed of `secrets` (main.ts wraps the console in it). */
  output: Output;
  /**
   * The run's secrets, registered by whoever holds them; every line of `output` and every
   * file a command writes about the run (the report) is scrubbed of them.
   */
  secrets: SecretRegistry;
  fetch?: typeof fetch;
  /** Where the backup's Ctrl+C and SIGTERM come from: the process's unless a test sends them. */
  signals?: SignalSource;
  /**
   * Sees every step of every write to the backup's data dir, and the steps that make the zip
   * and an export durable (tests: to stop a run there, to check the order).
   */
  fsRecorder?: FsRecorder;
  /** The backup's clock: the system's unless a test sets the time. */
  clock?: Clock;
  /** Where questions are asked; absent when stdin is no terminal. */
  terminal?: Terminal;
}

/** The environment variables that may carry secrets (the only ones the binary may read). */
export function secretEnv(deps: CommandDeps): SecretEnv {
  return {
    MATTERBAK_PASSWORD: deps.env("MATTERBAK_PASSWORD"),
    MATTERBAK_TOKEN: deps.env("MATTERBAK_TOKEN"),
    MATTERBAK_MFA_CODE: deps.env("MATTERBAK_MFA_CODE"),
  };
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
