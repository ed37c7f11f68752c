import assert from "node:assert/strict";
import { writeFileAtomic } from "../lib/store/atomic_write.ts";
import { DataDir } from "../lib/store/data_dir.ts";
import { SizeMismatchError, StorageError } from "../lib/util/errors.ts";
import { listFiles } from "./harness.ts";

function streamOf(chunks: Uint8Array[], fail?: Error): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++] as Uint8Array);
      else if (fail) controller.error(fail);
      else controller.close();
    },
  });
}

Deno.test("an atomic write replaces the file whole and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.json`, "old");
    assert.equal(await writeFileAtomic(`${dir}/a.json`, "new content"), 11);
    assert.equal(await Deno.readTextFile(`${dir}/a.json`), "new content");
    await writeFileAtomic(`${dir}/b.bin`, streamOf([new Uint8Array([1, 2]), new Uint8Array([3])]), {
      expectedSize: 3,
    });
    assert.deepEqual(await Deno.readFile(`${dir}/b.bin`), new Uint8Array([1, 2, 3]));
    assert.deepEqual(await listFiles(dir), ["a.json", "b.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a short download, a broken stream or an abort leaves the old file and no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/f`, "old");
    await assert.rejects(
      writeFileAtomic(`${dir}/f`, streamOf([new Uint8Array(5)]), { expectedSize: 10 }),
      SizeMismatchError,
    );
    await assert.rejects(
      writeFileAtomic(`${dir}/f`, streamOf([new Uint8Array(5)], new Error("reset"))),
      /reset/,
    );
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(
      writeFileAtomic(`${dir}/f`, streamOf([new Uint8Array(5)]), { signal: controller.signal }),
      /stop/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/f`), "old");
    assert.deepEqual(await listFiles(dir), ["f"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("temporary files left by a crash are removed at the next start, nothing else", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/x/y`, { recursive: true });
    await Deno.writeTextFile(`${dir}/x/y/.1-2.mbtmp`, "half");
    await Deno.writeTextFile(`${dir}/x/.3-4.mbtmp`, "half");
    await Deno.writeTextFile(`${dir}/x/keep.json`, "{}");
    assert.equal(await new DataDir(dir).removeStaleTempFiles(), 2);
    assert.deepEqual(await listFiles(dir), ["x/keep.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the data dir refuses any path that would leave it, whatever the sanitiser did", () => {
  const data = new DataDir("/tmp/backup-root");
  for (
    const parts of [["..", "x"], ["a/../../x"], ["/etc/passwd"], ["a", ""], ["nul\u0000"], [
      "a\\..\\b",
    ]]
  ) {
    assert.throws(() => data.path(parts), StorageError, JSON.stringify(parts));
  }
  assert.equal(data.path(["teams", "x.json"]), "/tmp/backup-root/teams/x.json");
});
