/** The bulk-import format's rules and the conversion of stored posts. */
import assert from "node:assert/strict";
import type { Post } from "../lib/model/records.ts";
import {
  importPost,
  isValidChannelName,
  isValidEmojiName,
  isValidTeamName,
  isValidUsername,
  LIMITS,
  runes,
  splitMessage,
} from "../lib/export/bulk_format.ts";

Deno.test("a long message is cut at a line break, else a space, near the limit; nothing is lost", () => {
  const lines = Array.from({ length: 40 }, (_, i) => `line ${i} ${"é😀x".repeat(20)}`).join("\n");
  const pieces = splitMessage(lines, 500);
  assert.ok(pieces.length > 1);
  assert.equal(pieces.join(""), lines);
  for (const piece of pieces) assert.ok(runes(piece) <= 500, `${runes(piece)} code points`);
  for (const piece of pieces.slice(0, -1)) {
    assert.ok(piece.endsWith("\n"), "cut after a line break");
  }

  const words = "word ".repeat(300);
  const byWords = splitMessage(words, 100);
  assert.equal(byWords.join(""), words);
  for (const piece of byWords.slice(0, -1)) assert.ok(piece.endsWith(" "));

  const solid = "😀".repeat(250);
  assert.deepEqual(splitMessage(solid, 100).map(runes), [100, 100, 50]);
  assert.deepEqual(splitMessage("short", 100), ["short"]);
  assert.equal(splitMessage("x".repeat(LIMITS.messageRunes)).length, 1);
  assert.equal(splitMessage("x".repeat(LIMITS.messageRunes + 1)).length, 2);
});

const base: Post = {
  id: "p".repeat(26),
  create_at: 1_700_000_000_000,
  update_at: 1_700_000_500_000,
  delete_at: 0,
  user_id: "u".repeat(26),
  channel_id: "c".repeat(26),
  root_id: "",
  message: "hello",
};
const names = (id: string) =>
  ({ ["u".repeat(26)]: "alice", ["v".repeat(26)]: "bob" })[id] ?? `user-${id}`;

Deno.test("a post keeps its fields; reactions are never older than the post", () => {
  const { fields, extra } = importPost({
    ...base,
    edit_at: 1_700_000_100_000,
    is_pinned: true,
    type: "",
    props: { from_webhook: "true" },
    metadata: {
      reactions: [
        { user_id: "v".repeat(26), emoji_name: "+1", create_at: 1_700_000_200_000 },
        { user_id: "w".repeat(26), emoji_name: "tada", create_at: 0 },
      ],
    },
  }, { username: names, attachments: ["attachments/f/a.txt"] });
  assert.deepEqual(fields, {
    user: "alice",
    message: "hello",
    create_at: base.create_at,
    edit_at: 1_700_000_100_000,
    is_pinned: true,
    props: { from_webhook: "true" },
    reactions: [
      { user: "bob", emoji_name: "+1", create_at: 1_700_000_200_000 },
      { user: `user-${"w".repeat(26)}`, emoji_name: "tada", create_at: base.create_at },
    ],
    attachments: [{ path: "attachments/f/a.txt" }],
  });
  assert.deepEqual(extra, []);
});

Deno.test("the rest of a long message and attachments beyond the limit go into replies after it", () => {
  const message = "x".repeat(LIMITS.messageRunes) + "y".repeat(10);
  const attachments = Array.from({ length: 23 }, (_, i) => `attachments/${i}/f.txt`);
  const { fields, extra } = importPost({ ...base, message }, { username: names, attachments });
  assert.equal(fields.message, "x".repeat(LIMITS.messageRunes));
  assert.equal(fields.attachments?.length, LIMITS.attachments);
  assert.deepEqual(
    extra.map((r) => [r.message, r.create_at - base.create_at, r.attachments?.length]),
    [
      ["y".repeat(10), 1, undefined],
      ["", 2, 10],
      ["", 3, 3],
    ],
  );
  assert.ok(extra.every((r) => r.user === "alice"));
  assert.deepEqual(
    [fields, ...extra].flatMap((r) => r.attachments ?? []).map((a) => a.path),
    attachments,
  );
});

Deno.test("names are judged as the server's model does", () => {
  assert.ok(isValidTeamName("team-0") && isValidTeamName("ab"));
  for (const bad of ["a", "-team", "team-", "Team Zero", "postgres", "admins", "x".repeat(65)]) {
    assert.ok(!isValidTeamName(bad), bad);
  }
  assert.ok(
    isValidChannelName("town-square") && isValidChannelName("a") && isValidChannelName("x_y"),
  );
  for (const bad of ["", "-x", "a b", "ü", "x".repeat(65)]) {
    assert.ok(!isValidChannelName(bad), bad);
  }
  assert.ok(isValidUsername("bob.smith-2") && isValidUsername(`user-${"a".repeat(26)}`));
  for (const bad of ["", "all", "bob smith", "x".repeat(65)]) assert.ok(!isValidUsername(bad), bad);
  assert.ok(isValidEmojiName("party_parrot") && isValidEmojiName("+1"));
  assert.ok(!isValidEmojiName("a:b") && !isValidEmojiName(""));
});
