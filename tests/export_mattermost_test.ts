/**
 * `matterbak export mattermost`: a backup of the simulated world becomes a bulk-import archive
 * that passes the importer's checks and holds every post that is not deleted exactly once,
 * replies nested in their root, with reactions and the attachments' bytes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkBulkArchive } from "../lib/export/bulk_check.ts";
import { splitMessage } from "../lib/export/bulk_format.ts";
import { exportMattermost, JSONL_NAME } from "../lib/export/mattermost.ts";
import { DataDir, encodeJson } from "../lib/store/data_dir.ts";
import { BackupReader } from "../lib/store/reader.ts";
import { postFileName } from "../lib/store/layout.ts";
import { InterruptedError } from "../lib/util/errors.ts";
import { readLines } from "../lib/util/lines.ts";
import { breakCentralRecord } from "./zip_damage.ts";
import { ZipReader } from "../lib/zip/reader.ts";
import { channelFolder, harnessForAll, myChannels } from "./expected_backup.ts";
import { startHarness } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { Channel, PostRecord, World } from "./simulator/world.ts";
import { main } from "../lib/cli/main.ts";

type Json = Record<string, unknown>;

/** The JSONL's lines and every data file of an archive. */
export async function readArchive(
  path: string,
): Promise<{ lines: Json[]; lineBytes: number[]; files: Map<string, Uint8Array> }> {
  const zip = await ZipReader.open(path);
  try {
    const lines: Json[] = [];
    const lineBytes: number[] = [];
    const files = new Map<string, Uint8Array>();
    for (const entry of await Array.fromAsync(zip.entries())) {
      if (entry.name === JSONL_NAME) {
        for await (const line of readLines(await zip.readable(entry))) {
          lines.push(JSON.parse(line.text as string));
          lineBytes.push(line.bytes);
        }
      } else if (!entry.directory) {
        files.set(entry.name, await new Response(await zip.readable(entry)).bytes());
      }
    }
    return { lines, lineBytes, files };
  } finally {
    zip.close();
  }
}

interface Exported {
  reactions: string[];
  files: Uint8Array[];
  pinned: boolean;
  editAt: number;
}

/** Each exported post and reply by `channel|root|user|create_at|message`, counted. */
function exportedPosts(
  lines: Json[],
  files: Map<string, Uint8Array>,
): { posts: Map<string, Exported>; counts: Map<string, number> } {
  const posts = new Map<string, Exported>();
  const counts = new Map<string, number>();
  const add = (key: string, body: Json) => {
    counts.set(key, (counts.get(key) ?? 0) + 1);
    posts.set(key, {
      reactions: ((body.reactions ?? []) as Json[])
        .map((r) => `${r.user}:${r.emoji_name}:${r.create_at}`).sort(),
      files: ((body.attachments ?? []) as Json[]).map((a) => {
        const bytes = files.get(`data/${a.path}`);
        assert.ok(bytes, `data/${a.path} is in the zip`);
        return bytes;
      }),
      pinned: body.is_pinned === true,
      editAt: (body.edit_at ?? 0) as number,
    });
  };
  for (const line of lines) {
    const body = (line.post ?? line.direct_post) as Json | undefined;
    if (!body) continue;
    const channel = line.post
      ? `${body.team}/${body.channel}`
      : [...(body.channel_members as string[])].sort().join(",");
    const rootKey = `${channel}||${body.user}|${body.create_at}|${body.message}`;
    add(rootKey, body);
    for (const reply of (body.replies ?? []) as Json[]) {
      add(
        `${channel}|${body.user}@${body.create_at}|${reply.user}|${reply.create_at}|${reply.message}`,
        reply,
      );
    }
  }
  return { posts, counts };
}

function worldChannelKey(world: World, channel: Channel): string {
  if (channel.type === "O" || channel.type === "P") {
    return `${world.team(channel.team_id).name}/${channel.name}`;
  }
  const ids = channel.type === "D"
    ? channel.name.split("__")
    : world.channelMembers(channel.id).map((m) => m.user_id);
  return ids.map((id) => world.user(id).username).sort().join(",");
}

