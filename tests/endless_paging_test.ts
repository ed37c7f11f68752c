/**
 * A server (or a proxy in front of it) whose paging never ends: member and emoji lists that
 * always send a full page, a crawl whose `before` cursor does not move to older posts. Each
 * ends in a bounded number of requests with an error naming the list or channel and the
 * server; the rest of the run goes on (exit status 3, as for any failed channel).
 */
import assert from "node:assert/strict";
import { ApiClient } from "../lib/api/client.ts";
import { MattermostApi, MAX_LIST_PAGES, PAGE_SIZE } from "../lib/api/mattermost.ts";
import { ServerError } from "../lib/util/errors.ts";
import { harnessFor, listFiles, readJsonFile } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { FaultPlan } from "./simulator/server.ts";
import type { Channel } from "./simulator/world.ts";
import { teamChannels } from "./expected_backup.ts";

/** A Mattermost-like id, different for each `n`. */
const fakeId = (n: number) => `x${n.toString(36).padStart(25, "0")}`;

function jsonAnswer(value: unknown) {
  return {
    kind: "status" as const,
    status: 200,
    body: JSON.stringify(value),
    headers: { "content-type": "application/json" },
  };
}

/** Two channels of 450 posts (three pages each): `victim` meets the fault, `other` does not. */
function twoChannels() {
  const generated = generateWorld({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 450,
    dms: 0,
    gms: 0,
  });
  const [victim, other] = teamChannels(generated.world, generated.me.id) as [Channel, Channel];
  return { ...generated, victim, other };
}

interface Report {
  failures: Array<{ what: string; why: string }>;
}

/** The run's failures, and how many post files of `channel` it stored. */
async function outcome(h: { dir: string; dataDir: string }, channel: Channel) {
  const report = await readJsonFile<Report>(`${h.dir}/report.json`);
  const files = await listFiles(h.dataDir);
  const posts = files.filter((f) => f.includes(`/${channel.id}__`) && /\d{8}-\d{12}__/.test(f));
  return { failures: report.failures, posts: posts.length };
}

Deno.test("member and emoji lists that repeat a full page for ever end after two requests each, naming the list and the server", async () => {
  const { world, me, token, victim, other } = twoChannels();
  const counts = { members: 0, emoji: 0 };
  const members = Array.from({ length: PAGE_SIZE }, (_, i) => ({
    channel_id: victim.id,
    user_id: fakeId(i),
    roles: "channel_user",
  }));
  const emoji = Array.from({ length: PAGE_SIZE }, (_, i) => ({
    id: fakeId(i),
    creator_id: me.id,
    name: `e${i}`,
    create_at: 1,
    update_at: 1,
    delete_at: 0,
  }));
  // Every page the same full page: page=1, 2, ... never comes back short.
  const faults: FaultPlan = (req) => {
    if (req.path === `/api/v4/channels/${victim.id}/members`) {
      counts.members++;
      return jsonAnswer(members);
    }
    if (req.path === "/api/v4/emoji") {
      counts.emoji++;
      return jsonAnswer(emoji);
    }
    return undefined;
  };
  const h = await harnessFor({ world, me, token }, { faults });
  try {
    const result = await h.run(["--report", `${h.dir}/report.json`]);
    assert.equal(result.status, 3, result.err.join("\n"));
    assert.deepEqual(counts, { members: 2, emoji: 2 });
    const { failures, posts } = await outcome(h, other);
    const root = h.sim.url;
    const why = failures.map((f) => `${f.what}: ${f.why}`).join("\n");
    assert.match(
      why,
      new RegExp(
        `members of channel team-0/${victim.name}: ${RegExp.escape(root)} sent a full page 1 ` +
          `with no members not already on an earlier page`,
      ),
    );
    assert.match(why, new RegExp(`custom emoji.*${RegExp.escape(root)} sent a full page 1`));
    assert.equal(posts, world.channelPosts(other.id).filter((p) => p.delete_at === 0).length);
    assert.ok(!result.err.some((line) => /^\s+at /.test(line)), "no stack trace");
  } finally {
    await h.close();
  }
});

