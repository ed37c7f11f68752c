/** Whole runs against a flaky server still produce a complete, byte-exact backup. */
import assert from "node:assert/strict";
import { main } from "../lib/cli/main.ts";
import {
  assertBackupMatches,
  assertRunCompletes,
  expectedBackup,
  teamChannels,
} from "./expected_backup.ts";
import { harnessFor, listFiles, readJsonFile, startHarness } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { Fault, FaultPlan } from "./simulator/server.ts";
import type { Channel } from "./simulator/world.ts";

/** A deterministic hash of a request, to spread faults over about one in `every` requests. */
function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

Deno.test("5xx, 429 storms, cut-off downloads, broken JSON and stalls still give a byte-exact backup", async () => {
  const { world, me, token } = generateWorld({
    teams: 2,
    channelsPerTeam: 3,
    postsPerChannel: 300,
    filesEvery: 3,
    dms: 0,
    gms: 0,
  });
  const kinds: Fault[] = [
    { kind: "status", status: 500 },
    { kind: "status", status: 502, body: "<html><h1>502 Bad Gateway</h1></html>" },
    { kind: "status", status: 503 },
    { kind: "status", status: 429, body: "limit exceeded", headers: { "Retry-After": "0" } },
    { kind: "cutBody" },
    { kind: "invalidJson" },
    { kind: "slowBody", chunkBytes: 4, delayMs: 2500 },
  ];
  let injected = 0;
  const faults: FaultPlan = (req) => {
    const h = hash(`${req.path}?${req.query}`);
    // Two failures in a row for some requests: a retry of a retry must work too.
    if (req.attempt > 1 + (h % 2) || req.path.endsWith("/login") || h % 5 !== 0) return undefined;
    injected++;
    return kinds[h % kinds.length];
  };
  const h = await startHarness({
    world,
    faults,
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": {}, "team-1": {} } },
  });
  try {
    // A timeout the slow faults exceed (2.5 s between chunks), a loaded machine's answers not.
    const result = await h.run(["--timeout", "2", "--concurrency", "6"]);
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.ok(injected > 50, `${injected} faults injected`);
    // Each injected fault costs exactly one retry: none is given up on, none retried twice.
    const retries = Number(/(\d+) retr/.exec(result.out.join("\n"))?.[1]);
    assert.equal(retries, injected, `${retries} retries reported for ${injected} faults`);
    const expected = expectedBackup(world, { meId: me.id, channels: teamChannels(world, me.id) });
    await assertBackupMatches(h.dataDir, expected, await listFiles(h.dataDir));
  } finally {
    await h.close();
  }
});

Deno.test("an attachment that keeps failing is reported, the rest completes, and the next run fetches it", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 40,
    dms: 0,
    gms: 0,
  });
  const channel = teamChannels(world, me.id)[0] as Channel;
  const withFile = world.channelPosts(channel.id).find((p) =>
    p.delete_at === 0 && p.file_ids.length > 0
  );
  const fileId = withFile?.file_ids[0] as string;
  let broken = true;
  const faults: FaultPlan = (req) =>
    broken && req.path === `/api/v4/files/${fileId}` ? { kind: "status", status: 500 } : undefined;
  const h = await harnessFor({ world, me, token }, { faults });
  try {
    const first = await h.run(["--retries", "2", "--skip-users", "--skip-emojis"]);
    assert.equal(first.status, 3);
    const name = world.files.get(fileId)?.name as string;
    assert.ok(
      first.err.some((line) =>
        line.includes(`attachment "${name}" (${fileId})`) && line.includes("HTTP 500")
      ),
    );
    assert.equal(h.sim.requests.filter((r) => r.path === `/api/v4/files/${fileId}`).length, 3);
    const state = await readJsonFile<{ pendingFiles: { fileId: string }[] }>(
      `${h.dataDir}/.matterbak/channels/${channel.id}.json`,
    );
    assert.deepEqual(state.pendingFiles.map((p) => p.fileId), [fileId]);

    broken = false;
    await assertRunCompletes(h, me.id, { channels: [channel] });
  } finally {
    await h.close();
  }
});

