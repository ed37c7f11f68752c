/**
 * A FIFO, or a file too large to be a record, left in the data dir (by a restore, by mistake,
 * by someone with access): no command opens it (the open of a FIFO blocks for good, and no
 * signal ends it) or reads it whole (memory). Each finishes in bounded time with its
 * documented status and names what it met; the next backup replaces what it can.
 *
 * The commands run as their own processes, killed if they outlive a bound: a regression fails
 * the test instead of hanging the suite.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MAX_READ_WHOLE_BYTES } from "../lib/store/data_dir.ts";
import { type Harness, runCliProcess, startGenerated } from "./harness.ts";
import { channelFolder, teamChannels } from "./expected_backup.ts";

/**
 * Far above what these commands take on this small world (under 3 s each), far below a hang;
 * a test that hangs ends in well under a minute.
 */
const BOUND_MS = 30_000;
const fifos = Deno.build.os !== "windows";

/** The damaged files of one test: a post file, a stored file info and a user record. */
interface Targets {
  post: string;
  fileInfo: string;
  user: string;
}

function targets(h: Harness, channelDir: string): Targets {
  const names = (dir: string) => Array.from(Deno.readDirSync(dir), (e) => e.name).sort();
  const post = names(join(h.dataDir, channelDir)).find((n) =>
    /^\d{8}-\d{12}__\w{26}\.json$/.test(n)
  );
  const info = names(join(h.dataDir, channelDir, "files")).find((n) => /^\w{26}\.json$/.test(n));
  const user = names(join(h.dataDir, "users")).find((n) => /^\w{26}__.+\.json$/.test(n));
  assert.ok(post && info && user, "a post file, a file info and a user record to damage");
  return {
    post: `${channelDir}/${post}`,
    fileInfo: `${channelDir}/files/${info}`,
    user: `users/${user}`,
  };
}

/** Replaces the file at `path` (relative to the data dir) with a FIFO or a sparse huge file. */
async function damage(h: Harness, path: string, kind: "fifo" | "oversize"): Promise<void> {
  const full = join(h.dataDir, path);
  if (kind === "fifo") {
    await Deno.remove(full);
    const made = await new Deno.Command("mkfifo", { args: [full] }).output();
    assert.ok(made.success, "mkfifo");
  } else {
    // Sparse: no disk space, but a read of it would fill the memory.
    await Deno.truncate(full, MAX_READ_WHOLE_BYTES + 1);
  }
}

function isRegular(h: Harness, path: string): boolean {
  return Deno.lstatSync(join(h.dataDir, path)).isFile;
}

function sizeOf(h: Harness, path: string): number {
  return Deno.lstatSync(join(h.dataDir, path)).size;
}

/** The words a command uses for what it met at a path. */
function what(kind: "fifo" | "oversize"): string {
  return kind === "fifo"
    ? "a FIFO \\(named pipe\\), not a regular file"
    : `${
      MAX_READ_WHOLE_BYTES + 1
    } bytes, more than the ${MAX_READ_WHOLE_BYTES} a file read whole may hold`;
}

function assertNames(text: string, path: string, kind: "fifo" | "oversize", context: string) {
  assert.match(text, new RegExp(`${RegExp.escape(path)}: ${what(kind)}`), `${context}:\n${text}`);
}

function assertNoStackTrace(text: string): void {
  assert.ok(!/^\s+at |unexpected failure/m.test(text), `no stack trace:\n${text}`);
}

