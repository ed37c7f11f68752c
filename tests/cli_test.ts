import assert from "node:assert/strict";
import { HELP, main, parseInvocation } from "../lib/cli/main.ts";
import { parseViewArgs } from "../lib/cli/commands/view.ts";
import { BACKUP_HELP, backupCommand, parseBackupArgs } from "../lib/cli/commands/backup.ts";
import { parseVerifyArgs, VERIFY_HELP } from "../lib/cli/commands/verify.ts";
import { UsageError } from "../lib/util/errors.ts";
import { ExportProgress, parseExportArgs } from "../lib/cli/commands/export.ts";

const options = parseBackupArgs;

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
  const help = { kind: "help", text: HELP };
  assert.deepEqual(parseInvocation(["--help", "--rate-limit", "1"]), help);
  assert.deepEqual(parseInvocation(["-h"]), help);
  assert.deepEqual(parseInvocation(["help"]), help);
  assert.deepEqual(parseInvocation(["--version"]), { kind: "version" });
  assert.deepEqual(parseInvocation(["-V", "-d", "x"]), { kind: "version" });
  assert.match(HELP, /EXIT STATUS/);
  assert.match(HELP, /--update-old-posts/, "options alone back up, so the help lists them");
});

Deno.test("a command's help comes from help COMMAND and from COMMAND --help", () => {
  const backupHelp = { kind: "help", text: BACKUP_HELP };
  assert.deepEqual(parseInvocation(["help", "backup"]), backupHelp);
  assert.deepEqual(parseInvocation(["backup", "--help"]), backupHelp);
  assert.match(BACKUP_HELP, /USAGE\n {2}matterbak \[backup\] \[options\]/);
  assert.match(BACKUP_HELP, /7 +the data dir is in use by another run/);
  const verifyHelp = { kind: "help", text: VERIFY_HELP };
  assert.deepEqual(parseInvocation(["help", "verify"]), verifyHelp);
  assert.deepEqual(parseInvocation(["verify", "-d", "x", "--help"]), verifyHelp);
  assert.match(
    VERIFY_HELP,
    /USAGE\n {2}matterbak verify \[-d DATA\] \[--zip FILE\] \[--sample PERCENT\] \[--json\]/,
  );
  assert.match(VERIFY_HELP, /6 +matterbak verify found damaged or missing files/);
  assert.match(HELP, /matterbak verify \[-d DATA\]/);
});

