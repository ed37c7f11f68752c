/**
 * `deno task demo`: starts the bundled Mattermost simulator with a sample world on 127.0.0.1,
 * runs a real backup of it into ./demo/ (data dir and zip) and builds its website
 * (`--view demo/site`). Run it twice to see an incremental update.
 */
import { join, resolve } from "node:path";
import { main } from "../lib/cli/main.ts";
import { generateWorld } from "../tests/simulator/generate.ts";
import { startSimulator } from "../tests/simulator/server.ts";

const demoDir = resolve("demo");
const { world, me, password } = generateWorld({
  hostileNames: true,
  postsPerChannel: 120,
  showcase: true,
});
const sim = await startSimulator({ world, latencyMs: 5 });
try {
  await Deno.mkdir(demoDir, { recursive: true });
  const credentials = join(demoDir, "credentials.json");
  const channels = join(demoDir, "channels.json");
  await Deno.writeTextFile(
    credentials,
    JSON.stringify({ user: me.username, password, url: `${sim.url}/api` }, null, 2) + "\n",
    { mode: 0o600 },
  );
  await Deno.writeTextFile(
    channels,
    JSON.stringify(
      {
        teams: { "team-0": {}, "Team 1": { exclude: ["public-1-2"] } },
        direct: ["alice", "bob"],
        groups: { subset: [["bob"]] },
      },
      null,
      2,
    ) + "\n",
  );
  // deno-lint-ignore no-console
  console.log(`Demo server: ${sim.url} (user ${me.username}); config in ${demoDir}\n`);
  const status = await main([
    "--credentials",
    credentials,
    "--channels",
    channels,
    "--data-dir",
    join(demoDir, "data"),
    "--output-zip",
    join(demoDir, "matterbak_alice.zip"),
    "--rate-limit",
    "50",
    "--view",
    join(demoDir, "site"),
    ...Deno.args,
  ]);
  // deno-lint-ignore no-console
  console.log(
    `\nExit status ${status}. Look at ${join(demoDir, "data")} (the backup), ` +
      `${join(demoDir, "matterbak_alice.zip")} and ${join(demoDir, "site", "index.html")}.`,
  );
  Deno.exitCode = status;
} finally {
  await sim.close();
}
