/** The checks of what the sync reads back from `.matterbak/`: seen logs and channel states. */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { channelStateProblem, checkSeenLog } from "../lib/store/state.ts";

const CHANNEL = "c".repeat(26);
const TOKEN = "0123456789abcdef";
const HEADER = `matterbak seen log 1 ${CHANNEL} ${TOKEN}\n`;
const ids = ["a", "b", "c"].map((c) => c.repeat(26));
const line = (id: string) => `${id} ${(zlib.crc32(id) >>> 0).toString(16).padStart(8, "0")}\n`;
const LOG = HEADER + ids.map(line).join("");

Deno.test("a seen log as the sync writes it gives back its ids; a line cut short by a crash is dropped", () => {
  assert.deepEqual(checkSeenLog(LOG, CHANNEL, { token: TOKEN, lines: 3 }), {
    ids: new Set(ids),
    lines: 3,
    length: LOG.length,
  });
  // Lines appended after the last checkpoint count too; an unfinished one does not.
  const torn = LOG + line("d".repeat(26)) + "eeee";
  const checked = checkSeenLog(torn, CHANNEL, { token: TOKEN, lines: 3 });
  assert.ok("ids" in checked);
  assert.equal(checked.lines, 4);
  assert.equal(checked.length, torn.length - 4);
  assert.deepEqual(checkSeenLog(HEADER, CHANNEL, { token: TOKEN, lines: 0 }), {
    ids: new Set(),
    lines: 0,
    length: HEADER.length,
  });
});

Deno.test("a damaged, shortened or foreign seen log is never trusted", () => {
  const flipped = LOG.replace(ids[1] as string, `${"b".repeat(25)}x`);
  const cases: Array<[string, RegExp]> = [
    ["\0".repeat(LOG.length), /does not start with the header/],
    ["", /does not start with the header/],
    [LOG.replace(TOKEN, "fedcba9876543210"), /does not start with the header/],
    [LOG.replaceAll(CHANNEL, "d".repeat(26)), /does not start with the header/],
    [flipped, /line 3 is damaged/],
    [HEADER + line(ids[0] as string) + "\0".repeat(36) + line(ids[2] as string), /line 3/],
    [HEADER + line(ids[0] as string), /holds 1 ids where its state counts 3/],
    // The format of 0.1.0: ids without a header or checksums.
    [`\n${ids.join("\n")}`, /does not start with the header/],
  ];
  for (const [text, reason] of cases) {
    const checked = checkSeenLog(text, CHANNEL, { token: TOKEN, lines: 3 });
    assert.ok("problem" in checked, JSON.stringify(text.slice(0, 80)));
    assert.match(checked.problem, reason);
  }
});

Deno.test("a channel state's seen-log mark must be a token and a count", () => {
  const state = {
    version: 1,
    channelId: CHANNEL,
    dir: `teams/${"t".repeat(26)}__team/${CHANNEL}__town-square`,
    historyComplete: false,
    watermark: 1,
    pendingFiles: [],
    reconciling: true,
  };
  assert.equal(
    channelStateProblem({ ...state, seenLog: { token: TOKEN, lines: 3 } }, CHANNEL),
    undefined,
  );
  for (
    const seenLog of [{ token: "x", lines: 3 }, { token: TOKEN, lines: -1 }, { token: TOKEN }, 5]
  ) {
    assert.equal(
      channelStateProblem({ ...state, seenLog }, CHANNEL),
      '"seenLog" is not {token, lines}',
      JSON.stringify(seenLog),
    );
  }
});

Deno.test("a channel state's dir must be this channel's folder, its ETag a header value", () => {
  const state = {
    version: 1,
    channelId: CHANNEL,
    dir: `teams/${"t".repeat(26)}__team/${CHANNEL}__town-square`,
    historyComplete: true,
    watermark: 1,
    etag: '"abc.123"',
    pendingFiles: [],
  };
  for (const dir of [state.dir, `direct/${CHANNEL}__bob`, `groups/${CHANNEL}__ann__bob`]) {
    assert.equal(channelStateProblem({ ...state, dir }, CHANNEL), undefined, dir);
  }
  for (
    const dir of [
      `teams/t/${"d".repeat(26)}__another-channel`,
      `users/${CHANNEL}__x`,
      `direct/x/${CHANNEL}__x`,
      `teams/${CHANNEL}__x`,
      `teams/t/u/${CHANNEL}__x`,
    ]
  ) {
    assert.equal(
      channelStateProblem({ ...state, dir }, CHANNEL),
      `"dir" ${JSON.stringify(dir)} is not a folder of this channel`,
    );
  }
  for (const etag of ["a\r\nX-Injected: 1", "", 5, "é"]) {
    assert.equal(
      channelStateProblem({ ...state, etag }, CHANNEL),
      '"etag" is not a header value (printable ASCII)',
      JSON.stringify(etag),
    );
  }
});
