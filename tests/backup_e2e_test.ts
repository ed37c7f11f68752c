import assert from "node:assert/strict";
import { configure, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import { runBackup } from "../lib/sync/backup.ts";
import { parseBackupArgs } from "../lib/cli/commands/backup.ts";
import {
  assertBackupMatches,
  assertRunCompletes,
  channelFolder,
  expectedBackup,
  fullConfig,
  harnessForAll,
  myChannels,
  teamChannels,
} from "./expected_backup.ts";
import { FakeClock } from "./fake_clock.ts";
import type { FaultPlan } from "./simulator/server.ts";
import {
  listFiles,
  readJsonFile,
  startGenerated,
  startHarness,
  withOneChannel,
} from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { Channel } from "./simulator/world.ts";

configure({ useWebWorkers: false });

async function zipEntries(path: string): Promise<Map<string, Uint8Array>> {
  const reader = new ZipReader((await Deno.open(path)).readable);
  const out = new Map<string, Uint8Array>();
  for (const entry of await reader.getEntries()) {
    if (!entry.directory) {
      out.set(
        entry.filename,
        await entry.getData(new Uint8ArrayWriter(), { checkSignature: true }),
      );
    }
  }
  await reader.close();
  return out;
}

Deno.test("a first run stores everything the config selects, in matterbak's layout, and nothing else", async () => {
  const { world, me, password } = generateWorld({ hostileNames: true });
  const h = await harnessForAll({ world, me, password });
  try {
    const result = await h.run();
    assert.deepEqual(result.err, []);
    assert.equal(result.status, 0);
    const channels = myChannels(world, me.id);
    assert.ok(channels.some((c) => c.delete_at > 0), "an archived channel is included");
    assert.ok(channels.some((c) => c.type === "P"), "a private channel is included");
    assert.ok(
      channels.some((c) => c.type === "D" && c.name === `${me.id}__${me.id}`),
      "the self-DM is included",
    );
    assert.ok(channels.some((c) => c.type === "G"), "a group message is included");
    const expected = expectedBackup(world, { meId: me.id, channels });
    const actual = await listFiles(h.dataDir);
    await assertBackupMatches(h.dataDir, expected, actual);

    // Nothing is written next to the data dir but the zip; the zip holds the data dir exactly.
    const outside = (await listFiles(h.dir)).filter((p) => !p.startsWith("data/"));
    assert.deepEqual(outside, ["backup.zip", "channels.json", "credentials.json"]);
    const entries = await zipEntries(h.zipPath);
    const zipped = actual.filter((path) =>
      ![".matterbak/lock", ".matterbak/zip.json"].includes(path)
    );
    assert.deepEqual(
      [...entries.keys()].sort(),
      zipped,
      "the zip holds the data dir but the run lock and the record of the zip",
    );
    for (const path of zipped) {
      assert.deepEqual(entries.get(path), await Deno.readFile(`${h.dataDir}/${path}`), path);
    }
    // A password login's session is logged out at the end, and no cookie was ever sent.
    assert.equal(world.sessions.size, 0);
    assert.ok(h.sim.requests.every((r) => r.cookie === null));
    const authed = h.sim.requests.filter((r) => r.path !== "/api/v4/users/login");
    assert.ok(authed.every((r) => r.authorization?.startsWith("Bearer ")));
  } finally {
    await h.close();
  }
});

Deno.test("thousands of posts with threads are crawled completely with 200 per page", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 2600,
    dms: 0,
    gms: 0,
  });
  const h = await startHarness({
    world,
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": { include: ["town-square"] } } },
  });
  try {
    const result = await h.run(["--skip-users", "--skip-emojis"]);
    assert.equal(result.status, 0, result.err.join("\n"));
    const channel = [...world.channels.values()].find((c) => c.name === "town-square") as Channel;
    const expected = expectedBackup(world, {
      meId: me.id,
      channels: [channel],
      skipUsers: true,
      skipEmojis: true,
    });
    await assertBackupMatches(h.dataDir, expected, await listFiles(h.dataDir));
    const pages = h.sim.requests.filter((r) => r.path.endsWith(`/channels/${channel.id}/posts`));
    assert.ok(
      pages.every((r) => /per_page=200/.test(r.query) && /skipFetchThreads=true/.test(r.query)),
    );
    // 200 posts on the first page, then 199 new per page (the oldest millisecond is asked again).
    const live = world.channelPosts(channel.id).filter((p) => p.delete_at === 0).length;
    assert.ok(live > 2500);
    assert.equal(pages.length, 1 + Math.ceil((live - 200) / 199));
    // A token session is not ours to log out.
    assert.ok(!h.sim.requests.some((r) => r.path === "/api/v4/users/logout"));
  } finally {
    await h.close();
  }
});

