/**
 * Teams, users and custom emoji: their records, member lists and images. Images are fetched
 * only when new or changed (the server's `last_*_update` fields say so), written before the
 * record that describes them so a crash never leaves a record claiming a missing image.
 */
import type { FailureLog } from "./failures.ts";
import { findBase, indexBases } from "../store/state.ts";
import type { DataDir, RelPath } from "../store/data_dir.ts";
import type { EventSink } from "../util/events.ts";
import {
  DIRS,
  ICON_SUFFIX,
  idBase,
  IMAGE_SUFFIX,
  imageExtension,
  isImageOf,
  JSON_EXT,
  MEMBERS_SUFFIX,
} from "../store/layout.ts";
import type { ImageWriter, MattermostApi } from "../api/mattermost.ts";
import type { Member, Team, User } from "../model/records.ts";
import { mapPooled } from "../util/semaphore.ts";
import { sinceFor } from "./sync_plan.ts";

export interface RecordsContext {
  api: MattermostApi;
  dataDir: DataDir;
  concurrency: number;
  signal?: AbortSignal;
  emit: EventSink;
  failures: FailureLog;
}

/** Image files `<imageBase>.<ext>` present in `parent`. */
export async function existingImages(
  dataDir: DataDir,
  parent: RelPath,
  imageBase: string,
): Promise<string[]> {
  return (await dataDir.list(parent)).filter((e) => e.isFile && isImageOf(imageBase, e.name))
    .map((e) => e.name);
}

/**
 * Streams an image that `download` fetches into `<imageBase>.<ext>` (the extension from its
 * Content-Type), then removes the same image under another extension.
 */
export async function saveImage(
  ctx: RecordsContext,
  parent: RelPath,
  imageBase: string,
  download: (write: ImageWriter<string>) => Promise<string>,
): Promise<void> {
  const { dataDir, signal } = ctx;
  const name = await download(async (body, contentType) => {
    const name = `${imageBase}.${imageExtension(contentType)}`;
    await dataDir.writeStream([...parent, name], body, undefined, signal);
    return name;
  });
  for (const old of await existingImages(dataDir, parent, imageBase)) {
    if (old !== name) await dataDir.remove([...parent, old]);
  }
}

/** A team's record, members and icon; returns the team folder base and its member ids. */
export async function backupTeam(
  ctx: RecordsContext,
  team: Team,
): Promise<{ base: string; memberIds: string[] }> {
  const { api, dataDir } = ctx;
  const parent: RelPath = [DIRS.teams];
  await dataDir.ensureDir(parent);
  // A name such as `icon.png` (no server allows it; a hostile one may send it) would make the
  // team's folder the name of its icon.
  const iconBase = `${team.id}${ICON_SUFFIX}`;
  const name = isImageOf(iconBase, idBase(team.id, team.name)) ? `${team.name}_` : team.name;
  const base = await findBase(dataDir, parent, team.id, name);
  const members: Member[] = await api.teamMembers(team.id, team.name);
  const iconUpdate = team.last_team_icon_update ?? 0;
  if (iconUpdate > 0) {
    const stored = await dataDir.readJson<Team>([...parent, `${base}${JSON_EXT}`]);
    const present = (await existingImages(dataDir, parent, iconBase)).length > 0;
    if (!present || stored?.last_team_icon_update !== iconUpdate) {
      try {
        await saveImage(ctx, parent, iconBase, (write) => api.teamIcon(team.id, team.name, write));
      } catch (error) {
        ctx.failures.record(`icon of team ${team.name}`, error);
        // Keep the stored record so the icon is tried again next run.
        return { base, memberIds: members.map((m) => m.user_id) };
      }
    }
  }
  await dataDir.writeJson([...parent, `${base}${JSON_EXT}`], team);
  await dataDir.writeJson([...parent, `${base}${MEMBERS_SUFFIX}`], members);
  return { base, memberIds: members.map((m) => m.user_id) };
}

export interface UsersResult {
  written: number;
  pictures: number;
  /** New users watermark (highest `update_at` seen). */
  watermark: number;
}

