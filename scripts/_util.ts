/** What the scripts share: where the repository is, and their own arguments. */
import { fileURLToPath } from "node:url";

/**
 * The repository's folder as a file system path. A file URL's `pathname` is not one: on Windows
 * it is `/D:/a/...`, and a space stays `%20`.
 */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The script's arguments; `deno task NAME -- --flag` passes the `--` along, so it is dropped. */
export function scriptArgs(): string[] {
  return Deno.args[0] === "--" ? Deno.args.slice(1) : [...Deno.args];
}

/** Ends a script on an expected failure: the message alone, no stack trace. */
export function fail(message: string): never {
  // deno-lint-ignore no-console
  console.error(`error: ${message}`);
  Deno.exit(1);
}