Deno.test("the bulk export holds every post that is not deleted exactly once, with replies nested, reactions and attachment bytes", async () => {
  const { world, me, password } = generateWorld({
    hostileNames: true,
    filesEvery: 3,
    postsPerChannel: 80,
  });
  // An address hidden by the server's privacy settings comes as "".
  const hidden = [...world.users.values()].find((u) => u.username === "carol");
  assert.ok(hidden);
  hidden.email = "";
  // A post too long for one import post, with more attachments than one takes.
  const town = [...world.channels.values()].find((c) => c.name === "town-square") as Channel;
  const fileIds = Array.from({ length: 12 }, (_, i) =>
    world.addFile({
      userId: me.id,
      channelId: town.id,
      name: `scan ${i}.png`,
      bytes: new TextEncoder().encode(`scan ${i}`),
    }).id);
  const long = world.addPostRecord({
    channelId: town.id,
    userId: me.id,
    message: `${"long ".repeat(4000)}\n${"end ".repeat(200)}`,
    fileIds,
  });
  const h = await harnessForAll({ world, me, password });
  try {
    assert.equal((await h.run()).status, 0);
    // Changes seen by an update: deletions (a whole thread, a reply), an edit, a reaction.
    const live = (c: Channel) => world.channelPosts(c.id).filter((p) => p.delete_at === 0);
    const threads = live(town).filter((p) => p.root_id === "" && world.threadReplies(p.id).length);
    world.advance(60_000);
    const trimmed = threads.find((p) => world.threadReplies(p.id).length >= 2);
    const [gone, missing, unmarked] = threads.filter((p) => p !== trimmed);
    assert.ok(gone && trimmed && missing && unmarked, "town square has four threads");
    world.deletePost(gone.id);
    world.deletePost((world.threadReplies(trimmed.id)[0] as PostRecord).id);
    world.editPost(trimmed.id, "edited before the update");
    world.addReaction(trimmed.id, me.id, "tada");
    assert.equal((await h.run()).status, 0);
    // Two roots the export finds without their thread: one whose file is missing, one marked
    // deleted while its replies were not.
    const folder = join(h.dataDir, channelFolder(world, town, me.id));
    await Deno.remove(join(folder, postFileName(world.post(missing.id)!)));
    const stored = JSON.parse(await Deno.readTextFile(join(folder, postFileName(unmarked))));
    stored.delete_at = world.now();
    await Deno.writeTextFile(join(folder, postFileName(unmarked)), encodeJson(stored));

    const zipPath = join(h.dir, "import.zip");
    const out: string[] = [];
    const status = await main(["export", "mattermost", "-d", h.dataDir, "-o", zipPath], {
      env: () => undefined,
      output: { out: (line) => out.push(line), err: (line) => out.push(line) },
    });
    assert.equal(status, 0, out.join("\n"));
    assert.match(out.join("\n"), /passes the importer's checks/);
    // Edited posts go with their current text; the summary says how many had other versions.
    const reader = new BackupReader(new DataDir(h.dataDir));
    let withHistory = 0;
    for (const channel of await reader.channels()) {
      const ids = await reader.historyIds(channel);
      for await (const item of reader.posts(channel)) {
        if (item.kind === "post" && item.post.delete_at === 0 && ids.has(item.post.id)) {
          withHistory++;
        }
      }
    }
    assert.ok(withHistory > 1, `${withHistory} exported posts with history`);
    assert.ok(
      out.includes(
        `${withHistory} post(s) have earlier versions in the backup: the import format has no ` +
          `edit history, so only their current text is in the archive`,
      ),
      out.join("\n"),
    );
    const check = await checkBulkArchive(zipPath);
    assert.deepEqual(check.problems, []);

    const { lines, files } = await readArchive(zipPath);
    const { posts, counts } = exportedPosts(lines, files);
    const name = (id: string) => world.user(id).username;
    const expected: string[] = [];
    const orphanRoots = new Set([missing.id, unmarked.id]);
    for (const channel of myChannels(world, me.id)) {
      const key = worldChannelKey(world, channel);
      for (const p of live(channel)) {
        if (orphanRoots.has(p.id)) continue;
        const root = p.root_id && !orphanRoots.has(p.root_id)
          ? world.posts.get(p.root_id)
          : undefined;
        const parent = root ? `${name(root.user_id)}@${root.create_at}` : "";
        const message = p.id === long.id ? splitMessage(p.message)[0] : p.message;
        const identity = `${key}|${parent}|${name(p.user_id)}|${p.create_at}|${message}`;
        expected.push(identity);
        const exported = posts.get(identity);
        assert.ok(exported, `${identity.slice(0, 120)} is exported`);
        assert.deepEqual(
          exported.reactions,
          (p.reactions ?? []).map((r) => `${name(r.user_id)}:${r.emoji_name}:${r.create_at}`)
            .sort(),
          `reactions of ${identity}`,
        );
        const bytes = p.file_ids.map((id) => world.fileBytes(id) as Uint8Array);
        assert.deepEqual(exported.files, p.id === long.id ? bytes.slice(0, 10) : bytes);
        assert.equal(exported.pinned, p.is_pinned);
        assert.equal(exported.editAt, p.edit_at);
      }
    }
    // The long post's rest and its last two attachments follow it as replies of its own.
    const longKey = `${worldChannelKey(world, town)}|alice@${long.create_at}|alice`;
    const added = [...posts.keys()].filter((k) => k.startsWith(longKey)).sort();
    assert.equal(added.length, 2);
    const rest = splitMessage(long.message).slice(1);
    assert.equal(rest.length, 1);
    assert.ok(added[0]?.endsWith(`|${long.create_at + 1}|${rest[0]}`));
    assert.deepEqual(
      posts.get(added[1] as string)?.files,
      fileIds.slice(10).map((id) => world.fileBytes(id)),
    );
    const all = [...counts.keys()].filter((k) => !k.startsWith(longKey)).sort();
    assert.deepEqual(all, expected.sort(), "nothing more, nothing less");
    assert.ok([...counts.values()].every((n) => n === 1), "each exactly once");
    assert.ok(expected.length > 300, `${expected.length} posts compared`);
    for (const root of [gone, ...world.channelPosts(town.id).filter((p) => p.delete_at > 0)]) {
      assert.ok(![...counts.keys()].some((k) => k.endsWith(`|${root.create_at}|${root.message}`)));
    }

    const users = lines.filter((l) => l.type === "user").map((l) => l.user as Json);
    assert.equal(users.find((u) => u.username === "carol")?.email, "carol@users.invalid");
    assert.equal(users.find((u) => u.username === "bob")?.email, world.userByName("bob")?.email);
    const directs = lines.filter((l) => l.type === "direct_channel")
      .map((l) => (l.direct_channel as Json).members as string[]);
    assert.deepEqual(directs[0], ["alice", "alice"], "the self-DM is a DM of alice with herself");
    const archived = lines.filter((l) => l.type === "channel").map((l) => l.channel as Json)
      .filter((c) => c.deleted_at);
    assert.equal(archived.length, 2);
    assert.deepEqual(
      [...new Set(lines.map((l) => l.type))],
      ["version", "emoji", "team", "channel", "user", "post", "direct_channel", "direct_post"],
    );
  } finally {
    await h.close();
  }
});

Deno.test("a thread too long for one line goes on in another line under a post that says so", async () => {
  const { world, me, password } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 5,
    dms: 0,
    gms: 0,
    filesEvery: 0,
  });
  const town = [...world.channels.values()].find((c) => c.name === "town-square") as Channel;
  const root = world.addPostRecord({ channelId: town.id, userId: me.id, message: "big thread" });
  for (let i = 0; i < 60; i++) {
    world.addPostRecord({
      channelId: town.id,
      userId: me.id,
      rootId: root.id,
      message: `reply ${i}`,
    });
  }
  const h = await startHarness({
    world,
    credentials: { user: me.username, password },
    channels: { teams: { "team-0": {} } },
  });
  try {
    assert.equal((await h.run()).status, 0);
    const zipPath = join(h.dir, "small-lines.zip");
    const summary = await exportMattermost({
      dataDir: h.dataDir,
      out: zipPath,
      teams: [],
      lineBytes: 1000,
      emit: () => {},
    });
    assert.deepEqual(summary.check.problems, []);
    assert.ok(summary.splitThreads >= 3, `${summary.splitThreads} continuation lines`);
    const { lines, lineBytes } = await readArchive(zipPath);
    const threadLines = lines.map((l, i) => [l.post as Json, lineBytes[i] as number] as const)
      .filter(([p]) =>
        p && (p.message === "big thread" || String(p.message).startsWith("(continued"))
      );
    assert.equal(threadLines.length, summary.splitThreads + 1);
    for (const [, bytes] of threadLines) assert.ok(bytes <= 1000, `${bytes} bytes`);
    const replies = threadLines.flatMap(([p]) => (p.replies as Json[]).map((r) => r.message));
    assert.deepEqual(replies, Array.from({ length: 60 }, (_, i) => `reply ${i}`));
  } finally {
    await h.close();
  }
});

