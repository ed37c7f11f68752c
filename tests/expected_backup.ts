/**
 * What a complete backup of a simulated world must contain, computed from the world itself:
 * every relative path with a check of its content. Tests compare it with the data dir both
 * ways (nothing missing, nothing extra). The edit history of other people's posts depends on
 * which edits the backup saw, so those history files are optional, but each must hold only
 * versions the world had, in order, with their text where it has any.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  DIRS,
  fileDataName,
  fileInfoName,
  groupLabel,
  historyFileName,
  idBase,
  MEMBERS_SUFFIX,
  postFileName,
  THREADS_SUFFIX,
} from "../lib/store/layout.ts";
import { checkHistory, editAt, versionText } from "../lib/store/history.ts";
import type { Post as StoredPost } from "../lib/model/records.ts";
import { type Harness, listFiles, type RunResult, startHarness } from "./harness.ts";
import type { Channel, World } from "./simulator/world.ts";

/** A file's check; `optional` files may be missing (see the module comment). */
export type Check = ((bytes: Uint8Array) => void) & { optional?: true };

export interface ExpectedOptions {
  meId: string;
  channels: readonly Channel[];
  skipUsers?: boolean;
  skipUserImages?: boolean;
  skipEmojis?: boolean;
}

const json = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));
const sameBytes = (expected: Uint8Array | undefined): Check => (bytes) => {
  assert.ok(expected, "the world has these bytes");
  assert.deepEqual(bytes, expected);
};

/** The folder of a channel relative to the data dir (as the backup names it today). */
export function channelFolder(world: World, channel: Channel, meId: string): string {
  if (channel.type === "D") {
    const [a, b] = channel.name.split("__");
    const partner = a === meId ? b : a;
    return `direct/${idBase(channel.id, world.user(partner as string).username)}`;
  }
  if (channel.type === "G") {
    const others = world.channelMembers(channel.id).map((m) => m.user_id).filter((id) =>
      id !== meId
    );
    return `groups/${channel.id}__${groupLabel(others.map((id) => world.user(id).username))}`;
  }
  const team = world.team(channel.team_id);
  return `teams/${idBase(team.id, team.name)}/${idBase(channel.id, channel.name)}`;
}

