/**
 * The server's records as the backup stores them (the API's JSON objects, kept whole) and the
 * checks that a record has the fields we rely on: shared by the API layer, which checks answers
 * before anything is written, and the store's reader, which checks what it reads back.
 */

const ID_PATTERN = /^[a-z0-9]{26}$/;

/** True for a Mattermost id (26 lowercase base32 characters); anything else is refused. */
export function isMattermostId(value: unknown): value is string {
  return typeof value === "string" && ID_PATTERN.test(value);
}

/** Raw API objects are stored as received; only the fields we use are typed. */
export type Raw = Record<string, unknown>;

export interface User extends Raw {
  id: string;
  username: string;
  update_at: number;
  delete_at: number;
  last_picture_update?: number;
}

export interface Team extends Raw {
  id: string;
  name: string;
  display_name: string;
  last_team_icon_update?: number;
}

export interface Channel extends Raw {
  id: string;
  team_id: string;
  type: string;
  name: string;
  display_name: string;
  delete_at: number;
  /** Posts ever created in the channel, replies included (deletions do not lower it). */
  total_msg_count?: number;
}

export interface FileInfo extends Raw {
  id: string;
  name: string;
  size: number;
}

export interface Reaction extends Raw {
  user_id: string;
  emoji_name: string;
}

export interface Post extends Raw {
  id: string;
  create_at: number;
  update_at: number;
  delete_at: number;
  user_id: string;
  channel_id: string;
  root_id: string;
  original_id?: string;
  metadata?: { files?: FileInfo[]; reactions?: Reaction[] } & Raw;
}

export interface PostList {
  order: string[];
  posts: Record<string, Post>;
  next_post_id: string;
  prev_post_id: string;
  /**
   * How many posts the server listed, malformed ones (left out of `order` and `posts`)
   * included: whether a page was full is judged by this count.
   */
  listed: number;
  /**
   * The ids of posts left out as malformed: they are still on the server, so a reconciling
   * crawl must count them as seen, never as deleted.
   */
  malformedIds: string[];
}

export interface Member extends Raw {
  user_id: string;
}

export interface Emoji extends Raw {
  id: string;
  name: string;
}

export const isTime = (v: unknown): v is number =>
  typeof v === "number" && Number.isFinite(v) && v >= 0;

/** The last millisecond a post file name (`YYYYmmdd-HHMMSSffffff`, UTC) can express. */
export const MAX_POST_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * A post's time as the server keeps it: whole milliseconds since 1970, before the year 10000.
 * Anything else (1e20, a fraction) names no file and would move a watermark past every change.
 */
export const isPostTime = (v: unknown): v is number =>
  Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_POST_TIME;

export const validUser = (u: Raw) => isMattermostId(u.id) && typeof u.username === "string";
export const validTeam = (t: Raw) =>
  isMattermostId(t.id) && typeof t.name === "string" && typeof t.display_name === "string";
export const validChannel = (c: Raw) =>
  isMattermostId(c.id) && typeof c.type === "string" && typeof c.name === "string" &&
  typeof c.team_id === "string";
export const validMember = (m: Raw) => isMattermostId(m.user_id);
export const validEmoji = (e: Raw) => isMattermostId(e.id) && typeof e.name === "string";
/** A size is a whole number of bytes: it is what a download is held to. */
export const validFileInfo = (f: Raw) =>
  isMattermostId(f.id) && typeof f.name === "string" && Number.isSafeInteger(f.size) &&
  (f.size as number) >= 0;
export const validReaction = (r: Raw) =>
  typeof r.user_id === "string" && typeof r.emoji_name === "string";
export const validPost = (p: Raw) =>
  isMattermostId(p.id) && isPostTime(p.create_at) && isPostTime(p.update_at) &&
  typeof p.channel_id === "string" && typeof p.user_id === "string";
