/**
 * Every mistake a user can make gets a one-line message naming the file, option or value, the
 * documented exit status, no stack trace, no request for config errors, and an existing backup
 * that stays exactly as it was.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Harness, listFiles, runCliProcess, startHarness, withOneChannel } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";

async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const path of await listFiles(dir)) {
    // The run lock names its last holder; it is not part of the backup.
    if (path === "data/.matterbak/lock") continue;
    const bytes = await Deno.readFile(join(dir, path));
    out.set(
      path,
      Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))).join(","),
    );
  }
  return out;
}

interface Case {
  name: string;
  /** Arguments after the harness's own (credentials, channels, data dir, zip). */
  args?: (h: Harness) => string[] | Promise<string[]>;
  /** Replace the whole command line instead. */
  fullArgs?: (h: Harness) => string[];
  setup?: (h: Harness) => Promise<void>;
  status: number;
  message: (h: Harness) => RegExp;
  requests?: "none" | "some";
}

const cases: Case[] = [
  {
    name: "an unknown option",
    args: () => ["--bogus"],
    status: 2,
    message: () => /Unknown option '--bogus'/,
    requests: "none",
  },
  {
    name: "a non-numeric rate",
    args: () => ["--rate-limit", "abc"],
    status: 2,
    message: () => /--rate-limit needs a number, got "abc"/,
    requests: "none",
  },
  {
    name: "a negative jitter",
    args: () => ["--initial-jitter=-3"],
    status: 2,
    message: () => /--initial-jitter must be from 0/,
    requests: "none",
  },
  {
    name: "a missing credentials file",
    fullArgs: (
      h,
    ) => ["--credentials", join(h.dir, "nope.json"), "--channels", h.channelsPath, "-d", h.dataDir],
    status: 2,
    message: (h) =>
      new RegExp(`Credentials file not found: ${RegExp.escape(join(h.dir, "nope.json"))}`),
    requests: "none",
  },
  {
    name: "credentials with a JSON syntax error",
    setup: (h) => Deno.writeTextFile(h.credentialsPath, '{\n  "user": "alice",\n}'),
    status: 2,
    message: (h) =>
      new RegExp(
        `Invalid JSON in ${
          RegExp.escape(h.credentialsPath)
        }:3:1: unexpected "}" \\(trailing commas`,
      ),
    requests: "none",
  },
  {
    name: "credentials without a url",
    setup: (h) => Deno.writeTextFile(h.credentialsPath, '{"user": "alice", "token": "t"}'),
    status: 2,
    message: (h) => new RegExp(`${RegExp.escape(h.credentialsPath)}: "url" is missing`),
    requests: "none",
  },
  {
    name: "credentials without any secret",
    setup: (h) => Deno.writeTextFile(h.credentialsPath, `{"user": "alice", "url": "${h.sim.url}"}`),
    status: 2,
    message: () => /no secret: give "password" or "token"/,
    requests: "none",
  },
  {
    name: "teams given as a list",
    setup: (h) => Deno.writeTextFile(h.channelsPath, '{"teams": ["team-0"]}'),
    status: 2,
    message: (h) =>
      new RegExp(`${RegExp.escape(h.channelsPath)}: "teams" must be an object .* got a list`),
    requests: "none",
  },
  {
    name: "include given as a string",
    setup: (h) =>
      Deno.writeTextFile(h.channelsPath, '{"teams": {"team-0": {"include": "town-square"}}}'),
    status: 2,
    message: () =>
      /"teams\.team-0"\.include must be a list of channel names \(strings\), got a string/,
    requests: "none",
  },
  {
    name: "a data dir that is a file",
    fullArgs: (
      h,
    ) => [
      "--credentials",
      h.credentialsPath,
      "--channels",
      h.channelsPath,
      "-d",
      h.credentialsPath,
    ],
    status: 2,
    message: (h) =>
      new RegExp(`The data dir ${RegExp.escape(h.credentialsPath)} is not a directory`),
    requests: "none",
  },
  {
    name: "a data dir below a file",
    fullArgs: (
      h,
    ) => [
      "--credentials",
      h.credentialsPath,
      "--channels",
      h.channelsPath,
      "-d",
      join(h.credentialsPath, "x"),
    ],
    status: 2,
    message: () => /Cannot (use|write to) the data dir/,
    requests: "none",
  },
  {
    name: "a zip inside the data dir",
    args: (h) => ["-o", join(h.dataDir, "x.zip")],
    status: 2,
    message: () => /--output-zip .* is inside the data dir/,
    requests: "none",
  },
  {
    name: "a wrong password",
    setup: (h) =>
      Deno.writeTextFile(
        h.credentialsPath,
        JSON.stringify({ user: "alice", password: "wrong", url: h.sim.url }),
      ),
    status: 4,
    message: () =>
      /Login to .* as "alice" failed \(api\.user\.login\.invalid_credentials_email_username\): check "user" and the password/,
  },
  {
    name: "a revoked token",
    setup: (h) =>
      Deno.writeTextFile(
        h.credentialsPath,
        // A token's shape: a secret that is an ordinary word would be scrubbed from messages.
        JSON.stringify({ user: "alice", token: "r3v0k3dt0k3nzzzzzzzzzzzzzz", url: h.sim.url }),
      ),
    status: 4,
    message: () => /token .* was rejected by .*: it is expired, revoked or wrong/,
  },
  {
    name: "a token of another user",
    setup: async (h) => {
      const bob = h.world.userByName("bob");
      const token = h.world.addPersonalAccessToken(bob?.id as string);
      await Deno.writeTextFile(
        h.credentialsPath,
        JSON.stringify({ user: "alice", token, url: h.sim.url }),
      );
    },
    status: 4,
    message: () => /The token belongs to user "bob", but .* names "alice"/,
  },
  {
    name: "a deactivated user",
    setup: async (h) => {
      const erin = h.world.userByName("erin");
      h.world.deactivateUser(erin?.id as string);
      await Deno.writeTextFile(
        h.credentialsPath,
        JSON.stringify({ user: "erin", password: "erin-password", url: h.sim.url }),
      );
    },
    status: 4,
    message: () => /User "erin" is deactivated/,
  },
  {
    name: "an MFA account without a code",
    setup: async (h) => {
      h.world.addUser({ username: "mfa-user", password: "pw", mfaSecret: "123456" });
      await Deno.writeTextFile(
        h.credentialsPath,
        JSON.stringify({ user: "mfa-user", password: "pw", url: h.sim.url }),
      );
    },
    status: 4,
    message: () => /requires an MFA code for mfa-user: pass --mfa-code or set MATTERBAK_MFA_CODE/,
  },
  {
    name: "a host name that does not resolve",
    setup: (h) =>
      Deno.writeTextFile(
        h.credentialsPath,
        JSON.stringify({ user: "alice", token: "t", url: "https://matterbak-test.invalid" }),
      ),
    args: () => ["--retries", "0"],
    status: 5,
    message: () => /Cannot reach https:\/\/matterbak-test\.invalid for the current user/,
  },
  {
    name: "TLS spoken to a plain-http server",
    setup: (h) =>
      Deno.writeTextFile(
        h.credentialsPath,
        JSON.stringify({ user: "alice", token: "t", url: h.sim.url.replace("http:", "https:") }),
      ),
    args: () => ["--retries", "0"],
    status: 5,
    message: () => /Cannot reach https:\/\/127\.0\.0\.1:\d+ for the current user/,
  },
  {
    name: "a refused connection",
    setup: async (h) => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      listener.close();
      await Deno.writeTextFile(
        h.credentialsPath,
        JSON.stringify({ user: "alice", token: "t", url: `http://127.0.0.1:${port}` }),
      );
    },
    args: () => ["--retries", "0"],
    status: 5,
    message: () => /Cannot reach http:\/\/127\.0\.0\.1:\d+ for the current user/,
  },
];

