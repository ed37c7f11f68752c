/**
 * The permissions and V8 flags the tool runs with: baked into the standalone binaries
 * (`deno task compile`), used by `deno task backup`, and by the tests that run the CLI as a
 * process, so what is tested is what ships.
 *
 * - net: the Mattermost server (its host is only known from credentials.json at run time).
 * - read/write: the config files, the data dir and the zip, wherever the user puts them.
 * - env: only the three variables that may carry secrets.
 * - no prompt: a permission the code did not expect fails at once with an error naming it, in
 *   a cron run and at a terminal alike, instead of stopping to ask.
 * - V8's optimize-for-size mode: the live heap stays small, but by default V8 lets garbage grow
 *   the heap to several times that before collecting it (peak RSS 140 MB instead of 87 MB when
 *   zipping 195,000 posts, measured; no measurable slowdown).
 */
export const ENV_VARIABLES = [
  "MATTERBAK_PASSWORD",
  "MATTERBAK_TOKEN",
  "MATTERBAK_MFA_CODE",
] as const;

export const RUNTIME_FLAGS: readonly string[] = [
  "--v8-flags=--optimize-for-size",
  "--no-prompt",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  `--allow-env=${ENV_VARIABLES.join(",")}`,
];
