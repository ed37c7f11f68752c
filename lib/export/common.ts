/**
 * What both exports share: the events they report while they run (the command turns them
 * into a status line and messages), opening the backup, the people and the channel names.
 */
import { resolve } from "node:path";
import type { User } from "../model/records.ts";
import { DataDir } from "../store/data_dir.ts";
import { DIRS } from "../store/layout.ts";
import { checkLocation } from "../store/placement.ts";
import { outputFailure } from "../store/atomic_write.ts";
import { BackupReader, type ChannelEntry, type Damage } from "../store/reader.ts";
import { StorageError } from "../util/errors.ts";

export type ExportEvent =
  /** A channel is started (1-based `index` of `total`). */
  | { type: "channel"; label: string; index: number; total: number }
  /** Running totals, after each thread. */
  | { type: "progress"; posts: number; files: number }
  | { type: "warning"; message: string };

export type ExportSink = (event: ExportEvent) => void;

/** A damaged file of the backup as a warning: it is skipped, the export goes on. */
export function damageWarning(damage: Damage): string {
  return `skipped ${damage.path.join("/")}: ${damage.reason}`;
}

/** Every backed-up user by id; damaged user files are reported and skipped. */
export async function loadUsers(
  reader: BackupReader,
  emit: ExportSink,
): Promise<Map<string, User>> {
  const users = new Map<string, User>();
  for await (const entry of reader.users()) {
    for (const damage of entry.damage) emit({ type: "warning", message: damageWarning(damage) });
    if (entry.record) users.set(entry.id, entry.record);
  }
  return users;
}

/** "First Last", else the nickname, else "". */
export function fullName(user: User | undefined): string {
  if (!user) return "";
  const name = [user.first_name, user.last_name]
    .filter((part) => typeof part === "string" && part.trim() !== "")
    .join(" ");
  return name || (typeof user.nickname === "string" ? user.nickname : "");
}

/** The name people know a channel by: its display name, name, or the usernames it is with. */
export function channelTitle(channel: ChannelEntry): string {
  if (channel.kind === "direct") return `@${channel.label.join("__")}`;
  if (channel.kind === "groups") return channel.label.map((name) => `@${name}`).join(", ");
  return channel.record?.display_name || channel.record?.name || channel.label.join("__");
}

/** The names `--channel NAME` can use for a channel (compared without regard to case). */
function channelNames(channel: ChannelEntry): string[] {
  const names = [channelTitle(channel), channel.label.join("__"), channel.label.join(", ")];
  if (channel.record) names.push(channel.record.name, channel.record.display_name);
  return names.map((name) => name.toLowerCase());
}

/** The channels matching any of `names` (all for none), and the names that matched nothing. */
export function pickChannels(
  channels: ChannelEntry[],
  names: readonly string[],
): { picked: ChannelEntry[]; unmatched: string[] } {
  if (names.length === 0) return { picked: channels, unmatched: [] };
  const wanted = names.map((name) => name.replace(/^@/, "").toLowerCase());
  const matched = new Set<string>();
  const picked = channels.filter((channel) => {
    const own = channelNames(channel).map((name) => name.replace(/^@/, ""));
    const hits = wanted.filter((name) => own.includes(name));
    hits.forEach((name) => matched.add(name));
    return hits.length > 0;
  });
  return { picked, unmatched: names.filter((_, i) => !matched.has(wanted[i] as string)) };
}

/** A reader over the backup in `dataDir`, after checking that there is one. */
export async function openBackup(dataDir: string): Promise<BackupReader> {
  const root = resolve(dataDir);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new StorageError(`No backup at ${root}: the folder does not exist (see --data-dir)`);
    }
    throw error;
  }
  if (!info.isDirectory) throw new StorageError(`${root} is not a folder (see --data-dir)`);
  const reader = new BackupReader(new DataDir(root));
  for (const dir of [DIRS.teams, DIRS.direct, DIRS.groups]) {
    if (await reader.dataDir.exists([dir])) return reader;
  }
  throw new StorageError(
    `No backup in ${root}: it has no teams/, direct/ or groups/ folder (see --data-dir)`,
  );
}

/**
 * The output may not lie inside the data dir (the next backup would zip it) nor contain it,
 * also not through a symbolic link or a bind mount.
 */
export function checkOutputPlace(output: string, dataDir: string): Promise<void> {
  // A path that cannot be followed (a file on the way, a place Deno refuses) cannot be written.
  return checkLocation(dataDir, output, "output").catch((error) => {
    throw outputFailure(error, output);
  });
}
