/** What ships is what is tested: one version, one set of permissions. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import { VERSION } from "../lib/util/version.ts";
import { REPO_ROOT } from "../scripts/_util.ts";

const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))) as {
  version: string;
  tasks: Record<string, string>;
};

Deno.test("the version in deno.json is the one --version prints", () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/);
  assert.equal(config.version, VERSION);
});

Deno.test("deno task backup runs with exactly the binary's flags", () => {
  assert.equal(config.tasks.backup, `deno run ${RUNTIME_FLAGS.join(" ")} main.ts`);
});

Deno.test("the binary never asks for a permission: --no-prompt is baked in", () => {
  assert.ok(RUNTIME_FLAGS.includes("--no-prompt"));
});

Deno.test("the permissions are the narrow ones: no --allow-all, run, sys or ffi; env limited", () => {
  for (const flag of RUNTIME_FLAGS) assert.doesNotMatch(flag, /allow-(all|run|sys|ffi)|^-A$/);
  assert.ok(
    RUNTIME_FLAGS.includes("--allow-env=MATTERBAK_PASSWORD,MATTERBAK_TOKEN,MATTERBAK_MFA_CODE"),
  );
});

Deno.test("no path is taken from a file URL's pathname (on Windows it is /D:/..., and %20 stays)", async () => {
  const offenders: string[] = [];
  const scan = async (dir: string) => {
    for await (const entry of Deno.readDir(join(REPO_ROOT, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await scan(path);
      else if (path.endsWith(".ts")) {
        const text = await Deno.readTextFile(join(REPO_ROOT, path));
        if (/import\.meta\.url\s*\)\s*\.pathname/.test(text)) offenders.push(path);
      }
    }
  };
  for (const dir of ["lib", "scripts", "tests"]) await scan(dir);
  assert.deepEqual(offenders, [], "use REPO_ROOT (scripts/_util.ts) or fileURLToPath");
});
