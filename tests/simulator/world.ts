// In-memory Mattermost data model with a controllable clock. Shapes follow
// /work/shared/mattermost-api.md; the HTTP layer lives in server.ts.

import { createHash } from "node:crypto";
import { imageSize } from "./png.ts";

/** Mattermost's id alphabet (model.NewId: base32 with this encoding, 26 chars). */
const ID_CODES = [..."ybndrfg8ejkmcpqxot1uwisza345h769"].map((c) => c.charCodeAt(0));
const NO_FILES: readonly string[] = Object.freeze([]);
/** model.ChannelDisplayNameMaxRunes: GM display names are cut to this. */
const DISPLAY_NAME_MAX = 64;

export interface User {
  id: string;
  create_at: number;
  update_at: number;
  delete_at: number;
  username: string;
  auth_service: string;
  email: string;
  nickname: string;
  first_name: string;
  last_name: string;
  position: string;
  roles: string;
  locale: string;
  timezone: Record<string, string>;
  props: Record<string, string>;
  last_picture_update: number;
  is_bot: boolean;
  bot_description: string;
  mfa_active: boolean;
}

export interface Team {
  id: string;
  create_at: number;
  update_at: number;
  delete_at: number;
  display_name: string;
  name: string;
  description: string;
  email: string;
  type: "O" | "I";
  company_name: string;
  allowed_domains: string;
  invite_id: string;
  allow_open_invite: boolean;
  last_team_icon_update: number;
  scheme_id: string;
  group_constrained: boolean;
  policy_id: string | null;
  cloud_limits_archived: boolean;
}

export interface TeamMember {
  team_id: string;
  user_id: string;
  roles: string;
  delete_at: number;
  scheme_guest: boolean;
  scheme_user: boolean;
  scheme_admin: boolean;
  explicit_roles: string;
}

export type ChannelType = "O" | "P" | "D" | "G";

export interface Channel {
  id: string;
  create_at: number;
  update_at: number;
  delete_at: number;
  team_id: string;
  type: ChannelType;
  display_name: string;
  name: string;
  header: string;
  purpose: string;
  last_post_at: number;
  last_root_post_at: number;
  total_msg_count: number;
  total_msg_count_root: number;
  extra_update_at: number;
  creator_id: string;
  scheme_id: string | null;
  props: Record<string, unknown> | null;
  group_constrained: boolean | null;
  shared: boolean | null;
  policy_id: string | null;
}

export interface ChannelMember {
  channel_id: string;
  user_id: string;
  roles: string;
  last_viewed_at: number;
  msg_count: number;
  mention_count: number;
  mention_count_root: number;
  urgent_mention_count: number;
  msg_count_root: number;
  notify_props: Record<string, string>;
  last_update_at: number;
  scheme_guest: boolean;
  scheme_user: boolean;
  scheme_admin: boolean;
  explicit_roles: string;
}

export interface Reaction {
  user_id: string;
  post_id: string;
  emoji_name: string;
  create_at: number;
  update_at: number;
  delete_at: number;
  remote_id: string;
  channel_id: string;
}

export interface FileInfo {
  id: string;
  user_id: string;
  post_id: string;
  channel_id: string;
  create_at: number;
  update_at: number;
  delete_at: number;
  name: string;
  extension: string;
  size: number;
  mime_type: string;
  width?: number;
  height?: number;
  has_preview_image: boolean;
  remote_id: string;
  archived: boolean;
}

export interface Emoji {
  id: string;
  creator_id: string;
  name: string;
  create_at: number;
  update_at: number;
  delete_at: number;
}

export interface PostMetadata {
  emojis?: Emoji[];
  files?: FileInfo[];
  reactions?: Reaction[];
}

/** A post as the API returns it (§6.5). */
export interface Post {
  id: string;
  create_at: number;
  update_at: number;
  edit_at: number;
  delete_at: number;
  is_pinned: boolean;
  user_id: string;
  channel_id: string;
  root_id: string;
  original_id: string;
  message: string;
  type: string;
  props: Record<string, unknown>;
  hashtags: string;
  file_ids?: string[];
  pending_post_id: string;
  has_reactions?: boolean;
  reply_count: number;
  last_reply_at: number;
  participants: null;
  metadata: PostMetadata;
}

/**
 * A stored post. Kept lean (shared empty arrays, no metadata) so a 200,000-post channel fits in
 * memory; `World.toPost` builds the wire shape. Field names match the wire names.
 */
