/**
 * The data dir's zip: built in full, left as it is when nothing changed, rebuilt from the
 * previous zip's compressed bytes when a few files changed; always readable by unzip, zip.js
 * and Python's zipfile, zip64 included.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { configure, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import { DataDir } from "../lib/store/data_dir.ts";
import { writeZip, type ZipOptions } from "../lib/zip/archive.ts";
import { PreviousZip, ReuseError } from "../lib/zip/previous.ts";

configure({ useWebWorkers: false });

const text = (s: string) => new TextEncoder().encode(s);

/** A small data dir: posts, a stored picture, a file past the size read whole, our state. */
async function makeDataDir(root: string): Promise<void> {
  const files: Record<string, Uint8Array> = {
    ".matterbak/channels/c1.json": text('{"watermark":1}'),
    ".matterbak/lock": text("pid 1"),
    "users/u1__bob.json": text('{"id":"u1","username":"bob"}'),
    "teams/t1__team.json": text('{"id":"t1"}'),
    "teams/t1__team/c1__town.json": text('{"id":"c1"}'),
    "teams/t1__team/c1__town/files/f1__photo.png": crypto.getRandomValues(new Uint8Array(5000)),
    "teams/t1__team/c1__town/files/f2__big.txt": text("a line of a big text file\n".repeat(60_000)),
  };
  for (let i = 0; i < 40; i++) {
    files[`teams/t1__team/c1__town/2024010${i % 10}-00000000000${i}__p${i}.json`] = text(
      JSON.stringify({ id: `p${i}`, message: `message number ${i} `.repeat(20) }),
    );
  }
  for (const [path, bytes] of Object.entries(files)) {
    await Deno.mkdir(dirname(join(root, path)), { recursive: true });
    await Deno.writeFile(join(root, path), bytes);
  }
}

/** Every file below the data dir but the lock and the zip's record, by zip name. */
async function dataFiles(root: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const walk = async (dir: string, prefix: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const name = `${prefix}${entry.name}`;
      if (entry.isDirectory) await walk(join(dir, entry.name), `${name}/`);
      else if (![".matterbak/lock", ".matterbak/zip.json"].includes(name)) {
        out.set(name, await Deno.readFile(join(dir, entry.name)));
      }
    }
  };
  await walk(root, "");
  return out;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The zip holds exactly the data dir's files, as unzip, zip.js and Python's zipfile read it. */
async function assertZipHolds(zipPath: string, root: string): Promise<void> {
  const expected = await dataFiles(root);
  const hashes = Object.fromEntries(
    await Promise.all([...expected].map(async ([name, bytes]) => [name, await sha256(bytes)])),
  );

  const unzip = await new Deno.Command("unzip", { args: ["-t", zipPath] }).output();
  const report = new TextDecoder().decode(unzip.stdout);
  assert.equal(unzip.code, 0, report);
  assert.match(report, /No errors detected/);

  const reader = new ZipReader((await Deno.open(zipPath)).readable);
  const read: Record<string, string> = {};
  for (const entry of await reader.getEntries()) {
    if (entry.directory) continue;
    const bytes = await entry.getData(new Uint8ArrayWriter(), { checkSignature: true });
    read[entry.filename] = await sha256(bytes);
  }
  await reader.close();
  assert.deepEqual(read, hashes, "zip.js");

  const python = await new Deno.Command(await pythonCommand(), {
    args: [
      "-c",
      "import hashlib, json, sys, zipfile\n" +
      "z = zipfile.ZipFile(sys.argv[1])\n" +
      "assert z.testzip() is None\n" +
      "print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest()" +
      " for i in z.infolist() if not i.is_dir()}))",
      zipPath,
    ],
  }).output();
  assert.equal(python.code, 0, new TextDecoder().decode(python.stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(python.stdout)), hashes, "zipfile");
}

/** Python 3 is `python3` on Linux and macOS, `python` on Windows. */
async function pythonCommand(): Promise<string> {
  for (const name of ["python3", "python"]) {
    const found = await new Deno.Command(name, { args: ["--version"] }).output().then(
      (o) => o.success,
      () => false,
    );
    if (found) return name;
  }
  throw new Error("Python 3 is needed to read the zip back with zipfile");
}

