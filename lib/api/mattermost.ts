/**
 * Typed Mattermost API v4 calls used by the backup (read-only, plus login/logout), and checks
 * that answers have the shape we rely on before anything is written from them.
 */
import { isObject } from "../util/objects.ts";
import { type ApiClient, type ApiResponse, readBytes } from "./client.ts";
import { ApiError, ServerError } from "../util/errors.ts";
import {
  type Channel,
  type Emoji,
  type FileInfo,
  type Member,
  type Post,
  type PostList,
  type Raw,
  type Team,
  type User,
  validChannel,
  validEmoji,
  validFileInfo,
  validMember,
  validPost,
  validTeam,
  validUser,
} from "../model/records.ts";

export interface Image {
  bytes: Uint8Array;
  contentType: string | null;
}

/** The server's maximum page size for lists. */
export const PAGE_SIZE = 200;
/** What `since` returns at most; that many means "an arbitrary subset". */
export const SINCE_LIMIT = 1000;
const USER_IDS_BATCH = 200;
/**
 * The 403 of a server before v11 whose TeamSettings.ExperimentalViewArchivedChannels is off:
 * it lists archived channels but refuses their posts (api4/post.go getPostsForChannel).
 */
const ARCHIVED_POSTS_HIDDEN = "api.user.view_archived_channels.get_posts_for_channel.app_error";

/** True when the server refused a channel's posts because it hides archived channels. */
export function isArchivedPostsHidden(error: unknown): boolean {
  return error instanceof ApiError && error.status === 403 &&
    error.errorId === ARCHIVED_POSTS_HIDDEN;
}

function malformed(what: string, reason: string): ServerError {
  return new ServerError(`Malformed answer for ${what}: ${reason}`);
}

function check<T>(value: unknown, what: string, valid: (v: Raw) => boolean, desc: string): T {
  if (!isObject(value) || !valid(value)) throw malformed(what, `expected ${desc}`);
  return value as T;
}

function checkList<T>(value: unknown, what: string, valid: (v: Raw) => boolean, desc: string): T[] {
  if (!Array.isArray(value)) throw malformed(what, `expected a list of ${desc}`);
  return value.map((item) => check<T>(item, what, valid, desc));
}

/** Fills defaults the server leaves out and checks nested file infos. */
function normalizePost(post: Post, what: string): Post {
  post.delete_at ??= 0;
  post.root_id ??= "";
  const files = post.metadata?.files;
  if (files !== undefined) checkList<FileInfo>(files, what, validFileInfo, "file infos");
  return post;
}

function checkPostList(value: unknown, what: string): PostList {
  if (!isObject(value) || !Array.isArray(value.order) || !isObject(value.posts)) {
    throw malformed(what, "expected a post list with order and posts");
  }
  const posts: Record<string, Post> = {};
  for (const [id, post] of Object.entries(value.posts)) {
    const checked = check<Post>(post, what, validPost, "posts with id and times");
    if (checked.id !== id) throw malformed(what, `post key ${id} does not match its id`);
    posts[id] = normalizePost(checked, what);
  }
  for (const id of value.order) {
    if (typeof id !== "string" || !posts[id]) {
      throw malformed(what, `order names unknown post ${id}`);
    }
  }
  return {
    order: value.order as string[],
    posts,
    next_post_id: typeof value.next_post_id === "string" ? value.next_post_id : "",
    prev_post_id: typeof value.prev_post_id === "string" ? value.prev_post_id : "",
  };
}

async function readImage(response: ApiResponse): Promise<Image> {
  return { bytes: await readBytes(response), contentType: response.headers.get("content-type") };
}

export class MattermostApi {
  constructor(readonly client: ApiClient) {}

  /**
   * The password login of the client's credentials (the session token comes in the `Token`
   * header); undefined when the client has a token and needs no login.
   */
  async login(): Promise<User | undefined> {
    const loginId = this.client.loginId;
    if (loginId === undefined) return undefined;
    const what = `login of ${loginId}`;
    const value = await this.client.signIn(
      { method: "POST", path: "/users/login", what },
      ({ password, mfaCode }) => ({
        login_id: loginId,
        password,
        ...(mfaCode ? { token: mfaCode } : {}),
      }),
      "token",
    );
    return check<User>(value, what, validUser, "a user");
  }

  /** Logs out the session `login` opened, if any. */
  async logout(): Promise<void> {
    await this.client.signOut({ method: "POST", path: "/users/logout", what: "logout" });
  }

  /** The account the client acts as. */
  async me(): Promise<User> {
    const what = "the current user (/users/me)";
    const value = await this.client.json<unknown>({ path: "/users/me", what });
    return check<User>(value, what, validUser, "a user");
  }

  async teamsForUser(userId: string): Promise<Team[]> {
    const what = "your teams";
    const value = await this.client.json<unknown>({ path: `/users/${userId}/teams`, what });
    return checkList<Team>(value, what, validTeam, "teams");
  }

  /**
   * Every channel the user is a member of (team channels, DMs, GMs), archived included.
   * Servers older than 6.1 lack the route; then each team's list is used (it holds DMs too).
   */
  async channelsForUser(userId: string, teams: readonly Team[]): Promise<Channel[]> {
    const what = "your channels";
    try {
      const value = await this.client.json<unknown>({
        path: `/users/${userId}/channels`,
        query: { include_deleted: true, last_delete_at: 0 },
        what,
      });
      return checkList<Channel>(value, what, validChannel, "channels");
    } catch (error) {
      if (!(error instanceof ApiError && (error.status === 404 || error.status === 405))) {
        throw error;
      }
    }
    const byId = new Map<string, Channel>();
    for (const team of teams) {
      const teamWhat = `your channels in team ${team.name}`;
      const value = await this.client.json<unknown>({
        path: `/users/${userId}/teams/${team.id}/channels`,
        query: { include_deleted: true, last_delete_at: 0 },
        what: teamWhat,
      });
      for (const channel of checkList<Channel>(value, teamWhat, validChannel, "channels")) {
        byId.set(channel.id, channel);
      }
    }
    return [...byId.values()];
  }

