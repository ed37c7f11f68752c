/**
 * Pure decisions of the incremental sync: how to bring one channel up to date, how a stored
 * post absorbs what the server says about it, where the next crawl page starts, and which
 * watermark a finished crawl may claim. No I/O here, so every rule is tested on plain data.
 */
import { type Channel, isTime, type Post } from "../model/records.ts";
import { editAt, type PostVersion } from "../store/history.ts";
import type { ChannelState } from "../store/state.ts";

/** A pending attachment that answers 404 in this many runs in a row is given up. */
export const NOT_FOUND_RUNS = 3;

/** Replica lag safety: `since` asks again for this much before the watermark. */
export const SINCE_OVERLAP_MS = 5 * 60 * 1000;

export type ChannelPlan =
  | { kind: "crawl"; reason: "new" | "no-watermark" | "update-old-posts" | "damaged-state" }
  | { kind: "resume"; cursor: string; watermark: number }
  | { kind: "incremental"; watermark: number; etag: string | undefined };

/**
 * How to sync a channel given its state. A channel with posts but no state was written by
 * the original matterbak: its history counts as complete and its watermark comes from the
 * stored posts (`storedWatermark`). A channel without a watermark (empty when last seen) is
 * crawled: there is no change query for "everything since nothing" (see `sinceFor`). Posts
 * whose state file is there but damaged are never adopted like matterbak's: that state may have
 * described an unfinished crawl, so the channel is crawled again in full.
 */
export function planChannel(
  state: ChannelState | undefined,
  options: { updateOldPosts: boolean; storedWatermark: number | undefined; damagedState?: boolean },
): ChannelPlan {
  if (options.updateOldPosts) return { kind: "crawl", reason: "update-old-posts" };
  if (options.damagedState) return { kind: "crawl", reason: "damaged-state" };
  if (!state) {
    if (options.storedWatermark === undefined) return { kind: "crawl", reason: "new" };
    if (options.storedWatermark <= 0) return { kind: "crawl", reason: "no-watermark" };
    return { kind: "incremental", watermark: options.storedWatermark, etag: undefined };
  }
  if (!state.historyComplete) {
    if (!state.cursor) return { kind: "crawl", reason: "new" };
    return { kind: "resume", cursor: state.cursor, watermark: state.watermark };
  }
  if (state.watermark <= 0) return { kind: "crawl", reason: "no-watermark" };
  return { kind: "incremental", watermark: state.watermark, etag: state.etag };
}

/**
 * The posts a channel's sync is expected to receive: the server's count of the channel's posts
 * minus the post files stored, or all of them for a crawl from the top. An estimate for the
 * progress display: deleted posts never seen are in the count, and some servers leave join and
 * leave messages out of it (post_store.go SaveMultiple increments TotalMsgCount per saved post;
 * no delete decrements it).
 */
export function postsToFetch(channel: Channel, stored: number, plan: ChannelPlan): number {
  const total = isTime(channel.total_msg_count) ? channel.total_msg_count : 0;
  return plan.kind === "crawl" ? total : Math.max(0, total - stored);
}

/**
 * The `since` value for a watermark: never below 1. The server treats `since=0` as no `since`
 * at all and answers with the newest 60 posts (api4/post.go getPostsForChannel), which would
 * pass for a complete change list.
 */
export function sinceFor(watermark: number): number {
  return Math.max(1, watermark - SINCE_OVERLAP_MS);
}

/** True when the server is an edit-history copy: never stored as a post. */
export function isHistoryCopy(post: Post): boolean {
  return post.delete_at > 0 && typeof post.original_id === "string" && post.original_id !== "";
}

/**
 * What to store for a post given what is stored (if anything) and what the server sent.
 * A deletion keeps the stored content and only records `delete_at` (the server sends an
 * emptied tombstone); an older copy never replaces a newer one; otherwise the server wins.
 * Returns undefined when there is nothing to store (a tombstone of a post we never had).
 */
export function mergePost(stored: Post | undefined, incoming: Post): Post | undefined {
  if (incoming.delete_at > 0) {
    if (!stored) return undefined;
    if (stored.delete_at > 0) return stored;
    return {
      ...stored,
      delete_at: incoming.delete_at,
      update_at: Math.max(stored.update_at, incoming.update_at),
    };
  }
  if (stored && stored.update_at > incoming.update_at) return stored;
  return incoming;
}

/**
 * The versions the backup loses sight of when `incoming` replaces the stored post: the stored
 * one, when the server's is a later edit; and for a post deleted after an edit the backup never
 * saw, that edit (its tombstone tells when, not what: the post file keeps the last known text).
 */
export function displacedVersions(stored: Post | undefined, incoming: Post): PostVersion[] {
  if (!stored || stored.delete_at > 0 || editAt(incoming) <= editAt(stored)) return [];
  if (incoming.delete_at > 0) return [{ from: "changes", post: incoming }];
  return [{ from: "backup", post: stored }];
}

/** One of the user's own posts, live and edited: the server keeps its earlier versions for them. */
export function isOwnEdited(post: Post, meId: string): boolean {
  return post.delete_at === 0 && post.user_id === meId && editAt(post) > 0;
}

/**
 * Whether to ask the server for a post's edit history: one of the user's own posts, live and
 * edited, whose history has not taken in the server's since its latest edit (`askedAt`, see
 * PostHistory.edit_history_at): the server may keep versions the backup never saw. Derived from
 * the files, so an edit stored just before a crash is still asked about when seen again.
 */
