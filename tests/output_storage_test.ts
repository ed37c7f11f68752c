/**
 * The outputs outside the data dir: the zip and the exports. A full or read-only disk, or a
 * folder that cannot be made, ends the run with exit 2 and one `error:` line naming the output,
 * leaves no partial output and the previous one as it was; an output inside the data dir
 * through a symbolic link is refused; an export is durable before it replaces the previous one
 * (asserted on the recorded steps); a running export's staging folder is never removed by
 * another export to the same target, a dead one's is.
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import type { ExportEvent } from "../lib/export/common.ts";
import { exportMarkdown } from "../lib/export/markdown.ts";
import { EXPORT_MARKER, STAGING_LOCK } from "../lib/export/staging.ts";
import type { FsRecorder, FsStep } from "../lib/store/atomic_write.ts";
import { main } from "../lib/cli/main.ts";
import { DataDir } from "../lib/store/data_dir.ts";
import { StorageError } from "../lib/util/errors.ts";
import { writeZip } from "../lib/zip/archive.ts";
import { myChannels } from "./expected_backup.ts";
import type { User } from "./simulator/world.ts";
import { canMount, type Harness, listFiles, type RunResult, startGenerated } from "./harness.ts";

/** The CLI in-process on a command line of its own (not the harness's backup options). */
async function cli(args: string[], fsRecorder?: FsRecorder): Promise<RunResult> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(args, {
    env: () => undefined,
    output: { out: (line) => out.push(line), err: (line) => err.push(line) },
    ...(fsRecorder ? { fsRecorder } : {}),
  });
  return { status, out, err };
}

/** A backed-up world with a few hundred posts and attachments. */
async function backedUp(): Promise<Harness & { me: User }> {
  const { h, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 150,
    filesEvery: 4,
    dms: 1,
    gms: 0,
  });
  const first = await h.run();
  assert.equal(first.status, 0, first.err.join("\n"));
  return Object.assign(h, { me });
}

/** Bytes that do not compress (crypto.getRandomValues gives at most 64 KiB at a time). */
function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  return bytes;
}

/** Exit 2 with exactly one line, an `error:` line matching `message`, and no stack trace. */
function assertOneErrorLine(result: RunResult, message: RegExp): void {
  const text = [...result.out, ...result.err].join("\n");
  assert.equal(result.status, 2, text);
  const errors = result.err.filter((line) => line.startsWith("error:"));
  assert.equal(errors.length, 1, text);
  assert.match(errors[0] as string, message);
  assert.ok(!/^\s+at /m.test(text), `no stack trace:\n${text}`);
}

async function temporaryNames(folder: string): Promise<string[]> {
  return (await listFiles(folder)).filter((path) => path.includes(".mbtmp"));
}

/** Earlier outputs in `folder`: a zip, a Markdown export and a bulk-import zip. */
async function previousOutputs(folder: string) {
  const zip = join(folder, "x.zip");
  const md = join(folder, "md");
  const bulk = join(folder, "bulk.zip");
  await Deno.writeTextFile(zip, "previous zip");
  await Deno.mkdir(md);
  await Deno.writeTextFile(join(md, EXPORT_MARKER), "matterbak Markdown export\n");
  await Deno.writeTextFile(join(md, "old.md"), "previous export");
  await Deno.writeTextFile(bulk, "previous bulk");
  return {
    zip,
    md,
    bulk,
    async assertIntact() {
      assert.equal(await Deno.readTextFile(zip), "previous zip");
      assert.deepEqual((await listFiles(md)).sort(), [EXPORT_MARKER, "old.md"]);
      assert.equal(await Deno.readTextFile(join(md, "old.md")), "previous export");
      assert.equal(await Deno.readTextFile(bulk), "previous bulk");
      assert.deepEqual(await temporaryNames(folder), [], "no partial output");
    },
  };
}

/**
 * Fills the file system of `folder` but for `room` bytes: enough to begin an output (a
 * staging folder, its marker), not to write it, so the disk fills up in the middle.
 */
async function fill(folder: string, room: number): Promise<void> {
  const file = await Deno.open(join(folder, "filler"), { write: true, createNew: true });
  const chunk = new Uint8Array(4096);
  let size = 0;
  try {
    for (;;) size += await file.write(chunk);
  } catch (error) {
    assert.match(String(error), /os error 28/);
    await file.truncate(size - room);
  } finally {
    file.close();
  }
}

