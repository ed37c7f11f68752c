/**
 * A channel's table (rebuild.ts) as a file of its own, `.matterbak-view/c/<channelId>.table`,
 * beside the channel's manifest, which names it with its size and SHA-256. Columns in binary
 * (a 200,000-post channel's table is 23 MB, where it was 25 MB of JSON parsed whole, 162 MB of
 * memory), read one column at a time into its typed array: no copy of the file is held.
 *
 * Layout: a header (MAGIC, the format's version, a number written in this machine's byte
 * order, the number of rows), then sections, each its length in bytes (u32) and its bytes:
 * the names (UTF-8) and their ends (i32 a row, in UTF-16 units), the roots likewise, sizes,
 * times, `create_at`, own reply counts and rendered reply counts (f64 a row), authors (i32 a
 * row, places in `people`), kinds (a byte a row), and a JSON object with what few rows have
 * (people, attachments, damage) and the attachment and history folders' stamps.
 */
import { createHash } from "node:crypto";
import { postIdFromFileName } from "../store/layout.ts";
import {
  type Columns,
  KINDS,
  Packed,
  ROWS_PER_PIECE,
  ROWS_PER_WRITE,
  type Stamps,
  Table,
} from "./rebuild.ts";

/** How a channel's manifest names its table file. */
export interface TableRef {
  name: string;
  size: number;
  /** Lowercase hex. */
  sha256: string;
}

export const TABLE_SUFFIX = ".table";
const MAGIC = "mbtable\n";
/** Bumped when the layout changes: a table of another version is not read (the channel is). */
export const TABLE_VERSION = 1;
/** Typed arrays are in this machine's byte order: a table from another order is not read. */
const BYTE_ORDER = 0x01020304;
const HEADER_SIZE = 20;

interface Extra {
  people: string[];
  fileIds: [number, string[]][];
  damage: [number, string][];
  files: Stamps;
  history: Stamps;
}

export function isTableRef(value: unknown): value is TableRef {
  const ref = value as Partial<TableRef> | null;
  return typeof ref === "object" && ref !== null && typeof ref.name === "string" &&
    typeof ref.size === "number" && typeof ref.sha256 === "string";
}

/** The bytes of a string in UTF-8, counted without encoding it. */
function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const bytesOf = (array: ArrayBufferView<ArrayBuffer>) =>
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

function sectionLength(length: number): Uint8Array {
  if (length > 0xffffffff) throw new Error(`a table section of ${length} bytes`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, length, true);
  return out;
}

/** The table file's bytes, in pieces (never the file in memory). */
export function* tableFile(table: Table): Generator<Uint8Array> {
  const n = table.length;
  const header = new Uint8Array(HEADER_SIZE);
  header.set(new TextEncoder().encode(MAGIC));
  const view = new DataView(header.buffer);
  view.setUint32(8, TABLE_VERSION, true);
  new Uint32Array(header.buffer, 12, 1)[0] = BYTE_ORDER;
  view.setUint32(16, n, true);
  yield header;
  const encoder = new TextEncoder();
  function* text(value: (i: number) => string): Generator<Uint8Array> {
    const ends = new Int32Array(n);
    let [end, bytes] = [0, 0];
    for (let i = 0; i < n; i++) {
      const s = value(i);
      ends[i] = end += s.length;
      bytes += utf8Length(s);
    }
    yield sectionLength(bytes);
    for (let i = 0; i < n; i += ROWS_PER_WRITE) {
      const piece: string[] = [];
      for (let j = i; j < Math.min(n, i + ROWS_PER_WRITE); j++) piece.push(value(j));
      yield encoder.encode(piece.join(""));
    }
    yield sectionLength(ends.byteLength);
    yield bytesOf(ends);
  }
  function* numbers(array: ArrayBufferView<ArrayBuffer>): Generator<Uint8Array> {
    yield sectionLength(array.byteLength);
    yield bytesOf(array);
  }
  const f64 = (value: (i: number) => number) =>
    Float64Array.from({ length: n }, (_, i) => value(i));
  yield* text((i) => table.name(i));
  yield* text((i) => table.root(i));
  yield* numbers(f64((i) => table.size(i)));
  yield* numbers(f64((i) => table.mtime(i)));
  yield* numbers(f64((i) => table.at(i)));
  yield* numbers(f64((i) => table.own(i)));
  yield* numbers(f64((i) => table.count(i)));
  const people = new Map<string, number>();
  const extra: Extra = {
    people: [],
    fileIds: [],
    damage: [],
    files: table.files,
    history: table.history,
  };
  yield* numbers(Int32Array.from({ length: n }, (_, i) => {
    const user = table.user(i);
    let place = people.get(user);
    if (place === undefined) people.set(user, place = people.size);
    const fileIds = table.fileIds(i);
    if (fileIds.length) extra.fileIds.push([i, fileIds]);
    const damage = table.damage(i);
    if (damage) extra.damage.push([i, damage]);
    return place;
  }));
  yield* numbers(Uint8Array.from({ length: n }, (_, i) => KINDS.indexOf(table.kind(i))));
  extra.people = [...people.keys()];
  const json = encoder.encode(JSON.stringify(extra));
  yield sectionLength(json.length);
  yield json;
}

