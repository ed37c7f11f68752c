/**
 * The zip step alone, as a backup run ends: zips the data dir DATA into ZIP and prints the
 * result with the seconds it took as JSON, for the bench.
 */
import { writeZip } from "../lib/zip/archive.ts";
import { DataDir } from "../lib/store/data_dir.ts";

const [data, zip] = Deno.args;
if (!data || !zip) throw new Error("usage: bench_zip.ts DATA_DIR ZIP");
const started = performance.now();
const result = await writeZip(new DataDir(data), zip, { exclude: [] });
// deno-lint-ignore no-console
console.log(JSON.stringify({ ...result, seconds: (performance.now() - started) / 1000 }));
