/**
 * What a channel's rebuild must read and render, decided without reading a post. The manifest of
 * the last build keeps a table of the channel's post files (name, size, time, and of each post
 * what other pages depend on: its time, root, author, kind, reply count, attachments). A new
 * listing of the channel's folders with sizes and times (cheap) says which files are new,
 * changed or gone; only those are read. The new table then gives the new pages, and a page or
 * thread page is rendered again only when something it shows differs: its posts, a root's
 * reply count, where a reply's root is. Anything uncertain is read: a file written within the
 * clock's step of a build is recorded as untrusted (read again next time), and a manifest that
 * does not decode means reading the whole channel.
 */
import { fileIdFromDataName, postIdFromFileName, postIdFromHistoryName } from "../store/layout.ts";
import type { Post } from "../model/records.ts";

/** A post file as the last build saw it. */
export interface Row {
  name: string;
  id: string;
  size: number;
  /** Modification time (ms); -1 when not trusted: the file is read again by the next build. */
  mtime: number;
  /** `create_at`; posts are shown by it, then by id. */
  at: number;
  root: string;
  /** p: a post, y: a system post, s: a copy left out (`original_id`), d: damaged. */
  kind: "p" | "y" | "s" | "d";
  user: string;
  /** The reply count the post carries (used when the threads file does not name it). */
  own: number;
  fileIds: string[];
  /** Why a damaged file is damaged (reported again by every build). */
  damage: string;
}

/** A folder entry's size and time; "?" when not trusted. */
export type Stamps = Record<string, string>;

/** The table as stored in the manifest: columns, sparse maps for what few rows have. */
export interface StoredTable {
  names: string[];
  sizes: number[];
  mtimes: number[];
  at: number[];
  roots: string[];
  kinds: string;
  users: number[];
  people: string[];
  own: Record<string, number>;
  fileIds: Record<string, string[]>;
  damage: Record<string, string>;
  /** The rendered reply count of each root that has one. */
  counts: Record<string, number>;
  files: Stamps;
  history: Stamps;
}

export interface Table {
  rows: Row[];
  counts: Map<string, number>;
  files: Stamps;
  history: Stamps;
}

export function rowOf(
  name: string,
  stat: { size: number; mtime: number },
  post: Post,
): Row {
  const type = typeof post.type === "string" ? post.type : "";
  const files = [
    ...(Array.isArray(post.file_ids) ? post.file_ids.filter((id) => typeof id === "string") : []),
    ...(post.metadata?.files ?? []).map((f) => f.id),
  ];
  return {
    name,
    id: post.id,
    size: stat.size,
    mtime: stat.mtime,
    at: post.create_at,
    root: post.root_id,
    kind: post.original_id ? "s" : type.startsWith("system_") ? "y" : "p",
    user: post.user_id,
    own: typeof post.reply_count === "number" && post.reply_count > 0 ? post.reply_count : 0,
    fileIds: files.length ? [...new Set(files)] : NO_FILES,
    damage: "",
  };
}

export function damagedRow(name: string, stat: { size: number; mtime: number }, reason: string) {
  const row: Row = {
    name,
    id: postIdFromFileName(name) ?? "",
    size: stat.size,
    mtime: stat.mtime,
    at: 0,
    root: "",
    kind: "d",
    user: "",
    own: 0,
    fileIds: NO_FILES,
    damage: reason,
  };
  return row;
}

export const counted = (row: Row) => row.kind === "p" || row.kind === "y";

/** One empty list for the many rows without attachments (200,000 rows: memory). */
const NO_FILES: string[] = [];

/** The order of the pages: by time, then id (as BackupReader.posts yields them). */
export function byPostOrder(a: Row, b: Row): number {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : a.name < b.name ? -1 : 1);
}

/**
 * The table as the JSON of a StoredTable, in pieces of at most ROWS_PER_PIECE rows: the manifest
 * is streamed to its file, never held as one string (20 MB at 200,000 posts) beside its columns.
 */
