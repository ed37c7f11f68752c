import assert from "node:assert/strict";
import { listFiles, readJsonFile, startGenerated, startHarness } from "./harness.ts";
import { assertRunCompletes, channelFolder } from "./expected_backup.ts";
import { InterruptedError } from "../lib/util/errors.ts";
import { systemClock } from "../lib/util/clock.ts";
import { SINCE_OVERLAP_MS } from "../lib/sync/sync_plan.ts";
import type { FaultPlan } from "./simulator/server.ts";
import { postFileName } from "../lib/store/layout.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { Channel, PostRecord, World } from "./simulator/world.ts";

function channelNamed(world: World, name: string): Channel {
  const channel = [...world.channels.values()].find((c) => c.name === name);
  assert.ok(channel, name);
  return channel;
}

function livePosts(world: World, channelId: string): PostRecord[] {
  return world.channelPosts(channelId).filter((p) => p.delete_at === 0);
}

async function storedPosts(dir: string): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    const post = await readJsonFile(`${dir}/${entry.name}`);
    assert.ok(!out.has(post.id as string), `post ${post.id} stored twice`);
    out.set(post.id as string, post);
  }
  return out;
}

const fileRequests = (h: { sim: { requests: { path: string }[] } }, fileId: string) =>
  h.sim.requests.filter((r) => r.path === `/api/v4/files/${fileId}`).length;

const SKIP_RECORDS = ["--skip-users", "--skip-emojis"];

/** One team whose one channel, town-square, has `postsPerChannel` posts, backed up once. */
async function startBackedUpChannel(
  postsPerChannel: number,
  options: Parameters<typeof startGenerated>[1] = {},
) {
  const started = await startGenerated(
    { teams: 1, channelsPerTeam: 1, postsPerChannel, dms: 0, gms: 0 },
    options,
  );
  const { h, world, me } = started;
  try {
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
  } catch (error) {
    await h.close();
    throw error;
  }
  const channel = channelNamed(world, "town-square");
  return { ...started, channel, folder: `${h.dataDir}/${channelFolder(world, channel, me.id)}` };
}

Deno.test("an update catches new posts, late replies, edits, reactions, pins and deletions", async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 80,
    dms: 0,
    gms: 0,
  });
  const channel = channelNamed(world, "town-square");
  try {
    assert.equal((await h.run()).status, 0);
    const folder = `${h.dataDir}/${channelFolder(world, channel, me.id)}`;
    const posts = livePosts(world, channel.id);
    const roots = posts.filter((p) => p.root_id === "" && world.threadReplies(p.id).length > 0);
    const [deletedRoot, repliedRoot] = roots;
    assert.ok(deletedRoot && repliedRoot);
    const deletedRootReplies = world.threadReplies(deletedRoot.id).map((p) => p.id);
    const plain = posts.filter((p) => p.root_id === "" && !roots.includes(p));
    const [edited, reacted, pinned, deletedPlain] = plain;
    assert.ok(edited && reacted && pinned && deletedPlain);
    const before = await storedPosts(folder);
    const withFile = posts.find((p) => p.file_ids.length > 0) as PostRecord;
    const oldFileId = withFile.file_ids[0] as string;

    world.advance(60_000);
    const fresh = world.addPost({ channelId: channel.id, userId: me.id, message: "brand new" });
    const lateReply = world.addPost({
      channelId: channel.id,
      userId: me.id,
      message: "late",
      rootId: repliedRoot.id,
    });
    const file = world.addFile({
      userId: me.id,
      channelId: channel.id,
      name: "new.txt",
      bytes: new TextEncoder().encode("new attachment"),
    });
    const withNewFile = world.addPost({
      channelId: channel.id,
      userId: me.id,
      message: "file",
      fileIds: [file.id],
    });
    world.editPost(edited.id, "edited text");
    world.addReaction(reacted.id, me.id, "tada");
    world.pinPost(pinned.id, true);
    world.deletePost(deletedRoot.id);
    world.deletePost(deletedPlain.id);

    const second = await h.run();
    assert.equal(second.status, 0, second.err.join("\n"));
    const after = await storedPosts(folder);
    for (const post of [fresh, lateReply, withNewFile]) {
      assert.ok(after.has(post.id), "new post stored");
    }
    assert.equal(after.get(edited.id)?.message, "edited text");
    assert.ok((after.get(edited.id)?.edit_at as number) > 0);
    const reactions =
      (after.get(reacted.id)?.metadata as { reactions?: { emoji_name: string }[] }).reactions;
    assert.ok(reactions?.some((r) => r.emoji_name === "tada"));
    assert.equal(after.get(pinned.id)?.is_pinned, true);
    assert.equal(
      after.get(repliedRoot.id)?.reply_count as number,
      world.threadReplies(repliedRoot.id).length,
    );
    // Deleted posts keep their last content and are marked; a deleted root takes its replies along.
    for (const id of [deletedRoot.id, deletedPlain.id, ...deletedRootReplies]) {
      const stored = after.get(id);
      assert.ok(stored, `deleted post ${id} kept`);
      assert.ok((stored.delete_at as number) > 0, `deleted post ${id} marked`);
      assert.equal(stored.message, before.get(id)?.message, "content kept");
      assert.notEqual(stored.message, "");
    }
    // Edit-history copies are never stored as posts.
    const copies = world.channelEditHistory(channel.id).map((p) => p.id);
    assert.ok(copies.length > 0);
    for (const id of copies) assert.ok(!after.has(id));
    assert.equal(after.size, before.size + 3);
    // The threads map knows the late reply; attachments are fetched once, ever.
    const threads = await readJsonFile<Record<string, string[]>>(`${folder}__threads.json`);
    assert.ok(threads[repliedRoot.id]?.includes(lateReply.id));
    assert.deepEqual(
      await Deno.readFile(`${folder}/files/${file.id}__new.txt`),
      world.fileBytes(file.id),
    );
    assert.equal(fileRequests(h, file.id), 1);
    assert.equal(fileRequests(h, oldFileId), 1);
  } finally {
    await h.close();
  }
});

