/**
 * `matterbak verify` on real backups of the simulator: intact ones pass, each kind of damage is
 * named by its path with exit status 6, the next plain backup run repairs exactly what verify
 * recorded (byte-exact, with one request per item), and verify is clean again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../lib/cli/main.ts";
import { parseVerifyArgs } from "../lib/cli/commands/verify.ts";
import { DataDir } from "../lib/store/data_dir.ts";
import { acquireRunLock } from "../lib/store/run_lock.ts";
import { ExitCode, UsageError } from "../lib/util/errors.ts";
import { ZipReader } from "../lib/zip/reader.ts";
import { channelFolder, teamChannels } from "./expected_backup.ts";
import { type Harness, listFiles, type RunResult, startGenerated } from "./harness.ts";
import type { Channel, World } from "./simulator/world.ts";

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
