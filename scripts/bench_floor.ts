/**
 * The floor for durable writes on this disk: writes every file of a data dir again into an
 * empty folder as a plain script would, each to a temporary name, synced and renamed, the
 * syncs of each batch of 200 issued in parallel and each folder synced once per batch. The
 * files are read into memory first (not timed). Prints `<files> <seconds>` for the bench.
 */
import { dirname, join, relative } from "node:path";

const [source, target] = Deno.args;
if (!source || !target) throw new Error("usage: bench_floor.ts SOURCE_DATA_DIR EMPTY_TARGET");
const BATCH = 200;

const files: { path: string; bytes: Uint8Array }[] = [];
const folders = new Set<string>();
const read = (dir: string) => {
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) read(path);
    else if (entry.isFile) {
      files.push({ path: relative(source, path), bytes: Deno.readFileSync(path) });
    }
  }
};
read(source);
for (const file of files) folders.add(dirname(join(target, file.path)));
for (const folder of folders) Deno.mkdirSync(folder, { recursive: true });

const started = performance.now();
for (let i = 0; i < files.length; i += BATCH) {
  const batch = files.slice(i, i + BATCH);
  const written = await Promise.all(batch.map(async ({ path, bytes }) => {
    const final = join(target, path);
    const temp = `${final}.tmp`;
    const file = await Deno.open(temp, { write: true, createNew: true });
    try {
      for (let offset = 0; offset < bytes.length;) {
        offset += await file.write(bytes.subarray(offset));
      }
      await file.sync();
    } finally {
      file.close();
    }
    return { temp, final };
  }));
  for (const { temp, final } of written) await Deno.rename(temp, final);
  for (const folder of new Set(written.map(({ final }) => dirname(final)))) {
    const dir = await Deno.open(folder, { read: true });
    await dir.sync();
    dir.close();
  }
}
// deno-lint-ignore no-console
console.log(`${files.length} ${((performance.now() - started) / 1000).toFixed(3)}`);
