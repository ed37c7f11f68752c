/**
 * `matterbak export markdown`: every stored post of the simulated world appears exactly once,
 * replies quoted under their root, marks and attachments in place; large channels split by
 * month with links back to threads of earlier months; the output folder is replaced whole.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { EXPORT_MARKER } from "../lib/export/staging.ts";
import { exportMarkdown } from "../lib/export/markdown.ts";
import { fileDataName, postFileName } from "../lib/store/layout.ts";
import { isSafeComponent } from "../lib/store/safe_name.ts";
import { InterruptedError } from "../lib/util/errors.ts";
import { main } from "../lib/cli/main.ts";
import { channelFolder, harnessForAll, myChannels } from "./expected_backup.ts";
import { type Harness, listFiles, startAliceAndBob, startHarness } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { Channel } from "./simulator/world.ts";
import { localTime } from "../lib/export/markdown_render.ts";

interface Anchor {
  file: string;
  line: number;
  quoted: boolean;
  /** The lines of the post: its header line first. */
  header: string;
  body: string[];
}

/** Every post anchor in the Markdown files below `root`, by post id (a list, to count). */
async function anchors(root: string): Promise<Map<string, Anchor[]>> {
  const found = new Map<string, Anchor[]>();
  for (const file of await listFiles(root)) {
    if (!file.endsWith(".md")) continue;
    const lines = (await Deno.readTextFile(join(root, file))).split("\n");
    lines.forEach((line, i) => {
      const match = /^(> )?<a id="p-([a-z0-9]{26})"><\/a>$/.exec(line);
      if (!match) return;
      const quoted = match[1] !== undefined;
      const body: string[] = [];
      for (let j = i + 2; j < lines.length; j++) {
        const text = lines[j] as string;
        if (/<a id="p-/.test(text) || /^## /.test(text)) break;
        body.push(quoted ? text.replace(/^> ?/, "") : text);
      }
      const list = found.get(match[2] as string) ?? [];
      const header = (lines[i + 1] as string).replace(quoted ? /^> / : /^$/, "");
      list.push({ file, line: i, quoted, header, body });
      found.set(match[2] as string, list);
    });
  }
  return found;
}

/** Relative links (not to .md files or anchors) in a Markdown file, resolved below `root`. */
async function fileLinks(root: string, file: string): Promise<string[]> {
  const text = await Deno.readTextFile(join(root, file));
  return [...text.matchAll(/\]\(([^)#]+)\)/g)]
    .map((m) => m[1] as string)
    .filter((link) => !link.endsWith(".md"))
    .map((link) => join(root, dirname(file), ...link.split("/").map(decodeURIComponent)));
}

async function run(args: string[]): Promise<{ status: number; text: string }> {
  const out: string[] = [];
  const status = await main(args, {
    env: () => undefined,
    output: { out: (line) => out.push(line), err: (line) => out.push(line) },
  });
  return { status, text: out.join("\n") };
}

Deno.test("the Markdown export shows every stored post once, replies under their root, with marks and attachments", async () => {
  const { world, me, password } = generateWorld({ hostileNames: true, filesEvery: 3 });
  const h = await harnessForAll({ world, me, password });
  try {
    assert.equal((await h.run()).status, 0);
    const stored = myChannels(world, me.id).flatMap((c) =>
      world.channelPosts(c.id).filter((p) => p.delete_at === 0)
    );
    // An update that sees a deletion and an edit.
    const town = myChannels(world, me.id).find((c) => c.name === "town-square") as Channel;
    const [deleted, edited] = world.channelPosts(town.id).filter((p) =>
      p.delete_at === 0 && p.root_id === "" && p.edit_at === 0
    );
    assert.ok(deleted && edited);
    world.deletePost(deleted.id);
    world.editPost(edited.id, "changed **later**");
    assert.equal((await h.run()).status, 0);

    const out = join(h.dir, "md");
    const result = await run(["export", "markdown", "-d", h.dataDir, "-o", out]);
    assert.equal(result.status, 0, result.text);
    const found = await anchors(out);
    assert.deepEqual([...found.keys()].sort(), stored.map((p) => p.id).sort(), "every post");
    assert.ok([...found.values()].every((list) => list.length === 1), "each once");
    assert.ok(stored.length > 300, `${stored.length} posts`);

    const lines = new Map<string, string[]>();
    for (const file of await listFiles(out)) {
      if (file.endsWith(".md")) {
        lines.set(file, (await Deno.readTextFile(join(out, file))).split("\n"));
      }
    }
    for (const post of stored) {
      const [anchor] = found.get(post.id) as Anchor[];
      assert.ok(anchor);
      const record = world.posts.get(post.id);
      assert.ok(record);
      assert.match(anchor.header, new RegExp(`^\\*\\*${world.user(post.user_id).username}\\*\\*`));
      assert.equal(anchor.quoted, post.root_id !== "", `${post.id} quoted iff a reply`);
      if (post.root_id) {
        // The nearest root above a reply is its own.
        const fileLines = lines.get(anchor.file) as string[];
        let above = anchor.line - 1;
        while (!/^<a id="p-/.test(fileLines[above] as string)) above--;
        assert.equal(fileLines[above], `<a id="p-${post.root_id}"></a>`);
      }
      const message: string = record.id === edited.id ? "changed **later**" : record.message;
      assert.equal(anchor.body[1], message, `message of ${post.id}`);
      assert.equal(/\*\*deleted /.test(anchor.header), record.delete_at > 0);
      assert.equal(/\*edited /.test(anchor.header), record.edit_at > 0);
      assert.equal(/\*pinned\*/.test(anchor.header), record.is_pinned);
      const reactions = new Map<string, number>();
      for (const r of record.reactions ?? []) {
        reactions.set(r.emoji_name, (reactions.get(r.emoji_name) ?? 0) + 1);
      }
      if (reactions.size) {
        assert.ok(
          anchor.body.includes([...reactions].map(([e, n]) => `:${e}: ${n}`).join(" · ")),
          `reactions of ${post.id}`,
        );
      }
    }

    // Attachments: each linked file holds the world's bytes and is the backup's file.
    let attachments = 0;
    for (const file of lines.keys()) {
      for (const target of await fileLinks(out, file)) {
        const name = target.split("/").at(-1) as string;
        const fileId = name.slice(0, 26);
        const bytes = world.fileBytes(fileId);
        assert.ok(bytes, `${name} is a world file`);
        assert.deepEqual(await Deno.readFile(target), bytes);
        const info = world.files.get(fileId);
        const channel = world.channel(info?.channel_id as string);
        const backupFile = join(
          h.dataDir,
          channelFolder(world, channel, me.id),
          "files",
          fileDataName(fileId, info?.name as string),
        );
        assert.equal((await Deno.stat(target)).ino, (await Deno.stat(backupFile)).ino, "hard link");
        attachments++;
      }
    }
    const expectedFiles = stored.flatMap((p) => world.posts.get(p.id)?.file_ids ?? []).length;
    assert.equal(attachments, expectedFiles);
    assert.ok(attachments > 50);
    assert.match(result.text, new RegExp(`${expectedFiles} hard-linked, 0 copied`));

    // Every name is safe everywhere, and the index links to every conversation.
    for (const file of await listFiles(out)) {
      assert.ok(file.split("/").every(isSafeComponent), file);
    }
    const index = await Deno.readTextFile(join(out, "index.md"));
    const links = [...index.matchAll(/\]\(([^)]+\.md)\)/g)].map((m) => m[1] as string);
    assert.equal(links.length, myChannels(world, me.id).length);
    for (const link of links) {
      await Deno.stat(join(out, ...link.split("/").map(decodeURIComponent)));
    }
    assert.match(index, /\[@alice\]\(direct\/alice.md\)/, "the self-DM");
  } finally {
    await h.close();
  }
});

/** Where the backup of `monthsWorld` stores the post `id` (as alice, whose backup it is). */
function storedPostPath(h: Harness, id: string): string {
  const world = h.world;
  const post = world.post(id) as { id: string; create_at: number; channel_id: string };
  const folder = channelFolder(
    world,
    world.channel(post.channel_id),
    world.userByName("alice")?.id as string,
  );
  return join(h.dataDir, folder, postFileName(post));
}

/** A world of one channel with threads across months, backed up. */
async function monthsWorld(): Promise<{ h: Harness; ids: Record<string, string> }> {
  const { world, me, password } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 2,
    dms: 0,
    gms: 0,
    filesEvery: 0,
  });
  const town = [...world.channels.values()].find((c) => c.name === "town-square") as Channel;
  const at = (month: number, day: number) => Date.UTC(2024, month - 1, day, 12);
  const ids: Record<string, string> = {};
  const add = (name: string, createAt: number, root?: string) => {
    ids[name] = world.addPostRecord({
      channelId: town.id,
      userId: me.id,
      message: name,
      createAt,
      ...(root ? { rootId: ids[root] as string } : {}),
      ...(name === "A"
        ? {
          fileIds: [
            world.addFile({
              userId: me.id,
              channelId: town.id,
              name: "a.txt",
              bytes: new TextEncoder().encode("A"),
            }).id,
          ],
        }
        : {}),
    }).id;
  };
  add("A", at(1, 10));
  add("A1", at(1, 11), "A");
  add("D", at(1, 20));
  add("E", at(1, 21));
  add("A2", at(2, 15), "A");
  add("B", at(2, 20));
  add("A3", at(3, 3), "A");
  add("C", at(4, 5));
  add("C1", at(4, 6), "C");
  const h = await startHarness({
    world,
    credentials: { user: me.username, password },
    channels: { teams: { "team-0": {} } },
  });
  assert.equal((await h.run()).status, 0);
  return { h, ids };
}

Deno.test("a large channel is split by month; a month lists the replies to threads of earlier months", async () => {
  const { h, ids } = await monthsWorld();
  try {
    const out = join(h.dir, "md");
    await exportMarkdown({
      dataDir: h.dataDir,
      out,
      channels: [],
      copy: true,
      splitAbove: 3,
      emit: () => {},
    });
    const dir = join(out, "team-0", "town-square");
    const names = (await Array.fromAsync(Deno.readDir(dir), (e) => e.name)).sort();
    assert.deepEqual(names, [
      "2023-11.md",
      "2024-01-2.md",
      "2024-01.md",
      "2024-02.md",
      "2024-03.md",
      "2024-04.md",
      "files",
      "index.md",
    ]);
    const read = (name: string) => Deno.readTextFile(join(dir, name));
    const january = await read("2024-01.md");
    for (const name of ["A", "A1", "A2", "A3"]) assert.match(january, new RegExp(`p-${ids[name]}`));
    assert.match(january, /!\[a.txt\]|\[a.txt\]\(files\//);
    const february = await read("2024-02.md");
    assert.match(
      february,
      new RegExp(
        `## Replies this month to threads of earlier months\\n\\n- \\[alice, 2024-01-10 \\d\\d:\\d\\d\\]\\(2024-01.md#p-${ids.A}\\): 1 reply, from 2024-02-15`,
      ),
    );
    assert.match(february, new RegExp(`p-${ids.B}`));
    assert.doesNotMatch(
      february,
      new RegExp(`p-${ids.A2}`),
      "the reply itself stays with its root",
    );
    const march = await read("2024-03.md");
    assert.match(march, new RegExp(`\\(2024-01.md#p-${ids.A}\\): 1 reply, from 2024-03-03`));
    assert.doesNotMatch(march, /<a id=/, "March only points back");
    const index = await read("index.md");
    assert.match(index, /\[January 2024\]\(2024-01.md\): 1 thread, 4 posts/);
    assert.match(index, /\[January 2024, part 2\]\(2024-01-2.md\): 2 threads, 2 posts/);
    const part2 = await read("2024-01-2.md");
    assert.match(part2, new RegExp(`p-${ids.D}[\\s\\S]*p-${ids.E}`));
    assert.match(
      index,
      /\[March 2024\]\(2024-03.md\): 0 threads, 0 posts, and 1 reply to earlier threads/,
    );
    const top = await Deno.readTextFile(join(out, "index.md"));
    assert.match(top, /\[Town Square\]\(team-0\/town-square\/index.md\): 11 posts/);
    // --copy: the attachment is a copy, not the backup's file.
    const [attachment] = await Array.fromAsync(Deno.readDir(join(dir, "files")), (e) => e.name);
    const backupFiles = join(
      h.dataDir,
      (await listFiles(h.dataDir)).find((f) => f.endsWith("__a.txt")) as string,
    );
    assert.notEqual(
      (await Deno.stat(join(dir, "files", attachment as string))).ino,
      (await Deno.stat(backupFiles)).ino,
    );
  } finally {
    await h.close();
  }
});

Deno.test("--since and --until pick threads by the day their root was posted", async () => {
  const { h, ids } = await monthsWorld();
  try {
    const out = join(h.dir, "md");
    const result = await run([
      "export",
      "markdown",
      "-d",
      h.dataDir,
      "-o",
      out,
      "--since",
      "2024-02-01",
      "--until",
      "2024-04-05",
    ]);
    assert.equal(result.status, 0, result.text);
    const found = await anchors(out);
    assert.deepEqual([...found.keys()].sort(), [ids.B, ids.C, ids.C1].sort());
    const bad = await run([
      "export",
      "markdown",
      "-d",
      h.dataDir,
      "-o",
      out,
      "--since",
      "2024-02-30",
    ]);
    assert.equal(bad.status, 2);
    assert.match(bad.text, /--since needs a date like 2024-01-31/);
  } finally {
    await h.close();
  }
});

Deno.test("an edited post shows its other versions under its text, marked with their times, in threads too", async () => {
  const { h, world, me, bob, channel } = await startAliceAndBob();
  try {
    const root = world.addPost({
      channelId: channel.id,
      userId: bob.id,
      message: "**v0**\nline 2",
    });
    const reply = world.addPost({
      channelId: channel.id,
      userId: bob.id,
      rootId: root.id,
      message: "reply v0",
    });
    const mine = world.addPost({ channelId: channel.id, userId: me.id, message: "mine v0" });
    world.editPost(mine.id, "mine v1");
    assert.equal((await h.run(["--skip-emojis"])).status, 0);
    // Half an hour later: the same local day in every real time zone (the world starts 22:13 UTC).
    world.advance(30 * 60_000);
    world.editPost(root.id, "root v1");
    world.editPost(root.id, "root v2");
    world.editPost(reply.id, "reply v1");
    assert.equal((await h.run(["--skip-emojis"])).status, 0);

    const out = join(h.dir, "md");
    assert.equal((await run(["export", "markdown", "-d", h.dataDir, "-o", out])).status, 0);
    const found = await anchors(out);
    for (const id of [root.id, reply.id, mine.id]) assert.equal(found.get(id)?.length, 1, id);
    const at = (id: string, message: string) =>
      localTime(world.editHistory(id).find((c) => c.message === message)?.edit_at as number);
    const [r] = found.get(root.id) as Anchor[];
    assert.ok(r && !r.quoted);
    assert.match(
      r.header,
      new RegExp(`\\*edited ${localTime(world.post(root.id)?.edit_at as number)}\\*`),
    );
    const body = r.body.join("\n");
    assert.ok(
      body.startsWith(
        [
          "",
          "root v2",
          "",
          "*Edit history:*",
          "",
          `> *Original ${localTime(root.create_at)}:*`,
          ">",
          "> **v0**",
          "> line 2",
          "",
          `> *Edited ${at(root.id, "root v1")}:*`,
          ">",
          "> *(the backup does not have this version's text: the server sends earlier versions " +
          "without it, only the author's own posts with it)*",
        ].join("\n"),
      ),
      body,
    );
    const [q] = found.get(reply.id) as Anchor[];
    assert.ok(q?.quoted);
    assert.deepEqual(q.body.slice(0, 8), [
      "",
      "reply v1",
      "",
      "*Edit history:*",
      "",
      `> *Original ${localTime(reply.create_at)}:*`,
      ">",
      "> reply v0",
    ]);
    const [m] = found.get(mine.id) as Anchor[];
    assert.ok(m?.body.includes("> mine v0"), "the server's edit history of my own post");

    // A damaged history is a damaged file: said, skipped, exit status 3; the post stays.
    const history = join(h.dataDir, channelFolder(world, channel, me.id), "history");
    await Deno.writeTextFile(join(history, `${mine.id}.json`), "{");
    const damaged = await run(["export", "markdown", "-d", h.dataDir, "-o", out]);
    assert.equal(damaged.status, 3);
    assert.match(damaged.text, new RegExp(`skipped .*/history/${mine.id}\\.json: not valid JSON`));
    assert.equal((await anchors(out)).get(mine.id)?.length, 1);
  } finally {
    await h.close();
  }
});

Deno.test("a reply whose root is not in the backup stands alone, marked", async () => {
  const { h, ids } = await monthsWorld();
  try {
    await Deno.remove(storedPostPath(h, ids.C as string));
    const out = join(h.dir, "md");
    assert.equal((await run(["export", "markdown", "-d", h.dataDir, "-o", out])).status, 0);
    const [c1] = (await anchors(out)).get(ids.C1 as string) as Anchor[];
    assert.ok(c1 && !c1.quoted);
    assert.match(c1.header, /\*reply to a post that is not in the backup\*/);
  } finally {
    await h.close();
  }
});

Deno.test("the output folder: a foreign one is refused, an earlier export replaced, an interrupted export changes nothing", async () => {
  const { h } = await monthsWorld();
  try {
    const out = join(h.dir, "md");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "thesis.txt"), "mine");
    const refused = await run(["export", "markdown", "-d", h.dataDir, "-o", out]);
    assert.equal(refused.status, 2);
    assert.match(refused.text, /neither empty nor an earlier Markdown export/);
    assert.equal(await Deno.readTextFile(join(out, "thesis.txt")), "mine");
    await Deno.remove(out, { recursive: true });

    assert.equal((await run(["export", "markdown", "-d", h.dataDir, "-o", out])).status, 0);
    await Deno.stat(join(out, EXPORT_MARKER));
    await Deno.writeTextFile(join(out, "stale.md"), "from before");
    const controller = new AbortController();
    await assert.rejects(
      exportMarkdown({
        dataDir: h.dataDir,
        out,
        channels: [],
        copy: false,
        signal: controller.signal,
        emit: (event) => {
          if (event.type === "progress") controller.abort(new InterruptedError("SIGTERM"));
        },
      }),
      InterruptedError,
    );
    assert.equal(await Deno.readTextFile(join(out, "stale.md")), "from before", "untouched");
    const siblings = await Array.fromAsync(Deno.readDir(h.dir), (e) => e.name);
    assert.ok(!siblings.some((name) => name.endsWith(".mbtmp")), siblings.join(", "));

    assert.equal((await run(["export", "markdown", "-d", h.dataDir, "-o", out])).status, 0);
    await assert.rejects(Deno.stat(join(out, "stale.md")), Deno.errors.NotFound);
    await Deno.stat(join(out, "index.md"));
  } finally {
    await h.close();
  }
});

Deno.test("--channel picks conversations by name, display name or username; unknown names are refused", async () => {
  const { world, me, password } = generateWorld({ postsPerChannel: 4 });
  const h = await harnessForAll({ world, me, password });
  try {
    assert.equal((await h.run()).status, 0);
    const out = join(h.dir, "md");
    const ok = await run([
      "export",
      "markdown",
      "-d",
      h.dataDir,
      "-o",
      out,
      "--channel",
      "Town Square",
      "--channel",
      "@bob",
      "--channel",
      "private-0-1",
    ]);
    assert.equal(ok.status, 0, ok.text);
    const files = (await listFiles(out)).filter((f) => f.endsWith(".md"));
    assert.deepEqual(files.sort(), [
      "direct/bob.md",
      "index.md",
      "team-0/private-0-1.md",
      "team-0/town-square.md",
      "team-1/town-square.md",
    ]);
    const refused = await run([
      "export",
      "markdown",
      "-d",
      h.dataDir,
      "-o",
      join(h.dir, "x"),
      "--channel",
      "nope",
      "--channel",
      "bob",
    ]);
    assert.equal(refused.status, 2);
    assert.match(refused.text, /No channel in the backup is called nope$/m);
    const outside = await run(["export", "markdown", "-d", h.dataDir, "-o", join(h.dataDir, "md")]);
    assert.equal(outside.status, 2);
    assert.match(outside.text, /The output .* is inside the data dir .*; choose a folder outside/);
    const noBackup = await run([
      "export",
      "markdown",
      "-d",
      join(h.dir, "none"),
      "-o",
      join(h.dir, "y"),
    ]);
    assert.equal(noBackup.status, 2);
    assert.match(noBackup.text, /No backup at .*none: the folder does not exist/);
  } finally {
    await h.close();
  }
});

Deno.test("conversations whose names share their first 120 bytes get names of their own", async () => {
  const { world, me, password } = generateWorld({ postsPerChannel: 1, dms: 0, gms: 0 });
  // Mattermost's longest usernames (22 characters): six of them fill a group's name past the cut.
  const shared = [
    "alexandra_montgomery",
    "benjamin_whitfield",
    "charlotte_harrington",
    "dominic_fairweather",
    "evangeline_rutherford",
    "frederick_ashworth",
  ]
    .map((username) => world.addUser({ username }).id);
  const messages = ["for the first group", "for the second group"];
  for (const [i, last] of ["zachary_one", "zoe_two"].entries()) {
    const group = world.addGroupChannel([me.id, ...shared, world.addUser({ username: last }).id]);
    world.addPost({ channelId: group.id, userId: me.id, message: messages[i] as string });
  }
  const h = await harnessForAll({ world, me, password });
  try {
    assert.equal((await h.run()).status, 0);
    const out = join(h.dir, "md");
    const exported = await run(["export", "markdown", "-d", h.dataDir, "-o", out]);
    assert.equal(exported.status, 0, exported.text);
    const groups = (await listFiles(out)).filter((f) =>
      f.startsWith("groups/") && f.endsWith(".md")
    );
    assert.equal(groups.length, 2, groups.join("\n"));
    const texts = await Promise.all(groups.map((f) => Deno.readTextFile(join(out, f))));
    for (const message of messages) {
      assert.equal(texts.filter((text) => text.includes(message)).length, 1, message);
    }
  } finally {
    await h.close();
  }
});

Deno.test("a damaged post file is skipped with a warning and exit status 3", async () => {
  const { h, ids } = await monthsWorld();
  try {
    await Deno.writeTextFile(storedPostPath(h, ids.B as string), "{broken");
    const result = await run(["export", "markdown", "-d", h.dataDir, "-o", join(h.dir, "md")]);
    assert.equal(result.status, 3);
    assert.match(result.text, /warning: skipped .*__[a-z0-9]{26}\.json: not valid JSON/);
    assert.ok(!(await anchors(join(h.dir, "md"))).has(ids.B as string));
  } finally {
    await h.close();
  }
});
