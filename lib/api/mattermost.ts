/**
 * Typed Mattermost API v4 calls used by the backup (read-only, plus login/logout), and checks
 * that answers have the shape we rely on before anything is written from them. One malformed
 * record in a list is left out and reported (`onMalformed`); the rest of the list is kept.
 */
import { isObject } from "../util/objects.ts";
import { AnswerTooLargeError, type ApiClient } from "./client.ts";
import { ApiError, ServerError } from "../util/errors.ts";
import type { Failure } from "../util/events.ts";
import {
  type Channel,
  type Emoji,
  type FileInfo,
  isMattermostId,
  type Member,
  type Post,
  type PostList,
  type Raw,
  type Reaction,
  type Team,
  type User,
  validChannel,
  validEmoji,
  validFileInfo,
  validMember,
  validPost,
  validReaction,
  validTeam,
  validUser,
} from "../model/records.ts";

/**
 * Streams an image's body to its file, named by its Content-Type; returns what it wrote. May
 * be called again for a retried request.
 */
export type ImageWriter<T> = (
  body: ReadableStream<Uint8Array>,
  contentType: string | null,
) => Promise<T>;

/** Told of each record left out of an answer: what it was, and what was wrong with it. */
export type MalformedSink = (failure: Failure) => void;

/**
 * The largest image taken (a profile picture, team icon or custom emoji), in bytes. The
 * server stores pictures and team icons as 128x128 PNGs (app/user.go AdjustImage, app/team.go
 * SetTeamIconFromFile: tens of kB) and accepts custom emoji of at most 1 MB (app/emoji.go
 * MaxEmojiFileSize; 512 KiB on current servers).
 */
export const IMAGE_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The one list that is not paged: every channel of the user, DMs and GMs included. At about
 * 2 kB a channel (header and purpose at their limits) this is 16,000 channels.
 */
const CHANNEL_LIST_MAX_BYTES = 32 * 1024 * 1024;

/** The server's maximum page size for lists. */
export const PAGE_SIZE = 200;
/**
 * The most pages of members or custom emoji read: 400,000 of them. Nothing in the server caps
 * these lists (web/params.go caps the page size, not the page), but a team or channel cannot
 * have more members than its server has users, and Mattermost's largest reference
 * architecture is sized for 200,000 users (docs.mattermost.com, "Scale Mattermost up to
 * 200000 users"); custom emoji are uploaded one by one. A server that pages on past this is
 * broken or hostile: it would grow the run's memory without end.
 */
export const MAX_LIST_PAGES = 2_000;
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

/**
 * What an answer of GET /posts/{id}/edit_history that is no list of versions says
 * (api4/post.go getEditHistoryForPost): `no-route`, a server before 7.9 (the router's 404);
 * `none`, a post with no earlier version kept (app/post.go: the store's "not found" as 404
 * app.post.get.app_error); `refused`, 403, for a post deleted meanwhile, not the caller's, or in
 * a channel where the caller may not edit. Undefined for any other error.
 */
export function editHistoryAnswer(error: unknown): "no-route" | "none" | "refused" | undefined {
  if (!(error instanceof ApiError)) return undefined;
  if (error.status === 404 && error.errorId === "api.context.404.app_error") return "no-route";
  if (error.status === 404 && error.errorId === "app.post.get.app_error") return "none";
  if (error.status === 403) return "refused";
  return undefined;
}

function malformed(what: string, reason: string): ServerError {
  return new ServerError(`Malformed answer for ${what}: ${reason}`);
}

function check<T>(value: unknown, what: string, valid: (v: Raw) => boolean, desc: string): T {
  if (!isObject(value) || !valid(value)) throw malformed(what, `expected ${desc}`);
  return value as T;
}

/** A record for a message: its id if it has one, else `fallback` (its place in the answer). */
function recordName(value: unknown, fallback: string): string {
  const id = isObject(value) ? value.id ?? value.user_id : value;
  return isMattermostId(id) ? id : fallback;
}

/**
 * The records of a list answer that have the fields we rely on; each other one is reported
 * to `sink` and left out. Only an answer that is not a list at all fails as a whole.
 */
