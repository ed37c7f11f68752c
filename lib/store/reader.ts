/**
 * The one read side of a data dir: teams, channels, users, emoji, and each channel's posts in
 * time order, threads and attachments, from folders this tool wrote and folders matterbak wrote.
 * verify, view and export read only through here, and so does the sync where it reads stored
 * posts. A damaged file is an item of what is read (`damaged`), never an exception out of it.
 */
import { createHash, type Hash } from "node:crypto";
import { indexBases } from "./state.ts";
import { checkHistory, type PostHistory, type PostVersion } from "./history.ts";
import { isObject } from "../util/objects.ts";
import {
  type DataDir,
  isFileEntry,
  type RelPath,
  type SyncReader,
  UnfitFileError,
} from "./data_dir.ts";
import {
  besideFolder,
  type ChannelKind,
  DIRS,
  fileDataName,
  fileIdFromDataName,
  fileInfoName,
  historyFileName,
  ICON_SUFFIX,
  idPrefix,
  IMAGE_SUFFIX,
  isImageOf,
  JSON_EXT,
  MEMBERS_SUFFIX,
  postIdFromFileName,
  postIdFromHistoryName,
  THREADS_SUFFIX,
} from "./layout.ts";
import {
  type Channel,
  type Emoji,
  type FileInfo,
  type Member,
  type Post,
  type Team,
  type User,
  validChannel,
  validEmoji,
  validFileInfo,
  validMember,
  validPost,
  validTeam,
  validUser,
} from "../model/records.ts";

/** A file that could not be read as what its name says it is. */
export interface Damage {
  path: RelPath;
  reason: string;
}

export interface TeamEntry {
  id: string;
  /** `<teamId>__<teamName>`: the team's folder and record base. */
  base: string;
  record: Team | undefined;
  /** The team icon, when one was backed up. */
  icon: RelPath | undefined;
  damage: Damage[];
}

export interface ChannelEntry {
  id: string;
  kind: ChannelKind;
  team: TeamEntry | undefined;
  /** The posts folder; the record, members and threads files sit beside it. */
  folder: RelPath;
  record: Channel | undefined;
  /**
   * From the folder name: the channel's name as first backed up, the DM partner's username,
   * or a group's other members' usernames.
   */
  label: string[];
  damage: Damage[];
}

export interface UserEntry {
  id: string;
  record: User | undefined;
  image: RelPath | undefined;
  damage: Damage[];
}

export interface EmojiEntry {
  id: string;
  record: Emoji | undefined;
  image: RelPath | undefined;
  damage: Damage[];
}

/** A file's size and modification time (ms) as listed. */
export interface FileStat {
  size: number;
  mtime: number;
}

/** A post read, or a post file that could not be; `stat`: as listed before it was read. */
export type PostItem =
  | { kind: "post"; post: Post; path: RelPath; stat?: FileStat }
  | { kind: "damaged"; damage: Damage; stat?: FileStat };

export interface Attachment {
  fileId: string;
  /** The stored FileInfo, else the one the post carries. */
  info: FileInfo | undefined;
  /** The data file; undefined when it is not in the backup. */
  path: RelPath | undefined;
  size: number | undefined;
  /** The stored FileInfo when it is damaged (`info` is then the post's). */
  damage: Damage | undefined;
}

/**
 * What a channel's stored files looked like, cheaply (no post is read): the modification times
 * and sizes of its posts folder, its attachments and edit-history folders and its record,
 * members and threads files. Writing, replacing or removing a post, attachment or history
 * renames an entry in its folder, which changes that folder's time; the three files are
 * replaced when they change. Equal stamps mean unchanged files, provided no change came within
 * the file system's clock step after `newest`, the latest of the times.
 */
export interface ChangeStamp {
  stamp: string;
  newest: number;
}

/** The JSON in `text`, or why there is none. */
function parseJsonText(text: string): { value: unknown } | { reason: string } {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { reason: text.length === 0 ? "empty file" : "not valid JSON" };
  }
}