/**
 * Stores the records of `neededIds` and of every user already in the backup. Users already
 * fetched this run are reused; new ids are fetched whole, known ones only if they changed
 * since `watermark`.
 */
export async function backupUsers(
  ctx: RecordsContext,
  neededIds: ReadonlySet<string>,
  fetched: ReadonlyMap<string, User>,
  watermark: number,
  options: { skipImages: boolean },
): Promise<UsersResult> {
  const { api, dataDir } = ctx;
  const parent: RelPath = [DIRS.users];
  await dataDir.ensureDir(parent);
  const bases = await indexBases(dataDir, parent);
  const newIds = [...neededIds].filter((id) => !bases.has(id) && !fetched.has(id));
  const knownIds = [...bases.keys()].filter((id) => !fetched.has(id));
  // Users fetched only to name DMs and GMs are stored only if the backup refers to them.
  const users = new Map([...fetched].filter(([id]) => neededIds.has(id) || bases.has(id)));
  for (const user of await api.usersByIds(newIds)) users.set(user.id, user);
  if (knownIds.length > 0) {
    // With the posts' overlap: a rename committed late carries an older update_at.
    const since = watermark > 0 ? sinceFor(watermark) : watermark;
    for (const user of await api.usersByIds(knownIds, since)) users.set(user.id, user);
  }
  const missing = newIds.filter((id) => !users.has(id));
  if (missing.length > 0) {
    ctx.emit({
      type: "warning",
      message: `${missing.length} user(s) not visible on the server: ${
        missing.slice(0, 5).join(", ")
      }${missing.length > 5 ? ", ..." : ""}`,
    });
  }
  const result: UsersResult = { written: 0, pictures: 0, watermark };
  let incomplete = false;
  await mapPooled([...users.values()], ctx.concurrency, async (user) => {
    const base = bases.get(user.id) ?? idBase(user.id, user.username);
    const record = [...parent, `${base}${JSON_EXT}`];
    const pictureUpdate = user.last_picture_update ?? 0;
    if (!options.skipImages && pictureUpdate > 0) {
      const stored = await dataDir.readJson<User>(record);
      const present = (await existingImages(dataDir, parent, `${base}${IMAGE_SUFFIX}`)).length > 0;
      if (!present || stored?.last_picture_update !== pictureUpdate) {
        try {
          await saveImage(
            ctx,
            parent,
            `${base}${IMAGE_SUFFIX}`,
            (write) => api.userImage(user.id, user.username, write),
          );
          result.pictures++;
        } catch (error) {
          ctx.failures.record(`picture of user ${user.username}`, error);
          incomplete = true;
          return;
        }
      }
    }
    if (await dataDir.writeJson(record, user)) result.written++;
  });
  // Only advance past users that were actually stored; a failed picture is retried next run.
  if (!incomplete) {
    for (const user of users.values()) {
      result.watermark = Math.max(result.watermark, user.update_at);
    }
  }
  return result;
}

/** Every custom emoji record, and the image of each emoji not yet stored. */
export async function backupEmojis(
  ctx: RecordsContext,
): Promise<{ total: number; images: number } | undefined> {
  const { api, dataDir } = ctx;
  const emojis = await api.emojis();
  if (emojis === undefined) return undefined;
  const parent: RelPath = [DIRS.emojis];
  await dataDir.ensureDir(parent);
  const bases = await indexBases(dataDir, parent);
  let images = 0;
  await mapPooled(emojis, ctx.concurrency, async (emoji) => {
    const base = bases.get(emoji.id) ?? idBase(emoji.id, emoji.name);
    if ((await existingImages(dataDir, parent, base)).length === 0) {
      try {
        await saveImage(ctx, parent, base, (write) => api.emojiImage(emoji.id, emoji.name, write));
        images++;
      } catch (error) {
        ctx.failures.record(`image of emoji ${emoji.name}`, error);
        return;
      }
    }
    await dataDir.writeJson([...parent, `${base}${JSON_EXT}`], emoji);
  });
  return { total: emojis.length, images };
}
