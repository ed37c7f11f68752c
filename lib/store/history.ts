/**
 * The earlier versions of an edited post, kept in `history/<postId>.json` beside the channel's
 * posts; the post file keeps the current version. A version is told apart by its `edit_at`: 0
 * for the post as first sent, else the time of the edit that wrote it. The server keeps a
 * hidden copy of the old version on every update, a pin too (store/sqlstore/post_store.go
 * Update), so copies that share an `edit_at` hold the same text and are kept once. Pure: the
 * sync merges and writes, the reader reads, both through these rules.
 */
import { isMattermostId, isPostTime, type Post, validPost } from "../model/records.ts";
import { isObject } from "../util/objects.ts";

/**
 * Where a version came from: `backup`, the post as this backup had stored it before the edit;
 * `changes`, a hidden copy among the channel's changes, which the server sends without its text
 * (app/post_metadata.go PreparePostForClient empties every deleted post); `edit_history`, the
 * server's edit history of one of the user's own posts (text included).
 */
export type VersionSource = "backup" | "changes" | "edit_history";

const SOURCES: readonly string[] = ["backup", "changes", "edit_history"];

export interface PostVersion {
  from: VersionSource;
  /** The record as it was stored or received: message, props, file ids, edit and update times. */
  post: Post;
}

/** The file's content. */
export interface PostHistory {
  version: 1;
  post_id: string;
  /** Oldest first, one per `edit_at`, none the post file's own (see mergeVersions). */
  versions: PostVersion[];
  /**
   * For the user's own posts: the post's `edit_at` when the server's edit history was last
   * merged in. A post seen with another `edit_at` is asked again: it was edited since.
   */
  edit_history_at?: number;
}

/** A post's `edit_at`, 0 when never edited (or missing). */
export function editAt(post: Post): number {
  return typeof post.edit_at === "number" ? post.edit_at : 0;
}

/** When a version was written: its edit, or the post's creation for the first version. */
export function versionTime(version: PostVersion): number {
  return editAt(version.post) || version.post.create_at;
}

/**
 * The text of a version; undefined when no source gave it: an empty message among the changes
 * is the server's blanking, not what was said.
 */
export function versionText(version: PostVersion): string | undefined {
  const message = typeof version.post.message === "string" ? version.post.message : "";
  return version.from === "changes" && message === "" ? undefined : message;
}

/**
 * `existing` with the versions of `incoming` not known yet, oldest first; a known version
 * without its text takes the text of an incoming one. The version the post file holds (its
 * `edit_at` is `currentEditAt`) is never kept here too: a copy made by a pin, or a version
 * that has since become the post's, is dropped. `added` counts versions new to the history.
 *
 * The versions are those other than the post file's: normally older, but a post deleted after
 * an edit the backup never saw keeps its last known text, and that later edit is a version
 * (without its text) newer than the post file's.
 */
export function mergeVersions(
  existing: readonly PostVersion[],
  incoming: readonly PostVersion[],
  currentEditAt: number,
): { versions: PostVersion[]; added: number; changed: boolean } {
  const byEdit = new Map(existing.map((version) => [editAt(version.post), version]));
  let changed = byEdit.delete(currentEditAt);
  let added = 0;
  for (const version of incoming) {
    const key = editAt(version.post);
    if (key === currentEditAt) continue;
    const known = byEdit.get(key);
    if (!known) {
      byEdit.set(key, version);
      added++;
      changed = true;
    } else if (versionText(known) === undefined && versionText(version) !== undefined) {
      byEdit.set(key, version);
      changed = true;
    }
  }
  const versions = [...byEdit].sort((a, b) => a[0] - b[0]).map(([, version]) => version);
  return { versions, added, changed };
}

/** A version as readers show it beside the post. */
export interface VersionLine {
  /** When it was written (see versionTime). */
  at: number;
  /** The post as first sent. */
  first: boolean;
  /** Undefined when the backup does not have its text. */
  text: string | undefined;
  /** Written after the version the post file holds (a deleted post's unseen last edit). */
  later: boolean;
}

/** The stored versions of `post` other than its own, oldest first, as readers show them. */
export function versionLines(post: Post, versions: readonly PostVersion[]): VersionLine[] {
  const current = editAt(post);
  return versions.map((version) => ({
    at: versionTime(version),
    first: editAt(version.post) === 0,
    text: versionText(version),
    later: editAt(version.post) > current,
  }));
}

/** Why `value` is not the history of `postId`, or the history. */
export function checkHistory(
  value: unknown,
  postId: string,
): { history: PostHistory } | { reason: string } {
  if (!isObject(value) || value.version !== 1 || !Array.isArray(value.versions)) {
    return { reason: "not an edit history (version 1 with a list of versions expected)" };
  }
  if (value.post_id !== postId || !isMattermostId(postId)) {
    return { reason: `holds the history of ${JSON.stringify(value.post_id)}, not of ${postId}` };
  }
  if (value.edit_history_at !== undefined && !isPostTime(value.edit_history_at)) {
    return { reason: `"edit_history_at" ${JSON.stringify(value.edit_history_at)} is no time` };
  }
  let previous = -1;
  for (const [i, version] of value.versions.entries()) {
    const post = isObject(version) ? version.post : undefined;
    if (
      !isObject(version) || !SOURCES.includes(version.from as string) || !isObject(post) ||
      !validPost(post) || !isPostTime(post.edit_at ?? 0)
    ) {
      return { reason: `version ${i + 1} is not a version of a post` };
    }
    const at = editAt(post as Post);
    if (at <= previous) return { reason: `version ${i + 1} is not newer than the one before` };
    previous = at;
  }
  return { history: value as unknown as PostHistory };
}
