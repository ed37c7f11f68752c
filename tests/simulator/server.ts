// HTTP front of the simulator: Mattermost API v4 routes over a World, per
// /work/shared/mattermost-api.md, plus rate limiting, latency and fault injection for tests.
// Some faults are hostile on purpose (echo, flood, redirects through `status` with a
// Location header, odd headers): a server or a proxy in front of it that tries to take
// secrets, memory or time from the client.

import { makePng } from "./png.ts";
import type { Channel, PostRecord, Team, User, World } from "./world.ts";

export type Fault =
  | { kind: "status"; status: number; body?: string; headers?: Record<string, string> }
  /** Headers promise the full Content-Length, then the stream ends half-way. */
  | { kind: "cutBody" }
  /** Waits before answering normally (cut short by Simulator.close()). */
  | { kind: "stall"; ms: number }
  /** 200 whose body is the first half of the real JSON. */
  | { kind: "invalidJson" }
  /** The body trickles: `chunkBytes` at a time with `delayMs` between chunks (mid-body stalls). */
  | { kind: "slowBody"; chunkBytes: number; delayMs: number }
  /**
   * An error answer that quotes the request: every header (Authorization too) and the body (a
   * login's password), as a JSON error message, an HTML page or plain text.
   */
  | { kind: "echo"; status: number; as: "json" | "html" | "text" }
  /**
   * A 200 whose body is filler of `contentType` (JSON objects in an endless list, or zeros),
   * `bytes` long or without end, sent as fast as the client reads.
   */
  | { kind: "flood"; contentType: string; bytes?: number }
  /** The normal answer with these headers added or replaced. */
  | { kind: "headers"; headers: Record<string, string> }
  /**
   * The normal JSON answer as `edit` changes it: records the real server never sends (a null
   * reaction, a post time past the year 9999), to test that one bad record costs only itself.
   */
  | { kind: "rewrite"; edit: (value: unknown) => unknown };

export interface FaultRequest {
  method: string;
  path: string;
  query: string;
  /** 1-based count of requests with this method + path + query, over the simulator's life. */
  attempt: number;
}

export type FaultPlan = (req: FaultRequest) => Fault | undefined;

export interface SimulatorOptions {
  world: World;
  /** X-Version-ID: <version>.<build>.<config hash>.<licensed>. */
  version?: string;
  latencyMs?: number;
  /** false => every /emoji route answers 501. */
  emojiEnabled?: boolean;
  rateLimit?: { perSec: number; maxBurst: number };
  faults?: FaultPlan;
  /** POST /users/ids with more ids than this => 413. */
  maxUsersIdsPayload?: number;
  /**
   * TeamSettings.ExperimentalViewArchivedChannels (default true). false, as servers before v11
   * may have saved it, hides the posts of archived channels (they are still listed).
   */
  viewArchivedChannels?: boolean;
  /** GET /posts/{id}/edit_history exists (servers 7.9 and later; default true). */
  editHistory?: boolean;
  /** EmailSettings.EnableSignInWithUsername / EnableSignInWithEmail (both default true). */
  signInWithUsername?: boolean;
  signInWithEmail?: boolean;
  /**
   * Replica lag of `since` answers (GetPostsSince reads a DB replica, store/sqlstore/
   * post_store.go): a post's latest change is left out until the world clock reaches its
   * `update_at` plus this many ms. Per post, because `update_at` is taken before the commit: a
   * slow transaction shows up after a later, faster one. (A replica would return the post's
   * previous version meanwhile; leaving it out is the same to a client that stores by id.)
   */
  sinceLagMs?: (post: PostRecord) => number;
}

export interface RequestRecord {
  method: string;
  path: string;
  /** Raw query string without "?". */
  query: string;
  /** 0 until the response is ready. */
  status: number;
  authorization: string | null;
  cookie: string | null;
  /** performance.now() at arrival. */
  startedAt: number;
}

export interface Simulator {
  /** Base URL without the /api/v4 suffix. */
  url: string;
  requests: RequestRecord[];
  inFlightPeak: number;
  resetStats(): void;
  close(): Promise<void>;
}

const PER_PAGE_DEFAULT = 60;
const PER_PAGE_MAX = 200;
const SINCE_LIMIT = 1000;
const POST_IDS_MAX = 1000;
const GO_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
/** A 1x1 JPEG: thumbnails and previews are JPEG renditions on the real server. */
const TINY_JPEG = Uint8Array.from(
  atob(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////" +
      "////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQAB" +
      "PxA=",
  ),
  (c) => c.charCodeAt(0),
);

class ApiError extends Error {
  constructor(readonly status: number, readonly id: string, message = id) {
    super(message);
  }
}

const forbidden = () =>
  new ApiError(
    403,
    "api.context.permissions.app_error",
    "You do not have the appropriate permissions.",
  );
const invalidParam = (name: string) =>
  new ApiError(400, "api.context.invalid_url_param.app_error", `Invalid or missing ${name}.`);
const invalidBody = (name: string) =>
  new ApiError(400, "api.context.invalid_body_param.app_error", `Invalid or missing ${name}.`);

interface Ctx {
  req: Request;
  q: URLSearchParams;
  params: Map<string, string>;
}

interface AuthCtx extends Ctx {
  me: User;
}

type Reply = Response | Promise<Response>;

type Route =
  & { method: string; parts: string[] }
  & ({ open: true; handler: (c: Ctx) => Reply } | { open: false; handler: (c: AuthCtx) => Reply });

interface Env {
  world: World;
  version: string;
  /** model.CurrentVersion (first three fields of X-Version-ID), the prefix of computed ETags. */
  etagVersion: string;
  emojiEnabled: boolean;
  maxUsersIdsPayload: number | undefined;
  viewArchivedChannels: boolean;
  editHistory: boolean;
  signInWithUsername: boolean;
  signInWithEmail: boolean;
  /** Whether a `since` query sees a post's latest change yet (see SimulatorOptions.sinceLagMs). */
  replicated: (post: PostRecord) => boolean;
}

// ---- parsing (server/channels/web/params.go semantics) -----------------------------------------

