/**
 * What lets a backup survive a crash or a power cut, asserted on the recorded steps of real
 * writes: every final name is renamed into place only after its data was synced, and a sync
 * state file (a checkpoint) is written only after the files it vouches for are durable, that is
 * synced, renamed and their folder synced. These are properties, not today's exact sequence:
 * the write path may batch its syncs as long as they hold.
 */
import assert from "node:assert/strict";
import { basename, dirname, join, sep } from "node:path";
import {
  type FsRecorder,
  type FsStep,
  isTempName,
  writeFileAtomic,
} from "../lib/store/atomic_write.ts";
import { seenLogFile, THREADS_SUFFIX } from "../lib/store/layout.ts";
import type { ChannelState } from "../lib/store/state.ts";
import { InterruptedError, StorageError } from "../lib/util/errors.ts";
import { assertRunCompletes, channelFolder, teamChannels } from "./expected_backup.ts";
import { main } from "../lib/cli/main.ts";
import { ExitCode } from "../lib/util/errors.ts";
import { type Harness, readJsonFile, startGenerated, withOneChannel } from "./harness.ts";
import type { Channel, World } from "./simulator/world.ts";

/** The steps of every write, in order. */
function recordSteps(): { steps: FsStep[]; recorder: FsRecorder } {
  const steps: FsStep[] = [];
  return { steps, recorder: (step) => void steps.push(step) };
}

/**
 * Data reaches a final name only by a rename of a temporary file whose data was synced after
 * its last write. Only the append-only seen log and manifest journal are written under their
 * own names.
 */
function assertSyncedBeforeRename(steps: readonly FsStep[]): number {
  const lastWrite = new Map<string, number>();
  const lastSync = new Map<string, number>();
  let renames = 0;
  steps.forEach((step, i) => {
    if (step.op === "write") {
      assert.ok(
        isTempName(basename(step.path)) || step.path.endsWith(".seen") ||
          step.path.endsWith(`${sep}manifest.journal`),
        `${step.path} written in place`,
      );
      lastWrite.set(step.path, i);
    } else if (step.op === "sync") {
      lastSync.set(step.path, i);
    } else if (step.op === "rename") {
      assert.ok(
        (lastSync.get(step.from) ?? -1) > (lastWrite.get(step.from) ?? -1) &&
          lastSync.has(step.from),
        `${step.to} renamed into place before its data was synced`,
      );
      renames++;
    }
  });
  return renames;
}

/**
 * Whether a checkpoint vouches for a file: a channel's state for its posts folder (attachments
 * included) and threads file, the run state for the users folder, a batch of manifest lines
 * for the files it names, verify's repair list for the files repaired before it.
 */
function coverage(root: string, state: unknown): (path: string) => boolean {
  const manifest = (state as { manifest?: string[] }).manifest;
  if (Array.isArray(manifest)) {
    const lines = new Set(manifest);
    return (path) => lines.has(path);
  }
  // verify's repair list: every repair the run made before it.
  if (typeof (state as { repairItems?: number }).repairItems === "number") {
    const own = join(root, ".matterbak");
    return (path) => !path.startsWith(`${own}${sep}`);
  }
  const channel = state as Partial<ChannelState>;
  if (typeof channel.dir === "string") {
    const posts = join(root, ...channel.dir.split("/"));
    return (path) => path.startsWith(`${posts}${sep}`) || path === `${posts}${THREADS_SUFFIX}`;
  }
  assert.ok(typeof (state as { usersWatermark?: number }).usersWatermark === "number");
  return (path) => dirname(path) === join(root, "users");
}

/**
 * Each checkpoint comes after every file it vouches for is durable: renamed (after its data
 * sync, see above) and its folder synced after that rename; a reconciling channel's seen log is
 * synced after its last append. Returns the files checked, all and those a manifest line
 * vouched for.
 */