Deno.test("verify's options: data dir, zip, a sample from 0 to 100 %, JSON", () => {
  assert.deepEqual(parseVerifyArgs([]), {
    dataDir: "data",
    zip: undefined,
    sample: 100,
    json: false,
  });
  assert.deepEqual(
    parseVerifyArgs(["-d", "d", "--zip", "b.zip", "--sample", "2.5", "--json"]),
    { dataDir: "d", zip: "b.zip", sample: 2.5, json: true },
  );
  const cases: Array<[string[], RegExp]> = [
    [["--sample", "101"], /--sample must be from 0 to 100, got 101/],
    [["--sample", "ten"], /--sample needs a number/],
    [["--zip", ""], /--zip needs a path/],
    [["--bogus"], /Unknown option '--bogus' \(see matterbak verify --help\)/],
    [["extra"], /Unexpected argument 'extra'/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(
      () => parseVerifyArgs(args),
      (e: Error) => e instanceof UsageError && pattern.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("options alone and the backup command run the backup with the same arguments", () => {
  const args = ["-d", "dir", "--quiet"];
  assert.deepEqual(parseInvocation(args), { kind: "run", command: backupCommand, args });
  assert.deepEqual(parseInvocation(["backup", ...args]), {
    kind: "run",
    command: backupCommand,
    args,
  });
  // `deno task backup -- --quiet` passes the `--` on.
  assert.deepEqual(parseInvocation(["--", ...args]), { kind: "run", command: backupCommand, args });
});

Deno.test("an unknown command is a usage error that lists the commands", () => {
  for (const args of [["stray"], ["help", "stray"]]) {
    assert.throws(
      () => parseInvocation(args),
      (e: Error) =>
        e instanceof UsageError &&
        /^Unknown command 'stray'; the commands are backup, verify, init, list, view, export, and options alone run the backup/
          .test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("bad options and values are usage errors that name them", () => {
  const cases: Array<[string[], RegExp]> = [
    [["--bogus"], /^Unknown option '--bogus' \(see --help\)$/],
    [
      ["--updat-old-posts"],
      /^Unknown option '--updat-old-posts'; did you mean --update-old-posts\?/,
    ],
    [["--datadir", "x"], /^Unknown option '--datadir'; did you mean --data-dir\?/],
    [["--skip-emoji"], /did you mean --skip-emojis\?/],
    [["--rate", "1"], /^Unknown option '--rate' \(see --help\)$/],
    [["-d", "x", "stray"], /Unexpected argument 'stray'/],
    [["--rate-limit", "abc"], /--rate-limit needs a number, got "abc"/],
    [["--rate-limit=-1"], /--rate-limit must be 0 or more, got -1/],
    // parseArgs alone calls a negative value "ambiguous"; it is a value, and a wrong one.
    [["--rate-limit", "-3"], /^--rate-limit must be 0 or more, got -3$/],
    [["--initial-jitter", "-.5"], /^--initial-jitter must be from 0 to 86400, got -.5$/],
    [["-d", "-3", "--concurrency", "-1"], /^--concurrency must be from 1 to 64, got -1$/],
    [["--concurrency", "0"], /--concurrency must be from 1 to 64/],
    [["--concurrency", "1.5"], /--concurrency needs a whole number/],
    [["--timeout", "0"], /--timeout must be from 1/],
    [["--initial-jitter", "NaN"], /--initial-jitter needs a number/],
    [["--data-dir", ""], /--data-dir needs a path/],
    [["--rate-limit"], /argument missing|--rate-limit/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(
      () => parseBackupArgs(args),
      (e: Error) => e instanceof UsageError && pattern.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("export is a command with its own help; its options are checked before anything runs", () => {
  const help = parseInvocation(["export", "--help"]);
  assert.equal(help.kind, "help");
  assert.match((help as { text: string }).text, /matterbak export markdown \[-d DATA\] -o DIR/);
  assert.match(
    HELP,
    /export +write the backup as Markdown, or as a Mattermost bulk-import archive/,
  );
  assert.deepEqual(parseExportArgs(["markdown", "-o", "out", "--channel", "a", "--channel", "b"]), {
    format: "markdown",
    dataDir: "data",
    out: "out",
    since: undefined,
    until: undefined,
    channels: ["a", "b"],
    copy: false,
    quiet: false,
  });
  const dates = parseExportArgs([
    "markdown",
    "-o",
    "o",
    "--since",
    "2024-02-28",
    "--until",
    "2024-02-29",
  ]);
  assert.equal(dates.format === "markdown" && dates.since, new Date(2024, 1, 28).getTime());
  assert.equal(dates.format === "markdown" && dates.until, new Date(2024, 2, 1).getTime());
  const cases: Array<[string[], RegExp]> = [
    [["pdf"], /export needs a format: markdown or mattermost, got "pdf"/],
    [["markdown"], /export markdown needs -o DIR/],
    [["markdown", "-o", "x", "--team", "t"], /Unknown option '--team'/],
    [["markdown", "-o", "x", "--since", "2024-13-01"], /--since needs a date/],
    [
      ["markdown", "-o", "x", "--since", "2024-03-01", "--until", "2024-02-01"],
      /--since must come before --until/,
    ],
    [["mattermost"], /export mattermost needs -o FILE.zip, or --check FILE.zip/],
    [["mattermost", "-o", "a.zip", "--check", "b.zip"], /--check reads an archive; it takes no -o/],
    [["mattermost", "-o", ""], /--output needs a value/],
  ];
  for (const [args, message] of cases) {
    assert.throws(
      () => parseExportArgs(args),
      (e: Error) => e instanceof UsageError && message.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("export progress: a status line on a terminal, a line per channel elsewhere, warnings always", () => {
  const lines: string[] = [];
  const statuses: string[] = [];
  const terminal = new ExportProgress(
    {
      out: (l) => lines.push(l),
      err: (l) => lines.push(`err ${l}`),
      status: (l) => statuses.push(l),
    },
    false,
  );
  terminal.listener({ type: "channel", label: "Town Square", index: 2, total: 5 });
  terminal.listener({ type: "progress", posts: 120, files: 7 });
  terminal.listener({ type: "warning", message: "skipped x.json: empty file" });
  assert.equal(terminal.line(), "channel 2/5 Town Square | posts 120 | attachments 7");
  terminal.stop();
  assert.deepEqual(lines, ["err warning: skipped x.json: empty file"]);
  assert.equal(statuses.at(-1), "", "the status line is cleared");

  const plain: string[] = [];
  const log = new ExportProgress({ out: (l) => plain.push(l), err: (l) => plain.push(l) }, false);
  log.listener({ type: "channel", label: "@bob", index: 1, total: 2 });
  const quiet = new ExportProgress({ out: (l) => plain.push(l), err: (l) => plain.push(l) }, true);
  quiet.listener({ type: "channel", label: "@carol", index: 2, total: 2 });
  quiet.listener({ type: "warning", message: "left out a group" });
  assert.deepEqual(plain, ["[1/2] @bob", "warning: left out a group"]);
});

Deno.test("every command suggests the closest of its own options and points at its help", async () => {
  assert.throws(
    () => parseViewArgs(["--ouput", "site"]),
    new UsageError(
      "Unknown option '--ouput'; did you mean --output? (see matterbak view --help)",
    ),
  );
  const err: string[] = [];
  const status = await main(["list", "--jsn"], {
    env: () => undefined,
    output: { out: () => {}, err: (line) => err.push(line) },
  });
  assert.equal(status, 2);
  assert.deepEqual(err, [
    "error: Unknown option '--jsn'; did you mean --json? (see matterbak list --help)",
  ]);
});
