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

/** Strings packed in one (a string per row would cost about 70 bytes each at 200,000 rows). */
class Packed {
  readonly #text: string;
  readonly #ends: Int32Array;
  constructor(text: string, ends: Int32Array) {
    this.#text = text;
    this.#ends = ends;
  }
  get(i: number): string {
    return this.#text.slice(i ? this.#ends[i - 1] : 0, this.#ends[i]);
  }
}

/** Packs strings as they come: joined every ROWS_PER_PIECE, never all held as strings. */
class Packer {
  readonly #pieces: string[] = [];
  #piece: string[] = [];
  readonly #ends: number[] = [];
  #end = 0;
  add(value: string): void {
    this.#piece.push(value);
    this.#ends.push(this.#end += value.length);
    if (this.#piece.length === ROWS_PER_PIECE) {
      this.#pieces.push(this.#piece.join(""));
      this.#piece = [];
    }
  }
  done(): Packed {
    this.#pieces.push(this.#piece.join(""));
    return new Packed(this.#pieces.join(""), Int32Array.from(this.#ends));
  }
}

/** A table being made row by row, in columns (no row object kept). */
export class TableBuilder {
  readonly #names = new Packer();
  readonly #roots = new Packer();
  readonly #sizes: number[] = [];
  readonly #mtimes: number[] = [];
  readonly #at: number[] = [];
  readonly #kinds: string[] = [];
  readonly #users: number[] = [];
  readonly #people = new Map<string, number>();
  readonly #own: number[] = [];
  /** Of each row, the reply count it shows if the threads file does not say (-1: a reply or uncounted). */
  readonly #counts: number[] = [];
  readonly #fileIds = new Map<number, string[]>();
  readonly #damage = new Map<number, string>();

  get length(): number {
    return this.#sizes.length;
  }

  /** Adds a row; `count` is its rendered reply count when known (a stored table's). */
  add(row: Row, count?: number): number {
    const i = this.length;
    this.#names.add(row.name);
    this.#roots.add(row.root);
    this.#sizes.push(row.size);
    this.#mtimes.push(row.mtime);
    this.#at.push(row.at);
    this.#kinds.push(row.kind);
    let user = this.#people.get(row.user);
    if (user === undefined) this.#people.set(row.user, user = this.#people.size);
    this.#users.push(user);
    this.#own.push(row.own);
    this.#counts.push(count ?? (counted(row) && !row.root ? row.own : -1));
    if (row.fileIds.length) this.#fileIds.set(i, row.fileIds);
    if (row.damage) this.#damage.set(i, row.damage);
    return i;
  }