function assertCheckpointsAfterDurable(
  root: string,
  steps: readonly FsStep[],
): { checked: Set<string>; byManifest: Set<string> } {
  const renames: Array<{ to: string; at: number }> = [];
  const lastDirSync = new Map<string, number>();
  const lastWrite = new Map<string, number>();
  const lastSync = new Map<string, number>();
  const checked = new Set<string>();
  const byManifest = new Set<string>();
  steps.forEach((step, i) => {
    // A removal, like a rename, is durable once its folder is synced after it.
    if (step.op === "rename") renames.push({ to: step.to, at: i });
    else if (step.op === "remove" && !isTempName(basename(step.path))) {
      renames.push({ to: step.path, at: i });
    } else if (step.op === "syncDir") lastDirSync.set(step.path, i);
    else if (step.op === "write") lastWrite.set(step.path, i);
    else if (step.op === "sync") lastSync.set(step.path, i);
    else if (step.op === "checkpoint") {
      const covers = coverage(root, step.state);
      for (const rename of renames) {
        if (!covers(rename.to)) continue;
        assert.ok(
          (lastDirSync.get(dirname(rename.to)) ?? -1) > rename.at,
          `${basename(step.path)} written while ${rename.to} was renamed but its folder not synced`,
        );
        checked.add(rename.to);
        if ("manifest" in (step.state as object)) byManifest.add(rename.to);
      }
      const state = step.state as Partial<ChannelState>;
      if (state.reconciling) {
        const seen = join(root, ...seenLogFile(state.channelId as string));
        const written = lastWrite.get(seen);
        if (written !== undefined) {
          assert.ok(
            (lastSync.get(seen) ?? -1) > written,
            `${basename(step.path)} refers to a seen log not synced since its last append`,
          );
          checked.add(seen);
        }
      }
    }
  });
  return { checked, byManifest };
}

