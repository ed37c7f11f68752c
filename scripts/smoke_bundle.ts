/**
 * `deno task smoke`: runs dist/matterbak.js from `deno bundle`, CI's stand-in for the standalone
 * binary (which cannot be built here, see scripts/compile.ts), with exactly the binary's
 * permissions. `deno task smoke -- --binary PATH` runs a built binary instead (the release
 * workflow, on each binary's own OS). Either way: --version, --help, a real backup of the
 * simulator that must be complete, a second run that must be incremental and build the website
 * (whose CSS, script and emoji font come from inside the program), and a verify that finds it
 * intact.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import { VERSION } from "../lib/util/version.ts";
import { generateWorld } from "../tests/simulator/generate.ts";
import { startSimulator } from "../tests/simulator/server.ts";
import { REPO_ROOT, scriptArgs } from "./_util.ts";

const { values } = parseArgs({ args: scriptArgs(), options: { binary: { type: "string" } } });
// Absolute: a relative program path would be looked up from the empty folder it runs in.
const binary = values.binary === undefined ? undefined : resolve(values.binary);
const subject = binary ?? join(REPO_ROOT, "dist", "matterbak.js");

async function run(args: string[]): Promise<{ code: number; out: string }> {
  // Run from an empty folder: the program must need nothing from the repository.
  const cwd = await Deno.makeTempDir();
  const { code, stdout, stderr } = await new Deno.Command(binary ?? Deno.execPath(), {
    cwd,
    args: binary ? args : ["run", ...RUNTIME_FLAGS, "--no-config", subject, ...args],
    env: { NO_COLOR: "1" },
  }).output();
  await Deno.remove(cwd, { recursive: true });
  return { code, out: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

function check(ok: boolean, what: string, detail = ""): void {
  // Thrown, not exited: the finally below stops the simulator and removes the folder.
  if (!ok) throw new Error(`smoke test of ${subject} failed: ${what}\n${detail}`);
  // deno-lint-ignore no-console
  console.log(`ok: ${what}`);
}

const version = await run(["--version"]);
check(
  version.code === 0 && version.out.trim() === `matterbak ${VERSION}`,
  "--version",
  version.out,
);
const help = await run(["--help"]);
check(help.code === 0 && help.out.includes("EXIT STATUS"), "--help", help.out);

const { world, me, password } = generateWorld({
  teams: 1,
  channelsPerTeam: 2,
  postsPerChannel: 50,
  dms: 2,
  gms: 1,
});
const sim = await startSimulator({ world });
const dir = await Deno.makeTempDir();
try {
  await Deno.writeTextFile(
    join(dir, "c.json"),
    JSON.stringify({ user: me.username, password, url: sim.url }),
    { mode: 0o600 },
  );
  await Deno.writeTextFile(
    join(dir, "ch.json"),
    JSON.stringify({ teams: { "team-0": {} }, direct: ["alice", "bob"], groups: { subset: [[]] } }),
  );
  const args = [
    "--credentials",
    join(dir, "c.json"),
    "--channels",
    join(dir, "ch.json"),
    "-d",
    join(dir, "data"),
    "-o",
    join(dir, "out.zip"),
    "--rate-limit",
    "0",
  ];
  const backup = await run(args);
  check(backup.code === 0, "a backup of the simulator exits 0", backup.out);
  // The config selects every conversation of the user (one team, all DMs, all GMs).
  const expected = [...world.posts.values()].filter((p) =>
    p.delete_at === 0 && p.original_id === "" && world.isChannelMember(p.channel_id, me.id)
  ).length;
  let stored = 0;
  const walk = async (path: string) => {
    for await (const entry of Deno.readDir(path)) {
      if (entry.isDirectory) {
        await walk(join(path, entry.name));
      } else if (/^\d{8}-\d{12}__[a-z0-9]{26}\.json$/.test(entry.name)) {
        stored++;
      }
    }
  };
  await walk(join(dir, "data"));
  check(stored === expected && expected > 0, `all ${expected} posts stored`, `${stored} stored`);
  check((await Deno.stat(join(dir, "out.zip"))).size > 0, "the zip is written");
  const again = await run([...args, "--view", join(dir, "site")]);
  check(again.code === 0 && /0 new/.test(again.out), "a second run is incremental", again.out);
  const assets = await Promise.all(
    ["site.css", "site.js", "emoji.woff2"].map((name) =>
      Deno.stat(join(dir, "site", "assets", name)).then((s) =>
        s.size, () => 0)
    ),
  );
  const index = await Deno.readTextFile(join(dir, "site", "index.html")).catch(() => "");
  check(
    assets.every((size) => size > 1000) && index.includes("Town Square"),
    "--view builds the website with its assets",
    `${assets.join(", ")} bytes; ${again.out}`,
  );
  // Verify reads in workers in the binary (their module embedded with --include), in its main
  // thread in the bundle.
  const verified = await run(["verify", "-d", join(dir, "data")]);
  check(
    verified.code === 0 && /: 0 damaged, 0 missing, 0 unexpected/.test(verified.out),
    "verify finds the backup intact",
    verified.out,
  );
} finally {
  await sim.close();
  await Deno.remove(dir, { recursive: true });
}
