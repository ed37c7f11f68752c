/**
 * Stopping a run at any moment is harmless: an in-process abort mid-crawl, a SIGINT sent to the
 * in-process CLI at a chosen write, real SIGINT and SIGTERM sent to the CLI (also while an
 * attachment is half downloaded), and kill -9. After each, every file parses or has its exact
 * bytes, and the next run completes the backup.
 */
import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import type { SignalSource } from "../lib/cli/interrupt.ts";
import { formatBytes, formatNumber } from "../lib/util/format.ts";
import { InterruptedError } from "../lib/util/errors.ts";
import {
  assertRunCompletes,
  channelFolder,
  type Check,
  expectedBackup,
  teamChannels,
} from "./expected_backup.ts";
import {
  listFiles,
  readJsonFile,
  spawnCli,
  startGenerated,
  startHarness,
  waitFor,
  withOneChannel,
} from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { FaultPlan } from "./simulator/server.ts";
import type { Channel, PostRecord } from "./simulator/world.ts";

/** Every JSON file parses; every attachment present has its FileInfo size. */
async function assertNoCorruptFile(dataDir: string): Promise<void> {
  for (const path of await listFiles(dataDir)) {
    if (path.endsWith(".mbtmp")) continue;
    const full = `${dataDir}/${path}`;
    if (path.endsWith(".json")) {
      JSON.parse(await Deno.readTextFile(full));
    } else if (/\/files\/[a-z0-9]{26}__/.test(path)) {
      const info = await readJsonFile<{ size: number }>(full.replace(/__[^/]*$/, ".json"));
      assert.equal((await Deno.stat(full)).size, info.size, path);
    }
  }
}

/**
 * Interrupts a run like Ctrl+C when, while armed, it asks for its `page`th older page of posts:
 * `faults` goes to the simulator, `signal` to the run.
 */
class PageInterrupt {
  #pages = 0;
  readonly #controller = new AbortController();
  readonly signal = this.#controller.signal;

  constructor(readonly page: number, public armed = true) {}

  readonly faults: FaultPlan = (req) => {
    if (
      this.armed && req.path.endsWith("/posts") && /before=/.test(req.query) &&
      ++this.#pages === this.page
    ) {
      this.#controller.abort(new InterruptedError("SIGINT"));
    }
    return undefined;
  };
}

Deno.test("an interrupted first run resumes where it stopped: no gap, no duplicate, no re-download", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 1500,
    dms: 0,
    gms: 0,
  });
  const interrupt = new PageInterrupt(4);
  const h = await startHarness({
    world,
    faults: interrupt.faults,
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": {} } },
  });
  try {
    await assert.rejects(
      h.runInProcess({ signal: interrupt.signal }, ["--skip-users", "--skip-emojis"]),
      InterruptedError,
    );
    await assertNoCorruptFile(h.dataDir);
    const channel = teamChannels(world, me.id).find((c) => c.name === "town-square") as Channel;
    const state = await readJsonFile(`${h.dataDir}/.matterbak/channels/${channel.id}.json`);
    assert.equal(state.historyComplete, false);
    assert.equal(typeof state.cursor, "string");
    assert.ok(!(await listFiles(h.dataDir)).includes(h.zipPath), "no zip from an interrupted run");

    // Meanwhile the server moves on: a new post on top and an edit of an already stored one.
    world.advance(60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "while away" });
    const newest = world.channelPosts(channel.id).filter((p) =>
      p.delete_at === 0 && p.root_id === ""
    ).at(-2);
    world.editPost(newest?.id as string, "edited while away");
    const firstRunFiles = h.sim.requests.filter((r) => r.path.startsWith("/api/v4/files/")).map((
      r,
    ) => r.path);
    h.sim.resetStats();
    await assertRunCompletes(h, me.id);
    const crawl = h.sim.requests.filter((r) => r.path.endsWith(`/channels/${channel.id}/posts`));
    assert.ok(/since=/.test(crawl[0]?.query ?? ""), "changes since the interruption first");
    assert.ok(
      crawl.slice(1).every((r) => /before=/.test(r.query)),
      "then the crawl continues, not from the top",
    );
    const again = h.sim.requests.filter((r) => firstRunFiles.includes(r.path));
    assert.deepEqual(again, [], "no attachment downloaded twice");
  } finally {
    await h.close();
  }
});