/** A one-channel world backed up once by token, with `faults` on its simulator. */
async function backedUpChannel(faults: FaultPlan) {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 10,
    filesEvery: 0,
    dms: 0,
    gms: 0,
  });
  const channel = teamChannels(world, me.id)[0] as Channel;
  const h = await harnessFor({ world, me, token }, { faults });
  try {
    assert.equal((await h.run(SKIP_RECORDS)).status, 0);
  } catch (error) {
    await h.close();
    throw error;
  }
  return { h, world, me, channel };
}

const SKIP_RECORDS = ["--skip-users", "--skip-emojis"];

interface PendingState {
  pendingFiles: { fileId: string; notFoundRuns?: number }[];
}

for (const [how, args] of [["changes", []], ["a full re-crawl", ["--update-old-posts"]]] as const) {
  Deno.test(`a pending attachment whose post is deleted later is dropped by ${how}, not failed again`, async () => {
    let brokenFile: string | undefined;
    const { h, world, me, channel } = await backedUpChannel((req) =>
      req.path === `/api/v4/files/${brokenFile}` ? { kind: "status", status: 403 } : undefined
    );
    try {
      world.advance(60_000);
      const file = world.addFile({
        userId: me.id,
        channelId: channel.id,
        name: "gone.txt",
        bytes: new TextEncoder().encode("soon deleted"),
      });
      const post = world.addPost({ channelId: channel.id, userId: me.id, fileIds: [file.id] });
      brokenFile = file.id;
      assert.equal((await h.run(SKIP_RECORDS)).status, 3);
      const statePath = `${h.dataDir}/.matterbak/channels/${channel.id}.json`;
      assert.deepEqual(
        (await readJsonFile<PendingState>(statePath)).pendingFiles.map((p) => p.fileId),
        [file.id],
      );
      brokenFile = undefined;
      world.deletePost(post.id);
      h.sim.resetStats();
      const next = await h.run([...SKIP_RECORDS, ...args]);
      assert.equal(next.status, 0, next.err.join("\n"));
      assert.deepEqual(next.err, []);
      assert.deepEqual((await readJsonFile<PendingState>(statePath)).pendingFiles, []);
      assert.ok(!h.sim.requests.some((r) => r.path === `/api/v4/files/${file.id}`));
    } finally {
      await h.close();
    }
  });
}

/**
 * A backed-up channel that then gets a post whose attachment answers 404 with `body`, until
 * `heal()`; the path of the channel's state file.
 */
async function withUnreachableFile(body: string, name: string) {
  let missingFile: string | undefined;
  const { h, world, me, channel } = await backedUpChannel((req) =>
    req.path === `/api/v4/files/${missingFile}` ? { kind: "status", status: 404, body } : undefined
  );
  world.advance(60_000);
  const file = world.addFile({
    userId: me.id,
    channelId: channel.id,
    name,
    bytes: new TextEncoder().encode(`the bytes of ${name}`),
  });
  world.addPost({ channelId: channel.id, userId: me.id, fileIds: [file.id] });
  missingFile = file.id;
  const statePath = `${h.dataDir}/.matterbak/channels/${channel.id}.json`;
  return { h, file, statePath, heal: () => void (missingFile = undefined) };
}