/** The post in a parsed post file (with `expectedId`, the id its name gives), or why it is none. */
function checkStoredPost(value: unknown, expectedId?: string): { post: Post } | { reason: string } {
  if (!isObject(value) || !validPost(value)) {
    return { reason: "not a post record (id, times, channel and user expected)" };
  }
  if (expectedId !== undefined && value.id !== expectedId) {
    return { reason: `holds post ${value.id}, not the post its name says` };
  }
  const post = value as Post;
  post.delete_at ??= 0;
  post.root_id ??= "";
  return { post };
}

/** Why `text` is not a stored post (with `expectedId`, the id its file name gives), or the post. */
export function parseStoredPost(
  text: string,
  expectedId?: string,
): { post: Post } | { reason: string } {
  const parsed = parseJsonText(text);
  return "reason" in parsed ? parsed : checkStoredPost(parsed.value, expectedId);
}

/** Why `text` is not the edit history of `postId`, or the history. */
export function parseHistory(
  text: string,
  postId: string,
): { history: PostHistory } | { reason: string } {
  const parsed = parseJsonText(text);
  return "reason" in parsed ? parsed : checkHistory(parsed.value, postId);
}

/** A file's SHA-256 and size as read now, its mtime when asked for, its bytes when asked for. */
export interface HashedFile {
  /** Lowercase hex. */
  sha256: string;
  size: number;
  /** Modification time in ms (with `withTime`). */
  mtime?: number;
  bytes?: Uint8Array;
}

/** Files up to this size are read in one piece; larger ones in chunks of it. */
const WHOLE_FILE = 1 << 20;
/** The buffer of every whole-file read (they are synchronous: one at a time). */
const wholeFile = new Uint8Array(WHOLE_FILE);

/**
 * Reads a file once and hashes it, with synchronous calls, which cost microseconds where an
 * async one costs tens (the 200,000 small files of a big backup are most of a verify), and as
 * few as can be: an open, a read that tells the size, a close. A file up to 1 MB is done at
 * once and its result returned as it is; the rest of a larger one is read in chunks (memory
 * stays flat), letting other work run now and then, and a promise is returned. `keepBytes`
 * returns the bytes of a small file (to parse a record); `withTime` its mtime (an fstat more).
 */
export function hashFile(
  dataDir: DataDir,
  parts: RelPath,
  options: { keepBytes?: boolean; withTime?: boolean; signal?: AbortSignal } = {},
): HashedFile | Promise<HashedFile> {
  const file = dataDir.openForReadingSync(parts);
  let size = 0;
  try {
    // Reads until the buffer is full or the file ends: a short read is not always the end.
    while (size < WHOLE_FILE) {
      const read = file.read(wholeFile.subarray(size));
      if (read === 0) break;
      size += read;
    }
  } catch (error) {
    file.close();
    throw error;
  }
  const hash = createHash("sha256").update(wholeFile.subarray(0, size));
  if (size === WHOLE_FILE) return hashRest(file, hash, size, options);
  try {
    return {
      sha256: hash.digest("hex"),
      size,
      ...(options.withTime ? { mtime: file.mtime() } : {}),
      ...(options.keepBytes ? { bytes: wholeFile.slice(0, size) } : {}),
    };
  } finally {
    file.close();
  }
}