  channelMembers(channelId: string, label: string): Promise<Member[]> {
    return this.#pagedMembers(`/channels/${channelId}/members`, `members of channel ${label}`);
  }

  teamMembers(teamId: string, label: string): Promise<Member[]> {
    return this.#pagedMembers(`/teams/${teamId}/members`, `members of team ${label}`);
  }

  async #pagedMembers(path: string, what: string): Promise<Member[]> {
    const all: Member[] = [];
    for (let page = 0;; page++) {
      const value = await this.client.json<unknown>({
        path,
        query: { page, per_page: PAGE_SIZE },
        what,
      });
      const members = checkList<Member>(value, what, validMember, "members");
      all.push(...members);
      if (members.length < PAGE_SIZE) return all;
    }
  }

  /**
   * One page of a channel's posts, newest first, before `before` (or the newest page).
   * With `etag`, `list` is undefined when the server says nothing changed (304).
   */
  async postsPage(
    channelId: string,
    label: string,
    options: { before?: string; perPage?: number; etag?: string },
  ): Promise<{ list: PostList | undefined; etag: string | undefined }> {
    const what = `posts of channel ${label}`;
    const { value, etag } = await this.client.conditionalJson<unknown>({
      path: `/channels/${channelId}/posts`,
      query: {
        per_page: options.perPage ?? PAGE_SIZE,
        before: options.before,
        skipFetchThreads: true,
        collapsedThreads: false,
      },
      what,
    }, options.etag);
    return { list: value === undefined ? undefined : checkPostList(value, what), etag };
  }

  /** Posts of a channel changed after `since` (ms), tombstones included; at most SINCE_LIMIT. */
  async postsSince(channelId: string, label: string, since: number): Promise<PostList> {
    const what = `changes in channel ${label}`;
    // since <= 0 asks the server for its newest page instead of the changes (see sinceFor).
    if (!(since >= 1)) throw new RangeError(`since must be at least 1 for ${what}, got ${since}`);
    const value = await this.client.json<unknown>({
      path: `/channels/${channelId}/posts`,
      query: { since, skipFetchThreads: true, collapsedThreads: false },
      what,
    });
    return checkPostList(value, what);
  }

  /** Users by id (unknown ids are left out by the server); halves a batch on 413. */
  async usersByIds(ids: readonly string[], since?: number): Promise<User[]> {
    const out: User[] = [];
    for (let i = 0; i < ids.length; i += USER_IDS_BATCH) {
      out.push(...await this.#usersBatch(ids.slice(i, i + USER_IDS_BATCH), since));
    }
    return out;
  }

  async #usersBatch(ids: string[], since: number | undefined): Promise<User[]> {
    if (ids.length === 0) return [];
    const what = `${ids.length} user record(s)`;
    try {
      const value = await this.client.json<unknown>({
        method: "POST",
        path: "/users/ids",
        query: { since },
        body: ids,
        what,
      });
      return checkList<User>(value, what, validUser, "users");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 413 && ids.length > 1)) throw error;
      const half = Math.ceil(ids.length / 2);
      return [
        ...await this.#usersBatch(ids.slice(0, half), since),
        ...await this.#usersBatch(ids.slice(half), since),
      ];
    }
  }

  userImage(userId: string, username: string): Promise<Image> {
    return this.client.send(
      { path: `/users/${userId}/image`, what: `picture of user ${username}` },
      readImage,
    );
  }

  teamIcon(teamId: string, name: string): Promise<Image> {
    return this.client.send(
      { path: `/teams/${teamId}/image`, what: `icon of team ${name}` },
      readImage,
    );
  }

  /**
   * All custom emoji, or undefined when the server has custom emoji disabled (501). Paged by
   * name: without `sort=name` the server orders nothing and pages may overlap or skip. An emoji
   * added or deleted while paging still shifts later pages by one, so ids are de-duplicated.
   */
  async emojis(): Promise<Emoji[] | undefined> {
    const what = "custom emoji list";
    const all = new Map<string, Emoji>();
    try {
      for (let page = 0;; page++) {
        const value = await this.client.json<unknown>({
          path: "/emoji",
          query: { page, per_page: PAGE_SIZE, sort: "name" },
          what,
        });
        const emojis = checkList<Emoji>(value, what, validEmoji, "emoji");
        for (const emoji of emojis) all.set(emoji.id, emoji);
        if (emojis.length < PAGE_SIZE) return [...all.values()];
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 501) return undefined;
      throw error;
    }
  }

  emojiImage(emojiId: string, name: string): Promise<Image> {
    return this.client.send(
      { path: `/emoji/${emojiId}/image`, what: `image of emoji ${name}` },
      readImage,
    );
  }

  /** Streams an attachment into `write`, which must consume the whole body or throw. */
  downloadFile<T>(
    fileId: string,
    name: string,
    write: (body: ReadableStream<Uint8Array>) => Promise<T>,
  ): Promise<T> {
    return this.client.send(
      { path: `/files/${fileId}`, what: `attachment ${JSON.stringify(name)} (${fileId})` },
      (response) => write(response.body ?? new Blob().stream()),
    );
  }
}
