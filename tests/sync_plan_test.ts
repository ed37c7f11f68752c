import assert from "node:assert/strict";
import type { Post } from "../lib/model/records.ts";
import type { ChannelState } from "../lib/store/state.ts";
import {
  asksEditHistory,
  crawlWatermark,
  cursorProblem,
  displacedVersions,
  FirstCrawl,
  isHistoryCopy,
  isLastPage,
  markDeleted,
  mergePost,
  nextCursor,
  planChannel,
  postsToFetch,
  SINCE_OVERLAP_MS,
  sinceFor,
} from "../lib/sync/sync_plan.ts";

function post(id: string, fields: Partial<Post> = {}): Post {
  return {
    id,
    create_at: 1000,
    update_at: 1000,
    delete_at: 0,
    user_id: "u",
    channel_id: "c",
    root_id: "",
    message: `text of ${id}`,
    ...fields,
  };
}

const state = (fields: Partial<ChannelState>): ChannelState => ({
  version: 1,
  channelId: "c",
  dir: "direct/c__x",
  historyComplete: true,
  watermark: 5000,
  pendingFiles: [],
  ...fields,
});

Deno.test("planChannel: new, resumed, incremental, matterbak-made and forced channels", () => {
  const none = { updateOldPosts: false, storedWatermark: undefined };
  assert.deepEqual(planChannel(undefined, none), { kind: "crawl", reason: "new" });
  assert.deepEqual(planChannel(undefined, { updateOldPosts: false, storedWatermark: 42 }), {
    kind: "incremental",
    watermark: 42,
    etag: undefined,
  });
  assert.deepEqual(planChannel(state({ historyComplete: false, cursor: "p1" }), none), {
    kind: "resume",
    cursor: "p1",
    watermark: 5000,
  });
  assert.deepEqual(planChannel(state({ historyComplete: false }), none), {
    kind: "crawl",
    reason: "new",
  });
  assert.deepEqual(planChannel(state({ etag: "e" }), none), {
    kind: "incremental",
    watermark: 5000,
    etag: "e",
  });
  assert.deepEqual(planChannel(state({}), { updateOldPosts: true, storedWatermark: undefined }), {
    kind: "crawl",
    reason: "update-old-posts",
  });
  // Stored posts beside a damaged state are not adopted: that state may have been a crawl's.
  assert.deepEqual(
    planChannel(undefined, { updateOldPosts: false, storedWatermark: 42, damagedState: true }),
    { kind: "crawl", reason: "damaged-state" },
  );
});

Deno.test("since asks again for the overlap before the watermark, never below 1", () => {
  assert.equal(sinceFor(10 * SINCE_OVERLAP_MS), 9 * SINCE_OVERLAP_MS);
  // since=0 is the server's newest page, not a change query.
  assert.equal(sinceFor(5), 1);
  assert.equal(sinceFor(0), 1);
});

Deno.test("planChannel: a channel without a watermark is crawled, never asked for changes", () => {
  const none = { updateOldPosts: false, storedWatermark: undefined };
  assert.deepEqual(planChannel(state({ watermark: 0, etag: "e" }), none), {
    kind: "crawl",
    reason: "no-watermark",
  });
  assert.deepEqual(planChannel(undefined, { updateOldPosts: false, storedWatermark: 0 }), {
    kind: "crawl",
    reason: "no-watermark",
  });
});

Deno.test("a deletion keeps the stored content and records delete_at", () => {
  const stored = post("a", { message: "hello", update_at: 1000 });
  const tombstone = post("a", { message: "", delete_at: 3000, update_at: 3000, metadata: {} });
  assert.deepEqual(mergePost(stored, tombstone), { ...stored, delete_at: 3000, update_at: 3000 });
  assert.equal(mergePost(undefined, tombstone), undefined);
  const alreadyDeleted = { ...stored, delete_at: 2000 };
  assert.equal(mergePost(alreadyDeleted, tombstone), alreadyDeleted);
});

Deno.test("an edit replaces the stored post; an older copy never does", () => {
  const stored = post("a", { message: "old", update_at: 1000 });
  const edited = post("a", { message: "new", update_at: 2000, edit_at: 2000 });
  assert.equal(mergePost(stored, edited), edited);
  assert.equal(mergePost(edited, stored), edited);
});

