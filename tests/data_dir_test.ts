/**
 * Nothing below the data dir is read, written, created or removed through a symbolic link,
 * whether the link is a folder on the way or the file itself.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DataDir,
  MAX_READ_WHOLE_BYTES,
  type RelPath,
  UnfitFileError,
} from "../lib/store/data_dir.ts";
import { openNoFollow } from "../lib/store/atomic_write.ts";
import { StorageError } from "../lib/util/errors.ts";
import { listFiles } from "./harness.ts";

/** Every entry below `dir`, folders included, sorted. */
async function entriesBelow(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    out.push(path);
    if (entry.isDirectory) out.push(...await entriesBelow(dir, path));
  }
  return out.sort();
}

/** Each operation of a DataDir on `parts`, by name. */
function operations(data: DataDir, parts: RelPath): Record<string, () => Promise<unknown>> {
  const bytes = new Uint8Array([1, 2, 3]);
  return {
    ensureDir: () => data.ensureDir(parts),
    writeText: () => data.writeText(parts, "x"),
    writeJson: () => data.writeJson(parts, { x: 1 }),
    writeState: () => data.writeState(parts, { x: 1 }),
    writeBytes: () => data.writeBytes(parts, bytes),
    writeStream: () => data.writeStream(parts, ReadableStream.from([bytes]), 3),
    openForAppend: () => data.openForAppend(parts).then((file) => file.close()),
    openForUpdate: () => data.openForUpdate(parts).then((file) => file.close()),
    syncDir: () => data.syncDir(parts),
    readText: () => data.readText(parts),
    readJson: () => data.readJson(parts),
    readBytes: () => data.readBytes(parts),
    openForReading: () => data.openForReading(parts).then((file) => file.close()),
    list: () => data.list(parts),
    exists: () => data.exists(parts),
    size: () => data.size(parts),
    stat: () => data.stat(parts),
    remove: () => data.remove(parts),
  };
}

/** Creating symbolic links needs a privilege on Windows; the checks are the same code there. */
const links = Deno.build.os !== "windows";

Deno.test({
  name:
    "every operation refuses a link on the way or at the end, naming it, and leaves the outside alone",
  ignore: !links,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = join(dir, "data");
    const outside = join(dir, "outside");
    await Deno.mkdir(join(root, "real"), { recursive: true });
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "f"), "precious");
    await Deno.writeTextFile(join(outside, "victim"), "precious");
    await Deno.symlink(outside, join(root, "folder-link"));
    await Deno.symlink(join(outside, "victim"), join(root, "real", "file-link"));
    // A link to nothing: `mkdir -p` through it would create the folder it names.
    await Deno.symlink(join(outside, "new"), join(root, "dangling"));
    const data = new DataDir(root);
    const cases: Array<[RelPath, string]> = [
      [["folder-link", "f"], join(root, "folder-link")],
      [["folder-link", "sub", "f"], join(root, "folder-link")],
      [["real", "file-link"], join(root, "real", "file-link")],
      [["dangling", "f"], join(root, "dangling")],
    ];
    for (const [parts, link] of cases) {
      for (const [name, operation] of Object.entries(operations(data, parts))) {
        await assert.rejects(
          operation(),
          (error: unknown) =>
            error instanceof StorageError &&
            error.message.startsWith(`${link} is a symbolic link: nothing in the data dir`),
          `${name} ${parts.join("/")}`,
        );
      }
    }
    assert.deepEqual(await entriesBelow(outside), ["f", "victim"]);
    assert.equal(await Deno.readTextFile(join(outside, "f")), "precious");
    assert.equal(await Deno.readTextFile(join(outside, "victim")), "precious");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "the same operations work on real folders and files, and the root itself may be a link",
  ignore: !links,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "real-root"));
    await Deno.symlink(join(dir, "real-root"), join(dir, "data"));
    const data = new DataDir(join(dir, "data"));
    const parts = ["a", "b", "f"];
    await data.ensureDir(["a", "b"]);
    for (const [name, operation] of Object.entries(operations(data, parts))) {
      if (name === "ensureDir" || name === "syncDir" || name === "list") continue;
      await operation();
    }
    await data.ensureDir(parts);
    await data.syncDir(parts);
    assert.deepEqual(await data.list(parts), []);
    assert.deepEqual(await listFiles(join(dir, "real-root")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "a walk reports links and entries that are neither files nor folders, and never enters them",
  ignore: !links,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const outside = join(dir, "outside");
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "secret"), "x");
    const root = join(dir, "data");
    await Deno.mkdir(join(root, "a"), { recursive: true });
    await Deno.writeTextFile(join(root, "a", "f.json"), "{}");
    await Deno.symlink(outside, join(root, "a", "link"));
    const fifo = await new Deno.Command("mkfifo", { args: [join(root, "a", "pipe")] }).output();
    assert.ok(fifo.success);
    const entries = (await Array.fromAsync(new DataDir(root).walk())).map((entry) => {
      if (entry.kind !== "file") return entry;
      // A file comes with what lstat says of it: the file itself, not a link.
      assert.ok(entry.info.isFile && entry.info.size === 2);
      return { parts: entry.parts, kind: entry.kind };
    });
    entries.sort((x, y) => x.parts.join("/").localeCompare(y.parts.join("/")));
    assert.deepEqual(entries, [
      { parts: ["a"], kind: "directory" },
      { parts: ["a", "f.json"], kind: "file" },
      { parts: ["a", "link"], kind: "skipped", reason: "it is a symbolic link (never followed)" },
      { parts: ["a", "pipe"], kind: "skipped", reason: "it is neither a file nor a folder" },
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a file the walk listed is read only if it is still that file, not a link put in its place",
  ignore: !links,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "secret"), "outside");
    const root = join(dir, "data");
    await Deno.mkdir(join(root, "a"), { recursive: true });
    await Deno.writeTextFile(join(root, "a", "f.json"), "{}");
    const data = new DataDir(root);
    const [entry] = await Array.fromAsync(data.walk(["a"]));
    assert.ok(entry?.kind === "file");
    assert.equal(new TextDecoder().decode(data.readWalked(entry)), "{}");
    // Swapped for a link after the walk saw it: refused before a byte is read.
    await Deno.remove(join(root, "a", "f.json"));
    await Deno.symlink(join(dir, "secret"), join(root, "a", "f.json"));
    assert.throws(() => data.readWalked(entry), StorageError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "openNoFollow refuses a link, opens the file itself, and creates a missing one only when asked",
  ignore: !links,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "victim"), "precious");
    await Deno.symlink(join(dir, "victim"), join(dir, "link"));
    await Deno.symlink(join(dir, "nowhere"), join(dir, "dangling"));
    for (const name of ["link", "dangling"]) {
      await assert.rejects(
        openNoFollow(join(dir, name), { read: true, write: true, create: true }),
        StorageError,
        name,
      );
    }
    assert.deepEqual(await entriesBelow(dir), ["dangling", "link", "victim"]);
    assert.equal(await Deno.readTextFile(join(dir, "victim")), "precious");
    await assert.rejects(openNoFollow(join(dir, "new"), { append: true }), Deno.errors.NotFound);
    const created = await openNoFollow(join(dir, "new"), { read: true, write: true, create: true });
    created.close();
    const opened = await openNoFollow(join(dir, "victim"), { append: true });
    await opened.write(new TextEncoder().encode("!"));
    opened.close();
    assert.equal(await Deno.readTextFile(join(dir, "victim")), "precious!");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Opens `fifo` for writing again and again after a second: a reader stuck in its open gets
 * the end of the file, so a regression fails its assertion instead of hanging the suite.
 */
