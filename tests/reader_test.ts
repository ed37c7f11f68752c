import assert from "node:assert/strict";
import { join } from "node:path";
import { DataDir, encodeJson, type RelPath } from "../lib/store/data_dir.ts";
import { postFileName } from "../lib/store/layout.ts";
import { BackupReader, type PostItem } from "../lib/store/reader.ts";
import type { Post } from "../lib/model/records.ts";
import { harnessForAll, myChannels } from "./expected_backup.ts";
import { generateWorld } from "./simulator/generate.ts";
import { userJson } from "./simulator/server.ts";

async function collect(items: AsyncIterable<PostItem>): Promise<PostItem[]> {
  return await Array.fromAsync(items);
}

const postsOf = (items: PostItem[]) =>
  items.flatMap((item) => item.kind === "post" ? [item.post] : []);

Deno.test("the reader gives back everything a backup of the simulated world stored", async () => {
  const { world, me, password } = generateWorld({ hostileNames: true, filesEvery: 3 });
  const h = await harnessForAll({ world, me, password });
  try {
    assert.equal((await h.run()).status, 0);
    const reader = new BackupReader(new DataDir(h.dataDir));

    const teams = await reader.teams();
    assert.deepEqual(
      teams.map((t) => t.record?.id).sort(),
      [...world.teams.values()].map((t) => t.id).sort(),
    );
    for (const team of teams) {
      assert.deepEqual(team.damage, []);
      const members = await reader.teamMembers(team);
      assert.ok(Array.isArray(members));
      assert.deepEqual(
        members.map((m) => m.user_id).sort(),
        world.teamMembers(team.id).map((m) => m.user_id).sort(),
      );
      const icon = world.teamIcon(team.id);
      if (icon) {
        assert.ok(team.icon, `icon of ${team.id}`);
        assert.deepEqual(await Deno.readFile(join(h.dataDir, ...team.icon)), icon);
      } else assert.equal(team.icon, undefined);
    }

    const channels = await reader.channels();
    const expected = myChannels(world, me.id);
    assert.deepEqual(channels.map((c) => c.id).sort(), expected.map((c) => c.id).sort());
    let attachments = 0;
    for (const channel of channels) {
      const wc = world.channel(channel.id);
      assert.deepEqual(channel.damage, []);
      assert.equal(channel.record?.id, wc.id);
      assert.equal(channel.record?.header, wc.header);
      assert.equal(channel.record?.purpose, wc.purpose);
      assert.equal(channel.kind, { O: "teams", P: "teams", D: "direct", G: "groups" }[wc.type]);
      assert.equal(channel.team?.id, wc.team_id || undefined);
      const members = await reader.members(channel);
      assert.ok(Array.isArray(members));
      assert.deepEqual(
        members.map((m) => m.user_id).sort(),
        world.channelMembers(wc.id).map((m) => m.user_id).sort(),
      );

      const items = await collect(reader.posts(channel));
      assert.deepEqual(items.filter((i) => i.kind === "damaged"), []);
      const stored = postsOf(items);
      // A first backup sees the posts not deleted (the server lists no deleted post).
      const live = world.channelPosts(wc.id).filter((p) => p.delete_at === 0).sort((a, b) =>
        a.create_at - b.create_at || (a.id < b.id ? -1 : 1)
      );
      assert.deepEqual(stored.map((p) => p.id), live.map((p) => p.id), `order in ${wc.name}`);
      for (const [i, post] of stored.entries()) {
        assert.deepEqual(post, world.toPost(live[i] as (typeof live)[number]));
      }

      const threads = await reader.threads(channel);
      assert.ok(threads instanceof Map);
      for (const post of stored.filter((p) => p.root_id)) {
        assert.ok(threads.get(post.root_id)?.includes(post.id), `reply ${post.id} in threads`);
      }

      for (const post of stored) {
        for (const attachment of await reader.attachments(channel, post)) {
          attachments++;
          assert.ok(attachment.path, `data of ${attachment.fileId}`);
          assert.equal(attachment.size, attachment.info?.size);
          assert.deepEqual(
            await Deno.readFile(join(h.dataDir, ...attachment.path)),
            world.fileBytes(attachment.fileId),
          );
        }
      }
    }
    assert.ok(attachments > 10, `${attachments} attachments read back`);

    const users = await Array.fromAsync(reader.users());
    assert.ok(users.length > 3);
    let pictures = 0;
    for (const user of users) {
      assert.deepEqual(user.damage, []);
      assert.deepEqual(user.record, userJson(world.user(user.id)));
      const picture = world.user(user.id).last_picture_update
        ? world.userPicture(user.id)
        : undefined;
      if (picture) {
        assert.ok(user.image, `picture of ${user.record?.username}`);
        assert.deepEqual(await Deno.readFile(join(h.dataDir, ...user.image)), picture);
        pictures++;
      } else assert.equal(user.image, undefined);
    }
    assert.ok(pictures > 0, "some users have a picture");
    const emojis = await Array.fromAsync(reader.emojis());
    assert.deepEqual(
      emojis.map((e) => e.id).sort(),
      [...world.emojis.values()].filter((e) => !e.delete_at).map((e) => e.id).sort(),
    );
    for (const emoji of emojis) {
      assert.ok(emoji.image);
      assert.deepEqual(
        await Deno.readFile(join(h.dataDir, ...emoji.image)),
        world.emojiImage(emoji.id)?.bytes,
      );
    }
  } finally {
    await h.close();
  }
});

