import assert from "node:assert/strict";
import { HELP, parseCommandLine } from "../lib/cli/main.ts";
import { UsageError } from "../lib/util/errors.ts";

function options(args: string[]) {
  const parsed = parseCommandLine(args);
  assert.equal(parsed.kind, "backup");
  return (parsed as Extract<typeof parsed, { kind: "backup" }>).options;
}

Deno.test("defaults are matterbak's", () => {
  const o = options([]);
  assert.equal(o.credentials, "credentials.json");
  assert.equal(o.channels, "channels.json");
  assert.equal(o.dataDir, "data");
  assert.equal(o.outputZip, undefined);
  assert.equal(o.rateLimit, 10);
  assert.equal(o.initialJitter, 0);
  assert.equal(o.stepJitter, 0);
  assert.equal(o.updateOldPosts, false);
  assert.equal(o.concurrency, 4);
  assert.equal(o.retries, 5);
  assert.equal(o.timeoutSeconds, 60);
});

Deno.test("every matterbak option is accepted, short forms included", () => {
  const o = options([
    "--credentials=c.json",
    "--channels",
    "ch.json",
    "-d",
    "dir",
    "-o",
    "z.zip",
    "--update-old-posts",
    "--skip-direct",
    "--skip-groups",
    "--skip-teams",
    "--skip-users",
    "--skip-emojis",
    "--rate-limit",
    "2.5",
    "--initial-jitter",
    "3",
    "--step-jitter",
    "0.5",
  ]);
  assert.deepEqual(
    [o.credentials, o.channels, o.dataDir, o.outputZip, o.rateLimit, o.initialJitter, o.stepJitter],
    ["c.json", "ch.json", "dir", "z.zip", 2.5, 3, 0.5],
  );
  assert.ok(
    o.updateOldPosts && o.skipDirect && o.skipGroups && o.skipTeams && o.skipUsers && o.skipEmojis,
  );
  assert.ok(o.skipUserImages, "--skip-users implies --skip-user-images");
});

Deno.test("help and version win over everything else", () => {
  assert.deepEqual(parseCommandLine(["--help", "--rate-limit", "1"]), { kind: "help" });
  assert.deepEqual(parseCommandLine(["-h"]), { kind: "help" });
  assert.deepEqual(parseCommandLine(["--version"]), { kind: "version" });
  assert.match(HELP, /EXIT STATUS/);
});

Deno.test("bad options and values are usage errors that name them", () => {
  const cases: Array<[string[], RegExp]> = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["stray"], /Unexpected argument 'stray'/],
    [["--rate-limit", "abc"], /--rate-limit needs a number, got "abc"/],
    [["--rate-limit=-1"], /--rate-limit must be at least 0, got -1/],
    [["--rate-limit", "-1"], /'--rate-limit' argument is ambiguous/],
    [["--concurrency", "0"], /--concurrency must be from 1 to 64/],
    [["--concurrency", "1.5"], /--concurrency needs a whole number/],
    [["--timeout", "0"], /--timeout must be from 1/],
    [["--initial-jitter", "NaN"], /--initial-jitter needs a number/],
    [["--data-dir", ""], /--data-dir needs a path/],
    [["--rate-limit"], /argument missing|--rate-limit/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(
      () => parseCommandLine(args),
      (e: Error) => e instanceof UsageError && pattern.test(e.message),
      args.join(" "),
    );
  }
});