/** strconv.Atoi-like: undefined when not an integer. */
function atoi(s: string | null): number | undefined {
  if (s === null || !/^[+-]?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Math.abs(n) < 2 ** 63 ? n : undefined;
}

/** strconv.ParseBool; errors count as false. */
function bool(q: URLSearchParams, name: string): boolean {
  return GO_TRUE.has(q.get(name) ?? "");
}

function paging(q: URLSearchParams): { page: number; perPage: number } {
  const page = atoi(q.get("page"));
  const perPage = atoi(q.get("per_page"));
  return {
    page: page === undefined || page < 0 ? 0 : page,
    perPage: perPage === undefined || perPage < 0
      ? PER_PAGE_DEFAULT
      : Math.min(perPage, PER_PAGE_MAX),
  };
}

function int64Param(q: URLSearchParams, name: string): number {
  const raw = q.get(name);
  if (raw === null || raw === "") return 0;
  const n = atoi(raw);
  if (n === undefined) throw invalidParam(name);
  return n;
}

const isId = (s: string) => /^[a-z0-9]{26}$/.test(s);

function idParam(c: Ctx, name: string): string {
  const v = c.params.get(name) ?? "";
  if (!isId(v)) throw invalidParam(name);
  return v;
}

function userParam(c: AuthCtx): string {
  return c.params.get("user_id") === "me" ? c.me.id : idParam(c, "user_id");
}

function requireSelf(c: AuthCtx, userId: string): void {
  if (userId !== c.me.id && !c.me.roles.includes("system_admin")) throw forbidden();
}

async function jsonBody(req: Request, name: string): Promise<unknown> {
  try {
    return JSON.parse(await req.text());
  } catch {
    throw invalidBody(name);
  }
}

function idArray(body: unknown, name: string): string[] {
  if (!Array.isArray(body) || body.length === 0) throw invalidBody(name);
  for (const id of body) if (typeof id !== "string" || !isId(id)) throw invalidParam(name);
  return body as string[];
}

// ---- responses ----------------------------------------------------------------------------------

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function appError(err: ApiError, requestId: string): Response {
  return json({
    id: err.id,
    message: err.message,
    detailed_error: "",
    request_id: requestId,
    status_code: err.status,
  }, err.status);
}

/** HandleEtag: exact comparison with If-None-Match; 304 carries the ETag and no body. */
function etagHit(c: Ctx, etag: string): Response | undefined {
  if (c.req.headers.get("If-None-Match") !== etag) return undefined;
  return new Response(null, { status: 304, headers: { ETag: etag } });
}

function bytesResponse(bytes: Uint8Array, headers: Record<string, string>, status = 200) {
  return new Response(bytes.slice(), {
    status,
    headers: { "Content-Length": String(bytes.length), ...headers },
  });
}

/** The server hides empty/zero fields tagged omitempty. */
export function userJson(u: User): Record<string, unknown> {
  const out: Record<string, unknown> = { ...u };
  if (!u.last_picture_update) delete out.last_picture_update;
  if (!u.is_bot) delete out.is_bot;
  if (!u.bot_description) delete out.bot_description;
  if (!u.mfa_active) delete out.mfa_active;
  return out;
}

function teamJson(t: Team): Record<string, unknown> {
  const out: Record<string, unknown> = { ...t };
  if (!t.last_team_icon_update) delete out.last_team_icon_update;
  return out;
}

function defaultAvatar(userId: string): Uint8Array {
  let h = 0;
  for (const ch of userId) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return makePng(16, 16, [h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff]);
}

// ---- rate limiting ------------------------------------------------------------------------------

/** GCRA as in the throttled library: limit = maxBurst + 1, one token per 1/perSec. */
class Gcra {
  #tat = 0;
  readonly #interval: number;
  readonly #tolerance: number;
  readonly limit: number;

  constructor(perSec: number, maxBurst: number) {
    this.#interval = 1000 / perSec;
    this.limit = maxBurst + 1;
    this.#tolerance = this.#interval * this.limit;
  }

  /** Rate-limit headers for a request at `now`; Retry-After is present only when limited. */
  take(now: number): Record<string, string> {
    const tat = Math.max(this.#tat, now);
    const newTat = tat + this.#interval;
    const allowAt = newTat - this.#tolerance;
    const headers: Record<string, string> = { "X-RateLimit-Limit": String(this.limit) };
    if (now < allowAt) {
      headers["X-RateLimit-Remaining"] = "0";
      headers["X-RateLimit-Reset"] = String(Math.ceil((tat - now) / 1000));
      headers["Retry-After"] = String(Math.ceil((allowAt - now) / 1000));
      return headers;
    }
    this.#tat = newTat;
    headers["X-RateLimit-Remaining"] = String(
      Math.max(0, Math.floor((this.#tolerance - (newTat - now)) / this.#interval)),
    );
    headers["X-RateLimit-Reset"] = String(Math.ceil((newTat - now) / 1000));
    return headers;
  }
}

// ---- access rules -------------------------------------------------------------------------------

function canReadChannel(world: World, me: User, ch: Channel): boolean {
  if (world.isChannelMember(ch.id, me.id) || me.roles.includes("system_admin")) return true;
  return ch.type === "O" && world.isTeamMember(ch.team_id, me.id);
}

function readableChannel(env: Env, c: AuthCtx, id: string): Channel {
  const ch = env.world.channels.get(id);
  if (!ch) throw new ApiError(404, "app.channel.get.existing.app_error", "Channel not found.");
  if (!canReadChannel(env.world, c.me, ch)) throw forbidden();
  return ch;
}

function readableTeam(env: Env, c: AuthCtx, id: string): Team {
  const team = env.world.teams.get(id);
  if (!team) throw new ApiError(404, "app.team.get.find.app_error", "Team not found.");
  const open = team.type === "O" && team.allow_open_invite;
  if (!env.world.isTeamMember(id, c.me.id) && !open && !c.me.roles.includes("system_admin")) {
    throw forbidden();
  }
  return team;
}

function knownUser(env: Env, id: string): User {
  const u = env.world.users.get(id);
  if (!u) throw new ApiError(404, "app.user.missing_account.const", "Unable to find the user.");
  return u;
}

/** Channels the user belongs to, filtered per include_deleted / last_delete_at. */
function memberChannels(env: Env, c: AuthCtx, userId: string, keep: (ch: Channel) => boolean) {
  const includeDeleted = bool(c.q, "include_deleted");
  const lastDeleteAt = int64Param(c.q, "last_delete_at");
  return [...env.world.channels.values()].filter((ch) =>
    keep(ch) && env.world.isChannelMember(ch.id, userId) &&
    (ch.delete_at === 0 || (includeDeleted && ch.delete_at >= lastDeleteAt))
  );
}

// ---- post lists ---------------------------------------------------------------------------------

/** First index whose create_at is >= t (or > t when strict). */
function bound(list: readonly PostRecord[], t: number, strict: boolean): number {
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = list[mid]?.create_at ?? 0;
    if (v < t || (strict && v === t)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Walks `list` from `start` by `step`, skipping `skip` matches, collecting up to `limit`. */
function walk(
  list: readonly PostRecord[],
  start: number,
  step: 1 | -1,
  skip: number,
  limit: number,
  keep: (p: PostRecord) => boolean,
): PostRecord[] {
  const out: PostRecord[] = [];
  for (let i = start; i >= 0 && i < list.length && out.length < limit; i += step) {
    const p = list[i];
    if (!p || !keep(p)) continue;
    if (skip > 0) skip--;
    else out.push(p);
  }
  return out;
}

interface PostListJson {
  order: string[];
  posts: Record<string, unknown>;
  next_post_id: string;
  prev_post_id: string;
  has_next?: boolean;
  first_inaccessible_post_time: number;
}

function postListJson(world: World, order: PostRecord[], extra: Iterable<PostRecord> = []) {
  const posts: Record<string, unknown> = {};
  for (const p of [...order, ...extra]) posts[p.id] ??= world.toPost(p);
  const list: PostListJson = {
    order: order.map((p) => p.id),
    posts,
    next_post_id: "",
    prev_post_id: "",
    first_inaccessible_post_time: 0,
  };
  return list;
}

/** model.PostList.Etag: <version>.<order[0]>.<id of newest update>.<its update_at>. */
function postListEtag(env: Env, order: PostRecord[], all: PostRecord[]): string {
  let id = "0", t = 0;
  for (const p of all) {
    if (p.update_at > t || (p.update_at === t && p.id > id)) {
      t = p.update_at;
      id = p.id;
    }
  }
  return `${env.etagVersion}.${order[0]?.id ?? ""}.${id}.${t}`;
}

/** GET /channels/{id}/posts — the four modes of §6.1/§6.2. */
function channelPosts(env: Env, c: AuthCtx): Response {
  const { world } = env;
  const ch = readableChannel(env, c, idParam(c, "channel_id"));
  const includeDeleted = bool(c.q, "include_deleted");
  if (includeDeleted && !c.me.roles.includes("system_admin")) throw forbidden();
  // api4/post.go getPostsForChannel up to v10: before any mode or ETag, an archived channel's
  // posts are refused when the setting is off (v11 removed the setting, PR #30868).
  if (!env.viewArchivedChannels && ch.delete_at !== 0) {
    throw new ApiError(
      403,
      "api.user.view_archived_channels.get_posts_for_channel.app_error",
      "Viewing archived channels is not enabled.",
    );
  }
  const since = int64Param(c.q, "since");
  const after = c.q.get("after") ?? "";
  const before = c.q.get("before") ?? "";
  if (after && !isId(after)) throw invalidParam("after");
  if (before && !isId(before)) throw invalidParam("before");
  const all = world.channelPosts(ch.id);

  // api4/post.go getPostsForChannel: only since > 0 is a change query; since=0 or no since is
  // the ordinary newest page (per_page default 60), with no sign that more posts exist.
  if (since > 0) {
    const rootsOnly = bool(c.q, "collapsedThreads");
    // The store takes LIMIT 1000 before ordering; id order stands in for "whatever the DB picks".
    const picked = [...all, ...world.channelEditHistory(ch.id)]
      .filter((p) =>
        p.update_at > since && env.replicated(p) &&
        (!rootsOnly || (!p.root_id && !p.delete_at))
      )
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, SINCE_LIMIT);
    const union = new Map(picked.map((p) => [p.id, p]));
    for (const p of picked) {
      const root = p.root_id ? world.posts.get(p.root_id) : undefined;
      if (root && env.replicated(root)) union.set(root.id, root);
    }
    const order = [...union.values()]
      .filter((p) => p.update_at > since)
      .sort((a, b) => b.create_at - a.create_at);
    return json(postListJson(world, order, union.values()));
  }

  const etag = `${env.etagVersion}.${world.channelMaxPostUpdateAt(ch.id) || Date.now()}`;
  const hit = etagHit(c, etag);
  if (hit) return hit;

  const { page, perPage } = paging(c.q);
  const visible = (p: PostRecord) => includeDeleted || p.delete_at === 0;
  let order: PostRecord[];
  if (after || before) {
    // store/sqlstore/post_store.go getPostsAround: CreateAt < (or >) the anchor's CreateAt,
    // strictly, so posts sharing the anchor's millisecond are not listed. The anchor's
    // create_at comes from any post with that id, deleted or not, any channel.
    const anchor = world.posts.get(after || before);
    if (!anchor) order = [];
    else if (after) {
      const start = bound(all, anchor.create_at, true);
      order = walk(all, start, 1, page * perPage, perPage, visible).reverse();
    } else {
      const start = bound(all, anchor.create_at, false) - 1;
      order = walk(all, start, -1, page * perPage, perPage, visible);
    }
  } else {
    order = walk(all, all.length - 1, -1, page * perPage, perPage, visible);
  }

  // Threads are fetched for replies on the page only (getParentsPosts joins on RootId != '').
  const extra: PostRecord[] = [];
  const skipThreads = bool(c.q, "skipFetchThreads");
  for (const rootId of new Set(order.map((p) => p.root_id).filter((id) => id !== ""))) {
    const root = world.posts.get(rootId);
    if (root && visible(root)) extra.push(root);
    if (!skipThreads) extra.push(...world.threadReplies(rootId));
  }
  const list = postListJson(world, order, extra);

  // app/post.go AddCursorIdsForPostList; the ids come from post_store.go getPostIdAroundTime,
  // a strict CreateAt < (or >) query: a full page ending on a millisecond that older posts
  // share, with nothing older, gets prev_post_id "" although posts remain.
  let nextSet = false, prevSet = false;
  if (after) {
    if (page === 0) {
      list.prev_post_id = after;
      prevSet = true;
    }
    nextSet = order.length < perPage;
  } else if (before) {
    if (page === 0) {
      list.next_post_id = before;
      nextSet = true;
    }
    prevSet = order.length < perPage;
  }
  const live = (p: PostRecord) => p.delete_at === 0;
  const first = order[0], last = order[order.length - 1];
  if (!nextSet && first) {
    list.next_post_id = walk(all, bound(all, first.create_at, true), 1, 0, 1, live)[0]?.id ?? "";
  }
  if (!prevSet && last) {
    const start = bound(all, last.create_at, false) - 1;
    list.prev_post_id = walk(all, start, -1, 0, 1, live)[0]?.id ?? "";
  }
  return json(list, 200, { ETag: etag });
}

/**
 * GET /posts/{id}/edit_history (api4/post.go getEditHistoryForPost): the post must be found
 * live (GetSinglePost), the caller may edit posts in its channel and is its author, else 403
 * whatever the reason; a post never edited has no copies, and the store's "not found" becomes
 * 404 app.post.get.app_error (app/post.go GetEditHistoryForPost).
 */
function editHistory(env: Env, c: AuthCtx): Response {
  const { world } = env;
  const post = world.posts.get(idParam(c, "post_id"));
  if (!post || post.delete_at) throw forbidden();
  const ch = world.channels.get(post.channel_id);
  const mayEdit = ch !== undefined &&
    (world.isChannelMember(ch.id, c.me.id) || c.me.roles.includes("system_admin"));
  if (!mayEdit || post.user_id !== c.me.id) throw forbidden();
  const copies = world.editHistory(post.id);
  if (copies.length === 0) {
    throw new ApiError(404, "app.post.get.app_error", "Unable to get the post.");
  }
  return json(copies);
}

/** GET /posts/{id}/thread with the camelCase paging of §6.3. */
function postThread(env: Env, c: AuthCtx): Response {
  const { world } = env;
  const id = idParam(c, "post_id");
  const perPageRaw = c.q.get("perPage");
  const perPage = perPageRaw === null || perPageRaw === "" ? 0 : atoi(perPageRaw);
  if (perPage === undefined || perPage < 0 || perPage > PER_PAGE_MAX) throw invalidParam("perPage");
  const fromCreateAt = int64Param(c.q, "fromCreateAt");
  const fromPost = c.q.get("fromPost") ?? "";
  if (fromPost && (!isId(fromPost) || !fromCreateAt)) throw invalidParam("fromPost");
  const direction = c.q.get("direction") ?? "";
  if (direction !== "" && direction !== "up" && direction !== "down") {
    throw invalidParam("direction");
  }
  const post = world.posts.get(id);
  if (!post || post.delete_at) {
    throw new ApiError(404, "app.post.get.app_error", "Unable to get the post.");
  }
  readableChannel(env, c, post.channel_id);
  const rootId = post.root_id || post.id;
  const root = world.posts.get(rootId);
  let rest = [...(root && !root.delete_at ? [root] : []), ...world.threadReplies(rootId)]
    .filter((p) => p.id !== id);
  if (fromCreateAt) {
    const down = direction === "down";
    rest = rest.filter((p) =>
      down
        ? p.create_at > fromCreateAt || (p.create_at === fromCreateAt && p.id > fromPost)
        : p.create_at < fromCreateAt || (p.create_at === fromCreateAt && p.id < fromPost)
    );
  }
  const asc = (a: PostRecord, b: PostRecord) =>
    a.create_at - b.create_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  // Without a direction the database order leaks through; id order is as arbitrary.
  if (direction === "down") rest.sort(asc);
  else if (direction === "up") rest.sort((a, b) => asc(b, a));
  else rest.sort((a, b) => (a.id < b.id ? -1 : 1));
  let hasNext: boolean | undefined;
  if (perPage > 0) {
    hasNext = rest.length > perPage;
    rest = rest.slice(0, perPage);
  }
  const order = [post, ...rest];
  const etag = postListEtag(env, order, order);
  const hit = etagHit(c, etag);
  if (hit) return hit;
  const list = postListJson(world, order);
  if (hasNext !== undefined) list.has_next = hasNext;
  return json(list, 200, { ETag: etag });
}

// ---- files --------------------------------------------------------------------------------------

/**
 * app/file.go GetFileInfo -> store/sqlstore/file_info_store.go Get (`DeleteAt = 0`): deleting a
 * post deletes its file infos (DeleteForPost), so its files answer 404 for good, also to admins.
 */
function readableFile(env: Env, c: AuthCtx) {
  const info = env.world.files.get(idParam(c, "file_id"));
  if (!info || info.delete_at) {
    throw new ApiError(404, "app.file_info.get.app_error", "Unable to get the file info.");
  }
  const ch = env.world.channels.get(info.channel_id);
  if (info.user_id !== c.me.id && (!ch || !canReadChannel(env.world, c.me, ch))) throw forbidden();
  return info;
}

/** Go's http.ServeContent, reduced to what a downloader meets: one byte range, If-Modified-Since. */
function serveFile(env: Env, c: AuthCtx): Response {
  const info = readableFile(env, c);
  const bytes = env.world.fileBytes(info.id) ?? new Uint8Array(0);
  // The server refuses to let the browser render active content inline.
  const type = /html|javascript|ecmascript/i.test(info.mime_type) ? "text/plain" : info.mime_type;
  const lastModified = new Date(info.update_at).toUTCString();
  const disposition = bool(c.q, "download") ? "attachment" : "inline";
  const name = encodeURIComponent(info.name);
  const headers: Record<string, string> = {
    "Content-Type": type,
    "Accept-Ranges": "bytes",
    "Last-Modified": lastModified,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "max-age=2592000, private",
    "Content-Disposition": `${disposition};filename="${name}"; filename*=UTF-8''${name}`,
  };
  const ims = c.req.headers.get("If-Modified-Since");
  if (ims && Math.floor(info.update_at / 1000) * 1000 <= Date.parse(ims)) {
    return new Response(null, { status: 304, headers: { "Last-Modified": lastModified } });
  }
  const range = /^bytes=(\d*)-(\d*)$/.exec(c.req.headers.get("Range") ?? "");
  if (range && (range[1] || range[2])) {
    const size = bytes.length;
    let start: number, end: number;
    if (range[1]) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    } else {
      start = Math.max(0, size - Number(range[2]));
      end = size - 1;
    }
    if (start >= size || end < start) {
      return new Response(null, {
        status: 416,
        headers: { "Content-Range": `bytes */${size}` },
      });
    }
    headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    return bytesResponse(bytes.subarray(start, end + 1), headers, 206);
  }
  return bytesResponse(bytes, headers);
}

function fileRendition(env: Env, c: AuthCtx): Response {
  const info = readableFile(env, c);
  if (!info.has_preview_image) {
    throw new ApiError(400, "api.file.get_file_thumbnail.no_thumbnail.app_error", "No thumbnail.");
  }
  return bytesResponse(TINY_JPEG, { "Content-Type": "image/jpeg" });
}

// ---- emoji --------------------------------------------------------------------------------------

function emojiGuard(env: Env): void {
  if (!env.emojiEnabled) {
    throw new ApiError(501, "api.emoji.disabled.app_error", "Custom emoji have been disabled.");
  }
}

function liveEmoji(env: Env, find: (e: { id: string; name: string }) => boolean) {
  emojiGuard(env);
  for (const e of env.world.emojis.values()) if (!e.delete_at && find(e)) return e;
  throw new ApiError(404, "app.emoji.get.no_result", "We couldn't find the emoji.");
}

/** A reproducible permutation of `items` for `seed` (Fisher-Yates over xorshift32). */
function shuffled<T>(items: T[], seed: number): T[] {
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = items.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const j = x % (i + 1);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

// ---- routes -------------------------------------------------------------------------------------

function buildRoutes(env: Env): Route[] {
  const { world } = env;
  const routes: Route[] = [];
  const open = (method: string, path: string, handler: (c: Ctx) => Reply) =>
    routes.push({ method, parts: path.split("/"), open: true, handler });
  const get = (path: string, handler: (c: AuthCtx) => Reply) =>
    routes.push({ method: "GET", parts: path.split("/"), open: false, handler });
  const post = (path: string, handler: (c: AuthCtx) => Reply) =>
    routes.push({ method: "POST", parts: path.split("/"), open: false, handler });

  open("POST", "users/login", async (c) => {
    const body = await jsonBody(c.req, "login_id") as Record<string, unknown> | null;
    const loginId = String(body?.login_id ?? "").toLowerCase();
    const { signInWithUsername: byName, signInWithEmail: byEmail } = env;
    // api4/user.go login masks an unknown login and a wrong password alike, naming what the
    // server accepts as login id.
    const badCredentials = new ApiError(
      401,
      byName && !byEmail
        ? "api.user.login.invalid_credentials_username"
        : !byName && byEmail
        ? "api.user.login.invalid_credentials_email"
        : "api.user.login.invalid_credentials_email_username",
      "Enter a valid email or username and/or password.",
    );
    // app/login.go GetUserForLogin -> store GetForLogin: username and email only as enabled
    // (LDAP login ids are not modelled).
    const user = (byName ? world.userByName(loginId) : undefined) ??
      (byEmail
        ? [...world.users.values()].find((u) => u.email.toLowerCase() === loginId)
        : undefined);
    if (!user) throw badCredentials;
    // CheckPasswordAndAllCriteria: disabled and bot checks come before the password, MFA after.
    if (user.delete_at) {
      throw new ApiError(401, "api.user.login.inactive.app_error", "Login failed: inactive.");
    }
    if (user.is_bot) {
      throw new ApiError(401, "api.user.login.bot_login_forbidden.app_error", "Bot login.");
    }
    const cred = world.credentials(user.id);
    if (cred.password === undefined || cred.password !== body?.password) throw badCredentials;
    if (cred.mfaSecret !== undefined) {
      // app/authentication.go CheckUserMfa (7.x to 11.x): a code the TOTP library cannot parse
      // (missing, not 6 digits or an 8-digit scratch code) is an error, 400; a parsable but
      // wrong, expired or reused code is bad_code, 401. Both pass api4/user.go's masking.
      const code = typeof body?.token === "string" ? body.token : "";
      if (!/^(\d{6}|[1-9]\d{7})$/.test(code)) {
        throw new ApiError(400, "mfa.validate_token.authenticate.app_error", "Invalid MFA token.");
      }
      if (code !== cred.mfaSecret) {
        throw new ApiError(
          401,
          "api.user.check_user_mfa.bad_code.app_error",
          "Invalid or expired MFA token.",
        );
      }
    }
    const session = world.createSession(user.id);
    const res = json(userJson(user), 200, { Token: session.token });
    if (c.req.headers.get("X-Requested-With") === "XMLHttpRequest") {
      res.headers.append("Set-Cookie", `MMAUTHTOKEN=${session.token}; Path=/; HttpOnly`);
      res.headers.append("Set-Cookie", `MMUSERID=${user.id}; Path=/`);
      res.headers.append("Set-Cookie", `MMCSRF=${session.csrf_token}; Path=/`);
    }
    return res;
  });

  open("POST", "users/logout", (c) => {
    const token = findToken(c.req, c.q)?.token;
    if (token !== undefined) world.sessions.delete(token);
    return json({ status: "OK" });
  });

  open("GET", "system/ping", (c) => {
    const body: Record<string, string> = {
      ActiveSearchBackend: "database",
      AndroidLatestVersion: "",
      AndroidMinVersion: "",
      IosLatestVersion: "",
      IosMinVersion: "",
      status: "OK",
    };
    if (bool(c.q, "get_server_status")) body.database_status = body.filestore_status = "OK";
    return json(body);
  });

  open("GET", "config/client", (c) => {
    if (c.q.get("format") !== "old") {
      throw new ApiError(501, "api.config.client.old_format.app_error", "Not supported yet.");
    }
    const parts = env.version.split(".");
    return json({
      Version: env.etagVersion,
      BuildNumber: parts.slice(3, -2).join("."),
      BuildHash: parts.at(-2) ?? "",
      IsLicensed: parts.at(-1) ?? "false",
      SiteName: "Mattermost",
      EnableCustomEmoji: String(env.emojiEnabled),
      EnableUserAccessTokens: "true",
      ExperimentalViewArchivedChannels: String(env.viewArchivedChannels),
      MaxFileSize: "104857600",
    });
  });

  post("users/ids", async (c) => {
    const ids = idArray(await jsonBody(c.req, "user_ids"), "user_ids");
    if (env.maxUsersIdsPayload !== undefined && ids.length > env.maxUsersIdsPayload) {
      throw new ApiError(413, "api.context.request_body_too_large.app_error", "Too large.");
    }
    const since = int64Param(c.q, "since");
    const users = [...new Set(ids)].map((id) => world.users.get(id))
      .filter((u): u is User => u !== undefined && u.update_at > since);
    return json(users.map(userJson));
  });

  get("users/username/:username", (c) => {
    const u = world.userByName(c.params.get("username") ?? "");
    if (!u) throw new ApiError(404, "app.user.get_by_username.app_error", "User not found.");
    return json(userJson(u));
  });

  get("users/:user_id", (c) => {
    const u = knownUser(env, userParam(c));
    // user.Etag(showFullName, showEmail): version.id.update_at.tos.tos_at.true.true.bot_icon
    const etag = `${env.etagVersion}.${u.id}.${u.update_at}..0.true.true.0`;
    return etagHit(c, etag) ?? json(userJson(u), 200, { ETag: etag });
  });

  get("users/:user_id/image", (c) => {
    const u = knownUser(env, userParam(c));
    const etag = String(u.last_picture_update);
    const hit = etagHit(c, etag);
    if (hit) return hit;
    const bytes = world.userPicture(u.id) ?? defaultAvatar(u.id);
    return bytesResponse(bytes, {
      "Content-Type": "image/png",
      "Cache-Control": "max-age=86400, private",
      ETag: etag,
    });
  });

  get("users/:user_id/teams", (c) => {
    const uid = userParam(c);
    requireSelf(c, uid);
    const teams = [...world.teams.values()].filter((t) => world.isTeamMember(t.id, uid));
    return json(teams.map(teamJson));
  });

  get("users/:user_id/teams/members", (c) => {
    const uid = userParam(c);
    requireSelf(c, uid);
    const members = [...world.teams.keys()].flatMap((tid) =>
      world.teamMembers(tid).filter((m) => m.user_id === uid && m.delete_at === 0)
    );
    return json(members);
  });

  get("users/:user_id/channels", (c) => {
    const uid = userParam(c);
    requireSelf(c, uid);
    return json(memberChannels(env, c, uid, () => true));
  });

  get("users/:user_id/teams/:team_id/channels", (c) => {
    const uid = userParam(c);
    requireSelf(c, uid);
    const tid = idParam(c, "team_id");
    if (!world.isTeamMember(tid, uid)) throw forbidden();
    const list = memberChannels(env, c, uid, (ch) => ch.team_id === tid || ch.team_id === "")
      .sort((a, b) => a.display_name.localeCompare(b.display_name, "en"));
    // model.ChannelList.Etag
    let id = "0", t = 0;
    for (const ch of list) {
      if (ch.last_post_at > t) [t, id] = [ch.last_post_at, ch.id];
      if (ch.update_at > t) [t, id] = [ch.update_at, ch.id];
    }
    const etag = `${env.etagVersion}.${id}.${t}.0.${list.length}`;
    return etagHit(c, etag) ?? json(list, 200, { ETag: etag });
  });

  get("teams/name/:name", (c) => {
    const name = (c.params.get("name") ?? "").toLowerCase();
    const team = [...world.teams.values()].find((t) => t.name === name);
    if (!team) throw new ApiError(404, "app.team.get_by_name.missing.app_error", "No team.");
    return json(teamJson(readableTeam(env, c, team.id)));
  });

  get("teams/:team_id", (c) => json(teamJson(readableTeam(env, c, idParam(c, "team_id")))));

  get("teams/:team_id/members", (c) => {
    const team = readableTeam(env, c, idParam(c, "team_id"));
    const { page, perPage } = paging(c.q);
    const members = world.teamMembers(team.id).filter((m) => m.delete_at === 0)
      .sort((a, b) => (a.user_id < b.user_id ? -1 : 1));
    return json(members.slice(page * perPage, page * perPage + perPage));
  });

  get("teams/:team_id/image", (c) => {
    const team = readableTeam(env, c, idParam(c, "team_id"));
    // The ETag check runs before the icon is read, so "0" matches even without an icon.
    const etag = String(team.last_team_icon_update);
    const hit = etagHit(c, etag);
    if (hit) return hit;
    const icon = world.teamIcon(team.id);
    if (!team.last_team_icon_update || !icon) {
      throw new ApiError(404, "api.team.get_team_icon.read_file.app_error", "No team icon.");
    }
    return bytesResponse(icon, {
      "Content-Type": "image/png",
      "Cache-Control": "max-age=86400, private",
      ETag: etag,
    });
  });

  get("teams/:team_id/channels/name/:name", (c) => {
    const tid = idParam(c, "team_id");
    const name = (c.params.get("name") ?? "").toLowerCase();
    const ch = [...world.channels.values()].find((x) => x.team_id === tid && x.name === name);
    // Unreadable channels answer 404 too, so names do not leak.
    if (
      !ch || (ch.delete_at && !bool(c.q, "include_deleted")) || !canReadChannel(world, c.me, ch)
    ) {
      throw new ApiError(404, "app.channel.get_by_name.missing.app_error", "Channel not found.");
    }
    return json(ch);
  });

  get("channels/:channel_id", (c) => json(readableChannel(env, c, idParam(c, "channel_id"))));

  get("channels/:channel_id/members", (c) => {
    const ch = readableChannel(env, c, idParam(c, "channel_id"));
    const { page, perPage } = paging(c.q);
    const members = world.channelMembers(ch.id).sort((a, b) => (a.user_id < b.user_id ? -1 : 1));
    return json(members.slice(page * perPage, page * perPage + perPage));
  });

  get("channels/:channel_id/stats", (c) => {
    const ch = readableChannel(env, c, idParam(c, "channel_id"));
    const members = world.channelMembers(ch.id)
      .filter((m) => world.users.get(m.user_id)?.delete_at === 0);
    const posts = world.channelPosts(ch.id).filter((p) => !p.delete_at);
    return json({
      channel_id: ch.id,
      member_count: members.length,
      guest_count: 0,
      pinnedpost_count: posts.filter((p) => p.is_pinned).length,
      files_count: [...world.files.values()]
        .filter((f) => f.channel_id === ch.id && !f.delete_at && f.post_id).length,
    });
  });

  get("channels/:channel_id/posts", (c) => channelPosts(env, c));

  get("channels/:channel_id/pinned", (c) => {
    const ch = readableChannel(env, c, idParam(c, "channel_id"));
    const order = world.channelPosts(ch.id).filter((p) => p.is_pinned && !p.delete_at).reverse();
    return json(postListJson(world, order));
  });

  post("posts/ids", async (c) => {
    const ids = idArray(await jsonBody(c.req, "post_ids"), "post_ids");
    if (ids.length > POST_IDS_MAX) throw invalidBody("post_ids");
    const posts = [...new Set(ids)].map((id) => world.posts.get(id)).filter(
      (p): p is PostRecord => {
        const ch = p && !p.delete_at ? world.channels.get(p.channel_id) : undefined;
        return ch !== undefined && canReadChannel(world, c.me, ch);
      },
    ).sort((a, b) => b.create_at - a.create_at);
    return json(posts.map((p) => world.toPost(p)));
  });

  // api4/post.go getPost: include_deleted only for system admins (403 before anything else);
  // app/post.go GetPostIfAuthorized -> GetSinglePost: a missing post, or a deleted one without
  // include_deleted, is 404 app.post.get.app_error; then read access to its channel (a public
  // channel's posts for any member of its team); the ETag is model.Post.Etag,
  // `<version>.<id>.<update_at>`, and If-None-Match gives 304.
  get("posts/:post_id", (c) => {
    const includeDeleted = bool(c.q, "include_deleted");
    if (includeDeleted && !c.me.roles.includes("system_admin")) throw forbidden();
    const p = world.posts.get(idParam(c, "post_id"));
    if (!p || (p.delete_at && !includeDeleted)) {
      throw new ApiError(404, "app.post.get.app_error", "Unable to get the post.");
    }
    readableChannel(env, c, p.channel_id);
    const etag = `${env.etagVersion}.${p.id}.${p.update_at}`;
    return etagHit(c, etag) ?? json(world.toPost(p), 200, { ETag: etag });
  });

  get("posts/:post_id/thread", (c) => postThread(env, c));

  // Added in 7.9: older servers answer the router's 404 (api.context.404.app_error).
  if (env.editHistory) get("posts/:post_id/edit_history", (c) => editHistory(env, c));

  get("files/:file_id", (c) => serveFile(env, c));
  get("files/:file_id/info", (c) => json(readableFile(env, c)));
  get("files/:file_id/thumbnail", (c) => fileRendition(env, c));
  get("files/:file_id/preview", (c) => fileRendition(env, c));

  let emojiScans = 0;
  get("emoji", (c) => {
    emojiGuard(env);
    const sort = c.q.get("sort") ?? "";
    if (sort !== "" && sort !== "name") throw invalidParam("sort");
    const { page, perPage } = paging(c.q);
    const live = [...world.emojis.values()].filter((e) => !e.delete_at);
    // store/sqlstore/emoji_store.go GetList: ORDER BY Name only with sort=name; without it
    // LIMIT/OFFSET run on no order, which Postgres may change between queries, so pages can
    // overlap and skip. Each unsorted request here gets its own order.
    const list = sort === "name"
      ? live.sort((a, b) => (a.name < b.name ? -1 : 1))
      : shuffled(live, ++emojiScans);
    return json(list.slice(page * perPage, page * perPage + perPage));
  });

  get("emoji/name/:name", (c) => json(liveEmoji(env, (e) => e.name === c.params.get("name"))));

  get("emoji/:emoji_id", (c) => {
    const id = idParam(c, "emoji_id");
    return json(liveEmoji(env, (e) => e.id === id));
  });

  get("emoji/:emoji_id/image", (c) => {
    const id = idParam(c, "emoji_id");
    const e = liveEmoji(env, (x) => x.id === id);
    const img = world.emojiImage(e.id);
    if (!img) throw new ApiError(404, "api.emoji.get_image.read.app_error", "No image.");
    return bytesResponse(img.bytes, {
      "Content-Type": img.mimeType,
      "Cache-Control": "max-age=2592000, private",
    });
  });

  return routes;
}

// ---- authentication -----------------------------------------------------------------------------

/** app/authentication.go ParseAuthTokenFromRequest: cookie, then header, then query string. */
function findToken(
  req: Request,
  q: URLSearchParams,
): { token: string; cookie: boolean } | undefined {
  for (const part of (req.headers.get("Cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === "MMAUTHTOKEN") return { token: v.join("="), cookie: true };
  }
  const header = req.headers.get("Authorization") ?? "";
  if (header.length > 6 && header.slice(0, 6).toUpperCase() === "BEARER") {
    return { token: header.slice(7), cookie: false };
  }
  if (header.length > 5 && header.slice(0, 5).toLowerCase() === "token") {
    return { token: header.slice(6), cookie: false };
  }
  const qs = q.get("access_token");
  return qs ? { token: qs, cookie: false } : undefined;
}

function authenticate(world: World, c: Ctx): User {
  const expired = new ApiError(
    401,
    "api.context.session_expired.app_error",
    "Invalid or expired session, please login again.",
  );
  const found = findToken(c.req, c.q);
  if (!found) throw expired;
  const session = world.sessions.get(found.token);
  let userId: string | undefined;
  if (session) {
    if (session.expires_at && session.expires_at <= world.now()) throw expired;
    // A cookie-authenticated write must prove it is not CSRF (web/handlers.go checkCSRFToken).
    if (found.cookie && c.req.method !== "GET") {
      if (c.req.headers.get("X-CSRF-Token") !== session.csrf_token) throw expired;
    }
    userId = session.user_id;
  } else if (!found.cookie) {
    userId = world.accessTokens.get(found.token);
  }
  const user = userId === undefined ? undefined : world.users.get(userId);
  if (!user || user.delete_at) throw expired;
  return user;
}

// ---- server -------------------------------------------------------------------------------------

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

async function cutBody(res: Response): Promise<Response> {
  if (res.status === 304 || !res.body) return res;
  const bytes = new Uint8Array(await res.arrayBuffer());
  const headers = new Headers(res.headers);
  headers.set("Content-Length", String(bytes.length));
  const part = bytes.slice(0, Math.floor(bytes.length / 2));
  // Closing early under a longer Content-Length makes Deno drop the connection mid-body.
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (part.length) controller.enqueue(part);
      controller.close();
    },
  });
  return new Response(body, { status: res.status, headers });
}

async function slowBody(
  res: Response,
  chunkBytes: number,
  delayMs: number,
  signal: AbortSignal,
): Promise<Response> {
  if (res.status === 304 || !res.body) return res;
  const bytes = new Uint8Array(await res.arrayBuffer());
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (offset > 0) await sleep(delayMs, signal);
      if (offset >= bytes.length || signal.aborted) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunkBytes));
      offset += chunkBytes;
    },
  });
  return new Response(body, { status: res.status, headers: res.headers });
}