export class PostRecord {
  update_at: number;
  edit_at = 0;
  delete_at = 0;
  is_pinned = false;
  original_id = "";
  reactions: Reaction[] | null = null;

  constructor(
    readonly id: string,
    readonly create_at: number,
    readonly user_id: string,
    readonly channel_id: string,
    readonly root_id: string,
    public message: string,
    readonly type: string,
    public props: Record<string, unknown> | null,
    readonly file_ids: readonly string[],
  ) {
    this.update_at = create_at;
  }
}

export interface Session {
  token: string;
  user_id: string;
  create_at: number;
  /** 0 = never; compared with the simulated clock. */
  expires_at: number;
  csrf_token: string;
}

interface ChannelState {
  /** The channel's posts (deleted ones too), sorted by create_at, stable for equal times. */
  posts: PostRecord[];
  /** Hidden edit-history copies, kept apart so edits never splice the sorted list. */
  history: PostRecord[];
  maxPostUpdateAt: number;
  members: Map<string, ChannelMember>;
}

export interface AddUserOptions {
  username: string;
  id?: string;
  first_name?: string;
  last_name?: string;
  nickname?: string;
  email?: string;
  password?: string;
  /** The code a login must send as "token"; sets mfa_active. */
  mfaSecret?: string;
  picture?: Uint8Array;
  delete_at?: number;
  is_bot?: boolean;
  roles?: string;
}

export interface AddPostOptions {
  channelId: string;
  userId: string;
  message?: string;
  rootId?: string;
  /** Explicit create_at; the clock is not advanced past it (lets tests share a millisecond). */
  createAt?: number;
  fileIds?: string[];
  props?: Record<string, unknown>;
  type?: string;
}

const MIME_BY_EXT: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  txt: "text/plain",
  html: "text/html",
  htm: "text/html",
  js: "application/javascript",
  json: "application/json",
  pdf: "application/pdf",
  zip: "application/zip",
};

function fileExtension(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
}

/** model.ParseHashtags, simplified: words starting with # and a letter. */
function hashtags(message: string): string {
  return (message.match(/(?<![\w#])#[A-Za-z][\w.-]*[\w]/g) ?? []).join(" ");
}

function insertSorted(list: PostRecord[], post: PostRecord): void {
  const last = list[list.length - 1];
  if (!last || last.create_at <= post.create_at) {
    list.push(post);
    return;
  }
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid]?.create_at ?? 0) <= post.create_at) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, post);
}

export class World {
  readonly users = new Map<string, User>();
  readonly teams = new Map<string, Team>();
  readonly channels = new Map<string, Channel>();
  /** All stored posts, including deleted ones and hidden edit-history copies (original_id set). */
  readonly posts = new Map<string, PostRecord>();
  readonly files = new Map<string, FileInfo>();
  readonly emojis = new Map<string, Emoji>();
  /** Live login sessions by token; logout removes its entry. */
  readonly sessions = new Map<string, Session>();
  /** Personal access tokens: token -> user id. */
  readonly accessTokens = new Map<string, string>();

  #time: number;
  #rng: number;
  readonly #credentials = new Map<string, { password?: string; mfaSecret?: string }>();
  readonly #pictures = new Map<string, Uint8Array>();
  readonly #teamIcons = new Map<string, Uint8Array>();
  readonly #teamMembers = new Map<string, Map<string, TeamMember>>();
  readonly #channelState = new Map<string, ChannelState>();
  /** Root id -> replies (and history copies of replies), in insertion order. */
  readonly #replies = new Map<string, PostRecord[]>();
  readonly #fileBytes = new Map<string, Uint8Array>();
  readonly #emojiImages = new Map<string, { bytes: Uint8Array; mimeType: string }>();

  constructor(opts: { startTime?: number; seed?: number } = {}) {
    this.#time = opts.startTime ?? 1_700_000_000_000;
    this.#rng = (opts.seed ?? 1) >>> 0 || 1;
  }

  now(): number {
    return this.#time;
  }

  advance(ms: number): void {
    this.#time += ms;
  }