function checkList<T>(
  value: unknown,
  what: string,
  valid: (v: Raw) => boolean,
  desc: string,
  sink: MalformedSink,
): T[] {
  if (!Array.isArray(value)) throw malformed(what, `expected a list of ${desc}`);
  const out: T[] = [];
  value.forEach((item, index) => {
    if (isObject(item) && valid(item)) out.push(item as T);
    else skipped(sink, `record ${recordName(item, `#${index + 1}`)} in ${what}`, `one of ${desc}`);
  });
  return out;
}

function skipped(sink: MalformedSink, what: string, expected: string): void {
  sink({ what, why: `malformed record left out (${expected})` });
}

/**
 * Fills defaults the server leaves out; a file info or reaction without the fields we rely on
 * is reported and left out of the post (the post is kept).
 */
function normalizePost(post: Post, what: string, sink: MalformedSink): Post {
  post.delete_at ??= 0;
  post.root_id ??= "";
  const metadata = post.metadata;
  if (!isObject(metadata)) return post;
  const where = `post ${post.id} in ${what}`;
  if (metadata.files !== undefined) {
    metadata.files = checkPart<FileInfo>(
      metadata.files,
      `the files of ${where}`,
      validFileInfo,
      "file infos with id, name and a whole size",
      sink,
    );
  }
  if (metadata.reactions !== undefined) {
    metadata.reactions = checkPart<Reaction>(
      metadata.reactions,
      `the reactions of ${where}`,
      validReaction,
      "reactions with user and emoji",
      sink,
    );
  }
  return post;
}

/** A list inside a record: its good items; an answer that is no list at all counts as empty. */
function checkPart<T>(
  value: unknown,
  what: string,
  valid: (v: Raw) => boolean,
  desc: string,
  sink: MalformedSink,
): T[] {
  if (Array.isArray(value)) return checkList<T>(value, what, valid, desc, sink);
  skipped(sink, what, `a list of ${desc}`);
  return [];
}

function checkPostList(value: unknown, what: string, sink: MalformedSink): PostList {
  if (!isObject(value) || !Array.isArray(value.order) || !isObject(value.posts)) {
    throw malformed(what, "expected a post list with order and posts");
  }
  const posts: Record<string, Post> = {};
  const malformedIds: string[] = [];
  const expected = "a post with its own id, channel, user and times before the year 10000";
  for (const [key, post] of Object.entries(value.posts)) {
    if (!isObject(post) || !validPost(post) || post.id !== key) {
      skipped(
        sink,
        `post ${recordName(post, recordName(key, JSON.stringify(key.slice(0, 40))))} in ${what}`,
        expected,
      );
      if (isMattermostId(key)) malformedIds.push(key);
      continue;
    }
    posts[key] = normalizePost(post as Post, what, sink);
  }
  const order: string[] = [];
  for (const id of value.order) {
    if (typeof id === "string" && Object.hasOwn(posts, id)) order.push(id);
    else if (!(typeof id === "string" && Object.hasOwn(value.posts, id))) {
      const name = recordName(id, JSON.stringify(String(id).slice(0, 40)));
      skipped(sink, `post ${name} listed in ${what}`, "a post sent with its id");
    }
  }
  return {
    order,
    posts,
    next_post_id: typeof value.next_post_id === "string" ? value.next_post_id : "",
    prev_post_id: typeof value.prev_post_id === "string" ? value.prev_post_id : "",
    listed: value.order.length,
    malformedIds,
  };
}

export class MattermostApi {
  /** `onMalformed` hears of each record left out of an answer (default: none). */
  constructor(readonly client: ApiClient, readonly onMalformed: MalformedSink = () => {}) {}

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
    return checkList<Team>(value, what, validTeam, "teams", this.onMalformed);
  }

  /**
   * Every channel the user is a member of (team channels, DMs, GMs), archived included.
   * Servers older than 6.1 lack the route; then each team's list is used (it holds DMs too).
   */
  async channelsForUser(userId: string, teams: readonly Team[]): Promise<Channel[]> {
    const what = "your channels";
    const desc = "channels";
    try {
      const value = await this.client.json<unknown>({
        path: `/users/${userId}/channels`,
        query: { include_deleted: true, last_delete_at: 0 },
        what,
        maxBytes: CHANNEL_LIST_MAX_BYTES,
      });
      return checkList<Channel>(value, what, validChannel, desc, this.onMalformed);
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
        maxBytes: CHANNEL_LIST_MAX_BYTES,
      });
      for (
        const channel of checkList<Channel>(value, teamWhat, validChannel, desc, this.onMalformed)
      ) {
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

  #pagedMembers(path: string, what: string): Promise<Member[]> {
    return this.#pagedList(path, {}, what, validMember, "members", (member) => member.user_id);
  }

  /**
   * Every item of a list paged with `page` and `per_page` until a short page, each once (by
   * `idOf`: a list that changes while it is paged shifts later pages, repeating an item). A
   * server that never ends it cannot page on for ever: a full page that adds no new item (the
   * same page again), or a page past MAX_LIST_PAGES, is an error naming the list and the
   * server.
   */
  async #pagedList<T>(
    path: string,
    query: Record<string, string>,
    what: string,
    valid: (value: Raw) => boolean,
    desc: string,
    idOf: (item: T) => string,
  ): Promise<T[]> {
    const all = new Map<string, T>();
    for (let page = 0;; page++) {
      if (page === MAX_LIST_PAGES) {
        throw malformed(
          what,
          `${this.client.root} still sends full pages after ${MAX_LIST_PAGES} pages ` +
            `(${MAX_LIST_PAGES * PAGE_SIZE} ${desc}), more than any server has; the list is ` +
            `not taken`,
        );
      }
      const value = await this.client.json<unknown>({
        path,
        query: { ...query, page, per_page: PAGE_SIZE },
        what,
      });
      const known = all.size;
      for (const item of checkList<T>(value, what, valid, desc, this.onMalformed)) {
        all.set(idOf(item), item);
      }
      // A page is full by what the server listed, malformed records included.
      if ((value as unknown[]).length < PAGE_SIZE) return [...all.values()];
      if (all.size === known) {
        throw malformed(
          what,
          `${this.client.root} sent a full page ${page} with no ${desc} not already on an ` +
            `earlier page: it would page for ever; the list is not taken`,
        );
      }
    }
  }

  /**
   * One page of a channel's posts, newest first, before `before` (or the newest page).
   * With `etag`, `list` is undefined when the server says nothing changed (304). A page over
   * the size cap (posts near the length limit) is asked for again with half as many posts,
   * down to one; `perPage` is the size the answer was asked with.
   */
  async postsPage(
    channelId: string,
    label: string,
    options: { before?: string; perPage?: number; etag?: string },
  ): Promise<{ list: PostList | undefined; etag: string | undefined; perPage: number }> {
    const what = `posts of channel ${label}`;
    for (let perPage = options.perPage ?? PAGE_SIZE;; perPage = Math.ceil(perPage / 2)) {
      try {
        const { value, etag } = await this.client.conditionalJson<unknown>({
          path: `/channels/${channelId}/posts`,
          query: {
            per_page: perPage,
            before: options.before,
            skipFetchThreads: true,
            collapsedThreads: false,
          },
          what,
        }, options.etag);
        const list = value === undefined ? undefined : checkPostList(value, what, this.onMalformed);
        return { list, etag, perPage };
      } catch (error) {
        if (!(error instanceof AnswerTooLargeError && perPage > 1)) throw error;
      }
    }
  }

  /**
   * Posts of a channel changed after `since` (ms), tombstones included; at most SINCE_LIMIT.
   * Undefined when the answer is over the size cap: like a capped answer, the caller must then
   * crawl the channel (in pages that fit).
   */
  async postsSince(channelId: string, label: string, since: number): Promise<PostList | undefined> {
    const what = `changes in channel ${label}`;
    // since <= 0 asks the server for its newest page instead of the changes (see sinceFor).
    if (!(since >= 1)) throw new RangeError(`since must be at least 1 for ${what}, got ${since}`);
    try {
      const value = await this.client.json<unknown>({
        path: `/channels/${channelId}/posts`,
        query: { since, skipFetchThreads: true, collapsedThreads: false },
        what,
      });
      return checkPostList(value, what, this.onMalformed);
    } catch (error) {
      if (error instanceof AnswerTooLargeError) return undefined;
      throw error;
    }
  }

  /**
   * The earlier versions of one of the user's own posts, as the server keeps them (hidden copies
   * with the text, newest edit first); servers 7.9 and later. A record that is not a copy of
   * this post is left out as malformed. See `editHistoryAnswer` for the errors that are answers.
   */
  async editHistory(postId: string, label: string): Promise<Post[]> {
    const what = `edit history of post ${postId} in ${label}`;
    const value = await this.client.json<unknown>({ path: `/posts/${postId}/edit_history`, what });
    return checkList<Post>(
      value,
      what,
      (p) => validPost(p) && p.original_id === postId,
      "copies of the post with id, times, channel and user",
      this.onMalformed,
    ).map((post) => normalizePost(post, what, this.onMalformed));
  }

  /** One post by id (`GET /posts/{id}`); deleted posts answer 404 (to repair a damaged file). */
  async post(postId: string): Promise<Post> {
    const what = `post ${postId}`;
    const value = await this.client.json<unknown>({ path: `/posts/${postId}`, what });
    return normalizePost(check<Post>(value, what, validPost, "a post"), what, this.onMalformed);
  }

  /** One attachment's FileInfo (`GET /files/{id}/info`). */
  async fileInfo(fileId: string): Promise<FileInfo> {
    const what = `file info ${fileId}`;
    const value = await this.client.json<unknown>({ path: `/files/${fileId}/info`, what });
    return check<FileInfo>(value, what, validFileInfo, "a file info");
  }

  async channel(channelId: string): Promise<Channel> {
    const what = `channel ${channelId}`;
    const value = await this.client.json<unknown>({ path: `/channels/${channelId}`, what });
    return check<Channel>(value, what, validChannel, "a channel");
  }

  async team(teamId: string): Promise<Team> {
    const what = `team ${teamId}`;
    const value = await this.client.json<unknown>({ path: `/teams/${teamId}`, what });
    return check<Team>(value, what, validTeam, "a team");
  }

  async emoji(emojiId: string): Promise<Emoji> {
    const what = `custom emoji ${emojiId}`;
    const value = await this.client.json<unknown>({ path: `/emoji/${emojiId}`, what });
    return check<Emoji>(value, what, validEmoji, "an emoji");
  }

  /**
   * Users by id (unknown ids are left out by the server); halves a batch on 413 and on an
   * answer over the size cap.
   */
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
      return checkList<User>(value, what, validUser, "users", this.onMalformed);
    } catch (error) {
      const tooLarge = (error instanceof ApiError && error.status === 413) ||
        error instanceof AnswerTooLargeError;
      if (!(tooLarge && ids.length > 1)) throw error;
      const half = Math.ceil(ids.length / 2);
      return [
        ...await this.#usersBatch(ids.slice(0, half), since),
        ...await this.#usersBatch(ids.slice(half), since),
      ];
    }
  }

  userImage<T>(userId: string, username: string, write: ImageWriter<T>): Promise<T> {
    return this.#image(`/users/${userId}/image`, `picture of user ${username}`, write);
  }

  teamIcon<T>(teamId: string, name: string, write: ImageWriter<T>): Promise<T> {
    return this.#image(`/teams/${teamId}/image`, `icon of team ${name}`, write);
  }

  emojiImage<T>(emojiId: string, name: string, write: ImageWriter<T>): Promise<T> {
    return this.#image(`/emoji/${emojiId}/image`, `image of emoji ${name}`, write);
  }

  /** An image streamed to `write`, refused past IMAGE_MAX_BYTES. */
  #image<T>(path: string, what: string, write: ImageWriter<T>): Promise<T> {
    return this.client.send(
      { path, what, stream: true, maxBytes: IMAGE_MAX_BYTES },
      (response) =>
        write(response.body ?? new Blob().stream(), response.headers.get("content-type")),
    );
  }

  /**
   * All custom emoji, or undefined when the server has custom emoji disabled (501). Paged by
   * name: without `sort=name` the server orders nothing and pages may overlap or skip. An emoji
   * added or deleted while paging still shifts later pages by one, so ids are de-duplicated.
   */
  async emojis(): Promise<Emoji[] | undefined> {
    try {
      return await this.#pagedList<Emoji>(
        "/emoji",
        { sort: "name" },
        "custom emoji list",
        validEmoji,
        "emoji",
        (emoji) => emoji.id,
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 501) return undefined;
      throw error;
    }
  }

  /**
   * Streams an attachment into `write`, which must consume the whole body or throw (and holds
   * it to the FileInfo's size).
   */
  downloadFile<T>(
    fileId: string,
    name: string,
    write: (body: ReadableStream<Uint8Array>) => Promise<T>,
  ): Promise<T> {
    return this.client.send(
      {
        path: `/files/${fileId}`,
        what: `attachment ${JSON.stringify(name)} (${fileId})`,
        stream: true,
      },
      (response) => write(response.body ?? new Blob().stream()),
    );
  }
}