export function* tableJson(table: Table): Generator<string> {
  const rows = table.rows;
  const people = new Map<string, number>();
  for (const row of rows) if (!people.has(row.user)) people.set(row.user, people.size);
  function* column(key: string, value: (row: Row) => string | number): Generator<string> {
    yield `${JSON.stringify(key)}:[`;
    for (let i = 0; i < rows.length; i += ROWS_PER_PIECE) {
      const piece = rows.slice(i, i + ROWS_PER_PIECE).map((row) => JSON.stringify(value(row)));
      yield (i ? "," : "") + piece.join(",");
    }
    yield "],";
  }
  const sparse = <T>(value: (row: Row) => T | undefined) => {
    const out: Record<string, T> = {};
    for (const row of rows) {
      const v = value(row);
      if (v !== undefined) out[row.name] = v;
    }
    return out;
  };
  yield "{";
  yield* column("names", (row) => row.name);
  yield* column("sizes", (row) => row.size);
  yield* column("mtimes", (row) => row.mtime);
  yield* column("at", (row) => row.at);
  yield* column("roots", (row) => row.root);
  yield `"kinds":${JSON.stringify(rows.map((row) => row.kind).join(""))},`;
  yield* column("users", (row) => people.get(row.user) as number);
  const rest: Omit<StoredTable, "names" | "sizes" | "mtimes" | "at" | "roots" | "kinds" | "users"> =
    {
      people: [...people.keys()],
      own: sparse((row) => row.own || undefined),
      fileIds: sparse((row) => row.fileIds.length ? row.fileIds : undefined),
      damage: sparse((row) => row.damage || undefined),
      counts: Object.fromEntries(table.counts),
      files: table.files,
      history: table.history,
    };
  yield JSON.stringify(rest).slice(1);
}

const ROWS_PER_PIECE = 4096;

/** The stored table, or undefined when it is not whole (then the channel is read again). */
export function decodeTable(stored: unknown): Table | undefined {
  if (typeof stored !== "object" || stored === null) return undefined;
  const s = stored as Partial<StoredTable>;
  const n = s.names?.length;
  if (
    n === undefined || !Array.isArray(s.names) || s.sizes?.length !== n ||
    s.mtimes?.length !== n || s.at?.length !== n || s.roots?.length !== n ||
    typeof s.kinds !== "string" || s.kinds.length !== n || s.users?.length !== n ||
    !Array.isArray(s.people) || typeof s.own !== "object" || typeof s.fileIds !== "object" ||
    typeof s.damage !== "object" || typeof s.counts !== "object" || typeof s.files !== "object" ||
    typeof s.history !== "object" || !s.own || !s.fileIds || !s.damage || !s.counts ||
    !s.files || !s.history
  ) return undefined;
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const name = s.names[i] as string;
    const kind = s.kinds[i] as Row["kind"];
    const user = s.people[s.users[i] as number];
    const id = postIdFromFileName(name);
    if (
      typeof name !== "string" || id === undefined || !"pysd".includes(kind) ||
      typeof user !== "string"
    ) return undefined;
    rows.push({
      name,
      id,
      size: s.sizes[i] as number,
      mtime: s.mtimes[i] as number,
      at: s.at[i] as number,
      root: s.roots[i] as string,
      kind,
      user,
      own: s.own[name] ?? 0,
      fileIds: s.fileIds[name] ?? NO_FILES,
      damage: s.damage[name] ?? "",
    });
  }
  return { rows, counts: new Map(Object.entries(s.counts)), files: s.files, history: s.history };
}

/** The names of the post files to read: new, changed, untrusted, or whose attachments or history changed. */
export function filesToRead(
  old: Table,
  posts: Map<string, { size: number; mtime: number }>,
  files: Stamps,
  history: Stamps,
): string[] {
  const changedIds = (before: Stamps, now: Stamps, idOf: (name: string) => string | undefined) => {
    const ids = new Set<string>();
    for (const name of new Set([...Object.keys(before), ...Object.keys(now)])) {
      if (before[name] === now[name] && now[name] !== "?") continue;
      const id = idOf(name);
      if (id) ids.add(id);
    }
    return ids;
  };
  // An attachment's data file is `<fileId>__<name>`, its record `<fileId>.json`.
  const fileIds = changedIds(
    old.files,
    files,
    (name) => fileIdFromDataName(name) ?? postIdFromHistoryName(name),
  );
  const historyIds = changedIds(old.history, history, postIdFromHistoryName);
  const byName = new Map(old.rows.map((row) => [row.name, row]));
  const read: string[] = [];
  for (const [name, stat] of posts) {
    const row = byName.get(name);
    if (
      !row || row.mtime === -1 || row.mtime !== stat.mtime || row.size !== stat.size ||
      historyIds.has(row.id) || row.fileIds.some((id) => fileIds.has(id))
    ) read.push(name);
  }
  return read.sort();
}

/** A table laid out in pages: where each post is and what each post shows of others. */
export class Layout {
  readonly pages: Row[][] = [];
  /** The posts in order, and where each id is among them (one map: 200,000 posts). */
  readonly #posts: Row[];
  readonly #index = new Map<string, number>();
  readonly threads = new Map<string, { root: Row | undefined; replies: Row[] }>();

