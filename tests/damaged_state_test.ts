import assert from "node:assert/strict";
import { join } from "node:path";
import { InterruptedError } from "../lib/util/errors.ts";
import { assertRunCompletes, teamChannels } from "./expected_backup.ts";
import { startGenerated, startHarness } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { Channel } from "./simulator/world.ts";

/**
 * Our own state under `.matterbak/` can be rebuilt from the server and the stored posts, so a
 * damaged one is replaced by the next run, which completes with its zip.
 */
Deno.test("a truncated, empty or wrong .matterbak/state.json is rebuilt and the run completes with its zip", async () => {
  const { h } = await startGenerated({ teams: 1, channelsPerTeam: 2, postsPerChannel: 20 });
  try {
    assert.equal((await h.run()).status, 0);
    const statePath = join(h.dataDir, ".matterbak", "state.json");
    const good = JSON.parse(await Deno.readTextFile(statePath));
    assert.ok(good.usersWatermark > 0);
    for (const damage of ['{"version":1,"usersWat', "", '{"version":1,"usersWatermark":"x"}']) {
      await Deno.writeTextFile(statePath, damage);
      await Deno.remove(h.zipPath);
      const before = h.sim.requests.length;
      const result = await h.run();
      assert.deepEqual(result.err, [], JSON.stringify(damage));
      assert.equal(result.status, 0, JSON.stringify(damage));
      assert.ok((await Deno.stat(h.zipPath)).size > 0, "the zip is written");
      assert.deepEqual(JSON.parse(await Deno.readTextFile(statePath)), good);
      // Users are asked for again from a watermark of 0: no `since` of NaN or of a string.
      const usersCalls = h.sim.requests.slice(before).filter((r) => r.path === "/api/v4/users/ids");
      assert.ok(usersCalls.length > 0);
      assert.ok(
        usersCalls.every((r) => r.query === "" || r.query === "since=0"),
        JSON.stringify(usersCalls),
      );
    }
  } finally {
    await h.close();
  }
});

Deno.test("a channel state that is not valid JSON is treated as none and the channel stays complete", async () => {
  const { h, world } = await startGenerated({ teams: 1, channelsPerTeam: 1, postsPerChannel: 30 });
  try {
    assert.equal((await h.run()).status, 0);
    const channel = [...world.channels.values()].find((c) => c.type === "O") as { id: string };
    const statePath = join(h.dataDir, ".matterbak", "channels", `${channel.id}.json`);
    await Deno.writeTextFile(statePath, '{"version":1,"chan');
    const result = await h.run();
    assert.equal(result.status, 0);
    assert.equal(JSON.parse(await Deno.readTextFile(statePath)).channelId, channel.id);
  } finally {
    await h.close();
  }
});

Deno.test("the damaged state of an interrupted first crawl leads to a full crawl, not to adopting the half as complete", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 1500,
    dms: 0,
    gms: 0,
  });
  const stop = new AbortController();
  let pages = 0;
  const h = await startHarness({
    world,
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": {} } },
    faults: (req) => {
      if (/before=/.test(req.query) && ++pages === 2) stop.abort(new InterruptedError("SIGINT"));
      return undefined;
    },
  });
  try {
    await assert.rejects(
      h.runInProcess({ signal: stop.signal }, ["--skip-users", "--skip-emojis"]),
      InterruptedError,
    );
    const channel = teamChannels(world, me.id).find((c) => c.name === "town-square") as Channel;
    const statePath = join(h.dataDir, ".matterbak", "channels", `${channel.id}.json`);
    await Deno.writeTextFile(statePath, '{"version":1,"chan');
    await assertRunCompletes(h, me.id);
  } finally {
    await h.close();
  }
});

