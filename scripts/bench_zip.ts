/**
 * The zip step alone, as a backup run ends: zips the data dir DATA into ZIP and prints the
 * result with the seconds it took as JSON, for the bench. With `--touch SHARE` it first edits
 * that share of the post files (as an update would: each replaced by a changed copy), untimed.
 */
import { parseArgs } from "node:util";
import { writeZip } from "../lib/zip/archive.ts";
import { DataDir, type RelPath } from "../lib/store/data_dir.ts";
import { fail } from "./_util.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { touch: { type: "string" } },
  allowPositionals: true,
});
const [data, zip] = positionals;
if (!data || !zip) fail("usage: bench_zip.ts DATA_DIR ZIP [--touch SHARE]");
const dataDir = new DataDir(data);

if (values.touch !== undefined) {
  const posts: RelPath[] = [];
  for await (const entry of dataDir.walk()) {
    const name = entry.parts.at(-1) as string;
    if (entry.kind === "file" && /^\d{8}-\d{12}__[a-z0-9]{26}\.json$/.test(name)) {
      posts.push(entry.parts);
    }
  }
  const count = Math.round(posts.length * Number(values.touch));
  for (let i = 0; i < count; i++) {
    const parts = posts[Math.floor((i * posts.length) / count)] as RelPath;
    const post = JSON.parse(await dataDir.readText(parts) ?? "{}");
    post.message = `${post.message} (edited)`;
    await dataDir.writeText(parts, JSON.stringify(post));
  }
}

const started = performance.now();
const result = await writeZip(dataDir, zip, { exclude: [] });
// deno-lint-ignore no-console
console.log(JSON.stringify({ ...result, seconds: (performance.now() - started) / 1000 }));
