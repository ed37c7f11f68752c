/**
 * `matterbak verify` on real backups of the simulator: intact ones pass, each kind of damage is
 * named by its path with exit status 6, the next plain backup run repairs exactly what verify
 * recorded (byte-exact, with one request per item), and verify is clean again.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { main } from "../lib/cli/main.ts";
import { verifyBackup, type VerifyProgress } from "../lib/verify/verify.ts";
import { progressLine } from "../lib/cli/commands/verify.ts";
import { DataDir } from "../lib/store/data_dir.ts";
import { postFileName } from "../lib/store/layout.ts";
import { acquireRunLock } from "../lib/store/run_lock.ts";
import { ExitCode } from "../lib/util/errors.ts";
import { ZipReader } from "../lib/zip/reader.ts";
import { breakCentralRecord } from "./zip_damage.ts";
import { channelFolder, teamChannels } from "./expected_backup.ts";
import {
  type Harness,
  listFiles,
  type RunResult,
  spawnCli,
  startAliceAndBob,
  startGenerated,
  waitFor,
  withOneChannel,
} from "./harness.ts";
import { localName, writeMatterbakChannel } from "./matterbak_fixture.ts";
import { type Channel, type PostRecord, World } from "./simulator/world.ts";

async function verify(h: Harness, extra: string[] = []): Promise<RunResult> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(["verify", "-d", h.dataDir, ...extra], {
    env: () => undefined,
    output: { out: (line) => out.push(line), err: (line) => err.push(line) },
  });
  return { status, out, err };
}

/** The finding lines of verify's output: `kind: path: reason`. */
function findings(result: RunResult): Array<{ kind: string; path: string; reason: string }> {
  return result.out.flatMap((line) => {
    const match = /^(damaged|missing|unexpected|warning): (.+?): (.+)$/.exec(line);
    return match
      ? [{ kind: match[1] as string, path: match[2] as string, reason: match[3] as string }]
      : [];
  });
}

const SUMMARY =
  /^[\d,]+ files, [\d.]+ [KMG]?B checked in [\d.]+ s: (\d+) damaged, (\d+) missing, (\d+) unexpected/;

function assertClean(result: RunResult): void {
  assert.equal(result.status, 0, result.out.join("\n") + result.err.join("\n"));
  assert.deepEqual(findings(result).filter((f) => f.kind !== "warning"), []);
  const summary = result.out.find((line) => SUMMARY.test(line));
  assert.ok(summary, result.out.join("\n"));
  assert.match(summary, /: 0 damaged, 0 missing, 0 unexpected/);
}

/** A post file of the channel, by a predicate on the post; its path relative to the data dir. */
async function postFile(
  h: Harness,
  folder: string,
  pick: (post: Record<string, unknown>) => boolean,
): Promise<string> {
  for await (const entry of Deno.readDir(join(h.dataDir, folder))) {
    if (!entry.isFile) continue;
    const path = `${folder}/${entry.name}`;
    if (pick(JSON.parse(await Deno.readTextFile(join(h.dataDir, path))))) return path;
  }
  throw new Error(`no such post in ${folder}`);
}

/** Flips one byte in the middle of a zip entry's stored data. */
async function corruptZipEntry(zipPath: string, name: string): Promise<void> {
  const reader = await ZipReader.open(zipPath);
  let offset: number | undefined;
  let compressed = 0;
  try {
    for await (const entry of reader.entries()) {
      if (entry.name === name) {
        offset = entry.offset;
        compressed = entry.compressedSize;
      }
    }
  } finally {
    reader.close();
  }
  assert.ok(offset !== undefined, `${name} is in the zip`);
  const bytes = await Deno.readFile(zipPath);
  const view = new DataView(bytes.buffer);
  const data = offset + 30 + view.getUint16(offset + 26, true) + view.getUint16(offset + 28, true);
  flip(bytes, data + Math.floor(compressed / 2));
  await Deno.writeFile(zipPath, bytes);
}

function flip(bytes: Uint8Array, at: number): void {
  bytes[at] = (bytes[at] as number) ^ 0x01;
}

