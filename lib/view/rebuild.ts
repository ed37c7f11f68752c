/**
 * What a channel's rebuild must read and render, decided without reading a post. The last
 * build kept a table of the channel's post files (name, size, time, and of each post what other
 * pages depend on: its time, root, author, kind, reply count, attachments) in a file of its own
 * (table_file.ts). A new listing of the channel's folders with sizes and times (cheap), compared
 * entry by entry with the table, says which files are new, changed or gone; only those are read.
 * The new table is the last one with those rows replaced, and a page or thread page is rendered
 * again only when something it shows differs: its posts, a root's reply count, where a reply's
 * root is. Anything uncertain is read: a file written within the clock's step of a build is
 * recorded as untrusted (read again next time), and a table that does not decode means reading
 * the whole channel.
 */
import { fileIdFromDataName, postIdFromFileName, postIdFromHistoryName } from "../store/layout.ts";
import type { Post } from "../model/records.ts";
import type { FileStat } from "../store/reader.ts";

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

/** The kinds of rows (see Row), as stored: a row's kind is its place here. */
export const KINDS = "pysd";

/**
 * Strings packed in pieces of ROWS_PER_PIECE rows (a string per row would cost about 70 bytes
 * each at 200,000 rows; one string of all would be copied whole when made).
 */
export class Packed {
  /** `ends`: where each row's string ends, counted from the start of the first piece. */
  constructor(readonly pieces: string[], readonly ends: Int32Array) {}
  get(i: number): string {
    const piece = Math.floor(i / ROWS_PER_PIECE);
    const base = piece ? this.ends[piece * ROWS_PER_PIECE - 1] as number : 0;
    const start = i ? this.ends[i - 1] as number : 0;
    return (this.pieces[piece] as string).slice(start - base, this.ends[i] as number - base);
  }
}

