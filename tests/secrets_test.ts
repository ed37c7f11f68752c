/** Passwords and tokens never show up in output, the data dir, the report or the zip. */
import assert from "node:assert/strict";
import { configure, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import { redactUrl } from "../lib/api/client.ts";
import { REDACTED, SecretRegistry } from "../lib/util/secrets.ts";
import { main } from "../lib/cli/main.ts";
import { harnessFor, listFiles, startHarness } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { FaultPlan } from "./simulator/server.ts";

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
  const h = await harnessFor({ world, me, token });
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

const PASSWORD = 'pa"ss <wörd> &+/=';

Deno.test("a secret is scrubbed in every form a server or proxy echoes it in", () => {
  const secrets = new SecretRegistry();
  secrets.add(PASSWORD, { basicUser: "alice" });
  const utf8Base64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  const forms = [
    PASSWORD,
    String.raw`pa\"ss <wörd> &+/=`, // JSON
    String.raw`pa\\\"ss <wörd> &+/=`, // JSON inside JSON
    String.raw`pa\"ss \u003cwörd\u003e \u0026+/=`, // Go's encoding/json
    "pa%22ss%20%3Cw%C3%B6rd%3E%20%26%2B%2F%3D", // URL
    "pa%22ss%20%3cw%c3%b6rd%3e%20%26%2b%2f%3d", // URL, lower-case hex
    "pa%22ss+%3Cw%C3%B6rd%3E+%26%2B%2F%3D", // a form body
    "pa&quot;ss &lt;wörd&gt; &amp;+/=", // HTML
    "pa&#34;ss &lt;wörd&gt; &amp;+/=", // Go's html/template
    String.raw`pa\&quot;ss &lt;wörd&gt; &amp;+/=`, // a JSON body quoted in an HTML page
    utf8Base64(PASSWORD),
    utf8Base64(`alice:${PASSWORD}`), // HTTP Basic auth
  ];
  for (const form of forms) {
    assert.equal(secrets.scrub(`before ${form} after`), `before ${REDACTED} after`, form);
  }
  assert.equal(secrets.scrub("nothing secret here"), "nothing secret here");
});

Deno.test("a fragment of 12 characters of a secret is scrubbed, a shorter one is kept", () => {
  const secrets = new SecretRegistry();
  const token = "k7q2m9x4c8v1b6n3z5w0p4r8t2";
  secrets.add(token);
  assert.equal(secrets.scrub(`Bearer ${token.slice(0, 12)}…`), `Bearer ${REDACTED}…`);
  assert.equal(secrets.scrub(`_${token.slice(7, 26)}_`), `_${REDACTED}_`);
  assert.equal(secrets.scrub(`id ${token.slice(0, 11)}`), `id ${token.slice(0, 11)}`);
  // Too short to be a real secret: scrubbing it would blank ordinary words.
  secrets.add("pw");
  assert.equal(secrets.scrub("pw"), "pw");
});

Deno.test("every string of a report-like value is scrubbed, keys too", () => {
  const secrets = new SecretRegistry();
  secrets.add("hunter2hunter2");
  assert.deepEqual(
    secrets.scrubValue({
      exitStatus: 3,
      failures: [{ what: "x", why: "HTTP 500 token=hunter2hunter2" }],
      hunter2hunter2: true,
    }),
    {
      exitStatus: 3,
      failures: [{ what: "x", why: `HTTP 500 token=${REDACTED}` }],
      [REDACTED]: true,
    },
  );
});

/** Every run of `secret` of 8 characters: a fragment that long is as good as a leak. */
function fragments(secret: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 8 <= secret.length; i++) out.push(secret.slice(i, i + 8));
  return out;
}

