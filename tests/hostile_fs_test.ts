/**
 * A tampered or unusual data dir: symbolic links out of it, names that are not UTF-8, a
 * read-only file system, aliases of the data dir. Nothing outside the data dir is written,
 * truncated or zipped, and every failure is one line (`error: ...`) with its exit status.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { configure, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import { canMount, type Harness, listFiles, type RunResult, withOneChannel } from "./harness.ts";
import { teamChannels } from "./expected_backup.ts";

configure({ useWebWorkers: false });

const QUICK = ["--skip-emojis"];
/** Creating symbolic links needs a privilege on Windows; the checks are the same code there. */
const links = Deno.build.os !== "windows";

/** Every file below `dir` with a hash of its content: equal snapshots mean nothing changed. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const path of await listFiles(dir)) {
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(join(dir, path)));
    out[path] = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
  }
  return out;
}

/** A folder outside the data dir with a file in it, which no run may touch. */
async function victim(h: Harness): Promise<{ dir: string; file: string }> {
  const dir = join(h.dir, "victim");
  await Deno.mkdir(dir, { recursive: true });
  const file = join(dir, "precious.txt");
  await Deno.writeTextFile(file, "precious data that must survive\n");
  return { dir, file };
}

/** Exit status 2 and one line `error: ...` matching `pattern`: no stack trace. */
function assertFailsWith(result: RunResult, status: number, pattern: RegExp): void {
  const all = result.err.join("\n");
  assert.equal(result.status, status, all);
  const errors = result.err.filter((line) => line.startsWith("error: "));
  assert.equal(errors.length, 1, all);
  assert.match(errors[0] as string, pattern);
  assert.ok(!/unexpected failure|^\s+at /m.test(all), `no stack trace:\n${all}`);
}

Deno.test({
  name:
    "a folder of the data dir replaced by a link to an outside folder: exit 2 naming it, nothing written outside",
  ignore: !links,
}, async () => {
  await withOneChannel(20, async ({ h, world, me }) => {
    assert.equal((await h.run(QUICK)).status, 0);
    const outside = await victim(h);
    const before = await snapshot(outside.dir);
    const team = [...world.teams.values()][0] as { id: string; name: string };
    world.advance(60_000);
    const channel = teamChannels(world, me.id)[0] as { id: string };
    world.addPost({ channelId: channel.id, userId: me.id, message: "new since the last run" });
    for (const folder of ["users", `teams/${team.id}__${team.name}`, ".matterbak"]) {
      const link = join(h.dataDir, folder);
      await Deno.rename(link, `${link}.real`);
      await Deno.symlink(outside.dir, link);
      const result = await h.run(QUICK);
      assertFailsWith(
        result,
        2,
        new RegExp(
          `^error: ${RegExp.escape(link)} is a symbolic link: nothing in the data dir`,
        ),
      );
      assert.deepEqual(await snapshot(outside.dir), before, `${folder}: nothing written outside`);
      await Deno.remove(link);
      await Deno.rename(`${link}.real`, link);
    }
    assert.equal((await h.run(QUICK)).status, 0, "the same data dir without links works again");
  });
});

Deno.test({
  name:
    "a lock file or seen log that is a link to an outside file: that file is neither truncated nor written",
  ignore: !links,
}, async () => {
  await withOneChannel(20, async ({ h, world, me }) => {
    assert.equal((await h.run(QUICK)).status, 0);
    const outside = await victim(h);
    const before = await snapshot(outside.dir);
    const channel = teamChannels(world, me.id)[0] as { id: string };
    const cases = [
      { file: ".matterbak/lock", args: QUICK },
      // A re-crawl starts a new seen log for the channel.
      { file: `.matterbak/channels/${channel.id}.seen`, args: ["--update-old-posts", ...QUICK] },
    ];
    for (const { file, args } of cases) {
      const link = join(h.dataDir, file);
      await Deno.remove(link).catch(() => {});
      await Deno.symlink(outside.file, link);
      const result = await h.run(args);
      assertFailsWith(
        result,
        2,
        new RegExp(
          `^error: ${RegExp.escape(link)} is a symbolic link: nothing in the data dir`,
        ),
      );
      assert.deepEqual(await snapshot(outside.dir), before, `${file}: the outside file is intact`);
      await Deno.remove(link);
    }
  });
});

async function run(command: string, ...args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stderr: "piped" }).output();
  assert.ok(
    output.success,
    `${command} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`,
  );
}