Deno.test("hidden edit-history copies are recognised", () => {
  assert.ok(isHistoryCopy(post("h", { delete_at: 5, original_id: "a" })));
  assert.ok(!isHistoryCopy(post("h", { delete_at: 5, original_id: "" })));
  assert.ok(!isHistoryCopy(post("h", { original_id: "a" })));
});

Deno.test("an edit displaces the stored version into the history; a deletion after an unseen edit records that edit", () => {
  const stored = post("a", { message: "v0", edit_at: 0, update_at: 1000 });
  const edited = post("a", { message: "v1", edit_at: 2000, update_at: 2000 });
  assert.deepEqual(displacedVersions(stored, edited), [{ from: "backup", post: stored }]);
  assert.deepEqual(displacedVersions(undefined, edited), [], "nothing was stored");
  assert.deepEqual(displacedVersions(edited, edited), [], "the same version");
  assert.deepEqual(displacedVersions(edited, stored), [], "an older copy");
  const reacted = post("a", { message: "v0", edit_at: 0, update_at: 3000 });
  assert.deepEqual(displacedVersions(stored, reacted), [], "a reaction is no edit");
  const tombstone = post("a", { message: "", edit_at: 2000, update_at: 4000, delete_at: 4000 });
  assert.deepEqual(displacedVersions(stored, tombstone), [{ from: "changes", post: tombstone }]);
  const deleted = { ...stored, delete_at: 4000 };
  assert.deepEqual(displacedVersions(deleted, edited), [], "a deleted post keeps its last text");
});

Deno.test("the edit history is asked for the user's own live edited posts, once per edit", () => {
  const mine = post("a", { user_id: "me", edit_at: 2000 });
  assert.equal(asksEditHistory(mine, "me", undefined), true, "never asked");
  assert.equal(asksEditHistory(mine, "me", 1000), true, "asked before its latest edit");
  assert.equal(asksEditHistory(mine, "me", 2000), false, "asked since its latest edit");
  assert.equal(asksEditHistory(mine, "other", undefined), false, "someone else's post");
  assert.equal(asksEditHistory(post("a", { user_id: "me" }), "me", undefined), false, "unedited");
  assert.equal(
    asksEditHistory({ ...mine, delete_at: 5000 }, "me", undefined),
    false,
    "deleted: the server refuses",
  );
});

Deno.test("markDeleted keeps an earlier deletion time", () => {
  assert.equal(markDeleted(post("a"), 9).delete_at, 9);
  assert.equal(markDeleted(post("a", { delete_at: 3 }), 9).delete_at, 3);
});

Deno.test("the next cursor repeats the page's oldest millisecond so no post is skipped", () => {
  const posts = {
    a: post("a", { create_at: 30 }),
    b: post("b", { create_at: 20 }),
    c: post("c", { create_at: 10 }),
    d: post("d", { create_at: 10 }),
  };
  assert.equal(nextCursor(["a", "b", "c", "d"], posts), "b");
  assert.equal(nextCursor(["a", "b", "c"], posts), "b");
  assert.equal(nextCursor(["a", "b"], posts), "a");
  assert.equal(
    nextCursor(["c", "d"], posts),
    "d",
    "a page of one millisecond falls back to its last post",
  );
  assert.equal(nextCursor([], posts), undefined);
});

Deno.test("a full page ends the history only when the next one says so, whatever prev_post_id", () => {
  assert.equal(isLastPage({ listed: 0, prev_post_id: "" }, 200), true);
  assert.equal(isLastPage({ listed: 150, prev_post_id: "" }, 200), true);
  // A strict create_at < query leaves prev_post_id empty when older posts share the last ms.
  assert.equal(isLastPage({ listed: 200, prev_post_id: "" }, 200), false);
  assert.equal(isLastPage({ listed: 200, prev_post_id: "p" }, 200), false);
  // A server with a smaller page cap still pages on prev_post_id.
  assert.equal(isLastPage({ listed: 60, prev_post_id: "p" }, 200), false);
  // A page asked with fewer posts (one over the size cap) is full at that size.
  assert.equal(isLastPage({ listed: 50, prev_post_id: "" }, 50), false);
});