  constructor(readonly table: Table, readonly pageSize: number) {
    const posts = table.rows.filter(counted).sort(byPostOrder);
    this.#posts = posts;
    for (let i = 0; i < posts.length; i += pageSize) this.pages.push(posts.slice(i, i + pageSize));
    posts.forEach((row, i) => this.#index.set(row.id, i));
    for (const row of posts) {
      const key = row.root || row.id;
      if (!row.root && this.replies(row) === 0) continue;
      let thread = this.threads.get(key);
      if (!thread) {
        thread = { root: undefined, replies: [] };
        this.threads.set(key, thread);
      }
      if (row.root) thread.replies.push(row);
    }
    for (const [key, thread] of this.threads) {
      const root = this.row(key);
      if (root && !root.root) thread.root = root;
    }
  }

  /** The reply count a root shows: the threads file's, else the one the post carries. */
  replies(row: Row): number {
    return row.root ? 0 : this.table.counts.get(row.id) ?? 0;
  }

  /** The page (from 1) of a post, 0 when it is not on one. */
  pageOf(id: string): number {
    const i = this.#index.get(id);
    return i === undefined ? 0 : Math.floor(i / this.pageSize) + 1;
  }

  row(id: string): Row | undefined {
    const i = this.#index.get(id);
    return i === undefined ? undefined : this.#posts[i];
  }

  /**
   * The root a reply links to: known when the root is on a page before the reply and has
   * replies (else the reply links to the thread page and says the root is not on record).
   */
  rootOf(reply: Row): Row | undefined {
    if (!reply.root) return undefined;
    const root = this.row(reply.root);
    if (!root || root.root || this.replies(root) === 0) return undefined;
    const [r, p] = [this.#index.get(root.id), this.#index.get(reply.id)];
    return r !== undefined && p !== undefined && r < p ? root : undefined;
  }

  /** What of other posts a post shows: its reply count, or where its root is. */
  dependency(row: Row): string {
    if (!row.root) return `n${this.replies(row)}`;
    const root = this.rootOf(row);
    return root ? `r${this.pageOf(root.id)}` : "r-";
  }

  /** Everything a thread page shows apart from its posts' own content. */
  threadShape(key: string): string | undefined {
    const thread = this.threads.get(key);
    if (!thread) return undefined;
    const root = thread.root;
    return JSON.stringify([
      root ? [root.name, this.replies(root)] : "-",
      thread.replies.map((r) => `${r.name}:${this.dependency(r)}`),
    ]);
  }
}

/** The reply counts of a table's roots: the threads file's (its number of replies by root), else the posts' own. */
export function replyCounts(rows: Row[], threads: Map<string, number>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const row of rows) {
    if (!counted(row) || row.root) continue;
    const n = threads.get(row.id) ?? row.own;
    if (n > 0) counts.set(row.id, n);
  }
  return counts;
}

export type PagePlan =
  | { mode: "keep" }
  | { mode: "render" }
  | { mode: "splice"; rows: Row[] };

/**
 * How each page of `now` is brought up to date from `before`: kept, spliced (the posts in
 * `rows` rendered again in place: same posts, same neighbours) or rendered whole (new, other
 * posts, or its link to a newer page changed). `changed` are the post files read this time.
 */
export function planPages(before: Layout, now: Layout, changed: Set<string>): PagePlan[] {
  return now.pages.map((rows, i) => {
    const old = before.pages[i];
    const hasNewer = i + 1 < now.pages.length;
    // Other posts, or a post by someone else, of another kind, time or thread (which decide
    // the day separators and whether a post continues its neighbour's block): render it whole.
    const same = (a: Row, b: Row | undefined) =>
      a.name === b?.name && a.user === b.user && a.kind === b.kind && a.at === b.at &&
      a.root === b.root;
    if (
      !old || old.length !== rows.length || (i + 1 < before.pages.length) !== hasNewer ||
      rows.some((row, j) => !same(row, old[j]))
    ) return { mode: "render" };
    const affected = rows.filter((row) => {
      if (changed.has(row.name) || now.dependency(row) !== before.dependency(row)) return true;
      const root = now.rootOf(row);
      return root !== undefined && changed.has(root.name);
    });
    return affected.length ? { mode: "splice", rows: affected } : { mode: "keep" };
  });
}

/** The thread pages of `now` to render again. */
export function planThreads(before: Layout, now: Layout, changed: Set<string>): string[] {
  const out: string[] = [];
  for (const [key, thread] of now.threads) {
    if (
      before.threadShape(key) !== now.threadShape(key) ||
      (thread.root && changed.has(thread.root.name)) ||
      thread.replies.some((r) => changed.has(r.name))
    ) out.push(key);
  }
  return out;
}