/** The rest of a large file, after its first `size` bytes. */
async function hashRest(
  file: SyncReader,
  hash: Hash,
  size: number,
  options: { withTime?: boolean; signal?: AbortSignal },
): Promise<HashedFile> {
  try {
    const buffer = new Uint8Array(WHOLE_FILE);
    for (let chunk = 1;; chunk++) {
      // A turn of the event loop now and then (a timer costs a millisecond): progress, signals.
      if (chunk % 64 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      options.signal?.throwIfAborted();
      const read = file.read(buffer);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
      size += read;
    }
    return {
      sha256: hash.digest("hex"),
      size,
      ...(options.withTime ? { mtime: file.mtime() } : {}),
    };
  } finally {
    file.close();
  }
}

/** True for matterbak's threads map `{"<rootId>": ["<replyId>", ...]}`. */
export function isThreadsMap(value: unknown): value is Record<string, string[]> {
  return isObject(value) &&
    Object.values(value).every((v) => Array.isArray(v) && v.every((id) => typeof id === "string"));
}

/**
 * Post ids and file names in a posts folder (a FIFO at a post's name too: isFileEntry), in
 * directory order, read entry by entry.
 */
export async function* postFiles(
  dataDir: DataDir,
  folder: RelPath,
): AsyncGenerator<[id: string, fileName: string]> {
  for await (const entry of dataDir.entries(folder)) {
    const id = isFileEntry(entry) ? postIdFromFileName(entry.name) : undefined;
    if (id) yield [id, entry.name];
  }
}

/**
 * A post file name's time as if it were UTC (ms). matterbak named files in local time, which
 * differs from UTC by at most MAX_ZONE_OFFSET_MS either way.
 */
function nameTime(fileName: string): number {
  const n = (from: number, to: number) => Number(fileName.slice(from, to));
  return Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(9, 11), n(11, 13), n(13, 15), n(15, 18));
}

/** UTC-14 to UTC+14 cover every time zone. */
const MAX_ZONE_OFFSET_MS = 14 * 3600_000;
/** Names held at once while ordering a folder: about 100 bytes each. */
const NAMES_PER_PASS = 20_000;
/** Files read at once. */
const READ_BATCH = 32;

function byTime(a: { post: Post }, b: { post: Post }): number {
  return a.post.create_at - b.post.create_at || (a.post.id < b.post.id ? -1 : 1);
}

export class BackupReader {
  /** Attachment data files of the channel read last, by file id (listed once per channel). */
  #fileNames: { folder: string; names: Map<string, string> } | undefined;

  constructor(readonly dataDir: DataDir) {}

