/**
 * The rebuild plan (lib/view/rebuild.ts): which post files a rebuild reads and which pages and
 * thread pages it renders again, decided from the last build's table and a listing alone.
 */
import assert from "node:assert/strict";
import {
  decodeTable,
  filesToRead,
  Layout,
  planPages,
  planThreads,
  type Row,
  Table,
  tableJson,
} from "../lib/view/rebuild.ts";

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

Deno.test("the files read: new, changed, untrusted, and those whose attachment or history changed", () => {
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
  const read = filesToRead(old, listing, { [`${"f".repeat(26)}__a.png`]: "6:2000" }, {
    [`${id(4)}.json`]: "?",
  });
  assert.deepEqual(read, [1, 2, 3, 4, 7, 10].map(name));
  assert.deepEqual(
    filesToRead(old, new Map(rows.map((r) => [r.name, r])), old.files, old.history),
    [
      name(1),
    ],
  );
});

Deno.test("a stored table decodes to what was encoded; a damaged one does not decode", () => {
  const t = table(5, { 3: 1 }, new Map([[id(1), [id(3)]]]));
  const stored = JSON.parse([...tableJson(t)].join(""));
  assert.deepEqual(contents(decodeTable(stored) as Table), contents(t));
  assert.equal(contents(t).counts.get(id(1)), 1);
  // Written in pieces of 4,096 rows.
  const big = table(9_000, { 8_999: 5 }, new Map());
  assert.deepEqual(
    contents(decodeTable(JSON.parse([...tableJson(big)].join(""))) as Table),
    contents(big),
  );
  assert.equal(decodeTable({ ...stored, at: stored.at.slice(1) }), undefined);
  assert.equal(decodeTable({ ...stored, kinds: "ppppx" }), undefined);
  assert.equal(decodeTable(null), undefined);
});
