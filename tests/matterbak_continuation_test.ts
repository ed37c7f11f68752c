/**
 * A data dir written by the original Python matterbak is continued in place: its local-time
 * post names are kept, posts are found by id on this and later runs, the watermark comes from
 * the stored posts, and no history is fetched again.
 */
import assert from "node:assert/strict";
import { listFiles, readJsonFile, startGenerated } from "./harness.ts";
import { writeMatterbakChannel } from "./matterbak_fixture.ts";
import type { Channel } from "./simulator/world.ts";

Deno.test("a matterbak data dir is continued in place without fetching history again", async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 300,
    dms: 0,
    gms: 0,
  }, { channels: { teams: { "team-0": { include: ["town-square"] } } } });
  const team = [...world.teams.values()][0];
  const channel = [...world.channels.values()].find((c) => c.name === "town-square") as Channel;
  try {
    const folder = `${h.dataDir}/teams/${team?.id}__team-0/${channel.id}__town-square`;
    await writeMatterbakChannel(world, channel, folder);
    const before = await listFiles(folder);
    const posts = world.channelPosts(channel.id).filter((p) =>
      p.delete_at === 0 && p.root_id === ""
    );
    const edited = posts[10];
    assert.ok(edited);

    world.advance(3600_000);
    const fresh = world.addPost({
      channelId: channel.id,
      userId: me.id,
      message: "after matterbak",
    });
    world.editPost(edited.id, "edited after matterbak");

    const result = await h.run(["--skip-users", "--skip-emojis"]);
    assert.equal(result.status, 0, result.err.join("\n"));
    const after = await listFiles(folder);
    assert.ok(
      before.every((path) => after.includes(path)),
      "matterbak's files stay under their names",
    );
    // Besides edit histories (the edit below, and earlier edits the changes show), only the new
    // post is added.
    const added = after.filter((path) => !before.includes(path) && !path.startsWith("history/"));
    assert.equal(added.length, 1, `only the new post is added: ${added}`);
    assert.ok(after.includes(`history/${edited.id}.json`), "the version matterbak had is kept");
    assert.match(added[0] as string, new RegExp(`^\\d{8}-\\d{12}__${fresh.id}\\.json$`));
    const editedFile = before.find((p) => p.endsWith(`__${edited.id}.json`)) as string;
    assert.equal((await readJsonFile(`${folder}/${editedFile}`)).message, "edited after matterbak");
    const threads = await readJsonFile<Record<string, string[]>>(`${folder}__threads.json`);
    assert.ok(Object.keys(threads).length > 0);

    const postRequests = h.sim.requests.filter((r) =>
      r.path.endsWith(`/channels/${channel.id}/posts`)
    );
    assert.ok(postRequests.every((r) => !/before=/.test(r.query)), "no history crawl");
    assert.ok(
      postRequests.some((r) => /since=/.test(r.query)),
      "changes since the newest stored post",
    );
    assert.ok(
      !h.sim.requests.some((r) => r.path.startsWith("/api/v4/files/")),
      "no attachment fetched again",
    );
    const state = await readJsonFile(`${h.dataDir}/.matterbak/channels/${channel.id}.json`);
    assert.equal(state.historyComplete, true);

    // Later runs still find matterbak's posts under their local-time names.
    const editedLater = posts[20];
    assert.ok(editedLater);
    world.advance(3600_000);
    world.editPost(editedLater.id, "edited on a later run");
    const second = await h.run(["--skip-users", "--skip-emojis"]);
    assert.equal(second.status, 0, second.err.join("\n"));
    assert.deepEqual(
      await listFiles(folder),
      [...after, `history/${editedLater.id}.json`].sort(),
      "no file added or renamed but the edit's history",
    );
    const laterFile = before.find((p) => p.endsWith(`__${editedLater.id}.json`)) as string;
    assert.equal((await readJsonFile(`${folder}/${laterFile}`)).message, "edited on a later run");
  } finally {
    await h.close();
  }
});
