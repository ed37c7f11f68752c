/** The one place the version lives; `deno task compile` and `--version` read it. */
export const VERSION = "0.1.0";
