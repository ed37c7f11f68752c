/**
 * The rules of the edit-history file: one version per `edit_at`, oldest first, never the post
 * file's own version, a version without its text taking one when a source gives it, and a file
 * that breaks these rules read as damaged.
 */
import assert from "node:assert/strict";
import type { Post } from "../lib/model/records.ts";
import {
  checkHistory,
  mergeVersions,
  type PostVersion,
  versionLines,
  versionText,
} from "../lib/store/history.ts";

const ID = "p".repeat(26);

function post(editAt: number, message: string, fields: Partial<Post> = {}): Post {
  return {
    id: ID,
    create_at: 1000,
    update_at: editAt || 1000,
    delete_at: 0,
    user_id: "u",
    channel_id: "c",
    root_id: "",
    edit_at: editAt,
    message,
    ...fields,
  };
}

const backup = (editAt: number, message: string): PostVersion => ({
  from: "backup",
  post: post(editAt, message),
});
/** A hidden copy among the changes: the server sends it without its text. */
const change = (editAt: number): PostVersion => ({
  from: "changes",
  post: post(editAt, "", { id: "c".repeat(26), original_id: ID, delete_at: 9000 }),
});
const server = (editAt: number, message: string): PostVersion => ({
  from: "edit_history",
  post: post(editAt, message, { id: "s".repeat(26), original_id: ID, delete_at: 9000 }),
});

const keys = (versions: PostVersion[]) => versions.map((v) => [v.post.edit_at, versionText(v)]);

Deno.test("versions are kept once per edit, oldest first, never the post file's own", () => {
  const first = mergeVersions([], [change(2000), backup(0, "v0"), change(3000)], 4000);
  assert.deepEqual(keys(first.versions), [[0, "v0"], [2000, undefined], [3000, undefined]]);
  assert.equal(first.added, 3);
  // The same copies again, and a pin's copy of the current text: nothing new.
  const again = mergeVersions(first.versions, [change(2000), change(3000), change(4000)], 4000);
  assert.equal(again.changed, false);
  assert.equal(again.added, 0);
  assert.deepEqual(again.versions, first.versions);
  // A version without text takes the text the server's edit history gives, once.
  const filled = mergeVersions(again.versions, [server(2000, "v1"), server(0, "v0 again")], 4000);
  assert.deepEqual(keys(filled.versions), [[0, "v0"], [2000, "v1"], [3000, undefined]]);
  assert.equal(filled.added, 0);
  assert.equal(filled.changed, true);
  // A version that has become the post file's is dropped from the history.
  const current = mergeVersions(filled.versions, [], 3000);
  assert.deepEqual(keys(current.versions), [[0, "v0"], [2000, "v1"]]);
  assert.equal(current.changed, true);
});

Deno.test("an empty message is text except among the changes, where the server blanks it", () => {
  assert.equal(versionText(backup(0, "")), "");
  assert.equal(versionText(server(0, "")), "");
  assert.equal(versionText(change(0)), undefined);
  assert.equal(versionText({ from: "changes", post: post(0, "sent anyway") }), "sent anyway");
});

Deno.test("readers see each version's time, whether it is the first, and whether it came after the post file's", () => {
  const deleted = post(0, "v0", { delete_at: 8000 });
  assert.deepEqual(versionLines(deleted, [change(5000)]), [
    { at: 5000, first: false, text: undefined, later: true },
  ]);
  assert.deepEqual(versionLines(post(5000, "v1"), [backup(0, "v0")]), [
    { at: 1000, first: true, text: "v0", later: false },
  ]);
});

Deno.test("a history file that breaks the rules is damaged, and says how", () => {
  const good = { version: 1, post_id: ID, versions: [backup(0, "a"), change(2000)] };
  assert.ok("history" in checkHistory(good, ID));
  const reason = (value: unknown) => {
    const checked = checkHistory(value, ID);
    return "reason" in checked ? checked.reason : "";
  };
  assert.match(reason([]), /not an edit history/);
  assert.match(reason({ ...good, version: 2 }), /not an edit history/);
  assert.match(reason({ ...good, post_id: "x".repeat(26) }), /not of p{26}/);
  assert.ok("history" in checkHistory({ ...good, edit_history_at: 2000 }, ID));
  assert.match(reason({ ...good, edit_history_at: "soon" }), /"edit_history_at" "soon" is no time/);
  assert.match(reason({ ...good, versions: [backup(2000, "b"), backup(0, "a")] }), /not newer/);
  assert.match(reason({ ...good, versions: [backup(0, "a"), backup(0, "a")] }), /not newer/);
  assert.match(
    reason({ ...good, versions: [{ from: "elsewhere", post: post(0, "a") }] }),
    /version 1/,
  );
  assert.match(reason({ ...good, versions: [{ from: "backup", post: { id: ID } }] }), /version 1/);
});