Deno.test({
  name:
    "a full or read-only disk under the zip or an export: exit 2, one error line naming it, the previous outputs intact",
  ignore: !await canMount(),
  async fn() {
    const h = await backedUp();
    const small = await Deno.makeTempDir();
    try {
      const mount = ["-t", "tmpfs", "-o", "size=256k", "tmpfs", small];
      assert.ok((await new Deno.Command("mount", { args: mount }).output()).success);
      const previous = await previousOutputs(small);
      await fill(small, 64 * 1024);
      const name = (path: string) => RegExp.escape(resolve(path));

      const backup = await h.run(["--output-zip", previous.zip]);
      assert.ok(backup.out.some((line) => line.startsWith("Done in")), "the backup's summary");
      assertOneErrorLine(
        backup,
        new RegExp(
          `^error: The disk is full: cannot write ${name(previous.zip)}; the backup in .* is ` +
            `complete, only its zip was not written`,
        ),
      );
      // A run with problems of its own keeps its status 3, as with a report not written.
      await h.writeChannels({ teams: { "team-0": {}, "no-such-team": {} } });
      const partial = await h.run(["--output-zip", previous.zip]);
      assert.equal(partial.status, 3, partial.err.join("\n"));
      assert.ok(partial.err.some((line) => /^error: The disk is full: cannot write /.test(line)));
      const markdown = await cli(["export", "markdown", "-d", h.dataDir, "-o", previous.md]);
      assertOneErrorLine(
        markdown,
        new RegExp(`^error: The disk is full: cannot write ${name(previous.md)}$`),
      );
      const bulk = await cli(["export", "mattermost", "-d", h.dataDir, "-o", previous.bulk]);
      assertOneErrorLine(
        bulk,
        new RegExp(`^error: The disk is full: cannot write ${name(previous.bulk)}$`),
      );
      await previous.assertIntact();

      // A zip that fills the disk while its entries are written (beyond the write buffer).
      await Deno.remove(join(small, "filler"));
      const big = join(h.dir, "big");
      await Deno.mkdir(big);
      await Deno.writeFile(join(big, "photo.png"), randomBytes(3 << 20));
      await assert.rejects(
        writeZip(new DataDir(big), previous.zip, { exclude: [] }),
        (error: Error) =>
          error instanceof StorageError &&
          error.message === `The disk is full: cannot write ${previous.zip}`,
      );
      await previous.assertIntact();

      const readOnly = ["-o", "remount,ro", small];
      assert.ok((await new Deno.Command("mount", { args: readOnly }).output()).success);
      const roBackup = await h.run(["--output-zip", previous.zip]);
      assertOneErrorLine(
        roBackup,
        new RegExp(`^error: Cannot write --output-zip ${name(previous.zip)}`),
      );
      const roMarkdown = await cli(["export", "markdown", "-d", h.dataDir, "-o", previous.md]);
      assertOneErrorLine(
        roMarkdown,
        new RegExp(`^error: Cannot write ${name(previous.md)}: the file system is read-only$`),
      );
      const roBulk = await cli(["export", "mattermost", "-d", h.dataDir, "-o", previous.bulk]);
      assertOneErrorLine(
        roBulk,
        new RegExp(`^error: Cannot write ${name(previous.bulk)}: the file system is read-only$`),
      );
      await previous.assertIntact();
    } finally {
      await new Deno.Command("umount", { args: [small] }).output();
      await Deno.remove(small, { recursive: true });
      await h.close();
    }
  },
});

Deno.test("an output folder that cannot be made: exit 2, one error line naming the output, nothing left", async () => {
  const h = await backedUp();
  try {
    const file = join(h.dir, "a-file");
    await Deno.writeTextFile(file, "not a folder");
    const outputs: [string[], string][] = [
      [["export", "markdown", "-d", h.dataDir, "-o"], join(file, "md")],
      [["export", "mattermost", "-d", h.dataDir, "-o"], join(file, "x.zip")],
    ];
    if (Deno.build.os === "linux") {
      outputs.push([["export", "markdown", "-d", h.dataDir, "-o"], "/proc/matterbak-md"]);
      outputs.push([["export", "mattermost", "-d", h.dataDir, "-o"], "/proc/matterbak.zip"]);
    }
    for (const [args, out] of outputs) {
      const result = await cli([...args, out]);
      assertOneErrorLine(
        result,
        new RegExp(
          `^error: Cannot write ${
            RegExp.escape(out)
          }: (a (file|folder) on the way|Deno does not let)`,
        ),
      );
    }
    assert.deepEqual(await temporaryNames(h.dir), []);
    const missing = join(h.dir, "missing", "x.zip");
    assertOneErrorLine(
      await h.run(["--output-zip", missing]),
      /^error: The folder for --output-zip .* does not exist$/,
    );
  } finally {
    await h.close();
  }
});