export function expectedBackup(world: World, options: ExpectedOptions): Map<string, Check> {
  const files = new Map<string, Check>();
  // The run lock (its content names the last holder), and the record of the zip written.
  files.set(".matterbak/lock", () => {});
  files.set(".matterbak/zip.json", (bytes) => assert.equal(json(bytes).version, 1));
  // Checked against every other file by assertBackupMatches.
  files.set(".matterbak/manifest.sha256", () => {});
  const users = new Set<string>([options.meId]);
  const teams = new Set<string>();
  for (const channel of options.channels) {
    const folder = channelFolder(world, channel, options.meId);
    files.set(`${folder}.json`, (bytes) => assert.equal(json(bytes).id, channel.id));
    const members = world.channelMembers(channel.id).map((m) => m.user_id);
    members.forEach((id) => users.add(id));
    files.set(`${folder}${MEMBERS_SUFFIX}`, (bytes) => {
      assert.deepEqual(
        json(bytes).map((m: { user_id: string }) => m.user_id).sort(),
        [...members].sort(),
      );
    });
    const threads = new Map<string, string[]>();
    const state = `.matterbak/channels/${channel.id}.json`;
    files.set(state, (bytes) => assert.equal(json(bytes).historyComplete, true));
    for (const record of world.channelPosts(channel.id)) {
      if (record.delete_at > 0) continue;
      const post = world.post(record.id);
      assert.ok(post);
      // The whole record as the server sends it now: any field lost or stale is a difference.
      files.set(`${folder}/${postFileName(post)}`, (bytes) => assert.deepEqual(json(bytes), post));
      users.add(post.user_id);
      for (const reaction of post.metadata?.reactions ?? []) users.add(reaction.user_id);
      if (post.root_id) threads.set(post.root_id, [...threads.get(post.root_id) ?? [], post.id]);
      const history = historyCheck(world, post.id, post.edit_at, post.user_id === options.meId);
      if (history) files.set(`${folder}/${DIRS.history}/${historyFileName(post.id)}`, history);
      for (const fileId of post.file_ids ?? []) {
        const info = world.files.get(fileId);
        assert.ok(info);
        files.set(
          `${folder}/files/${fileInfoName(fileId)}`,
          (bytes) => assert.deepEqual(json(bytes), info),
        );
        files.set(
          `${folder}/files/${fileDataName(fileId, info.name)}`,
          sameBytes(world.fileBytes(fileId)),
        );
      }
    }
    files.set(`${folder}${THREADS_SUFFIX}`, (bytes) => {
      const stored = json(bytes) as Record<string, string[]>;
      assert.deepEqual(
        Object.fromEntries(Object.entries(stored).map(([root, ids]) => [root, [...ids].sort()])),
        Object.fromEntries([...threads].map(([root, ids]) => [root, [...ids].sort()])),
      );
    });
    if (channel.type === "O" || channel.type === "P") teams.add(channel.team_id);
  }
  for (const teamId of teams) {
    const team = world.team(teamId);
    const base = `teams/${idBase(team.id, team.name)}`;
    files.set(`${base}.json`, (bytes) => assert.equal(json(bytes).id, team.id));
    const members = world.teamMembers(teamId).map((m) => m.user_id);
    members.forEach((id) => users.add(id));
    files.set(`${base}${MEMBERS_SUFFIX}`, (bytes) => {
      assert.deepEqual(
        json(bytes).map((m: { user_id: string }) => m.user_id).sort(),
        [...members].sort(),
      );
    });
    const icon = world.teamIcon(teamId);
    if (icon) files.set(`teams/${team.id}__icon.png`, sameBytes(icon));
  }
  if (!options.skipUsers) {
    files.set(".matterbak/state.json", () => {});
    for (const id of users) {
      const user = world.user(id);
      const base = `users/${idBase(id, user.username)}`;
      files.set(`${base}.json`, (bytes) => assert.equal(json(bytes).username, user.username));
      if (!options.skipUserImages && (user.last_picture_update ?? 0) > 0) {
        files.set(`${base}__image.png`, sameBytes(world.userPicture(id)));
      }
    }
  }
  if (!options.skipEmojis) {
    for (const emoji of world.emojis.values()) {
      if (emoji.delete_at > 0) continue;
      const base = `emojis/${idBase(emoji.id, emoji.name)}`;
      files.set(`${base}.json`, (bytes) => assert.equal(json(bytes).id, emoji.id));
      files.set(`${base}.png`, sameBytes(world.emojiImage(emoji.id)?.bytes));
    }
  }
  return files;
}

/**
 * The check of a post's history file: every version the world kept (other than the post's own)
 * with its text, when the server's edit history gives them all (the user's own posts); else a
 * subset, in order, each with the world's text or none. Undefined for a post never changed.
 */
function historyCheck(
  world: World,
  postId: string,
  currentEditAt: number,
  own: boolean,
): Check | undefined {
  const texts = new Map<number, string>();
  for (const copy of world.editHistory(postId)) {
    if (copy.edit_at !== currentEditAt) texts.set(copy.edit_at, copy.message);
  }
  const check: Check = (bytes) => {
    const checked = checkHistory(json(bytes), postId);
    assert.ok("history" in checked, "reason" in checked ? checked.reason : "");
    const versions = checked.history.versions;
    const keys = versions.map((v) => editAt(v.post as StoredPost));
    if (own) {
      assert.deepEqual(keys, [...texts.keys()].sort((a, b) => a - b));
      assert.equal(checked.history.edit_history_at, currentEditAt, "the server was asked");
    }
    for (const version of versions) {
      const at = editAt(version.post as StoredPost);
      assert.ok(texts.has(at), `version of ${at} is one the world had`);
      const text = versionText(version);
      if (own || text !== undefined) assert.equal(text, texts.get(at), `text of ${at}`);
    }
  };
  if (texts.size === 0) return undefined;
  if (!own) check.optional = true;
  return check;
}

