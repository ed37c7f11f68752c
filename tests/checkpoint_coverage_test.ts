/**
 * A checkpoint vouches for posts by what it says, not by the order of the steps before it: a
 * channel's state with a crawl's place (`cursorAt`) says every post newer than that place is
 * stored, a finished one (`historyComplete`) says all are. Checked against the simulated
 * server's posts: each such post was renamed into place, and its folder synced, before the
 * state was written. (tests/durability_test.ts checks the order of what was written; this
 * checks that nothing a state claims is missing from that order, or still under way.) Posts
 * written outside a page's batch (marked deleted by a re-crawl) have their folder synced by the
 * checkpoint itself.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import type { FsStep } from "../lib/store/atomic_write.ts";
import { postFileName } from "../lib/store/layout.ts";
import type { ChannelState } from "../lib/store/state.ts";
import { channelFolder, teamChannels } from "./expected_backup.ts";
import { withOneChannel } from "./harness.ts";
import type { Channel, PostRecord } from "./simulator/world.ts";

Deno.test("each checkpoint of a first backup comes after every post it says is stored is durable", async () => {
  // More than 25 pages in one channel: a checkpoint mid-crawl, and the last one.
  await withOneChannel(5300, async ({ h, world, me }) => {
    const steps: FsStep[] = [];
    await h.runInProcess({ fsRecorder: (step) => void steps.push(step) }, [
      "--skip-users",
      "--skip-emojis",
    ]);
    const renamed = new Map<string, number>();
    const dirSynced = new Map<string, number>();
    let checked = 0, midCrawl = 0;
    for (const [at, step] of steps.entries()) {
      if (step.op === "rename") renamed.set(step.to, at);
      if (step.op === "syncDir") dirSynced.set(step.path, at);
      if (step.op !== "checkpoint") continue;
      const state = step.state as Partial<ChannelState>;
      const channel = teamChannels(world, me.id).find((c) => c.id === state.channelId);
      if (!channel || (!state.historyComplete && state.cursorAt === undefined)) continue;
      if (!state.historyComplete) midCrawl++;
      const folder = join(h.dataDir, channelFolder(world, channel, me.id));
      const claimed = world.channelPosts(channel.id).filter((p) =>
        p.delete_at === 0 && p.original_id === "" &&
        (state.historyComplete || p.create_at > (state.cursorAt as number))
      );
      for (const post of claimed) {
        const path = join(folder, postFileName(post));
        const when = renamed.get(path);
        assert.ok(when !== undefined, `${step.path} claims ${path}, not yet in place`);
        assert.ok((dirSynced.get(dirname(path)) ?? -1) > when, `${path}: folder not synced`);
        checked++;
      }
    }
    assert.ok(midCrawl > 0, "a checkpoint mid-crawl was checked");
    assert.ok(checked > 5300, `${checked} claims checked`);
  });
});

Deno.test("a re-crawl that marks posts deleted syncs their folder before its checkpoint says so", async () => {
  await withOneChannel(300, async ({ h, world, me }) => {
    const args = ["--skip-users", "--skip-emojis"];
    await h.runInProcess({}, args);
    const channel = teamChannels(world, me.id)[0] as Channel;
    // Deleted where no change query of ours sees it: only a full re-crawl finds it gone.
    const gone = world.channelPosts(channel.id).find((p) =>
      p.delete_at === 0 && p.original_id === "" && p.root_id !== ""
    ) as PostRecord;
    world.deletePost(gone.id);
    const steps: FsStep[] = [];
    await h.runInProcess({ fsRecorder: (step) => void steps.push(step) }, [
      "--update-old-posts",
      ...args,
    ]);
    const path = join(h.dataDir, channelFolder(world, channel, me.id), postFileName(gone));
    const renamed = steps.findLastIndex((s) => s.op === "rename" && s.to === path);
    assert.ok(renamed >= 0, "the post was marked deleted");
    const checkpoint = steps.findLastIndex((s) =>
      s.op === "checkpoint" && (s.state as Partial<ChannelState>).channelId === channel.id
    );
    const synced = steps.findIndex((s, i) =>
      i > renamed && s.op === "syncDir" && s.path === dirname(path)
    );
    assert.ok(checkpoint > renamed, "a checkpoint after it");
    assert.ok(synced > renamed && synced < checkpoint, "its folder synced before the checkpoint");
  });
});
