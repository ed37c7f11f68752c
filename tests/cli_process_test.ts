/**
 * What a user sees from the CLI run as its own process, with the binary's permissions: the
 * messages and exit statuses of mistakes a new user makes, and of servers that cannot be
 * reached (each says why).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCliProcess, startGenerated } from "./harness.ts";

/** A folder with a credentials.json for `url` and an empty channels.json. */
async function configFor(url: string): Promise<{ dir: string; args: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "matterbak-cli-" });
  await Deno.writeTextFile(
    join(dir, "credentials.json"),
    JSON.stringify({ user: "alice", token: "not-a-real-token", url }),
    { mode: 0o600 },
  );
  await Deno.writeTextFile(join(dir, "channels.json"), "{}");
  const args = [
    "--credentials",
    join(dir, "credentials.json"),
    "--channels",
    join(dir, "channels.json"),
    "-d",
    join(dir, "data"),
    "--retries",
    "0",
    "--timeout",
    "1",
  ];
  return { dir, args };
}

async function unreachable(url: string, pattern: RegExp): Promise<void> {
  const { dir, args } = await configFor(url);
  try {
    const result = await runCliProcess(args);
    assert.equal(result.status, 5, result.err.join("\n"));
    assert.equal(result.err.length, 1, result.err.join("\n"));
    assert.match(result.err[0] as string, pattern);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a closed port says connection refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await unreachable(
    `http://127.0.0.1:${port}`,
    new RegExp(
      `^error: Cannot reach http://127\\.0\\.0\\.1:${port} for the current user \\(/users/me\\): ` +
        "connection refused \\(is the server running on that port\\?\\): tcp connect error",
    ),
  );
});

Deno.test("an unknown host says the DNS lookup failed", async () => {
  // .invalid never resolves (RFC 6761).
  await unreachable(
    "https://mattermost.invalid",
    /^error: Cannot reach https:\/\/mattermost\.invalid for .*: DNS lookup failed \(is the host name right\?\)/,
  );
});

Deno.test("https to a server that does not speak TLS says TLS error", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("plain http"),
  );
  try {
    await unreachable(
      `https://127.0.0.1:${server.addr.port}`,
      /^error: Cannot reach https:\/\/127\.0\.0\.1:\d+ for .*: TLS error \(the https connection could not be set up\)/,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("a server that accepts but never answers says timeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) connections.push(conn);
  })();
  try {
    await unreachable(
      `http://127.0.0.1:${listener.addr.port}`,
      /^error: Cannot get the current user \(\/users\/me\) from http:\/\/127\.0\.0\.1:\d+: timeout: no complete answer within 1 s$/,
    );
  } finally {
    listener.close();
    await accepting;
    for (const conn of connections) conn.close();
  }
});

Deno.test("missing config files are reported together, with how to make them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "matterbak-cli-" });
  try {
    const result = await runCliProcess([
      "--credentials",
      join(dir, "credentials.json"),
      "--channels",
      join(dir, "channels.json"),
      "-d",
      join(dir, "data"),
    ]);
    assert.equal(result.status, 2);
    assert.deepEqual(result.err, [
      `error: Credentials file not found: ${join(dir, "credentials.json")} (create it with ` +
      `"matterbak init"; see "credentials.json" in the README); and Channels file not found: ` +
      `${join(dir, "channels.json")} ("matterbak list --json > channels.json" writes one that ` +
      `selects everything (edit it down), or write it by hand; see "channels.json" in the README)`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a typo'd option gets the closest one, a negative rate limit what it must be", async () => {
  const typo = await runCliProcess(["--update-old-post"]);
  assert.equal(typo.status, 2);
  assert.deepEqual(typo.err, [
    "error: Unknown option '--update-old-post'; did you mean --update-old-posts? (see --help)",
  ]);
  const negative = await runCliProcess(["--rate-limit", "-3"]);
  assert.equal(negative.status, 2);
  assert.deepEqual(negative.err, ["error: --rate-limit must be 0 or more, got -3"]);
});

Deno.test("an unknown team lists the user's teams; an unknown channel the team's channels", async () => {
  const { h } = await startGenerated({ teams: 2, channelsPerTeam: 2, postsPerChannel: 5 });
  try {
    await h.writeChannels({ teams: { "team-9": {}, "team-1": { include: ["town-squar"] } } });
    const result = await runCliProcess([
      ...h.configArgs,
      "--quiet",
    ]);
    assert.equal(result.status, 3, result.err.join("\n"));
    assert.deepEqual(result.err.filter((l) => l.startsWith("warning: team")), [
      'warning: team "team-9": you are not a member of such a team; your teams: team-0, team-1',
      'warning: team "team-1": include channel "town-squar" not found; its channels: ' +
      "private-1-1, town-square",
      'warning: team "team-1": no "include" name matched, so none of its channels is backed up',
    ]);
  } finally {
    await h.close();
  }
});