for (const c of cases) {
  Deno.test(`bad input: ${c.name} gets exit ${c.status} and a clear message`, async () => {
    await withOneChannel(5, async ({ h }) => {
      assert.equal((await h.run()).status, 0);
      const before = await snapshot(h.dir);
      await c.setup?.(h);
      const credentialsAfterSetup = await Deno.readFile(h.credentialsPath);
      const channelsAfterSetup = await Deno.readFile(h.channelsPath);
      h.sim.resetStats();
      const args = c.fullArgs?.(h) ?? [
        ...h.configArgs,
        ...(await c.args?.(h) ?? []),
      ];
      const result = await runCliProcess(args);
      assert.equal(result.status, c.status, result.err.join("\n"));
      assert.equal(result.err.length, 1, `one line: ${result.err.join("\n")}`);
      assert.match(result.err[0] as string, /^error: /);
      assert.match(result.err[0] as string, c.message(h));
      assert.doesNotMatch(result.err.join("\n"), /\bat .*\.ts:\d+/, "no stack trace");
      if (c.requests === "none") {
        assert.equal(h.sim.requests.length, 0, "no request for a config error");
      }
      const after = await snapshot(h.dir);
      before.set("credentials.json", after.get("credentials.json") ?? "");
      before.set("channels.json", after.get("channels.json") ?? "");
      assert.deepEqual(after, before, "the existing backup and zip are unchanged");
      assert.deepEqual(await Deno.readFile(h.credentialsPath), credentialsAfterSetup);
      assert.deepEqual(await Deno.readFile(h.channelsPath), channelsAfterSetup);
    });
  });
}