Deno.test("a channel whose oldest posts share one millisecond past a full page is crawled to the end", async () => {
  await withOneChannel(0, async ({ h, world, me }) => {
    const channel = teamChannels(world, me.id)[0] as Channel;
    // A bulk import: the 10 oldest posts share one millisecond; the first page of 200 holds
    // only 5 of them, and the server's prev_post_id is then empty.
    const t = world.now() + 1000;
    for (let i = 0; i < 10; i++) {
      world.addPost({ channelId: channel.id, userId: me.id, createAt: t });
    }
    for (let i = 1; i <= 195; i++) {
      world.addPost({ channelId: channel.id, userId: me.id, createAt: t + i });
    }
    await assertRunCompletes(h, me.id, { channels: [channel] });
  });
});

Deno.test("disabled custom emoji is a note, not an error", async () => {
  await withOneChannel(3, async ({ h }) => {
    const result = await h.run();
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.ok(result.out.some((line) => /custom emoji are disabled/i.test(line)));
    assert.deepEqual(result.err, []);
  }, { emojiEnabled: false });
});

Deno.test("archived channels whose posts the server hides are skipped with one warning, no folder, exit 0", async () => {
  const { h, world, me } = await startGenerated(
    { teams: 1, channelsPerTeam: 3, postsPerChannel: 5, dms: 0, gms: 0 },
    { viewArchivedChannels: false },
  );
  try {
    const archived = teamChannels(world, me.id).filter((c) => c.delete_at > 0);
    const readable = teamChannels(world, me.id).filter((c) => c.delete_at === 0);
    assert.equal(archived.length, 1);
    const report = `${h.dir}/report.json`;
    const result = await h.run(["--skip-users", "--skip-emojis", "--report", report]);
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.equal(result.err.length, 1, result.err.join("\n"));
    assert.match(
      result.err[0] as string,
      new RegExp(
        `^warning: .*team-0/${archived[0]?.name}.*TeamSettings\\.ExperimentalViewArchivedChannels`,
      ),
    );
    // Nothing of the skipped channel is left behind, not even its state.
    const files = await listFiles(h.dataDir);
    assert.deepEqual(files.filter((p) => p.includes(archived[0]?.id as string)), []);
    await assert.rejects(
      Deno.stat(`${h.dataDir}/${channelFolder(world, archived[0] as Channel, me.id)}`),
      Deno.errors.NotFound,
    );
    const expected = expectedBackup(world, {
      meId: me.id,
      channels: readable,
      skipUsers: true,
      skipEmojis: true,
    });
    await assertBackupMatches(h.dataDir, expected, files);
    assert.ok(result.out.some((line) => /channel\(s\) \(.*1 skipped/.test(line)), "in the summary");
    const json = await readJsonFile<{
      channels: { skipped: number };
      skipped: { what: string; why: string }[];
    }>(report);
    assert.equal(json.channels.skipped, 1);
    assert.match(json.skipped[0]?.what ?? "", new RegExp(`team-0/${archived[0]?.name}`));
  } finally {
    await h.close();
  }
});

Deno.test("custom emoji past one page are all stored", async () => {
  await withOneChannel(1, async ({ h, world, me }) => {
    for (let i = 0; i < 450; i++) {
      world.addEmoji({ name: `e${i}`, creatorId: me.id, image: new Uint8Array([i % 256]) });
    }
    const result = await h.run(["--skip-users"]);
    assert.equal(result.status, 0, result.err.join("\n"));
    const files = new Set(await listFiles(h.dataDir));
    const missing = [...world.emojis.values()].filter((e) =>
      e.delete_at === 0 &&
      !(files.has(`emojis/${e.id}__${e.name}.json`) && files.has(`emojis/${e.id}__${e.name}.png`))
    );
    assert.deepEqual(missing.map((e) => e.name), []);
  });
});

Deno.test("names in the config that match nothing are reported by name and the rest is backed up", async () => {
  const { h, world } = await startGenerated({
    teams: 2,
    channelsPerTeam: 2,
    postsPerChannel: 3,
  }, {
    channels: {
      teams: {
        "team-0": { include: ["nope-1", "nope-2"] },
        "Team 1": { exclude: ["ghost"] },
        "no-team": {},
      },
      direct: ["nobody"],
      groups: { exact: [["ghost", "bob"]] },
    },
  });
  try {
    const result = await h.run(["--skip-users", "--skip-emojis"]);
    assert.equal(result.status, 3);
    const err = result.err.join("\n");
    for (const name of ["nope-1", "nope-2", "ghost", "no-team", "nobody", '["ghost","bob"]']) {
      assert.ok(err.includes(name), `${name} reported in:\n${err}`);
    }
    const files = await listFiles(h.dataDir);
    const team0 = [...world.teams.values()].find((t) => t.name === "team-0");
    const team1 = [...world.teams.values()].find((t) => t.name === "team-1");
    assert.ok(
      !files.some((p) => p.includes(team0?.id as string)),
      "a non-matching include selects nothing",
    );
    assert.ok(
      files.some((p) => p.includes(`${team1?.id}__team-1/`)),
      "the matching team is backed up",
    );
  } finally {
    await h.close();
  }
});

Deno.test("a server older than 6.1 has its channels listed team by team, DMs included", async () => {
  const faults: FaultPlan = (req) =>
    /^\/api\/v4\/users\/[a-z0-9]{26}\/channels$/.test(req.path)
      ? { kind: "status", status: 404 }
      : undefined;
  const { h, world, me } = await startGenerated({
    teams: 2,
    channelsPerTeam: 2,
    postsPerChannel: 5,
    dms: 2,
    gms: 1,
  }, {
    faults,
  });
  try {
    await h.writeChannels(fullConfig(world, me.id));
    const result = await h.run(["--skip-users", "--skip-emojis"]);
    assert.equal(result.status, 0, result.err.join("\n"));
    const expected = expectedBackup(world, {
      meId: me.id,
      channels: myChannels(world, me.id),
      skipUsers: true,
      skipEmojis: true,
    });
    await assertBackupMatches(h.dataDir, expected, await listFiles(h.dataDir));
    assert.ok(h.sim.requests.some((r) => /\/teams\/[a-z0-9]{26}\/channels$/.test(r.path)));
  } finally {
    await h.close();
  }
});

Deno.test("initial and step jitter sleep a random share of the given seconds, and say so", async () => {
  await withOneChannel(3, async ({ h }) => {
    const options = parseBackupArgs([
      ...h.configArgs,
      "--initial-jitter",
      "10",
      "--step-jitter",
      "2",
      "--rate-limit",
      "0",
    ]);
    const clock = new FakeClock();
    const messages: string[] = [];
    await runBackup(options, {
      env: {},
      clock,
      random: () => 0.25,
      emit: (e) => e.type === "info" && messages.push(e.message),
    });
    // Initial 10 s x 0.25, then 2 s x 0.25 after the teams, channels, users and emoji phases.
    assert.deepEqual(clock.sleeps, [2500, 500, 500, 500, 500]);
    assert.ok(messages.includes("Initial jitter: sleeping for 2.50 s"));
    assert.equal(messages.filter((m) => m === "Step jitter: sleeping for 0.50 s").length, 4);
  });
});
