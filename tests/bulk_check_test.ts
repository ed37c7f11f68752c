/**
 * The archive check (`export mattermost --check`): a valid archive passes, and each rule of the
 * importer that an archive breaks is reported with its line.
 */
import assert from "node:assert/strict";
import { checkBulkArchive } from "../lib/export/bulk_check.ts";
import { ZipWriter } from "../lib/zip/writer.ts";

type Line = Record<string, unknown>;

const T = 1_700_000_000_000;

function validLines(): Line[] {
  return [
    { type: "version", version: 1 },
    { type: "emoji", emoji: { name: "shipit", image: "emoji/e.png" } },
    { type: "team", team: { name: "team-0", display_name: "Team 0", type: "O" } },
    {
      type: "channel",
      channel: { team: "team-0", name: "town-square", display_name: "Town Square", type: "O" },
    },
    ...["alice", "bob", "carol"].map((username) => ({
      type: "user",
      user: {
        username,
        email: `${username}@users.invalid`,
        roles: "system_user",
        teams: [{
          name: "team-0",
          roles: "team_user",
          channels: [{ name: "town-square", roles: "channel_user" }],
        }],
      },
    })),
    {
      type: "post",
      post: {
        team: "team-0",
        channel: "town-square",
        user: "alice",
        message: "hello",
        create_at: T,
        reactions: [{ user: "bob", emoji_name: "+1", create_at: T + 1 }],
        attachments: [{ path: "attachments/a/report.pdf" }],
        replies: [{ user: "bob", message: "hi", create_at: T + 5 }],
      },
    },
    { type: "direct_channel", direct_channel: { members: ["alice", "alice"] } },
    { type: "direct_channel", direct_channel: { members: ["alice", "bob", "carol"] } },
    {
      type: "direct_post",
      direct_post: {
        channel_members: ["bob", "alice", "carol"],
        user: "bob",
        message: "yo",
        create_at: T,
      },
    },
  ];
}

async function archive(
  dir: string,
  lines: (Line | string)[],
  options: { files?: string[]; jsonl?: string[] } = {},
): Promise<string> {
  const path = `${dir}/${crypto.randomUUID()}.zip`;
  const zip = await ZipWriter.create(path);
  for (const name of options.files ?? ["data/emoji/e.png", "data/attachments/a/report.pdf"]) {
    await zip.addBytes(name, new Uint8Array([1, 2, 3]));
  }
  const text = lines.map((line) => typeof line === "string" ? line : JSON.stringify(line)).join(
    "\n",
  );
  for (const name of options.jsonl ?? ["import.jsonl"]) {
    await zip.addBytes(name, new TextEncoder().encode(text + "\n"));
  }
  await zip.close();
  return path;
}

/** The archive with line `index` (0-based) changed by `change`. */
function withLine(index: number, change: (line: Line) => void): Line[] {
  const lines = validLines();
  change(lines[index] as Line);
  return lines;
}

const body = (line: Line, type: string) => line[type] as Line;
const post = (line: Line) => body(line, "post");