Deno.test("a crawl's watermark is safe against posts edited while it ran", () => {
  assert.equal(crawlWatermark(1000, 5000, 10_000), 1000);
  assert.equal(crawlWatermark(1000, 50_000, 10_000), 40_000);
  assert.equal(crawlWatermark(0, 0, 10), 0);
});

Deno.test("posts to fetch: the server's count less the posts stored; all of them for a re-crawl", () => {
  const channel = { id: "c", team_id: "t", type: "O", name: "c", display_name: "c", delete_at: 0 };
  const counted = { ...channel, total_msg_count: 2400 };
  const update = { kind: "incremental", watermark: 5, etag: undefined } as const;
  const resume = { kind: "resume", cursor: "x", watermark: 5 } as const;
  assert.equal(postsToFetch(counted, 0, { kind: "crawl", reason: "new" }), 2400);
  assert.equal(postsToFetch(counted, 2401, update), 0);
  assert.equal(postsToFetch(counted, 2000, update), 400);
  assert.equal(postsToFetch(counted, 2000, resume), 400);
  for (const reason of ["update-old-posts", "damaged-state"] as const) {
    assert.equal(postsToFetch(counted, 2000, { kind: "crawl", reason }), 2400, reason);
  }
  assert.equal(postsToFetch(channel, 10, update), 0, "a server that sends no count");
});

Deno.test("a first crawl knows which posts are not stored yet, roots sent ahead of their page included", () => {
  const first = new FirstCrawl();
  const page = (order: Post[], extra: Post[] = []) => ({
    order: order.map((p) => p.id),
    posts: Object.fromEntries([...order, ...extra].map((p) => [p.id, p])),
  });
  const reply = post("reply", { create_at: 900, root_id: "root" });
  const root = post("root", { create_at: 100 });
  const newest = post("newest", { create_at: 950 });
  // Nothing is stored before the first page.
  assert.equal(first.mayHold(newest), false);
  assert.equal(first.mayHold(root), false);
  first.stored(page([newest, reply], [root]), [newest, reply, root]);
  // Pages go strictly older: what is as new as the crawl's place may be stored, and so is the
  // root that came along, far older than the page.
  assert.equal(first.mayHold(post("same-ms", { create_at: 900 })), true);
  assert.equal(first.mayHold(root), true);
  assert.equal(first.mayHold(post("older", { create_at: 500 })), false);
  // A root the server sent that was not written (another channel's) is not taken as stored.
  first.stored(page([post("p400", { create_at: 400 })]), [undefined]);
  assert.equal(first.mayHold(post("p300", { create_at: 300 })), false);
  assert.equal(first.mayHold(root), true, "still ahead of the crawl");
  // Once the crawl has passed the root, it is as new as the crawl's place.
  first.stored(page([post("p50", { create_at: 50 })]), [post("p50", { create_at: 50 })]);
  assert.equal(first.mayHold(root), true);
  assert.equal(first.mayHold(post("p40", { create_at: 40 })), false);
  // Attachment records: only those written.
  assert.equal(first.mayHoldInfo("f1"), false);
  first.storedInfo("f1");
  assert.equal(first.mayHoldInfo("f1"), true);
});

Deno.test("the crawl's cursor must move to strictly older posts: a repeat or a newer one is refused", () => {
  const a = "a".repeat(26);
  const b = "b".repeat(26);
  assert.equal(cursorProblem({ id: a, at: 2000 }, { id: b, at: 1999 }), undefined);
  // Unknown times (a state from before cursorAt was kept): only a repeat is seen.
  assert.equal(cursorProblem({ id: a, at: undefined }, { id: b, at: 5000 }), undefined);
  assert.match(
    cursorProblem({ id: a, at: undefined }, { id: a, at: 2000 }) ?? "",
    new RegExp(`starts again before post ${a}`),
  );
  assert.match(
    cursorProblem({ id: a, at: 2000 }, { id: b, at: 2000 }) ?? "",
    new RegExp(
      `the page before post ${a} \\(1970-01-01T00:00:02.000Z\\) leads to post ${b} .*not older`,
    ),
  );
  assert.match(cursorProblem({ id: a, at: 2000 }, { id: b, at: 2001 }) ?? "", /not older/);
});
