/**
 * Reads every post of a data dir through the store's reader, in time order, and prints
 * `<posts> <damaged> <seconds>`: the bench runs it in its own process to measure the reader's
 * peak memory on the 200,000-post channel.
 */
import { DataDir } from "../lib/store/data_dir.ts";
import { BackupReader } from "../lib/store/reader.ts";

const reader = new BackupReader(new DataDir(Deno.args[0] ?? "."));
const started = performance.now();
let posts = 0;
let damaged = 0;
let last = -Infinity;
for (const channel of await reader.channels()) {
  for await (const item of reader.posts(channel)) {
    if (item.kind === "damaged") {
      damaged++;
      continue;
    }
    if (item.post.create_at < last) throw new Error(`${item.post.id} is out of time order`);
    last = item.post.create_at;
    posts++;
  }
  last = -Infinity;
}
console.log(`${posts} ${damaged} ${((performance.now() - started) / 1000).toFixed(1)}`);
