import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  type FsRecorder,
  type FsStep,
  isTempName,
  writeFileAtomic,
} from "../lib/store/atomic_write.ts";
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

Deno.test("a batch stopped at any step leaves each file old or new and whole; when it returns all are durable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const names = [["a", "1.json"], ["a", "2.json"], ["b", "3.json"]];
    const reset = async () => {
      for (const [folder, name] of names) {
        await Deno.mkdir(join(dir, folder as string), { recursive: true });
        await Deno.writeTextFile(join(dir, folder as string, name as string), "old");
      }
    };
    const batch = names.map((parts) => ({ parts, data: `new ${parts.join("/")}` }));
    await reset();
    const steps: FsStep[] = [];
    const renamed: number[] = [];
    await new DataDir(dir, (step) => void steps.push(step)).writeBatch(
      batch,
      (index) => renamed.push(index),
    );
    assert.deepEqual(renamed, [0, 1, 2]);
    // Each file's data synced after its last write and before its rename; each folder synced
    // after the last rename into it, before the batch returns.
    const at = (op: FsStep["op"], match: (step: FsStep) => boolean) =>
      steps.findLastIndex((s) => s.op === op && match(s));
    for (const step of steps) {
      if (step.op !== "rename") continue;
      const wrote = at("write", (s) => s.op === "write" && s.path === step.from);
      const synced = at("sync", (s) => s.op === "sync" && s.path === step.from);
      assert.ok(wrote >= 0 && synced > wrote && steps.indexOf(step) > synced, step.to);
    }
    for (const folder of ["a", "b"].map((f) => join(dir, f))) {
      const lastRename = at("rename", (s) => s.op === "rename" && dirname(s.to) === folder);
      assert.ok(lastRename >= 0);
      assert.ok(at("syncDir", (s) => s.op === "syncDir" && s.path === folder) > lastRename, folder);
    }
    for (const { parts, data } of batch) {
      assert.equal(await Deno.readTextFile(join(dir, ...parts)), data);
    }
    // A crash before each step in turn: every name holds the old file or the new one, whole,
    // and no temporary file stays.
    for (let stop = 0; stop < steps.length; stop++) {
      await reset();
      let count = 0;
      const crash: FsRecorder = () => {
        if (count++ === stop) throw new Error("crash");
      };
      await assert.rejects(new DataDir(dir, crash).writeBatch(batch), /crash/);
      const what = `stopped before ${steps[stop]?.op}`;
      for (const { parts, data } of batch) {
        const text = await Deno.readTextFile(join(dir, ...parts));
        assert.ok(text === "old" || text === data, `${what}: ${text}`);
      }
      for (const folder of ["a", "b"]) {
        for (const entry of Deno.readDirSync(join(dir, folder))) {
          assert.ok(!isTempName(entry.name), `${what}: ${entry.name}`);
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