const isPostFile = (path: string) => /\/\d{8}-\d{12}__[a-z0-9]{26}\.json$/.test(path);

const postFilesExist = (dataDir: string) => async () => {
  try {
    return (await listFiles(dataDir)).filter(isPostFile).length > 300;
  } catch {
    return false;
  }
};

/**
 * Deno on Windows cannot send a child SIGINT or SIGTERM: `kill` ends it with TerminateProcess
 * (Deno's ext/process/lib.rs), as kill -9 does, so those tests only run elsewhere.
 */
const signalsReachChildren = Deno.build.os !== "windows";

for (const [signal, status] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test({
    name: `${signal} mid-run stops cleanly with ${status} and the next run completes the backup`,
    ignore: !signalsReachChildren,
  }, async () => {
    const { h, me } = await startGenerated({
      teams: 1,
      channelsPerTeam: 3,
      postsPerChannel: 1200,
      dms: 0,
      gms: 0,
    }, { latencyMs: 5 });
    try {
      const child = spawnCli(h);
      // A page or more of one channel stored: its crawl has a place to resume from.
      await waitFor(async () => {
        const perFolder = new Map<string, number>();
        for (const path of (await listFiles(h.dataDir).catch(() => [])).filter(isPostFile)) {
          perFolder.set(dirname(path), (perFolder.get(dirname(path)) ?? 0) + 1);
        }
        return Math.max(0, ...perFolder.values()) > 250;
      }, "a page of posts on disk");
      child.process.kill(signal);
      const { code } = await child.process.status;
      const stderr = await child.stderr;
      assert.equal(code, status, stderr);
      const files = await listFiles(h.dataDir);
      assert.ok(!files.some((p) => p.endsWith(".mbtmp")), "no temporary file left");
      await assertNoCorruptFile(h.dataDir);

      // What it says it saved is what is on disk, also in the channels it did not finish.
      const postFiles = files.filter(isPostFile);
      const attachments = files.filter((p) => /\/files\/[a-z0-9]{26}__/.test(p));
      const said = new RegExp(
        `^Interrupted by ${signal}: (\\d+) of (\\d+) channel\\(s\\) finished, (\\d+) partly ` +
          "saved; saved posts ([\\d,]+) new, ([\\d,]+) file\\(s\\) \\([^)]*\\); the next run " +
          "continues where this one stopped$",
        "m",
      ).exec(stderr);
      assert.ok(said, stderr);
      const count = (text: string | undefined) => Number(text?.replaceAll(",", ""));
      assert.ok(postFiles.length > 300);
      assert.equal(count(said[4]), postFiles.length, "posts saved");
      assert.equal(count(said[5]), attachments.length, "attachments saved");
      const states = await Promise.all(
        files.filter((p) => /^\.matterbak\/channels\/[a-z0-9]{26}\.json$/.test(p)).map((p) =>
          readJsonFile<{ historyComplete: boolean }>(join(h.dataDir, p))
        ),
      );
      assert.equal(count(said[1]), states.filter((s) => s.historyComplete).length, "finished");
      assert.ok(count(said[3]) > 0, "some channels partly saved");

      // The next run says which crawls it resumes, with what is stored and where it goes on.
      const next = await assertRunCompletes(h, me.id);
      const resumed = next.out.filter((l) => l.startsWith("resuming "));
      assert.ok(resumed.length > 0, next.out.join("\n"));
      for (const line of resumed) {
        const [, label, stored, from] =
          /^resuming team-0\/(\S+): ([\d,]+) posts stored, continuing from (\d{4}-\d\d-\d\d)$/
            .exec(line) ?? [];
        const channel = teamChannels(h.world, me.id).find((c) => c.name === label) as Channel;
        assert.ok(channel, line);
        const folder = `${channelFolder(h.world, channel, me.id)}/`;
        const days = postFiles.filter((p) => p.startsWith(folder)).map((p) =>
          basename(p).replace(/^(\d{4})(\d\d)(\d\d).*/, "$1-$2-$3")
        ).sort();
        assert.equal(count(stored), days.length, line);
        assert.ok((days[0] as string) <= (from as string), `${line}: from a stored day`);
        assert.ok((from as string) <= (days.at(-1) as string), line);
      }
    } finally {
      await h.close();
    }
  });
}

