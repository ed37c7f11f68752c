/**
 * The data-dir layout shared with the original matterbak: every file and folder name the tool
 * writes or reads is made here, so later readers (verify, viewer, exports) share one definition.
 *
 * ```
 * teams/<teamId>__<teamName>.json, __members.json, teams/<teamId>__icon.<ext>
 * teams/<teamId>__<teamName>/<chanId>__<channelName>.json (+ __members.json, __threads.json)
 * teams/<teamId>__<teamName>/<chanId>__<channelName>/<YYYYmmdd-HHMMSSffffff>__<postId>.json
 * teams/<teamId>__<teamName>/<chanId>__<channelName>/files/<fileId>.json, <fileId>__<name>
 * teams/<teamId>__<teamName>/<chanId>__<channelName>/history/<postId>.json  (not matterbak's:
 *              the earlier versions of an edited post; matterbak lists only the `.json` files
 *              directly in the posts folder, and the name is no post file name)
 * direct/<chanId>__<partner>..., groups/<chanId>__<userA>__<userB>...
 * users/<userId>__<username>.json, users/<userId>__<username>__image.<ext>
 * emojis/<emojiId>__<emojiName>.json, emojis/<emojiId>__<emojiName>.<ext>
 * .matterbak/  our own sync state (not part of matterbak's layout): lock, state.json, zip.json,
 *              channels/<chanId>.json (+ .seen while a reconciling crawl is under way),
 *              manifest.sha256 (+ manifest.journal), repair.json, damaged/ (what a repair could
 *              not restore, set aside)
 * ```
 */
import { isMattermostId } from "../model/records.ts";
import { safeName } from "./safe_name.ts";

export const SEP = "__";
export const JSON_EXT = ".json";
export const DIRS = {
  teams: "teams",
  direct: "direct",
  groups: "groups",
  users: "users",
  emojis: "emojis",
  files: "files",
  history: "history",
  state: ".matterbak",
} as const;
export const MEMBERS_SUFFIX = `${SEP}members${JSON_EXT}`;
export const THREADS_SUFFIX = `${SEP}threads${JSON_EXT}`;
export const IMAGE_SUFFIX = `${SEP}image`;
export const ICON_SUFFIX = `${SEP}icon`;
/** Longer than other names: the attachment name is what people look for. */
const MAX_FILE_NAME_BYTES = 160;

/** `<id>__<name>`: the base of every object's file names. */
export function idBase(id: string, name: string): string {
  return `${id}${SEP}${safeName(name)}`;
}

/** Base for a group message: the other members' usernames, sorted, joined by `__`. */
export function groupLabel(usernames: readonly string[]): string {
  return [...usernames].sort().map((name) => safeName(name)).join(SEP);
}

const pad = (value: number, width: number) => String(value).padStart(width, "0");

