/**
 * `matterbak view`: builds a static, searchable website of a data dir, read only through the
 * store's BackupReader. Rebuilding rewrites only what changed: a channel whose files (posts
 * folder, attachments folder, record, members, threads) and context (people, channel names,
 * emoji, time zone) are as at the last build is not read at all; in a changed channel only the
 * post files that changed are read, and only the pages, thread pages and search segments that
 * show something that changed are rendered (rebuild.ts decides which). Every file is
 * written atomically; a channel's manifest is written after its pages, so an interrupted build
 * is finished by the next one.
 */
import { createHash } from "node:crypto";
import { dirname, extname, relative, resolve, sep as SEP } from "node:path";
import { type FsRecorder, linkRefused, syncDir, writeFileAtomic } from "../store/atomic_write.ts";
import { DataDir, type RelPath } from "../store/data_dir.ts";
import { checkLocation, checkPlacement } from "../store/placement.ts";
import {
  BackupReader,
  type ChannelEntry,
  type Damage,
  type FileStat,
  type TeamEntry,
  type UserEntry,
} from "../store/reader.ts";
import type { Post, Reaction, User } from "../model/records.ts";
import { editAt, versionLines } from "../store/history.ts";
import { StorageError, UsageError } from "../util/errors.ts";
import { equalBytes } from "../util/bytes.ts";
import { readAt } from "../util/read_at.ts";
import { VERSION } from "../util/version.ts";
import { esc, urlPath } from "./html.ts";
import { type Shown, shownAs, siteFileName } from "./attachments.ts";
import { createRenderer, type MarkdownContext } from "./markdown.ts";
import { standardEmoji } from "./emoji.ts";
import {
  channelOverview,
  channelPage,
  type ChannelStats,
  daySeparator,
  Formatter,
  indexPage,
  pageFile,
  postHtml,
  type PostView,
  replaceArticles,
  type SiteAttachment,
  type SiteChannel,
  type SiteReaction,
  type SiteTeam,
  type SiteUser,
  type SiteVersion,
  threadFile,
  threadPage,
  threadScript,
  usersPage,
} from "./pages.ts";
import { scriptJson, SegmentBuilder, tokenize } from "./search.ts";
import {
  compareListing,
  counted,
  damagedRow,
  Layout,
  planPages,
  planThreads,
  type Row,
  rowOf,
  type Stamps,
  type Table,
  TableBuilder,
  ThreadHashes,
} from "./rebuild.ts";
import {
  isTableRef,
  type ReadNext,
  readTableFile,
  TABLE_SUFFIX,
  tableFile,
  type TableRef,
} from "./table_file.ts";
import siteCss from "./assets/site.css" with { type: "text" };
import siteJs from "./assets/site.js" with { type: "text" };
// Twemoji as a colour font (476 KB): standard emoji look the same on every system, in years too.
import emojiFont from "twemoji-colr-font/twemoji.woff2" with { type: "bytes" };

/** Posts per channel page. */
export const PAGE_SIZE = 1000;
/** Bumped when pages change shape, so that every page is rebuilt. */
const FORMAT = 4;
/** Where the build keeps what it needs to rebuild only what changed. */
const STATE_DIR = ".matterbak-view";
/** Files touched this close to the build's start may change again within the clock's step. */
const RACY_MS = 3000;
/** Posts by one author this close together are shown as one block. */
const CONTINUE_MS = 5 * 60_000;

export interface ViewOptions {
  dataDir: string;
  siteDir: string;
  /** Rebuild every page even when its inputs look unchanged. */
  full?: boolean;
  /** IANA time zone of the times in the pages (default: this machine's). */
  timeZone?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Wall-clock time in ms (tests build "later"). */
  now?: () => number;
  /** Told of each step of the site's writes (tests of their order). */
  fsRecorder?: FsRecorder;
}

export interface ViewSummary {
  channels: number;
  /** Channels looked at again because something in them or their context changed. */
  rebuilt: number;
  posts: number;
  /** Post files read (a rebuild reads only those that changed and those on pages it renders). */
  postsRead: number;
  pagesWritten: number;
  threadsWritten: number;
  filesPlaced: number;
  damaged: Damage[];
  seconds: number;
}

interface ChannelManifest {
  /** The context and the channel's own facts the pages show: when they differ, all is read. */
  input: string;
  /** The channel's change stamp ("" when not trusted): when equal, nothing is read. */
  stamp: string;
  stats: ChannelStats;
  /** Hashes of the pages and thread pages, to write only those that differ. */
  pages: string[];
  threads: string;
  /**
   * The file of the table of the post files and what the pages show of them (rebuild.ts,
   * table_file.ts); null after a doubt. An older manifest held the table itself.
   */
  table: TableRef | null;
}

/** Where a reply's root is, and what it says. */
type RootLink = NonNullable<PostView["replyTo"]>;

/** Whether `row` continues the block of `previous` (the same author within minutes), as Mattermost shows it. */
function continues(previous: Row, row: Row, f: Formatter): boolean {
  return f.dayKey(previous.at) === f.dayKey(row.at) && previous.user === row.user &&
    previous.kind === "p" && row.kind === "p" && row.at - previous.at < CONTINUE_MS &&
    (row.root === "" || row.root === previous.root || row.root === previous.id);
}

/** Of text, or of its bytes in UTF-8: the same. */
const hash = (text: string | Uint8Array) => createHash("sha1").update(text).digest("base64url");