/**
 * A backed-up channel where the edit of post `a` commits slowly: `since` shows b's later edit
 * first. Its update has run: b's edit is stored, a's not yet.
 */
async function withLaggingEdit(
  test: (
    context: Awaited<ReturnType<typeof startBackedUpChannel>> & { a: PostRecord },
  ) => Promise<void>,
): Promise<void> {
  const slow = new Set<string>();
  const started = await startBackedUpChannel(30, {
    sinceLagMs: (post) => (slow.has(post.id) ? 2 * 60_000 : 0),
  });
  const { h, world, channel, folder } = started;
  try {
    const [a, b] = livePosts(world, channel.id).filter((p) => p.root_id === "");
    assert.ok(a && b);
    world.advance(60_000);
    world.editPost(a.id, "slow edit");
    slow.add(a.id);
    world.editPost(b.id, "fast edit");
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
    const stored = await storedPosts(folder);
    assert.equal(stored.get(b.id)?.message, "fast edit");
    assert.notEqual(stored.get(a.id)?.message, "slow edit", "not on the replica yet");
    await test({ ...started, a });
  } finally {
    await h.close();
  }
}

Deno.test("a change a lagging replica shows after a later one is caught by the next update's overlap", () =>
  withLaggingEdit(async ({ h, world, me, channel, folder, a }) => {
    // The replica catches up; the channel changes again, so the ETag probe lets the update in.
    world.advance(3 * 60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "later" });
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
    const stored = await storedPosts(folder);
    assert.equal(stored.get(a.id)?.message, "slow edit", "caught by since's overlap");
  }));

Deno.test("a change a lagging replica shows late is stored by the next run though nothing else changes (the ETag is the same)", () =>
  withLaggingEdit(async ({ h, world, folder, a }) => {
    // The replica catches up; the channel's newest update_at, and so its ETag, stay the same.
    world.advance(3 * 60_000);
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
    assert.equal((await storedPosts(folder)).get(a.id)?.message, "slow edit");
  }));