/** Runs `fn` with a fresh tmpfs mounted at a new folder inside `h.dir`. */
async function withTmpfs(
  h: Harness,
  size: string,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = join(h.dir, "mnt");
  await Deno.mkdir(dir);
  await run("mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir);
  try {
    await fn(dir);
  } finally {
    await run("umount", dir);
  }
}

const mounting = await canMount();

Deno.test({
  name: "a read-only data dir with a backup in it: exit 2 with one line naming it",
  ignore: !mounting,
  async fn() {
    await withOneChannel(10, async ({ h }) => {
      await withTmpfs(h, "8m", async (mnt) => {
        const dataDir = join(mnt, "data");
        assert.equal((await h.run(["-d", dataDir, ...QUICK])).status, 0);
        await run("mount", "-o", "remount,ro", mnt);
        const result = await h.run(["-d", dataDir, ...QUICK]);
        assertFailsWith(
          result,
          2,
          new RegExp(
            `^error: Cannot write ${
              RegExp.escape(join(dataDir, ".matterbak", "lock"))
            }: the file system is read-only$`,
          ),
        );
      });
    });
  },
});

/** Names and contents of every entry of a zip, as one string to search. */
async function zipText(path: string): Promise<{ names: string[]; text: string }> {
  const file = await Deno.open(path);
  const reader = new ZipReader(file.readable);
  const names: string[] = [];
  const parts: string[] = [];
  for (const entry of await reader.getEntries()) {
    names.push(entry.filename);
    if (!entry.directory) {
      parts.push(new TextDecoder().decode(await entry.getData(new Uint8ArrayWriter())));
    }
  }
  await reader.close();
  return { names, text: parts.join("\n") };
}

Deno.test({
  name:
    "links inside the data dir are left out of the zip with a warning: no outside byte is zipped",
  ignore: !links,
}, async () => {
  await withOneChannel(10, async ({ h, world, me }) => {
    assert.equal((await h.run(QUICK)).status, 0);
    const secretDir = join(h.dir, "secrets");
    await Deno.mkdir(secretDir);
    await Deno.writeTextFile(join(secretDir, "key.txt"), "TOP-SECRET-OUTSIDE");
    const team = [...world.teams.values()][0] as { id: string; name: string };
    await Deno.symlink(secretDir, join(h.dataDir, "notes"));
    const fileLink = join(h.dataDir, "teams", `${team.id}__${team.name}`, "key.json");
    await Deno.symlink(join(secretDir, "key.txt"), fileLink);
    const result = await h.run(QUICK);
    assert.equal(result.status, 0, result.err.join("\n"));
    for (const link of [join(h.dataDir, "notes"), fileLink]) {
      assert.ok(
        result.err.includes(
          `warning: Left out of the zip: ${link}: it is a symbolic link (never followed)`,
        ),
        result.err.join("\n"),
      );
    }
    const zip = await zipText(h.zipPath);
    assert.ok(zip.names.some((name) => name.endsWith(".json")), "the backup is zipped");
    assert.ok(!zip.names.some((name) => /notes|key/.test(name)), zip.names.join("\n"));
    assert.ok(!zip.text.includes("TOP-SECRET-OUTSIDE"));
    assert.ok(teamChannels(world, me.id).length > 0);
  });
});

Deno.test({
  name:
    "names that are not UTF-8 anywhere in the data dir are reported and skipped; every run still zips",
  // Linux file systems take any bytes as a name; APFS and NTFS refuse these.
  ignore: Deno.build.os !== "linux",
  async fn() {
    await withOneChannel(10, async ({ h, world, me }) => {
      assert.equal((await h.run(QUICK)).status, 0);
      const team = [...world.teams.values()][0] as { id: string; name: string };
      const teamDir = join(h.dataDir, "teams", `${team.id}__${team.name}`);
      // A file \xff.json in a team folder, a folder \xfe at the top, a temporary file \xfd.mbtmp.
      await run(
        "sh",
        "-c",
        `touch "$1/$(printf '\\377').json" && mkdir "$2/$(printf '\\376')" && ` +
          `touch "$2/$(printf '\\375').mbtmp"`,
        "sh",
        teamDir,
        h.dataDir,
      );
      for (const attempt of [1, 2]) {
        const result = await h.run(QUICK);
        assert.equal(result.status, 0, `run ${attempt}: ${result.err.join("\n")}`);
        const skipped = result.err.filter((line) =>
          line.includes("Left out of the zip") &&
          line.endsWith("its name is not valid UTF-8 (rename it)")
        );
        assert.equal(skipped.length, 3, result.err.join("\n"));
        const zip = await zipText(h.zipPath);
        assert.ok(zip.names.some((name) => name.startsWith("teams/")), "the backup is zipped");
      }
      assert.ok(teamChannels(world, me.id).length > 0);
    });
  },
});

Deno.test({
  name: "a read-only folder for -o or --report stops the run before it starts: exit 2, no request",
  ignore: !mounting,
  async fn() {
    await withOneChannel(10, async ({ h }) => {
      await withTmpfs(h, "1m", async (mnt) => {
        await run("mount", "-o", "remount,ro", mnt);
        const zip = join(mnt, "backup.zip");
        const report = join(mnt, "report.json");
        for (
          const [args, message] of [
            [["-o", zip], `--output-zip ${zip}`],
            [["--report", report], `--report ${report}`],
          ] as const
        ) {
          const result = await h.run([...args, ...QUICK]);
          assertFailsWith(
            result,
            2,
            new RegExp(
              `^error: Cannot write ${RegExp.escape(message)} into ${
                RegExp.escape(mnt)
              }: Read-only file system$`,
            ),
          );
          assert.equal(h.sim.requests.length, 0, "nothing was asked of the server");
        }
      });
    });
  },
});

Deno.test({
  name: "a zip path inside the data dir through a link is refused before anything is done",
  ignore: !links,
}, async () => {
  await withOneChannel(10, async ({ h }) => {
    await Deno.mkdir(h.dataDir, { recursive: true });
    const alias = join(h.dir, "alias");
    await Deno.symlink(h.dataDir, alias);
    const zip = join(alias, "backup.zip");
    const result = await h.run(["-o", zip, ...QUICK]);
    assertFailsWith(
      result,
      2,
      new RegExp(
        `^error: --output-zip ${RegExp.escape(zip)} is inside the data dir ${
          RegExp.escape(h.dataDir)
        } \\(through`,
      ),
    );
    assert.equal(h.sim.requests.length, 0, "nothing was asked of the server");
    assert.ok(!(await listFiles(h.dataDir)).some((path) => path.endsWith(".zip")));
  });
});

Deno.test({
  name: "credentials in the data dir reached through a link or a hard link stay out of the zip",
  ignore: !links,
}, async () => {
  await withOneChannel(10, async ({ h, world, me }) => {
    const password = "Pa55word-in-the-data-dir";
    world.credentials(me.id).password = password;
    await Deno.mkdir(h.dataDir, { recursive: true });
    const credentials = JSON.stringify({
      user: me.username,
      password,
      url: `${h.sim.url}/api`,
    });
    // One file under two names: credentials.json in the data dir is a hard link of it.
    const outside = join(h.dir, "outside-credentials.json");
    await Deno.writeTextFile(outside, credentials, { mode: 0o600 });
    await Deno.link(outside, join(h.dataDir, "credentials.json"));
    const alias = join(h.dir, "alias");
    await Deno.symlink(h.dataDir, alias);
    for (const path of [join(alias, "credentials.json"), outside]) {
      const result = await h.run(["--credentials", path, ...QUICK]);
      assert.equal(result.status, 0, result.err.join("\n"));
      const zip = await zipText(h.zipPath);
      assert.ok(zip.names.some((name) => name.startsWith("teams/")), "the backup is zipped");
      assert.ok(!zip.text.includes(password), `${path}: the password is not in the zip`);
    }
  });
});

Deno.test({
  name: "a report that cannot be written at the end (a full disk) makes the exit status 2",
  ignore: !mounting,
  async fn() {
    await withOneChannel(10, async ({ h }) => {
      await withTmpfs(h, "64k", async (mnt) => {
        // Full, yet an empty file can still be created: the check at the start passes.
        await Deno.writeFile(join(mnt, "filler"), new Uint8Array(64 * 1024)).catch(() => {});
        const report = join(mnt, "report.json");
        const result = await h.run(["--report", report, ...QUICK]);
        assertFailsWith(
          result,
          2,
          new RegExp(`^error: cannot write the report ${RegExp.escape(report)}: The disk is full`),
        );
        assert.ok((await Deno.stat(h.zipPath)).size > 0, "the backup itself was done");
      });
    });
  },
});