function rescuer(fifo: string): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", 'sleep 1; while :; do : > "$0"; done', fifo],
    stdout: "null",
    stderr: "null",
  }).spawn();
}

function isUnfit(path: string, reason: RegExp) {
  return (error: unknown) =>
    error instanceof UnfitFileError && error.path === path && reason.test(error.reason);
}

Deno.test({
  name:
    "a FIFO at a file's name is never opened by a read, and a file over the limit never read whole",
  ignore: !links,
}, async () => {
  const dir = await Deno.makeTempDir();
  const root = join(dir, "data");
  await Deno.mkdir(join(root, "a"), { recursive: true });
  const fifo = join(root, "a", "pipe.json");
  assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
  const huge = join(root, "a", "huge.json");
  await Deno.writeTextFile(huge, "{}");
  await Deno.truncate(huge, MAX_READ_WHOLE_BYTES + 1);
  const rescue = rescuer(fifo);
  try {
    const data = new DataDir(root);
    const notRegular = /^a FIFO \(named pipe\), not a regular file$/;
    const pipe = ["a", "pipe.json"];
    for (
      const [name, read] of Object.entries({
        readText: () => data.readText(pipe),
        readBytes: () => data.readBytes(pipe),
        openForReading: () => data.openForReading(pipe).then((file) => file.close()),
        openForReadingSync: () =>
          Promise.resolve().then(() => data.openForReadingSync(pipe).close()),
        openForAppend: () => data.openForAppend(pipe).then((file) => file.close()),
        openForUpdate: () => data.openForUpdate(pipe).then((file) => file.close()),
      })
    ) {
      await assert.rejects(read(), isUnfit(fifo, notRegular), name);
    }
    assert.equal(await data.readJson(pipe), undefined, "readJson: as a damaged file");
    // In a folder prepared for reads the listing tells, without an lstat per file.
    await data.prepareReads(["a"]);
    assert.throws(() => data.openForReadingSync(pipe), isUnfit(fifo, notRegular));

    const large = ["a", "huge.json"];
    const tooLarge = new RegExp(
      `^${MAX_READ_WHOLE_BYTES + 1} bytes, more than the ${MAX_READ_WHOLE_BYTES} a file read `,
    );
    await assert.rejects(data.readText(large), isUnfit(huge, tooLarge), "readText");
    await assert.rejects(data.readBytes(large), isUnfit(huge, tooLarge), "readBytes");
    assert.equal(await data.readJson(large), undefined, "readJson");
    // Read in pieces, any size is fine.
    (await data.openForReading(large)).close();
    data.openForReadingSync(large).close();

    // A write puts a regular file in their place.
    assert.equal(await data.writeJson(pipe, { x: 1 }), true);
    assert.equal(await data.writeJson(large, { x: 2 }), true);
    assert.equal(await Deno.readTextFile(fifo), '{"x":1}');
    assert.equal(await Deno.readTextFile(huge), '{"x":2}');
  } finally {
    rescue.kill("SIGKILL");
    await rescue.status;
    await Deno.remove(dir, { recursive: true });
  }
});
