/**
 * The permissions and V8 flags the tool runs with: baked into the standalone binaries
 * (`deno task compile`), used by `deno task backup`, and by the tests that run the CLI as a
 * process, so what is tested is what ships.
 *
 * - net: the Mattermost server (its host is only known from credentials.json at run time).
 * - read/write: the config files, the data dir and the zip, wherever the user puts them.
 * - env: only the three variables that may carry secrets.
 * - A 1 MB V8 semi-space: the live heap is small; a larger young generation only grows RSS.
 */
export const ENV_VARIABLES = [
  "MATTERBAK_PASSWORD",
  "MATTERBAK_TOKEN",
  "MATTERBAK_MFA_CODE",
] as const;

export const RUNTIME_FLAGS: readonly string[] = [
  "--v8-flags=--max-semi-space-size=1",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  `--allow-env=${ENV_VARIABLES.join(",")}`,
];
