/**
 * Edit history: every earlier version of an edited post is kept once, in order, in
 * `history/<postId>.json` beside the posts, from the three places it comes from (the post as
 * the backup had it, the server's hidden copies among the changes, and the server's edit
 * history of the user's own posts), and no hidden copy is ever stored as a post.
 */
import assert from "node:assert/strict";
import type { FsRecorder } from "../lib/store/atomic_write.ts";
import { DataDir } from "../lib/store/data_dir.ts";
import { editAt, type PostVersion, versionText } from "../lib/store/history.ts";
import { DIRS, historyFileName, postIdFromFileName } from "../lib/store/layout.ts";
import { BackupReader } from "../lib/store/reader.ts";
import type { ChannelState } from "../lib/store/state.ts";
import { StorageError } from "../lib/util/errors.ts";
import { channelFolder } from "./expected_backup.ts";
import { type Harness, readJsonFile, startAliceAndBob } from "./harness.ts";
import type { FaultPlan, SimulatorOptions } from "./simulator/server.ts";
import { type Channel, type User, World } from "./simulator/world.ts";

interface Setup {
  h: Harness;
  world: World;
  me: User;
  bob: User;
  channel: Channel;
  folder: string;
}

/** alice (the backup's account) and bob in one channel of one team. */
async function setup(options: Partial<Omit<SimulatorOptions, "world">> = {}): Promise<Setup> {
  const started = await startAliceAndBob(options);
  return { ...started, folder: channelFolder(started.world, started.channel, started.me.id) };
}

const ARGS = ["--skip-users", "--skip-emojis"];

async function backup(s: Setup, extra: string[] = []) {
  const result = await s.h.run([...ARGS, ...extra]);
  assert.equal(result.status, 0, result.err.join("\n"));
  return result;
}

/** The stored versions of a post as [edit_at, text, from], oldest first; none without a file. */
async function versions(s: Setup, postId: string): Promise<Array<[number, string | undefined]>> {
  const read = await new BackupReader(new DataDir(s.h.dataDir)).history(
    { folder: s.folder.split("/") },
    postId,
  );
  assert.ok(Array.isArray(read), JSON.stringify(read));
  return read.map((v: PostVersion) => [editAt(v.post), versionText(v)]);
}

/** The post file of `postId`. */
async function storedPost(s: Setup, postId: string): Promise<Record<string, unknown>> {
  for await (const entry of Deno.readDir(`${s.h.dataDir}/${s.folder}`)) {
    if (postIdFromFileName(entry.name) === postId) {
      return await readJsonFile(`${s.h.dataDir}/${s.folder}/${entry.name}`);
    }
  }
  throw new Error(`post ${postId} is not stored`);
}

/** Every post file holds a post of the world, none a hidden copy; every history file a post. */
async function assertNoCopyStoredAsPost(s: Setup): Promise<void> {
  const copies = new Set(s.world.channelEditHistory(s.channel.id).map((p) => p.id));
  assert.ok(copies.size > 0);
  for await (const entry of Deno.readDir(`${s.h.dataDir}/${s.folder}`)) {
    const id = postIdFromFileName(entry.name);
    if (!entry.isFile || !id) continue;
    assert.ok(!copies.has(id), `history copy ${id} stored as a post`);
    const post = await readJsonFile(`${s.h.dataDir}/${s.folder}/${entry.name}`);
    assert.ok(!post.original_id, `post file ${entry.name} holds a history copy`);
  }
  for await (const entry of Deno.readDir(`${s.h.dataDir}/${s.folder}/${DIRS.history}`)) {
    const id = entry.name.slice(0, 26);
    assert.ok(!copies.has(id), `a history file named after copy ${id}`);
    assert.ok(s.world.posts.get(id)?.original_id === "", `history of ${id}, a post`);
  }
}

const editHistoryRequests = (h: Harness) =>
  h.sim.requests.filter((r) => r.path.endsWith("/edit_history")).length;