Deno.test("an export into the data dir through a symbolic link is refused; nothing is written there", async () => {
  const h = await backedUp();
  try {
    const link = join(h.dir, "link");
    await Deno.symlink(h.dataDir, link);
    const before = (await listFiles(h.dataDir)).sort();
    for (
      const args of [
        ["export", "markdown", "-d", h.dataDir, "-o", join(link, "md")],
        ["export", "mattermost", "-d", h.dataDir, "-o", join(link, "x.zip")],
      ]
    ) {
      assertOneErrorLine(
        await cli(args),
        /^error: The output .* is inside the data dir .* \(.* is .*\), whose zip would hold it/,
      );
    }
    assert.deepEqual((await listFiles(h.dataDir)).sort(), before);
  } finally {
    await h.close();
  }
});

/** Records every step; `at` finds the index of the first step matching. */
function recording() {
  const steps: FsStep[] = [];
  return {
    steps,
    recorder: ((step) => void steps.push(step)) as FsRecorder,
    at(match: (step: FsStep) => boolean): number {
      return steps.findIndex(match);
    },
  };
}

/** Every folder below `root` and `root` itself, relative ("" for the root). */
async function folders(root: string, rel = ""): Promise<string[]> {
  const out = [rel];
  for await (const entry of Deno.readDir(join(root, rel))) {
    if (entry.isDirectory) {
      out.push(...await folders(root, rel ? `${rel}/${entry.name}` : entry.name));
    }
  }
  return out;
}

/**
 * The export at `out` was durable before its commit rename: every file but hard links synced
 * and every folder synced under the staging name, the rename's folder synced after it, and the
 * staging folder (the previous export in it) removed only after that.
 */
async function assertDurableBeforeCommit(
  steps: readonly FsStep[],
  out: string,
): Promise<{ synced: number; linked: number }> {
  const commit = steps.findIndex((s) => s.op === "rename" && s.to === resolve(out));
  assert.ok(commit >= 0, "the commit rename is recorded");
  const staged = (steps[commit] as { from: string }).from;
  const before = steps.slice(0, commit);
  const syncedBefore = (op: "sync" | "syncDir", path: string) =>
    before.some((s) => s.op === op && s.path === path);
  let synced = 0;
  let linked = 0;
  for (const rel of await listFiles(out)) {
    if (((await Deno.lstat(join(out, rel))).nlink ?? 1) > 1) {
      linked++;
      continue;
    }
    assert.ok(syncedBefore("sync", join(staged, rel)), `${rel} synced before the commit`);
    synced++;
  }
  for (const rel of await folders(out)) {
    assert.ok(syncedBefore("syncDir", join(staged, rel)), `folder ${rel || "."} synced before`);
  }
  const parentSynced = steps.findIndex((s, i) =>
    i > commit && s.op === "syncDir" && s.path === dirname(resolve(out))
  );
  assert.ok(parentSynced > commit, "the rename made durable");
  const removed = steps.findIndex((s) => s.op === "remove");
  assert.ok(removed > parentSynced, "the staging folder (and the previous export) removed last");
  return { synced, linked };
}

