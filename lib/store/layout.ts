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
 *              channels/<chanId>.json (+ .seen while a reconciling crawl is under way)
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

/** The id that an `<id>__...` entry name starts with, else undefined. */
export function idPrefix(name: string): string | undefined {
  const id = name.slice(0, 26);
  return isMattermostId(id) && name.slice(26, 28) === SEP ? id : undefined;
}

export type ChannelKind = "teams" | "direct" | "groups";