Deno.test("an interrupted export leaves no archive and no staging folder; the old archive stays", async () => {
  const { world, me, password } = generateWorld({ postsPerChannel: 10 });
  const h = await harnessForAll({ world, me, password });
  try {
    assert.equal((await h.run()).status, 0);
    const out = join(h.dir, "exports");
    await Deno.mkdir(out);
    const zipPath = join(out, "import.zip");
    await Deno.writeTextFile(zipPath, "the previous archive");
    const controller = new AbortController();
    await assert.rejects(
      exportMattermost({
        dataDir: h.dataDir,
        out: zipPath,
        teams: [],
        signal: controller.signal,
        emit: (event) => {
          if (event.type === "channel" && event.index === 3) {
            controller.abort(new InterruptedError("SIGINT"));
          }
        },
      }),
      InterruptedError,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(out), (e) => e.name), ["import.zip"]);
    assert.equal(await Deno.readTextFile(zipPath), "the previous archive");
  } finally {
    await h.close();
  }
});

Deno.test("--team keeps one team's channels and every direct and group message; a wrong name is refused", async () => {
  const { world, me, password } = generateWorld({ postsPerChannel: 5 });
  const h = await harnessForAll({ world, me, password });
  try {
    assert.equal((await h.run()).status, 0);
    const zipPath = join(h.dir, "team1.zip");
    const summary = await exportMattermost({
      dataDir: h.dataDir,
      out: zipPath,
      teams: ["Team 1"],
      emit: () => {},
    });
    const { lines } = await readArchive(zipPath);
    assert.deepEqual(
      lines.filter((l) => l.type === "team").map((l) => (l.team as Json).name),
      ["team-1"],
    );
    assert.ok(
      lines.filter((l) => l.type === "post").every((l) => (l.post as Json).team === "team-1"),
    );
    assert.equal(summary.directChannels, 5);
    const out: string[] = [];
    const status = await main([
      "export",
      "mattermost",
      "-d",
      h.dataDir,
      "-o",
      zipPath,
      "--team",
      "nope",
    ], {
      env: () => undefined,
      output: { out: (line) => out.push(line), err: (line) => out.push(line) },
    });
    assert.equal(status, 2);
    assert.match(out.join("\n"), /No team in the backup is called nope/);
  } finally {
    await h.close();
  }
});

