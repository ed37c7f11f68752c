/**
 * `matterbak view`: builds a static, searchable website of a data dir, read only through the
 * store's BackupReader. Rebuilding rewrites only what changed: a channel whose files (posts
 * folder, attachments folder, record, members, threads) and context (people, channel names,
 * emoji, time zone) are as at the last build is not read at all; in a changed channel only the
 * pages, thread pages and search segments whose content differs are written. Every file is
 * written atomically; a channel's manifest is written after its pages, so an interrupted build
 * is finished by the next one.
 */
import { createHash } from "node:crypto";
import { dirname, extname, isAbsolute, join, relative, resolve } from "node:path";
import { writeFileAtomic } from "../store/atomic_write.ts";
import { DataDir, type RelPath } from "../store/data_dir.ts";
import {
  BackupReader,
  type ChannelEntry,
  type Damage,
  type TeamEntry,
  type UserEntry,
} from "../store/reader.ts";
import type { Post, Reaction, User } from "../model/records.ts";
import { editAt, versionLines } from "../store/history.ts";
import { StorageError, UsageError } from "../util/errors.ts";
import { VERSION } from "../util/version.ts";
import { esc, urlPath } from "./html.ts";
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
  type SiteAttachment,
  type SiteChannel,
  type SiteReaction,
  type SiteTeam,
  type SiteUser,
  type SiteVersion,
  threadFile,
  threadPage,
  usersPage,
} from "./pages.ts";
import { scriptJson, SegmentBuilder, tokenize } from "./search.ts";
import siteCss from "./assets/site.css" with { type: "text" };
import siteJs from "./assets/site.js" with { type: "text" };
// Twemoji as a colour font (476 KB): standard emoji look the same on every system, in years too.
import emojiFont from "twemoji-colr-font/twemoji.woff2" with { type: "bytes" };

/** Posts per channel page. */
export const PAGE_SIZE = 1000;
/** Bumped when pages change shape, so that every page is rebuilt. */
const FORMAT = 2;
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
}

export interface ViewSummary {
  channels: number;
  /** Channels read again because something in them or their context changed. */
  rebuilt: number;
  posts: number;
  pagesWritten: number;
  threadsWritten: number;
  filesPlaced: number;
  damaged: Damage[];
  seconds: number;
}

interface ChannelManifest {
  input: string;
  stats: ChannelStats;
  pages: string[];
  threads: Record<string, string>;
}

const hash = (text: string) => createHash("sha1").update(text).digest("base64url");

/** The site folder: atomic writes below its root, and files placed by hard link or copy. */
class SiteDir {
  readonly #made = new Set<string>();
  filesPlaced = 0;

  constructor(readonly root: string) {}

  path(rel: string): string {
    return join(this.root, ...rel.split("/"));
  }

  async #ensureParent(full: string): Promise<void> {
    const dir = dirname(full);
    if (this.#made.has(dir)) return;
    await Deno.mkdir(dir, { recursive: true });
    this.#made.add(dir);
  }

  async write(rel: string, text: string): Promise<void> {
    const full = this.path(rel);
    await this.#ensureParent(full);
    await writeFileAtomic(full, text);
  }