Deno.test("bad input: a server that is not Mattermost is named with what was expected", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response("<html><body>Welcome to nginx</body></html>", {
        status: 404,
        headers: { "Content-Type": "text/html" },
      }),
  );
  const dir = await Deno.makeTempDir();
  try {
    const credentials = join(dir, "c.json");
    await Deno.writeTextFile(
      credentials,
      JSON.stringify({ user: "a", token: "t", url: `http://127.0.0.1:${server.addr.port}` }),
      { mode: 0o600 },
    );
    await Deno.writeTextFile(join(dir, "ch.json"), "{}");
    const result = await runCliProcess([
      "--credentials",
      credentials,
      "--channels",
      join(dir, "ch.json"),
      "-d",
      join(dir, "d"),
      "-o",
      join(dir, "z.zip"),
    ]);
    assert.equal(result.status, 5, result.err.join("\n"));
    assert.match(
      result.err.join("\n"),
      /does not look like a Mattermost server \(Cannot get the current user \(\/users\/me\): HTTP 404 Welcome to nginx\); check "url"/,
    );
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an MFA code from --mfa-code or MATTERBAK_MFA_CODE logs in; the option is warned about", async () => {
  const { world } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 3,
    dms: 0,
    gms: 0,
  });
  const user = world.addUser({ username: "mfa-user", password: "pw", mfaSecret: "123456" });
  for (const team of world.teams.values()) world.addTeamMember(team.id, user.id);
  const h = await startHarness({
    world,
    credentials: { user: "mfa-user", password: "pw" },
    channels: {},
  });
  try {
    const option = await h.run(["--mfa-code", "123456"]);
    assert.equal(option.status, 0);
    // Any user of the machine sees a command line (ps); the environment is the way.
    assert.deepEqual(option.err, [
      "warning: --mfa-code shows the code to other users of this machine (ps); " +
      "set MATTERBAK_MFA_CODE instead",
    ]);
    const env = await h.run([], { MATTERBAK_MFA_CODE: "123456" });
    assert.equal(env.status, 0);
    assert.deepEqual(env.err, []);
    const wrong = await h.run(["--mfa-code", "000000"]);
    assert.equal(wrong.status, 4);
    assert.match(
      wrong.err.join("\n"),
      /The MFA code was rejected by .* for mfa-user: it is wrong, expired or already used/,
    );
    const malformed = await h.run(["--mfa-code", "12"]);
    assert.equal(malformed.status, 4);
    assert.match(malformed.err.join("\n"), /is not a valid MFA code for mfa-user/);
  } finally {
    await h.close();
  }
});

Deno.test("a password login by email where sign-in with username is off; the account used is named", async () => {
  const { world, me, password } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 3,
    dms: 0,
    gms: 0,
  });
  const h = await startHarness({
    world,
    credentials: { user: me.username, login: me.email, password },
    channels: { teams: { "team-0": {} } },
    signInWithUsername: false,
  });
  try {
    const result = await h.run();
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.deepEqual(result.err, []);
    assert.ok(
      result.out.some((line) => line === `Logged in as user alice (${me.id})`),
      result.out.join("\n"),
    );
    assert.ok(
      h.sim.requests.some((r) => r.path.endsWith("/users/logout")),
      "the session is logged out",
    );
    // Without "login" the username is refused, and the message says what to do.
    await Deno.writeTextFile(
      h.credentialsPath,
      JSON.stringify({ user: me.username, password, url: h.sim.url }),
    );
    const refused = await h.run();
    assert.equal(refused.status, 4);
    assert.match(
      refused.err.join("\n"),
      /as "alice" failed \(api\.user\.login\.invalid_credentials_email\): .*only email addresses.*"login"/,
    );
    // A "user" that is not the account behind the login is refused.
    await Deno.writeTextFile(
      h.credentialsPath,
      JSON.stringify({ user: "bob", login: me.email, password, url: h.sim.url }),
    );
    const other = await h.run();
    assert.equal(other.status, 4);
    assert.match(
      other.err.join("\n"),
      /login "alice@example\.com" is the account of user "alice", but .* names "bob"/,
    );
  } finally {
    await h.close();
  }
});