Deno.test("verify names each kind of damage and exits 6; the next backup repairs it byte-exact with one request per item; verify is then clean", async () => {
  const { h, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 80,
    filesEvery: 6,
    dms: 0,
    gms: 0,
  });
  try {
    assert.equal((await h.run()).status, 0);
    assertClean(await verify(h, ["--zip", h.zipPath]));
    // A plain update that finds nothing new: what every later run costs without repairs.
    h.sim.resetStats();
    assert.equal((await h.run()).status, 0);
    const baseline = h.sim.requests.length;

    const world: World = h.world;
    const channel = teamChannels(world, me.id)[0] as Channel;
    const folder = channelFolder(world, channel, me.id);
    const files = (await listFiles(h.dataDir)).filter((p) => p.startsWith(`${folder}/files/`));
    const attachment = files.find((p) => !p.endsWith(".json")) as string;
    const truncated = await postFile(h, folder, (p) => p.root_id === "");
    const edited = await postFile(h, folder, (p) => p.root_id !== "" && p.delete_at === 0);
    const avatar = (await listFiles(h.dataDir)).find((p) => /^users\/.+__image\.png$/.test(p));
    assert.ok(attachment && avatar);
    const originals = new Map<string, Uint8Array>();
    for (const path of [attachment, truncated, edited, avatar]) {
      originals.set(path, await Deno.readFile(join(h.dataDir, path)));
    }

    // The damage: a flipped byte, a cut post, a message changed into other valid JSON, a lost
    // picture, a temporary file left behind, one zip entry corrupt.
    const bytes = originals.get(attachment) as Uint8Array;
    const flipped = bytes.slice();
    flip(flipped, Math.floor(flipped.length / 2));
    await Deno.writeFile(join(h.dataDir, attachment), flipped);
    const text = new TextDecoder().decode(originals.get(truncated));
    await Deno.writeTextFile(join(h.dataDir, truncated), text.slice(0, text.length >> 1));
    // The same size, so that only the SHA-256 can tell.
    const post = JSON.parse(new TextDecoder().decode(originals.get(edited)));
    const forged = JSON.stringify({ ...post, message: "x".repeat(post.message.length) });
    assert.equal(forged.length, originals.get(edited)?.length);
    await Deno.writeTextFile(join(h.dataDir, edited), forged);
    await Deno.remove(join(h.dataDir, avatar));
    const temp = `${folder}/.12345-678.mbtmp`;
    await Deno.writeTextFile(join(h.dataDir, temp), '{"half');
    const zipped = (await listFiles(h.dataDir)).find((p) =>
      p.startsWith(`${folder}/2`) && p !== truncated && p !== edited
    ) as string;
    await corruptZipEntry(h.zipPath, zipped);

    const damaged = await verify(h, ["--zip", h.zipPath]);
    assert.equal(damaged.status, ExitCode.damaged, damaged.out.join("\n"));
    const found = findings(damaged);
    const kindOf = (path: string) => found.filter((f) => f.path === path).map((f) => f.kind);
    assert.deepEqual(kindOf(attachment), ["damaged"]);
    assert.deepEqual(kindOf(truncated), ["damaged"]);
    assert.match(found.find((f) => f.path === truncated)?.reason ?? "", /not valid JSON/);
    assert.deepEqual(kindOf(edited), ["damaged"]);
    assert.match(found.find((f) => f.path === edited)?.reason ?? "", /SHA-256 differs/);
    assert.deepEqual(kindOf(avatar), ["missing"]);
    assert.deepEqual(kindOf(temp), ["warning"]);
    assert.deepEqual(kindOf(zipped), ["damaged"]);
    assert.match(found.find((f) => f.path === zipped)?.reason ?? "", /copy in the zip is damaged/);
    assert.equal(found.filter((f) => f.kind !== "warning").length, 5, damaged.out.join("\n"));
    assert.match(damaged.out.at(-1) ?? "", /The next backup run repairs 4 item\(s\)/);

    h.sim.resetStats();
    const repair = await h.run();
    assert.equal(repair.status, 0, repair.err.join("\n"));
    for (const [path, original] of originals) {
      assert.deepEqual(await Deno.readFile(join(h.dataDir, path)), original, `${path} restored`);
    }
    assert.deepEqual(
      (await listFiles(h.dataDir)).filter((p) => p.endsWith(".mbtmp")),
      [],
      "the temporary file is gone",
    );
    // One request per damaged item, on top of what the run costs anyway.
    const repairs = h.sim.requests.filter((r) =>
      /^\/api\/v4\/(posts\/[a-z0-9]{26}|files\/[a-z0-9]{26}|users\/[a-z0-9]{26}\/image)$/.test(
        r.path,
      )
    ).map((r) => r.path.replace(/[a-z0-9]{26}/g, "<id>")).sort();
    assert.deepEqual(repairs, [
      "/api/v4/files/<id>",
      "/api/v4/posts/<id>",
      "/api/v4/posts/<id>",
      "/api/v4/users/<id>/image",
    ]);
    assert.equal(h.sim.requests.length, baseline + 4);
    assert.ok(repair.out.some((line) => line === `Repaired ${edited}`), repair.out.join("\n"));
    assert.ok(
      repair.out.some((line) =>
        /^Repaired 4 of the 4 item\(s\) matterbak verify found$/.test(line)
      ),
    );
    await assert.rejects(
      Deno.stat(join(h.dataDir, ".matterbak/repair.json")),
      Deno.errors.NotFound,
    );

    assertClean(await verify(h, ["--zip", h.zipPath]));
  } finally {
    await h.close();
  }
});

/** Requests of the simulator's log whose path matches, with ids as `<id>`, sorted. */
function requested(h: Harness, pattern: RegExp): string[] {
  return h.sim.requests.filter((r) => pattern.test(r.path)).map((r) =>
    `${r.method} ${r.path.replace(/[a-z0-9]{26}/g, "<id>")}`
  ).sort();
}