/** Signals sent to an in-process run by the test, at the step it chooses, as the OS would. */
class TestSignals implements SignalSource {
  readonly #handlers = new Map<Deno.Signal, Set<() => void>>();

  add(signal: Deno.Signal, handler: () => void): void {
    this.#handlers.set(signal, (this.#handlers.get(signal) ?? new Set()).add(handler));
  }

  remove(signal: Deno.Signal, handler: () => void): void {
    this.#handlers.get(signal)?.delete(handler);
  }

  send(signal: Deno.Signal): void {
    const handlers = [...this.#handlers.get(signal) ?? []];
    assert.ok(handlers.length > 0, `nothing listens for ${signal}`);
    for (const handler of handlers) handler();
  }
}

Deno.test("SIGINT while a page of posts is written: the summary counts exactly the posts and files on disk, that page's too, and the next run completes", async () => {
  await withOneChannel(700, async ({ h, me }) => {
    const signals = new TestSignals();
    const signalAt = 250;
    let postsRenamed = 0;
    const result = await h.run(["--skip-users", "--skip-emojis"], {}, {
      signals,
      // Ctrl+C in the middle of the second page's batch of post files (pages of about 200),
      // after the first page's attachments were downloaded.
      fsRecorder: (step) => {
        if (step.op === "rename" && isPostFile(step.to) && ++postsRenamed === signalAt) {
          signals.send("SIGINT");
        }
      },
    });
    assert.equal(result.status, 130, result.err.join("\n"));
    const files = await listFiles(h.dataDir);
    assert.ok(!files.some((p) => p.endsWith(".mbtmp")), "no temporary file left");
    await assertNoCorruptFile(h.dataDir);
    const posts = files.filter(isPostFile).length;
    // The writes under way finish: the page's posts after the signal are saved too.
    assert.ok(posts > signalAt, `${posts} posts on disk, signalled at the ${signalAt}th`);
    const attachments = files.filter((p) => /\/files\/[a-z0-9]{26}__/.test(p));
    assert.ok(attachments.length > 0, "the first page's attachments are saved");
    let bytes = 0;
    for (const path of attachments) bytes += (await Deno.stat(join(h.dataDir, path))).size;
    assert.deepEqual(result.err, [
      "SIGINT received: finishing current writes and stopping (again to quit at once)",
      "Interrupted by SIGINT: 0 of 1 channel(s) finished, 1 partly saved; saved posts " +
      `${formatNumber(posts)} new, ${attachments.length} file(s) (${formatBytes(bytes)}); ` +
      "the next run continues where this one stopped",
    ]);
    await assertRunCompletes(h, me.id);
  });
});

Deno.test({
  name:
    "SIGTERM while an attachment is half downloaded leaves no partial file; the next run fetches it",
  ignore: !signalsReachChildren,
}, async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 30,
    dms: 0,
    gms: 0,
  });
  const channel = [...world.channels.values()].find((c) => c.name === "town-square") as Channel;
  const big = world.addFile({
    userId: me.id,
    channelId: channel.id,
    name: "big.bin",
    bytes: new Uint8Array(256 * 1024).fill(7),
  });
  world.addPost({ channelId: channel.id, userId: me.id, message: "big", fileIds: [big.id] });
  let bigStarted = false;
  const faults: FaultPlan = (req) => {
    if (req.path !== `/api/v4/files/${big.id}` || req.attempt > 1) return undefined;
    bigStarted = true;
    return { kind: "slowBody", chunkBytes: 16 * 1024, delayMs: 200 };
  };
  const h = await startHarness({
    world,
    faults,
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": {} } },
  });
  try {
    const child = spawnCli(h);
    await waitFor(() => Promise.resolve(bigStarted), "the slow download");
    await new Promise((r) => setTimeout(r, 500));
    child.process.kill("SIGTERM");
    const { code } = await child.process.status;
    assert.equal(code, 143, await child.stderr);
    const files = await listFiles(h.dataDir);
    assert.ok(
      !files.some((p) => p.includes(`${big.id}__`)),
      "no partial attachment under its name",
    );
    assert.ok(!files.some((p) => p.endsWith(".mbtmp")), "its temporary file is removed");
    await assertNoCorruptFile(h.dataDir);
    await assertRunCompletes(h, me.id);
  } finally {
    await h.close();
  }
});

