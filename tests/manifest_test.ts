/**
 * The manifest (lib/store/manifest.ts): sha256sum's format, a journal that grows by what
 * changed and is folded in at the end of a run (or once it is large), and consistency after a
 * crash: what a run wrote after its last checkpoint is hashed again by the next one, what is
 * older is not (damage stays visible).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DataDir } from "../lib/store/data_dir.ts";
import { MANIFEST_FILE, MANIFEST_JOURNAL } from "../lib/store/layout.ts";
import {
  escapePath,
  Manifest,
  type ManifestEntry,
  manifestLines,
  openManifest,
} from "../lib/store/manifest.ts";
import { listFiles } from "./harness.ts";

/** The manifest as verify reads it, its files collected. */
async function readManifest(dataDir: DataDir) {
  const manifest = await openManifest(dataDir);
  const entries = new Map<string, ManifestEntry>();
  for await (const batch of manifest.entries()) for (const [path, e] of batch) entries.set(path, e);
  return { exists: manifest.exists, interruptedSince: manifest.interruptedSince, entries };
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

async function withDataDir(fn: (dataDir: DataDir) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "matterbak-manifest-" });
  try {
    await fn(await DataDir.open(root));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Opens the manifest as a run does: the data dir reports its writes to it. */
async function openRun(dataDir: DataDir, compactMin?: number) {
  const start = await Manifest.open(dataDir, {
    concurrency: 4,
    ...(compactMin ? { compactMin } : {}),
  });
  dataDir.sink = start.manifest;
  return start;
}

const text = (dataDir: DataDir, parts: readonly string[]) => Deno.readTextFile(dataDir.path(parts));

/** A command that checks a sha256sum file on this machine, if there is one. */
function sha256sumCommand(): string[] | undefined {
  for (const command of [["sha256sum", "-c"], ["shasum", "-a", "256", "-c"]]) {
    try {
      new Deno.Command(command[0] as string, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      })
        .outputSync();
      return command;
    } catch {
      // Not installed.
    }
  }
  return undefined;
}

Deno.test("names with a backslash or a line break are escaped as sha256sum does", () => {
  assert.equal(escapePath("a\\b\nc\rd"), "a\\\\b\\nc\\rd");
  assert.equal(
    manifestLines("plain/x.json", { sha256: "ab".repeat(32), size: 3 }),
    `#size 3\n${"ab".repeat(32)}  plain/x.json\n`,
  );
  assert.equal(
    manifestLines("odd\\n\name", { sha256: "ab".repeat(32), size: 0 }),
    `#size 0\n\\${"ab".repeat(32)}  odd\\\\n\\name\n`,
  );
});