Deno.test("a data dir matterbak made, without a manifest, is checked by shape and by what its records say; the next run repairs it and records its SHA-256 once", async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 150,
    filesEvery: 5,
    dms: 0,
    gms: 0,
  }, { channels: { teams: { "team-0": { include: ["town-square"] } } } });
  const channel = [...world.channels.values()].find((c) => c.name === "town-square") as Channel;
  const folder = channelFolder(world, channel, me.id);
  try {
    await writeMatterbakChannel(world, channel, join(h.dataDir, folder));
    const live = world.channelPosts(channel.id).filter((p) => p.delete_at === 0);
    const name = (p: PostRecord) => `${folder}/${localName(p.id, p.create_at)}`;
    const cut = live.find((p) => p.root_id === "" && p.file_ids.length === 0) as PostRecord;
    const reply = live.find((p) => p.root_id !== "" && p.file_ids.length === 0) as PostRecord;
    const withFile = live.find((p) => p.file_ids.length > 0) as PostRecord;
    const info = world.files.get(withFile.file_ids[0] as string);
    assert.ok(cut && reply && info);
    const attachment = `${folder}/files/${info.id}__${info.name}`;
    const text = await Deno.readTextFile(join(h.dataDir, name(cut)));
    await Deno.writeTextFile(join(h.dataDir, name(cut)), text.slice(0, 40));
    await Deno.remove(join(h.dataDir, name(reply)));
    await Deno.remove(join(h.dataDir, attachment));

    const result = await verify(h);
    assert.equal(result.status, ExitCode.damaged, result.out.join("\n"));
    const found = findings(result);
    assert.deepEqual(
      found.filter((f) => f.kind !== "warning").map((f) => [f.kind, f.path]).sort(),
      [
        ["damaged", name(cut)],
        ["missing", attachment],
        ["missing", `${folder}__threads.json`],
      ].sort(),
    );
    assert.match(found.find((f) => f.path === attachment)?.reason ?? "", /attachment of .*not in/);
    assert.match(
      found.find((f) => f.path === `${folder}__threads.json`)?.reason ?? "",
      new RegExp(`names reply ${reply.id}, which is not stored`),
    );
    assert.ok(found.some((f) => f.kind === "warning" && /no manifest/.test(f.reason)));

    h.sim.resetStats();
    const run = await h.run(["--skip-users", "--skip-emojis"]);
    assert.equal(run.status, 0, run.err.join("\n"));
    assert.ok(
      run.out.some((l) =>
        /^Recorded the SHA-256 of the \d+ file\(s\) already in the data dir/.test(l)
      ),
      run.out.join("\n"),
    );
    assert.ok(
      run.out.some((l) => /^Manifest: the SHA-256 of \d+ file\(s\) .* recorded once/.test(l)),
    );
    assert.deepEqual(requested(h, /^\/api\/v4\/(posts|files)\/[a-z0-9]{26}$/), [
      "GET /api/v4/files/<id>",
      "GET /api/v4/posts/<id>",
      "GET /api/v4/posts/<id>",
    ]);
    // The cut post keeps its (local-time) name; the lost reply gets this tool's.
    const restored = JSON.parse(await Deno.readTextFile(join(h.dataDir, name(cut))));
    assert.deepEqual(restored, world.post(cut.id));
    const again = world.post(reply.id);
    assert.ok(again);
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(join(h.dataDir, folder, postFileName(again)))),
      again,
    );
    assert.deepEqual(await Deno.readFile(join(h.dataDir, attachment)), world.fileBytes(info.id));
    assertClean(await verify(h));
  } finally {
    await h.close();
  }
});

Deno.test("records verify found lost or damaged are fetched again by id: a user, a channel's members, an emoji image, a team icon", () =>
  withOneChannel(30, async ({ h, me }) => {
    assert.equal((await h.run()).status, 0);
    const world: World = h.world;
    const files = await listFiles(h.dataDir);
    const user = files.find((p) =>
      /^users\/[a-z0-9]{26}__[^/]+(?<!__image)\.json$/.test(p)
    ) as string;
    const members = `${
      channelFolder(world, teamChannels(world, me.id)[0] as Channel, me.id)
    }__members.json`;
    const emoji = files.find((p) => /^emojis\/.+\.png$/.test(p)) as string;
    const icon = files.find((p) => /^teams\/[a-z0-9]{26}__icon\.png$/.test(p)) as string;
    assert.ok(user && emoji && icon && files.includes(members));
    const originals = new Map<string, Uint8Array>();
    for (const path of [user, members, emoji, icon]) {
      originals.set(path, await Deno.readFile(join(h.dataDir, path)));
    }
    await Deno.remove(join(h.dataDir, user));
    await Deno.writeTextFile(join(h.dataDir, members), "[]");
    await Deno.remove(join(h.dataDir, emoji));
    const iconBytes = originals.get(icon) as Uint8Array;
    await Deno.writeFile(join(h.dataDir, icon), iconBytes.subarray(0, iconBytes.length - 1));

    const result = await verify(h);
    assert.equal(result.status, ExitCode.damaged);
    assert.deepEqual(
      findings(result).filter((f) => f.kind !== "warning").map((f) => [f.kind, f.path]).sort(),
      [["damaged", icon], ["damaged", members], ["missing", emoji], ["missing", user]].sort(),
    );
    // The members file is valid JSON of the right shape: only the manifest tells.
    assert.match(
      findings(result).find((f) => f.path === members)?.reason ?? "",
      /^2 bytes, the manifest says \d+$/,
    );

    h.sim.resetStats();
    assert.equal((await h.run()).status, 0);
    for (const [path, bytes] of originals) {
      assert.deepEqual(await Deno.readFile(join(h.dataDir, path)), bytes, `${path} restored`);
    }
    assert.deepEqual(
      requested(
        h,
        /^\/api\/v4\/(users\/ids|channels\/[a-z0-9]{26}\/members|emoji\/[a-z0-9]{26}\/image|teams\/[a-z0-9]{26}\/image)$/,
      ),
      [
        // The run's own members listing and users update, then one request per repair.
        "GET /api/v4/channels/<id>/members",
        "GET /api/v4/channels/<id>/members",
        "GET /api/v4/emoji/<id>/image",
        "GET /api/v4/teams/<id>/image",
        "POST /api/v4/users/ids",
        "POST /api/v4/users/ids",
      ],
    );
    assertClean(await verify(h));
  }));

