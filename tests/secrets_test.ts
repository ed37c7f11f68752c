/** Passwords and tokens never show up in output, the data dir, the report or the zip. */
import assert from "node:assert/strict";
import { configure, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import { redactUrl } from "../lib/api/client.ts";
import { listFiles, startHarness } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";

configure({ useWebWorkers: false });

async function everythingWritten(dir: string, zipPath: string): Promise<string> {
  const parts: string[] = [];
  for (const path of await listFiles(dir)) {
    parts.push(path, new TextDecoder().decode(await Deno.readFile(`${dir}/${path}`)));
  }
  const reader = new ZipReader((await Deno.open(zipPath)).readable);
  for (const entry of await reader.getEntries()) {
    parts.push(entry.filename);
    if (!entry.directory) {
      parts.push(new TextDecoder().decode(await entry.getData(new Uint8ArrayWriter())));
    }
  }
  await reader.close();
  return parts.join("\n");
}

for (const mode of ["password", "token"] as const) {
  Deno.test(`the ${mode} and session tokens appear nowhere in output or files`, async () => {
    const { world, me } = generateWorld({
      teams: 1,
      channelsPerTeam: 2,
      postsPerChannel: 20,
      dms: 1,
      gms: 0,
    });
    const secret = mode === "password"
      ? "S3cret-Passw0rd-xyzzy"
      : world.addPersonalAccessToken(me.id, "tok3nzzzzzzzzzzzzzzzzzzzzz");
    const credentials = mode === "password"
      ? { user: me.username, password: "placeholder" }
      : { user: me.username, token: secret };
    const h = await startHarness({
      world,
      credentials,
      channels: { teams: { "team-0": {} }, direct: ["alice"] },
    });
    try {
      const report = `${h.dir}/report.json`;
      const env: Record<string, string> = mode === "password" ? { MATTERBAK_PASSWORD: secret } : {};
      if (mode === "password") {
        // The password comes from the environment; make the world accept it.
        world.credentials(me.id).password = secret;
      }
      const result = await h.run(["--report", report], env);
      assert.equal(result.status, 0, result.err.join("\n"));
      // A failing run prints errors too: a wrong secret must not be echoed either.
      const failed = await h.run(
        [],
        mode === "password"
          ? { MATTERBAK_PASSWORD: `${secret}-wrong` }
          : { MATTERBAK_TOKEN: `${secret}-wrong` },
      );
      assert.equal(failed.status, 4);
      const sessions = h.sim.requests.map((r) => r.authorization?.replace(/^Bearer /, "")).filter((
        t,
      ): t is string => !!t);
      assert.ok(sessions.length > 0);
      const haystack = [
        ...result.out,
        ...result.err,
        ...failed.out,
        ...failed.err,
        await everythingWritten(h.dataDir, h.zipPath),
        await Deno.readTextFile(report),
      ].join("\n");
      for (const needle of new Set([secret, ...sessions])) {
        assert.ok(!haystack.includes(needle), `secret ${needle.slice(0, 4)}… leaked`);
      }
    } finally {
      await h.close();
    }
  });
}

Deno.test("URLs with an access token are redacted in messages", () => {
  assert.equal(
    redactUrl("https://mm.example.org/api/v4/files/x?access_token=abc&download=1"),
    "https://mm.example.org/api/v4/files/x?access_token=REDACTED&download=1",
  );
  assert.equal(
    redactUrl("https://user:pw@mm.example.org/"),
    "https://user:REDACTED@mm.example.org/",
  );
});

Deno.test("a credentials file kept inside the data dir is left out of the zip", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 5,
    dms: 0,
    gms: 0,
  });
  const h = await startHarness({
    world,
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": {} } },
  });
  try {
    await Deno.mkdir(h.dataDir, { recursive: true });
    const inside = `${h.dataDir}/credentials.json`;
    await Deno.copyFile(h.credentialsPath, inside);
    const result = await h.run(["--credentials", inside, "--skip-users", "--skip-emojis"]);
    assert.equal(result.status, 0, result.err.join("\n"));
    const reader = new ZipReader((await Deno.open(h.zipPath)).readable);
    const names = (await reader.getEntries()).map((entry) => entry.filename);
    await reader.close();
    assert.ok(names.some((name) => name.endsWith(".json")), "the zip holds the backup");
    assert.ok(!names.includes("credentials.json"), "but not the credentials");
  } finally {
    await h.close();
  }
});