Deno.test("kill -9 mid-run loses no completed file and the next run cleans up and completes", async () => {
  const { h, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 3,
    postsPerChannel: 1200,
    dms: 0,
    gms: 0,
  }, { latencyMs: 5 });
  try {
    const child = spawnCli(h);
    await waitFor(postFilesExist(h.dataDir), "posts on disk");
    child.process.kill("SIGKILL");
    await child.process.status;
    await child.stderr;
    await assertNoCorruptFile(h.dataDir);
    // A stale temporary file, as a crash mid-write leaves one, and a half-written archive.
    await Deno.writeTextFile(`${h.dataDir}/teams/.123-456.mbtmp`, '{"half');
    // One being written by a run for another data dir is recent, and stays.
    const tempArchive = (tag: string) =>
      join(dirname(h.zipPath), `.${basename(h.zipPath)}.${tag}.mbtmp`);
    const hourAgo = new Date(Date.now() - 3600_000);
    await Deno.writeTextFile(tempArchive("0badf00d"), "PK");
    await Deno.utime(tempArchive("0badf00d"), hourAgo, hourAgo);
    await Deno.writeTextFile(tempArchive("inflight"), "PK");
    await assertRunCompletes(h, me.id);
    await assert.rejects(Deno.stat(tempArchive("0badf00d")), Deno.errors.NotFound, "stale removed");
    assert.ok((await Deno.stat(tempArchive("inflight"))).isFile, "a recent one stays");
  } finally {
    await h.close();
  }
});

Deno.test("kill -9 at random points of the batched post writes loses nothing a checkpoint vouches for", async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 3,
    postsPerChannel: 1200,
    dms: 0,
    gms: 0,
  }, { latencyMs: 5 });
  const channels = teamChannels(world, me.id);
  const folders = channels.map((c) => join(h.dataDir, channelFolder(world, c, me.id)));
  const expected = expectedBackup(world, {
    meId: me.id,
    channels,
    skipUsers: true,
    skipEmojis: true,
  });
  // A fixed seed: the points differ from one kill to the next, the same in every test run.
  let seed = 13;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  /** True while a batch is under way (a post folder holds a temporary file) after `posts`. */
  const batchUnderWay = (posts: number) => () => {
    let stored = 0, temps = 0;
    for (const folder of folders) {
      try {
        for (const entry of Deno.readDirSync(folder)) {
          if (entry.name.endsWith(".mbtmp")) temps++;
          else if (entry.isFile) stored++;
        }
      } catch {
        // Not created yet.
      }
    }
    return Promise.resolve(temps > 0 && stored >= posts);
  };
  try {
    let checked = 0;
    for (let kill = 0; kill < 3; kill++) {
      const child = spawnCli(h);
      // Further in each time (a page is 200 posts), so that every run gets some work done.
      await waitFor(batchUnderWay(kill * 450), "a batch of post writes under way");
      await new Promise((r) => setTimeout(r, Math.floor(random() * 15)));
      child.process.kill("SIGKILL");
      await child.process.status;
      await child.stderr;
      await assertNoCorruptFile(h.dataDir);
      // Every post and attachment is whole and right, whatever the moment of the kill.
      const files = await listFiles(h.dataDir);
      // Temporary files are what a kill leaves (the next run removes them).
      const data = files.filter((p) =>
        !p.endsWith(".mbtmp") && (isPostFile(p) || p.includes("/files/"))
      );
      checked += data.length;
      for (const path of data) {
        assert.ok(expected.has(path), path);
        (expected.get(path) as Check)(await Deno.readFile(join(h.dataDir, path)));
      }
      // What each state vouches for is there: the posts above its crawl's place, and its count.
      for (const channel of channels) {
        const statePath = join(h.dataDir, ".matterbak", "channels", `${channel.id}.json`);
        const state = await readJsonFile<{ cursorAt?: number; posts?: number }>(statePath)
          .catch(() => undefined);
        if (state?.cursorAt === undefined) continue;
        const folder = `${channelFolder(world, channel, me.id)}/`;
        const stored = new Set(
          files.filter((p) => p.startsWith(folder) && isPostFile(p)).map((p) =>
            basename(p).replace(/^.*__|\.json$/g, "")
          ),
        );
        const above = world.channelPosts(channel.id).filter((p) =>
          p.delete_at === 0 && p.original_id === "" && p.create_at > (state.cursorAt as number)
        );
        assert.deepEqual(above.filter((p) => !stored.has(p.id)).map((p) => p.id), [], statePath);
        assert.ok((state.posts ?? 0) <= stored.size, `${statePath}: its count of posts`);
      }
    }
    assert.ok(checked > 0, "the kills left posts to check");
    await assertRunCompletes(h, me.id);
  } finally {
    await h.close();
  }
});