for (const kind of ["fifo", "oversize"] as const) {
  Deno.test({
    name:
      `a ${kind === "fifo" ? "FIFO" : "file over the read limit"} at a post file, a file info ` +
      `and a user record: export, view, backup and verify finish, name it, and it is repaired`,
    ignore: kind === "fifo" && !fifos,
    sanitizeResources: false,
  }, async () => {
    const { h, world, me } = await startGenerated({
      teams: 1,
      channelsPerTeam: 1,
      postsPerChannel: 12,
      filesEvery: 3,
      dms: 0,
      gms: 0,
    });
    try {
      const cli = (args: string[]) => runCliProcess(args, {}, BOUND_MS);
      const backup = (extra: string[] = []) =>
        cli([...h.configArgs, "--rate-limit", "0", "--skip-emojis", ...extra]);
      assert.equal((await backup()).status, 0);
      const channel = teamChannels(world, me.id)[0]!;
      const t = targets(h, channelFolder(world, channel, me.id));
      const postSize = sizeOf(h, t.post);
      for (const path of [t.post, t.fileInfo, t.user]) await damage(h, path, kind);

      // Readers skip each file as damaged, say so, and end with status 3.
      const md = await cli(["export", "markdown", "-d", h.dataDir, "-o", join(h.dir, "md")]);
      const mdText = md.err.join("\n");
      assert.equal(md.status, 3, mdText);
      for (const path of [t.post, t.fileInfo, t.user]) {
        assertNames(mdText, `skipped ${path}`, kind, "export markdown");
      }
      const site = await cli(["view", "-d", h.dataDir, "-o", join(h.dir, "site")]);
      const siteText = site.err.join("\n");
      assert.equal(site.status, 3, siteText);
      for (const path of [t.post, t.fileInfo, t.user]) assertNames(siteText, path, kind, "view");
      assertNoStackTrace(`${mdText}\n${siteText}`);

      // A full re-crawl replaces the post file and the file info with the server's copies; the
      // user record, unchanged on the server, is not read by the backup (the zip leaves out a
      // FIFO and says so).
      const crawled = await backup(["--update-old-posts"]);
      const crawlText = [...crawled.out, ...crawled.err].join("\n");
      assert.equal(crawled.status, 0, crawlText);
      assertNames(crawlText, t.post, kind, "backup");
      assertNames(crawlText, t.fileInfo, kind, "backup");
      assert.match(
        crawlText,
        new RegExp(`Replaced the damaged post file ${RegExp.escape(t.post)}`),
      );
      assertNoStackTrace(crawlText);
      assert.ok(isRegular(h, t.post) && sizeOf(h, t.post) === postSize, "the post file repaired");
      assert.ok(isRegular(h, t.fileInfo) && sizeOf(h, t.fileInfo) < 4096, "the file info repaired");
      if (kind === "fifo") {
        assert.match(crawlText, new RegExp(`Left out of the zip: .*${RegExp.escape(t.user)}`));
      }

      // verify names the user record (status 6) and the next backup restores it.
      const verified = await cli(["verify", "-d", h.dataDir]);
      const verifyText = [...verified.out, ...verified.err].join("\n");
      assert.equal(verified.status, 6, verifyText);
      assert.match(verifyText, new RegExp(RegExp.escape(t.user)));
      assert.doesNotMatch(
        verifyText,
        new RegExp(`${RegExp.escape(t.post)}|${RegExp.escape(t.fileInfo)}`),
      );
      assertNoStackTrace(verifyText);
      const repaired = await backup();
      assert.equal(repaired.status, 0, repaired.err.join("\n"));
      assert.ok(isRegular(h, t.user) && sizeOf(h, t.user) < 4096, "the user record repaired");
      const clean = await cli(["verify", "-d", h.dataDir]);
      assert.equal(clean.status, 0, [...clean.out, ...clean.err].join("\n"));
    } finally {
      await h.close();
    }
  });
}

/** Replaces whatever is at `path` with a FIFO. */
async function fifoAt(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
  assert.ok((await new Deno.Command("mkfifo", { args: [path] }).output()).success, "mkfifo");
}

Deno.test({
  name: "a FIFO at the lock stops the backup with one line naming it; at a channel's sync " +
    "state it is a damaged state, and the channel is crawled again",
  ignore: !fifos,
}, async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 12,
    dms: 0,
    gms: 0,
  });
  try {
    const backup = () =>
      runCliProcess([...h.configArgs, "--rate-limit", "0", "--skip-emojis"], {}, BOUND_MS);
    assert.equal((await backup()).status, 0);
    const channel = teamChannels(world, me.id)[0]!;
    const state = join(h.dataDir, ".matterbak", "channels", `${channel.id}.json`);
    const lock = join(h.dataDir, ".matterbak", "lock");
    await fifoAt(state);
    await fifoAt(lock);

    const locked = await backup();
    assert.equal(locked.status, 2, locked.err.join("\n"));
    const errors = locked.err.filter((line) => line.startsWith("error: "));
    assert.equal(errors.length, 1, locked.err.join("\n"));
    assert.match(
      errors[0]!,
      new RegExp(
        `${RegExp.escape(lock)}: a FIFO \\(named pipe\\), not a regular file; it is never read`,
      ),
    );
    assertNoStackTrace(locked.err.join("\n"));

    await Deno.remove(lock);
    const crawled = await backup();
    const text = [...crawled.out, ...crawled.err].join("\n");
    assert.equal(crawled.status, 0, text);
    assert.match(
      text,
      new RegExp(
        `The sync state of team-0/${channel.name} \\(\\.matterbak/channels/${channel.id}\\.json: ` +
          `a FIFO \\(named pipe\\), not a regular file\\) cannot be used`,
      ),
    );
    assert.ok(Deno.lstatSync(state).isFile, "the state is written again");
  } finally {
    await h.close();
  }
});
