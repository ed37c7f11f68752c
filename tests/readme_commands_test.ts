/**
 * The README's commands, run as a new user types them: `deno task NAME -- options` as real
 * processes (Deno passes the `--` on, so the program must drop it and pass the options on).
 * Each command is also looked up in the README, so the two cannot drift apart.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../scripts/_util.ts";
import { VERSION } from "../lib/util/version.ts";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";

const README = await Deno.readTextFile(join(REPO_ROOT, "README.md"));

interface Run {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs `deno <command>` in the repository; a `documented` command must appear in the README
 * exactly so.
 */
async function deno(
  command: string,
  env: Record<string, string> = {},
  documented = true,
): Promise<Run> {
  if (documented) {
    assert.ok(README.includes(`deno ${command}`), `the README shows "deno ${command}"`);
  }
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: command.split(" "),
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...env },
    stdin: "null",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, out: text(stdout), err: text(stderr) };
}

Deno.test("deno task backup -- --help and -- -V answer like the binary", async () => {
  const help = await deno("task backup -- --help");
  assert.equal(help.code, 0, help.err);
  assert.match(help.out, /^matterbak .*\n\nUSAGE\n/);
  assert.match(help.out, /EXIT STATUS/);
  const version = await deno("task backup -- -V");
  assert.equal(version.code, 0, version.err);
  assert.equal(version.out, `matterbak ${VERSION}\n`);
});

Deno.test("deno task demo -- --quiet passes --quiet on to the backup, which prints nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "matterbak-demo-" });
  try {
    const run = await deno("task demo -- --quiet", { MATTERBAK_DEMO_DIR: dir });
    assert.equal(run.code, 0, run.err);
    const lines = run.out.split("\n").filter((l) => l !== "");
    assert.match(lines[0] ?? "", /^Demo server: http:\/\/127\.0\.0\.1:\d+ \(user alice\)/);
    assert.deepEqual(lines.slice(1), [
      `Exit status 0. Look at ${join(dir, "data")} (the backup), ` +
      `${join(dir, "matterbak_alice.zip")} and ${join(dir, "site", "index.html")}.`,
    ], "nothing between: the backup was quiet");
    assert.ok((await Deno.stat(join(dir, "matterbak_alice.zip"))).isFile);
    // The demo's own option is taken out; the backup's go on.
    const failed = await deno(
      "task demo -- --latency 0 --rate-limit -3",
      { MATTERBAK_DEMO_DIR: dir },
      false,
    );
    assert.equal(failed.code, 2);
    assert.match(failed.err, /--rate-limit must be 0 or more, got -3/);
    assert.match(failed.out, /Exit status 2: the backup did not complete; see the messages above/);
    assert.doesNotMatch(failed.out, /Look at/, "a failed run points at no backup");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the README runs the bundle with exactly the binary's permissions, as the smoke test does", () => {
  const command = `deno run ${RUNTIME_FLAGS.join(" ")} --no-config dist/matterbak.js [options]`;
  assert.ok(README.includes(`\n${command}\n`), command);
});
