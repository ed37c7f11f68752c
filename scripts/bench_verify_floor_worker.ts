/** A worker of bench_verify_floor.ts: its share of the manifest's lines, read and hashed. */
/// <reference lib="deno.worker" />
import { createHash } from "node:crypto";

self.onmessage = (event: MessageEvent<{ dataDir: string; lines: string[] }>) => {
  const { dataDir, lines } = event.data;
  const buffer = new Uint8Array(1 << 16);
  let mismatches = 0;
  for (const line of lines) {
    // sha256sum's format: 64 hex digits, two spaces, the path (no escaped names in the bench).
    const file = Deno.openSync(`${dataDir}/${line.slice(66)}`, { read: true });
    const hash = createHash("sha256");
    try {
      for (let read = file.readSync(buffer); read; read = file.readSync(buffer)) {
        hash.update(buffer.subarray(0, read));
      }
    } finally {
      file.close();
    }
    if (hash.digest("hex") !== line.slice(0, 64)) mismatches++;
  }
  self.postMessage(mismatches);
};