  #tick(): number {
    return ++this.#time;
  }

  /** Deterministic (seeded xorshift32) so ids are reproducible across runs. */
  random(): number {
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x >>> 0;
    return this.#rng / 4294967296;
  }

  newId(): string {
    // Built from char codes: string concatenation would leave 26-part rope strings behind.
    const codes = new Array<number>(26);
    for (let i = 0; i < 26; i++) codes[i] = ID_CODES[Math.floor(this.random() * 32)] ?? 0;
    return String.fromCharCode(...codes);
  }

  // ---- users -------------------------------------------------------------------------------

  addUser(p: AddUserOptions): User {
    const t = this.#tick();
    const user: User = {
      id: p.id ?? this.newId(),
      create_at: t,
      update_at: t,
      delete_at: p.delete_at ?? 0,
      username: p.username.toLowerCase(),
      auth_service: "",
      email: p.email ?? `${p.username.toLowerCase()}@example.com`,
      nickname: p.nickname ?? "",
      first_name: p.first_name ?? "",
      last_name: p.last_name ?? "",
      position: "",
      roles: p.roles ?? "system_user",
      locale: "en",
      timezone: { automaticTimezone: "", manualTimezone: "", useAutomaticTimezone: "true" },
      props: {},
      last_picture_update: 0,
      is_bot: p.is_bot ?? false,
      bot_description: "",
      mfa_active: p.mfaSecret !== undefined,
    };
    this.users.set(user.id, user);
    const cred: { password?: string; mfaSecret?: string } = {};
    if (p.password !== undefined) cred.password = p.password;
    if (p.mfaSecret !== undefined) cred.mfaSecret = p.mfaSecret;
    this.#credentials.set(user.id, cred);
    if (p.picture) {
      this.#pictures.set(user.id, p.picture);
      user.last_picture_update = t;
    }
    return user;
  }

  user(id: string): User {
    const u = this.users.get(id);
    if (!u) throw new Error(`no user ${id}`);
    return u;
  }

  userByName(username: string): User | undefined {
    const name = username.toLowerCase();
    for (const u of this.users.values()) if (u.username === name) return u;
    return undefined;
  }

  credentials(userId: string): { password?: string; mfaSecret?: string } {
    return this.#credentials.get(userId) ?? {};
  }

  setUserPicture(userId: string, bytes: Uint8Array | null): void {
    const u = this.user(userId);
    const t = this.#tick();
    if (bytes) this.#pictures.set(userId, bytes);
    else this.#pictures.delete(userId);
    u.last_picture_update = bytes ? t : 0;
    u.update_at = t;
  }

  userPicture(userId: string): Uint8Array | undefined {
    return this.#pictures.get(userId);
  }

  renameUser(userId: string, newUsername: string): void {
    const u = this.user(userId);
    u.username = newUsername.toLowerCase();
    u.update_at = this.#tick();
  }

  deactivateUser(userId: string): void {
    const u = this.user(userId);
    u.delete_at = u.update_at = this.#tick();
  }

  addPersonalAccessToken(userId: string, token: string = this.newId()): string {
    this.user(userId);
    this.accessTokens.set(token, userId);
    return token;
  }

  /** Creates a login session (what a successful POST /users/login does). */
  createSession(userId: string): Session {
    const s: Session = {
      token: this.newId(),
      user_id: userId,
      create_at: this.#time,
      expires_at: 0,
      csrf_token: this.newId(),
    };
    this.sessions.set(s.token, s);
    return s;
  }

  // ---- teams -------------------------------------------------------------------------------

  addTeam(
    p: { name: string; display_name?: string; id?: string; icon?: Uint8Array; type?: "O" | "I" },
  ): Team {
    const t = this.#tick();
    const type = p.type ?? "O";
    const team: Team = {
      id: p.id ?? this.newId(),
      create_at: t,
      update_at: t,
      delete_at: 0,
      display_name: p.display_name ?? p.name,
      name: p.name.toLowerCase(),
      description: "",
      email: "",
      type,
      company_name: "",
      allowed_domains: "",
      invite_id: this.newId(),
      allow_open_invite: type === "O",
      last_team_icon_update: 0,
      scheme_id: "",
      group_constrained: false,
      policy_id: null,
      cloud_limits_archived: false,
    };
    this.teams.set(team.id, team);
    this.#teamMembers.set(team.id, new Map());
    if (p.icon) {
      this.#teamIcons.set(team.id, p.icon);
      team.last_team_icon_update = t;
    }
    return team;
  }

  team(id: string): Team {
    const t = this.teams.get(id);
    if (!t) throw new Error(`no team ${id}`);
    return t;
  }

  teamIcon(teamId: string): Uint8Array | undefined {
    return this.#teamIcons.get(teamId);
  }

  addTeamMember(teamId: string, userId: string, roles = "team_user"): void {
    this.team(teamId);
    this.user(userId);
    this.#tick();
    this.#teamMembers.get(teamId)?.set(userId, {
      team_id: teamId,
      user_id: userId,
      roles,
      delete_at: 0,
      scheme_guest: false,
      scheme_user: true,
      scheme_admin: roles.includes("team_admin"),
      explicit_roles: "",
    });
  }

  teamMembers(teamId: string): TeamMember[] {
    return [...(this.#teamMembers.get(teamId)?.values() ?? [])];
  }

  isTeamMember(teamId: string, userId: string): boolean {
    const m = this.#teamMembers.get(teamId)?.get(userId);
    return m !== undefined && m.delete_at === 0;
  }

  // ---- channels ----------------------------------------------------------------------------

  #newChannel(
    p: {
      teamId: string;
      name: string;
      display_name: string;
      type: ChannelType;
      id?: string;
      header?: string;
      purpose?: string;
      creatorId?: string;
    },
  ): Channel {
    const t = this.#tick();
    const ch: Channel = {
      id: p.id ?? this.newId(),
      create_at: t,
      update_at: t,
      delete_at: 0,
      team_id: p.teamId,
      type: p.type,
      display_name: p.display_name,
      name: p.name,
      header: p.header ?? "",
      purpose: p.purpose ?? "",
      last_post_at: 0,
      last_root_post_at: 0,
      total_msg_count: 0,
      total_msg_count_root: 0,
      extra_update_at: 0,
      creator_id: p.creatorId ?? "",
      scheme_id: null,
      props: null,
      group_constrained: null,
      shared: false,
      policy_id: null,
    };
    this.channels.set(ch.id, ch);
    this.#channelState.set(ch.id, {
      posts: [],
      history: [],
      maxPostUpdateAt: 0,
      members: new Map(),
    });
    return ch;
  }

  addChannel(
    p: {
      teamId: string;
      name: string;
      display_name?: string;
      type: "O" | "P";
      id?: string;
      header?: string;
      purpose?: string;
      creatorId?: string;
    },
  ): Channel {
    this.team(p.teamId);
    return this.#newChannel({
      ...p,
      name: p.name.toLowerCase(),
      display_name: p.display_name ?? p.name,
    });
  }

  channel(id: string): Channel {
    const c = this.channels.get(id);
    if (!c) throw new Error(`no channel ${id}`);
    return c;
  }

  #state(channelId: string): ChannelState {
    const s = this.#channelState.get(channelId);
    if (!s) throw new Error(`no channel ${channelId}`);
    return s;
  }

  archiveChannel(channelId: string): void {
    const c = this.channel(channelId);
    c.delete_at = c.update_at = this.#tick();
  }

  renameChannel(channelId: string, name: string, display_name?: string): void {
    const c = this.channel(channelId);
    c.name = name.toLowerCase();
    if (display_name !== undefined) c.display_name = display_name;
    c.update_at = this.#tick();
  }

  /** model.GetDMNameFromIds: the two ids sorted and joined with "__"; DMs have no display name. */
  addDirectChannel(userA: string, userB: string): Channel {
    this.user(userA);
    this.user(userB);
    const [a, b] = userA < userB ? [userA, userB] : [userB, userA];
    const ch = this.#newChannel({
      teamId: "",
      name: `${a}__${b}`,
      display_name: "",
      type: "D",
      creatorId: userA,
    });
    this.addChannelMember(ch.id, a);
    if (b !== a) this.addChannelMember(ch.id, b);
    return ch;
  }

  /** model.GetGroupNameFromUserIds (sha1 of sorted ids) and GetGroupDisplayNameFromUsers. */
  addGroupChannel(userIds: string[]): Channel {
    const ids = [...new Set(userIds)].sort();
    const name = createHash("sha1").update(ids.join("")).digest("hex");
    let display = ids.map((id) => this.user(id).username).sort().join(", ");
    if ([...display].length > DISPLAY_NAME_MAX) {
      display = [...display].slice(0, DISPLAY_NAME_MAX - 3).join("") + "...";
    }
    const ch = this.#newChannel({
      teamId: "",
      name,
      display_name: display,
      type: "G",
      creatorId: ids[0] ?? "",
    });
    for (const id of ids) this.addChannelMember(ch.id, id);
    return ch;
  }

  addChannelMember(channelId: string, userId: string, roles = "channel_user"): void {
    const s = this.#state(channelId);
    this.user(userId);
    const t = this.#tick();
    s.members.set(userId, {
      channel_id: channelId,
      user_id: userId,
      roles,
      last_viewed_at: 0,
      msg_count: 0,
      mention_count: 0,
      mention_count_root: 0,
      urgent_mention_count: 0,
      msg_count_root: 0,
      notify_props: {
        desktop: "default",
        email: "default",
        ignore_channel_mentions: "default",
        mark_unread: "all",
        push: "default",
      },
      last_update_at: t,
      scheme_guest: false,
      scheme_user: true,
      scheme_admin: roles.includes("channel_admin"),
      explicit_roles: "",
    });
  }

  channelMembers(channelId: string): ChannelMember[] {
    return [...this.#state(channelId).members.values()];
  }

  isChannelMember(channelId: string, userId: string): boolean {
    return this.#channelState.get(channelId)?.members.has(userId) ?? false;
  }

  /** The channel's posts sorted by create_at, deleted ones included, history copies not. */
  channelPosts(channelId: string): readonly PostRecord[] {
    return this.#state(channelId).posts;
  }

  /** The channel's hidden edit-history copies (deleted, original_id set). */
  channelEditHistory(channelId: string): readonly PostRecord[] {
    return this.#state(channelId).history;
  }

  /** Highest update_at over the channel's posts, deleted ones included (0 when empty). */
  channelMaxPostUpdateAt(channelId: string): number {
    return this.#state(channelId).maxPostUpdateAt;
  }

  // ---- posts -------------------------------------------------------------------------------

  #touch(post: PostRecord, t: number): void {
    post.update_at = t;
    const s = this.#state(post.channel_id);
    if (t > s.maxPostUpdateAt) s.maxPostUpdateAt = t;
  }

  #store(post: PostRecord): void {
    this.posts.set(post.id, post);
    const state = this.#state(post.channel_id);
    if (post.original_id) state.history.push(post);
    else insertSorted(state.posts, post);
    if (post.root_id) {
      const list = this.#replies.get(post.root_id);
      if (list) list.push(post);
      else this.#replies.set(post.root_id, [post]);
    }
  }

  /** Like addPost but returns the stored record; cheap enough for bulk generation. */
  addPostRecord(p: AddPostOptions): PostRecord {
    const ch = this.channel(p.channelId);
    this.user(p.userId);
    let t: number;
    if (p.createAt === undefined) t = this.#tick();
    else {
      t = p.createAt;
      if (t > this.#time) this.#time = t;
    }
    const rootId = p.rootId ?? "";
    const root = rootId ? this.posts.get(rootId) : undefined;
    if (rootId && (!root || root.channel_id !== ch.id || root.root_id !== "")) {
      throw new Error(`invalid root ${rootId}`);
    }
    const fileIds = p.fileIds?.length ? [...p.fileIds] : NO_FILES;
    const id = this.newId();
    for (const fid of fileIds) {
      const f = this.files.get(fid);
      if (!f || f.channel_id !== ch.id || f.post_id) throw new Error(`file ${fid} not attachable`);
      f.post_id = id;
    }
    const post = new PostRecord(
      id,
      t,
      p.userId,
      ch.id,
      rootId,
      p.message ?? "",
      p.type ?? "",
      p.props ?? null,
      fileIds,
    );
    this.#store(post);
    this.#touch(post, t);
    ch.total_msg_count++;
    if (t > ch.last_post_at) ch.last_post_at = t;
    if (root) {
      if (t > root.update_at) this.#touch(root, t);
    } else {
      ch.total_msg_count_root++;
      if (t > ch.last_root_post_at) ch.last_root_post_at = t;
    }
    return post;
  }

  addPost(p: AddPostOptions): Post {
    return this.toPost(this.addPostRecord(p));
  }

  #livePost(postId: string): PostRecord {
    const p = this.posts.get(postId);
    if (!p || p.delete_at) throw new Error(`no live post ${postId}`);
    return p;
  }

  /**
   * What store/sqlstore/post_store.go Update does for every UpdatePost (an edit, and a patch
   * such as a pin): the old version is kept as a hidden deleted copy with a new id, its
   * `original_id` the post's, its `delete_at` and `update_at` the time of the change and its own
   * `edit_at`; a reply's root is touched too.
   */
  #update(post: PostRecord, change: (post: PostRecord, t: number) => void): void {
    const t = this.#tick();
    const copy = new PostRecord(
      this.newId(),
      post.create_at,
      post.user_id,
      post.channel_id,
      post.root_id,
      post.message,
      post.type,
      post.props ? structuredClone(post.props) : null,
      post.file_ids,
    );
    copy.edit_at = post.edit_at;
    copy.is_pinned = post.is_pinned;
    copy.original_id = post.id;
    copy.delete_at = t;
    this.#store(copy);
    this.#touch(copy, t);
    change(post, t);
    this.#touch(post, t);
    const root = post.root_id ? this.posts.get(post.root_id) : undefined;
    if (root && root.update_at < t) this.#touch(root, t);
  }

  /** Edits the message (app/post.go UpdatePost: a new message sets `edit_at`). */
  editPost(postId: string, message: string): Post {
    const post = this.#livePost(postId);
    this.#update(post, (p, t) => {
      p.message = message;
      p.edit_at = t;
    });
    return this.toPost(post);
  }

  /** Soft delete; a root takes its whole thread with it (store: WHERE Id = ? OR RootId = ?). */
  deletePost(postId: string, deletedBy?: string): void {
    const post = this.#livePost(postId);
    const t = this.#tick();
    const victims = post.root_id ? [post] : [post, ...(this.#replies.get(post.id) ?? [])];
    for (const v of victims) {
      v.delete_at = t;
      this.#touch(v, t);
      if (deletedBy !== undefined) v.props = { ...v.props, deleteBy: deletedBy };
      if (v.original_id) continue;
      for (const fid of v.file_ids) {
        const f = this.files.get(fid);
        if (f && !f.delete_at) f.delete_at = f.update_at = t;
      }
    }
  }

  addReaction(postId: string, userId: string, emojiName: string): void {
    const post = this.#livePost(postId);
    this.user(userId);
    if (post.reactions?.some((r) => r.user_id === userId && r.emoji_name === emojiName)) return;
    const t = this.#tick();
    const r: Reaction = {
      user_id: userId,
      post_id: postId,
      emoji_name: emojiName,
      create_at: t,
      update_at: t,
      delete_at: 0,
      remote_id: "",
      channel_id: post.channel_id,
    };
    (post.reactions ??= []).push(r);
    this.#touch(post, t);
  }

  removeReaction(postId: string, userId: string, emojiName: string): void {
    const post = this.#livePost(postId);
    const left = (post.reactions ?? []).filter((r) =>
      !(r.user_id === userId && r.emoji_name === emojiName)
    );
    post.reactions = left.length ? left : null;
    this.#touch(post, this.#tick());
  }

  /**
   * Pins or unpins: api4/post.go saveIsPinnedPost patches the post (app/post.go PatchPost ->
   * UpdatePost), so a history copy is kept as for an edit, with `edit_at` unchanged.
   */
  pinPost(postId: string, pinned: boolean): void {
    this.#update(this.#livePost(postId), (p) => {
      p.is_pinned = pinned;
    });
  }

  /**
   * GET /posts/{id}/edit_history as the store selects it (post_store.go GetEditHistoryForPost:
   * `WHERE OriginalId = ? ORDER BY EditAt DESC`): the copies as stored, text included (the
   * handler sends them without PreparePostForClient, so nothing is emptied).
   */
  editHistory(postId: string): Post[] {
    const post = this.posts.get(postId);
    if (!post) return [];
    return this.channelEditHistory(post.channel_id)
      .filter((p) => p.original_id === postId)
      .sort((a, b) => b.edit_at - a.edit_at)
      .map((p) => this.toPost(p, { asStored: true }));
  }

  /** Live replies of a root (or of a reply's root), in insertion order. */
  threadReplies(rootId: string): PostRecord[] {
    return (this.#replies.get(rootId) ?? []).filter((p) => p.delete_at === 0);
  }

  /**
   * The API shape of a stored post; deleted posts become tombstones (message and metadata empty,
   * app/post_metadata.go PreparePostForClient), unless `asStored` (a record sent as the store
   * read it: text kept, no metadata).
   */
  toPost(p: PostRecord, options: { asStored?: boolean } = {}): Post {
    const threadRoot = p.root_id || p.id;
    const replies = this.threadReplies(threadRoot);
    let lastReplyAt = 0;
    if (!p.root_id) { for (const r of replies) lastReplyAt = Math.max(lastReplyAt, r.create_at); }
    const out: Post = {
      id: p.id,
      create_at: p.create_at,
      update_at: p.update_at,
      edit_at: p.edit_at,
      delete_at: p.delete_at,
      is_pinned: p.is_pinned,
      user_id: p.user_id,
      channel_id: p.channel_id,
      root_id: p.root_id,
      original_id: p.original_id,
      message: p.delete_at && !options.asStored ? "" : p.message,
      type: p.type,
      props: p.props ? structuredClone(p.props) : {},
      hashtags: hashtags(p.message),
      pending_post_id: "",
      reply_count: replies.length,
      last_reply_at: lastReplyAt,
      participants: null,
      metadata: p.delete_at ? {} : this.#metadata(p),
    };
    if (options.asStored) delete (out as Partial<Post>).metadata;
    if (p.file_ids.length) out.file_ids = [...p.file_ids];
    if (p.reactions?.length) out.has_reactions = true;
    return out;
  }

  #metadata(p: PostRecord): PostMetadata {
    const md: PostMetadata = {};
    const names = new Set<string>();
    for (const m of p.message.matchAll(/:([a-z0-9_+-]+):/g)) names.add(m[1] ?? "");
    if (p.reactions?.length) {
      md.reactions = p.reactions.map((r) => ({ ...r }));
      for (const r of p.reactions) names.add(r.emoji_name);
    }
    if (names.size) {
      const emojis = [...this.emojis.values()].filter((e) => !e.delete_at && names.has(e.name));
      if (emojis.length) md.emojis = emojis.map((e) => ({ ...e }));
    }
    const files = p.file_ids.map((id) => this.files.get(id)).filter((f): f is FileInfo =>
      f !== undefined && f.delete_at === 0
    );
    if (files.length) md.files = files.map((f) => ({ ...f }));
    return md;
  }

  post(id: string): Post | undefined {
    const p = this.posts.get(id);
    return p && this.toPost(p);
  }

  // ---- files and emoji ---------------------------------------------------------------------

  addFile(
    p: {
      userId: string;
      channelId: string;
      name: string;
      bytes: Uint8Array;
      mimeType?: string;
      id?: string;
    },
  ): FileInfo {
    this.user(p.userId);
    this.channel(p.channelId);
    const t = this.#tick();
    const ext = fileExtension(p.name);
    const info: FileInfo = {
      id: p.id ?? this.newId(),
      user_id: p.userId,
      post_id: "",
      channel_id: p.channelId,
      create_at: t,
      update_at: t,
      delete_at: 0,
      name: p.name,
      extension: ext,
      size: p.bytes.length,
      mime_type: p.mimeType ?? MIME_BY_EXT[ext] ?? "application/octet-stream",
      has_preview_image: false,
      remote_id: "",
      archived: false,
    };
    const dims = info.mime_type.startsWith("image/") ? imageSize(p.bytes) : undefined;
    if (dims) {
      info.width = dims.width;
      info.height = dims.height;
      info.has_preview_image = true;
    }
    this.files.set(info.id, info);
    this.#fileBytes.set(info.id, p.bytes);
    return info;
  }

  fileBytes(fileId: string): Uint8Array | undefined {
    return this.#fileBytes.get(fileId);
  }

  addEmoji(
    p: { name: string; creatorId: string; image: Uint8Array; mimeType?: string; id?: string },
  ): Emoji {
    for (const e of this.emojis.values()) {
      if (!e.delete_at && e.name === p.name) throw new Error(`emoji ${p.name} exists`);
    }
    const t = this.#tick();
    const emoji: Emoji = {
      id: p.id ?? this.newId(),
      creator_id: p.creatorId,
      name: p.name,
      create_at: t,
      update_at: t,
      delete_at: 0,
    };
    this.emojis.set(emoji.id, emoji);
    this.#emojiImages.set(emoji.id, { bytes: p.image, mimeType: p.mimeType ?? "image/png" });
    return emoji;
  }

  emojiImage(id: string): { bytes: Uint8Array; mimeType: string } | undefined {
    return this.#emojiImages.get(id);
  }

  deleteEmoji(id: string): void {
    const e = this.emojis.get(id);
    if (!e) throw new Error(`no emoji ${id}`);
    e.delete_at = e.update_at = this.#tick();
  }
}
