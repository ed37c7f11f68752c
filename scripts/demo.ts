/**
 * `deno task demo`: starts the bundled Mattermost simulator with a sample world on 127.0.0.1,
 * runs a real backup of it into ./demo/ (data dir and zip) and builds its website
 * (`--view demo/site`). Run it twice to see an incremental update.
 *
 * `deno task demo -- [--latency MS] [backup options]`: `--latency` delays each answer of the
 * simulator (to watch the progress display, default 5); every other option goes to the backup.
 * MATTERBAK_DEMO_DIR puts the demo somewhere else than ./demo (the tests use it).
 */
import { join, resolve } from "node:path";
import { main } from "../lib/cli/main.ts";
import { ExitCode } from "../lib/util/errors.ts";
import { DEMO_CHANNELS, DEMO_RATE_LIMIT, demoWorld } from "../tests/simulator/demo_world.ts";
import { startSimulator } from "../tests/simulator/server.ts";
import { fail, scriptArgs } from "./_util.ts";

/** The demo's own `--latency MS` taken out of the arguments; the rest are the backup's. */
function splitArgs(args: string[]): { latencyMs: number; backupArgs: string[] } {
  const backupArgs: string[] = [];
  let latencyMs = 5;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const inline = arg.startsWith("--latency=") ? arg.slice("--latency=".length) : undefined;
    if (arg !== "--latency" && inline === undefined) {
      backupArgs.push(arg);
      continue;
    }
    const value = inline ?? args[++i];
    latencyMs = Number(value);
    if (value === undefined || !Number.isInteger(latencyMs) || latencyMs < 0) {
      fail(`--latency needs a whole number of milliseconds, got ${value ?? "nothing"}`);
    }
  }
  return { latencyMs, backupArgs };
}

const { latencyMs, backupArgs } = splitArgs(scriptArgs());
const demoDir = resolve(Deno.env.get("MATTERBAK_DEMO_DIR") || "demo");
const dataDir = join(demoDir, "data");
const zipPath = join(demoDir, "matterbak_alice.zip");
const siteDir = join(demoDir, "site");
const { world, me, password } = demoWorld();
const sim = await startSimulator({ world, latencyMs });
try {
  await Deno.mkdir(demoDir, { recursive: true });
  const credentials = join(demoDir, "credentials.json");
  const channels = join(demoDir, "channels.json");
  await Deno.writeTextFile(
    credentials,
    JSON.stringify({ user: me.username, password, url: `${sim.url}/api` }, null, 2) + "\n",
    { mode: 0o600 },
  );
  await Deno.writeTextFile(channels, JSON.stringify(DEMO_CHANNELS, null, 2) + "\n");
  // deno-lint-ignore no-console
  console.log(`Demo server: ${sim.url} (user ${me.username}); config in ${demoDir}\n`);
  const status = await main([
    "--credentials",
    credentials,
    "--channels",
    channels,
    "--data-dir",
    dataDir,
    "--output-zip",
    zipPath,
    "--rate-limit",
    String(DEMO_RATE_LIMIT),
    "--view",
    siteDir,
    ...backupArgs,
  ]);
  // deno-lint-ignore no-console
  console.log(`\n${demoOutcome(status)}`);
  Deno.exitCode = status;
} finally {
  await sim.close();
}

/** What to look at after the run; only a run that saved a backup points at it. */
function demoOutcome(status: number): string {
  const look = `Look at ${dataDir} (the backup), ${zipPath} and ${join(siteDir, "index.html")}.`;
  if (status === ExitCode.ok) return `Exit status 0. ${look}`;
  if (status === ExitCode.partial) {
    return `Exit status 3: the backup completed with problems (see the messages above). ${look}`;
  }
  if (status === ExitCode.sigint || status === ExitCode.sigterm) {
    return `Exit status ${status}: interrupted; run the demo again to continue where it stopped.`;
  }
  return `Exit status ${status}: the backup did not complete; see the messages above.`;
}