/** Reads the next bytes of the file into `into`; fewer only at its end. */
export type ReadNext = (into: Uint8Array<ArrayBuffer>) => Promise<Uint8Array>;

/**
 * The table in a file read with `read`, or undefined when it is not the file `ref` names, whole
 * and of this format (then the channel is read again): a torn, older or foreign file is never
 * trusted. Read section by section, each into its column.
 */
export async function readTableFile(read: ReadNext, ref: TableRef): Promise<Table | undefined> {
  const hash = createHash("sha256");
  let position = 0;
  const next = async (into: Uint8Array<ArrayBuffer>): Promise<boolean> => {
    if (position + into.length > ref.size) return false;
    const got = await read(into);
    hash.update(got);
    position += got.length;
    return got.length === into.length;
  };
  const header = new Uint8Array(HEADER_SIZE);
  if (!await next(header)) return undefined;
  const view = new DataView(header.buffer);
  if (
    new TextDecoder().decode(header.subarray(0, 8)) !== MAGIC ||
    view.getUint32(8, true) !== TABLE_VERSION ||
    new Uint32Array(header.buffer, 12, 1)[0] !== BYTE_ORDER
  ) return undefined;
  const n = view.getUint32(16, true);
  /** The next section into a new array of `bytesPerRow` a row (0: any length). */
  const section = async <T extends ArrayBufferView<ArrayBuffer>>(
    make: (length: number) => T,
    bytesPerRow: number,
  ): Promise<T | undefined> => {
    const length = new Uint8Array(4);
    if (!await next(length)) return undefined;
    const bytes = new DataView(length.buffer).getUint32(0, true);
    if (bytesPerRow ? bytes !== n * bytesPerRow : position + bytes > ref.size) return undefined;
    const array = make(bytesPerRow ? n : bytes);
    return await next(bytesOf(array)) ? array : undefined;
  };
  const text = async (): Promise<Packed | undefined> => {
    const bytes = await section((length) => new Uint8Array(length), 0);
    if (!bytes) return undefined;
    let value: string;
    try {
      value = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return undefined;
    }
    const ends = await section((length) => new Int32Array(length), 4);
    if (!ends) return undefined;
    let end = 0;
    for (const e of ends) {
      if (e < end) return undefined;
      end = e;
    }
    if (end !== value.length) return undefined;
    // Pieces as Packed holds them: slices of one string, not copies.
    const pieces: string[] = [];
    for (let i = 0; i < ends.length; i += ROWS_PER_PIECE) {
      const from = i ? ends[i - 1] as number : 0;
      pieces.push(value.slice(from, ends[Math.min(ends.length, i + ROWS_PER_PIECE) - 1]));
    }
    return new Packed(pieces, ends);
  };
  const f64 = () => section((length) => new Float64Array(length), 8);
  const names = await text();
  const roots = names && await text();
  const sizes = roots && await f64();
  const mtimes = sizes && await f64();
  const at = mtimes && await f64();
  const own = at && await f64();
  const counts = own && await f64();
  const users = counts && await section((length) => new Int32Array(length), 4);
  const kindBytes = users && await section((length) => new Uint8Array(length), 1);
  const extraBytes = kindBytes && await section((length) => new Uint8Array(length), 0);
  if (
    !names || !roots || !sizes || !mtimes || !at || !own || !counts || !users || !kindBytes ||
    !extraBytes || position !== ref.size || (await read(new Uint8Array(1))).length !== 0 ||
    hash.digest("hex") !== ref.sha256
  ) return undefined;
  let extra: Extra;
  try {
    extra = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(extraBytes));
  } catch {
    return undefined;
  }
  if (!isExtra(extra, n)) return undefined;
  for (let i = 0; i < n; i++) {
    const user = users[i] as number;
    if (
      (kindBytes[i] as number) >= KINDS.length || user < 0 || user >= extra.people.length ||
      postIdFromFileName(names.get(i)) === undefined
    ) return undefined;
  }
  const columns: Columns = {
    names,
    roots,
    sizes,
    mtimes,
    at,
    kinds: kindBytes,
    users,
    people: extra.people,
    own,
    counts,
    fileIds: new Map(extra.fileIds),
    damage: new Map(extra.damage),
  };
  return new Table([columns], undefined, undefined, extra.files, extra.history);
}

function isExtra(value: unknown, rows: number): value is Extra {
  const e = value as Partial<Extra> | null;
  const stamps = (s: unknown) =>
    typeof s === "object" && s !== null && Object.values(s).every((v) => typeof v === "string");
  const inRange = (i: unknown) => Number.isInteger(i) && (i as number) >= 0 && (i as number) < rows;
  return typeof e === "object" && e !== null && Array.isArray(e.people) &&
    e.people.every((p) => typeof p === "string") && Array.isArray(e.fileIds) &&
    e.fileIds.every((f) =>
      Array.isArray(f) && inRange(f[0]) && Array.isArray(f[1]) &&
      f[1].length > 0 && f[1].every((id) => typeof id === "string")
    ) && Array.isArray(e.damage) &&
    e.damage.every((d) => Array.isArray(d) && inRange(d[0]) && typeof d[1] === "string") &&
    stamps(e.files) && stamps(e.history);
}