Deno.test("--check prints the counts and exits 0, or lists the problems (a broken central directory too) and exits 3; a folder is a usage error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = async (args: string[]) => {
      const out: string[] = [];
      const status = await main(args, {
        env: () => undefined,
        output: { out: (line) => out.push(line), err: (line) => out.push(line) },
      });
      return { status, text: out.join("\n") };
    };
    const { ZipWriter } = await import("../lib/zip/writer.ts");
    const good = join(dir, "good.zip");
    let zip = await ZipWriter.create(good);
    await zip.addBytes(JSONL_NAME, new TextEncoder().encode('{"type":"version","version":1}\n'));
    await zip.close();
    const ok = await run(["export", "mattermost", "--check", good]);
    assert.equal(ok.status, 0, ok.text);
    assert.match(ok.text, /1 lines: 0 teams/);
    const bad = join(dir, "bad.zip");
    zip = await ZipWriter.create(bad);
    await zip.addBytes(JSONL_NAME, new TextEncoder().encode('{"type":"team","team":{}}\n'));
    await zip.close();
    const failed = await run(["export", "mattermost", "--check", bad]);
    assert.equal(failed.status, 3);
    assert.match(failed.text, /problem: line 1: the first line must be the version line/);
    const torn = join(dir, "torn.zip");
    zip = await ZipWriter.create(torn);
    await zip.addBytes(JSONL_NAME, new TextEncoder().encode('{"type":"version","version":1}\n'));
    await zip.addBytes("data/a.bin", new Uint8Array(3));
    await zip.close();
    await breakCentralRecord(torn, 2);
    const unreadable = await run(["export", "mattermost", "--check", torn]);
    assert.equal(unreadable.status, 3, unreadable.text);
    assert.match(
      unreadable.text,
      /problem: .*torn\.zip: entry 2 of the central directory is broken/,
    );
    const folder = await run(["export", "mattermost", "--check", dir]);
    assert.equal(folder.status, 2, folder.text);
    assert.match(folder.text, /--check .* is not a file/);
    assert.equal((await run(["export", "mattermost", "--check", join(dir, "none.zip")])).status, 2);
    assert.equal((await run(["export", "mattermost", "--check", good, "-o", bad])).status, 2);
    assert.equal((await run(["export"])).status, 2);
    assert.match((await run(["help", "export"])).text, /export mattermost --check FILE.zip/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
