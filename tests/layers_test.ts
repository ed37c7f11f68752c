/**
 * The folders of lib/ are layers: a module imports only from its own folder or from a lower
 * layer, so the folder tells where a behaviour lives and no cycle can form between layers.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const LIB = fileURLToPath(new URL("../lib", import.meta.url));

/** Lowest first; folders on one rank may not import each other. */
const RANKS: Record<string, number> = {
  util: 0,
  model: 1,
  config: 2,
  store: 2,
  api: 3,
  zip: 3,
  sync: 4,
  verify: 5,
  view: 5,
  export: 5,
  cli: 6,
};

async function* modules(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* modules(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

function layerOf(path: string): string {
  const folder = relative(LIB, path).split(/[\\/]/)[0] as string;
  assert.ok(folder in RANKS, `${relative(LIB, path)} is in no known layer folder`);
  return folder;
}

/** Relative specifiers of static and dynamic imports and re-exports. */
export function importSpecifiers(source: string): string[] {
  const pattern =
    /(?:^|\n)\s*(?:import|export)\b[^"';]*?from\s*["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;
  return [...source.matchAll(pattern)].map((m) => (m[1] ?? m[2]) as string);
}

Deno.test("importSpecifiers finds static, type-only, multi-line and dynamic imports", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type { B } from "../b/b.ts";',
    "import {\n  c,\n  d,\n} from '../c/c.ts';",
    'export { e } from "./e.ts";',
    'const f = await import("../f/f.ts");',
    'import { parseArgs } from "node:util";',
  ].join("\n");
  assert.deepEqual(importSpecifiers(source), [
    "./a.ts",
    "../b/b.ts",
    "../c/c.ts",
    "./e.ts",
    "../f/f.ts",
  ]);
});

Deno.test("every lib/ module imports only from its own layer folder or a lower one", async () => {
  const violations: string[] = [];
  let count = 0;
  for await (const path of modules(LIB)) {
    count++;
    const from = layerOf(path);
    for (const spec of importSpecifiers(await Deno.readTextFile(path))) {
      const target = resolve(dirname(path), spec);
      const to = layerOf(target);
      if (to !== from && (RANKS[to] as number) >= (RANKS[from] as number)) {
        violations.push(`${relative(LIB, path)} imports ${relative(LIB, target)}`);
      }
    }
  }
  assert.ok(count > 20, `read ${count} modules`);
  assert.deepEqual(violations, []);
});
