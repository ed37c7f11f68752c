/**
 * The floor for `matterbak verify` in Deno: every file the manifest of a data dir lists opened,
 * read, closed, hashed with SHA-256 and compared, nothing else (no walk, no checks of records),
 * split over N workers as verify splits its reads; run with the binary's flags, so each open
 * pays the permission check verify pays. Prints `<files> <mismatches> <seconds>` for the bench.
 */
const [dataDir, workersArg] = Deno.args;
if (!dataDir) throw new Error("usage: bench_verify_floor.ts DATA_DIR [WORKERS]");
const workers = Number(workersArg ?? navigator.hardwareConcurrency);

const started = performance.now();
const lines = (await Deno.readTextFile(`${dataDir}/.matterbak/manifest.sha256`)).split("\n")
  .filter((line) => line.length > 66 && !line.startsWith("#"));
const share = Math.ceil(lines.length / workers);
const mismatches = await Promise.all(
  Array.from({ length: workers }, (_, i) =>
    new Promise<number>((resolve, reject) => {
      const worker = new Worker(new URL("./bench_verify_floor_worker.ts", import.meta.url), {
        type: "module",
      });
      worker.onmessage = (event: MessageEvent<number>) => {
        worker.terminate();
        resolve(event.data);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        worker.terminate();
        reject(new Error(event.message));
      };
      worker.postMessage({ dataDir, lines: lines.slice(i * share, (i + 1) * share) });
    })),
);
const seconds = (performance.now() - started) / 1000;
console.log(`${lines.length} ${mismatches.reduce((a, b) => a + b, 0)} ${seconds.toFixed(3)}`);