Deno.test("verify --json, --sample 0 (sizes only), a stale zip, a file that is no zip, a zip with a broken central directory, a locked or missing data dir", () =>
  withOneChannel(40, async ({ h, me }) => {
    assert.equal((await h.run()).status, 0);
    const old = join(h.dir, "old.zip");
    await Deno.copyFile(h.zipPath, old);
    const world: World = h.world;
    const channel = teamChannels(world, me.id)[0] as Channel;
    world.advance(60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "after the old zip" });
    assert.equal((await h.run()).status, 0);

    const stale = await verify(h, ["--zip", old]);
    assert.equal(stale.status, 0, stale.out.join("\n"));
    assert.ok(
      findings(stale).some((f) =>
        f.kind === "warning" && f.path === old &&
        /older than the latest backup run: \d+ file/.test(f.reason)
      ),
      stale.out.join("\n"),
    );
    assert.deepEqual(findings(stale).filter((f) => f.kind !== "warning"), []);

    const json = await verify(h, ["--json", "--zip", h.zipPath]);
    assert.equal(json.status, 0);
    assert.equal(json.out.length, 1, "one JSON object");
    const report = JSON.parse(json.out[0] as string);
    assert.equal(report.exitStatus, 0);
    assert.equal(report.manifest, "complete");
    assert.deepEqual(report.counts, { damaged: 0, missing: 0, unexpected: 0, warning: 0 });
    assert.equal(report.zip.stale, 0);
    assert.ok(report.files > 40 && report.bytesRead > 0);

    // Without reading any content, a cut file is still found by its size.
    const folder = channelFolder(world, channel, me.id);
    const post = await postFile(h, folder, () => true);
    const text = await Deno.readTextFile(join(h.dataDir, post));
    await Deno.writeTextFile(join(h.dataDir, post), text.slice(1));
    const sampled = JSON.parse((await verify(h, ["--json", "--sample", "0"])).out[0] as string);
    assert.equal(sampled.exitStatus, ExitCode.damaged);
    assert.equal(sampled.bytesRead, 0);
    assert.deepEqual(sampled.findings, [{
      kind: "damaged",
      path: post,
      reason: `${text.length - 1} bytes, the manifest says ${text.length}`,
    }]);
    await Deno.writeTextFile(join(h.dataDir, post), text);

    const notZip = join(h.dir, "channels.json");
    const broken = await verify(h, ["--zip", notZip]);
    assert.equal(broken.status, ExitCode.damaged);
    assert.ok(findings(broken).some((f) => f.kind === "damaged" && f.path === notZip));

    // Its entries cannot all be listed: one finding for the zip, no file compared with it.
    const torn = join(h.dir, "torn.zip");
    await Deno.copyFile(h.zipPath, torn);
    await breakCentralRecord(torn, 2);
    const tornReport = await verify(h, ["--zip", torn]);
    assert.equal(tornReport.status, ExitCode.damaged, tornReport.err.join("\n"));
    assert.deepEqual(findings(tornReport).filter((f) => f.kind !== "warning"), [{
      kind: "damaged",
      path: torn,
      reason: `${torn}: entry 2 of the central directory is broken (the next backup run writes ` +
        "it again)",
    }]);
    assert.deepEqual(tornReport.err, []);

    const lock = await acquireRunLock(new DataDir(h.dataDir));
    try {
      const locked = await verify(h);
      assert.equal(locked.status, ExitCode.locked);
      assert.match(locked.err.join("\n"), /in use by another run/);
    } finally {
      lock.release();
    }
    const missing = await main(["verify", "-d", join(h.dir, "nowhere")], {
      env: () => undefined,
      output: { out: () => {}, err: () => {} },
    });
    assert.equal(missing, ExitCode.usage);
  }));