export function asksEditHistory(post: Post, meId: string, askedAt: number | undefined): boolean {
  return isOwnEdited(post, meId) && askedAt !== editAt(post);
}

/** A stored post marked deleted at `deleteAt` (content kept), or itself if already deleted. */
export function markDeleted(stored: Post, deleteAt: number): Post {
  return stored.delete_at > 0 ? stored : { ...stored, delete_at: deleteAt };
}

/**
 * The `before=` cursor for the page after this one. `before` compares `create_at` strictly,
 * so posts sharing the oldest millisecond of the page could be skipped at the boundary; the
 * cursor is therefore the oldest post that is strictly newer than that millisecond, and the
 * next page repeats the posts of that millisecond (duplicates are merged by id). When the
 * whole page shares one millisecond there is no such post and the last one is used.
 */
export function nextCursor(
  order: readonly string[],
  posts: Record<string, Post>,
): string | undefined {
  const last = order.at(-1);
  if (last === undefined) return undefined;
  const oldest = posts[last]?.create_at ?? 0;
  for (let i = order.length - 2; i >= 0; i--) {
    const id = order[i] as string;
    if ((posts[id]?.create_at ?? 0) > oldest) return id;
  }
  return last;
}

/** A `before=` cursor: the post's id and its `create_at` (unknown for an old sync state). */
export interface Cursor {
  id: string;
  at: number | undefined;
}

/**
 * Why the crawl may not go on from `previous` to `next`, or undefined when it may. The server
 * answers `before=X` with posts strictly older than X (store/sqlstore/post_store.go
 * getPostsAround: `CreateAt < X's`), and nextCursor picks a post of that page newer than its
 * oldest millisecond but never X's, so a real server's cursors are strictly older each page.
 * One that repeats or is not older (the same page again, or newer posts) would page for ever.
 */
export function cursorProblem(previous: Cursor, next: Cursor): string | undefined {
  if (next.id === previous.id) return `the next page starts again before post ${next.id}`;
  if (previous.at === undefined || next.at === undefined || next.at < previous.at) {
    return undefined;
  }
  return `the page before post ${previous.id} (${new Date(previous.at).toISOString()}) leads ` +
    `to post ${next.id} (${new Date(next.at).toISOString()}), which is not older`;
}

/**
 * Whether a crawl page ends the history. `prev_post_id` comes from a strict `create_at <`
 * query (post_store.go getPostIdAroundTime): after a full page that ends on a millisecond
 * older posts share it is empty although posts remain, so on a full page it is not trusted
 * and the next page is asked for (it comes back short, or full when more remain). `listed`
 * counts every post the server listed, malformed ones left out included.
 */
export function isLastPage(
  list: { listed: number; prev_post_id: string },
  perPage: number,
): boolean {
  return list.listed === 0 || (list.prev_post_id === "" && list.listed < perPage);
}

/**
 * The watermark a crawl from the newest post may claim. Posts crawled early can change while
 * later pages are fetched, so the highest `update_at` seen overall is not safe. Two bounds
 * are: the highest `update_at` on the first page (nothing changed after the crawl started can
 * be older than that), and the overall highest minus the crawl's duration. The larger wins.
 */
export function crawlWatermark(
  firstPageMax: number,
  overallMax: number,
  durationMs: number,
): number {
  return Math.max(firstPageMax, overallMax - Math.ceil(durationMs));
}

/** Highest `update_at` among posts (0 for none). */
export function maxUpdateAt(posts: Iterable<Post>): number {
  let max = 0;
  for (const post of posts) max = Math.max(max, post.update_at);
  return max;
}

/**
 * What the first crawl of a folder it started empty knows of the post files there, so that it
 * need not look for a post's file before writing it. The crawl goes from the newest post to the
 * oldest, each page strictly older than the one before (`before` compares `create_at`), so no
 * file is older than the crawl's place but those of posts the server sent along ahead of their
 * page: the roots of the replies on a page (`getParentsPosts`), which may be far older. Those
 * are remembered until the crawl passes them. Memory holds those roots and the ids of the
 * attachments whose records were written (one id each, 26 characters: 5 MB for 200,000).
 */
export class FirstCrawl {
  /** Every post stored so far is at least this old, or in #ahead. */
  #below = Infinity;
  #ahead = new Map<string, number>();

  /** Attachments whose record was written (a root sent ahead brings its files twice). */
  #infos = new Set<string>();

  /** False when the folder certainly holds no record of the attachment. */
  mayHoldInfo(fileId: string): boolean {
    return this.#infos.has(fileId);
  }

  storedInfo(fileId: string): void {
    this.#infos.add(fileId);
  }

  /** False when the folder certainly holds no file of the post. */
  mayHold(post: { id: string; create_at: number }): boolean {
    return post.create_at >= this.#below || this.#ahead.has(post.id);
  }

  /** After a page of `list` is written: `stored` holds its posts as written (or undefined). */
  stored(
    list: { order: readonly string[]; posts: Record<string, Post> },
    stored: Iterable<Post | undefined>,
  ): void {
    let below = this.#below;
    for (const id of list.order) below = Math.min(below, list.posts[id]?.create_at ?? below);
    for (const post of stored) {
      if (post && post.create_at < below) this.#ahead.set(post.id, post.create_at);
    }
    for (const [id, createAt] of this.#ahead) if (createAt >= below) this.#ahead.delete(id);
    this.#below = below;
  }
}