Deno.test({
  name:
    "a data dir without a manifest is hashed once, odd names included, and sha256sum -c accepts the result",
  ignore: sha256sumCommand() === undefined,
}, async () => {
  await withDataDir(async (dataDir) => {
    // Names matterbak kept as they came: the tool itself never writes such names.
    const names = [
      "teams/t/plain.json",
      "teams/t/back\\slash.json",
      "teams/t/two\nlines.txt",
      "users/ü ñ.json",
    ];
    for (const name of names) {
      await Deno.mkdir(join(dataDir.root, name, ".."), { recursive: true });
      await Deno.writeTextFile(join(dataDir.root, name), `content of ${name}`);
    }
    const start = await openRun(dataDir);
    assert.deepEqual([start.hashed, start.reason], [names.length, "no-manifest"]);
    await start.manifest.close();
    const snapshot = await readManifest(dataDir);
    assert.equal(snapshot.exists, true);
    assert.equal(snapshot.interruptedSince, undefined);
    assert.deepEqual(
      [...snapshot.entries].map(([path, e]) => [path, e.sha256, e.size]).sort(),
      names.map((name) => {
        const content = `content of ${name}`;
        return [name, sha256(content), new TextEncoder().encode(content).length];
      }).sort(),
    );
    await assert.rejects(Deno.stat(dataDir.path(MANIFEST_JOURNAL)), Deno.errors.NotFound);
    const [command, ...args] = sha256sumCommand() as string[];
    const check = await new Deno.Command(command as string, {
      args: [...args, ".matterbak/manifest.sha256"],
      cwd: dataDir.root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(check.stdout) + new TextDecoder().decode(check.stderr);
    assert.equal(check.code, 0, output);
    assert.equal(output.match(/: OK$/gm)?.length, names.length, output);
    // A second run has nothing to hash.
    const again = await openRun(dataDir);
    assert.deepEqual([again.hashed, again.reason], [0, undefined]);
    await again.manifest.close();
  });
});

Deno.test("a checkpoint appends what changed to the journal; manifest.sha256 is rewritten only at the end of the run", async () => {
  await withDataDir(async (dataDir) => {
    await dataDir.ensureDir(["posts"]);
    const first = await openRun(dataDir);
    for (let i = 0; i < 300; i++) await dataDir.writeText(["posts", `${i}.json`], `{"n":${i}}`);
    await first.manifest.close();
    const base = await text(dataDir, MANIFEST_FILE);
    assert.match(base, /\n#files 300\n$/);

    const second = await openRun(dataDir);
    await dataDir.writeText(["posts", "7.json"], '{"n":"seven"}');
    await dataDir.writeText(["posts", "new.json"], "{}");
    await dataDir.remove(["posts", "8.json"]);
    // A checkpoint: a state file is about to vouch for what was written.
    await dataDir.writeState([".matterbak", "state.json"], { checkpoint: true });
    const journal = (await text(dataDir, MANIFEST_JOURNAL)).split("\n").filter((l) => l !== "");
    assert.deepEqual(journal.map((line) => line.replace(/ \d+ \d+ /, " <size> <mtime> ")), [
      journal[0] as string,
      `+ ${sha256('{"n":"seven"}')} <size> <mtime> posts/7.json`,
      `+ ${sha256("{}")} <size> <mtime> posts/new.json`,
      "- posts/8.json",
    ]);
    assert.match(journal[0] as string, /^R \d+$/);
    assert.equal(await text(dataDir, MANIFEST_FILE), base, "not rewritten at a checkpoint");
    // A reader sees the journal applied.
    const seen = await readManifest(dataDir);
    assert.equal(seen.entries.get("posts/7.json")?.sha256, sha256('{"n":"seven"}'));
    assert.equal(seen.entries.has("posts/8.json"), false);
    assert.equal(seen.entries.size, 300);

    await second.manifest.close();
    const folded = await text(dataDir, MANIFEST_FILE);
    assert.match(folded, /\n#files 300\n$/);
    assert.ok(folded.includes(`${sha256('{"n":"seven"}')}  posts/7.json\n`));
    assert.ok(!folded.includes("posts/8.json"));
    await assert.rejects(Deno.stat(dataDir.path(MANIFEST_JOURNAL)), Deno.errors.NotFound);
  });
});

Deno.test("a journal past a quarter of the manifest is folded in during the run", async () => {
  await withDataDir(async (dataDir) => {
    await dataDir.ensureDir(["f"]);
    const start = await openRun(dataDir, 10);
    for (let i = 0; i < 12; i++) await dataDir.writeText(["f", `${i}`], `${i}`);
    await start.manifest.checkpoint();
    assert.match(await text(dataDir, MANIFEST_FILE), /\n#files 12\n$/);
    assert.match(await text(dataDir, MANIFEST_JOURNAL), /^R \d+\n$/, "started over");
    await dataDir.writeText(["f", "last"], "last");
    await start.manifest.close();
    assert.equal((await readManifest(dataDir)).entries.size, 13);
  });
});

Deno.test("after a crash the next run hashes what was written since the last checkpoint, not older files, and drops a torn journal line", async () => {
  await withDataDir(async (dataDir) => {
    await dataDir.ensureDir(["d"]);
    const first = await openRun(dataDir);
    await dataDir.writeText(["d", "old"], "old");
    await first.manifest.close();
    // Bit rot in a file an hour old: damage the manifest must keep showing.
    const hourAgo = new Date(Date.now() - 3600_000);
    await Deno.writeTextFile(dataDir.path(["d", "old"]), "rot");
    await Deno.utime(dataDir.path(["d", "old"]), hourAgo, hourAgo);

    const crashed = await openRun(dataDir);
    await dataDir.writeText(["d", "a"], "a");
    await crashed.manifest.checkpoint();
    await dataDir.writeText(["d", "b"], "b");
    crashed.manifest.abandon();
    // A line cut short by the crash.
    await Deno.writeTextFile(dataDir.path(MANIFEST_JOURNAL), "+ 12ab", { append: true });

    const seen = await readManifest(dataDir);
    assert.ok(seen.interruptedSince !== undefined);
    assert.deepEqual([...seen.entries.keys()].sort(), ["d/a", "d/old"]);

    const next = await openRun(dataDir);
    assert.deepEqual([next.hashed, next.reason], [1, "interrupted"]);
    assert.doesNotMatch(await text(dataDir, MANIFEST_JOURNAL), /12ab/);
    await next.manifest.close();
    const after = await readManifest(dataDir);
    assert.equal(after.interruptedSince, undefined);
    assert.deepEqual(
      [...after.entries].map(([path, e]) => [path, e.sha256]).sort(),
      [["d/a", sha256("a")], ["d/b", sha256("b")], ["d/old", sha256("old")]],
    );
    assert.deepEqual(
      (await listFiles(dataDir.root)).filter((p) => p.startsWith(".matterbak/")),
      [".matterbak/manifest.sha256"],
    );
  });
});

Deno.test("a file removed by a run stopped before its next checkpoint leaves no line: not missing, before or after the next run; one it was about to remove and did not is hashed again", async () => {
  await withDataDir(async (dataDir) => {
    await dataDir.ensureDir(["users"]);
    const first = await openRun(dataDir);
    await dataDir.writeText(["users", "u1.png"], "png");
    await dataDir.writeText(["users", "u2.png"], "png 2");
    await first.manifest.close();

    const crashed = await openRun(dataDir);
    await dataDir.writeText(["users", "u1.jpg"], "jpg");
    await dataDir.remove(["users", "u1.png"]);
    crashed.manifest.abandon();
    const seen = await readManifest(dataDir);
    assert.deepEqual([...seen.entries.keys()].sort(), ["users/u1.jpg", "users/u2.png"]);

    // Stopped between the line and the removal: the file is still there (and older than the
    // run, so only that line gets it hashed again).
    const hourAgo = new Date(Date.now() - 3600_000);
    await Deno.utime(dataDir.path(["users", "u2.png"]), hourAgo, hourAgo);
    const stopped = await openRun(dataDir);
    await stopped.manifest.removing(dataDir.path(["users", "u2.png"]));
    stopped.manifest.abandon();
    const next = await openRun(dataDir);
    await next.manifest.close();
    const after = await readManifest(dataDir);
    assert.deepEqual(
      [...after.entries].map(([path, e]) => [path, e.sha256]).sort(),
      [["users/u1.jpg", sha256("jpg")], ["users/u2.png", sha256("png 2")]],
    );
  });
});