Deno.test("edits the backup sees keep every earlier version once, in order, and no copy becomes a post", async () => {
  const s = await setup();
  const { world, bob, channel } = s;
  try {
    const post = (message: string, rootId?: string) =>
      world.addPost({
        channelId: channel.id,
        userId: bob.id,
        message,
        ...(rootId ? { rootId } : {}),
      });
    const once = post("once v0");
    const reply = post("reply v0", once.id);
    const several = post("several v0");
    const doomed = post("doomed v0");
    const early = post("early v0");
    world.editPost(early.id, "early v1");
    await backup(s);
    // Edited before the backup first saw it: only its latest text is known.
    assert.deepEqual(await versions(s, early.id), []);

    world.advance(60 * 60_000);
    world.editPost(once.id, "once v1");
    world.editPost(reply.id, "reply v1");
    world.editPost(several.id, "several v1");
    world.editPost(several.id, "several v2");
    world.editPost(doomed.id, "doomed v1");
    world.deletePost(doomed.id);
    const second = await backup(s);
    assert.ok(
      second.out.some((line) => /earlier version\(s\) kept/.test(line)),
      second.out.join("\n"),
    );

    const editOf = (id: string, message: string) =>
      world.editHistory(id).find((copy) => copy.message === message)?.edit_at;
    assert.deepEqual(await versions(s, once.id), [[0, "once v0"]]);
    assert.equal((await storedPost(s, once.id)).message, "once v1");
    assert.deepEqual(await versions(s, reply.id), [[0, "reply v0"]]);
    assert.equal((await storedPost(s, reply.id)).message, "reply v1");
    // The version between the two edits was never seen: the server sends its copy without text.
    const v1 = editOf(several.id, "several v1");
    assert.ok(v1);
    assert.deepEqual(await versions(s, several.id), [[0, "several v0"], [v1, undefined]]);
    assert.equal((await storedPost(s, several.id)).message, "several v2");
    // Deleted after an edit it never saw: the post keeps the text it had, marked deleted, and
    // the later edit is a version without its text.
    const stored = await storedPost(s, doomed.id);
    assert.equal(stored.message, "doomed v0");
    assert.ok((stored.delete_at as number) > 0);
    const doomedEdit = world.post(doomed.id)?.edit_at as number;
    assert.ok(doomedEdit > 0);
    assert.deepEqual(await versions(s, doomed.id), [[doomedEdit, undefined]]);
    await assertNoCopyStoredAsPost(s);

    // Within the `since` overlap the same copies come again; a pin adds a copy of the current
    // text. Neither is a new version.
    world.advance(60_000);
    world.pinPost(once.id, true);
    world.editPost(several.id, "several v3");
    const historyBefore = await Deno.readTextFile(
      `${s.h.dataDir}/${s.folder}/${DIRS.history}/${historyFileName(once.id)}`,
    );
    s.h.sim.resetStats();
    await backup(s);
    const since = s.h.sim.requests.find((r) => /since=/.test(r.query));
    assert.ok(since);
    const answeredAgain = world.channelEditHistory(channel.id).filter((copy) =>
      copy.original_id === reply.id
    );
    assert.ok(
      answeredAgain.every((copy) =>
        copy.update_at > Number(new URLSearchParams(since.query).get("since"))
      ),
      "the earlier copies are in the overlap",
    );
    assert.equal(
      await Deno.readTextFile(
        `${s.h.dataDir}/${s.folder}/${DIRS.history}/${historyFileName(once.id)}`,
      ),
      historyBefore,
    );
    assert.deepEqual(await versions(s, reply.id), [[0, "reply v0"]]);
    const v2 = editOf(several.id, "several v2");
    assert.deepEqual(await versions(s, several.id), [
      [0, "several v0"],
      [v1, undefined],
      [v2, "several v2"],
    ]);
    assert.equal((await storedPost(s, several.id)).message, "several v3");
    // Nothing of another user's post is asked for.
    assert.equal(editHistoryRequests(s.h), 0);
    await assertNoCopyStoredAsPost(s);
  } finally {
    await s.h.close();
  }
});

Deno.test("a crash right after an edited post is stored loses no version: its history was written first", async () => {
  const s = await setup();
  const { world, bob, channel } = s;
  try {
    const post = world.addPost({ channelId: channel.id, userId: bob.id, message: "before" });
    await backup(s);
    world.advance(60 * 60_000);
    world.editPost(post.id, "after");
    // kill -9 just after the new version is renamed into place: nothing more reaches the disk.
    let crashed = false;
    const recorder: FsRecorder = (step) => {
      if (crashed) throw new StorageError("simulated crash: the process is gone");
      if (step.op === "rename" && step.to.endsWith(`__${post.id}.json`)) crashed = true;
    };
    await assert.rejects(s.h.runInProcess({ fsRecorder: recorder }, ARGS), /simulated crash/);
    assert.ok(crashed);
    assert.equal((await storedPost(s, post.id)).message, "after");
    await backup(s);
    assert.deepEqual(await versions(s, post.id), [[0, "before"]]);
  } finally {
    await s.h.close();
  }
});