/**
 * The site folder: atomic writes below its root, and files placed by hard link or copy. Nothing
 * below the root is read, written or removed through a symbolic link, as in the data dir (a
 * DataDir of the site's root does the checks): a link found where a folder or file of the site
 * goes is refused, neither followed nor replaced (see "Security" in the README).
 */
class SiteDir {
  /** The same path and link checks as the data dir's, errors naming the site folder. */
  readonly #dir: DataDir;
  /** Folders made or found to be folders (no link on the way) in this build, `/`-joined. */
  readonly #ready = new Set<string>();
  /** Folders with renames since the last `syncWritten`. */
  #written = new Set<string>();
  filesPlaced = 0;

  constructor(readonly root: string, readonly recorder?: FsRecorder) {
    this.#dir = new DataDir(root, recorder, "the site folder");
  }

  /**
   * The path of `rel`, with no link at any component, the last included: a folder made or
   * checked in this build is not looked at again, only what is in it.
   */
  path(rel: string): string {
    const parts = rel.split("/");
    if (!this.#ready.has(parts.slice(0, -1).join("/"))) return this.#dir.checkedPath(parts);
    const full = this.#dir.path(parts);
    try {
      if (Deno.lstatSync(full).isSymlink) throw linkRefused(full, this.#dir.label);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return full;
  }

  /**
   * Makes the renames since the last call durable: a channel's manifest vouches for the hashes
   * of its pages, which a later build trusts without reading them.
   */
  async syncWritten(): Promise<void> {
    const folders = this.#written;
    this.#written = new Set();
    for (const folder of folders) await syncDir(folder, this.recorder);
  }

  /**
   * Makes the folders above `full` one level at a time (a recursive mkdir would follow a link on
   * the way), checked once a build.
   */
  async #ensureParent(full: string): Promise<void> {
    const dir = dirname(full);
    this.#written.add(dir);
    const key = relative(this.root, dir).split(SEP).join("/");
    if (this.#ready.has(key)) return;
    await this.#dir.ensureDir(key === "" ? [] : key.split("/"));
    this.#ready.add(key);
  }

  /** Writes atomically; `durable: false` does not sync the data first (see AtomicWriteOptions.sync). */
  async write(rel: string, text: string | Uint8Array, durable = true): Promise<void> {
    const full = this.path(rel);
    await this.#ensureParent(full);
    await writeFileAtomic(full, text, { sync: durable, recorder: this.recorder });
  }

  /**
   * Writes a file given in pieces (a channel's table: never whole in memory), durably; its size
   * and SHA-256, for the manifest that names it.
   */
  async writePieces(
    rel: string,
    pieces: Iterable<Uint8Array>,
  ): Promise<{ size: number; sha256: string }> {
    const full = this.path(rel);
    await this.#ensureParent(full);
    let written = { size: 0, sha256: "" };
    await writeFileAtomic(full, ReadableStream.from(pieces), {
      recorder: this.recorder,
      sink: ({ size, sha256 }) => written = { size, sha256 },
    });
    return written;
  }

  /** A file read in order, piece by piece, by `use`; undefined when it does not exist. */
  async readPieces<T>(
    rel: string,
    use: (read: ReadNext) => Promise<T>,
  ): Promise<T | undefined> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path(rel));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    try {
      let position = 0;
      return await use(async (into) => {
        const got = await readAt(file, position, into.length, into);
        position += got.length;
        return got;
      });
    } finally {
      file.close();
    }
  }

  async read(rel: string): Promise<string | undefined> {
    const bytes = await this.readBytes(rel);
    return bytes && new TextDecoder().decode(bytes);
  }

  async readBytes(rel: string): Promise<Uint8Array | undefined> {
    try {
      return await Deno.readFile(this.path(rel));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  async updateBytes(rel: string, bytes: Uint8Array): Promise<void> {
    const full = this.path(rel);
    const old = await this.readBytes(rel);
    if (old && equalBytes(old, bytes)) return;
    await this.#ensureParent(full);
    await writeFileAtomic(full, bytes, { recorder: this.recorder });
  }

  /** Writes unless the file already holds `text`; true if written. */
  async update(rel: string, text: string): Promise<boolean> {
    if (await this.read(rel) === text) return false;
    await this.write(rel, text);
    return true;
  }

  /**
   * Puts the data dir's file `source` at `rel`: a hard link (no space used) where the file
   * system allows, else a copy; an existing link to the same file, or a copy no older than the
   * source with its size, is kept.
   */
  async place(source: string, rel: string): Promise<void> {
    const full = this.path(rel);
    const [src, dest] = await Promise.all([
      Deno.stat(source),
      Deno.lstat(full).catch(() => undefined),
    ]);
    if (
      dest && (dest.ino !== null && dest.ino === src.ino && dest.dev === src.dev ||
        dest.size === src.size && (dest.mtime?.getTime() ?? 0) >= (src.mtime?.getTime() ?? 0))
    ) return;
    await this.#ensureParent(full);
    const temp = `${full}.${crypto.randomUUID().slice(0, 8)}.mbtmp`;
    try {
      await Deno.link(source, temp);
    } catch {
      await Deno.copyFile(source, temp);
    }
    await Deno.rename(temp, full).catch(async (error) => {
      await Deno.remove(temp).catch(() => {});
      throw error;
    });
    this.filesPlaced++;
  }

  async list(rel: string): Promise<string[]> {
    return (await this.#dir.list(rel.split("/"))).map((e) => e.name);
  }

  /** Removes a file or a folder with all it holds (a recursive remove enters no link). */
  async remove(rel: string): Promise<void> {
    await Deno.remove(this.path(rel), { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    for (const key of this.#ready) {
      if (key === rel || key.startsWith(`${rel}/`)) this.#ready.delete(key);
    }
  }
}

function displayName(user: User): string {
  const full = [user.first_name, user.last_name].filter((s) => typeof s === "string" && s.trim())
    .join(" ").trim();
  if (full) return full;
  return typeof user.nickname === "string" && user.nickname.trim()
    ? user.nickname.trim()
    : user.username;
}

/** `u/<id>.png`: a site path for a data-dir image, keeping its extension. */
function imagePath(folder: string, id: string, image: RelPath): string {
  const ext = extname(image.at(-1) as string).replace("svg+xml", "svg") || ".bin";
  return `${folder}/${id}${ext}`;
}

/**
 * Refuses a site folder inside the data dir (the zip would hold it) or around it, as the paths
 * are spelled (see checkSiteLocation for where they really are).
 */
export function checkSitePlacement(dataDir: string, siteDir: string): void {
  checkPlacement(dataDir, siteDir, "site folder");
}

/** checkSitePlacement on where the folders really are (see checkLocation). */
export function checkSiteLocation(dataDir: string, siteDir: string): Promise<void> {
  return checkLocation(dataDir, siteDir, "site folder");
}

/** Refuses a site folder that would mix with the data dir or with other files. */
async function checkSiteDir(dataDir: string, siteDir: string): Promise<void> {
  await checkSiteLocation(dataDir, siteDir);
  const data = resolve(dataDir);
  const site = resolve(siteDir);
  try {
    const info = await Deno.stat(data);
    if (!info.isDirectory) throw new StorageError(`The data dir ${data} is not a folder`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new StorageError(`The data dir ${data} does not exist (run a backup first)`);
    }
    throw error;
  }
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(site));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    if (error instanceof Deno.errors.NotADirectory) {
      throw new UsageError(`The site folder ${site} is a file`);
    }
    throw error;
  }
  if (entries.length > 0 && !entries.some((e) => e.name === STATE_DIR)) {
    throw new UsageError(
      `The site folder ${site} is not empty and holds no site built by matterbak view; ` +
        `choose a new or empty folder`,
    );
  }
}

/** Builds or refreshes the site; see the module comment. */
export async function buildSite(options: ViewOptions): Promise<ViewSummary> {
  const started = performance.now();
  const startedAt = (options.now ?? Date.now)();
  await checkSiteDir(options.dataDir, options.siteDir);
  const log = options.log ?? (() => {});
  const dataDir = new DataDir(options.dataDir);
  const reader = new BackupReader(dataDir);
  const site = new SiteDir(resolve(options.siteDir), options.fsRecorder);
  const timeZone = options.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  const f = new Formatter(timeZone);
  const damaged: Damage[] = [];

  // People, emoji, teams and channels: the context every page is rendered in.
  const users = new Map<string, SiteUser>();
  const byUsername = new Map<string, SiteUser>();
  const userImages: [UserEntry, string][] = [];
  for await (const entry of reader.users()) {
    damaged.push(...entry.damage);
    if (!entry.record) continue;
    const user = entry.record;
    const avatar = entry.image ? imagePath("u", entry.id, entry.image) : undefined;
    if (avatar) userImages.push([entry, avatar]);
    const siteUser: SiteUser = {
      id: user.id,
      username: user.username,
      name: displayName(user),
      avatar,
      bot: user.is_bot === true,
      deactivated: user.delete_at > 0,
    };
    users.set(user.id, siteUser);
    byUsername.set(user.username.toLowerCase(), siteUser);
  }
  const customEmoji = new Map<string, string>();
  const emojiImages: [RelPath, string][] = [];
  for await (const entry of reader.emojis()) {
    damaged.push(...entry.damage);
    if (!entry.record || !entry.image) continue;
    const path = imagePath("emoji", entry.id, entry.image);
    customEmoji.set(entry.record.name.toLowerCase(), path);
    emojiImages.push([entry.image, path]);
  }
  const teams: SiteTeam[] = [];
  const teamOf = new Map<string, SiteTeam>();
  const teamIcons: [TeamEntry, string][] = [];
  for (const entry of await reader.teams()) {
    damaged.push(...entry.damage);
    const icon = entry.icon ? imagePath("teams", entry.id, entry.icon) : undefined;
    if (entry.icon && icon) teamIcons.push([entry, icon]);
    const team: SiteTeam = {
      id: entry.id,
      name: entry.record?.name ?? entry.base.slice(28),
      title: entry.record?.display_name || entry.record?.name || entry.base.slice(28),
      icon,
    };
    teams.push(team);
    teamOf.set(entry.id, team);
  }
  const entries = await reader.channels();
  const channels: [ChannelEntry, SiteChannel][] = [];
  for (const entry of entries) {
    damaged.push(...entry.damage);
    const members = await reader.members(entry);
    if (!Array.isArray(members)) damaged.push(members);
    channels.push([entry, siteChannel(entry, Array.isArray(members) ? members.length : 0)]);
  }
  function siteChannel(entry: ChannelEntry, members: number): SiteChannel {
    const record = entry.record;
    const people = entry.kind === "teams"
      ? []
      : entry.label.map((name) => byUsername.get(name.toLowerCase())).filter((u) =>
        u !== undefined
      );
    const peopleTitle = entry.label.map((name) => byUsername.get(name.toLowerCase())?.name ?? name)
      .join(", ");
    return {
      id: entry.id,
      kind: entry.kind,
      team: entry.team ? teamOf.get(entry.team.id) : undefined,
      name: (record?.name ?? entry.label[0] ?? entry.id).toLowerCase(),
      title: entry.kind === "teams"
        ? record?.display_name || record?.name || entry.label.join(" ")
        : peopleTitle || record?.display_name || entry.id,
      type: record?.type ?? { teams: "O", direct: "D", groups: "G" }[entry.kind],
      archived: (record?.delete_at ?? 0) > 0,
      header: typeof record?.header === "string" ? record.header : "",
      purpose: typeof record?.purpose === "string" ? record.purpose : "",
      members,
      people,
    };
  }
  // ~links resolve within a team, then anywhere (DMs have no team).
  const channelByName = new Map<string, SiteChannel>();
  for (const [, c] of channels) {
    if (c.kind === "teams" && !channelByName.has(c.name)) channelByName.set(c.name, c);
  }

  const context = hash(JSON.stringify({
    FORMAT,
    VERSION,
    timeZone,
    users: [...users.values()],
    emoji: [...customEmoji],
    teams,
    channels: channels.map(([, c]) => [c.id, c.name, c.title, c.type, c.archived, c.header]),
  }));

  // Assets and pictures.
  await site.update("assets/site.css", siteCss);
  await site.updateBytes("assets/emoji.woff2", emojiFont);
  await site.update("assets/site.js", `${siteJs}\nMB.tokenize = ${tokenize.toString()};\n`);
  for (const [entry, path] of userImages) {
    await site.place(reader.localPath(entry.image as RelPath), path);
  }
  for (const [image, path] of emojiImages) await site.place(reader.localPath(image), path);
  for (const [entry, path] of teamIcons) {
    await site.place(reader.localPath(entry.icon as RelPath), path);
  }

  const render = createRenderer();
  const markdownContext = (root: string): MarkdownContext => ({
    user: (name) => {
      const u = byUsername.get(name);
      return u ? { href: `${root}users.html#u-${u.id}`, title: u.name } : undefined;
    },
    channel: (name) => {
      const c = channelByName.get(name);
      return c ? { href: `${root}c/${c.id}/index.html`, title: c.title } : undefined;
    },
    emoji: (name) => {
      const custom = customEmoji.get(name);
      if (custom) return { src: `${root}${custom}` };
      const text = standardEmoji(name);
      return text ? { text } : undefined;
    },
    hashtag: (tag) => `${root}index.html?q=${encodeURIComponent(`#${tag}`)}`,
  });
  const inChannel = markdownContext("../../");
  const emojiHtml = (name: string): string => {
    const emoji = inChannel.emoji(name);
    if (!emoji) return `:${esc(name)}:`;
    return "text" in emoji
      ? `<span class="emoji">${esc(emoji.text)}</span>`
      : `<img class="emoji" src="${esc(emoji.src)}" alt=":${esc(name)}:">`;
  };

  const summary: ViewSummary = {
    channels: channels.length,
    rebuilt: 0,
    posts: 0,
    postsRead: 0,
    pagesWritten: 0,
    threadsWritten: 0,
    filesPlaced: 0,
    damaged,
    seconds: 0,
  };
  /** A listed file's size and time; a time too fresh is not trusted (-1). */
  const trusted = (mtime: number) => mtime <= startedAt - RACY_MS;
  const trustedStat = (stat: FileStat | undefined): FileStat =>
    stat
      ? { size: stat.size, mtime: trusted(stat.mtime) ? stat.mtime : -1 }
      : { size: 0, mtime: -1 };

  const indexEntries: { channel: SiteChannel; stats: ChannelStats }[] = [];
  const known = new Set<string>();
  for (const [entry, channel] of channels) {
    known.add(entry.id);
    const manifestPath = `${STATE_DIR}/c/${entry.id}.json`;
    const manifest = await readManifest(site, manifestPath);
    // A stamp too close to now is not trusted: the file system's clock may not have moved.
    const changeStamp = await reader.changeStamp(entry);
    const stamp = changeStamp.newest > startedAt - RACY_MS ? "" : changeStamp.stamp;
    const input = hash(JSON.stringify([context, channel]));
    // A manifest of the older format (its table inline) is read once more in full.
    if (
      !options.full && manifest && isTableRef(manifest.table) && manifest.input === input &&
      stamp !== "" && manifest.stamp === stamp
    ) {
      indexEntries.push({ channel, stats: manifest.stats });
      summary.posts += manifest.stats.posts;
      continue;
    }
    summary.rebuilt++;
    log(`building ${channel.title}`);
    const { built, table } = await buildChannel(entry, channel, manifest, input, stamp);
    // The table and the pages are durable before the manifest that vouches for them.
    const tablePath = `${STATE_DIR}/c/${entry.id}${TABLE_SUFFIX}`;
    let tableRef: TableRef | null = null;
    if (table) {
      const name = `${entry.id}${TABLE_SUFFIX}`;
      tableRef = { name, ...await site.writePieces(tablePath, tableFile(table)) };
    } else await site.remove(tablePath);
    await site.syncWritten();
    const stored: ChannelManifest = { ...built, table: tableRef };
    await site.write(manifestPath, JSON.stringify(stored));
    indexEntries.push({ channel, stats: built.stats });
    summary.posts += built.stats.posts;
  }

  /** The channel's attachments and history folders as listed now. */
  async function folderStamps(entry: ChannelEntry): Promise<{ files: Stamps; history: Stamps }> {
    const stamps = async (folder: "files" | "history") => {
      const out: Stamps = {};
      for await (const file of reader.fileStats(entry, folder)) {
        out[file.name] = trusted(file.mtime) ? `${file.size}:${file.mtime}` : "?";
      }
      return out;
    };
    return { files: await stamps("files"), history: await stamps("history") };
  }

  /** The channel's post files as listed now, one by one. */
  async function* listedPosts(entry: ChannelEntry) {
    for await (const { name, ...stat } of reader.fileStats(entry)) {
      yield { name, ...trustedStat(stat) };
    }
  }

  /** The table the channel's manifest names, undefined when it is not that file, whole. */
  async function readTable(entry: ChannelEntry, ref: TableRef): Promise<Table | undefined> {
    if (ref.name !== `${entry.id}${TABLE_SUFFIX}`) return undefined;
    return await site.readPieces(`${STATE_DIR}/c/${ref.name}`, (read) => readTableFile(read, ref));
  }

  /** The number of replies of each root in the channel's threads file (not its reply ids: memory). */
  async function replyNumbers(entry: ChannelEntry): Promise<Map<string, number>> {
    const threads = await reader.threads(entry);
    const out = new Map<string, number>();
    if (!(threads instanceof Map)) damaged.push(threads);
    else for (const [id, replies] of threads) out.set(id, replies.length);
    return out;
  }

  async function buildChannel(
    entry: ChannelEntry,
    channel: SiteChannel,
    old: ChannelManifest | undefined,
    input: string,
    stamp: string,
  ): Promise<{ built: Omit<ChannelManifest, "table">; table: Table | undefined }> {
    const dir = `c/${entry.id}`;
    let oldTable = old && old.input === input && !options.full && isTableRef(old.table)
      ? await readTable(entry, old.table)
      : undefined;
    // Listed before any post is read (the post files too: by the listing compared with the
    // table, or in each pass of the reader): a file that changes after its listing is read
    // again next time (its new time differs from the one recorded).
    const stamps = await folderStamps(entry);
    const replyTotals = await replyNumbers(entry);
    const withHistory = await reader.historyIds(entry);
    const headerHtml = (text: string) => render(text, inChannel);
    const pageHashes: string[] = [];
    const threadHashes = new Map<string, string>();
    const oldThreads = old && new ThreadHashes(old.threads);
    const nameOf = (path: RelPath) => path.at(-1) as string;

    async function writePage(
      n: number,
      html: string | Uint8Array,
      segment: SegmentBuilder,
    ): Promise<void> {
      // Hashed and written as the same bytes (a megabyte: one copy, not one per use).
      const bytes = typeof html === "string" ? new TextEncoder().encode(html) : html;
      const h = hash(bytes);
      pageHashes[n - 1] = h;
      if (old?.pages[n - 1] === h) return;
      await site.write(`${dir}/${pageFile(n)}`, bytes);
      await site.write(`search/${entry.id}/${n}.js`, segment.indexScript(`${entry.id}/${n}`));
      await site.write(`search/${entry.id}/${n}d.js`, segment.docsScript(`${entry.id}/${n}`));
      summary.pagesWritten++;
    }
    /** The thread page, and its posts as a script for opening the thread in place (site.js). */
    async function writeThread(rootId: string, posts: string[], rootMissing: boolean) {
      const html = threadPage(channel, rootId, posts.join(""), rootMissing);
      const script = `MB.thread(${scriptJson(rootId)},${scriptJson(posts.join(""))});\n`;
      const h = hash(html + script);
      threadHashes.set(rootId, h);
      if (oldThreads?.get(rootId) === h) return;
      await site.write(`${dir}/${threadFile(rootId)}`, html);
      // Not synced (a sync per file doubled a first build's time): a script a crash left empty
      // makes the panel open the thread page instead (site.js), until the thread changes.
      await site.write(`${dir}/${threadScript(rootId)}`, script, false);
      summary.threadsWritten++;
    }
    /** A page being filled with posts in order. */
    function newPage() {
      const html: string[] = [];
      const segment = new SegmentBuilder();
      let previous: Row | undefined;
      return {
        html,
        segment,
        add(row: Row, post: Post, view: PostView): string {
          if (!previous || f.dayKey(previous.at) !== f.dayKey(row.at)) {
            html.push(daySeparator(row.at, f));
          }
          const continued = previous !== undefined && continues(previous, row, f);
          html.push(postHtml(view, "../../", f, continued));
          segment.add(post, postText(post, view));
          previous = row;
          return html.at(-1) as string;
        },
      };
    }
    /** Reads posts by file name (each once), counted; a post that cannot be read is reported. */
    async function readPosts(names: Iterable<string>): Promise<Map<string, Post>> {
      const out = new Map<string, Post>();
      const wanted = [...new Set(names)];
      for await (const item of reader.postsNamed(entry, wanted)) {
        summary.postsRead++;
        if (item.kind === "post") out.set(nameOf(item.path), item.post);
        else damaged.push(item.damage);
      }
      return out;
    }
    /** A layout's view of a post: its reply count and its root from the layout. */
    async function viewIn(layout: Layout, row: Row, post: Post, posts: Map<string, Post>) {
      const root = layout.rootOf(row);
      const rootPost = root && posts.get(root.name);
      return await postView(
        entry,
        post,
        layout.replies(row),
        root && rootPost ? rootLink(layout.pageOf(root.id), rootPost) : undefined,
        withHistory,
      );
    }
    /** Reads `rows` and the roots they link to. */
    function readWithRoots(layout: Layout, rows: Row[]): Promise<Map<string, Post>> {
      const names = rows.map((r) => r.name);
      for (const row of rows) {
        const root = layout.rootOf(row);
        if (root) names.push(root.name);
      }
      return readPosts(names);
    }
    async function renderPage(layout: Layout, n: number): Promise<void> {
      const rows = layout.page(n);
      const posts = await readWithRoots(layout, rows);
      const p = newPage();
      for (const row of rows) {
        const post = posts.get(row.name);
        if (post) p.add(row, post, await viewIn(layout, row, post, posts));
      }
      const html = channelPage(channel, n, n < layout.pageCount, p.html.join(""), headerHtml);
      await writePage(n, html, p.segment);
    }
    /** Renders again, in place, the posts `rows` of page `n`; false when the page is not as recorded. */
    async function splicePage(layout: Layout, n: number, rows: Row[]): Promise<boolean> {
      const key = `${entry.id}/${n}`;
      const [html, index, docs] = await Promise.all([
        site.readBytes(`${dir}/${pageFile(n)}`),
        site.read(`search/${key}.js`),
        site.read(`search/${key}d.js`),
      ]);
      const segment = index !== undefined && docs !== undefined
        ? SegmentBuilder.parse(key, index, docs)
        : undefined;
      if (html === undefined || hash(html) !== old?.pages[n - 1] || !segment) return false;
      const page = layout.page(n);
      const posts = await readWithRoots(layout, rows);
      const articles = new Map<string, string>();
      for (const row of rows) {
        const post = posts.get(row.name);
        if (!post) return false;
        const i = page.findIndex((r) => r.name === row.name);
        const previous = page[i - 1];
        const view = await viewIn(layout, row, post, posts);
        const continued = previous !== undefined && continues(previous, row, f);
        articles.set(row.id, postHtml(view, "../../", f, continued));
        if (!segment.replace(i, post, postText(post, view))) return false;
      }
      const out = replaceArticles(html, articles);
      if (!out) return false;
      await writePage(n, out, segment);
      return true;
    }
    async function renderThread(layout: Layout, key: string): Promise<void> {
      const thread = layout.thread(key) as { root: Row | undefined; replies: Row[] };
      const rows = thread.root ? [thread.root, ...thread.replies] : thread.replies;
      const posts = await readWithRoots(layout, rows);
      const html: string[] = [];
      for (const row of rows) {
        const post = posts.get(row.name);
        if (post) html.push(postHtml(await viewIn(layout, row, post, posts), "../../", f, false));
      }
      await writeThread(key, html, thread.root === undefined);
    }

    let layout: Layout;
    let table: Table | undefined;
    if (oldTable) {
      // Only the files that changed are read; the rest of the table is as recorded.
      const { read, kept } = await compareListing(
        oldTable,
        listedPosts(entry),
        stamps.files,
        stamps.history,
      );
      const names = [...read.keys()].sort();
      const changed = new Set(names);
      for (let i = 0; i < oldTable.length; i++) {
        const reason = kept[i] ? oldTable.damage(i) : "";
        if (reason) damaged.push({ path: [...entry.folder, oldTable.name(i)], reason });
      }
      const rows = new TableBuilder();
      for await (const item of reader.postsNamed(entry, names)) {
        summary.postsRead++;
        const name = nameOf(item.kind === "post" ? item.path : item.damage.path);
        const stat = read.get(name) as FileStat;
        if (item.kind === "post") rows.add(rowOf(name, stat, item.post));
        else {
          damaged.push(item.damage);
          rows.add(damagedRow(name, stat, item.damage.reason));
        }
      }
      table = oldTable.patched(
        kept,
        rows.columns(undefined),
        replyTotals,
        stamps.files,
        stamps.history,
      );
      let before: Layout | undefined = new Layout(oldTable, PAGE_SIZE);
      layout = new Layout(table, PAGE_SIZE);
      const plans = planPages(before, layout, changed);
      const redo = new Set(planThreads(before, layout, changed));
      // The last build's table and layout (200,000 rows) are not needed to render.
      before = oldTable = undefined;
      for (const [i, plan] of plans.entries()) {
        if (plan.mode === "keep") pageHashes[i] = old?.pages[i] as string;
        else if (plan.mode === "render" || !await splicePage(layout, i + 1, plan.rows)) {
          await renderPage(layout, i + 1);
        }
      }
      for (const key of layout.threadKeys()) {
        const kept = oldThreads?.get(key);
        if (redo.has(key) || kept === undefined) await renderThread(layout, key);
        else threadHashes.set(key, kept);
      }
    } else {
      // Everything is read, in order, and each page written once the next post shows that a
      // newer page follows; a thread page is written when its last expected reply is seen.
      const rows = new TableBuilder();
      let current = newPage();
      let size = 0;
      /** The links to the roots of the threads still open (not all of them: memory). */
      const rootInfo = new Map<string, RootLink>();
      /** Threads written: a reply to one of them after all its replies is not expected. */
      const closed = new Set<string>();
      /** Pages with such a reply (its root's link let go): rendered from the layout at the end. */
      const redoPages = new Set<number>();
      /** The threads whose root was seen and whose replies are still coming. */
      const open = new Map<string, { root: string; replies: string[]; expected: number }>();
      /**
       * Threads whose page the stream cannot give: a reply not expected (its root not seen yet,
       * not on record, closed, or said to have no replies). Rendered from the layout at the
       * end, they need no set of the roots seen or closed (150,000 ids: memory).
       */
      const redo = new Set<string>();
      let pageCount = 0;
      /** Writes the page being filled, unless it is to be rendered again. */
      const flushPage = async (hasNewer: boolean) => {
        const n = ++pageCount;
        if (redoPages.has(n)) return;
        const html = channelPage(channel, n, hasNewer, current.html.join(""), headerHtml);
        await writePage(n, html, current.segment);
      };
      const close = async (key: string) => {
        const t = open.get(key) as { root: string; replies: string[] };
        open.delete(key);
        rootInfo.delete(key);
        closed.add(key);
        await writeThread(key, [t.root, ...t.replies], false);
      };
      for await (const item of reader.posts(entry, { stats: true })) {
        summary.postsRead++;
        if (item.kind === "damaged") {
          damaged.push(item.damage);
          const name = nameOf(item.damage.path);
          rows.add(damagedRow(name, trustedStat(item.stat), item.damage.reason));
          continue;
        }
        const post = item.post;
        const row = rowOf(nameOf(item.path), trustedStat(item.stat), post);
        rows.add(row);
        if (!counted(row)) continue;
        if (size === PAGE_SIZE) {
          await flushPage(true);
          current = newPage();
          size = 0;
        }
        const pageNumber = pageCount + 1;
        const replies = row.root ? 0 : replyTotals.get(row.id) ?? row.own;
        const view = await postView(
          entry,
          post,
          replies,
          row.root ? rootInfo.get(row.root) : undefined,
          withHistory,
        );
        if (!row.root && replies > 0) rootInfo.set(row.id, rootLink(pageNumber, post));
        if (closed.has(row.root)) redoPages.add(pageNumber);
        current.add(row, post, view);
        size++;
        const key = row.root || row.id;
        if (!row.root && (replies === 0 || redo.has(key))) continue;
        const full = postHtml(view, "../../", f, false);
        if (!row.root) open.set(key, { root: full, replies: [], expected: replies });
        else if (open.has(key)) open.get(key)?.replies.push(full);
        else {
          redo.add(key);
          continue;
        }
        const t = open.get(key) as { replies: string[]; expected: number };
        if (t.replies.length >= t.expected) await close(key);
      }
      if (size > 0) await flushPage(false);
      for (const key of [...open.keys()]) await close(key);
      rootInfo.clear();
      table = rows.build(replyTotals, stamps.files, stamps.history);
      layout = new Layout(table, PAGE_SIZE);
      for (const n of redoPages) await renderPage(layout, n);
      for (const key of redo) await renderThread(layout, key);
      // A file an older build placed under a name a browser would run (see siteFileName).
      for (const name of await site.list(`${dir}/files`)) {
        if (siteFileName(name) !== name) await site.remove(`${dir}/files/${name}`);
      }
      // The pages follow the reader's order (the order the rows were added in); a rebuild lays
      // them out from the table. Should the two differ, no table is kept and the next build
      // reads the channel again.
      for (let place = 1; place < layout.size && table; place++) {
        if (layout.rowAt(place) < layout.rowAt(place - 1)) table = undefined;
      }
    }

    // Pages and threads a shrunken channel no longer has.
    for (let n = pageHashes.length + 1; n <= (old?.pages.length ?? 0); n++) {
      await site.remove(`${dir}/${pageFile(n)}`);
      await site.remove(`search/${entry.id}/${n}.js`);
      await site.remove(`search/${entry.id}/${n}d.js`);
    }
    for (const key of oldThreads?.keys() ?? []) {
      if (threadHashes.has(key)) continue;
      await site.remove(`${dir}/${threadFile(key)}`);
      await site.remove(`${dir}/${threadScript(key)}`);
    }
    const pages = [];
    for (let n = 1; n <= layout.pageCount; n++) {
      const [first, last] = [(n - 1) * PAGE_SIZE, Math.min(n * PAGE_SIZE, layout.size) - 1];
      const at = (place: number) => layout.table.at(layout.rowAt(place));
      pages.push({ count: last - first + 1, first: at(first), last: at(last) });
    }
    const stats: ChannelStats = {
      posts: layout.size,
      pages,
      lastPostAt: Math.max(0, ...pages.map((p) => p.last)),
    };
    await site.update(`${dir}/index.html`, channelOverview(channel, stats, f, headerHtml));
    return {
      built: {
        input,
        stamp: table ? stamp : "",
        stats,
        pages: pageHashes,
        threads: ThreadHashes.text(threadHashes),
      },
      table,
    };
  }

  function rootLink(page: number, root: Post): RootLink {
    return {
      href: `${pageFile(page)}#${root.id}`,
      author: users.get(root.user_id)?.name ?? root.user_id,
      excerpt: excerpt(typeof root.message === "string" ? root.message : ""),
    };
  }

  function postText(post: Post, view: PostView): string {
    return [
      typeof post.message === "string" ? post.message : "",
      ...view.attachments.map((a) => a.name),
    ].join(" ");
  }

  async function postView(
    entry: ChannelEntry,
    post: Post,
    replyCount: number,
    root: RootLink | undefined,
    withHistory: Set<string>,
  ): Promise<PostView> {
    const author = users.get(post.user_id);
    const message = typeof post.message === "string" ? post.message : "";
    const type = typeof post.type === "string" ? post.type : "";
    const attachments: SiteAttachment[] = [];
    if ((Array.isArray(post.file_ids) && post.file_ids.length) || post.metadata?.files?.length) {
      for (const a of await reader.attachments(entry, post)) {
        if (a.damage) damaged.push(a.damage);
        const name = a.info?.name ?? a.fileId;
        const mime = typeof a.info?.mime_type === "string" ? a.info.mime_type : "";
        let href: string | undefined;
        let shown: Shown = "link";
        if (a.path) {
          const file = siteFileName(a.path.at(-1) as string);
          await site.place(reader.localPath(a.path), `c/${entry.id}/files/${file}`);
          href = `files/${urlPath(file)}`;
          shown = shownAs(file, mime);
        }
        attachments.push({
          name,
          size: a.size ?? (typeof a.info?.size === "number" ? a.info.size : undefined),
          mime,
          href,
          shown,
          width: typeof a.info?.width === "number" ? a.info.width : undefined,
          height: typeof a.info?.height === "number" ? a.info.height : undefined,
        });
      }
    }
    const reactions = new Map<string, SiteReaction>();
    for (const r of (post.metadata?.reactions ?? []) as Reaction[]) {
      if (typeof r?.emoji_name !== "string") continue;
      let group = reactions.get(r.emoji_name);
      if (!group) {
        group = { name: r.emoji_name, emojiHtml: emojiHtml(r.emoji_name), count: 0, who: [] };
        reactions.set(r.emoji_name, group);
      }
      group.count++;
      group.who.push(users.get(r.user_id)?.name ?? r.user_id);
    }
    const isRoot = !post.root_id;
    const replyTo: PostView["replyTo"] = isRoot
      ? undefined
      : root ?? { href: threadFile(post.root_id), author: "a message", excerpt: "(not on record)" };
    const versions: SiteVersion[] = [];
    if (withHistory.has(post.id)) {
      const history = await reader.history(entry, post.id);
      if (!Array.isArray(history)) damaged.push(history);
      else {
        for (const { text, ...line } of versionLines(post, history)) {
          versions.push({
            ...line,
            messageHtml: text === undefined ? undefined : render(text, inChannel),
          });
        }
      }
    }
    return {
      id: post.id,
      createAt: post.create_at,
      author,
      userId: post.user_id,
      messageHtml: render(message, inChannel),
      system: type.startsWith("system_"),
      edited: Math.max(editAt(post), ...versions.map((v) => v.at)),
      versions,
      deleted: post.delete_at,
      pinned: post.is_pinned === true,
      attachments,
      reactions: [...reactions.values()],
      replyTo,
      replies: replyCount,
      threadHref: isRoot && replyCount > 0 ? threadFile(post.id) : undefined,
    };
  }

  // Channels that are no longer in the backup.
  for (const name of await site.list(`${STATE_DIR}/c`)) {
    // A channel's manifest and its table.
    const id = name.replace(/\.json$|\.table$/, "");
    if (known.has(id)) continue;
    await site.remove(`c/${id}`);
    await site.remove(`search/${id}`);
    await site.remove(`${STATE_DIR}/c/${name}`);
  }

  // The search's table of contents, the people, the index: small, rewritten when different.
  const searchIndex = {
    channels: indexEntries.map((e) => ({
      id: e.channel.id,
      title: e.channel.title,
      team: e.channel.team?.title ?? "",
      pages: e.stats.pages.length,
    })),
    users: Object.fromEntries([...users.values()].map((u) => [u.id, [u.name, u.username]])),
  };
  await site.update("search/index.js", `MB.index(${scriptJson(searchIndex)});\n`);
  const people = [...users.values()].sort((a, b) => a.name.localeCompare(b.name));
  await site.update("users.html", usersPage(people));
  await site.update("index.html", indexPage(teams, indexEntries, f, startedAt));
  await site.write(
    `${STATE_DIR}/manifest.json`,
    JSON.stringify({ format: FORMAT, version: VERSION }),
  );
  summary.filesPlaced = site.filesPlaced;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

function excerpt(message: string): string {
  const flat = message.replace(/\s+/g, " ").trim();
  return flat.length > 80 ? `${flat.slice(0, 80)}…` : flat || "(no text)";
}

async function readManifest(site: SiteDir, rel: string): Promise<ChannelManifest | undefined> {
  try {
    const value = JSON.parse(await site.read(rel) ?? "null");
    if (!value || typeof value.input !== "string" || !Array.isArray(value.pages)) return undefined;
    // An older manifest kept a record of the thread pages' hashes.
    if (typeof value.threads === "object" && value.threads !== null) {
      value.threads = ThreadHashes.text(new Map(Object.entries(value.threads)));
    }
    return typeof value.threads === "string" ? value as ChannelManifest : undefined;
  } catch {
    return undefined;
  }
}