Deno.test("an unchanged channel is asked for its changes until the overlap has passed since they were taken, then only probed", async () => {
  const { h, world, me, channel } = await startBackedUpChannel(30);
  try {
    let wall = Date.now();
    const clock = { ...systemClock, wallTime: () => wall };
    const asks = async () => {
      h.sim.resetStats();
      await h.runInProcess({ clock }, SKIP_RECORDS);
      const posts = h.sim.requests.filter((r) => r.path.endsWith(`/channels/${channel.id}/posts`));
      return {
        since: posts.filter((r) => /since=/.test(r.query)).length,
        probes: posts.filter((r) => !/since=/.test(r.query)).length,
      };
    };
    // Within the overlap of the crawl that took the watermark: the ETag is not trusted yet.
    assert.deepEqual(await asks(), { since: 1, probes: 1 });
    wall += SINCE_OVERLAP_MS;
    assert.deepEqual(await asks(), { since: 1, probes: 1 }, "asked once past the overlap");
    assert.deepEqual(await asks(), { since: 0, probes: 1 }, "then a 304 is believed");
    world.advance(60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "new" });
    assert.deepEqual(await asks(), { since: 1, probes: 1 });
    assert.deepEqual(await asks(), { since: 1, probes: 1 }, "a new watermark: asked again");
  } finally {
    await h.close();
  }
});

Deno.test("an update with nothing new costs at most 2 requests per channel plus a constant", async () => {
  const { world, me, password } = generateWorld({
    teams: 2,
    channelsPerTeam: 4,
    postsPerChannel: 30,
  });
  const h = await startHarness({
    world,
    credentials: { user: me.username, password },
    channels: {
      teams: { "team-0": {}, "team-1": {} },
      direct: ["alice", "bob"],
      groups: { subset: [[]] },
    },
  });
  try {
    assert.equal((await h.run()).status, 0);
    // Once the overlap has passed: the first update asks `since` once more (for late commits,
    // and the earlier versions only `since` lists), the next believes each ETag.
    const later = { ...systemClock, wallTime: () => Date.now() + SINCE_OVERLAP_MS };
    assert.equal((await h.run([], {}, { clock: later })).status, 0);
    h.sim.resetStats();
    const zip = await Deno.readFile(h.zipPath);
    const zipInfo = await Deno.stat(h.zipPath);
    const second = await h.run([], {}, { clock: later });
    assert.equal(second.status, 0);
    // The zip is left as it was (not even rewritten), and the summary says so.
    assert.ok(
      second.out.some((line) => /^Zip .*: unchanged, still exact \(\d+ entries/.test(line)),
      second.out.join("\n"),
    );
    const again = await Deno.stat(h.zipPath);
    assert.deepEqual(
      [again.ino, again.mtime?.getTime(), again.size],
      [zipInfo.ino, zipInfo.mtime?.getTime(), zipInfo.size],
    );
    assert.deepEqual(await Deno.readFile(h.zipPath), zip);
    const channels = second.out.filter((line) => /^\[\d+\/\d+\] .*: unchanged$/.test(line)).length;
    assert.ok(channels >= 10, `${channels} channels`);
    assert.ok(
      second.out.every((line) => !/^\[\d+\/\d+\]/.test(line) || line.endsWith("unchanged")),
    );
    // login, me, teams, channels, users of DMs/GMs, GM members (1 per GM), team members (1 per
    // team), users changed since, emoji, logout.
    const groups = [...world.channels.values()].filter((c) =>
      c.type === "G" && world.isChannelMember(c.id, me.id)
    );
    const constant = 7 + groups.length + 2;
    assert.ok(
      h.sim.requests.length <= 2 * channels + constant,
      `${h.sim.requests.length} requests`,
    );
    assert.ok(
      second.out.some((line) => line.includes(`${h.sim.requests.length} request(s)`)),
      "reported",
    );
    assert.ok(
      !h.sim.requests.some((r) => r.path.startsWith("/api/v4/files/")),
      "no file downloaded again",
    );
    assert.ok(
      !h.sim.requests.some((r) => r.path.endsWith("/image")),
      "no picture downloaded again",
    );
  } finally {
    await h.close();
  }
});

Deno.test("a channel empty at its first backup gets every post when it later fills beyond a page", async () => {
  const { h, world, me, channel } = await startBackedUpChannel(0);
  try {
    world.advance(60_000);
    for (let i = 0; i < 250; i++) {
      world.addPost({ channelId: channel.id, userId: me.id, message: `later ${i}` });
    }
    h.sim.resetStats();
    await assertRunCompletes(h, me.id, { channels: [channel] });
    assert.ok(!h.sim.requests.some((r) => /(^|&)since=0(&|$)/.test(r.query)), "never since=0");
  } finally {
    await h.close();
  }
});

Deno.test("more than 1000 changes make the channel be re-crawled and reconciled", async () => {
  const { h, world, channel, folder } = await startBackedUpChannel(1300);
  try {
    const posts = livePosts(world, channel.id);
    world.advance(60_000);
    for (const post of posts.slice(0, 1100)) world.editPost(post.id, `bulk ${post.id}`);
    const deleted = posts.slice(1200, 1205).filter((p) => p.root_id === "");
    assert.ok(deleted.length > 0);
    for (const post of deleted) world.deletePost(post.id);
    h.sim.resetStats();
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
    assert.ok(h.sim.requests.some((r) => /before=/.test(r.query)), "the channel was crawled again");
    const stored = await storedPosts(folder);
    for (const post of posts.slice(0, 1100)) {
      assert.equal(stored.get(post.id)?.message, `bulk ${post.id}`);
    }
    for (const post of deleted) {
      assert.ok((stored.get(post.id)?.delete_at as number) > 0, "deletion reconciled");
    }
  } finally {
    await h.close();
  }
});

Deno.test("exactly 1000 changes back, the server's cap, are not taken for all of them", async () => {
  const { h, world, me, channel, folder } = await startBackedUpChannel(1300);
  try {
    // A post ten minutes later takes the watermark out of reach of the generated ones, which
    // were all made within the same second.
    world.advance(10 * 60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "ten minutes later" });
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
    // Each edit changes two records (the post and its hidden history copy): 1200 of them, all
    // roots, so `since` answers with exactly its cap of 1000 and no extra root.
    const roots = livePosts(world, channel.id).filter((p) => p.root_id === "").slice(0, 600);
    assert.equal(roots.length, 600);
    world.advance(60_000);
    for (const post of roots) world.editPost(post.id, `bulk ${post.id}`);
    h.sim.resetStats();
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
    assert.ok(h.sim.requests.some((r) => /before=/.test(r.query)), "the channel was crawled again");
    const stored = await storedPosts(folder);
    for (const post of roots) assert.equal(stored.get(post.id)?.message, `bulk ${post.id}`);
  } finally {
    await h.close();
  }
});

