/** Threads from a channel's spool: roots in time order with their replies, orphans on their own. */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Post } from "../lib/model/records.ts";
import { DataDir, encodeJson } from "../lib/store/data_dir.ts";
import { postFileName } from "../lib/store/layout.ts";
import { BackupReader, type ChannelEntry } from "../lib/store/reader.ts";
import { ChannelSpool, type ThreadOptions } from "../lib/export/threads.ts";

const CHANNEL = "c".repeat(26);
const T0 = Date.UTC(2024, 0, 1, 9);
const id = (name: string) => name.padEnd(26, "0");

function post(name: string, minute: number, rootName = "", extra: Partial<Post> = {}): Post {
  return {
    id: id(name),
    create_at: T0 + minute * 60_000,
    update_at: T0 + minute * 60_000,
    delete_at: 0,
    user_id: "u".repeat(26),
    channel_id: CHANNEL,
    root_id: rootName ? id(rootName) : "",
    message: name,
    ...extra,
  };
}

/** Writes the posts into a DM folder and returns the reader and its channel. */
async function channelOf(root: string, posts: Post[]): Promise<[BackupReader, ChannelEntry]> {
  const dataDir = new DataDir(root);
  const folder = ["direct", `${CHANNEL}__bob`];
  await dataDir.ensureDir(folder);
  for (const p of posts) await dataDir.writeText([...folder, postFileName(p)], encodeJson(p));
  const reader = new BackupReader(dataDir);
  const [channel] = await reader.channels();
  assert.ok(channel);
  return [reader, channel];
}

async function threadsOf(
  posts: Post[],
  options: Partial<ThreadOptions> = {},
): Promise<{ shape: string[]; counts: ChannelSpool["counts"]; leftover: string[] }> {
  const root = await Deno.makeTempDir();
  try {
    const [reader, channel] = await channelOf(root, posts);
    const spoolDir = join(root, "spool");
    const spool = await ChannelSpool.create(reader, channel, spoolDir, {
      keep: () => true,
      select: () => true,
      onDamage: () => {},
      ...options,
    });
    const shape: string[] = [];
    try {
      for await (const thread of spool.threads()) {
        const replies = await Array.fromAsync(thread.replies(), (r) => r.message as string);
        assert.equal(replies.length, thread.replyCount);
        shape.push(`${thread.orphan ? "orphan " : ""}${thread.root.message}[${replies.join(",")}]`);
      }
    } finally {
      await spool.close();
    }
    const leftover = await Array.fromAsync(Deno.readDir(root), (e) => e.name);
    return { shape, counts: spool.counts, leftover };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("each root comes once with its replies in time order; roots in time order", async () => {
  const { shape, counts, leftover } = await threadsOf([
    post("a", 0),
    post("b", 1),
    post("a1", 2, "a"),
    post("c", 3),
    post("b1", 4, "b"),
    post("a2", 5, "a"),
    post("a3", 5, "a"),
    post("c1", 6, "c"),
  ]);
  assert.deepEqual(shape, ["a[a1,a2,a3]", "b[b1]", "c[c1]"]);
  assert.deepEqual(counts, { read: 8, left: 0, threads: 3, replies: 5, orphans: 0 });
  assert.deepEqual(leftover, ["direct"], "the spool folder is removed");
});

Deno.test("a reply whose root is not stored stands alone at its own time", async () => {
  const { shape, counts } = await threadsOf([
    post("a", 0),
    post("x1", 1, "gone"),
    post("b", 2),
    post("x2", 3, "gone"),
    post("b1", 4, "b"),
  ]);
  assert.deepEqual(shape, ["a[]", "orphan x1[]", "b[b1]", "orphan x2[]"]);
  assert.equal(counts.orphans, 2);
});

Deno.test("a root that is not kept frees its replies; a reply not kept is left out", async () => {
  const deleted = { delete_at: T0 + 99 * 60_000 };
  const { shape, counts } = await threadsOf([
    post("a", 0, "", deleted),
    post("a1", 1, "a"),
    post("b", 2),
    post("b1", 3, "b", deleted),
    post("a2", 4, "a"),
  ], { keep: (p) => p.delete_at === 0 });
  assert.deepEqual(shape, ["orphan a1[]", "b[]", "orphan a2[]"]);
  assert.deepEqual(counts, { read: 5, left: 2, threads: 3, replies: 0, orphans: 2 });
});

Deno.test("a root left out by the selection hides its thread; orphans are selected by their time", async () => {
  const { shape } = await threadsOf([
    post("a", 0),
    post("b", 10),
    post("a1", 11, "a"),
    post("x1", 12, "gone"),
    post("b1", 13, "b"),
    post("x2", 1, "gone"),
  ], { select: (p) => p.create_at >= T0 + 5 * 60_000 });
  assert.deepEqual(shape, ["b[b1]", "orphan x1[]"]);
});