Deno.test("a backup run fetches again a damaged post file it comes across, without verify", () =>
  withOneChannel(60, async ({ h, world, me }) => {
    const args = ["--skip-users", "--skip-emojis"];
    assert.equal((await h.run(args)).status, 0);
    const channel = teamChannels(world, me.id)[0] as Channel;
    const folder = channelFolder(world, channel, me.id);
    const reply = await postFile(h, folder, (p) => p.root_id !== "");
    const original = await Deno.readFile(join(h.dataDir, reply));
    await Deno.writeTextFile(join(h.dataDir, reply), "{");
    // Without its threads file the next run rebuilds it from the stored posts, reading each.
    await Deno.remove(join(h.dataDir, `${folder}__threads.json`));
    h.sim.resetStats();
    const run = await h.run(args);
    assert.equal(run.status, 0, run.err.join("\n"));
    assert.ok(
      run.out.includes(`Replaced the damaged post file ${reply} with the server's copy`),
      run.out.join("\n"),
    );
    assert.deepEqual(requested(h, /^\/api\/v4\/posts\/[a-z0-9]{26}$/), ["GET /api/v4/posts/<id>"]);
    assert.deepEqual(await Deno.readFile(join(h.dataDir, reply)), original);
    assertClean(await verify(h));

    // Without its sync state the folder passes for matterbak's: its stored posts are read for
    // their newest change, a cut one among them. (An hour later, so that the changes the run
    // asks for do not bring that post along.)
    world.advance(3_600_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "an hour later" });
    assert.equal((await h.run(args)).status, 0);
    const root = await postFile(
      h,
      folder,
      (p) => p.root_id === "" && p.message !== "an hour later",
    );
    const rootBytes = await Deno.readFile(join(h.dataDir, root));
    await Deno.writeFile(join(h.dataDir, root), rootBytes.subarray(0, 20));
    await Deno.remove(join(h.dataDir, `.matterbak/channels/${channel.id}.json`));
    h.sim.resetStats();
    const adopted = await h.run(args);
    assert.equal(adopted.status, 0, adopted.err.join("\n"));
    assert.ok(
      adopted.out.includes(`Replaced the damaged post file ${root} with the server's copy`),
    );
    assert.deepEqual(requested(h, /^\/api\/v4\/posts\/[a-z0-9]{26}$/), ["GET /api/v4/posts/<id>"]);
    assert.deepEqual(await Deno.readFile(join(h.dataDir, root)), rootBytes);
    assertClean(await verify(h));
  }));

Deno.test({
  name:
    "after kill -9 mid-run, verify reports what the run was writing as unverified, not damaged, but still damage older than the run; the next run records both",
  // Deno on Windows cannot signal a child process (see interruption_test.ts).
  ignore: Deno.build.os === "windows",
}, async () => {
  const { h, world, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 200,
    dms: 0,
    gms: 0,
  }, { latencyMs: 5 });
  try {
    assert.equal((await h.run(["--skip-users", "--skip-emojis"])).status, 0);
    const channel = teamChannels(world, me.id)[0] as Channel;
    const folder = channelFolder(world, channel, me.id);
    // Bit rot in a file from a run an hour ago: a flipped byte, its time unchanged.
    const rotten = await postFile(h, folder, () => true);
    const original = await Deno.readFile(join(h.dataDir, rotten));
    const bytes = original.slice();
    flip(bytes, 10);
    await Deno.writeFile(join(h.dataDir, rotten), bytes);
    const hourAgo = new Date(Date.now() - 3600_000);
    await Deno.utime(join(h.dataDir, rotten), hourAgo, hourAgo);

    // A new channel with a long history: the run that crawls it is killed mid-way.
    world.advance(60_000);
    const fresh = world.addChannel({ teamId: channel.team_id, name: "fresh", type: "O" });
    world.addChannelMember(fresh.id, me.id);
    for (let i = 0; i < 3000; i++) {
      world.addPost({ channelId: fresh.id, userId: me.id, message: `new ${i}` });
    }
    const freshFolder = join(h.dataDir, channelFolder(world, fresh, me.id));
    const child = spawnCli(h);
    await waitFor(
      async () => (await listFiles(freshFolder).catch(() => [])).length > 300,
      "new posts on disk",
    );
    child.process.kill("SIGKILL");
    await child.process.status;
    await child.stderr;

    const result = await verify(h);
    assert.equal(result.status, ExitCode.damaged, result.out.join("\n"));
    const found = findings(result);
    assert.deepEqual(found.filter((f) => f.kind !== "warning").map((f) => [f.kind, f.path]), [
      ["damaged", rotten],
    ]);
    const journal = found.find((f) => f.path === ".matterbak/manifest.journal");
    assert.match(journal?.reason ?? "", /did not finish: [1-9]\d* file\(s\) it changed/);

    const run = await h.run(["--skip-users", "--skip-emojis"]);
    assert.equal(run.status, 0, run.err.join("\n"));
    assert.ok(
      run.out.some((l) =>
        /^Recorded the SHA-256 of \d+ file\(s\) that an interrupted run changed$/.test(l)
      ),
    );
    assert.deepEqual(await Deno.readFile(join(h.dataDir, rotten)), original);
    assertClean(await verify(h));
  } finally {
    await h.close();
  }
});