Deno.test("renamed channels and users keep their folders and files; no history is fetched twice", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 20,
    dms: 2,
    gms: 0,
  });
  const channel = channelNamed(world, "town-square");
  const dm = [...world.channels.values()].find((c) =>
    c.type === "D" && c.name !== `${me.id}__${me.id}`
  ) as Channel;
  const partnerId = dm.name.split("__").find((id) => id !== me.id) as string;
  const partner = world.user(partnerId).username;
  const h = await startHarness({
    world,
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": {} }, direct: [partner] },
  });
  try {
    assert.equal((await h.run()).status, 0);
    const oldChannelFolder = channelFolder(world, channel, me.id);
    const oldDmFolder = channelFolder(world, dm, me.id);
    const usersBefore = (await listFiles(h.dataDir)).filter((p) => p.startsWith("users/"));
    world.renameChannel(channel.id, "renamed-square", "Renamed Square");
    world.renameUser(partnerId, "bobby");
    world.advance(1000);
    const post = world.addPost({ channelId: channel.id, userId: me.id, message: "after rename" });
    await h.writeChannels({ teams: { "team-0": {} }, direct: ["bobby"] });
    h.sim.resetStats();
    const second = await h.run();
    assert.equal(second.status, 0, second.err.join("\n"));
    const files = await listFiles(h.dataDir);
    assert.ok(
      files.includes(
        `${oldChannelFolder}/${
          postFileName(world.post(post.id) as { id: string; create_at: number })
        }`,
      ),
    );
    assert.ok(!files.some((p) => p.includes("renamed-square")), "no second folder");
    assert.ok(!files.some((p) => p.includes(`${dm.id}__bobby`)), "no second DM folder");
    assert.ok(files.some((p) => p.startsWith(`${oldDmFolder}/`)));
    const channelRecord = await readJsonFile(`${h.dataDir}/${oldChannelFolder}.json`);
    assert.equal(channelRecord.name, "renamed-square", "the record itself is current");
    assert.deepEqual(
      files.filter((p) => p.startsWith("users/")),
      usersBefore,
      "user files keep their names",
    );
    const userFile = usersBefore.find((p) =>
      p.startsWith(`users/${partnerId}__`) && p.endsWith(".json")
    );
    assert.equal((await readJsonFile(`${h.dataDir}/${userFile}`)).username, "bobby");
    assert.ok(!h.sim.requests.some((r) => /before=/.test(r.query)), "no history fetched again");
  } finally {
    await h.close();
  }
});