interface Fixture {
  root: string;
  zipPath: string;
  dataDir: DataDir;
  zip(options?: Partial<ZipOptions>): ReturnType<typeof writeZip>;
}

async function withFixture(test: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "matterbak-zip-" });
  try {
    const root = join(dir, "data");
    await makeDataDir(root);
    const dataDir = new DataDir(root);
    const zipPath = join(dir, "backup.zip");
    await test({
      root,
      zipPath,
      dataDir,
      zip: (options = {}) => writeZip(dataDir, zipPath, { exclude: [], ...options }),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The inode, time and size of a file: equal ones mean it was not rewritten. */
async function identity(path: string) {
  const info = await Deno.stat(path);
  return [info.ino, info.mtime?.getTime(), info.size];
}

/** Replaces a file atomically, as the backup does (a new inode). */
async function replace(path: string, bytes: Uint8Array): Promise<void> {
  await Deno.writeFile(`${path}.new`, bytes);
  await Deno.rename(`${path}.new`, path);
}

const POST = "teams/t1__team/c1__town/20240101-000000000001__p1.json";

for (const forceZip64 of [false, true]) {
  const zip64 = forceZip64 ? " (zip64 records everywhere)" : "";
  Deno.test(`a zip built anew, then from the previous one after changes, holds the data dir${zip64}`, async () => {
    await withFixture(async (f) => {
      const first = await f.zip({ forceZip64 });
      assert.equal(first.unchanged, false);
      assert.equal(first.copied, 0);
      assert.equal(first.written, 46);
      await assertZipHolds(f.zipPath, f.root);

      // One post edited (same size), one added, one removed.
      const post = join(f.root, POST);
      const edited = await Deno.readFile(post);
      edited[10] = edited[10] === 0x41 ? 0x42 : 0x41;
      await replace(post, edited);
      await Deno.writeFile(join(f.root, "users/u2__carol.json"), text('{"id":"u2"}'));
      await Deno.remove(join(f.root, "teams/t1__team/c1__town/20240102-000000000002__p2.json"));
      const second = await f.zip({ forceZip64 });
      assert.deepEqual(
        { unchanged: second.unchanged, copied: second.copied, written: second.written },
        { unchanged: false, copied: 44, written: 2 },
        "only the edited and the new file are compressed; the others are copied",
      );
      await assertZipHolds(f.zipPath, f.root);
    });
  });
}

Deno.test("a zip whose data dir did not change is left as it is, not even rewritten", async () => {
  await withFixture(async (f) => {
    await f.zip();
    const bytes = await Deno.readFile(f.zipPath);
    const before = await identity(f.zipPath);
    const record = await Deno.readFile(join(f.root, ".matterbak/zip.json"));
    // The files are that recent: their content is compared (see RACY_MS), and still the same.
    const again = await f.zip();
    assert.equal(again.unchanged, true);
    assert.equal(again.entries, 53);
    assert.equal(again.bytes, bytes.length);
    assert.deepEqual(await identity(f.zipPath), before);
    assert.deepEqual(await Deno.readFile(f.zipPath), bytes);
    assert.deepEqual(await Deno.readFile(join(f.root, ".matterbak/zip.json")), record);
    // The lock is never zipped: its changes change nothing.
    await Deno.writeTextFile(join(f.root, ".matterbak/lock"), "pid 2");
    assert.equal((await f.zip()).unchanged, true);
  });
});

Deno.test("a file replaced by one of the same size and time is read again (its inode differs)", async () => {
  await withFixture(async (f) => {
    const post = join(f.root, POST);
    const old = new Date(Date.now() - 60_000);
    await Deno.utime(post, old, old);
    await f.zip();
    const edited = await Deno.readFile(post);
    edited[12] = (edited[12] as number) ^ 1;
    await replace(post, edited);
    await Deno.utime(post, old, old);
    const again = await f.zip();
    assert.equal(again.written, 1);
    await assertZipHolds(f.zipPath, f.root);
  });
});

Deno.test("a racy file changed in place within the same millisecond is caught by its CRC", async () => {
  await withFixture(async (f) => {
    const post = join(f.root, POST);
    const { mtime } = await Deno.stat(post);
    // Zipped right after it was written: its time proves little, and the zip says so.
    await f.zip();
    const edited = await Deno.readFile(post);
    edited[12] = (edited[12] as number) ^ 1;
    const file = await Deno.open(post, { write: true });
    await file.write(edited);
    file.close();
    await Deno.utime(post, mtime as Date, mtime as Date);
    const again = await f.zip();
    assert.equal(again.unchanged, false);
    assert.equal(again.written, 1);
    await assertZipHolds(f.zipPath, f.root);
  });
});

Deno.test("a zip that is missing, touched or not recorded is built anew", async () => {
  await withFixture(async (f) => {
    await f.zip();
    const now = new Date();
    await Deno.utime(f.zipPath, now, new Date(now.getTime() - 5000));
    const touched = await f.zip();
    assert.deepEqual([touched.unchanged, touched.copied, touched.written], [false, 0, 46]);
    assert.equal((await f.zip()).unchanged, true, "the new zip is recorded");

    await Deno.writeTextFile(join(f.root, ".matterbak/zip.json"), "{garbage");
    const unrecorded = await f.zip();
    assert.deepEqual([unrecorded.unchanged, unrecorded.copied], [false, 0]);

    await Deno.remove(f.zipPath);
    const missing = await f.zip();
    assert.deepEqual([missing.unchanged, missing.copied], [false, 0]);
    await assertZipHolds(f.zipPath, f.root);
  });
});

Deno.test("an interrupted incremental zip leaves the old zip and its record; the next run completes", async () => {
  await withFixture(async (f) => {
    await f.zip();
    const bytes = await Deno.readFile(f.zipPath);
    const before = await identity(f.zipPath);
    const record = await Deno.readFile(join(f.root, ".matterbak/zip.json"));
    const post = join(f.root, POST);
    await replace(post, text('{"id":"p1","message":"edited"}'));
    // Stops the build as soon as the new archive is being written.
    const folder = dirname(f.zipPath);
    let stoppedWhileWriting = false;
    const signal = {
      throwIfAborted() {
        if ([...Deno.readDirSync(folder)].some((e) => e.name.endsWith(".mbtmp"))) {
          stoppedWhileWriting = true;
          throw new DOMException("stopped", "AbortError");
        }
      },
    } as unknown as AbortSignal;
    await assert.rejects(f.zip({ signal }), /stopped/);
    assert.ok(stoppedWhileWriting);
    assert.deepEqual(await identity(f.zipPath), before);
    assert.deepEqual(await Deno.readFile(f.zipPath), bytes);
    assert.deepEqual(await Deno.readFile(join(f.root, ".matterbak/zip.json")), record);
    assert.deepEqual(
      [...Deno.readDirSync(folder)].map((e) => e.name).sort(),
      ["backup.zip", "data"],
      "no half-written zip is left",
    );
    const next = await f.zip();
    assert.deepEqual([next.unchanged, next.written], [false, 1]);
    assert.ok(next.copied > 40, "the old zip is still used");
    await assertZipHolds(f.zipPath, f.root);
  });
});

Deno.test("an entry of the previous zip is copied only under the name its local header holds", async () => {
  await withFixture(async (f) => {
    await f.zip();
    const record = JSON.parse(await Deno.readTextFile(join(f.root, ".matterbak/zip.json")));
    const previous = await PreviousZip.open(f.zipPath, record);
    assert.ok(previous);
    try {
      const index = previous.find(text(POST));
      assert.ok(index >= 0);
      const copied = await previous.copied(index, text(POST));
      assert.ok(copied.raw instanceof Uint8Array);
      assert.deepEqual(copied.raw.subarray(30, 30 + POST.length), text(POST));
      await assert.rejects(previous.copied(index, text(POST.replace("p1", "p9"))), ReuseError);
    } finally {
      previous.close();
    }
    assert.equal(
      await PreviousZip.open(f.zipPath, { ...record, size: record.size + 1 }),
      undefined,
    );
    assert.equal(await PreviousZip.open(`${f.zipPath}.other`, record), undefined);
  });
});