/** The hostile `echo` fault: an error answer quoting the request's headers and body. */
async function echo(
  req: Request,
  status: number,
  as: "json" | "html" | "text",
  requestId: string,
): Promise<Response> {
  // The credentials first, as a careless error handler would print them: they survive any cut.
  const headers = [...req.headers].sort(([a]) => a === "authorization" ? -1 : 0)
    .map(([name, value]) => `${name}: ${value}`).join("\n");
  const quoted = `${req.method} ${new URL(req.url).pathname}\n${await req.text()}\n${headers}`;
  if (as === "json") {
    return json({
      id: "api.simulator.echo.app_error",
      message: `could not handle ${quoted}`,
      detailed_error: "",
      request_id: requestId,
      status_code: status,
    }, status);
  }
  if (as === "text") return new Response(quoted, { status });
  const escaped = quoted.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
  return new Response(`<html><body><h1>${status}</h1><pre>${escaped}</pre></body></html>`, {
    status,
    headers: { "Content-Type": "text/html" },
  });
}

/** The hostile `flood` fault: filler sent as fast as it is read, `bytes` long or endless. */
function flood(contentType: string, bytes: number | undefined, signal: AbortSignal): Response {
  const isJson = contentType.includes("json");
  const unit = isJson
    ? new TextEncoder().encode(`{"id":"${"x".repeat(26)}","message":"${"y".repeat(200)}"},`)
    : new Uint8Array(64 * 1024);
  const chunk = new Uint8Array(Math.ceil((64 * 1024) / unit.length) * unit.length);
  for (let at = 0; at < chunk.length; at += unit.length) chunk.set(unit, at);
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (isJson) controller.enqueue(new TextEncoder().encode("["));
    },
    pull(controller) {
      if (signal.aborted) return controller.close();
      const left = bytes === undefined ? chunk.length : Math.min(chunk.length, bytes - sent);
      if (left <= 0) return controller.close();
      controller.enqueue(chunk.slice(0, left));
      sent += left;
    },
  });
  return new Response(body, { headers: { "Content-Type": contentType } });
}