const CHANNEL_ID = "c".repeat(26);
const postId = (n: number) => n.toString(36).padStart(26, "p");

function post(n: number, createAt: number): Post {
  return {
    id: postId(n),
    create_at: createAt,
    update_at: createAt,
    delete_at: 0,
    user_id: "u".repeat(26),
    channel_id: CHANNEL_ID,
    root_id: "",
    message: `post ${n}`,
  };
}

/** matterbak's name for a post: its `create_at` in a local time `offsetHours` from UTC. */
function localName(p: Post, offsetHours: number): string {
  return postFileName({ id: p.id, create_at: p.create_at + offsetHours * 3600_000 });
}

async function withFolder(
  files: Array<[name: string, text: string]>,
  check: (reader: BackupReader, folder: RelPath) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "matterbak-reader-" });
  try {
    const dataDir = new DataDir(root);
    const folder = ["direct", `${CHANNEL_ID}__bob`];
    await dataDir.ensureDir(folder);
    for (const [name, text] of files) await Deno.writeTextFile(join(root, ...folder, name), text);
    await check(new BackupReader(dataDir), folder);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("posts come in time order across passes, from UTC names and matterbak's local-time names mixed", async () => {
  const hour = 3600_000;
  const start = Date.UTC(2023, 3, 1, 8);
  const switchAt = start + 8 * hour;
  // 300 posts, ten an hour with pairs sharing a millisecond; the older half named by matterbak
  // at UTC+10, then +9 (the end of summer time repeats an hour), the newer half by this tool
  // in UTC: names and times disagree by up to ten hours, more than a read batch.
  const posts = Array.from(
    { length: 300 },
    (_, i) => post(i, start + Math.floor(i / 2) * hour / 5),
  );
  const files = posts.map((p, i): [string, string] => {
    const offset = i >= 150 ? 0 : p.create_at < switchAt ? 10 : 9;
    return [localName(p, offset), encodeJson(p)];
  });
  await withFolder(files, async (reader, folder) => {
    for (const namesPerPass of [7, 50, 20_000]) {
      const items = await collect(reader.posts({ folder }, { namesPerPass }));
      assert.deepEqual(postsOf(items).map((p) => p.id), posts.map((p) => p.id), `${namesPerPass}`);
    }
  });
});

Deno.test("with names all in UTC the posts come in order with no margin held back", async () => {
  const posts = Array.from({ length: 100 }, (_, i) => post(i, Date.UTC(2024, 0, 1) + i * 60_000));
  await withFolder(posts.map((p) => [postFileName(p), encodeJson(p)]), async (reader, folder) => {
    const items = await collect(reader.posts({ folder }, { utcNames: true, namesPerPass: 10 }));
    assert.deepEqual(postsOf(items).map((p) => p.id), posts.map((p) => p.id));
  });
});

Deno.test("damaged post files are items of the iteration, and the rest is still read", async () => {
  const good = [post(1, 1_700_000_000_000), post(2, 1_700_000_001_000)];
  const other = post(9, 1_700_000_002_000);
  const files: Array<[string, string]> = [
    ...good.map((p): [string, string] => [postFileName(p), encodeJson(p)]),
    [postFileName(post(3, 1_700_000_000_500)), encodeJson(good[0]).slice(0, 40)],
    [postFileName(post(4, 1_700_000_000_600)), ""],
    [postFileName(post(5, 1_700_000_000_700)), encodeJson(other)],
    [postFileName(post(6, 1_700_000_000_800)), '{"id":"x"}'],
    ["notes.txt", "not a post"],
  ];
  await withFolder(files, async (reader, folder) => {
    const items = await collect(reader.posts({ folder }));
    assert.deepEqual(postsOf(items).map((p) => p.id), good.map((p) => p.id));
    const damaged = items.flatMap((i) => i.kind === "damaged" ? [i.damage] : []);
    assert.deepEqual(
      damaged.map((d) => [d.path.at(-1)?.slice(-30), d.reason]).sort(),
      [
        [`${postId(3)}.json`.slice(-30), "not valid JSON"],
        [`${postId(4)}.json`.slice(-30), "empty file"],
        [`${postId(5)}.json`.slice(-30), `holds post ${other.id}, not the post its name says`],
        [
          `${postId(6)}.json`.slice(-30),
          "not a post record (id, times, channel and user expected)",
        ],
      ].sort(),
    );
  });
});

Deno.test("a channel's change stamp moves with every new, rewritten or removed post, attachment, edit history, threads or members file, and only then", async () => {
  const first = post(1, 1_700_000_000_000);
  await withFolder([[postFileName(first), encodeJson(first)]], async (reader, folder) => {
    const dataDir = reader.dataDir;
    const channel = { folder };
    // File times have a step of a few milliseconds: changes are spaced beyond it.
    const step = () => new Promise((resolve) => setTimeout(resolve, 30));
    await dataDir.ensureDir([...folder, "files"]);
    await dataDir.ensureDir([...folder, "history"]);
    const stamps = [(await reader.changeStamp(channel)).stamp];
    const changes: Array<[string, () => Promise<unknown>]> = [
      [
        "a new post",
        () => dataDir.writeText([...folder, postFileName(post(2, 1_700_000_001_000))], "{}"),
      ],
      [
        "a rewritten post",
        () =>
          dataDir.writeText(
            [...folder, postFileName(first)],
            encodeJson({ ...first, message: "edited" }),
          ),
      ],
      [
        "an attachment",
        () => dataDir.writeText([...folder, "files", `${"f".repeat(26)}__a.txt`], "a"),
      ],
      [
        "an edit history",
        () => dataDir.writeText([...folder, "history", `${first.id}.json`], "{}"),
      ],
      [
        "a rewritten edit history",
        () => dataDir.writeText([...folder, "history", `${first.id}.json`], "{ }"),
      ],
      [
        "the threads map",
        () => dataDir.writeText(["direct", `${folder.at(-1)}__threads.json`], "{}"),
      ],
      ["the members", () => dataDir.writeText(["direct", `${folder.at(-1)}__members.json`], "[]")],
      ["the record", () => dataDir.writeText(["direct", `${folder.at(-1)}.json`], "{}")],
      [
        "a removed post",
        () => dataDir.remove([...folder, postFileName(post(2, 1_700_000_001_000))]),
      ],
    ];
    for (const [what, change] of changes) {
      await step();
      await change();
      const { stamp, newest } = await reader.changeStamp(channel);
      assert.ok(!stamps.includes(stamp), `${what} changes the stamp`);
      assert.ok(newest > Date.now() - 1000, `${what}: newest is recent`);
      assert.equal(
        (await reader.changeStamp(channel)).stamp,
        stamp,
        "stable while nothing changes",
      );
      stamps.push(stamp);
    }
    // Reading posts changes nothing.
    await collect(reader.posts(channel));
    assert.equal((await reader.changeStamp(channel)).stamp, stamps.at(-1));
  });
});

Deno.test("a post's earlier versions are read from its history file; only history files name posts with history", async () => {
  const first = post(1, 1_700_000_000_000);
  const edited = { ...first, message: "now", edit_at: 1_700_000_005_000 };
  const damaged = post(2, 1_700_000_001_000);
  await withFolder([[postFileName(edited), encodeJson(edited)]], async (reader, folder) => {
    const history = [...folder, "history"];
    assert.deepEqual(await reader.historyIds({ folder }), new Set(), "no history folder");
    await reader.dataDir.ensureDir(history);
    const versions = [{ from: "backup", post: first }];
    await reader.dataDir.writeJson([...history, `${first.id}.json`], {
      version: 1,
      post_id: first.id,
      versions,
    });
    await reader.dataDir.writeText([...history, `${damaged.id}.json`], "{");
    await reader.dataDir.writeText([...history, "notes.txt"], "not a history");
    await reader.dataDir.writeText([...history, `${first.id}.json.mbtmp`], "a write under way");
    assert.deepEqual(await reader.historyIds({ folder }), new Set([first.id, damaged.id]));
    assert.deepEqual(await reader.history({ folder }, first.id), versions);
    assert.deepEqual(await reader.history({ folder }, postId(3)), [], "none stored");
    assert.deepEqual(await reader.history({ folder }, damaged.id), {
      path: [...history, `${damaged.id}.json`],
      reason: "not valid JSON",
    });
    // The posts are read as before: the history folder holds no post.
    assert.deepEqual(postsOf(await collect(reader.posts({ folder }))), [edited]);
  });
});

Deno.test("an attachment the reader gives can be found on this machine to link, copy or read", async () => {
  const withFile = { ...post(1, 1_700_000_000_000), file_ids: ["f".repeat(26)] };
  await withFolder([[postFileName(withFile), encodeJson(withFile)]], async (reader, folder) => {
    const filesDir = [...folder, "files"];
    await reader.dataDir.ensureDir(filesDir);
    const info = { id: "f".repeat(26), name: "notes.txt", size: 5 };
    await reader.dataDir.writeJson([...filesDir, `${info.id}.json`], info);
    await reader.dataDir.writeText([...filesDir, `${info.id}__notes.txt`], "hello");
    const [attachment] = await reader.attachments({ folder }, withFile);
    assert.ok(attachment?.path);
    const path = reader.localPath(attachment.path);
    assert.equal(path, join(reader.dataDir.root, ...attachment.path));
    assert.equal(await Deno.readTextFile(path), "hello");
    assert.throws(() => reader.localPath([...folder, ".."]), /Refusing path component/);
  });
});
