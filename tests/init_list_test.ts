/**
 * `matterbak init` and `matterbak list`: the two commands a new user runs before the first
 * backup. Run as processes with the binary's permissions where the environment matters, and
 * in-process with a fake terminal for the questions.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../lib/cli/main.ts";
import type { Terminal } from "../lib/cli/terminal.ts";
import { typeSecret } from "../lib/cli/terminal.ts";
import { normalizeUrl } from "../lib/cli/commands/init.ts";
import { parseChannels } from "../lib/config/channels.ts";
import { ExitCode } from "../lib/util/errors.ts";
import { myChannels } from "./expected_backup.ts";
import { runCliProcess, startGenerated } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import { startSimulator } from "./simulator/server.ts";

const posix = Deno.build.os !== "windows";

/** A terminal that answers from a script and records the questions. */
function fakeTerminal(answers: string[]): Terminal & { questions: string[] } {
  const questions: string[] = [];
  const next = (question: string) => {
    questions.push(question);
    return Promise.resolve(answers.shift());
  };
  return { questions, ask: next, askSecret: next };
}

async function runMain(args: string[], env: Record<string, string> = {}, terminal?: Terminal) {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(args, {
    env: (name) => env[name],
    output: { out: (l) => out.push(l), err: (l) => err.push(l) },
    ...(terminal ? { terminal } : {}),
  });
  return { status, out, err };
}

Deno.test("list --json prints a channels.json that selects everything: a backup with it misses nothing", async () => {
  const { h, world, me } = await startGenerated({ teams: 2, dms: 3, gms: 2, postsPerChannel: 3 });
  try {
    const listed = await runCliProcess(["list", "--json", "--credentials", h.credentialsPath]);
    assert.equal(listed.status, 0, listed.err.join("\n"));
    assert.deepEqual(listed.err, []);
    const text = listed.out.join("\n");
    const config = parseChannels(text, "stdout");
    assert.deepEqual(config.warnings, []);
    const teams = config.value.teams ?? {};
    assert.deepEqual(Object.keys(teams), ["team-0", "team-1"]);
    assert.deepEqual(teams["team-0"], {
      include: ["private-0-1", "public-0-2", "public-0-3", "town-square"],
    }, "archived (public-0-3) and private channels too");
    assert.deepEqual(config.value.direct, ["alice", "bob", "carol"]);
    await Deno.writeTextFile(h.channelsPath, text);
    const run = await h.run(["--quiet"]);
    assert.equal(run.status, 0, run.err.join("\n"));
    assert.deepEqual(run.err, [], "no name matched nothing");
    const stateFiles = [...Deno.readDirSync(join(h.dataDir, ".matterbak", "channels"))]
      .filter((e) => e.name.endsWith(".json")).length;
    assert.equal(stateFiles, myChannels(world, me.id).length, "every channel backed up");
  } finally {
    await h.close();
  }
});

Deno.test("list names teams, channels (archived and private marked), DMs and groups", async () => {
  const { h } = await startGenerated({ teams: 1, dms: 2, gms: 1, postsPerChannel: 1 });
  try {
    const result = await runMain(["list", "--credentials", h.credentialsPath]);
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.deepEqual(result.out, [
      `What alice on ${h.sim.url} can back up, by the names channels.json uses:`,
      "",
      "Team team-0 (Team 0), its channels:",
      "  private-0-1  Channel 0.1, private",
      "  public-0-2   Channel 0.2",
      "  public-0-3   Channel 0.3, archived",
      "  town-square  Town Square",
      "",
      `Direct messages ("direct"), by the other's username:`,
      "  alice  yourself",
      "  bob",
      "",
      'Group messages ("groups"), by the other members:',
      "  bob, erin",
      "",
      "matterbak list --json > channels.json writes a channels.json that selects all of it.",
    ]);
  } finally {
    await h.close();
  }
});

Deno.test("names from the server cannot drive the terminal: their control characters print as \\u escapes", async () => {
  const { h, world } = await startGenerated({ teams: 1, dms: 0, gms: 0, postsPerChannel: 1 });
  try {
    // Set the clipboard and clear the screen; red text; a carriage return and C1's CSI.
    const team = [...world.teams.values()][0] as { display_name: string };
    team.display_name = "Team\x1b]52;c;aGVsbG8=\x07\x1b[2J";
    const channel = [...world.channels.values()].find((c) => c.name === "town-square");
    (channel as { display_name: string }).display_name = "Town\x1b[31m\rSquare\x9b2J";
    const result = await runMain(["list", "--credentials", h.credentialsPath]);
    assert.equal(result.status, 0, result.err.join("\n"));
    for (const line of [...result.out, ...result.err]) {
      // deno-lint-ignore no-control-regex -- finding them is the point
      assert.doesNotMatch(line, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, JSON.stringify(line));
    }
    assert.ok(
      result.out.includes(
        "Team team-0 (Team\\u001b]52;c;aGVsbG8=\\u0007\\u001b[2J), its channels:",
      ),
      result.out.join("\n"),
    );
    assert.ok(
      result.out.includes("  town-square  Town\\u001b[31m\\u000dSquare\\u009b2J"),
      result.out.join("\n"),
    );
  } finally {
    await h.close();
  }
});

