/**
 * The embed check (scripts/check_embed.ts) reads what `deno compile` really embeds and names
 * what is missing: a small program (tests/fixtures/embed/) is compiled here against the
 * stand-in runtime, as CI compiles main.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import { REPO_ROOT } from "../scripts/_util.ts";
import {
  compileWithStandIn,
  type EmbeddedPayload,
  EmbedError,
  findProblems,
  moduleGraph,
  readPayload,
} from "../scripts/check_embed.ts";

const FIXTURE = "tests/fixtures/embed";
/** What app.ts imports as text and as bytes. */
const ASSETS = [`${FIXTURE}/used.txt`, `${FIXTURE}/used.bin`];

Deno.test("the embed check reads what deno compile embeds and names what a binary lacks", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "matterbak-embed-test-" });
  let payload: EmbeddedPayload;
  try {
    const binary = join(dir, "app");
    await compileWithStandIn([
      "compile",
      ...RUNTIME_FLAGS,
      "--output",
      binary,
      `${FIXTURE}/app.ts`,
    ]);
    payload = readPayload(await Deno.readFile(binary), binary);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const graph = await moduleGraph(`${FIXTURE}/app.ts`);
  const key = (path: string) => `${FIXTURE}/${path}`;

  await t.step("the payload holds the modules, the assets and the npm package", async () => {
    assert.equal(payload.metadata.entrypoint_key, key("app.ts"));
    for (const name of ["app.ts", "greeting.ts", "used.txt", "used.bin"]) {
      assert.deepEqual(
        payload.files.get(key(name)),
        await Deno.readFile(join(REPO_ROOT, FIXTURE, name)),
        `${name}, byte for byte`,
      );
    }
    assert.ok(payload.npmPackages.includes("yaml@2.9.1"), payload.npmPackages.join());
    assert.equal(payload.files.has(key("not_imported.txt")), false);
    assert.equal(payload.files.has(key("types.ts")), false, "a module only types come from");
  });

  await t.step(
    "a complete binary has no problem: a module only types come from is not needed",
    () => {
      assert.ok(graph.modules.some((m) => m.specifier.endsWith(key("types.ts"))));
      assert.deepEqual(findProblems(graph, payload, ASSETS), []);
    },
  );

  await t.step("an asset the program reads without importing it is named", () => {
    assert.deepEqual(findProblems(graph, payload, [...ASSETS, key("not_imported.txt")]), [
      `the asset ${
        key("not_imported.txt")
      } is not embedded: import it with { type: "text" } or { type: "bytes" }`,
    ]);
  });

  await t.step("a module or npm package the binary lacks is named", () => {
    const files = new Map(payload.files);
    files.delete(key("greeting.ts"));
    const lacking = { ...payload, files, npmPackages: [] };
    const greeting = pathToFileURL(join(REPO_ROOT, key("greeting.ts"))).href;
    assert.deepEqual(findProblems(graph, lacking, ASSETS).toSorted(), [
      `the module ${greeting} is not embedded`,
      "the npm package yaml@2.9.1 is not embedded",
    ]);
  });

  await t.step("raw imports recorded as off, and a binary that would prompt, are named", () => {
    const metadata = {
      ...payload.metadata,
      permissions: { prompt: true },
      unstable_config: { raw_imports: false },
    };
    assert.deepEqual(findProblems(graph, { ...payload, metadata }, ASSETS), [
      `raw imports are off in the binary: add "raw-imports" to "unstable" in deno.json`,
      "the binary would prompt for permissions: --no-prompt is missing",
    ]);
  });
});

Deno.test("a file that is no deno compile binary is named", async () => {
  const bytes = await Deno.readFile(join(REPO_ROOT, "main.ts"));
  assert.throws(() => readPayload(bytes, "main.ts"), EmbedError, "main.ts has no d3n0l4nd payload");
});
