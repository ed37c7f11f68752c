import assert from "node:assert/strict";
import { pathHash } from "../lib/store/manifest.ts";
import { NumberSet } from "../lib/util/number_set.ts";

Deno.test("NumberSet finds what was added, also added after a search and beyond its first buffer", () => {
  const set = new NumberSet();
  assert.equal(set.has(1), false);
  const hashes = Array.from({ length: 5000 }, (_, i) => pathHash(`teams/t/c/${i}.json`));
  for (const hash of hashes.slice(0, 2500)) set.add(hash);
  assert.ok(hashes.slice(0, 2500).every((hash) => set.has(hash)));
  assert.ok(hashes.slice(2500).every((hash) => !set.has(hash)));
  for (const hash of hashes.slice(2500)) set.add(hash);
  assert.equal(set.size, 5000);
  assert.ok(hashes.every((hash) => set.has(hash)));
  assert.equal(set.has(pathHash("elsewhere")), false);
  assert.deepEqual([...set.values()].sort(), [...hashes].sort());
});
