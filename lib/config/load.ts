/** Both config files, read and checked together before anything else happens. */
import { ConfigError } from "../util/errors.ts";
import { type ChannelsConfig, parseChannels } from "./channels.ts";
import {
  type Credentials,
  MFA_OPTION_WARNING,
  parseCredentials,
  type SecretEnv,
  secretWarnings,
} from "./credentials.ts";
import { readConfigFile } from "./json_file.ts";

/** How to make a missing config file; the README's sections have the same titles. */
export const CREATE_CREDENTIALS =
  'create it with "matterbak init"; see "credentials.json" in the README';
export const CREATE_CHANNELS =
  '"matterbak list --json > channels.json" writes one that selects everything (edit it down), ' +
  'or write it by hand; see "channels.json" in the README';

/** credentials.json, checked, with its warnings (unknown keys, how the secret is kept). */
export async function loadCredentials(
  path: string,
  env: SecretEnv,
  mfaCodeOption: string | undefined,
): Promise<{ credentials: Credentials; warnings: string[] }> {
  const text = await readConfigFile(path, "Credentials", CREATE_CREDENTIALS);
  const parsed = parseCredentials(text, path, env, mfaCodeOption);
  const mode = await Deno.stat(path).then((info) => info.mode, () => null);
  return {
    credentials: parsed.value,
    warnings: [
      ...parsed.warnings,
      ...secretWarnings(path, parsed, mode),
      ...(mfaCodeOption ? [MFA_OPTION_WARNING] : []),
    ],
  };
}

/** Both config files; when both are wrong, both are named. */
export async function loadConfig(
  paths: { credentials: string; channels: string },
  env: SecretEnv,
  mfaCodeOption: string | undefined,
): Promise<{ credentials: Credentials; channels: ChannelsConfig; warnings: string[] }> {
  const [credentials, channels] = await Promise.allSettled([
    loadCredentials(paths.credentials, env, mfaCodeOption),
    readConfigFile(paths.channels, "Channels", CREATE_CHANNELS).then((text) =>
      parseChannels(text, paths.channels)
    ),
  ]);
  if (credentials.status === "rejected" && channels.status === "rejected") {
    const both = [credentials.reason, channels.reason];
    if (both.every((e) => e instanceof ConfigError)) {
      throw new ConfigError(both.map((e) => (e as Error).message).join("; and "));
    }
  }
  if (credentials.status === "rejected") throw credentials.reason;
  if (channels.status === "rejected") throw channels.reason;
  return {
    credentials: credentials.value.credentials,
    channels: channels.value.value,
    warnings: [...credentials.value.warnings, ...channels.value.warnings],
  };
}