Deno.test("a valid archive passes and is counted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const check = await checkBulkArchive(await archive(dir, validLines()));
    assert.deepEqual(check.problems, []);
    assert.deepEqual(check.counts, {
      lines: 11,
      teams: 1,
      channels: 1,
      users: 3,
      emoji: 1,
      posts: 1,
      directChannels: 2,
      directPosts: 1,
      replies: 1,
      reactions: 1,
      attachments: 1,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const broken: Array<
  [string, () => (Line | string)[], RegExp, { files?: string[]; jsonl?: string[] }?]
> = [
  [
    "version line missing",
    () => validLines().slice(1),
    /line 1: the first line must be the version line/,
  ],
  ["wrong version", () => withLine(0, (l) => l.version = 2), /line 1: version must be 1/],
  ["types out of order", () => {
    const lines = validLines();
    return [lines[0], lines[2], lines[1], ...lines.slice(3)] as Line[];
  }, /line 3: emoji lines must come before team/],
  ["a type in two runs", () => {
    const lines = validLines();
    return [...lines.slice(0, 5), lines[3], ...lines.slice(5)] as Line[];
  }, /channel lines must form one run/],
  ["not JSON", () => [...validLines(), "{oops"], /line 12: not valid JSON/],
  ["unknown type", () => [...validLines(), { type: "reply" }], /unknown line type "reply"/],
  [
    "bad team name",
    () => withLine(2, (l) => body(l, "team").name = "admin-team"),
    /team name "admin-team" is not valid/,
  ],
  [
    "team type",
    () => withLine(2, (l) => body(l, "team").type = "P"),
    /team type must be "O" or "I"/,
  ],
  [
    "long team display name",
    () => withLine(2, (l) => body(l, "team").display_name = "é".repeat(65)),
    /team display_name must be 1 to 64/,
  ],
  [
    "channel of an unknown team",
    () => withLine(3, (l) => body(l, "channel").team = "other"),
    /channel's team "other" is not in the file/,
  ],
  [
    "bad channel name",
    () => withLine(3, (l) => body(l, "channel").name = "Town Square"),
    /channel name "Town Square" is not valid/,
  ],
  [
    "channel type",
    () => withLine(3, (l) => body(l, "channel").type = "D"),
    /channel type must be "O" or "P"/,
  ],
  [
    "long purpose",
    () => withLine(3, (l) => body(l, "channel").purpose = "x".repeat(251)),
    /purpose is longer than 250/,
  ],
  [
    "long header",
    () => withLine(3, (l) => body(l, "channel").header = "x".repeat(1025)),
    /header is longer than 1024/,
  ],
  [
    "bad username",
    () => withLine(4, (l) => body(l, "user").username = "all"),
    /username "all" is not valid/,
  ],
  [
    "no email",
    () => withLine(4, (l) => delete body(l, "user").email),
    /user email must be 1 to 128/,
  ],
  [
    "password and auth_data",
    () => withLine(4, (l) => Object.assign(body(l, "user"), { password: "x", auth_data: "y" })),
    /password or auth_data, not both/,
  ],
  [
    "unknown role",
    () => withLine(4, (l) => body(l, "user").roles = "system_user wizard"),
    /unknown wizard/,
  ],
  [
    "membership of an unknown channel",
    () =>
      withLine(
        4,
        (l) => ((body(l, "user").teams as Line[])[0]!.channels as Line[]).push({ name: "gone" }),
      ),
    /user's channel team-0\/gone is not in the file/,
  ],
  [
    "post in an unknown channel",
    () => withLine(7, (l) => post(l).channel = "gone"),
    /post's channel "gone" is not in the file/,
  ],
  [
    "post by an unknown user",
    () => withLine(7, (l) => post(l).user = "dave"),
    /post's user dave is not in the file/,
  ],
  [
    "long message",
    () => withLine(7, (l) => post(l).message = "x".repeat(16_384)),
    /post message is longer than 16383/,
  ],
  [
    "zero create_at",
    () => withLine(7, (l) => post(l).create_at = 0),
    /post needs a non-zero create_at/,
  ],
  [
    "reaction older than its post",
    () => withLine(7, (l) => ((post(l).reactions as Line[])[0]!.create_at = T - 1)),
    /post reaction is older than its post/,
  ],
  [
    "reaction by an unknown user",
    () => withLine(7, (l) => ((post(l).reactions as Line[])[0]!.user = "eve")),
    /post reaction's user eve is not in the file/,
  ],
  [
    "attachment not in the zip",
    () => withLine(7, (l) => post(l).attachments = [{ path: "attachments/x.pdf" }]),
    /attachment "attachments\/x.pdf" is not in the zip/,
  ],
  [
    "attachment path leaving data/",
    () => withLine(7, (l) => post(l).attachments = [{ path: "../import.jsonl" }]),
    /leaves the data\/ folder/,
  ],
  [
    "too many attachments",
    () =>
      withLine(7, (l) =>
        post(l).attachments = Array.from(
          { length: 11 },
          () => ({ path: "attachments/a/report.pdf" }),
        )),
    /has 11 attachments; a post takes 10/,
  ],
  [
    "reply by an unknown user",
    () => withLine(7, (l) => ((post(l).replies as Line[])[0]!.user = "eve")),
    /post reply 1's user eve is not in the file/,
  ],
  [
    "reply with replies",
    () => withLine(7, (l) => ((post(l).replies as Line[])[0]!.replies = [])),
    /reply 1 has replies of its own/,
  ],
  [
    "props too long",
    () => withLine(7, (l) => post(l).props = { x: "y".repeat(800_000) }),
    /props are longer than 800000/,
  ],
  [
    "DM of one",
    () => withLine(8, (l) => body(l, "direct_channel").members = ["alice"]),
    /direct_channel has 1 members/,
  ],
  [
    "group of nine",
    () => withLine(9, (l) => body(l, "direct_channel").members = Array(9).fill("bob")),
    /direct_channel has 9 members/,
  ],
  [
    "direct post without its channel",
    () => withLine(10, (l) => body(l, "direct_post").channel_members = ["bob", "carol"]),
    /direct_post's channel \(bob,carol\) has no direct_channel line/,
  ],
  ["emoji image missing", () => validLines(), /emoji image "emoji\/e.png" is not in the zip/, {
    files: ["data/attachments/a/report.pdf"],
  }],
  [
    "bad emoji name",
    () => withLine(1, (l) => body(l, "emoji").name = "a:b"),
    /emoji name "a:b" is not valid/,
  ],
  ["two .jsonl files", () => validLines(), /holds 2 .jsonl files/, {
    jsonl: ["import.jsonl", "data/other.jsonl"],
  }],
  ["jsonl in a folder", () => validLines(), /sub\/import.jsonl is not at the root/, {
    jsonl: ["sub/import.jsonl"],
  }],
];

for (const [what, lines, problem, options] of broken) {
  Deno.test(`the check reports: ${what}`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const check = await checkBulkArchive(await archive(dir, lines(), options));
      assert.ok(
        check.problems.some((p) => problem.test(p)),
        `expected ${problem} among ${JSON.stringify(check.problems)}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("the check reports a line longer than the importer reads, and a file that is no zip", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const long = { ...validLines()[7], post: { ...post(validLines()[7] as Line), message: "x" } };
    (long.post as Line).replies = Array.from({ length: 1200 }, (_, i) => ({
      user: "bob",
      message: "y".repeat(15_000),
      create_at: T + i + 1,
    }));
    const check = await checkBulkArchive(await archive(dir, [...validLines(), long]));
    assert.ok(
      check.problems.some((p) => /line 12: \d+ bytes long; the importer reads at most/.test(p)),
    );
    await Deno.writeTextFile(`${dir}/x.zip`, "not a zip");
    const notZip = await checkBulkArchive(`${dir}/x.zip`);
    assert.match(notZip.problems[0] ?? "", /is not a ZIP archive/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