const HISTORY_NOTE = " (the next backup run rebuilds it from the server's edit history if the " +
  "post is yours; of others' posts the earlier versions cannot be fetched again, and it says so)";

Deno.test("edit histories are in the manifest and checked; the next run rebuilds one's own from the server and says why another's is lost; verify is then clean", async () => {
  const { h, world, me, bob, channel } = await startAliceAndBob();
  const args = ["--skip-users", "--skip-emojis"];
  try {
    // Mine: edited twice before the first backup (the server's edit history has both earlier
    // versions). Bob's two: edited between runs, so only the backup has their earlier text.
    const mine = world.addPost({ channelId: channel.id, userId: me.id, message: "mine v0" });
    world.editPost(mine.id, "mine v1");
    world.editPost(mine.id, "mine v2");
    const cut = world.addPost({ channelId: channel.id, userId: bob.id, message: "cut v0" });
    const lost = world.addPost({ channelId: channel.id, userId: bob.id, message: "lost v0" });
    assert.equal((await h.run(args)).status, 0);
    world.advance(60 * 60_000);
    world.editPost(cut.id, "cut v1");
    world.editPost(lost.id, "lost v1");
    assert.equal((await h.run(args)).status, 0);
    // A later post: the server's copies of those versions are no longer in any answer (past
    // the overlap of `since`), so nothing but the backup holds bob's earlier text.
    world.advance(60 * 60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "an hour later" });
    assert.equal((await h.run(args)).status, 0);

    const folder = channelFolder(world, channel, me.id);
    const history = (id: string) => `${folder}/history/${id}.json`;
    const manifest = await Deno.readTextFile(join(h.dataDir, ".matterbak/manifest.sha256"));
    const originals = new Map<string, Uint8Array>();
    for (const id of [mine.id, cut.id, lost.id]) {
      const bytes = await Deno.readFile(join(h.dataDir, history(id)));
      originals.set(id, bytes);
      const sha = createHash("sha256").update(bytes).digest("hex");
      assert.ok(manifest.includes(`${sha}  ${history(id)}\n`), `${history(id)} in the manifest`);
    }
    assert.doesNotMatch(manifest, /^[0-9a-f]{64} {2}\.matterbak\//m, "no line for our own state");
    assertClean(await verify(h, ["--zip", h.zipPath]));

    // Mine cut short, bob's rewritten as valid JSON of the wrong shape, bob's other one lost.
    const text = new TextDecoder().decode(originals.get(mine.id));
    await Deno.writeTextFile(join(h.dataDir, history(mine.id)), text.slice(0, text.length >> 1));
    const forged = JSON.parse(new TextDecoder().decode(originals.get(cut.id)));
    await Deno.writeTextFile(
      join(h.dataDir, history(cut.id)),
      JSON.stringify({ ...forged, post_id: lost.id }),
    );
    await Deno.remove(join(h.dataDir, history(lost.id)));
    const damaged = await verify(h);
    assert.equal(damaged.status, ExitCode.damaged, damaged.out.join("\n"));
    const found = findings(damaged).filter((f) => f.kind !== "warning");
    assert.deepEqual(
      found.map((f) => [f.kind, f.path]).sort(),
      [
        ["damaged", history(cut.id)],
        ["damaged", history(mine.id)],
        ["missing", history(lost.id)],
      ].sort(),
    );
    for (const finding of found) {
      assert.match(
        finding.reason,
        /rebuilds it from the server's edit history if the post is yours/,
      );
    }
    assert.match(found.find((f) => f.path === history(cut.id))?.reason ?? "", /history of/);

    // The repair: one edit-history request each; mine comes back byte-exact, bob's cannot.
    h.sim.resetStats();
    const repair = await h.run(args);
    assert.equal(repair.status, 0, repair.err.join("\n"));
    const asked = h.sim.requests.filter((r) => r.path.endsWith("/edit_history"));
    assert.deepEqual(asked.map((r) => r.status).sort(), [200, 403, 403]);
    assert.deepEqual(
      await Deno.readFile(join(h.dataDir, history(mine.id))),
      originals.get(mine.id),
    );
    const said = [...repair.out, ...repair.err].join("\n");
    for (const id of [cut.id, lost.id]) {
      assert.match(
        said,
        new RegExp(
          `Cannot repair ${
            history(id)
          }: the server gives the earlier versions of one's own posts only`,
        ),
      );
      assert.equal(await Deno.stat(join(h.dataDir, history(id))).catch(() => undefined), undefined);
    }
    // The damaged bytes are set aside, not thrown away; nothing is there of the lost file.
    assert.match(said, new RegExp(`kept in \\.matterbak/damaged/${history(cut.id)}`));
    assert.ok((await Deno.stat(join(h.dataDir, ".matterbak/damaged", history(cut.id)))).isFile);
    assertClean(await verify(h, ["--zip", h.zipPath]));
    // And the next run has nothing more to say about them.
    const later = await h.run(args);
    assert.doesNotMatch([...later.out, ...later.err].join("\n"), /repair/i);

    // Without a manifest only the shape tells: a history that holds another post's versions.
    await Deno.remove(join(h.dataDir, ".matterbak/manifest.sha256"));
    await Deno.writeTextFile(
      join(h.dataDir, history(mine.id)),
      JSON.stringify({ ...JSON.parse(text), post_id: cut.id }),
    );
    const shape = await verify(h);
    assert.equal(shape.status, ExitCode.damaged, shape.out.join("\n"));
    assert.deepEqual(
      findings(shape).filter((f) => f.kind === "damaged").map((f) => [f.path, f.reason]),
      [[history(mine.id), `holds the history of "${cut.id}", not of ${mine.id}` + HISTORY_NOTE]],
    );
  } finally {
    await h.close();
  }
});