/** Asserts that `dataDir` holds exactly the expected files, each passing its check. */
export async function assertBackupMatches(
  dataDir: string,
  expected: Map<string, Check>,
  actual: string[],
) {
  const missing = [...expected].filter(([path, check]) => !check.optional && !actual.includes(path))
    .map(([path]) => path);
  const extra = actual.filter((path) => !expected.has(path));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
  for (const [path, check] of expected) {
    if (check.optional && !actual.includes(path)) continue;
    try {
      check(await Deno.readFile(`${dataDir}/${path}`));
    } catch (error) {
      throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
    }
  }
  await assertManifestMatches(dataDir, actual);
}

/**
 * The manifest lists exactly the files outside `.matterbak/`, each with the SHA-256 and size of
 * its bytes on disk, in sha256sum's format (a size comment before each line).
 */
export async function assertManifestMatches(dataDir: string, actual: string[]): Promise<void> {
  const text = await Deno.readTextFile(`${dataDir}/.matterbak/manifest.sha256`);
  const listed = new Map<string, { sha256: string; size: number }>();
  let size = -1;
  for (const line of text.split("\n").filter((l) => l !== "")) {
    if (line.startsWith("#size ")) size = Number(line.slice(6));
    if (line.startsWith("#")) continue;
    const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    assert.ok(match, `a sha256sum line: ${line}`);
    listed.set(match[2] as string, { sha256: match[1] as string, size });
  }
  const content = actual.filter((path) => !path.startsWith(".matterbak/"));
  assert.deepEqual([...listed.keys()].sort(), [...content].sort(), "the manifest lists every file");
  for (const path of content) {
    const bytes = await Deno.readFile(`${dataDir}/${path}`);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    assert.deepEqual(listed.get(path), { sha256, size: bytes.length }, path);
  }
}

/** The team channels (public and private, archived included) the account is a member of. */
export function teamChannels(world: World, meId: string): Channel[] {
  return [...world.channels.values()].filter((c) =>
    world.isChannelMember(c.id, meId) && (c.type === "O" || c.type === "P")
  );
}

/**
 * Runs the backup (posts and files only: `--skip-users --skip-emojis`) and asserts that it
 * exits 0 and leaves exactly the expected backup of `channels` (default: the team channels).
 */
export async function assertRunCompletes(
  h: Harness,
  meId: string,
  options: { channels?: readonly Channel[]; args?: string[]; dataDir?: string } = {},
): Promise<RunResult> {
  const result = await h.run(["--skip-users", "--skip-emojis", ...options.args ?? []]);
  assert.equal(result.status, 0, result.err.join("\n"));
  const expected = expectedBackup(h.world, {
    meId,
    channels: options.channels ?? teamChannels(h.world, meId),
    skipUsers: true,
    skipEmojis: true,
  });
  const dataDir = options.dataDir ?? h.dataDir;
  await assertBackupMatches(dataDir, expected, await listFiles(dataDir));
  return result;
}

/** Channels "me" belongs to, as the config below selects them (all of them). */
export function myChannels(world: World, meId: string): Channel[] {
  return [...world.channels.values()].filter((c) => world.isChannelMember(c.id, meId));
}

/** A harness whose config selects every conversation of the account, which logs in with its password. */
export function harnessForAll(
  { world, me, password }: { world: World; me: { id: string; username: string }; password: string },
): Promise<Harness> {
  return startHarness({
    world,
    credentials: { user: me.username, password },
    channels: fullConfig(world, me.id),
  });
}

export function fullConfig(world: World, meId: string) {
  const mine = myChannels(world, meId);
  const others = (c: Channel) =>
    world.channelMembers(c.id).map((m) => world.user(m.user_id).username).filter((n) =>
      n !== world.user(meId).username
    );
  return {
    teams: Object.fromEntries([...world.teams.values()].map((t) => [t.name, {}])),
    direct: mine.filter((c) => c.type === "D").map((c) =>
      others(c)[0] ?? world.user(meId).username
    ),
    groups: { exact: mine.filter((c) => c.type === "G").map(others) },
  };
}