Deno.test("a state with values that must not reach the server is reported by name and the channel crawled again", async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 30,
  });
  try {
    const args = ["--skip-users", "--skip-emojis"];
    assert.equal((await h.run(args)).status, 0);
    const channel = teamChannels(world, me.id).find((c) => c.name === "town-square") as Channel;
    const statePath = join(h.dataDir, ".matterbak", "channels", `${channel.id}.json`);
    const good = JSON.parse(await Deno.readTextFile(statePath));
    const outside = join(h.dir, "x");
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ dir: "../../x" }, /"dir" "\.\.\/\.\.\/x" is not a folder inside the data dir/],
      [{ dir: 123 }, /"dir" 123 is not a folder inside the data dir/],
      [{ dir: "teams//x" }, /"dir" "teams\/\/x" is not a folder/],
      [{ watermark: "x" }, /"watermark" "x" is no time/],
      [{ cursor: "../x" }, /"cursor" "\.\.\/x" is no post id/],
      [{ cursorAt: "2023" }, /"cursorAt" "2023" is no time/],
      [{ posts: -1 }, /"posts" -1 is no count/],
      [{ pendingFiles: [null] }, /"pendingFiles" is not a list of attachments/],
      [
        { pendingHistory: [{ postId: "../../x", createAt: 1 }] },
        /"pendingHistory" is not a list of posts/,
      ],
      [{ channelId: "z".repeat(26) }, /it names channel/],
      [{ dir: "teams/x/y" }, /"dir" "teams\/x\/y" is not a folder of this channel/],
      [{ etag: "a\r\nX-Injected: 1" }, /"etag" is not a header value/],
    ];
    for (const [change, message] of cases) {
      await Deno.writeTextFile(statePath, JSON.stringify({ ...good, ...change }));
      const before = h.sim.requests.length;
      const result = await h.run(args);
      assert.equal(result.status, 0, JSON.stringify(change));
      const warning = result.err.find((line) => line.includes("cannot be used")) ?? "";
      assert.match(warning, new RegExp(`\\.matterbak/channels/${channel.id}\\.json`));
      assert.match(warning, message);
      const sent = h.sim.requests.slice(before).map((r) => r.query).join("&");
      assert.doesNotMatch(sent, /since=(NaN|x|-)|before=\.\./, JSON.stringify(change));
      for (const request of h.sim.requests.slice(before)) {
        if (!request.path.endsWith("/edit_history")) continue;
        assert.match(request.path, /^\/api\/v4\/posts\/[a-z0-9]{26}\/edit_history$/);
      }
      assert.deepEqual(JSON.parse(await Deno.readTextFile(statePath)).channelId, channel.id);
      assert.equal(JSON.parse(await Deno.readTextFile(statePath)).dir, good.dir);
      await assert.rejects(Deno.stat(outside), Deno.errors.NotFound);
    }
    await assertRunCompletes(h, me.id);
  } finally {
    await h.close();
  }
});

Deno.test("a state whose dir is another channel's folder is not used: nothing is written there", async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 20,
    dms: 0,
    gms: 0,
  });
  try {
    const args = ["--skip-users", "--skip-emojis"];
    assert.equal((await h.run(args)).status, 0);
    const [a, b] = teamChannels(world, me.id) as [Channel, Channel];
    const statePath = (c: Channel) => join(h.dataDir, ".matterbak", "channels", `${c.id}.json`);
    const stateB = JSON.parse(await Deno.readTextFile(statePath(b)));
    const stateA = JSON.parse(await Deno.readTextFile(statePath(a)));
    await Deno.writeTextFile(statePath(a), JSON.stringify({ ...stateA, dir: stateB.dir }));
    world.advance(60_000);
    world.addPost({ channelId: a.id, userId: me.id, message: "belongs to a, not to b" });
    const result = await h.run(args);
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.ok(
      result.err.some((line) => line.includes(`is not a folder of this channel`)),
      result.err.join("\n"),
    );
    const folderB = join(h.dataDir, ...String(stateB.dir).split("/"));
    for await (const entry of Deno.readDir(folderB)) {
      if (!entry.isFile) continue;
      const post = JSON.parse(await Deno.readTextFile(join(folderB, entry.name)));
      assert.equal(post.channel_id, b.id, `${entry.name} in ${b.name}'s folder`);
    }
    assert.equal(JSON.parse(await Deno.readTextFile(`${folderB}.json`)).id, b.id);
    await assertRunCompletes(h, me.id);
  } finally {
    await h.close();
  }
});