/** `YYYYmmdd-HHMMSSffffff` in UTC for a Mattermost millisecond time. */
export function postTimestamp(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}-` +
    `${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}` +
    `${pad(d.getUTCMilliseconds() * 1000, 6)}`;
}

/** File name of a post record. */
export function postFileName(post: { id: string; create_at: number }): string {
  return `${postTimestamp(post.create_at)}${SEP}${post.id}${JSON_EXT}`;
}

const POST_FILE = /^(\d{8}-\d{12})__([a-z0-9]{26})\.json$/;

/** The post id in a post file name (ours in UTC or matterbak's in local time), else undefined. */
export function postIdFromFileName(name: string): string | undefined {
  return POST_FILE.exec(name)?.[2];
}

/** `history/<postId>.json`: the earlier versions of an edited post. */
export function historyFileName(postId: string): string {
  return `${postId}${JSON_EXT}`;
}

/** The post id of a history file name, else undefined. */
export function postIdFromHistoryName(name: string): string | undefined {
  const id = name.slice(0, -JSON_EXT.length);
  return name.endsWith(JSON_EXT) && isMattermostId(id) ? id : undefined;
}

/** `<folder><suffix>` beside a channel's posts folder: its record, members or threads file. */
export function besideFolder(folder: readonly string[], suffix: string): readonly string[] {
  return [...folder.slice(0, -1), `${folder.at(-1)}${suffix}`];
}

/** `files/<fileId>.json`: the FileInfo record. */
export function fileInfoName(fileId: string): string {
  return `${fileId}${JSON_EXT}`;
}

/** `files/<fileId>__<name>`: the attachment's bytes. */
export function fileDataName(fileId: string, name: string): string {
  return `${fileId}${SEP}${safeName(name, MAX_FILE_NAME_BYTES)}`;
}

/** The file id of an attachment data file name, else undefined. */
export function fileIdFromDataName(name: string): string | undefined {
  const id = name.slice(0, 26);
  return name.startsWith(`${id}${SEP}`) && isMattermostId(id) ? id : undefined;
}

const IMAGE_TYPES = new Set(["png", "jpeg", "gif", "webp", "svg+xml"]);

/** Image file extension from a Content-Type, as matterbak named them; `bin` for anything else. */
export function imageExtension(contentType: string | null): string {
  const subtype = contentType?.split(";")[0]?.trim().toLowerCase().replace(/^image\//, "") ?? "";
  return IMAGE_TYPES.has(subtype) ? subtype : "bin";
}

/** True for `<imageBase>.<ext>` with an extension `imageExtension` gives. */
export function isImageOf(imageBase: string, name: string): boolean {
  if (!name.startsWith(`${imageBase}.`)) return false;
  const ext = name.slice(imageBase.length + 1);
  return ext === "bin" || IMAGE_TYPES.has(ext);
}

/** `.matterbak/lock`: held by the run using the data dir (never zipped). */
export const LOCK_FILE: readonly string[] = [DIRS.state, "lock"];
/**
 * `.matterbak/zip.json`: which archive the last run wrote (path, size, time), so that the next
 * reuses it (never zipped: it changes after each archive).
 */
export const ZIP_RECORD_FILE: readonly string[] = [DIRS.state, `zip${JSON_EXT}`];
/** `.matterbak/state.json`: run-wide state (the users' watermark). */
export const RUN_STATE_FILE: readonly string[] = [DIRS.state, `state${JSON_EXT}`];
/** `.matterbak/channels/`: one sync state per channel, and its seen log during a re-crawl. */
export const CHANNEL_STATES_DIR: readonly string[] = [DIRS.state, "channels"];

export function channelStateFile(channelId: string): readonly string[] {
  return [...CHANNEL_STATES_DIR, `${channelId}${JSON_EXT}`];
}

export function seenLogFile(channelId: string): readonly string[] {
  return [...CHANNEL_STATES_DIR, `${channelId}.seen`];
}

/** `.matterbak/manifest.sha256`: the SHA-256 of every file of the backup (`sha256sum` format). */
export const MANIFEST_FILE: readonly string[] = [DIRS.state, "manifest.sha256"];
/** `.matterbak/manifest.journal`: what changed since manifest.sha256 was last written. */
export const MANIFEST_JOURNAL: readonly string[] = [DIRS.state, "manifest.journal"];
/** `.matterbak/repair.json`: what `matterbak verify` found damaged or missing, for the next run. */
export const REPAIR_FILE: readonly string[] = [DIRS.state, "repair.json"];
/**
 * `.matterbak/damaged/<path>`: a damaged file that no repair can restore (the edit history of
 * another's post), as it was, for a human to look at; out of the backup's layout and manifest.
 */
export const DAMAGED_DIR: readonly string[] = [DIRS.state, "damaged"];

/** The id that an `<id>__...` entry name starts with, else undefined. */
export function idPrefix(name: string): string | undefined {
  const id = name.slice(0, 26);
  return isMattermostId(id) && name.slice(26, 28) === SEP ? id : undefined;
}

export type ChannelKind = "teams" | "direct" | "groups";

/**
 * What a file of the data dir is, by its place in the layout: the kind of record or image and
 * the ids its path names. Channel folders are `teams/<team>/<channel>`, `direct/<channel>` and
 * `groups/<channel>`; `folder` is the posts folder.
 */
export type PathRole =
  | { kind: "post" | "history"; folder: readonly string[]; channelId: string; postId: string }
  | { kind: "fileInfo" | "fileData"; folder: readonly string[]; channelId: string; fileId: string }
  | {
    kind: "channel" | "channelMembers" | "threads";
    folder: readonly string[];
    channelId: string;
  }
  | { kind: "team" | "teamMembers" | "teamIcon"; teamId: string }
  | { kind: "user" | "userImage"; userId: string; base: string }
  | { kind: "emoji" | "emojiImage"; emojiId: string; base: string }
  | { kind: "channelState"; channelId: string }
  | { kind: "runState" }
  | { kind: "other" };

/** See PathRole; `other` for anything this tool does not write. */
export function classifyPath(parts: readonly string[]): PathRole {
  const [top] = parts;
  const name = parts.at(-1) ?? "";
  const other = { kind: "other" } as const;
  if (top === DIRS.state) {
    if (parts.length === 2 && name === RUN_STATE_FILE[1]) return { kind: "runState" };
    const channelId = name.endsWith(JSON_EXT) ? name.slice(0, -JSON_EXT.length) : "";
    return parts.length === 3 && parts[1] === CHANNEL_STATES_DIR[1] && isMattermostId(channelId)
      ? { kind: "channelState", channelId }
      : other;
  }
  if (top === DIRS.users || top === DIRS.emojis) {
    const id = idPrefix(name);
    if (parts.length !== 2 || !id) return other;
    const base = name.slice(0, name.lastIndexOf("."));
    if (top === DIRS.users) {
      if (name.endsWith(JSON_EXT)) return { kind: "user", userId: id, base };
      const owner = base.endsWith(IMAGE_SUFFIX) ? base.slice(0, -IMAGE_SUFFIX.length) : "";
      return owner && isImageOf(base, name)
        ? { kind: "userImage", userId: id, base: owner }
        : other;
    }
    if (name.endsWith(JSON_EXT)) return { kind: "emoji", emojiId: id, base };
    return isImageOf(base, name) ? { kind: "emojiImage", emojiId: id, base } : other;
  }
  // The parent of channel folders: `teams/<team>`, `direct` or `groups`.
  let depth: number;
  if (top === DIRS.teams) {
    if (parts.length === 2) {
      const teamId = idPrefix(name);
      if (!teamId) return other;
      if (isImageOf(`${teamId}${ICON_SUFFIX}`, name)) return { kind: "teamIcon", teamId };
      if (name.endsWith(MEMBERS_SUFFIX)) return { kind: "teamMembers", teamId };
      return name.endsWith(JSON_EXT) ? { kind: "team", teamId } : other;
    }
    if (!idPrefix(parts[1] ?? "")) return other;
    depth = 2;
  } else if (top === DIRS.direct || top === DIRS.groups) {
    depth = 1;
  } else {
    return other;
  }
  const parent = parts.slice(0, depth);
  if (parts.length === depth + 1) {
    const channelId = idPrefix(name);
    if (!channelId) return other;
    for (
      const [suffix, kind] of [[MEMBERS_SUFFIX, "channelMembers"], [
        THREADS_SUFFIX,
        "threads",
      ]] as const
    ) {
      if (name.endsWith(suffix)) {
        return { kind, folder: [...parent, name.slice(0, -suffix.length)], channelId };
      }
    }
    return name.endsWith(JSON_EXT)
      ? { kind: "channel", folder: [...parent, name.slice(0, -JSON_EXT.length)], channelId }
      : other;
  }
  const channelId = idPrefix(parts[depth] ?? "");
  if (!channelId) return other;
  const folder = parts.slice(0, depth + 1);
  if (parts.length === depth + 2) {
    const postId = postIdFromFileName(name);
    return postId ? { kind: "post", folder, channelId, postId } : other;
  }
  if (parts.length === depth + 3 && parts[depth + 1] === DIRS.files) {
    const infoId = name.endsWith(JSON_EXT) ? name.slice(0, -JSON_EXT.length) : "";
    if (isMattermostId(infoId)) return { kind: "fileInfo", folder, channelId, fileId: infoId };
    const fileId = fileIdFromDataName(name);
    if (fileId) return { kind: "fileData", folder, channelId, fileId };
  }
  if (parts.length === depth + 3 && parts[depth + 1] === DIRS.history) {
    const postId = postIdFromHistoryName(name);
    if (postId) return { kind: "history", folder, channelId, postId };
  }
  return other;
}
