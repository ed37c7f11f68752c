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

export const validUser = (u: Raw) => isMattermostId(u.id) && typeof u.username === "string";
export const validTeam = (t: Raw) =>
  isMattermostId(t.id) && typeof t.name === "string" && typeof t.display_name === "string";
export const validChannel = (c: Raw) =>
  isMattermostId(c.id) && typeof c.type === "string" && typeof c.name === "string" &&
  typeof c.team_id === "string";
export const validMember = (m: Raw) => isMattermostId(m.user_id);
export const validEmoji = (e: Raw) => isMattermostId(e.id) && typeof e.name === "string";
export const validFileInfo = (f: Raw) =>
  isMattermostId(f.id) && typeof f.name === "string" && isTime(f.size);
export const validPost = (p: Raw) =>
  isMattermostId(p.id) && isTime(p.create_at) && isTime(p.update_at) &&
  typeof p.channel_id === "string" && typeof p.user_id === "string";