async function truncateJson(res: Response): Promise<Response> {
  const text = res.status === 304 ? "" : await res.text();
  const body = text.length > 1 ? text.slice(0, Math.floor(text.length / 2)) : "{";
  const headers = new Headers(res.headers);
  headers.delete("Content-Length");
  headers.set("Content-Type", "application/json");
  return new Response(body, { status: 200, headers });
}

export function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const version = opts.version ?? "9.11.0.9.11.0.abc123.false";
  const env: Env = {
    world: opts.world,
    version,
    etagVersion: version.split(".").slice(0, 3).join("."),
    emojiEnabled: opts.emojiEnabled ?? true,
    maxUsersIdsPayload: opts.maxUsersIdsPayload,
    viewArchivedChannels: opts.viewArchivedChannels ?? true,
    editHistory: opts.editHistory ?? true,
    signInWithUsername: opts.signInWithUsername ?? true,
    signInWithEmail: opts.signInWithEmail ?? true,
    replicated: (post) => {
      const lag = opts.sinceLagMs?.(post) ?? 0;
      return lag <= 0 || opts.world.now() >= post.update_at + lag;
    },
  };
  const routes = buildRoutes(env);
  const limiter = opts.rateLimit && new Gcra(opts.rateLimit.perSec, opts.rateLimit.maxBurst);
  const attempts = new Map<string, number>();
  const closing = new AbortController();
  let inFlight = 0;

  const route = async (req: Request, url: URL, requestId: string): Promise<Response> => {
    const parts = url.pathname.startsWith("/api/v4/")
      ? url.pathname.slice(8).split("/").filter((s) => s !== "")
      : undefined;
    const found = parts &&
      routes.find((r) =>
        r.method === req.method && r.parts.length === parts.length &&
        r.parts.every((p, i) => p.startsWith(":") || p === parts[i])
      );
    try {
      if (!parts || !found) {
        throw new ApiError(404, "api.context.404.app_error", "Sorry, we could not find the page.");
      }
      const params = new Map<string, string>();
      found.parts.forEach((p, i) => {
        if (p.startsWith(":")) params.set(p.slice(1), decodeURIComponent(parts[i] ?? ""));
      });
      const c: Ctx = { req, q: url.searchParams, params };
      if (found.open) return await found.handler(c);
      return await found.handler({ ...c, me: authenticate(env.world, c) });
    } catch (err) {
      if (err instanceof ApiError) return appError(err, requestId);
      const message = err instanceof Error ? err.message : String(err);
      return appError(new ApiError(500, "api.simulator.internal.app_error", message), requestId);
    }
  };

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const query = url.search.slice(1);
    const record: RequestRecord = {
      method: req.method,
      path: url.pathname,
      query,
      status: 0,
      authorization: req.headers.get("Authorization"),
      cookie: req.headers.get("Cookie"),
      startedAt: performance.now(),
    };
    sim.requests.push(record);
    sim.inFlightPeak = Math.max(sim.inFlightPeak, ++inFlight);
    // Not req.signal: Deno fires it on every completed response. close() ends all waits instead.
    const signal = closing.signal;
    try {
      const key = `${req.method} ${url.pathname}?${query}`;
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      const fault = opts.faults?.({ method: req.method, path: url.pathname, query, attempt });
      if (fault?.kind === "stall") await sleep(fault.ms, signal);
      const requestId = crypto.randomUUID().replaceAll("-", "").slice(0, 26);
      const limit = limiter?.take(performance.now()) ?? {};
      let res: Response;
      if (fault?.kind === "echo") {
        res = await echo(req, fault.status, fault.as, requestId);
      } else if (fault?.kind === "flood") {
        res = flood(fault.contentType, fault.bytes, signal);
      } else if (fault?.kind === "status") {
        res = fault.body === undefined
          ? appError(
            new ApiError(fault.status, "api.simulator.injected_fault.app_error"),
            requestId,
          )
          : new Response(fault.body, {
            status: fault.status,
            headers: { "Content-Type": "text/plain; charset=utf-8" },
          });
      } else if (limit["Retry-After"]) {
        res = new Response("limit exceeded\n", {
          status: 429,
          headers: { "Content-Type": "text/plain; charset=utf-8" },
        });
      } else {
        res = await route(req, url, requestId);
      }
      const headers: Record<string, string> = {
        "X-Request-ID": requestId,
        "X-Version-ID": version,
        ...limit,
        ...(fault?.kind === "status" || fault?.kind === "headers" ? fault.headers : {}),
      };
      for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
      if (!req.bodyUsed) await req.body?.cancel();
      if (opts.latencyMs) await sleep(opts.latencyMs, signal);
      if (fault?.kind === "rewrite" && res.ok) {
        const edited = JSON.stringify(fault.edit(await res.json()));
        res = new Response(edited, { status: res.status, headers: res.headers });
        res.headers.delete("Content-Length");
      }
      if (fault?.kind === "cutBody") res = await cutBody(res);
      if (fault?.kind === "invalidJson") res = await truncateJson(res);
      if (fault?.kind === "slowBody") {
        res = await slowBody(res, fault.chunkBytes, fault.delayMs, signal);
      }
      record.status = res.status;
      return res;
    } finally {
      inFlight--;
    }
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handle);
  const sim: Simulator = {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests: [],
    inFlightPeak: 0,
    resetStats() {
      sim.requests.length = 0;
      sim.inFlightPeak = inFlight;
    },
    async close() {
      closing.abort();
      await server.shutdown();
    },
  };
  return Promise.resolve(sim);
}