Deno.test("a user renamed by a change committed late (an update_at older than the last run's newest) is stored by the next run", async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 5,
    dms: 2,
    gms: 0,
  });
  try {
    const [slow, fast] = [...world.users.values()].filter((u) => u.id !== me.id);
    assert.ok(slow && fast);
    assert.equal((await h.run()).status, 0);
    // Two renames; the first one's transaction commits after the second, and after a run.
    world.advance(60_000);
    const before = { username: slow.username, update_at: slow.update_at };
    world.renameUser(slow.id, "slow-rename");
    const committed = { username: slow.username, update_at: slow.update_at };
    Object.assign(slow, before);
    world.renameUser(fast.id, "fast-rename");
    assert.equal((await h.run()).status, 0);
    Object.assign(slow, committed);
    assert.equal((await h.run()).status, 0);
    const files = await listFiles(h.dataDir);
    const record = files.find((p) => p.startsWith(`users/${slow.id}__`) && p.endsWith(".json"));
    assert.equal((await readJsonFile(`${h.dataDir}/${record}`)).username, "slow-rename");
  } finally {
    await h.close();
  }
});

Deno.test("a channel added to the config gets its full history; the others only their changes", async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 3,
    postsPerChannel: 450,
    dms: 0,
    gms: 0,
  }, { channels: { teams: { "team-0": { include: ["town-square"] } } } });
  const first = channelNamed(world, "town-square");
  const added = channelNamed(world, "private-0-1");
  try {
    assert.equal((await h.run(["--skip-users"])).status, 0);
    await h.writeChannels({ teams: { "team-0": { include: ["town-square", "private-0-1"] } } });
    h.sim.resetStats();
    assert.equal((await h.run(["--skip-users"])).status, 0);
    const stored = await storedPosts(`${h.dataDir}/${channelFolder(world, added, me.id)}`);
    assert.equal(stored.size, livePosts(world, added.id).length);
    const crawled = h.sim.requests.filter((r) => /before=/.test(r.query));
    assert.ok(crawled.length > 0 && crawled.every((r) => r.path.includes(added.id)));
    const firstPosts = h.sim.requests.filter((r) =>
      r.path === `/api/v4/channels/${first.id}/posts`
    );
    assert.deepEqual(
      firstPosts.map((r) => [/per_page=1(&|$)/.test(r.query), /since=/.test(r.query)]),
      [[true, false], [false, true]],
      "the ETag probe, and its changes while the last run's are within the overlap",
    );
  } finally {
    await h.close();
  }
});

Deno.test("--update-old-posts repairs missing and corrupt posts and attachments, duplicating nothing", async () => {
  const { h, world, channel, folder } = await startBackedUpChannel(120);
  try {
    const postFiles = (await listFiles(folder)).filter((p) => !p.includes("/"));
    const [removed, corrupt] = postFiles;
    await Deno.remove(`${folder}/${removed}`);
    await Deno.writeTextFile(`${folder}/${corrupt}`, '{"id": "trunc');
    const [attachment, truncated] = (await listFiles(folder)).filter((p) =>
      /^files\/[a-z0-9]{26}__/.test(p)
    );
    assert.ok(attachment && truncated);
    await Deno.remove(`${folder}/${attachment}`);
    // As a crash of matterbak, which wrote in place, could leave it.
    const whole = await Deno.readFile(`${folder}/${truncated}`);
    await Deno.writeFile(`${folder}/${truncated}`, whole.subarray(0, whole.length - 1));

    const normal = await h.run(SKIP_RECORDS);
    assert.equal(normal.status, 0);
    assert.ok(
      !(await listFiles(folder)).includes(removed as string),
      "a normal update does not look back",
    );

    const repair = await h.run(["--update-old-posts", ...SKIP_RECORDS]);
    assert.equal(repair.status, 0, repair.err.join("\n"));
    const after = await listFiles(folder);
    assert.ok(after.includes(removed as string) && after.includes(attachment));
    assert.deepEqual(
      await Deno.readFile(`${folder}/${truncated}`),
      whole,
      "a short one is fetched again",
    );
    assert.equal(
      (await readJsonFile(`${folder}/${corrupt}`)).id,
      (corrupt as string).slice(23, 49),
    );
    const stored = await storedPosts(folder);
    assert.equal(stored.size, livePosts(world, channel.id).length, "each post once");
  } finally {
    await h.close();
  }
});