/** Packs strings as they come: joined every ROWS_PER_PIECE, never all held as strings. */
class Packer {
  readonly #pieces: string[] = [];
  #piece: string[] = [];
  readonly #ends = new NumberColumn((buffer) => new Int32Array(buffer));
  #end = 0;
  add(value: string): void {
    this.#piece.push(value);
    this.#ends.add(this.#end += value.length);
    if (this.#piece.length === ROWS_PER_PIECE) {
      this.#pieces.push(this.#piece.join(""));
      this.#piece = [];
    }
  }
  done(): Packed {
    return new Packed([...this.#pieces, this.#piece.join("")], this.#ends.done());
  }
}

/**
 * Numbers added one by one into a typed array that grows by half: each growth and the final
 * fit move the numbers with ArrayBuffer.transfer, which frees the old memory at once (copies
 * left to the garbage collector were 13 MB at the end of a 200,000-post first build).
 */
class NumberColumn<
  T extends Float64Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Uint8Array<ArrayBuffer>,
> {
  #array: T;
  #length = 0;
  constructor(readonly make: (buffer: ArrayBuffer) => T) {
    this.#array = make(new ArrayBuffer(0));
  }
  #resize(length: number): void {
    this.#array = this.make(this.#array.buffer.transfer(length * this.#array.BYTES_PER_ELEMENT));
  }
  add(value: number): void {
    if (this.#length === this.#array.length) {
      this.#resize(Math.max(ROWS_PER_PIECE, Math.ceil(this.#length * 1.5)));
    }
    this.#array[this.#length++] = value;
  }
  /** The numbers, in an array of their length (this column is then empty). */
  done(): T {
    this.#resize(this.#length);
    const out = this.#array;
    this.#array = this.make(new ArrayBuffer(0));
    this.#length = 0;
    return out;
  }
}

/** Rows in columns: typed arrays and packed strings, about 115 bytes a row. */
export interface Columns {
  names: Packed;
  roots: Packed;
  sizes: Float64Array;
  mtimes: Float64Array;
  at: Float64Array;
  /** Of each row, its kind's place in KINDS. */
  kinds: Uint8Array;
  /** Of each row, its author's place in `people`. */
  users: Int32Array;
  people: string[];
  own: Float64Array;
  /** The rendered reply count of each row (0 for replies and rows without). */
  counts: Float64Array;
  fileIds: Map<number, string[]>;
  damage: Map<number, string>;
}

/**
 * The reply count a row shows: for a root, the threads file's number of its replies, else the
 * one the post carries; 0 for a reply or a post not shown.
 */
function shownReplies(
  row: Pick<Row, "kind" | "root" | "own" | "id">,
  threads: Map<string, number> | undefined,
): number {
  if (!counted(row) || row.root) return 0;
  return threads?.get(row.id) ?? row.own;
}

const f64 = (buffer: ArrayBuffer) => new Float64Array(buffer);

/** A table being made row by row, in columns (no row object kept). */
export class TableBuilder {
  readonly #names = new Packer();
  readonly #roots = new Packer();
  readonly #sizes = new NumberColumn(f64);
  readonly #mtimes = new NumberColumn(f64);
  readonly #at = new NumberColumn(f64);
  readonly #kinds = new NumberColumn((buffer) => new Uint8Array(buffer));
  readonly #users = new NumberColumn((buffer) => new Int32Array(buffer));
  readonly #people = new Map<string, number>();
  readonly #own = new NumberColumn(f64);
  /** The counts given with the rows (a stored table's); -1 where none was. */
  readonly #counts = new NumberColumn(f64);
  readonly #fileIds = new Map<number, string[]>();
  readonly #damage = new Map<number, string>();
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Adds a row; `count` is its rendered reply count when known (a stored table's). */
  add(row: Row, count?: number): number {
    const i = this.#length++;
    this.#names.add(row.name);
    this.#roots.add(row.root);
    this.#sizes.add(row.size);
    this.#mtimes.add(row.mtime);
    this.#at.add(row.at);
    this.#kinds.add(KINDS.indexOf(row.kind));
    let user = this.#people.get(row.user);
    if (user === undefined) this.#people.set(row.user, user = this.#people.size);
    this.#users.add(user);
    this.#own.add(row.own);
    this.#counts.add(count ?? -1);
    if (row.fileIds.length) this.#fileIds.set(i, row.fileIds);
    if (row.damage) this.#damage.set(i, row.damage);
    return i;
  }

  /**
   * The rows as columns; `threads` (the threads file's number of replies by root) decides the
   * reply counts of the rows added without one.
   */
  columns(threads: Map<string, number> | undefined): Columns {
    const names = this.#names.done();
    const roots = this.#roots.done();
    const kinds = this.#kinds.done();
    const own = this.#own.done();
    const counts = this.#counts.done();
    counts.forEach((count, i) => {
      if (count !== -1) return;
      counts[i] = shownReplies({
        kind: KINDS[kinds[i] as number] as Row["kind"],
        root: roots.get(i),
        own: own[i] as number,
        id: idOfName(names.get(i)),
      }, threads);
    });
    return {
      names,
      roots,
      sizes: this.#sizes.done(),
      mtimes: this.#mtimes.done(),
      at: this.#at.done(),
      kinds,
      users: this.#users.done(),
      people: [...this.#people.keys()],
      own,
      counts,
      fileIds: this.#fileIds,
      damage: this.#damage,
    };
  }

  /** The table (see `columns`). */
  build(threads: Map<string, number> | undefined, files: Stamps, history: Stamps): Table {
    return new Table([this.columns(threads)], undefined, undefined, files, history);
  }
}

/** The post id in a table's name: every row is made for a post file name. */
const idOfName = (name: string) => name.slice(-31, -5);

// Readers of a column at a place, shared (not a closure made per call: 200,000 rows).
const NAME = (c: Columns, j: number) => c.names.get(j);
const ROOT = (c: Columns, j: number) => c.roots.get(j);
const AT = (c: Columns, j: number) => c.at[j] as number;
const KIND = (c: Columns, j: number) => KINDS[c.kinds[j] as number] as Row["kind"];
const SIZE = (c: Columns, j: number) => c.sizes[j] as number;
const MTIME = (c: Columns, j: number) => c.mtimes[j] as number;
const USER = (c: Columns, j: number) => c.people[c.users[j] as number] as string;
const OWN = (c: Columns, j: number) => c.own[j] as number;
const FILE_IDS = (c: Columns, j: number) => c.fileIds.get(j) ?? NO_FILES;
const DAMAGE = (c: Columns, j: number) => c.damage.get(j) ?? "";

/**
 * A channel's post files, in columns; a Row is made only for a row being looked at. A rebuild's
 * table is the last build's columns, the rows it keeps picked out by `slots`, followed by the
 * columns of the files read again: the 200,000 kept rows are not copied.
 */
export class Table {
  readonly length: number;
  /** The columns; a place from the first's length on is in the second. */
  readonly #parts: Columns[];
  /** Of each row, its place in the parts; undefined: row i is place i. */
  readonly #slots: Int32Array | undefined;
  /** The rendered reply count of each row (0 for replies and rows without). */
  readonly #counts: Float64Array;
  /** The rows sorted by name, made when first asked for. */
  #byName: Int32Array | undefined;

  constructor(
    parts: Columns[],
    slots: Int32Array | undefined,
    counts: Float64Array | undefined,
    public files: Stamps,
    public history: Stamps,
  ) {
    this.#parts = parts;
    this.#slots = slots;
    this.length = slots?.length ?? (parts[0] as Columns).sizes.length;
    this.#counts = counts ?? (parts[0] as Columns).counts;
  }

  /** A table of `rows` (tests): the reply counts from `threads`, else the posts' own. */
  static of(rows: Iterable<Row>, threads: Map<string, number>, files: Stamps, history: Stamps) {
    const b = new TableBuilder();
    for (const row of rows) b.add(row);
    return b.build(threads, files, history);
  }

  /**
   * The table after a rebuild: the rows of this (a table as read from its file) marked in
   * `kept`, then the rows read again (`read`); reply counts from `threads`.
   */
  patched(
    kept: Uint8Array,
    read: Columns,
    threads: Map<string, number>,
    files: Stamps,
    history: Stamps,
  ): Table {
    const old = this.#parts[0] as Columns;
    if (this.#slots || this.#parts.length !== 1) throw new Error("only a stored table is patched");
    let keptCount = 0;
    for (let i = 0; i < this.length; i++) keptCount += kept[i] as number;
    const slots = new Int32Array(keptCount + read.sizes.length);
    let n = 0;
    for (let i = 0; i < this.length; i++) if (kept[i]) slots[n++] = i;
    for (let j = 0; j < read.sizes.length; j++) slots[n++] = this.length + j;
    const table = new Table([old, read], slots, new Float64Array(slots.length), files, history);
    for (let i = 0; i < table.length; i++) {
      table.#counts[i] = shownReplies(
        { kind: table.kind(i), root: table.root(i), own: table.own(i), id: table.id(i) },
        threads,
      );
    }
    return table;
  }

  #get<T>(i: number, read: (c: Columns, j: number) => T): T {
    const place = this.#slots ? this.#slots[i] as number : i;
    const first = this.#parts[0] as Columns;
    const firstLength = first.sizes.length;
    return place < firstLength
      ? read(first, place)
      : read(this.#parts[1] as Columns, place - firstLength);
  }

  name(i: number): string {
    return this.#get(i, NAME);
  }
  id(i: number): string {
    return idOfName(this.name(i));
  }
  at(i: number): number {
    return this.#get(i, AT);
  }
  kind(i: number): Row["kind"] {
    return this.#get(i, KIND);
  }
  root(i: number): string {
    return this.#get(i, ROOT);
  }
  size(i: number): number {
    return this.#get(i, SIZE);
  }
  mtime(i: number): number {
    return this.#get(i, MTIME);
  }
  user(i: number): string {
    return this.#get(i, USER);
  }
  own(i: number): number {
    return this.#get(i, OWN);
  }
  fileIds(i: number): string[] {
    return this.#get(i, FILE_IDS);
  }
  damage(i: number): string {
    return this.#get(i, DAMAGE);
  }
  /** The reply count a root shows: the threads file's, else the one the post carries. */
  count(i: number): number {
    return this.#counts[i] as number;
  }

  row(i: number): Row {
    return {
      name: this.name(i),
      id: this.id(i),
      size: this.size(i),
      mtime: this.mtime(i),
      at: this.at(i),
      root: this.root(i),
      kind: this.kind(i),
      user: this.user(i),
      own: this.own(i),
      fileIds: this.fileIds(i),
      damage: this.damage(i),
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

  /**
   * The row of a file name (the last of equal names), -1 when none: a binary search over the
   * rows sorted by name (no map of 200,000 names).
   */
  rowNamed(name: string): number {
    const byName = this.#byName ??= this.#sortedByName();
    let [lo, hi] = [0, byName.length];
    // The first entry whose name is greater than `name`.
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.name(byName[mid] as number) <= name) lo = mid + 1;
      else hi = mid;
    }
    const i = lo ? byName[lo - 1] as number : -1;
    return i !== -1 && this.name(i) === name ? i : -1;
  }

  #sortedByName(): Int32Array {
    // Rows are in the order of their times, as their names mostly are: the sort finds runs.
    return Int32Array.from({ length: this.length }, (_, i) => i).sort((a, b) => {
      const [x, y] = [this.name(a), this.name(b)];
      return x < y ? -1 : x > y ? 1 : a - b;
    });
  }
}

export function rowOf(name: string, stat: FileStat, post: Post): Row {
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

export function damagedRow(name: string, stat: FileStat, reason: string) {
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

export const ROWS_PER_PIECE = 4096;
/** Rows turned into text at once: small strings, collected young (4,096 rows made 220 KB). */
export const ROWS_PER_WRITE = 1024;

/**
 * The hashes of a channel's thread pages by thread key (its root's id), as its manifest keeps
 * them: one string of `<key> <hash>` lines sorted by key, searched in place (a record of
 * 50,000 threads cost 8 MB of memory, this string 3).
 */
export class ThreadHashes {
  readonly #text: string;
  /** Where each line starts; one more: the end of the text and its newline. */
  readonly #starts: Int32Array;

  constructor(text: string) {
    this.#text = text;
    let lines = 0;
    for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) lines++;
    this.#starts = new Int32Array(lines + 1);
    for (let i = 1, at = -1; i <= lines; i++) {
      this.#starts[i] = (at = text.indexOf("\n", at + 1)) + 1;
    }
  }

  /**
   * The text of `hashes`; a key that is not an id is left out (its page is written again).
   * Joined a piece at a time: 50,000 lines held at once until joined were 9 MB of garbage.
   */
  static text(hashes: Map<string, string>): string {
    const keys = [...hashes.keys()].filter((key) => /^[a-z0-9]{26}$/.test(key)).sort();
    const pieces: string[] = [];
    for (let i = 0; i < keys.length; i += ROWS_PER_WRITE) {
      pieces.push(
        keys.slice(i, i + ROWS_PER_WRITE).map((key) => `${key} ${hashes.get(key)}\n`).join(""),
      );
    }
    return pieces.join("");
  }

  #line(i: number): string {
    return this.#text.slice(this.#starts[i], (this.#starts[i + 1] as number) - 1);
  }

  get(key: string): string | undefined {
    let [lo, hi] = [0, this.#starts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const line = this.#line(mid);
      const lineKey = line.slice(0, line.indexOf(" "));
      if (lineKey === key) return line.slice(key.length + 1);
      if (lineKey < key) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }

  *keys(): Generator<string> {
    for (let i = 0; i + 1 < this.#starts.length; i++) {
      const line = this.#line(i);
      yield line.slice(0, line.indexOf(" "));
    }
  }
}

/** What a listing of a channel's posts folder says against the last build's table. */
export interface ListingChanges {
  /**
   * The post files to read, with their listed sizes and times: new, changed, untrusted, or
   * whose attachments or history changed.
   */
  read: Map<string, FileStat>;
  /** Of each row of the table, 1 when its file is listed unchanged: the row is kept as is. */
  kept: Uint8Array;
}

/**
 * Compares the listing of the posts folder, entry by entry (never held whole: 200,000 names),
 * with the table `old`; `files` and `history` are the attachments and history folders now.
 */
export async function compareListing(
  old: Table,
  posts: AsyncIterable<{ name: string } & FileStat> | Iterable<{ name: string } & FileStat>,
  files: Stamps,
  history: Stamps,
): Promise<ListingChanges> {
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
  const read = new Map<string, FileStat>();
  const kept = new Uint8Array(old.length);
  for await (const { name, size, mtime } of posts) {
    const i = old.rowNamed(name);
    if (
      i === -1 || old.mtime(i) === -1 || old.mtime(i) !== mtime || old.size(i) !== size ||
      historyIds.has(old.id(i)) || old.fileIds(i).some((id) => fileIds.has(id))
    ) read.set(name, { size, mtime });
    else kept[i] = 1;
  }
  return { read, kept };
}

/**
 * A table laid out in pages: where each post is and what each post shows of others. Places
 * are positions among the posts in page order; rows are made only when asked for. Threads are
 * held in typed arrays too (an object and an array per thread cost 23 MB for two layouts of
 * 50,000 threads).
 */
export class Layout {
  /** The table's row of each place. */
  readonly #order: Int32Array;
  /** The places sorted by post id (then place): a post found by binary search, no map. */
  readonly #byId: Int32Array;
  /** The threads' keys (their roots' ids), in the order of their first post. */
  readonly #threadKeys: string[] = [];
  /** Of each thread key, its number. */
  readonly #threadNumbers = new Map<string, number>();
  /** Of each thread, its root's place (-1: not on record). */
  readonly #threadRoots: Int32Array;
  /** Of each thread, where its replies start in #replyPlaces; one more: the end. */
  readonly #replyStarts: Int32Array;
  /** The replies' places, thread after thread, each thread's in order. */
  readonly #replyPlaces: Int32Array;

  constructor(readonly table: Table, readonly pageSize: number) {
    const t = table;
    let shown = 0;
    for (let i = 0; i < t.length; i++) if (counted({ kind: t.kind(i) })) shown++;
    const order = new Int32Array(shown);
    shown = 0;
    for (let i = 0; i < t.length; i++) if (counted({ kind: t.kind(i) })) order[shown++] = i;
    const byText = (x: string, y: string) => x < y ? -1 : x > y ? 1 : 0;
    order.sort((x, y) =>
      t.at(x) - t.at(y) || byText(t.id(x), t.id(y)) || (t.name(x) < t.name(y) ? -1 : 1)
    );
    this.#order = order;
    this.#byId = Int32Array.from({ length: shown }, (_, place) => place).sort((a, b) =>
      byText(t.id(order[a] as number), t.id(order[b] as number)) || a - b
    );
    // Each reply's thread number, then the replies grouped by thread (counted, then placed).
    const threadOf = new Int32Array(shown).fill(-1);
    for (let place = 0; place < shown; place++) {
      const i = order[place] as number;
      const root = t.root(i);
      if (!root && t.count(i) === 0) continue;
      const key = root || t.id(i);
      let number = this.#threadNumbers.get(key);
      if (number === undefined) {
        number = this.#threadKeys.length;
        this.#threadKeys.push(key);
        this.#threadNumbers.set(key, number);
      }
      if (root) threadOf[place] = number;
    }
    const threads = this.#threadKeys.length;
    const replies = new Int32Array(threads);
    for (const number of threadOf) {
      if (number !== -1) replies[number] = replies[number] as number + 1;
    }
    const starts = this.#replyStarts = new Int32Array(threads + 1);
    for (let k = 0; k < threads; k++) {
      starts[k + 1] = (starts[k] as number) + (replies[k] as number);
    }
    this.#replyPlaces = new Int32Array(starts[threads] as number);
    const next = starts.slice(0, threads);
    for (let place = 0; place < shown; place++) {
      const number = threadOf[place] as number;
      if (number === -1) continue;
      const at = next[number] as number;
      this.#replyPlaces[at] = place;
      next[number] = at + 1;
    }
    this.#threadRoots = Int32Array.from(this.#threadKeys, (key) => {
      const place = this.#placeOf(key);
      return place !== -1 && !t.root(order[place] as number) ? place : -1;
    });
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

  /** The threads' keys (their roots' ids), in the order of their first post. */
  threadKeys(): readonly string[] {
    return this.#threadKeys;
  }

  /** A thread's rows, made now: its root (when on record) and its replies. */
  thread(key: string): { root: Row | undefined; replies: Row[] } | undefined {
    const number = this.#threadNumbers.get(key);
    if (number === undefined) return undefined;
    const root = this.#threadRoots[number] as number;
    const replies: Row[] = [];
    const end = this.#replyStarts[number + 1] as number;
    for (let r = this.#replyStarts[number] as number; r < end; r++) {
      replies.push(this.at(this.#replyPlaces[r] as number));
    }
    return { root: root === -1 ? undefined : this.at(root), replies };
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
  for (const key of now.threadKeys()) {
    const thread = now.thread(key) as { root: Row | undefined; replies: Row[] };
    if (
      before.threadShape(key) !== now.threadShape(key) ||
      (thread.root && changed.has(thread.root.name)) ||
      thread.replies.some((r) => changed.has(r.name))
    ) out.push(key);
  }
  return out;
}