Deno.test("member and emoji lists of new ids without end stop at the page cap", async () => {
  let requests = 0;
  // Fresh ids on every page, as a server with endless members would send them.
  const fetchPages: typeof fetch = (input) => {
    const url = new URL(String(input));
    if (++requests > MAX_LIST_PAGES + 5) {
      throw new Error(`still paging after ${requests} requests`);
    }
    const page = Number(url.searchParams.get("page"));
    const items = Array.from({ length: PAGE_SIZE }, (_, i) => {
      const id = fakeId(page * PAGE_SIZE + i);
      return url.pathname.endsWith("/emoji")
        ? { id, creator_id: fakeId(0), name: `e${id}`, create_at: 1, update_at: 1, delete_at: 0 }
        : { channel_id: fakeId(0), user_id: id, roles: "channel_user" };
    });
    return Promise.resolve(Response.json(items));
  };
  const api = new MattermostApi(
    new ApiClient({
      serverUrl: "https://mm.example.org",
      rateLimit: 0,
      concurrency: 4,
      timeoutMs: 5000,
      retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
      credentials: { token: "tok-0123456789abcdef" },
      fetch: fetchPages,
    }),
  );
  for (
    const [what, list] of [
      ["members of channel x", () => api.channelMembers(fakeId(0), "x")],
      ["custom emoji list", () => api.emojis()],
    ] as const
  ) {
    requests = 0;
    await assert.rejects(list(), (error: unknown) => {
      assert.ok(error instanceof ServerError);
      assert.equal(
        error.message,
        `Malformed answer for ${what}: https://mm.example.org still sends full pages ` +
          `after ${MAX_LIST_PAGES} pages (${MAX_LIST_PAGES * PAGE_SIZE} ` +
          `${what.startsWith("members") ? "members" : "emoji"}), more than any server has; ` +
          `the list is not taken`,
      );
      return true;
    });
    assert.equal(requests, MAX_LIST_PAGES);
  }
});

/**
 * A fault for the victim's posts: the first page (no cursor) is answered normally and kept;
 * the `before` request numbered `replayAt` (1-based) and the next ones are answered with it.
 */
function replayFirstPage(channel: Channel, replayAt: number) {
  const state = { firstPage: undefined as unknown, befores: 0 };
  const faults: FaultPlan = (req) => {
    if (req.path !== `/api/v4/channels/${channel.id}/posts` || req.query.includes("since=")) {
      return undefined;
    }
    if (!req.query.includes("before=")) {
      return {
        kind: "rewrite",
        edit: (value) => {
          state.firstPage ??= structuredClone(value);
          return value;
        },
      };
    }
    state.befores++;
    // Twenty replays at most: a crawl that did not stop then goes on to its end (status 0), so
    // a regression fails the test instead of paging for ever.
    const replay = state.befores >= replayAt && state.befores < replayAt + 20;
    return replay && state.firstPage ? jsonAnswer(state.firstPage) : undefined;
  };
  return { state, faults };
}

for (
  const [replayAt, problem] of [
    [1, "the next page starts again before post \\w{26}"],
    [
      2,
      "the page before post \\w{26} \\([-\\d:.TZ]+\\) leads to post \\w{26} \\([-\\d:.TZ]+\\), which is not older",
    ],
  ] as const
) {
  Deno.test(`a crawl whose cursor ${replayAt === 1 ? "repeats" : "moves to newer posts"} fails that channel in ${replayAt + 1} requests, naming it and the server; the other channel is backed up`, async () => {
    const { world, me, token, victim, other } = twoChannels();
    const { state, faults } = replayFirstPage(victim, replayAt);
    const h = await harnessFor({ world, me, token }, { faults });
    try {
      const result = await h.run(["--report", `${h.dir}/report.json`, "--skip-emojis"]);
      assert.equal(result.status, 3, result.err.join("\n"));
      assert.equal(state.befores, replayAt, "no request after the page that did not move");
      const { failures, posts } = await outcome(h, other);
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.match(
        `${failures[0]?.what}: ${failures[0]?.why}`,
        new RegExp(
          `${RegExp.escape(h.sim.url)} does not page back in time through the posts of ` +
            `channel team-0/${victim.name}: ${problem}; its crawl stops here`,
        ),
      );
      assert.equal(posts, world.channelPosts(other.id).filter((p) => p.delete_at === 0).length);
    } finally {
      await h.close();
    }
  });
}
