/**
 * The site folder is written as the data dir is: no symbolic link below its root is followed.
 * A link where the site's channel folder, a page, an attachment or a parent of a folder to
 * remove goes stops the build with a StorageError naming it (exit status 2), and nothing
 * outside the site is written or removed.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { main } from "../lib/cli/main.ts";
import { StorageError } from "../lib/util/errors.ts";
import { buildSite } from "../lib/view/site.ts";
import { type Harness, listFiles, startAliceAndBob } from "./harness.ts";

/** `path` and everything below it with its size, time and content (links not followed). */
async function snapshot(path: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (at: string) => {
    const info = await Deno.lstat(at);
    const rel = relative(path, at);
    if (info.isSymlink) out.set(rel, `link to ${await Deno.readLink(at)}`);
    else if (info.isFile) {
      out.set(rel, `${info.size} ${info.mtime?.getTime()} ${await Deno.readTextFile(at)}`);
    } else {
      out.set(rel, "folder");
      for await (const entry of Deno.readDir(at)) await visit(join(at, entry.name));
    }
  };
  await visit(path);
  return out;
}

/** A backup of a few posts and an attachment, and its site built a minute "later". */
async function backupWithSite(): Promise<
  {
    h: Harness;
    siteDir: string;
    channelDir: string;
    plainDir: string;
    attachment: string;
    /** Posts in the channel without attachments and backs it up: its page changes. */
    addPlainPost: () => Promise<void>;
  }
> {
  const { h, world, me, bob, channel } = await startAliceAndBob();
  // A channel without attachments: its first write in a build is a page, not a placed file.
  const plain = world.addChannel({ teamId: channel.team_id, name: "random", type: "O" });
  for (const user of [me, bob]) world.addChannelMember(plain.id, user.id);
  world.addPost({ channelId: plain.id, userId: bob.id, message: "plain" });
  const file = world.addFile({
    userId: me.id,
    channelId: channel.id,
    name: "notes.txt",
    bytes: new TextEncoder().encode("notes"),
  });
  world.addPost({ channelId: channel.id, userId: me.id, message: "one", fileIds: [file.id] });
  world.addPost({ channelId: channel.id, userId: me.id, message: "two" });
  const run = await h.run();
  assert.equal(run.status, 0, run.err.join("\n"));
  const siteDir = join(h.dir, "site");
  await buildSite({ dataDir: h.dataDir, siteDir, now: () => Date.now() + 60_000 });
  const channelDir = join(siteDir, "c", channel.id);
  const [attachment] = await listFiles(join(channelDir, "files"));
  assert.ok(attachment);
  return {
    h,
    siteDir,
    channelDir,
    plainDir: join(siteDir, "c", plain.id),
    attachment: join(channelDir, "files", attachment),
    addPlainPost: async () => {
      world.addPost({ channelId: plain.id, userId: bob.id, message: "more" });
      assert.equal((await h.run()).status, 0);
    },
  };
}

/** `view` as the command line runs it: its status and error lines. */
async function view(h: Harness, siteDir: string, ...args: string[]) {
  const err: string[] = [];
  const status = await main(["view", "-d", h.dataDir, "-o", siteDir, "--quiet", ...args], {
    env: () => undefined,
    output: { out: () => {}, err: (l) => err.push(l) },
  });
  return { status, err: err.join("\n") };
}

/** Moves `path` to `outside` and puts a link to it in its place. */
async function replaceWithLink(path: string, outside: string): Promise<void> {
  await Deno.rename(path, outside);
  await Deno.symlink(outside, path);
}

Deno.test("a link where the site's channel folder, a page or an attachment goes stops the build, naming it; nothing outside is written", async () => {
  const { h, siteDir, channelDir, plainDir, attachment, addPlainPost } = await backupWithSite();
  try {
    const cases = [
      { what: "the channel's folder", path: channelDir },
      { what: "the folder of a channel without attachments", path: plainDir },
      { what: "a page", path: join(channelDir, "index.html") },
      // Its page is written first: the folder is then checked, only the file is looked at.
      { what: "a page after a write in its folder", path: join(plainDir, "index.html") },
      { what: "an attachment", path: attachment },
      { what: "the search folder", path: join(siteDir, "search") },
    ];
    for (const [i, c] of cases.entries()) {
      const outside = join(h.dir, `outside-${i}`);
      if (c.path === join(plainDir, "index.html")) await addPlainPost();
      await replaceWithLink(c.path, outside);
      const before = await snapshot(outside);
      const result = await view(h, siteDir, "--full");
      assert.equal(result.status, 2, `${c.what}: ${result.err}`);
      assert.match(
        result.err,
        new RegExp(
          `${c.path.replaceAll("/", "\\/")} is a symbolic link: nothing in the site folder`,
        ),
        c.what,
      );
      assert.deepEqual(
        await snapshot(outside),
        before,
        `${c.what}: nothing outside the site changed`,
      );
      // Put back, the site builds again.
      await Deno.remove(c.path);
      await Deno.rename(outside, c.path);
      assert.equal((await view(h, siteDir)).status, 0, c.what);
    }
  } finally {
    await h.close();
  }
});

Deno.test("a channel gone from the backup is not removed through a linked parent folder: the outside folder stays", async () => {
  const { h, siteDir } = await backupWithSite();
  try {
    // The site's channel folders moved away and linked back; a channel the site no longer
    // has (its manifest left over) has a folder there.
    const outside = join(h.dir, "outside-c");
    await replaceWithLink(join(siteDir, "c"), outside);
    const ghost = "g".repeat(26);
    await Deno.mkdir(join(outside, ghost));
    await Deno.writeTextFile(join(outside, ghost, "keep.txt"), "not the site's to remove");
    await Deno.writeTextFile(join(siteDir, ".matterbak-view", "c", `${ghost}.json`), "{}");
    const before = await snapshot(outside);
    // Nothing changed in the backup: the channels are skipped and the removal comes first.
    await assert.rejects(
      buildSite({ dataDir: h.dataDir, siteDir, now: () => Date.now() + 60_000 }),
      (error) =>
        error instanceof StorageError &&
        error.message.startsWith(`${join(siteDir, "c")} is a symbolic link`),
    );
    assert.deepEqual(await snapshot(outside), before);
  } finally {
    await h.close();
  }
});

Deno.test("a link in a site folder before its first build is not written through: nothing lands outside", async () => {
  const { h, plainDir } = await backupWithSite();
  try {
    // A new site folder (it holds the state folder, as one a build began does) in which the
    // folder of a channel is a link: no page of it exists yet, so a page is what comes first.
    const siteDir = join(h.dir, "site2");
    const outside = join(h.dir, "outside-new");
    await Deno.mkdir(outside);
    await Deno.mkdir(join(siteDir, ".matterbak-view"), { recursive: true });
    await Deno.mkdir(join(siteDir, "c"));
    const linked = join(siteDir, "c", plainDir.split("/").at(-1) as string);
    await Deno.symlink(outside, linked);
    const result = await view(h, siteDir);
    assert.equal(result.status, 2, result.err);
    assert.match(result.err, new RegExp(`${linked} is a symbolic link`));
    assert.deepEqual([...Deno.readDirSync(outside)], []);
  } finally {
    await h.close();
  }
});
