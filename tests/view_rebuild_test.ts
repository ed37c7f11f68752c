/**
 * The rebuild plan (lib/view/rebuild.ts): which post files a rebuild reads and which pages and
 * thread pages it renders again, decided from the last build's table and a listing alone.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  compareListing,
  Layout,
  planPages,
  planThreads,
  type Row,
  Table,
  TableBuilder,
  ThreadHashes,
} from "../lib/view/rebuild.ts";
import { readTableFile, TABLE_VERSION, tableFile, type TableRef } from "../lib/view/table_file.ts";

const id = (n: number) => `p${String(n).padStart(25, "0")}`;
const name = (n: number) => `20240101-${String(1_000_000_000_000 + n).slice(1)}__${id(n)}.json`;

/** Posts 0..count-1, a second apart; `roots` maps a reply's number to its root's. */
function rowsOf(count: number, roots: Record<number, number>): Row[] {
  const rows: Row[] = [];
  for (let n = 0; n < count; n++) {
    rows.push({
      name: name(n),
      id: id(n),
      size: 100,
      mtime: 1000,
      at: 1_700_000_000_000 + n * 1000,
      root: roots[n] === undefined ? "" : id(roots[n] as number),
      kind: "p",
      user: "u",
      own: 0,
      fileIds: n === 7 ? ["f".repeat(26)] : [],
      damage: "",
    });
  }
  return rows;
}

function table(count: number, roots: Record<number, number>, threads: Map<string, string[]>) {
  return tableOf(rowsOf(count, roots), threads);
}

function tableOf(rows: Row[], threads: Map<string, string[]>) {
  return Table.of(rows, new Map([...threads].map(([root, r]) => [root, r.length])), {}, {});
}

/** What a table holds, to compare (its columns are private). */
const contents = (t: Table) => ({
  rows: [...t.rows()],
  counts: t.counts(),
  files: t.files,
  history: t.history,
});

Deno.test("a root whose reply count changed is rendered again, its file unchanged", () => {
  const before = table(10, { 6: 2 }, new Map([[id(2), [id(6)]]]));
  const now = table(10, { 6: 2 }, new Map([[id(2), [id(6), id(9)]]]));
  const plans = planPages(new Layout(before, 4), new Layout(now, 4), new Set());
  assert.deepEqual(plans.map((p) => p.mode), ["splice", "keep", "keep"]);
  assert.deepEqual(plans[0]?.mode === "splice" && plans[0].rows.map((r) => r.id), [id(2)]);
  assert.deepEqual(planThreads(new Layout(before, 4), new Layout(now, 4), new Set()), [id(2)]);
});

Deno.test("a reply whose root moved to another page, or whose root changed, is rendered again", () => {
  const threads = new Map([[id(2), [id(6)]]]);
  const before = table(10, { 6: 2 }, threads);
  // A post inserted before the root moves every later post: pages render whole from there.
  const nowThreads = new Map([[id(3), [id(7)]]]);
  const now = table(11, { 7: 3 }, nowThreads);
  const then = tableOf(rowsOf(11, { 7: 3 }).filter((r) => r.id !== id(1)), nowThreads);
  assert.deepEqual(
    planPages(new Layout(then, 4), new Layout(now, 4), new Set([name(1)])).map((p) => p.mode),
    ["render", "render", "render"],
  );
  const plans = planPages(new Layout(before, 4), new Layout(before, 4), new Set([name(2)]));
  assert.deepEqual(plans.map((p) => p.mode === "splice" ? p.rows.map((r) => r.id) : p.mode), [
    [id(2)],
    [id(6)],
    "keep",
  ]);
});

Deno.test("the files read: new, changed, untrusted, and those whose attachment or history changed; the rows kept", async () => {
  const rows = rowsOf(10, {});
  (rows[1] as Row).mtime = -1;
  const old = tableOf(rows, new Map());
  old.files = { [`${"f".repeat(26)}__a.png`]: "5:1000" };
  old.history = { [`${id(4)}.json`]: "5:1000" };
  const listing = new Map(rows.map((r) => [r.name, { size: r.size, mtime: 1000 }]));
  listing.set(name(2), { size: 101, mtime: 1000 });
  listing.set(name(3), { size: 100, mtime: 2000 });
  listing.set(name(10), { size: 100, mtime: 1000 });
  listing.delete(name(5));
  const entries = (m: typeof listing) => [...m].map(([name, stat]) => ({ name, ...stat }));
  const { read, kept } = await compareListing(old, entries(listing), {
    [`${"f".repeat(26)}__a.png`]: "6:2000",
  }, { [`${id(4)}.json`]: "?" });
  assert.deepEqual([...read.keys()].sort(), [1, 2, 3, 4, 7, 10].map(name));
  assert.deepEqual(read.get(name(2)), { size: 101, mtime: 1000 });
  assert.deepEqual([...kept], [1, 0, 0, 0, 0, 0, 1, 0, 1, 1]);
  const same = new Map(rows.map((r) => [r.name, { size: r.size, mtime: r.mtime }]));
  const unchanged = await compareListing(old, entries(same), old.files, old.history);
  assert.deepEqual([...unchanged.read.keys()], [name(1)]);
});