Deno.test("verify reads nothing through a symbolic link: a post file or a channel folder replaced by one is named, not followed", async () => {
  const { h, me } = await startGenerated({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 20,
    dms: 0,
    gms: 0,
  });
  try {
    assert.equal((await h.run()).status, 0);
    const world: World = h.world;
    const [first, second] = teamChannels(world, me.id) as [Channel, Channel];
    // Outside the data dir: a copy of the post, intact, which a followed link would vouch for.
    const post = await postFile(h, channelFolder(world, first, me.id), () => true);
    const outside = join(h.dir, "outside.json");
    await Deno.copyFile(join(h.dataDir, post), outside);
    await Deno.remove(join(h.dataDir, post));
    await Deno.symlink(outside, join(h.dataDir, post));
    const folder = channelFolder(world, second, me.id);
    const moved = join(h.dir, "moved");
    await Deno.rename(join(h.dataDir, folder), moved);
    await Deno.symlink(moved, join(h.dataDir, folder));

    const result = await verify(h);
    assert.equal(result.status, ExitCode.damaged, result.out.join("\n"));
    const found = findings(result);
    const linked = found.find((f) => f.path === post);
    assert.equal(linked?.kind, "damaged", result.out.join("\n"));
    assert.match(linked?.reason ?? "", /is a symbolic link/);
    const below = found.filter((f) => f.path.startsWith(`${folder}/`));
    assert.ok(below.length > 0 && below.every((f) => f.kind === "damaged"), result.out.join("\n"));
    assert.ok(below.every((f) => /symbolic link/.test(f.reason)), result.out.join("\n"));
    assert.ok(found.some((f) => f.path === folder && /symbolic link/.test(f.reason)));
  } finally {
    await h.close();
  }
});

Deno.test("verify --zip reads a zip the next run brought up to date (entries copied from the previous one), and names a damaged copied entry", () =>
  withOneChannel(30, async ({ h, me }) => {
    assert.equal((await h.run()).status, 0);
    const world: World = h.world;
    const channel = teamChannels(world, me.id)[0] as Channel;
    const folder = channelFolder(world, channel, me.id);
    const kept = await postFile(h, folder, () => true);
    world.advance(60_000);
    world.addPost({ channelId: channel.id, userId: me.id, message: "after the first zip" });
    const second = await h.run();
    assert.equal(second.status, 0);
    const line = second.out.find((l) => /^Zip .*copied from the previous zip/.test(l)) ?? "";
    const copied = Number(/(\d+) copied/.exec(line)?.[1] ?? 0);
    assert.ok(copied > 30, second.out.join("\n"));
    assertClean(await verify(h, ["--zip", h.zipPath]));

    // The copy of a post file the second run did not touch.
    await corruptZipEntry(h.zipPath, kept);
    const damaged = await verify(h, ["--zip", h.zipPath]);
    assert.equal(damaged.status, ExitCode.damaged, damaged.out.join("\n"));
    assert.deepEqual(
      findings(damaged).filter((f) => f.kind !== "warning").map((f) => [f.kind, f.path]),
      [["damaged", kept]],
    );
    assert.match(findings(damaged)[0]?.reason ?? "", /its copy in the zip is damaged/);
  }));

