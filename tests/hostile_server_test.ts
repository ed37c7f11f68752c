/**
 * Whole runs against a hostile server (or a proxy in front of it): redirects that would take
 * the credentials elsewhere or read local files, answers that trickle, records the real server
 * never sends, pages over the size cap. Each ends with its exit status, a one-line message, and
 * nothing written outside the run's temporary folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { configure, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import { type Harness, harnessFor, listFiles, readJsonFile, startHarness } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { FaultPlan } from "./simulator/server.ts";
import { type Channel, World } from "./simulator/world.ts";
import { teamChannels } from "./expected_backup.ts";

configure({ useWebWorkers: false });

/** A server elsewhere that records whatever reaches it (nothing should). */
function otherServer() {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.push(`${req.method} ${new URL(req.url).pathname} ${await req.text()}`);
    return new Response("{}", { headers: { "Content-Type": "application/json" } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

/** One line, no stack trace, matching `pattern`. */
function assertOneLineError(err: string[], pattern: RegExp): void {
  assert.equal(err.filter((line) => line.startsWith("error: ")).length, 1, err.join("\n"));
  assert.match(err.join("\n"), pattern);
  assert.ok(!err.some((line) => /^\s+at /.test(line)), "no stack trace");
}

/** The run's folder holds only what a run may write there. */
async function assertOnlyRunFiles(h: Harness, extra: string[] = []): Promise<void> {
  const names = (await Array.fromAsync(Deno.readDir(h.dir))).map((e) => e.name).sort();
  const allowed = new Set(["credentials.json", "channels.json", "data", "backup.zip", ...extra]);
  assert.deepEqual(names.filter((name) => !allowed.has(name)), [], `unexpected: ${names}`);
}

async function zipText(path: string): Promise<string> {
  const reader = new ZipReader((await Deno.open(path)).readable);
  const parts: string[] = [];
  for (const entry of await reader.getEntries()) {
    parts.push(entry.filename);
    if (!entry.directory) {
      parts.push(new TextDecoder().decode(await entry.getData(new Uint8ArrayWriter())));
    }
  }
  await reader.close();
  return parts.join("\n");
}

const small = { teams: 1, channelsPerTeam: 2, postsPerChannel: 30, dms: 0, gms: 0 };

Deno.test("a login redirected to another server stops the run: the password goes nowhere", async () => {
  const { world, me, password } = generateWorld(small);
  const other = otherServer();
  const faults: FaultPlan = (req) =>
    req.path === "/api/v4/users/login"
      ? {
        kind: "status",
        status: 307,
        body: "",
        headers: { Location: `${other.url}/api/v4/users/login` },
      }
      : undefined;
  const h = await startHarness({
    world,
    faults,
    credentials: { user: me.username, password },
    channels: { teams: { "team-0": {} } },
  });
  try {
    const result = await h.run(["--retries", "0"]);
    assert.equal(result.status, 5);
    assertOneLineError(
      result.err,
      new RegExp(`redirected login of alice to another server, ${other.url}; stopping`),
    );
    assert.deepEqual(other.seen, []);
    assert.ok(![...result.out, ...result.err].join("\n").includes(password));
    assert.deepEqual(h.sim.requests.map((r) => r.path), ["/api/v4/users/login"]);
    await assertOnlyRunFiles(h);
  } finally {
    await h.close();
    await other.close();
  }
});

Deno.test("a picture redirected to another server stops the run before anything goes there", async () => {
  const { world, me, token } = generateWorld(small);
  const other = otherServer();
  const faults: FaultPlan = (req) =>
    req.path.endsWith("/image")
      ? { kind: "status", status: 302, body: "", headers: { Location: `${other.url}/a.png` } }
      : undefined;
  const h = await harnessFor({ world, me, token }, { faults });
  try {
    const result = await h.run(["--skip-emojis"]);
    assert.equal(result.status, 5);
    assertOneLineError(
      result.err,
      /redirected (picture of user|icon of team) .* to another server/,
    );
    assert.deepEqual(other.seen, []);
    await assertOnlyRunFiles(h);
  } finally {
    await h.close();
    await other.close();
  }
});

Deno.test("redirects to file: and data: URLs are failed items, never read; the rest is backed up", async () => {
  const { world, me, token } = generateWorld(small);
  const victimDir = await Deno.makeTempDir({ prefix: "matterbak-victim-" });
  const victim = `${victimDir}/victim.txt`;
  await Deno.writeTextFile(victim, "the content of a local file that must stay local");
  const bob = world.userByName("bob");
  const faults: FaultPlan = (req) => {
    if (req.path === `/api/v4/users/${bob?.id}/image`) {
      return { kind: "status", status: 302, body: "", headers: { Location: `file://${victim}` } };
    }
    if (req.path.startsWith("/api/v4/emoji/") && req.path.endsWith("/image")) {
      const location = `data:image/png;base64,${btoa("x".repeat(64))}`;
      return { kind: "status", status: 302, body: "", headers: { Location: location } };
    }
    return undefined;
  };
  const h = await harnessFor({ world, me, token }, { faults });
  try {
    const report = `${h.dir}/report.json`;
    const result = await h.run(["--report", report]);
    assert.equal(result.status, 3, result.err.join("\n"));
    assert.match(result.err.join("\n"), /picture of user bob: .* redirected it to a file: URL/);
    assert.match(result.err.join("\n"), /image of emoji \S+: .* redirected it to a data: URL/);
    const failures = (await readJsonFile<{ failures: unknown[] }>(report)).failures;
    assert.equal(failures.length, 4, "bob's picture and three emoji images");
    const files = await listFiles(h.dataDir);
    assert.ok(files.filter((f) => /__\w+\.json$/.test(f)).length > 30, "the posts are there");
    for (
      const text of [
        await zipText(h.zipPath),
        ...await Promise.all(
          files.map((f) => Deno.readTextFile(`${h.dataDir}/${f}`).catch(() => "")),
        ),
      ]
    ) {
      assert.ok(!text.includes("must stay local"));
    }
    assert.ok(!files.some((f) => f.startsWith(`users/${bob?.id}__bob__image`)));
    assert.equal(
      await Deno.readTextFile(victim),
      "the content of a local file that must stay local",
    );
    await assertOnlyRunFiles(h, ["report.json"]);
  } finally {
    await h.close();
    await Deno.remove(victimDir, { recursive: true });
  }
});

Deno.test("a server that trickles its answers cannot hang the run", async () => {
  const { world, me, token } = generateWorld(small);
  const slow = teamChannels(world, me.id)[0] as Channel;
  // One byte every 100 ms: never silent for a second, and hours for a page.
  const faults: FaultPlan = (req) =>
    req.path === `/api/v4/channels/${slow.id}/posts`
      ? { kind: "slowBody", chunkBytes: 1, delayMs: 100 }
      : undefined;
  const h = await harnessFor({ world, me, token }, { faults });
  try {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<"hung">((resolve) =>
      timer = setTimeout(() => resolve("hung"), 20_000)
    );
    const result = await Promise.race([
      h.run(["--timeout", "1", "--retries", "0", "--skip-users", "--skip-emojis"]),
      limit,
    ]);
    clearTimeout(timer);
    assert.notEqual(result, "hung", "the run did not end within 20 s");
    if (result === "hung") return;
    assert.equal(result.status, 3, result.err.join("\n"));
    assert.match(
      result.err.join("\n"),
      new RegExp(`channel team-0/${slow.name}: .*no complete answer within 1 s`),
    );
    assert.ok(performance.now() - started < 10_000);
  } finally {
    await h.close();
  }
});

Deno.test("a team named like its own icon file gets a folder of its own: both are backed up, run after run", async () => {
  const world = new World();
  const me = world.addUser({ username: "alice" });
  const icon = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
  const team = world.addTeam({ name: "icon.png", icon });
  const channel = world.addChannel({ teamId: team.id, name: "general", type: "O" });
  world.addTeamMember(team.id, me.id);
  world.addChannelMember(channel.id, me.id);
  world.addPost({ channelId: channel.id, userId: me.id, message: "hello" });
  const h = await startHarness({
    world,
    credentials: { user: "alice", token: world.addPersonalAccessToken(me.id) },
    channels: { teams: { "icon.png": {} } },
  });
  try {
    for (const run of [1, 2]) {
      const result = await h.run();
      assert.equal(result.status, 0, `run ${run}: ${result.err.join("\n")}`);
    }
    assert.deepEqual(await Deno.readFile(join(h.dataDir, "teams", `${team.id}__icon.png`)), icon);
    const files = await listFiles(h.dataDir);
    assert.ok(
      files.some((p) => p.startsWith(`teams/${team.id}__icon.png_/${channel.id}__general/`)),
      files.join("\n"),
    );
  } finally {
    await h.close();
  }
});

Deno.test("one malformed record is left out and reported; its channel and the run go on", async () => {
  const { world, me, token } = generateWorld({ ...small, channelsPerTeam: 1, postsPerChannel: 60 });
  const channel = teamChannels(world, me.id)[0] as Channel;
  const bob = world.userByName("bob");
  type Posts = { order: string[]; posts: Record<string, Record<string, unknown>> };
  const broken: Record<string, string> = {};
  const faults: FaultPlan = (req) => {
    if (req.path === `/api/v4/channels/${channel.id}/posts` && req.attempt === 1) {
      return {
        kind: "rewrite",
        edit: (value) => {
          const list = value as Posts;
          const [a, b, c, d] = list.order.slice(1, 5).map((id) => list.posts[id]);
          broken.reaction = String(a?.id);
          a!.metadata = { ...(a!.metadata as object), reactions: [null] };
          broken.badId = String(b?.id);
          b!.id = "not-an-id";
          broken.fileSize = String(c?.id);
          c!.metadata = { files: [{ id: "f".repeat(26), name: "x.bin", size: -1 }] };
          broken.time = String(d?.id);
          d!.create_at = 1e20;
          return list;
        },
      };
    }
    if (req.path === "/api/v4/users/ids") {
      return {
        kind: "rewrite",
        edit: (value) =>
          (value as Array<Record<string, unknown>>).map((u) =>
            u.id === bob?.id ? { ...u, id: null } : u
          ),
      };
    }
    return undefined;
  };
  const h = await harnessFor({ world, me, token }, { faults });
  try {
    const report = `${h.dir}/report.json`;
    const result = await h.run(["--report", report, "--skip-emojis"]);
    assert.equal(result.status, 3, result.err.join("\n"));
    const failures = (await readJsonFile<{ failures: Array<{ what: string; why: string }> }>(
      report,
    )).failures;
    const whats = failures.map((f) => f.what).join("\n");
    assert.match(
      whats,
      new RegExp(`post ${broken.badId} in posts of channel team-0/${channel.name}`),
    );
    assert.match(whats, new RegExp(`post ${broken.time} in posts of channel`));
    assert.match(whats, new RegExp(`the reactions of post ${broken.reaction}`));
    assert.match(whats, new RegExp(`the files of post ${broken.fileSize}`));
    assert.match(whats, /record #\d+ in \d+ user record\(s\)/);
    assert.ok(failures.every((f) => f.why.startsWith("malformed record left out")));
    assert.equal(failures.length, 5, whats);

    const files = await listFiles(h.dataDir);
    const posts = files.filter((f) => f.includes(`/${channel.id}__`) && /\d{8}-\d{12}__/.test(f));
    const live = world.channelPosts(channel.id).filter((p) => p.delete_at === 0).length;
    assert.equal(posts.length, live - 2, "all but the post with a bad id and the bad time");
    assert.ok(!files.some((f) => f.includes("NaN")));
    for (const id of [broken.reaction, broken.fileSize]) {
      assert.ok(posts.some((f) => f.endsWith(`__${id}.json`)), `post ${id} is kept`);
    }
    const users = files.filter((f) => /^users\/\w+__[\w-]+\.json$/.test(f));
    assert.ok(users.length > 3, "the other users are stored");
    assert.ok(!users.some((f) => f.includes("__bob.json")));
  } finally {
    await h.close();
  }
});

Deno.test("a page over the size cap comes in smaller pages; changes over it are crawled", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 0,
    dms: 0,
    gms: 0,
  });
  const channel = teamChannels(world, me.id)[0] as Channel;
  // The longest message the server takes (16,383 runes), in 4-byte characters: 64 kB a post,
  // 13 MB for a page of 200.
  const longest = "😀".repeat(16_383);
  const ids: string[] = [];
  for (let i = 0; i < 250; i++) {
    ids.push(world.addPost({ channelId: channel.id, userId: me.id, message: longest }).id);
  }
  const h = await harnessFor({ world, me, token }, {
    baseArgs: ["--rate-limit", "0", "--skip-users", "--skip-emojis"],
  });
  try {
    const first = await h.run();
    assert.equal(first.status, 0, first.err.join("\n"));
    const pages = h.sim.requests.filter((r) => r.path.endsWith(`/channels/${channel.id}/posts`));
    assert.ok(pages.some((r) => r.query.includes("per_page=100")), "asked again in halves");
    const stored = (await listFiles(h.dataDir)).filter((f) => /\d{8}-\d{12}__/.test(f));
    assert.equal(stored.length, 250);

    // 150 edits since the last run: too large for one `since` answer.
    for (const id of ids.slice(0, 150)) world.editPost(id, `${longest}!`);
    h.sim.resetStats();
    const second = await h.run();
    assert.equal(second.status, 0, second.err.join("\n"));
    const queries = h.sim.requests.map((r) => r.query);
    const since = queries.findIndex((q) => q.includes("since="));
    assert.ok(since >= 0, "the changes were asked for first");
    assert.ok(queries.slice(since).some((q) => q.includes("per_page=200")), "then crawled");
    const edited = await readJsonFile<{ message: string }>(
      `${h.dataDir}/${stored.find((f) => f.endsWith(`__${ids[0]}.json`))}`,
    );
    assert.equal(edited.message, `${longest}!`);
  } finally {
    await h.close();
  }
});

Deno.test("a stored post the server now sends malformed is never marked deleted by a re-crawl", async () => {
  const { world, me, token } = generateWorld({ ...small, channelsPerTeam: 1, postsPerChannel: 40 });
  const channel = teamChannels(world, me.id)[0] as Channel;
  let garble: string | undefined;
  const faults: FaultPlan = (req) =>
    garble && req.path === `/api/v4/channels/${channel.id}/posts`
      ? {
        kind: "rewrite",
        edit: (value) => {
          const post = (value as { posts: Record<string, Record<string, unknown>> }).posts[
            garble as string
          ];
          if (post) post.update_at = "soon";
          return value;
        },
      }
      : undefined;
  const h = await harnessFor({ world, me, token }, {
    faults,
    baseArgs: ["--rate-limit", "0", "--skip-users", "--skip-emojis"],
  });
  try {
    assert.equal((await h.run()).status, 0);
    const live = world.channelPosts(channel.id).find((p) => p.delete_at === 0);
    garble = live?.id;
    const recrawl = await h.run(["--update-old-posts"]);
    assert.equal(recrawl.status, 3, recrawl.err.join("\n"));
    assert.match(recrawl.err.join("\n"), new RegExp(`post ${garble} in posts of channel`));
    const file = (await listFiles(h.dataDir)).find((f) => f.endsWith(`__${garble}.json`));
    const stored = await readJsonFile<{ delete_at: number }>(`${h.dataDir}/${file}`);
    assert.equal(stored.delete_at, 0, "still a live post");
    assert.match(recrawl.out.join("\n"), /posts 0 new, 0 file/);
  } finally {
    await h.close();
  }
});