Deno.test("the user's own edited posts get every earlier version with its text from the server, one request each", async () => {
  const s = await setup();
  const { world, me, channel } = s;
  try {
    const mine = world.addPost({ channelId: channel.id, userId: me.id, message: "mine v0" });
    world.editPost(mine.id, "mine v1");
    world.pinPost(mine.id, true);
    world.editPost(mine.id, "mine v2");
    const reply = world.addPost({
      channelId: channel.id,
      userId: me.id,
      rootId: mine.id,
      message: "my reply v0",
    });
    world.editPost(reply.id, "my reply v1");
    world.addPost({ channelId: channel.id, userId: me.id, message: "never edited" });
    const first = await backup(s);
    assert.equal(editHistoryRequests(s.h), 2, "one request per edited post of mine");
    assert.ok(
      first.out.some((line) => /\(2 for edit histories\)/.test(line)),
      first.out.join("\n"),
    );
    const at = (id: string, message: string) =>
      world.editHistory(id).find((copy) => copy.message === message)?.edit_at as number;
    assert.deepEqual(await versions(s, mine.id), [[0, "mine v0"], [
      at(mine.id, "mine v1"),
      "mine v1",
    ]]);
    assert.deepEqual(await versions(s, reply.id), [[0, "my reply v0"]]);

    // Two edits between runs: the server's history has the one the backup never saw.
    world.advance(60 * 60_000);
    world.editPost(mine.id, "mine v3");
    world.editPost(mine.id, "mine v4");
    s.h.sim.resetStats();
    await backup(s);
    assert.equal(editHistoryRequests(s.h), 1);
    assert.deepEqual(await versions(s, mine.id), [
      [0, "mine v0"],
      [at(mine.id, "mine v1"), "mine v1"],
      [at(mine.id, "mine v2"), "mine v2"],
      [at(mine.id, "mine v3"), "mine v3"],
    ]);
    assert.equal((await storedPost(s, mine.id)).message, "mine v4");

    // Nothing changed: nothing is asked.
    world.advance(60 * 60_000);
    s.h.sim.resetStats();
    await backup(s);
    assert.equal(editHistoryRequests(s.h), 0);
    await assertNoCopyStoredAsPost(s);
  } finally {
    await s.h.close();
  }
});

Deno.test("a server without the edit-history endpoint is asked once, says so, and the run succeeds", async () => {
  const s = await setup({ editHistory: false });
  const { world, me, channel } = s;
  try {
    for (const n of [1, 2, 3]) {
      const post = world.addPost({ channelId: channel.id, userId: me.id, message: `p${n} v0` });
      world.editPost(post.id, `p${n} v1`);
    }
    const result = await backup(s, ["--concurrency", "1"]);
    assert.equal(editHistoryRequests(s.h), 1);
    assert.ok(
      result.out.some((line) => /no edit history to ask for/.test(line)),
      result.out.join("\n"),
    );
    const state = await readJsonFile<ChannelState>(
      `${s.h.dataDir}/.matterbak/channels/${channel.id}.json`,
    );
    assert.equal(state.pendingHistory, undefined, "nothing left to ask");
    await Deno.stat(`${s.h.dataDir}/${s.folder}/${DIRS.history}`).then(
      () => assert.fail("no history was known"),
      (error) => assert.ok(error instanceof Deno.errors.NotFound),
    );
    // Within the overlap of `since` the posts come again, and each run asks once (as for posts
    // stored by a run that was stopped before its state was written), at any concurrency.
    s.h.sim.resetStats();
    await backup(s);
    assert.equal(editHistoryRequests(s.h), 1);
  } finally {
    await s.h.close();
  }
});

Deno.test("an edit-history request that fails is a failed item, and the next run asks again", async () => {
  let failing = true;
  const faults: FaultPlan = (req) =>
    failing && req.path.endsWith("/edit_history") ? { kind: "status", status: 503 } : undefined;
  const s = await setup({ faults });
  const { world, me, channel } = s;
  try {
    const mine = world.addPost({ channelId: channel.id, userId: me.id, message: "v0" });
    world.editPost(mine.id, "v1");
    const failed = await s.h.run([...ARGS, "--retries", "0"]);
    assert.equal(failed.status, 3, failed.err.join("\n"));
    assert.ok(failed.err.some((line) => line.includes(`edit history of post ${mine.id}`)));
    const state = await readJsonFile<ChannelState>(
      `${s.h.dataDir}/.matterbak/channels/${channel.id}.json`,
    );
    assert.deepEqual(state.pendingHistory?.map((p) => p.postId), [mine.id]);

    failing = false;
    world.advance(60 * 60_000);
    await backup(s);
    assert.deepEqual(await versions(s, mine.id), [[0, "v0"]]);
    const after = await readJsonFile<ChannelState>(
      `${s.h.dataDir}/.matterbak/channels/${channel.id}.json`,
    );
    assert.equal(after.pendingHistory, undefined);
  } finally {
    await s.h.close();
  }
});