Deno.test("a write stopped at any step leaves the old file or the new one whole, and syncs before renaming", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/post.json`;
    const sources = [
      () => "new content",
      () => ReadableStream.from(["new ", "content"].map((text) => new TextEncoder().encode(text))),
    ];
    for (const source of sources) {
      await Deno.writeTextFile(path, "old");
      const { steps, recorder } = recordSteps();
      await writeFileAtomic(path, source(), { recorder });
      assert.equal(assertSyncedBeforeRename(steps), 1);
      assert.equal(await Deno.readTextFile(path), "new content");
      // A crash before each step in turn: whatever it stopped, the name holds a whole file.
      for (let stop = 0; stop < steps.length; stop++) {
        await Deno.writeTextFile(path, "old");
        let count = 0;
        const crash: FsRecorder = () => {
          if (count++ === stop) throw new Error("crash");
        };
        await assert.rejects(writeFileAtomic(path, source(), { recorder: crash }), /crash/);
        assert.equal(await Deno.readTextFile(path), "old", `stopped before ${steps[stop]?.op}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs the backup in-process and checks both properties on the steps of its writes; returns
 * what its checkpoints vouched for and the error that ended it, if any.
 */
async function runChecked(
  h: Harness,
  args: string[],
  signal?: AbortSignal,
): Promise<{ vouched: Set<string>; byManifest: Set<string>; error: unknown; steps: FsStep[] }> {
  const { steps, recorder } = recordSteps();
  let error: unknown;
  await h.runInProcess({ fsRecorder: recorder, ...(signal ? { signal } : {}) }, args)
    .catch((e) => error = e);
  assert.ok(assertSyncedBeforeRename(steps) > 0);
  const { checked, byManifest } = assertCheckpointsAfterDurable(h.dataDir, steps);
  return { vouched: checked, byManifest, error, steps };
}

/**
 * In a channel's first run its state file is in place, and its folder synced, before any file
 * of the channel is: posts without a state would pass for a finished matterbak backup after a
 * power cut. Returns the channels checked.
 */
function assertNewStateDurableFirst(root: string, steps: readonly FsStep[]): number {
  const firstState = new Map<string, { path: string; dir: string }>();
  for (const step of steps) {
    const dir = step.op === "checkpoint" ? (step.state as Partial<ChannelState>).dir : undefined;
    if (step.op === "checkpoint" && typeof dir === "string" && !firstState.has(step.path)) {
      firstState.set(step.path, { path: step.path, dir: join(root, ...dir.split("/")) });
    }
  }
  for (const { path, dir } of firstState.values()) {
    const renamed = steps.findIndex((s) => s.op === "rename" && s.to === path);
    const durable = steps.findIndex((s, i) =>
      i > renamed && s.op === "syncDir" && s.path === dirname(path)
    );
    assert.ok(renamed >= 0 && durable > renamed, `${basename(path)} never made durable`);
    const early = steps.findIndex((s, i) =>
      i < durable && s.op === "rename" && s.to.startsWith(`${dir}${sep}`)
    );
    assert.equal(early, -1, `a file of ${dir} was renamed before its first state was durable`);
  }
  return firstState.size;
}

const vouchedFor = (paths: Set<string>, pattern: RegExp) => [...paths].some((p) => pattern.test(p));

/** A new post with an attachment, a late reply, an edit and a deletion in `channel`. */
function addChanges(world: World, channel: Channel, userId: string): void {
  const live = world.channelPosts(channel.id).filter((p) => p.delete_at === 0 && !p.root_id);
  const file = world.addFile({
    userId,
    channelId: channel.id,
    name: "new.txt",
    bytes: new TextEncoder().encode("new attachment"),
  });
  world.addPost({ channelId: channel.id, userId, message: "with file", fileIds: [file.id] });
  world.addPost({ channelId: channel.id, userId, message: "late", rootId: live[0]?.id as string });
  world.editPost(live[1]?.id as string, "edited");
  world.deletePost(live[2]?.id as string);
}

Deno.test("every checkpoint of a run comes after the files it vouches for are durable", async () => {
  let stop: AbortController | undefined;
  const { h, world, me } = await startGenerated(
    { teams: 1, channelsPerTeam: 2, postsPerChannel: 450, filesEvery: 5, dms: 0, gms: 0 },
    {
      // Stops a run like Ctrl+C when it asks for its first older page.
      faults: (req) => {
        if (/before=/.test(req.query)) stop?.abort(new InterruptedError("SIGINT"));
        return undefined;
      },
    },
  );
  try {
    const first = await runChecked(h, ["--skip-emojis"]);
    assert.equal(first.error, undefined);
    assert.equal(assertNewStateDurableFirst(h.dataDir, first.steps), 2, "both channels checked");
    for (
      const [what, pattern] of [
        ["posts", /\/\d{8}-\d{12}__[a-z0-9]{26}\.json$/],
        ["attachments", /\/files\/[a-z0-9]{26}__[^/]+$/],
        ["threads files", /__threads\.json$/],
        ["users", /\/users\/[^/]+\.json$/],
      ] as const
    ) {
      assert.ok(
        vouchedFor(first.vouched, pattern),
        `the first run's checkpoints vouch for ${what}`,
      );
    }
    // Manifest lines too, for every kind of file (team and channel records included, which no
    // sync state vouches for).
    for (
      const pattern of [
        /\/\d{8}-\d{12}__[a-z0-9]{26}\.json$/,
        /\/files\/[a-z0-9]{26}__[^/]+$/,
        /__threads\.json$/,
        /\/users\/[^/]+\.json$/,
        /\/teams\/[^/]+\.json$/,
        /\/teams\/[^/]+\/[^/]+\.json$/,
      ]
    ) {
      assert.ok(vouchedFor(first.byManifest, pattern), `manifest lines vouch for ${pattern}`);
    }

    const channel = teamChannels(world, me.id)[0] as Channel;
    world.advance(60_000);
    addChanges(world, channel, me.id);
    const update = await runChecked(h, ["--skip-emojis"]);
    assert.equal(update.error, undefined);
    assert.ok(vouchedFor(update.vouched, /\/files\/[a-z0-9]{26}__new\.txt$/), "the new attachment");
    assert.ok(vouchedFor(update.vouched, /\/history\/[a-z0-9]{26}\.json$/), "the edit history");

    // A re-crawl stopped on its second page: its state refers to the seen log.
    stop = new AbortController();
    const recrawl = await runChecked(h, ["--skip-emojis", "--update-old-posts"], stop.signal);
    stop = undefined;
    assert.ok(recrawl.error instanceof InterruptedError, String(recrawl.error));
    assert.ok(vouchedFor(recrawl.vouched, /\.seen$/), "the seen log");

    const resumed = await runChecked(h, ["--skip-emojis"]);
    assert.equal(resumed.error, undefined);
  } finally {
    await h.close();
  }
});

/**
 * kill -9 right after the first checkpoint in the middle of a crawl: that state file is
 * renamed into place, then every further step fails, so nothing more reaches the disk.
 */
function crashAfterMidCrawlCheckpoint(): { recorder: FsRecorder; crashed: () => boolean } {
  let statePath: string | undefined;
  let crashed = false;
  const recorder: FsRecorder = (step) => {
    if (crashed) throw new StorageError("simulated crash: the process is gone");
    if (step.op === "checkpoint" && (step.state as Partial<ChannelState>).cursor) {
      statePath ??= step.path;
    }
    if (step.op === "rename" && step.to === statePath) crashed = true;
  };
  return { recorder, crashed: () => crashed };
}

Deno.test("a crash after a checkpoint mid-crawl leaves the threads file marked stale, and the next run rebuilds it", async () => {
  // More than 25 pages of 200 posts, so the crawl checkpoints before its end.
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 5300,
    filesEvery: 0,
    dms: 0,
    gms: 0,
  });
  const args = ["--skip-users", "--skip-emojis"];
  try {
    assert.equal((await h.run(args)).status, 0);
    const channel = teamChannels(world, me.id)[0] as Channel;
    // A late reply to the oldest root: it is on the re-crawl's first page, which the threads
    // file on disk does not know.
    const root = world.channelPosts(channel.id).find((p) => p.delete_at === 0 && !p.root_id);
    assert.ok(root);
    world.advance(60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "late", rootId: root.id });
    // A later post puts the reply out of reach of the resumed run's `since`.
    world.advance(10 * 60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "newest" });

    const crash = crashAfterMidCrawlCheckpoint();
    await assert.rejects(
      h.runInProcess({ fsRecorder: crash.recorder }, ["--update-old-posts", ...args]),
      /simulated crash/,
    );
    assert.ok(crash.crashed());
    const state = await readJsonFile<ChannelState>(
      `${h.dataDir}/.matterbak/channels/${channel.id}.json`,
    );
    assert.equal(typeof state.cursor, "string", "the crash came mid-crawl");
    assert.equal(state.threadsStale, true, "the state says the threads file lags behind");

    await assertRunCompletes(h, me.id);
  } finally {
    await h.close();
  }
});

