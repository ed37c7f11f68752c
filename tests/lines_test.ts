import assert from "node:assert/strict";
import { type Line, readLines } from "../lib/util/lines.ts";

/** A stream giving `text` as UTF-8 in chunks of `size` bytes (cutting characters apart). */
function chunked(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

async function lines(text: string, size: number, max?: number): Promise<Line[]> {
  return await Array.fromAsync(readLines(chunked(text, size), max));
}

Deno.test("lines come whole whatever the chunk size, with their UTF-8 length", async () => {
  const text = "first\nsecond café ☕\n\nthird 😀 line\r\nlast without newline";
  for (const size of [1, 2, 3, 7, 1000]) {
    assert.deepEqual(await lines(text, size), [
      { text: "first", bytes: 5 },
      { text: "second café ☕", bytes: 16 },
      { text: "", bytes: 0 },
      { text: "third 😀 line", bytes: 15 },
      { text: "last without newline", bytes: 20 },
    ], `chunks of ${size}`);
  }
});

Deno.test("a final newline adds no empty line, and an empty stream has none", async () => {
  assert.deepEqual(await lines("a\nb\n", 4), [{ text: "a", bytes: 1 }, { text: "b", bytes: 1 }]);
  assert.deepEqual(await lines("", 4), []);
});

Deno.test("a line over the limit comes with its length and no text; the next is read", async () => {
  const long = "x".repeat(50);
  for (const size of [3, 64]) {
    assert.deepEqual(await lines(`ok\n${long}\nafter\n${"y".repeat(10)}`, size, 10), [
      { text: "ok", bytes: 2 },
      { text: undefined, bytes: 50 },
      { text: "after", bytes: 5 },
      { text: "y".repeat(10), bytes: 10 },
    ]);
  }
});