Deno.test("a re-crawl of a channel whose posts are all gone marks every stored post deleted", async () => {
  const { h, world, channel, folder } = await startBackedUpChannel(30);
  try {
    const before = await storedPosts(folder);
    for (const post of world.channelPosts(channel.id)) {
      if (post.delete_at === 0) world.deletePost(post.id);
    }
    const run = await h.run(["--update-old-posts", ...SKIP_RECORDS]);
    assert.equal(run.status, 0, run.err.join("\n"));
    const after = await storedPosts(folder);
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
    for (const [id, post] of after) {
      assert.ok((post.delete_at as number) > 0, `${id} marked deleted`);
      assert.equal(post.message, before.get(id)?.message, "content kept");
    }
  } finally {
    await h.close();
  }
});

Deno.test("an interrupted update is completed by the next run", async () => {
  const controller = new AbortController();
  let armed = false;
  const faults: FaultPlan = (req) => {
    // The update is stopped on its first attachment download, after its posts were written.
    if (armed && req.path.startsWith("/api/v4/files/")) {
      controller.abort(new InterruptedError("SIGTERM"));
    }
    return undefined;
  };
  const { h, world, me, channel } = await startBackedUpChannel(30, { faults });
  try {
    world.advance(60_000);
    for (let i = 0; i < 6; i++) {
      const file = world.addFile({
        userId: me.id,
        channelId: channel.id,
        name: `f${i}.txt`,
        bytes: new TextEncoder().encode(`file ${i}`),
      });
      world.addPost({
        channelId: channel.id,
        userId: me.id,
        message: file.name,
        fileIds: [file.id],
      });
    }
    const edited = livePosts(world, channel.id).find((p) => p.root_id === "") as PostRecord;
    world.editPost(edited.id, "edited before an interrupted update");
    // A later change puts the ones above out of reach of the overlap: only a watermark that
    // did not move past unfinished work brings their attachments back.
    world.advance(10 * 60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "ten minutes later" });
    armed = true;
    await assert.rejects(
      h.runInProcess({ signal: controller.signal }, SKIP_RECORDS),
      InterruptedError,
    );
    armed = false;
    await assertRunCompletes(h, me.id, { channels: [channel] });
  } finally {
    await h.close();
  }
});

Deno.test("the state counts the post files: new posts add to it, edits and deletions do not", async () => {
  const { h, world, me, channel, folder } = await startBackedUpChannel(60);
  try {
    const stateFile = `${h.dataDir}/.matterbak/channels/${channel.id}.json`;
    const files = async () =>
      (await listFiles(folder)).filter((p) => !p.startsWith("files/") && !p.startsWith("history/"));
    const before = (await files()).length;
    assert.equal((await readJsonFile(stateFile)).posts, before);
    world.advance(60_000);
    const [edited, deleted] = livePosts(world, channel.id).filter((p) => p.root_id === "");
    world.editPost(edited?.id as string, "edited");
    world.deletePost(deleted?.id as string);
    world.addPost({ channelId: channel.id, userId: me.id, message: "new" });
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
    const count = (await files()).length;
    assert.equal(count, before + 1, "one post file more; the edited and the deleted rewritten");
    assert.equal((await readJsonFile(stateFile)).posts, count);
  } finally {
    await h.close();
  }
});
