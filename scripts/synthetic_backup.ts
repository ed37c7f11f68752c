/**
 * Writes a synthetic data dir without a server, for measuring the exports on shapes the
 * simulated world does not make: one channel of N posts in one team, 20 users, a reaction on
 * every 13th post, a 1 KB attachment on every K-th post, and either short threads (every 4th
 * post a reply to a recent root) or one thread holding every second post ("mega").
 *
 *   deno run -A scripts/synthetic_backup.ts DIR [POSTS=200000] [threads|mega] [FILES_EVERY=0]
 *
 * then, for example, `deno run -A main.ts export mattermost -d DIR -o out.zip`.
 */
import { join } from "node:path";
import { postFileName } from "../lib/store/layout.ts";

const [root, postsArg, shape = "threads", filesArg] = Deno.args;
if (!root) throw new Error("usage: synthetic_backup.ts DIR [POSTS] [threads|mega] [FILES_EVERY]");
const count = Number(postsArg ?? 200_000);
const filesEvery = Number(filesArg ?? 0);
let sequence = 0;
/** Distinct 26-character ids: a letter, then the sequence in base 36. */
const newId = (kind: string) => kind + (sequence++).toString(36).padStart(25, "0");
const write = (path: string, value: unknown) =>
  Deno.writeTextFile(join(root, path), typeof value === "string" ? value : JSON.stringify(value));

const team = newId("t");
const channel = newId("c");
const users = Array.from({ length: 20 }, (_, i) => ({
  id: newId("u"),
  username: `user${i}`,
  email: `user${i}@example.com`,
  first_name: "User",
  last_name: String(i),
  update_at: 1,
  delete_at: 0,
}));
const teamDir = `teams/${team}__bench`;
const folder = `${teamDir}/${channel}__big`;
await Deno.mkdir(join(root, "users"), { recursive: true });
await Deno.mkdir(join(root, folder, "files"), { recursive: true });
for (const user of users) await write(`users/${user.id}__${user.username}.json`, user);
await write(`${teamDir}.json`, { id: team, name: "bench", display_name: "Bench", type: "O" });
await write(`${teamDir}__members.json`, users.map((u) => ({ user_id: u.id, roles: "team_user" })));
await write(`${folder}.json`, {
  id: channel,
  team_id: team,
  type: "O",
  name: "big",
  display_name: "Big",
  delete_at: 0,
});
await write(
  `${folder}__members.json`,
  users.map((u) => ({ user_id: u.id, roles: "channel_user" })),
);

const roots: string[] = [];
const threads: Record<string, string[]> = {};
let time = Date.UTC(2020, 0, 1);
for (let i = 0; i < count; i++) {
  time += 30_000 + (i % 7) * 1000;
  const id = newId("p");
  const rootId = shape === "mega"
    ? (i > 0 && i % 2 === 0 ? roots[0] as string : "")
    : (roots.length && i % 4 === 3 ? roots[roots.length - 1 - (i % roots.length % 20)] : "") ?? "";
  const user = users[i % users.length] as (typeof users)[number];
  const metadata: Record<string, unknown> = {};
  const post: Record<string, unknown> = {
    id,
    create_at: time,
    update_at: time,
    edit_at: 0,
    delete_at: 0,
    is_pinned: false,
    user_id: user.id,
    channel_id: channel,
    root_id: rootId,
    message: `message ${i} ${"lorem ipsum ".repeat(i % 10)}`,
    type: "",
    props: {},
    metadata,
  };
  if (i % 13 === 0) {
    metadata.reactions = [{ user_id: user.id, post_id: id, emoji_name: "+1", create_at: time + 5 }];
  }
  if (filesEvery > 0 && i % filesEvery === 0) {
    const info = { id: newId("f"), name: `file ${i}.txt`, size: 1024, mime_type: "text/plain" };
    post.file_ids = [info.id];
    metadata.files = [info];
    await write(`${folder}/files/${info.id}.json`, info);
    await write(`${folder}/files/${info.id}__${info.name}`, "x".repeat(1024));
  }
  if (rootId) (threads[rootId] ??= []).push(id);
  else roots.push(id);
  await write(`${folder}/${postFileName({ id, create_at: time })}`, post);
}
await write(`${folder}__threads.json`, threads);
// deno-lint-ignore no-console
console.log(`${root}: ${count} posts, ${roots.length} roots`);