  /**
   * One JSON file, checked: undefined when missing; a damage when it cannot be read, is no
   * JSON, or `check` says what is wrong with it.
   */
  async #readChecked<T>(
    path: RelPath,
    check: (value: unknown) => { ok: T } | { reason: string },
  ): Promise<{ ok: T } | { damage: Damage } | undefined> {
    let text: string | undefined;
    try {
      text = await this.dataDir.readText(path);
    } catch (error) {
      const reason = error instanceof UnfitFileError
        ? error.reason
        : `cannot be read: ${(error as Error).message}`;
      return { damage: { path, reason } };
    }
    if (text === undefined) return undefined;
    const parsed = parseJsonText(text);
    const checked = "reason" in parsed ? parsed : check(parsed.value);
    return "reason" in checked ? { damage: { path, reason: checked.reason } } : checked;
  }

  /** A record, undefined when missing or damaged (the damage goes to `damage`). */
  async #readRecord<T>(
    path: RelPath,
    valid: (value: Record<string, unknown>) => boolean,
    what: string,
    damage: Damage[],
  ): Promise<T | undefined> {
    const read = await this.#readChecked<T>(
      path,
      (value) => isObject(value) && valid(value) ? { ok: value as T } : { reason: `not ${what}` },
    );
    if (read && "damage" in read) damage.push(read.damage);
    return read && "ok" in read ? read.ok : undefined;
  }

  async teams(): Promise<TeamEntry[]> {
    const entries = await this.dataDir.list([DIRS.teams]);
    const teams: TeamEntry[] = [];
    for (const entry of entries) {
      const id = idPrefix(entry.name);
      if (!id || !entry.isDirectory) continue;
      const damage: Damage[] = [];
      const record = await this.#readRecord<Team>(
        [DIRS.teams, `${entry.name}${JSON_EXT}`],
        validTeam,
        "a team record",
        damage,
      );
      const icon = entries.find((e) => e.isFile && isImageOf(`${id}${ICON_SUFFIX}`, e.name));
      teams.push({
        id,
        base: entry.name,
        record,
        icon: icon ? [DIRS.teams, icon.name] : undefined,
        damage,
      });
    }
    return teams.sort((a, b) => compareNames(a.record?.name ?? a.base, b.record?.name ?? b.base));
  }

  /** Every backed-up channel: the team channels by team, then direct and group messages. */
  async channels(): Promise<ChannelEntry[]> {
    const channels: ChannelEntry[] = [];
    for (const team of await this.teams()) {
      channels.push(...await this.#channelsIn([DIRS.teams, team.base], "teams", team));
    }
    channels.push(...await this.#channelsIn([DIRS.direct], "direct", undefined));
    channels.push(...await this.#channelsIn([DIRS.groups], "groups", undefined));
    return channels;
  }

  async #channelsIn(
    parent: RelPath,
    kind: ChannelKind,
    team: TeamEntry | undefined,
  ): Promise<ChannelEntry[]> {
    const channels: ChannelEntry[] = [];
    for (const entry of await this.dataDir.list(parent)) {
      const id = idPrefix(entry.name);
      if (!id || !entry.isDirectory) continue;
      const damage: Damage[] = [];
      const record = await this.#readRecord<Channel>(
        [...parent, `${entry.name}${JSON_EXT}`],
        validChannel,
        "a channel record",
        damage,
      );
      channels.push({
        id,
        kind,
        team,
        folder: [...parent, entry.name],
        record,
        label: entry.name.split("__").slice(1),
        damage,
      });
    }
    return channels.sort((a, b) => compareNames(channelName(a), channelName(b)));
  }

  /** The stored members, or a damage; an empty list when none were stored. */
  async members(channel: ChannelEntry): Promise<Member[] | Damage> {
    const path = besideFolder(channel.folder, MEMBERS_SUFFIX);
    return await this.#readList<Member>(path, validMember, "a list of members");
  }

  async teamMembers(team: TeamEntry): Promise<Member[] | Damage> {
    const path = [DIRS.teams, `${team.base}${MEMBERS_SUFFIX}`];
    return await this.#readList<Member>(path, validMember, "a list of members");
  }

  async #readList<T>(
    path: RelPath,
    valid: (value: Record<string, unknown>) => boolean,
    what: string,
  ): Promise<T[] | Damage> {
    const read = await this.#readChecked<T[]>(
      path,
      (value) =>
        Array.isArray(value) && value.every((v) => isObject(v) && valid(v))
          ? { ok: value as T[] }
          : { reason: `not ${what}` },
    );
    if (!read) return [];
    return "ok" in read ? read.ok : read.damage;
  }

  /** The threads map (root id to reply ids), empty when none was stored, or a damage. */
  async threads(channel: ChannelEntry): Promise<Map<string, string[]> | Damage> {
    const read = await this.#readChecked(
      besideFolder(channel.folder, THREADS_SUFFIX),
      (value) =>
        isThreadsMap(value)
          ? { ok: new Map(Object.entries(value)) }
          : { reason: "not a threads map" },
    );
    if (!read) return new Map();
    return "ok" in read ? read.ok : read.damage;
  }

  /**
   * The channel's posts, oldest first (by `create_at`, then id), with flat memory: the folder is
   * listed in passes of at most NAMES_PER_PASS names, taken in the order of the times in their
   * names, and a post is yielded once no unread name can hold an older one. Names in local time
   * (matterbak's) are at most MAX_ZONE_OFFSET_MS off; with `utcNames` (every name made by this
   * tool) the order of names is the order of posts. With `stats`, each item carries its file's
   * size and time, listed in the pass before the file is read (a file changed after its listing
   * shows a newer time next time).
   */
  async *posts(
    channel: Pick<ChannelEntry, "folder">,
    options: { utcNames?: boolean; namesPerPass?: number; stats?: boolean } = {},
  ): AsyncGenerator<PostItem> {
    const margin = options.utcNames ? 0 : MAX_ZONE_OFFSET_MS;
    const perPass = options.namesPerPass ?? NAMES_PER_PASS;
    // First pass: how many names each hour holds, to cut the folder into bounded passes.
    const perHour = new Map<string, number>();
    for await (const [, name] of postFiles(this.dataDir, channel.folder)) {
      const hour = name.slice(0, 11);
      perHour.set(hour, (perHour.get(hour) ?? 0) + 1);
    }
    const hours = [...perHour.keys()].sort();
    const pending: Array<{ post: Post; path: RelPath; stat?: FileStat }> = [];
    for (let start = 0; start < hours.length;) {
      let end = start;
      let count = perHour.get(hours[start] as string) as number;
      while (
        end + 1 < hours.length &&
        count + (perHour.get(hours[end + 1] as string) as number) <= perPass
      ) {
        count += perHour.get(hours[++end] as string) as number;
      }
      const [first, last] = [hours[start] as string, hours[end] as string];
      const names: string[] = [];
      const inPass = (name: string) => name.slice(0, 11) >= first && name.slice(0, 11) <= last;
      const stats = options.stats ? new Map<string, FileStat>() : undefined;
      if (stats) {
        const wanted = (name: string) => inPass(name) && postIdFromFileName(name) !== undefined;
        for await (const { name, size, mtime } of this.dataDir.fileStats(channel.folder, wanted)) {
          names.push(name);
          stats.set(name, { size, mtime });
        }
      } else {
        for await (const [, name] of postFiles(this.dataDir, channel.folder)) {
          if (inPass(name)) names.push(name);
        }
      }
      names.sort();
      for (let i = 0; i < names.length; i += READ_BATCH) {
        const batch = names.slice(i, i + READ_BATCH);
        const read = await Promise.all(batch.map((name) => this.#readPost(channel.folder, name)));
        for (const [j, item] of read.entries()) {
          const stat = stats?.get(batch[j] as string);
          if ("damage" in item) yield { kind: "damaged", damage: item.damage, ...stat && { stat } };
          else pending.push(stat ? { ...item, stat } : item);
        }
        // Every name still unread is at or after this time, so no unread post is older than
        // `safe`: what is older can go.
        const next = names[i + READ_BATCH] ?? hours[end + 1];
        if (next === undefined) continue;
        const safe = nameTime(next.padEnd(18, "0")) - margin;
        pending.sort(byTime);
        let ready = 0;
        while (ready < pending.length && (pending[ready]?.post.create_at as number) < safe) ready++;
        for (const item of pending.splice(0, ready)) yield { kind: "post", ...item };
      }
      start = end + 1;
    }
    pending.sort(byTime);
    for (const item of pending) yield { kind: "post", ...item };
  }

  /**
   * The threads map rebuilt from the posts stored in a folder: each root's replies in the
   * order of their `create_at` (then id), and the post files that could not be read. Only the
   * replies are held, not the posts.
   */
  async threadsFromPosts(
    folder: RelPath,
  ): Promise<{ threads: Map<string, string[]>; damaged: Damage[] }> {
    const replies: Array<{ root: string; id: string; at: number }> = [];
    const damaged: Damage[] = [];
    let batch: string[] = [];
    const readBatch = async () => {
      for (const item of await Promise.all(batch.map((name) => this.#readPost(folder, name)))) {
        if ("damage" in item) damaged.push(item.damage);
        else if (item.post.root_id) {
          replies.push({ root: item.post.root_id, id: item.post.id, at: item.post.create_at });
        }
      }
      batch = [];
    };
    for await (const [, name] of postFiles(this.dataDir, folder)) {
      batch.push(name);
      if (batch.length >= READ_BATCH) await readBatch();
    }
    await readBatch();
    replies.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
    const threads = new Map<string, string[]>();
    for (const { root, id } of replies) {
      const list = threads.get(root);
      if (!list) threads.set(root, [id]);
      else if (!list.includes(id)) list.push(id);
    }
    return { threads, damaged };
  }

  /**
   * The posts in the named files of the channel's posts folder, in the order given (a view
   * rebuild reads only the files that changed); a missing file is a damage.
   */
  async *postsNamed(
    channel: Pick<ChannelEntry, "folder">,
    names: readonly string[],
  ): AsyncGenerator<PostItem> {
    for (let i = 0; i < names.length; i += READ_BATCH) {
      const batch = names.slice(i, i + READ_BATCH);
      for (const item of await Promise.all(batch.map((n) => this.#readPost(channel.folder, n)))) {
        yield "damage" in item
          ? { kind: "damaged", damage: item.damage }
          : { kind: "post", ...item };
      }
    }
  }

  /**
   * The channel's post files (or, with `folder`, the files of its attachments or edit-history
   * folder) with their sizes and modification times, from one listing: no file is read. A
   * replaced file has a new time (files are replaced by rename).
   */
  async *fileStats(
    channel: Pick<ChannelEntry, "folder">,
    folder?: typeof DIRS.files | typeof DIRS.history,
  ): AsyncGenerator<{ name: string; size: number; mtime: number }> {
    const parts = folder ? [...channel.folder, folder] : channel.folder;
    for await (const file of this.dataDir.fileStats(parts)) {
      if (folder || postIdFromFileName(file.name)) yield file;
    }
  }

  async #readPost(
    folder: RelPath,
    name: string,
  ): Promise<{ post: Post; path: RelPath } | { damage: Damage }> {
    const path = [...folder, name];
    const read = await this.#readChecked(path, (value) => {
      const checked = checkStoredPost(value, postIdFromFileName(name));
      return "post" in checked ? { ok: checked.post } : checked;
    });
    if (!read) return { damage: { path, reason: "vanished while being read" } };
    return "ok" in read ? { post: read.ok, path } : read;
  }

  /** See ChangeStamp. */
  async changeStamp(channel: Pick<ChannelEntry, "folder">): Promise<ChangeStamp> {
    const folder = channel.folder;
    const paths = [
      folder,
      [...folder, DIRS.files],
      [...folder, DIRS.history],
      besideFolder(folder, JSON_EXT),
      besideFolder(folder, MEMBERS_SUFFIX),
      besideFolder(folder, THREADS_SUFFIX),
    ];
    const parts: string[] = [];
    let newest = 0;
    for (const path of paths) {
      try {
        const info = await this.dataDir.stat(path);
        const mtime = info.mtime?.getTime() ?? 0;
        newest = Math.max(newest, mtime);
        parts.push(`${mtime}:${info.size}`);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        parts.push("-");
      }
    }
    return { stamp: parts.join("|"), newest };
  }

  /**
   * The posts of the channel that have earlier versions stored, from one listing of its
   * history folder (no file is read): readers ask `history` only for these.
   */
  async historyIds(channel: Pick<ChannelEntry, "folder">): Promise<Set<string>> {
    const ids = new Set<string>();
    for await (const entry of this.dataDir.entries([...channel.folder, DIRS.history])) {
      const id = entry.isFile ? postIdFromHistoryName(entry.name) : undefined;
      if (id) ids.add(id);
    }
    return ids;
  }

  /**
   * A post's earlier versions, oldest first (the post file holds the current one); none when
   * the post has no history stored, or a damage.
   */
  async history(
    channel: Pick<ChannelEntry, "folder">,
    postId: string,
  ): Promise<PostVersion[] | Damage> {
    const path = [...channel.folder, DIRS.history, historyFileName(postId)];
    const read = await this.#readChecked(path, (value) => {
      const checked = checkHistory(value, postId);
      return "history" in checked ? { ok: checked.history.versions } : checked;
    });
    if (!read) return [];
    return "ok" in read ? read.ok : read.damage;
  }

  /**
   * Where a file the reader named (a picture, icon or attachment) is on this machine, for
   * callers that link or copy it rather than read it.
   */
  localPath(path: RelPath): string {
    return this.dataDir.existingPath(path);
  }

  /**
   * A post's attachments: its stored FileInfo (else the one in the post) and its data file.
   * matterbak kept attachment names as they came, so a file not found under the name this tool
   * gives it is looked up in the channel's list of files.
   */
  async attachments(channel: Pick<ChannelEntry, "folder">, post: Post): Promise<Attachment[]> {
    const filesDir = [...channel.folder, DIRS.files];
    const carried = new Map((post.metadata?.files ?? []).map((info) => [info.id, info]));
    const ids = new Set<string>([
      ...(Array.isArray(post.file_ids) ? post.file_ids.filter((id) => typeof id === "string") : []),
      ...carried.keys(),
    ]);
    const attachments: Attachment[] = [];
    for (const fileId of ids) {
      const damage: Damage[] = [];
      const stored = await this.#readRecord<FileInfo>(
        [...filesDir, fileInfoName(fileId)],
        validFileInfo,
        "a file info",
        damage,
      );
      const info = stored ?? carried.get(fileId);
      let path: RelPath | undefined;
      let size = info
        ? await this.dataDir.size([...filesDir, fileDataName(fileId, info.name)])
        : undefined;
      if (size !== undefined && info) path = [...filesDir, fileDataName(fileId, info.name)];
      else {
        const name = (await this.#filesOf(filesDir)).get(fileId);
        if (name !== undefined) {
          path = [...filesDir, name];
          size = await this.dataDir.size(path);
        }
      }
      attachments.push({ fileId, info, path, size, damage: damage[0] });
    }
    return attachments;
  }

  async #filesOf(filesDir: RelPath): Promise<Map<string, string>> {
    const key = filesDir.join("/");
    if (this.#fileNames?.folder !== key) {
      const names = new Map<string, string>();
      for await (const entry of this.dataDir.entries(filesDir)) {
        const id = entry.isFile ? fileIdFromDataName(entry.name) : undefined;
        if (id) names.set(id, entry.name);
      }
      this.#fileNames = { folder: key, names };
    }
    return this.#fileNames.names;
  }

  /** Every backed-up user with their picture. */
  async *users(): AsyncGenerator<UserEntry> {
    yield* this.#withImages(
      DIRS.users,
      validUser,
      "a user record",
      (base) => `${base}${IMAGE_SUFFIX}`,
    );
  }

  /** Every backed-up custom emoji with its image. */
  async *emojis(): AsyncGenerator<EmojiEntry> {
    yield* this.#withImages(
      DIRS.emojis,
      validEmoji,
      "an emoji record",
      (base) => base,
    );
  }

  async *#withImages<T>(
    dir: string,
    valid: (value: Record<string, unknown>) => boolean,
    what: string,
    imageBase: (base: string) => string,
  ): AsyncGenerator<
    { id: string; record: T | undefined; image: RelPath | undefined; damage: Damage[] }
  > {
    const entries = (await this.dataDir.list([dir])).filter((e) => e.isFile && idPrefix(e.name));
    const bases = await indexBases(this.dataDir, [dir]);
    for (const [id, base] of [...bases].sort((a, b) => compareNames(a[1], b[1]))) {
      const damage: Damage[] = [];
      const record = await this.#readRecord<T>([dir, `${base}${JSON_EXT}`], valid, what, damage);
      const image = entries.find((e) => isImageOf(imageBase(base), e.name));
      yield { id, record, image: image ? [dir, image.name] : undefined, damage };
    }
  }
}

function channelName(channel: ChannelEntry): string {
  return channel.record?.display_name || channel.record?.name || channel.label.join(", ");
}

function compareNames(a: string, b: string): number {
  return a.localeCompare(b, "en", { sensitivity: "base" }) || (a < b ? -1 : a > b ? 1 : 0);
}