Deno.test("an attachment that answers 404 in three runs is given up with one message", async () => {
  // What the server answers when the file's record is gone (app/file.go GetFileInfo).
  const body = JSON.stringify({
    id: "app.file_info.get.app_error",
    message: "Unable to get the file info.",
    status_code: 404,
  });
  const { h, file, statePath } = await withUnreachableFile(body, "lost.txt");
  try {
    for (const run of [1, 2]) {
      const result = await h.run(SKIP_RECORDS);
      assert.equal(result.status, 3, `run ${run}`);
      assert.equal(result.err.length, 1, result.err.join("\n"));
      assert.match(
        result.err[0] as string,
        new RegExp(`^error: attachment "lost\\.txt" .*HTTP 404.*not found in ${run} of 3 runs`),
      );
      const { pendingFiles } = await readJsonFile<PendingState>(statePath);
      assert.deepEqual(pendingFiles.map((p) => [p.fileId, p.notFoundRuns]), [[file.id, run]]);
    }
    const third = await h.run(SKIP_RECORDS);
    assert.equal(third.status, 0, third.err.join("\n"));
    assert.equal(third.err.length, 1, third.err.join("\n"));
    assert.match(
      third.err[0] as string,
      /^warning: Gave up on attachment "lost\.txt" .*: the server answered 404 \(not found\) in 3 runs/,
    );
    assert.deepEqual((await readJsonFile<PendingState>(statePath)).pendingFiles, []);
    h.sim.resetStats();
    const fourth = await h.run(SKIP_RECORDS);
    assert.equal(fourth.status, 0);
    assert.deepEqual(fourth.err, []);
    assert.ok(!h.sim.requests.some((r) => r.path === `/api/v4/files/${file.id}`));
    // verify knows it as given up: a gap the backup says, not damage to repair.
    const out: string[] = [];
    const verified = await main(["verify", "-d", h.dataDir], {
      env: () => undefined,
      output: { out: (line) => out.push(line), err: (line) => out.push(line) },
    });
    assert.equal(verified, 0, out.join("\n"));
    assert.ok(
      out.some((line) =>
        /^warning: .*lost\.txt: attachment of .* given up: the server answered 404/.test(line)
      ),
      out.join("\n"),
    );
  } finally {
    await h.close();
  }
});

Deno.test("a 404 that is not the server's own answer (a proxy's page) never gives an attachment up", async () => {
  const fault = await withUnreachableFile(
    "<html><body>404 Not Found</body></html>",
    "behind-proxy.txt",
  );
  const { h, file, statePath } = fault;
  try {
    for (const run of [1, 2, 3, 4]) {
      const result = await h.run(SKIP_RECORDS);
      assert.equal(result.status, 3, `run ${run}: still a failure, retried next time`);
      assert.ok(!result.err.some((line) => /Gave up/.test(line)), result.err.join("\n"));
      const { pendingFiles } = await readJsonFile<PendingState>(statePath);
      assert.deepEqual(pendingFiles.map((p) => p.fileId), [file.id]);
    }
    fault.heal();
    const healed = await h.run(SKIP_RECORDS);
    assert.equal(healed.status, 0, healed.err.join("\n"));
    assert.deepEqual((await readJsonFile<PendingState>(statePath)).pendingFiles, []);
  } finally {
    await h.close();
  }
});

Deno.test("users the server keeps refusing fail that phase only: emoji and the zip still follow", async () => {
  let refuse = false;
  const { h } = await backedUpChannel((req) =>
    refuse && req.path === "/api/v4/users/ids" ? { kind: "status", status: 500 } : undefined
  );
  try {
    assert.equal((await h.run(["--retries", "0"])).status, 0);
    const statePath = `${h.dataDir}/.matterbak/state.json`;
    const before = await Deno.readTextFile(statePath);
    await Deno.remove(h.zipPath);
    refuse = true;
    h.sim.resetStats();
    const result = await h.run(["--retries", "0"]);
    assert.equal(result.status, 3, result.err.join("\n"));
    assert.ok(result.err.some((line) => /^error: users: /.test(line)), result.err.join("\n"));
    assert.ok(h.sim.requests.some((r) => r.path === "/api/v4/emoji"), "the emoji phase ran");
    assert.ok((await Deno.stat(h.zipPath)).size > 0, "the zip is written");
    assert.equal(await Deno.readTextFile(statePath), before, "the users' watermark stays");
  } finally {
    await h.close();
  }
});