  async read(rel: string): Promise<string | undefined> {
    try {
      return await Deno.readTextFile(this.path(rel));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  async updateBytes(rel: string, bytes: Uint8Array): Promise<void> {
    const full = this.path(rel);
    const old = await Deno.readFile(full).catch(() => undefined);
    if (old && old.length === bytes.length && old.every((b, i) => b === bytes[i])) return;
    await this.#ensureParent(full);
    await writeFileAtomic(full, bytes);
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
      Deno.stat(full).catch(() => undefined),
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
    try {
      return (await Array.fromAsync(Deno.readDir(this.path(rel)))).map((e) => e.name);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
  }

  async remove(rel: string): Promise<void> {
    await Deno.remove(this.path(rel), { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
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

/** Refuses a site folder inside the data dir (the zip would hold it) or around it. */
export function checkSitePlacement(dataDir: string, siteDir: string): void {
  const data = resolve(dataDir);
  const site = resolve(siteDir);
  const inside = (outer: string, inner: string) => {
    const rel = relative(outer, inner);
    return rel === "" || !rel.startsWith(`..`) && !isAbsolute(rel);
  };
  if (inside(data, site)) {
    throw new UsageError(
      `The site folder ${site} is inside the data dir ${data}, whose zip would hold it; choose a folder outside`,
    );
  }
  if (inside(site, data)) {
    throw new UsageError(`The data dir ${data} is inside the site folder ${site}; choose another`);
  }
}

/** Refuses a site folder that would mix with the data dir or with other files. */
async function checkSiteDir(dataDir: string, siteDir: string): Promise<void> {
  checkSitePlacement(dataDir, siteDir);
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
  const site = new SiteDir(resolve(options.siteDir));
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
    pagesWritten: 0,
    threadsWritten: 0,
    filesPlaced: 0,
    damaged,
    seconds: 0,
  };
  const indexEntries: { channel: SiteChannel; stats: ChannelStats }[] = [];
  const known = new Set<string>();
  for (const [entry, channel] of channels) {
    known.add(entry.id);
    const manifestPath = `${STATE_DIR}/c/${entry.id}.json`;
    const manifest = await readManifest(site, manifestPath);
    // A stamp too close to now is not trusted: the file system's clock may not have moved.
    const { stamp, newest } = await reader.changeStamp(entry);
    const input = newest > startedAt - RACY_MS ? "" : `${context}|${stamp}`;
    if (!options.full && manifest && input !== "" && manifest.input === input) {
      indexEntries.push({ channel, stats: manifest.stats });
      summary.posts += manifest.stats.posts;
      continue;
    }
    summary.rebuilt++;
    log(`building ${channel.title}`);
    const built = await buildChannel(entry, channel, manifest, input);
    await site.write(manifestPath, JSON.stringify(built));
    indexEntries.push({ channel, stats: built.stats });
    summary.posts += built.stats.posts;
  }

  async function buildChannel(
    entry: ChannelEntry,
    channel: SiteChannel,
    old: ChannelManifest | undefined,
    input: string,
  ): Promise<ChannelManifest> {
    const dir = `c/${entry.id}`;
    const threads = await reader.threads(entry);
    const threadMap = threads instanceof Map ? threads : new Map<string, string[]>();
    if (!(threads instanceof Map)) damaged.push(threads);
    const withHistory = await reader.historyIds(entry);
    const headerHtml = (text: string) => render(text, inChannel);
    const pages: string[] = [];
    const threadHashes: Record<string, string> = {};
    const summaries: ChannelStats["pages"] = [];
    let posts = 0;
    let lastPostAt = 0;

    let current: { html: string[]; segment: SegmentBuilder; first: number; last: number } =
      newPage();
    let previous: { post: Post; day: string; view: PostView } | undefined;
    /** Roots with replies still to come: their page, and for the thread page their posts. */
    const rootInfo = new Map<string, { page: number; author: string; excerpt: string }>();
    const open = new Map<string, { html: string[]; expected: number; rootMissing: boolean }>();

    function newPage() {
      return { html: [] as string[], segment: new SegmentBuilder(), first: 0, last: 0 };
    }
    async function writePage(p: typeof current, n: number, hasNewer: boolean): Promise<void> {
      const html = channelPage(channel, n, hasNewer, p.html.join(""), headerHtml);
      const h = hash(html);
      pages.push(h);
      summaries.push({ count: p.segment.size, first: p.first, last: p.last });
      if (old?.pages[n - 1] === h) return;
      await site.write(`${dir}/${pageFile(n)}`, html);
      await site.write(`search/${entry.id}/${n}.js`, p.segment.indexScript(`${entry.id}/${n}`));
      await site.write(`search/${entry.id}/${n}d.js`, p.segment.docsScript(`${entry.id}/${n}`));
      summary.pagesWritten++;
    }
    async function writeThread(rootId: string): Promise<void> {
      const t = open.get(rootId) as { html: string[]; rootMissing: boolean };
      open.delete(rootId);
      rootInfo.delete(rootId);
      const html = threadPage(channel, rootId, t.html.join(""), t.rootMissing);
      const h = hash(html);
      threadHashes[rootId] = h;
      if (old?.threads[rootId] === h) return;
      await site.write(`${dir}/${threadFile(rootId)}`, html);
      summary.threadsWritten++;
    }

    for await (const item of reader.posts(entry)) {
      if (item.kind === "damaged") {
        damaged.push(item.damage);
        continue;
      }
      const post = item.post;
      if (post.original_id) continue;
      // A full page is written when the next post shows that a newer page follows.
      if (current.segment.size === PAGE_SIZE) {
        await writePage(current, pages.length + 1, true);
        current = newPage();
      }
      const pageNumber = pages.length + 1;
      const view = await postView(entry, post, threadMap, rootInfo, pageNumber, withHistory);
      const day = f.dayKey(post.create_at);
      const continued = previous !== undefined && previous.day === day &&
        current.html.length > 0 && previous.post.user_id === post.user_id &&
        !view.system && !previous.view.system &&
        post.create_at - previous.post.create_at < CONTINUE_MS &&
        (post.root_id === "" || post.root_id === previous.post.root_id ||
          post.root_id === previous.post.id);
      if (current.html.length === 0 || previous?.day !== day) {
        current.html.push(daySeparator(post.create_at, f));
      }
      current.html.push(postHtml(view, "../../", f, continued));
      const text = [
        typeof post.message === "string" ? post.message : "",
        ...view.attachments.map((a) => a.name),
      ].join(" ");
      current.segment.add(post, text);
      if (current.first === 0) current.first = post.create_at;
      current.last = post.create_at;
      posts++;
      lastPostAt = Math.max(lastPostAt, post.create_at);
      previous = { post, day, view };

      // Thread pages: a root opens one, each reply joins it, the last expected reply writes it.
      const full = continued ? postHtml(view, "../../", f, false) : current.html.at(-1) as string;
      if (view.replies > 0 && !open.has(post.id)) {
        open.set(post.id, { html: [full], expected: view.replies, rootMissing: false });
      } else if (post.root_id) {
        let t = open.get(post.root_id);
        if (!t) {
          t = { html: [], expected: Infinity, rootMissing: true };
          open.set(post.root_id, t);
        }
        t.html.push(full);
        if (t.html.length - (t.rootMissing ? 0 : 1) >= t.expected) await writeThread(post.root_id);
      }
    }
    if (current.segment.size > 0) await writePage(current, pages.length + 1, false);
    for (const rootId of [...open.keys()]) await writeThread(rootId);
    // Pages a shrunken channel no longer has.
    for (let n = pages.length + 1; n <= (old?.pages.length ?? 0); n++) {
      await site.remove(`${dir}/${pageFile(n)}`);
      await site.remove(`search/${entry.id}/${n}.js`);
      await site.remove(`search/${entry.id}/${n}d.js`);
    }
    const stats: ChannelStats = { posts, pages: summaries, lastPostAt };
    await site.update(`${dir}/index.html`, channelOverview(channel, stats, f, headerHtml));
    return { input, stats, pages, threads: threadHashes };
  }

  async function postView(
    entry: ChannelEntry,
    post: Post,
    threadMap: Map<string, string[]>,
    rootInfo: Map<string, { page: number; author: string; excerpt: string }>,
    pageNumber: number,
    withHistory: Set<string>,
  ): Promise<PostView> {
    const author = users.get(post.user_id);
    const message = typeof post.message === "string" ? post.message : "";
    const type = typeof post.type === "string" ? post.type : "";
    const attachments: SiteAttachment[] = [];
    if ((Array.isArray(post.file_ids) && post.file_ids.length) || post.metadata?.files?.length) {
      for (const a of await reader.attachments(entry, post)) {
        const name = a.info?.name ?? a.fileId;
        let href: string | undefined;
        if (a.path) {
          const base = a.path.at(-1) as string;
          await site.place(reader.localPath(a.path), `c/${entry.id}/files/${base}`);
          href = `files/${urlPath(base)}`;
        }
        attachments.push({
          name,
          size: a.size ?? (typeof a.info?.size === "number" ? a.info.size : undefined),
          mime: typeof a.info?.mime_type === "string" ? a.info.mime_type : "",
          href,
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
    const replyCount = isRoot
      ? threadMap.get(post.id)?.length ??
        (typeof post.reply_count === "number" ? post.reply_count : 0)
      : 0;
    if (isRoot && replyCount > 0) {
      rootInfo.set(post.id, {
        page: pageNumber,
        author: author?.name ?? post.user_id,
        excerpt: excerpt(message),
      });
    }
    let replyTo: PostView["replyTo"];
    if (!isRoot) {
      const root = rootInfo.get(post.root_id);
      replyTo = root
        ? {
          href: `${pageFile(root.page)}#${post.root_id}`,
          author: root.author,
          excerpt: root.excerpt,
        }
        : { href: threadFile(post.root_id), author: "a message", excerpt: "(not on record)" };
    }
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
    const id = name.replace(/\.json$/, "");
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
    return value && typeof value.input === "string" && Array.isArray(value.pages)
      ? value as ChannelManifest
      : undefined;
  } catch {
    return undefined;
  }
}