Deno.test("a threads file left behind by a crash mid-crawl is rebuilt from the posts", async () => {
  await withOneChannel(300, async ({ h, world, me }) => {
    assert.equal((await h.run(["--skip-users", "--skip-emojis"])).status, 0);
    const channel = teamChannels(world, me.id)[0] as Channel;
    const folder = `${h.dataDir}/teams/${channel.team_id}__team-0/${channel.id}__${channel.name}`;
    const complete = await readJsonFile(`${folder}__threads.json`);
    assert.ok(Object.keys(complete).length > 0);
    const statePath = `${h.dataDir}/.matterbak/channels/${channel.id}.json`;
    // What a crash between two checkpoints leaves: posts on disk, an older threads file.
    await Deno.writeTextFile(`${folder}__threads.json`, "{}");
    await Deno.writeTextFile(
      statePath,
      JSON.stringify({ ...await readJsonFile(statePath), threadsStale: true }),
    );
    assert.equal((await h.run(["--skip-users", "--skip-emojis"])).status, 0);
    const rebuilt = await readJsonFile<Record<string, string[]>>(`${folder}__threads.json`);
    const sorted = (map: Record<string, unknown>) =>
      Object.fromEntries(
        Object.entries(map).map(([k, v]) => [k, [...v as string[]].sort()]).sort(),
      );
    assert.deepEqual(sorted(rebuilt), sorted(complete));
    assert.equal((await readJsonFile(statePath)).threadsStale, undefined);
  });
});

for (const log of ["intact", "zeroed"] as const) {
  const name = log === "intact"
    ? "an interrupted re-crawl, resumed, still marks the posts deleted before it and no other"
    : "an interrupted re-crawl whose seen log was zeroed marks no live post deleted when resumed";
  Deno.test(name, async () => {
    const { world, me, token } = generateWorld({
      teams: 1,
      channelsPerTeam: 1,
      postsPerChannel: 1500,
      dms: 0,
      gms: 0,
    });
    const interrupt = new PageInterrupt(4, false);
    const h = await startHarness({
      world,
      faults: interrupt.faults,
      credentials: { user: me.username, token },
      channels: { teams: { "team-0": {} } },
    });
    const args = ["--skip-users", "--skip-emojis"];
    try {
      assert.equal((await h.run(args)).status, 0);
      const channel = teamChannels(world, me.id).find((c) => c.name === "town-square") as Channel;
      const folder = `${h.dataDir}/${channelFolder(world, channel, me.id)}`;
      const statePath = `${h.dataDir}/.matterbak/channels/${channel.id}.json`;
      const seenLog = `${h.dataDir}/.matterbak/channels/${channel.id}.seen`;
      // One post on the pages crawled before the interruption, one on those after it. Later
      // posts put both deletions out of reach of the resumed run's `since`.
      const live = world.channelPosts(channel.id).filter((p) => p.delete_at === 0);
      const doomed = [live.at(-50), live[100]].map((p) => (p as PostRecord).id);
      for (const id of doomed) world.deletePost(id);
      world.advance(3600_000);
      world.addPost({ channelId: channel.id, userId: me.id, message: "after the deletions" });

      interrupt.armed = true;
      await assert.rejects(
        h.runInProcess({ signal: interrupt.signal }, ["--update-old-posts", ...args]),
        InterruptedError,
      );
      interrupt.armed = false;
      assert.equal((await readJsonFile(statePath)).reconciling, true);
      const logSize = (await Deno.stat(seenLog)).size;
      assert.ok(logSize > 0, "the ids seen so far are on disk");
      if (log === "zeroed") await Deno.writeFile(seenLog, new Uint8Array(logSize));

      const result = await h.run(args);
      assert.equal(result.status, 0, result.err.join("\n"));
      const marked = new Set<string>();
      let livePosts = 0;
      for await (const entry of Deno.readDir(folder)) {
        if (!entry.isFile) continue;
        const post = await readJsonFile<{ id: string; delete_at: number }>(
          `${folder}/${entry.name}`,
        );
        const gone = (world.post(post.id)?.delete_at ?? 1) > 0;
        if (!gone) livePosts++;
        // A trusted log finds every deletion; a damaged one none, and never a live post.
        if (log === "intact" || !gone) {
          assert.equal(post.delete_at > 0, gone, `${post.id}: ${gone ? "deleted" : "live"}`);
        }
        if (post.delete_at > 0) marked.add(post.id);
      }
      assert.ok(livePosts > 1000, "the live posts are all there");
      if (log === "intact") {
        for (const id of doomed) assert.ok(marked.has(id), `${id} marked deleted`);
        assert.deepEqual(result.err, []);
      } else {
        assert.deepEqual(result.err, [
          `warning: The seen log ${seenLog} of team-0/town-square cannot be trusted (it does not ` +
          `start with the header its state expects): the interrupted re-crawl goes on without ` +
          `it and marks no post deleted (--update-old-posts finds deletions again)`,
        ]);
      }
      assert.equal((await readJsonFile(statePath)).reconciling, undefined);
      assert.equal((await readJsonFile(statePath)).seenLog, undefined);
      await assert.rejects(Deno.stat(seenLog), Deno.errors.NotFound, "log removed when done");
    } finally {
      await h.close();
    }
  });
}