Deno.test("verify's workers find what an inline verify finds, in the same order, over several batches; Ctrl+C stops them", () =>
  withOneChannel(700, async ({ h, me }) => {
    assert.equal((await h.run()).status, 0);
    const world: World = h.world;
    const folder = channelFolder(world, teamChannels(world, me.id)[0] as Channel, me.id);
    const posts = (await listFiles(h.dataDir)).filter((p) => /^[^/]+\/[^/]+\/[^/]+\/\d/.test(p))
      .sort();
    assert.ok(posts.length > 600, `${posts.length} post files: more than two batches`);
    // Damage spread over the batches: a cut post, a changed one, a lost one, one not listed.
    const [cut, changed, lost] = [posts[10], posts[300], posts[650]] as [string, string, string];
    await Deno.writeTextFile(join(h.dataDir, cut), "{");
    const text = await Deno.readTextFile(join(h.dataDir, changed));
    await Deno.writeTextFile(
      join(h.dataDir, changed),
      text.replace(/"message":"./, '"message":"#'),
    );
    await Deno.remove(join(h.dataDir, lost));
    await Deno.writeTextFile(join(h.dataDir, folder, "notes.txt"), "mine");
    // A post without attachments by an author without a user record (such posts' authors pass
    // between threads packed): damaged, and its author named.
    const stranger = "zzzzzzzzzzzzzzzzzzzzzzzzzz";
    const plain = posts.slice(400).find((p) =>
      !/"file_ids":\["/.test(Deno.readTextFileSync(join(h.dataDir, p)))
    ) as string;
    const post = JSON.parse(await Deno.readTextFile(join(h.dataDir, plain)));
    await Deno.writeTextFile(
      join(h.dataDir, plain),
      JSON.stringify({ ...post, user_id: stranger }),
    );

    const inline = await verifyBackup({ dataDir: h.dataDir, sample: 100, workers: 0 });
    const threaded = await verifyBackup({ dataDir: h.dataDir, sample: 100, workers: 3 });
    assert.deepEqual(threaded.findings, inline.findings);
    assert.deepEqual(threaded.counts, inline.counts);
    assert.equal(threaded.files, inline.files);
    assert.equal(threaded.bytesRead, inline.bytesRead);
    const kinds = Object.fromEntries(threaded.findings.map((f) => [f.path, f.kind]));
    assert.equal(kinds[cut], "damaged");
    assert.equal(kinds[changed], "damaged");
    assert.equal(kinds[lost], "missing");
    assert.equal(kinds[`${folder}/notes.txt`], "unexpected");
    assert.deepEqual(
      threaded.findings.filter((f) => f.kind === "damaged" || f.kind === "missing")
        .map((f) => f.path).sort(),
      [cut, changed, lost, plain].sort(),
    );
    assert.ok(
      threaded.findings.some((f) =>
        f.kind === "warning" && f.path === plain &&
        f.reason.includes(`its author ${stranger} has no user record`)
      ),
      JSON.stringify(threaded.findings),
    );

    // Ctrl+C while the workers read: verify ends with the interruption (exit status 130 in the
    // CLI), not with another error, and leaves no promise rejected unseen (a crash there).
    const controller = new AbortController();
    const reason = new Error("interrupted");
    const unhandled: unknown[] = [];
    const onUnhandled = (event: PromiseRejectionEvent) => {
      unhandled.push(event.reason);
      event.preventDefault();
    };
    globalThis.addEventListener("unhandledrejection", onUnhandled);
    try {
      await assert.rejects(
        verifyBackup({
          dataDir: h.dataDir,
          sample: 100,
          workers: 2,
          signal: controller.signal,
          progress: () => controller.abort(reason),
        }),
        (error) => error === reason,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
    }
    assert.deepEqual(unhandled, []);
    // The lock is released: taking it again does not fail.
    (await acquireRunLock(new DataDir(h.dataDir))).release();
  }));

Deno.test("verify's progress says how many files of how many it has read, and the line says it", () =>
  withOneChannel(600, async ({ h }) => {
    assert.equal((await h.run(["--skip-emojis"])).status, 0);
    const seen: VerifyProgress[] = [];
    const report = await verifyBackup({
      dataDir: h.dataDir,
      sample: 100,
      workers: 0,
      progress: (progress) => seen.push(progress),
    });
    const reading = seen.filter((p) => p.phase === "reading");
    assert.ok(reading.length >= 2, `${reading.length} reading reports`);
    for (const p of reading) {
      assert.equal(p.total, report.files, "the total is every file the walk found");
      assert.ok(p.files <= report.files);
    }
    assert.ok(
      reading.every((p, i) => i === 0 || p.files > (reading[i - 1] as VerifyProgress).files),
    );
    assert.equal(
      progressLine({ phase: "reading", files: 512, bytes: 2048, total: 2000 }),
      "verify: reading 512 of 2,000 files (25 %), 2.0 KB",
    );
  }));

Deno.test("items of the repair list that this version cannot use are left out with a warning naming the list", () =>
  withOneChannel(5, async ({ h }) => {
    assert.equal((await h.run(["--skip-emojis"])).status, 0);
    await Deno.writeTextFile(
      join(h.dataDir, ".matterbak", "repair.json"),
      JSON.stringify({ version: 1, verifiedAt: "", items: [{ kind: "post", postId: "nope" }] }),
    );
    const result = await h.run(["--skip-emojis"]);
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.ok(
      result.err.some((line) => /Left out 1 item\(s\) of \.matterbak\/repair\.json/.test(line)),
      result.err.join("\n"),
    );
    await assert.rejects(
      Deno.stat(join(h.dataDir, ".matterbak", "repair.json")),
      Deno.errors.NotFound,
    );
  }));
