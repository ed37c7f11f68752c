/** The mutation list of `deno task mutate` still fits the code, so it cannot rot unseen. */
import assert from "node:assert/strict";
import { checkMutations, MUTATIONS } from "../scripts/mutate.ts";

Deno.test("every mutation's search string occurs exactly once in its file, and its tests exist", async () => {
  assert.ok(MUTATIONS.length >= 21, `${MUTATIONS.length} mutations`);
  assert.deepEqual(await checkMutations(MUTATIONS), []);
});

Deno.test("a search string that is gone or ambiguous is reported by name", async () => {
  const base = { cost: "", replace: "x", tests: ["tests/mutations_test.ts"] };
  assert.deepEqual(
    await checkMutations([
      { ...base, name: "gone", file: "deno.json", search: "no such text in deno.json" },
      { ...base, name: "twice", file: "deno.json", search: '"' },
      { ...base, name: "nofile", file: "lib/none.ts", search: "a", tests: ["tests/none.ts"] },
    ]),
    [
      'gone: the search string occurs 0 times in deno.json: "no such text in deno.json"',
      `twice: the search string occurs ${
        (await Deno.readTextFile(new URL("../deno.json", import.meta.url))).split('"').length - 1
      } times in deno.json: "\\""`,
      "nofile: lib/none.ts not found",
      "nofile: test file tests/none.ts not found",
    ],
  );
});