Deno.test("an interrupted run still logs out the session its password login opened", async () => {
  const interrupt = new PageInterrupt(1);
  const { world, me, password } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 600,
    dms: 0,
    gms: 0,
  });
  const h = await startHarness({
    world,
    faults: interrupt.faults,
    credentials: { user: me.username, password },
    channels: { teams: { "team-0": {} } },
  });
  try {
    await assert.rejects(
      h.runInProcess({ signal: interrupt.signal }, ["--skip-users", "--skip-emojis"]),
      InterruptedError,
    );
    assert.ok(h.sim.requests.some((r) => r.path === "/api/v4/users/logout" && r.status === 200));
    assert.equal(world.sessions.size, 0);
  } finally {
    await h.close();
  }
});

Deno.test("a re-crawl stopped on its first page after an interrupted crawl loses no post and marks none wrongly", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 1500,
    dms: 0,
    gms: 0,
  });
  const interrupt = new PageInterrupt(4);
  const h = await startHarness({
    world,
    faults: interrupt.faults,
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": {} } },
  });
  const args = ["--skip-users", "--skip-emojis"];
  try {
    await assert.rejects(h.runInProcess({ signal: interrupt.signal }, args), InterruptedError);
    interrupt.armed = false;
    const channel = teamChannels(world, me.id).find((c) => c.name === "town-square") as Channel;
    const statePath = `${h.dataDir}/.matterbak/channels/${channel.id}.json`;
    assert.ok((await readJsonFile(statePath)).cursor, "the first crawl left its place");
    // While away: more than a page of new posts, then a quiet spell and one more.
    world.advance(60_000);
    for (let i = 0; i < 300; i++) {
      world.addPost({ channelId: channel.id, userId: me.id, message: `away ${i}` });
    }
    world.advance(600_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "latest" });

    // A full re-crawl, stopped while it stores its first page.
    const stop = new AbortController();
    let postWrites = 0;
    await assert.rejects(
      h.runInProcess({
        signal: stop.signal,
        fsRecorder: (step) => {
          if (
            step.op === "rename" && /\/\d{8}-\d{12}__[a-z0-9]{26}\.json$/.test(step.to) &&
            ++postWrites === 5
          ) {
            stop.abort(new InterruptedError("SIGINT"));
          }
        },
      }, ["--update-old-posts", ...args]),
      InterruptedError,
    );
    assert.equal((await readJsonFile(statePath)).cursor, undefined, "the old place is void");
    await assertRunCompletes(h, me.id);
  } finally {
    await h.close();
  }
});