Deno.test("an export is durable before it replaces the previous one; so is the backup's zip", async () => {
  const h = await backedUp();
  try {
    const out = join(h.dir, "md");
    const first = recording();
    const made = await cli(["export", "markdown", "-d", h.dataDir, "-o", out], first.recorder);
    assert.equal(made.status, 0, made.err.join("\n"));
    const linked = await assertDurableBeforeCommit(first.steps, out);
    assert.ok(linked.linked > 10 && linked.synced > 3, JSON.stringify(linked));

    // Copies replace it: their data is synced too.
    const second = recording();
    const copied = await cli(
      ["export", "markdown", "-d", h.dataDir, "-o", out, "--copy"],
      second.recorder,
    );
    assert.equal(copied.status, 0, copied.err.join("\n"));
    const counts = await assertDurableBeforeCommit(second.steps, out);
    assert.ok(counts.linked === 0 && counts.synced > 20, JSON.stringify(counts));
    const aside = second.at((s) => s.op === "rename" && s.from === resolve(out));
    assert.ok(aside >= 0, "the previous export stepped aside");

    const bulk = join(h.dir, "bulk.zip");
    const third = recording();
    const exported = await cli(
      ["export", "mattermost", "-d", h.dataDir, "-o", bulk],
      third.recorder,
    );
    assert.ok([0, 3].includes(exported.status), exported.err.join("\n"));
    const renamed = third.at((s) => s.op === "rename" && s.to === bulk);
    const from = (third.steps[renamed] as { from: string }).from;
    assert.ok(third.at((s) => s.op === "sync" && s.path === from) < renamed);
    assert.ok(third.at((s) => s.op === "syncDir" && s.path === h.dir) > renamed);

    // The backup's zip: synced before it replaces the last one, its folder synced after, and
    // only then the zip.json that vouches for it.
    const [channel] = myChannels(h.world, h.me.id);
    h.world.addPost({ channelId: channel?.id as string, userId: h.me.id, message: "new" });
    const zipRun = recording();
    assert.equal((await h.run([], {}, { fsRecorder: zipRun.recorder })).status, 0);
    const zipRenamed = zipRun.at((s) => s.op === "rename" && s.to === h.zipPath);
    assert.ok(zipRenamed >= 0, "the zip was rewritten");
    const temp = (zipRun.steps[zipRenamed] as { from: string }).from;
    assert.ok(zipRun.at((s) => s.op === "sync" && s.path === temp) < zipRenamed, "zip synced");
    const folderSynced = zipRun.steps.findIndex((s, i) =>
      i > zipRenamed && s.op === "syncDir" && s.path === h.dir
    );
    assert.ok(folderSynced > zipRenamed, "the zip's rename made durable");
    const record = zipRun.steps.findIndex((s) =>
      s.op === "rename" && s.to.endsWith(join(".matterbak", "zip.json"))
    );
    assert.ok(record > folderSynced, "zip.json written after the zip is durable");
  } finally {
    await h.close();
  }
});

Deno.test("a second export to the same target leaves the running one's staging folder alone; a dead one's goes", async () => {
  const h = await backedUp();
  try {
    const out = join(h.dir, "md");
    const stagingFolders = async () =>
      (await Array.fromAsync(Deno.readDir(h.dir), (e) => e.name))
        .filter((name) => name.startsWith(".md.") && name.endsWith(".mbtmp"));
    // Left by exports that died: one with its lock file (no process holds it), one from
    // before locks, old; one from before locks, fresh (as if being created) stays.
    const dead = join(h.dir, ".md.dead.mbtmp");
    await Deno.mkdir(dead);
    await Deno.writeTextFile(join(dead, STAGING_LOCK), "");
    const old = join(h.dir, ".md.old.mbtmp");
    await Deno.mkdir(old);
    const longAgo = new Date(Date.now() - 3600_000);
    await Deno.utime(old, longAgo, longAgo);
    const fresh = join(h.dir, ".md.fresh.mbtmp");
    await Deno.mkdir(fresh);

    const run = (emit: (event: ExportEvent) => void) =>
      exportMarkdown({ dataDir: h.dataDir, out, channels: [], copy: false, emit });
    let second: Promise<unknown> | undefined;
    let firstDone = false;
    let overlapped = false;
    const first = run((event) => {
      if (event.type !== "progress" || second) return;
      // The first export is under way; its staging folder's own time says nothing of that
      // (it changes only when its top entries do): made old, as after a long export.
      const [own] = Deno.readDirSync(h.dir).filter((e) =>
        e.name.startsWith(".md.") && e.name.endsWith(".mbtmp") && e.name !== ".md.fresh.mbtmp"
      );
      Deno.utimeSync(join(h.dir, own?.name as string), longAgo, longAgo);
      second = run((event) => {
        if (event.type === "channel" && event.index === 1) overlapped = !firstDone;
      });
    });
    const failed = await first.then(() => undefined, (error: Error) => error);
    firstDone = true;
    await second;
    assert.equal(failed, undefined, `the first export failed: ${failed?.message}`);
    assert.ok(overlapped, "the second export made its staging folder while the first ran");
    await Deno.stat(join(out, "index.md"));
    assert.deepEqual(await stagingFolders(), [".md.fresh.mbtmp"]);
  } finally {
    await h.close();
  }
});
