import assert from "node:assert/strict";
import { join } from "node:path";
import { startGenerated } from "./harness.ts";

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