  /**
   * The table; `threads` (the threads file's number of replies by root) decides the reply counts
   * of the rows added without one.
   */
  build(threads: Map<string, number> | undefined, files: Stamps, history: Stamps): Table {
    const names = this.#names.done();
    const counts = Float64Array.from(this.#counts, (c, i) => {
      if (c === -1) return 0;
      if (threads === undefined) return c;
      const n = threads.get(names.get(i).slice(-31, -5));
      return n ?? c;
    });
    return new Table(
      {
        names,
        roots: this.#roots.done(),
        sizes: Float64Array.from(this.#sizes),
        mtimes: Float64Array.from(this.#mtimes),
        at: Float64Array.from(this.#at),
        kinds: this.#kinds.join(""),
        users: Int32Array.from(this.#users),
        people: [...this.#people.keys()],
        own: Float64Array.from(this.#own),
        counts,
        fileIds: this.#fileIds,
        damage: this.#damage,
      },
      files,
      history,
    );
  }
}

interface Columns {
  names: Packed;
  roots: Packed;
  sizes: Float64Array;
  mtimes: Float64Array;
  at: Float64Array;
  kinds: string;
  users: Int32Array;
  people: string[];
  own: Float64Array;
  counts: Float64Array;
  fileIds: Map<number, string[]>;
  damage: Map<number, string>;
}

/**
 * A channel's post files, in columns (typed arrays and packed strings: about 115 bytes a row
 * where a row object cost 300); a Row is made only for a row being looked at.
 */
export class Table {
  readonly length: number;
  readonly #names: Packed;
  readonly #roots: Packed;
  readonly #sizes: Float64Array;
  readonly #mtimes: Float64Array;
  readonly #at: Float64Array;
  readonly #kinds: string;
  readonly #users: Int32Array;
  readonly #people: string[];
  readonly #own: Float64Array;
  /** The rendered reply count of each row (0 for replies and rows without). */
  readonly #counts: Float64Array;
  readonly #fileIds: Map<number, string[]>;
  readonly #damage: Map<number, string>;

  constructor(c: Columns, public files: Stamps, public history: Stamps) {
    this.length = c.sizes.length;
    this.#names = c.names;
    this.#roots = c.roots;
    this.#sizes = c.sizes;
    this.#mtimes = c.mtimes;
    this.#at = c.at;
    this.#kinds = c.kinds;
    this.#users = c.users;
    this.#people = c.people;
    this.#own = c.own;
    this.#counts = c.counts;
    this.#fileIds = c.fileIds;
    this.#damage = c.damage;
  }

  /** A table of `rows` (tests): the reply counts from `threads`, else the posts' own. */
  static of(rows: Iterable<Row>, threads: Map<string, number>, files: Stamps, history: Stamps) {
    const b = new TableBuilder();
    for (const row of rows) b.add(row);
    return b.build(threads, files, history);
  }

  name(i: number): string {
    return this.#names.get(i);
  }
  /** The post id: in every row's name (rows are made only for post file names). */
  id(i: number): string {
    const name = this.#names.get(i);
    return name.slice(-31, -5);
  }
  at(i: number): number {
    return this.#at[i] as number;
  }
  kind(i: number): Row["kind"] {
    return this.#kinds[i] as Row["kind"];
  }
  root(i: number): string {
    return this.#roots.get(i);
  }
  /** The reply count a root shows: the threads file's, else the one the post carries. */
  count(i: number): number {
    return this.#counts[i] as number;
  }

  row(i: number): Row {
    return {
      name: this.name(i),
      id: this.id(i),
      size: this.#sizes[i] as number,
      mtime: this.#mtimes[i] as number,
      at: this.at(i),
      root: this.root(i),
      kind: this.kind(i),
      user: this.#people[this.#users[i] as number] as string,
      own: this.#own[i] as number,
      fileIds: this.#fileIds.get(i) ?? NO_FILES,
      damage: this.#damage.get(i) ?? "",
    };
  }

  /** The rows, made one by one. */
  *rows(): Generator<Row> {
    for (let i = 0; i < this.length; i++) yield this.row(i);
  }

  /** The rendered reply counts by post id, in row order. */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (let i = 0; i < this.length; i++) if (this.count(i)) out.set(this.id(i), this.count(i));
    return out;
  }

  /** The table as stored: its columns as they are, people numbered as here. */
  *json(): Generator<string> {
    const n = this.length;
    function* column(key: string, value: (i: number) => string | number): Generator<string> {
      yield `${JSON.stringify(key)}:[`;
      for (let i = 0; i < n; i += ROWS_PER_PIECE) {
        const piece: string[] = [];
        for (let j = i; j < Math.min(n, i + ROWS_PER_PIECE); j++) {
          piece.push(JSON.stringify(value(j)));
        }
        yield (i ? "," : "") + piece.join(",");
      }
      yield "],";
    }
    const sparse = <T>(rows: Iterable<[number, T]>) => {
      const out: Record<string, T> = {};
      for (const [i, v] of rows) out[this.name(i)] = v;
      return out;
    };
    const own: [number, number][] = [];
    for (let i = 0; i < n; i++) if (this.#own[i]) own.push([i, this.#own[i] as number]);
    yield "{";
    yield* column("names", (i) => this.name(i));
    yield* column("sizes", (i) => this.#sizes[i] as number);
    yield* column("mtimes", (i) => this.#mtimes[i] as number);
    yield* column("at", (i) => this.at(i));
    yield* column("roots", (i) => this.root(i));
    yield `"kinds":${JSON.stringify(this.#kinds)},`;
    yield* column("users", (i) => this.#users[i] as number);
    const rest: Omit<
      StoredTable,
      "names" | "sizes" | "mtimes" | "at" | "roots" | "kinds" | "users"
    > = {
      people: this.#people,
      own: sparse(own),
      fileIds: sparse(this.#fileIds),
      damage: sparse(this.#damage),
      counts: Object.fromEntries(this.counts()),
      files: this.files,
      history: this.history,
    };
    yield JSON.stringify(rest).slice(1);
  }
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

export const counted = (row: { kind: Row["kind"] }) => row.kind === "p" || row.kind === "y";

/** One empty list for the many rows without attachments (200,000 rows: memory). */
const NO_FILES: string[] = [];

/** The order of the pages: by time, then id (as BackupReader.posts yields them). */
export function byPostOrder(a: Row, b: Row): number {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : a.name < b.name ? -1 : 1);
}

/** The table as the JSON of a StoredTable, in pieces of at most ROWS_PER_PIECE rows. */
export function tableJson(table: Table): Generator<string> {
  return table.json();
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
  const b = new TableBuilder();
  for (let i = 0; i < n; i++) {
    const name = s.names[i] as string;
    const kind = s.kinds[i] as Row["kind"];
    const user = s.people[s.users[i] as number];
    const id = postIdFromFileName(name);
    if (
      typeof name !== "string" || id === undefined || !"pysd".includes(kind) ||
      typeof user !== "string"
    ) return undefined;
    b.add({
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
    }, s.counts[id] ?? 0);
  }
  return b.build(undefined, s.files, s.history);
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
  // The last of the rows of a name, as a map by name would give.
  const byName = new Map<string, number>();
  for (let i = 0; i < old.length; i++) if (posts.has(old.name(i))) byName.set(old.name(i), i);
  const read: string[] = [];
  for (const [name, stat] of posts) {
    const i = byName.get(name);
    const row = i === undefined ? undefined : old.row(i);
    if (
      !row || row.mtime === -1 || row.mtime !== stat.mtime || row.size !== stat.size ||
      historyIds.has(row.id) || row.fileIds.some((id) => fileIds.has(id))
    ) read.push(name);
  }
  return read.sort();
}

/** A thread of a layout: its root's place among the posts (-1: none) and its replies' places. */
interface Thread {
  root: number;
  replies: number[];
}

/**
 * A table laid out in pages: where each post is and what each post shows of others. Places
 * are positions among the posts in page order; rows are made only when asked for.
 */
export class Layout {
  /** The table's row of each place. */
  readonly #order: Int32Array;
  /** The places sorted by post id (then place): a post found by binary search, no map. */
  readonly #byId: Int32Array;
  readonly threads = new Map<string, Thread>();

  constructor(readonly table: Table, readonly pageSize: number) {
    const t = table;
    const rows: number[] = [];
    for (let i = 0; i < t.length; i++) if (counted({ kind: t.kind(i) })) rows.push(i);
    const ids = rows.map((i) => t.id(i));
    const places = rows.map((_, p) => p);
    places.sort((a, b) => {
      const [x, y] = [rows[a] as number, rows[b] as number];
      return t.at(x) - t.at(y) || (ids[a] as string < (ids[b] as string) ? -1 : ids[a] as string >
          (ids[b] as string)
        ? 1
        : t.name(x) < t.name(y)
        ? -1
        : 1);
    });
    this.#order = Int32Array.from(places, (p) => rows[p] as number);
    const byId = places.map((_, place) => place);
    const idAt = places.map((p) => ids[p] as string);
    byId.sort((a, b) => {
      const [x, y] = [idAt[a] as string, idAt[b] as string];
      return x < y ? -1 : x > y ? 1 : a - b;
    });
    this.#byId = Int32Array.from(byId);
    for (let place = 0; place < this.#order.length; place++) {
      const i = this.#order[place] as number;
      const root = t.root(i);
      if (!root && t.count(i) === 0) continue;
      const key = root || t.id(i);
      let thread = this.threads.get(key);
      if (!thread) {
        thread = { root: -1, replies: [] };
        this.threads.set(key, thread);
      }
      if (root) thread.replies.push(place);
    }
    for (const [key, thread] of this.threads) {
      const place = this.#placeOf(key);
      if (place !== -1 && !t.root(this.#order[place] as number)) thread.root = place;
    }
  }

  /** The number of posts laid out. */
  get size(): number {
    return this.#order.length;
  }

  /** The number of pages. */
  get pageCount(): number {
    return Math.ceil(this.#order.length / this.pageSize);
  }

  /** The rows of page `n` (from 1), made now. */
  page(n: number): Row[] {
    const out: Row[] = [];
    const end = Math.min(n * this.pageSize, this.#order.length);
    for (let p = (n - 1) * this.pageSize; p < end; p++) out.push(this.at(p));
    return out;
  }

  /** The table's row at a place. */
  rowAt(place: number): number {
    return this.#order[place] as number;
  }

  /** The post at a place, made now. */
  at(place: number): Row {
    return this.table.row(this.#order[place] as number);
  }

  /** The place of a post id (the last of equal ids, as a map would keep), -1 when none. */
  #placeOf(id: string): number {
    const byId = this.#byId;
    let [lo, hi] = [0, byId.length];
    // The first entry whose id is greater than `id`.
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.table.id(this.#order[byId[mid] as number] as number) <= id) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return -1;
    const place = byId[lo - 1] as number;
    return this.table.id(this.#order[place] as number) === id ? place : -1;
  }

  /** The reply count a root shows: the threads file's, else the one the post carries. */
  replies(row: Row): number {
    if (row.root) return 0;
    const place = this.#placeOf(row.id);
    return place === -1 ? 0 : this.table.count(this.#order[place] as number);
  }

  /** The page (from 1) of a post, 0 when it is not on one. */
  pageOf(id: string): number {
    const place = this.#placeOf(id);
    return place === -1 ? 0 : Math.floor(place / this.pageSize) + 1;
  }

  row(id: string): Row | undefined {
    const place = this.#placeOf(id);
    return place === -1 ? undefined : this.at(place);
  }

  /**
   * The root a reply links to: known when the root is on a page before the reply and has
   * replies (else the reply links to the thread page and says the root is not on record).
   */
  rootOf(reply: Row): Row | undefined {
    if (!reply.root) return undefined;
    const r = this.#placeOf(reply.root);
    if (r === -1) return undefined;
    const root = this.at(r);
    if (root.root || this.replies(root) === 0) return undefined;
    const p = this.#placeOf(reply.id);
    return p !== -1 && r < p ? root : undefined;
  }

  /** What of other posts a post shows: its reply count, or where its root is. */
  dependency(row: Row): string {
    if (!row.root) return `n${this.replies(row)}`;
    const root = this.rootOf(row);
    return root ? `r${this.pageOf(root.id)}` : "r-";
  }

  /** A thread's rows, made now: its root (when on record) and its replies. */
  thread(key: string): { root: Row | undefined; replies: Row[] } | undefined {
    const thread = this.threads.get(key);
    if (!thread) return undefined;
    return {
      root: thread.root === -1 ? undefined : this.at(thread.root),
      replies: thread.replies.map((p) => this.at(p)),
    };
  }

  /** Everything a thread page shows apart from its posts' own content. */
  threadShape(key: string): string | undefined {
    const thread = this.thread(key);
    if (!thread) return undefined;
    const root = thread.root;
    return JSON.stringify([
      root ? [root.name, this.replies(root)] : "-",
      thread.replies.map((r) => `${r.name}:${this.dependency(r)}`),
    ]);
  }
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
  const plans: PagePlan[] = [];
  for (let n = 1; n <= now.pageCount; n++) {
    const rows = now.page(n);
    const old = n <= before.pageCount ? before.page(n) : undefined;
    const hasNewer = n < now.pageCount;
    // Other posts, or a post by someone else, of another kind, time or thread (which decide
    // the day separators and whether a post continues its neighbour's block): render it whole.
    const same = (a: Row, b: Row | undefined) =>
      a.name === b?.name && a.user === b.user && a.kind === b.kind && a.at === b.at &&
      a.root === b.root;
    if (
      !old || old.length !== rows.length || (n < before.pageCount) !== hasNewer ||
      rows.some((row, j) => !same(row, old[j]))
    ) {
      plans.push({ mode: "render" });
      continue;
    }
    const affected = rows.filter((row) => {
      if (changed.has(row.name) || now.dependency(row) !== before.dependency(row)) return true;
      const root = now.rootOf(row);
      return root !== undefined && changed.has(root.name);
    });
    plans.push(affected.length ? { mode: "splice", rows: affected } : { mode: "keep" });
  }
  return plans;
}

/** The thread pages of `now` to render again. */
export function planThreads(before: Layout, now: Layout, changed: Set<string>): string[] {
  const out: string[] = [];
  for (const key of now.threads.keys()) {
    const thread = now.thread(key) as { root: Row | undefined; replies: Row[] };
    if (
      before.threadShape(key) !== now.threadShape(key) ||
      (thread.root && changed.has(thread.root.name)) ||
      thread.replies.some((r) => changed.has(r.name))
    ) out.push(key);
  }
  return out;
}