Deno.test("verify's repair list is cleared only after the repairs it names are durable", () =>
  withOneChannel(40, async ({ h, world, me }) => {
    const channel = teamChannels(world, me.id)[0] as Channel;
    const other = world.channelMembers(channel.id).find((m) => m.user_id !== me.id);
    assert.ok(other, "someone else in the channel");
    const theirs = world.addPost({ channelId: channel.id, userId: other.user_id, message: "v0" });
    assert.equal((await h.run(["--skip-emojis"])).status, 0);
    world.advance(60_000);
    world.editPost(theirs.id, "v1");
    assert.equal((await h.run(["--skip-emojis"])).status, 0);
    // Past the overlap of `since`: the server's copy of v0 is in no answer any more.
    world.advance(60 * 60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "an hour later" });
    assert.equal((await h.run(["--skip-emojis"])).status, 0);
    const folder = join(h.dataDir, channelFolder(world, channel, me.id));
    // Another's edit history cannot be fetched again: the repair sets it aside and removes it.
    const history = join(folder, "history", `${theirs.id}.json`);
    await Deno.writeTextFile(history, "{ cut short");
    const posts = (await Array.fromAsync(Deno.readDir(folder)))
      .filter((e) => e.isFile && e.name.endsWith(".json")).map((e) => e.name).sort();
    const damaged = join(folder, posts[3] as string);
    await Deno.writeTextFile(damaged, "{ cut short");
    const status = await main(["verify", "-d", h.dataDir], {
      env: () => undefined,
      output: { out: () => {}, err: () => {} },
    });
    assert.equal(status, ExitCode.damaged);
    const repair = await runChecked(h, ["--skip-emojis"]);
    assert.equal(repair.error, undefined);
    const listed = repair.steps.findIndex((s) =>
      s.op === "checkpoint" && "repairItems" in (s.state as object)
    );
    assert.ok(listed >= 0, "the repair list was written as a checkpoint");
    assert.ok(
      repair.vouched.has(damaged),
      "the repaired post is durable before the list is cleared",
    );
    assert.ok(repair.vouched.has(history), "the removed history is, before its manifest line");
    await assert.rejects(Deno.stat(history), Deno.errors.NotFound);
    await Deno.stat(damaged).then((info) => assert.ok(info.size > 20));
  }));