Deno.test("secrets a hostile server echoes back reach neither output, report, data dir nor zip", async () => {
  const { world, me } = generateWorld({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 30,
    filesEvery: 5,
    dms: 0,
    gms: 0,
  });
  const password = 'S3cret "Passw0rd" <xyzzy>';
  world.credentials(me.id).password = password;
  const [first, second] = [...world.channels.values()].filter((c) => c.type === "O");
  let loginEcho: "json" | "html" | undefined = "json";
  const faults: FaultPlan = (req) => {
    if (req.path === "/api/v4/users/login" && loginEcho) {
      return { kind: "echo", status: req.attempt === 1 ? 500 : 502, as: loginEcho };
    }
    if (req.path === `/api/v4/channels/${first?.id}/posts`) {
      return { kind: "echo", status: 500, as: "json" };
    }
    if (req.path === `/api/v4/channels/${second?.id}/members`) {
      return { kind: "echo", status: 502, as: "html" };
    }
    if (req.path.startsWith("/api/v4/files/")) return { kind: "echo", status: 403, as: "text" };
    if (req.path === "/api/v4/users/logout") return { kind: "echo", status: 500, as: "json" };
    return undefined;
  };
  const h = await startHarness({
    world,
    faults,
    credentials: { user: me.username, password: "placeholder" },
    channels: { teams: { "team-0": {} } },
    baseArgs: ["--rate-limit", "0", "--retries", "0"],
  });
  try {
    const env = { MATTERBAK_PASSWORD: password };
    const report = `${h.dir}/report.json`;
    // The login answered by an error page quoting the request body, as JSON, then as HTML.
    const jsonEcho = await h.run(["--report", report], env);
    assert.equal(jsonEcho.status, 5);
    const reports = [await Deno.readTextFile(report)];
    loginEcho = "html";
    const htmlEcho = await h.run(["--report", report], env);
    assert.equal(htmlEcho.status, 5);
    reports.push(await Deno.readTextFile(report));
    // Logged in: posts, members, attachments and the logout answered with echoes.
    loginEcho = undefined;
    const items = await h.run(["--report", report], env);
    assert.equal(items.status, 3, items.err.join("\n"));
    assert.match(items.err.join("\n"), /warning: Logout failed: .*HTTP 500/);
    reports.push(await Deno.readTextFile(report));
    const printed = [jsonEcho, htmlEcho, items].flatMap((r) => [...r.out, ...r.err]);
    // The echoes did reach the messages, without what they quoted.
    assert.ok(printed.some((line) => line.includes("could not handle POST")), printed.join("\n"));
    assert.ok(printed.some((line) => line.includes(REDACTED)));

    const sessions = new Set(
      h.sim.requests.map((r) => r.authorization?.replace(/^Bearer /, "")).filter((t) => !!t),
    );
    assert.ok(sessions.size > 0);
    const haystack = [
      ...printed,
      ...reports,
      await everythingWritten(h.dataDir, h.zipPath),
    ].join("\n");
    for (const secret of [password, JSON.stringify(password), ...sessions] as string[]) {
      for (const fragment of fragments(secret)) {
        assert.ok(!haystack.includes(fragment), `a fragment of a secret leaked: ${fragment}`);
      }
    }
  } finally {
    await h.close();
  }
});

Deno.test("a secret in any message is scrubbed where it leaves: output lines and the report", async () => {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 20,
    filesEvery: 5,
    dms: 0,
    gms: 0,
  });
  const h = await harnessFor({ world, me, token });
  try {
    // A network error whose text carries the token (as a proxy's error could): it reaches the
    // messages by a path no server answer takes.
    const leaky: typeof fetch = (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.includes("/files/")) return fetch(input, init);
      const auth = new Headers(init?.headers).get("authorization");
      return Promise.reject(new TypeError(`proxy refused ${auth}`));
    };
    const report = `${h.dir}/report.json`;
    const out: string[] = [];
    const err: string[] = [];
    const status = await main(
      [
        ...h.configArgs,
        "--retries",
        "0",
        "--report",
        report,
      ],
      {
        env: () => undefined,
        output: { out: (line) => out.push(line), err: (line) => err.push(line) },
        fetch: leaky,
      },
    );
    assert.equal(status, 3, err.join("\n"));
    assert.match(err.join("\n"), /proxy refused Bearer \[REDACTED\]/);
    const text = [...out, ...err, await Deno.readTextFile(report)].join("\n");
    assert.match(text, /"why": "Cannot reach .*proxy refused Bearer \[REDACTED\]"/);
    assert.ok(!text.includes(token));
  } finally {
    await h.close();
  }
});