/** The bytes of a table's file, and how a manifest names them. */
function stored(t: Table): { bytes: Uint8Array; ref: TableRef } {
  const pieces = [...tableFile(t)];
  const bytes = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) bytes.set(piece, at), at += piece.length;
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return { bytes, ref: { name: "c.table", size: bytes.length, sha256 } };
}

/** Reads `bytes` as the table file `ref` names, in pieces as the site reads a file. */
function read(bytes: Uint8Array, ref: TableRef): Promise<Table | undefined> {
  let at = 0;
  return readTableFile((into) => {
    const got = bytes.subarray(at, at + into.length);
    into.set(got);
    at += got.length;
    return Promise.resolve(into.subarray(0, got.length));
  }, ref);
}

Deno.test("a table's file reads back as it was written; a torn, changed, older or other one does not", async () => {
  const t = table(5, { 3: 1 }, new Map([[id(1), [id(3)]]]));
  t.files = { [`${"f".repeat(26)}__a.png`]: "5:1000" };
  const { bytes, ref } = stored(t);
  assert.deepEqual(contents(await read(bytes, ref) as Table), contents(t));
  assert.equal(contents(t).counts.get(id(1)), 1);
  // Names and roots that are not ASCII keep their places.
  const odd = tableOf(
    rowsOf(3, {}).map((r, i) => ({ ...r, root: ["é", "", "\u{1F600}x"][i] as string })),
    new Map(),
  );
  assert.deepEqual(
    contents(await read(stored(odd).bytes, stored(odd).ref) as Table),
    contents(odd),
  );
  // A rebuild's table (rows kept from the last one, rows read again) is written as one.
  const big = table(9_000, { 8_999: 5 }, new Map());
  const again = new TableBuilder();
  again.add({ ...rowsOf(9_001, {})[9_000] as Row, fileIds: ["g".repeat(26)], user: "v" });
  const kept = new Uint8Array(9_000).fill(1);
  kept[4] = 0;
  const patched = big.patched(kept, again.columns(undefined), new Map(), {}, { x: "1:2" });
  assert.equal(patched.length, 9_000);
  assert.equal(patched.name(8_999), name(9_000));
  assert.deepEqual(patched.row(3), big.row(3));
  assert.deepEqual(patched.row(4), big.row(5));
  const b = stored(patched);
  assert.deepEqual(contents(await read(b.bytes, b.ref) as Table), contents(patched));

  const flipped = bytes.slice();
  flipped[flipped.length - 30] = (flipped[flipped.length - 30] as number) ^ 1;
  const version = bytes.slice();
  new DataView(version.buffer).setUint32(8, TABLE_VERSION + 1, true);
  const rehashed = (b: Uint8Array) => ({
    ...ref,
    sha256: createHash("sha256").update(b).digest("hex"),
  });
  for (
    const [what, b, r] of [
      ["torn", bytes.subarray(0, bytes.length - 7), ref],
      ["torn, as named", bytes.subarray(0, bytes.length - 7), { ...ref, size: bytes.length - 7 }],
      ["a byte changed", flipped, ref],
      ["longer", Uint8Array.from([...bytes, 0]), ref],
      ["another version", version, rehashed(version)],
      ["empty", new Uint8Array(0), ref],
    ] as const
  ) assert.equal(await read(b, r), undefined, what);
});

Deno.test("thread pages' hashes as the manifest keeps them: found by key, listed, ids only", () => {
  const hashes = new Map([[id(3), "h3"], [id(1), "h1"], ["not an id", "hx"], [id(2), "h2"]]);
  const text = ThreadHashes.text(hashes);
  assert.equal(text, `${id(1)} h1\n${id(2)} h2\n${id(3)} h3\n`);
  const stored = new ThreadHashes(text);
  assert.deepEqual([id(1), id(2), id(3), id(4), "not an id"].map((k) => stored.get(k)), [
    "h1",
    "h2",
    "h3",
    undefined,
    undefined,
  ]);
  assert.deepEqual([...stored.keys()], [id(1), id(2), id(3)]);
  assert.deepEqual([...new ThreadHashes("").keys()], []);
  assert.equal(new ThreadHashes("").get(id(1)), undefined);
});