Deno.test("init with options and MATTERBAK_TOKEN checks the login and writes credentials.json with mode 600", async () => {
  const { world, me, token } = generateWorld({ teams: 1, postsPerChannel: 1 });
  const sim = await startSimulator({ world });
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "credentials.json");
    const args = ["init", "--credentials", path, "--url", sim.url, "--user", me.username];
    const wrong = await runCliProcess(args, { MATTERBAK_TOKEN: "wrong-token-0123456789" });
    assert.equal(wrong.status, ExitCode.auth, wrong.err.join("\n"));
    assert.match(wrong.err.join("\n"), /was rejected by/);
    assert.equal(await Deno.lstat(path).catch(() => undefined), undefined, "nothing written");

    const result = await runCliProcess(args, { MATTERBAK_TOKEN: token });
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.match(
      result.out.join("\n"),
      new RegExp(`Logged in as alice \\(${me.id}\\) with a token`),
    );
    assert.ok(![...result.out, ...result.err].some((l) => l.includes(token)), "secret not shown");
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), {
      user: "alice",
      url: sim.url,
      token,
    });
    if (posix) assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["credentials.json"],
      "no temporary file left",
    );

    const again = await runCliProcess(args, { MATTERBAK_TOKEN: token });
    assert.equal(again.status, ExitCode.usage);
    assert.deepEqual(again.err, [`error: ${path} exists; pass --force to replace it`]);
    await Deno.chmod(path, 0o644).catch(() => {});
    const forced = await runCliProcess([...args, "--force"], { MATTERBAK_TOKEN: token });
    assert.equal(forced.status, 0, forced.err.join("\n"));
    if (posix) assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600, "replaced, mode 600");
  } finally {
    await sim.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("init asks at a terminal, takes a password and a sign-in name, and never prints the secret", async () => {
  const { world, me, password } = generateWorld({ teams: 1, postsPerChannel: 1 });
  const sim = await startSimulator({ world, signInWithUsername: false });
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "c.json");
    const host = sim.url.replace("http://", "");
    const terminal = fakeTerminal([`http://${host}`, "alice", "p", password, me.email]);
    const result = await runMain(["init", "--credentials", path], {}, terminal);
    assert.equal(result.status, 0, result.err.join("\n"));
    assert.deepEqual(terminal.questions, [
      "Mattermost server URL (e.g. https://mm.example.org): ",
      "Your Mattermost username: ",
      "Sign in with a personal access token (t) or your password (p)? [t] ",
      "Password (not shown): ",
      "Sign-in name if not your username (email or LDAP id; Enter if none): ",
    ]);
    assert.ok(![...result.out, ...result.err].some((l) => l.includes(password)));
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), {
      user: "alice",
      url: sim.url,
      password,
      login: me.email,
    });
    assert.ok(
      sim.requests.some((r) => r.path === "/api/v4/users/logout"),
      "the session it opened is closed",
    );
  } finally {
    await sim.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("init without a terminal says which option or variable is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "c.json");
    const noUrl = await runMain(["init", "--credentials", path]);
    assert.equal(noUrl.status, ExitCode.usage);
    assert.deepEqual(noUrl.err, ["error: --url is needed (there is no terminal to ask at)"]);
    const noSecret = await runMain(["init", "--credentials", path, "--url", "x", "--user", "a"]);
    assert.equal(noSecret.status, ExitCode.usage);
    assert.match(
      noSecret.err[0] as string,
      /^error: No secret: set MATTERBAK_TOKEN or MATTERBAK_PASSWORD/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a secret typed with echo off: Enter ends it, Backspace and Ctrl+U edit it, Ctrl+C and Ctrl+D stop", () => {
  const type = (...chunks: string[]) =>
    chunks.reduce(
      (state, chunk) => typeSecret(state, new TextEncoder().encode(chunk)),
      { bytes: [] as number[] } as ReturnType<typeof typeSecret>,
    );
  const text = (state: ReturnType<typeof typeSecret>) =>
    new TextDecoder().decode(new Uint8Array(state.bytes));
  assert.deepEqual(type("se", "cret\r"), {
    bytes: [...new TextEncoder().encode("secret")],
    end: "enter",
  });
  assert.equal(text(type("secrex\x7ft\n")), "secret");
  assert.equal(text(type("café\x7f\x7fe")), "cae", "a backspace removes a whole character");
  assert.equal(text(type("wrong\x15right")), "right");
  assert.equal(type("abc\x03").end, "interrupt");
  assert.deepEqual(type("abc\x03").bytes, [], "nothing kept after Ctrl+C");
  assert.equal(type("\x04").end, "eof");
  assert.equal(type("a\x04b").end, undefined, "Ctrl+D ends only an empty line");
});

Deno.test("a URL typed without a scheme is https", () => {
  assert.equal(normalizeUrl(" mm.example.org "), "https://mm.example.org");
  assert.equal(normalizeUrl("http://localhost:8065"), "http://localhost:8065");
});
