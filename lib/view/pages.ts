/**
 * The site's pages as HTML text, from plain data: no file access here. Every page is complete
 * without JavaScript; site.js only adds search, local times and keyboard shortcuts. Every value
 * from the backup is escaped (esc) or is Markdown rendered by markdown.ts.
 */
import { Buffer } from "node:buffer";
import { esc, formatSize, urlPath } from "./html.ts";
import type { Shown } from "./attachments.ts";

/** A person as pages show them. */
export interface SiteUser {
  id: string;
  username: string;
  /** Full name, else nickname, else the username. */
  name: string;
  /** Site path of the picture (`u/<id>.png`), when one was backed up. */
  avatar: string | undefined;
  bot: boolean;
  deactivated: boolean;
}

export interface SiteTeam {
  id: string;
  name: string;
  title: string;
  icon: string | undefined;
}

/** A channel's place in the site and what the index and its pages say about it. */
export interface SiteChannel {
  id: string;
  kind: "teams" | "direct" | "groups";
  team: SiteTeam | undefined;
  /** The channel's name as ~links use it (lower case). */
  name: string;
  title: string;
  /** O public, P private, D direct, G group. */
  type: string;
  archived: boolean;
  header: string;
  purpose: string;
  members: number;
  /** DM partner or group members other than the backup's owner, for pictures. */
  people: SiteUser[];
}

/** A channel page's range, for the page list. */
export interface PageSummary {
  count: number;
  first: number;
  last: number;
}

export interface ChannelStats {
  posts: number;
  pages: PageSummary[];
  lastPostAt: number;
}

export interface SiteAttachment {
  name: string;
  size: number | undefined;
  mime: string;
  /** Relative to the channel's folder; undefined when the file is not in the backup. */
  href: string | undefined;
  /** A picture, a player or a link (see shownAs: never decided by the type alone). */
  shown: Shown;
  width: number | undefined;
  height: number | undefined;
}

export interface SiteReaction {
  emojiHtml: string;
  name: string;
  count: number;
  who: string[];
}

/** An earlier (or, for a deleted post, later) version of a post, ready to be shown. */
export interface SiteVersion {
  /** When it was written. */
  at: number;
  /** The post as first sent. */
  first: boolean;
  /** Written after the text the post shows (a deleted post's last edit, never seen). */
  later: boolean;
  /** Rendered Markdown; undefined when the backup does not have the text. */
  messageHtml: string | undefined;
}

/** One post, ready to be shown. */
export interface PostView {
  id: string;
  createAt: number;
  author: SiteUser | undefined;
  userId: string;
  messageHtml: string;
  system: boolean;
  edited: number;
  /** The post's other versions, oldest first (see store/history.ts). */
  versions: SiteVersion[];
  deleted: number;
  pinned: boolean;
  attachments: SiteAttachment[];
  reactions: SiteReaction[];
  /** For a reply: where its root is and what it said. */
  replyTo: { href: string; author: string; excerpt: string } | undefined;
  /** For a root with replies: how many, and its thread page. */
  replies: number;
  threadHref: string | undefined;
}

/** The content security policy of every page: nothing but the site's own files, no inline code. */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
  "media-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'";

export class Formatter {
  readonly #time: Intl.DateTimeFormat;
  readonly #day: Intl.DateTimeFormat;
  readonly #dayKey: Intl.DateTimeFormat;
  readonly #full: Intl.DateTimeFormat;

  constructor(readonly timeZone: string) {
    this.#time = new Intl.DateTimeFormat("en-GB", {
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZone,
    });
    this.#day = new Intl.DateTimeFormat("en-GB", {
      weekday: "long",
      day: "numeric",
      month: "long",
      year: "numeric",
      timeZone,
    });
    this.#dayKey = new Intl.DateTimeFormat("en-CA", { timeZone });
    this.#full = new Intl.DateTimeFormat("en-GB", {
      dateStyle: "medium",
      timeStyle: "short",
      timeZone,
    });
  }
  time(ms: number): string {
    return this.#time.format(ms);
  }
  day(ms: number): string {
    return this.#day.format(ms);
  }
  /** YYYY-MM-DD in the site's time zone: where date separators go. */
  dayKey(ms: number): string {
    return this.#dayKey.format(ms);
  }
  full(ms: number): string {
    return this.#full.format(ms);
  }
}

function timeTag(ms: number, text: string, f: Formatter): string {
  return `<time datetime="${new Date(ms).toISOString()}" title="${esc(f.full(ms))}">${
    esc(text)
  }</time>`;
}

export function avatarHtml(user: SiteUser | undefined, root: string, size = 36): string {
  if (user?.avatar) {
    return `<img class="avatar" src="${root}${
      esc(user.avatar)
    }" alt="" width="${size}" height="${size}" loading="lazy">`;
  }
  const initial = (user?.name ?? "?").trim().charAt(0).toUpperCase() || "?";
  return `<span class="avatar initials" aria-hidden="true">${esc(initial)}</span>`;
}

function authorHtml(post: PostView, root: string): string {
  const user = post.author;
  if (!user) return `<span class="author unknown">${esc(post.userId)}</span>`;
  let html = `<a class="author" href="${root}users.html#u-${esc(user.id)}">${esc(user.name)}</a>`;
  if (user.name !== user.username) html += ` <span class="username">@${esc(user.username)}</span>`;
  if (user.bot) html += ` <span class="tag">BOT</span>`;
  if (user.deactivated) html += ` <span class="tag">deactivated</span>`;
  return html;
}

function attachmentHtml(a: SiteAttachment): string {
  const meta = [a.mime, a.size === undefined ? "" : formatSize(a.size)].filter(Boolean).join(
    ", ",
  );
  if (!a.href) {
    return `<li class="file missing">${esc(a.name)} <span class="meta">(${
      esc(meta)
    }; not in the backup)</span></li>`;
  }
  const href = esc(a.href);
  if (a.shown === "image") {
    const size = a.width && a.height
      ? ` width="${Math.min(a.width, 480)}" height="${
        Math.round(a.height * Math.min(1, 480 / a.width))
      }"`
      : "";
    return `<li class="file image"><a href="${href}"><img src="${href}" alt="${
      esc(a.name)
    }" loading="lazy"${size}></a><span class="meta">${esc(a.name)}, ${esc(meta)}</span></li>`;
  }
  // The link's file has an inert name (siteFileName): where `download` is ignored (Chromium on
  // file://), opening it downloads it or shows it as a picture, a player or text.
  const link = `<a href="${href}" download="${esc(a.name)}">${esc(a.name)}</a>`;
  if (a.shown === "video" || a.shown === "audio") {
    return `<li class="file media"><${a.shown} controls preload="none" src="${href}"></${a.shown}>${link} <span class="meta">(${
      esc(meta)
    })</span></li>`;
  }
  return `<li class="file">${link} <span class="meta">(${esc(meta)})</span></li>`;
}

/**
 * A post's other versions behind its "edited" mark: a <details> element, so it opens without
 * JavaScript (and outside the header, which continued posts hide).
 */
function versionsHtml(versions: SiteVersion[], edited: number, f: Formatter): string {
  const items = versions.map((v) => {
    const label = v.first ? "Original" : v.later ? "Edited again before it was deleted," : "Edited";
    const text = v.messageHtml === undefined
      ? `<p class="note">The backup does not have the text of this version: the server sends ` +
        `earlier versions without it (only the author's own posts have it).</p>`
      : `<div class="msg">${v.messageHtml}</div>`;
    return `<li><p class="meta">${label} ${timeTag(v.at, f.full(v.at), f)}</p>${text}</li>`;
  });
  const count = versions.length === 1 ? "1 other version" : `${versions.length} other versions`;
  return `<details class="versions"><summary class="mark edited" title="edited ${
    esc(f.full(edited))
  }">(edited) ${count}</summary><ol>${items.join("")}</ol></details>`;
}

/**
 * One post. `continued` (the same author within minutes) leaves out the picture and name, as
 * Mattermost does.
 */
export function postHtml(post: PostView, root: string, f: Formatter, continued: boolean): string {
  const classes = ["post"];
  if (post.system) classes.push("system");
  if (post.deleted) classes.push("deleted");
  if (post.replyTo) classes.push("reply");
  if (continued) classes.push("cont");
  const marks: string[] = [];
  if (post.edited && post.versions.length === 0) {
    marks.push(
      `<span class="mark edited" title="edited ${esc(f.full(post.edited))}">(edited)</span>`,
    );
  }
  if (post.pinned) marks.push(`<span class="mark pinned">pinned</span>`);
  if (post.deleted) {
    marks.push(`<span class="mark deleted">deleted ${esc(f.full(post.deleted))}</span>`);
  }
  let html = `${ARTICLE_START}${classes.join(" ")}" id="${esc(post.id)}">`;
  html += continued ? `<span class="avatar gap"></span>` : avatarHtml(post.author, root);
  html += `<div class="body"><header>`;
  if (!continued) html += authorHtml(post, root) + " ";
  html += `<a class="time" href="#${esc(post.id)}">${
    timeTag(post.createAt, f.time(post.createAt), f)
  }</a>${marks.length ? " " + marks.join(" ") : ""}</header>`;
  if (post.replyTo) {
    html += `<p class="reply-to">Reply to <a href="${esc(post.replyTo.href)}">${
      esc(post.replyTo.author)
    }: ${esc(post.replyTo.excerpt)}</a></p>`;
  }
  html += `<div class="msg">${post.messageHtml}</div>`;
  if (post.versions.length) html += versionsHtml(post.versions, post.edited, f);
  if (post.attachments.length) {
    html += `<ul class="files">${post.attachments.map(attachmentHtml).join("")}</ul>`;
  }
  if (post.reactions.length) {
    html += `<ul class="reactions">${
      post.reactions.map((r) =>
        `<li title="${
          esc(`${r.who.join(", ")} reacted with :${r.name}:`)
        }">${r.emojiHtml} ${r.count}</li>`
      ).join("")
    }</ul>`;
  }
  if (post.replies > 0 && post.threadHref) {
    html += `<p class="thread-link"><a href="${esc(post.threadHref)}">${post.replies} ${
      post.replies === 1 ? "reply" : "replies"
    }</a></p>`;
  }
  return html + `</div></article>\n`;
}

/** A date separator, shown before the first post of each day. */
export function daySeparator(ms: number, f: Formatter): string {
  return `<h2 class="day"><span>${timeTag(ms, f.day(ms), f)}</span></h2>\n`;
}

export interface PageFrame {
  title: string;
  /** From the page to the site's root: `""` or `"../../"`. */
  root: string;
  /** Class of <body>. */
  kind: string;
  body: string;
  /** Show the search form that leads to the index page's search. */
  searchForm?: boolean;
}

export function page(frame: PageFrame): string {
  const r = frame.root;
  const search = frame.searchForm
    ? `<form class="search-form" action="${r}index.html" method="get" role="search"><input type="search" name="q" placeholder="Search the archive" aria-label="Search the archive"></form>`
    : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="referrer" content="no-referrer">
<title>${esc(frame.title)}</title>
<link rel="stylesheet" href="${r}assets/site.css">
<script src="${r}assets/site.js" defer></script>
</head>
<body class="${esc(frame.kind)}" data-root="${esc(r)}">
<nav class="top"><a class="home" href="${r}index.html">Archive</a>${search}</nav>
${frame.body}
</body>
</html>
`;
}

function channelMark(c: SiteChannel): string {
  const marks: string[] = [];
  if (c.type === "P") marks.push(`<span class="tag" title="private channel">private</span>`);
  if (c.archived) marks.push(`<span class="tag" title="archived channel">archived</span>`);
  return marks.join(" ");
}

/** `p3.html`: a channel's pages count from 1, oldest first. */
export function pageFile(n: number): string {
  return `p${n}.html`;
}

export function threadFile(rootId: string): string {
  return `t-${rootId}.html`;
}

/** `t-<rootId>.js`: the thread's posts for opening it in place (`MB.thread(rootId, html)`). */
export function threadScript(rootId: string): string {
  return `t-${rootId}.js`;
}

function channelHead(
  c: SiteChannel,
  stats: { posts: number; pages: number } | undefined,
  renderMarkdown: (text: string) => string,
): string {
  let html = `<header class="channel-head"><h1>${esc(c.title)} ${channelMark(c)}</h1>`;
  if (c.team) html += `<p class="team">${esc(c.team.title)}</p>`;
  if (c.header) html += `<div class="channel-header">${renderMarkdown(c.header)}</div>`;
  if (c.purpose) html += `<p class="purpose">${esc(c.purpose)}</p>`;
  const facts = [`${c.members} ${c.members === 1 ? "member" : "members"}`];
  if (stats) {
    facts.push(`${stats.posts} posts`, `${stats.pages} ${stats.pages === 1 ? "page" : "pages"}`);
  }
  html += `<p class="facts">${facts.join(" · ")} · <a href="index.html">about this channel</a></p>`;
  return html + `</header>`;
}

/** Older/newer links of page `n` (no total: a new page must not rewrite the old ones). */
function pageNav(n: number, hasNewer: boolean): string {
  const older = n > 1
    ? `<a rel="prev" href="${pageFile(n - 1)}">← older</a>`
    : `<span class="disabled">← older</span>`;
  const newer = hasNewer
    ? `<a rel="next" href="${pageFile(n + 1)}">newer →</a>`
    : `<span class="disabled">newer →</span>`;
  return `<nav class="pages">${older} <a href="index.html">page ${n}</a> ${newer}</nav>`;
}

export function channelPage(
  c: SiteChannel,
  n: number,
  hasNewer: boolean,
  postsHtml: string,
  renderMarkdown: (text: string) => string,
): string {
  const nav = pageNav(n, hasNewer);
  return page({
    title: `${c.title} (page ${n})`,
    root: "../../",
    kind: "channel-page",
    searchForm: true,
    body: `<main data-channel="${esc(c.id)}">${channelHead(c, undefined, renderMarkdown)}${nav}
<section class="posts">
${postsHtml}</section>
${nav}</main>`,
  });
}

export function threadPage(
  c: SiteChannel,
  rootId: string,
  postsHtml: string,
  rootMissing: boolean,
): string {
  const missing = rootMissing
    ? `<p class="note">The message that started this thread is not in the backup.</p>`
    : "";
  return page({
    title: `Thread in ${c.title}`,
    root: "../../",
    kind: "thread-page",
    searchForm: true,
    body: `<main data-thread="${
      esc(rootId)
    }"><header class="channel-head"><h1>Thread in <a href="index.html">${
      esc(c.title)
    }</a></h1></header>${missing}
<section class="posts">
${postsHtml}</section></main>`,
  });
}

export function channelOverview(
  c: SiteChannel,
  stats: ChannelStats,
  f: Formatter,
  renderMarkdown: (text: string) => string,
): string {
  const rows = stats.pages.map((p, i) =>
    `<li><a href="${pageFile(i + 1)}">Page ${i + 1}</a>: ${esc(f.full(p.first))} – ${
      esc(f.full(p.last))
    } (${p.count} posts)</li>`
  ).reverse();
  const newest = stats.pages.length
    ? `<p class="jump"><a href="${pageFile(stats.pages.length)}">Newest posts →</a></p>`
    : `<p class="note">No posts were backed up in this channel.</p>`;
  return page({
    title: c.title,
    root: "../../",
    kind: "channel-overview",
    searchForm: true,
    body: `<main>${
      channelHead(c, { posts: stats.posts, pages: stats.pages.length }, renderMarkdown)
    }${newest}<ol class="page-list" reversed>${rows.join("")}</ol></main>`,
  });
}

export interface IndexEntry {
  channel: SiteChannel;
  stats: ChannelStats;
}

function channelRow(e: IndexEntry, f: Formatter): string {
  const c = e.channel;
  const dir = `c/${urlPath(c.id)}/`;
  const href = e.stats.pages.length ? dir + pageFile(e.stats.pages.length) : dir + "index.html";
  const pictures = c.kind === "teams"
    ? ""
    : c.people.slice(0, 3).map((u) => avatarHtml(u, "", 24)).join("");
  const last = e.stats.lastPostAt ? ` · last ${esc(f.full(e.stats.lastPostAt))}` : "";
  return `<li class="channel-row">${pictures}<a href="${href}">${esc(c.title)}</a> ${
    channelMark(c)
  } <span class="meta">${e.stats.posts} posts${last} · <a href="${dir}index.html">about</a></span></li>`;
}

export function indexPage(
  teams: SiteTeam[],
  entries: IndexEntry[],
  f: Formatter,
  builtAt: number,
): string {
  const sections: string[] = [];
  for (const team of teams) {
    const rows = entries.filter((e) => e.channel.team?.id === team.id);
    if (!rows.length) continue;
    const icon = team.icon
      ? `<img class="team-icon" src="${esc(team.icon)}" alt="" width="28" height="28">`
      : "";
    sections.push(
      `<section class="team"><h2>${icon}${esc(team.title)}</h2><ul class="channels">${
        rows.map((e) => channelRow(e, f)).join("")
      }</ul></section>`,
    );
  }
  for (const [kind, title] of [["direct", "Direct messages"], ["groups", "Group messages"]]) {
    const rows = entries.filter((e) => e.channel.kind === kind);
    if (!rows.length) continue;
    sections.push(
      `<section class="team"><h2>${title}</h2><ul class="channels">${
        rows.map((e) => channelRow(e, f)).join("")
      }</ul></section>`,
    );
  }
  const options = entries.map((e) =>
    `<option value="${esc(e.channel.id)}">${esc(e.channel.title)}${
      e.channel.team ? ` (${esc(e.channel.team.title)})` : ""
    }</option>`
  ).join("");
  const search = `<section class="search" id="search" hidden>
<form class="search-panel" role="search">
<input type="search" id="q" name="q" placeholder="Search all messages" aria-label="Search all messages" autocomplete="off">
<select id="f-channel" aria-label="Channel"><option value="">All channels</option>${options}</select>
<select id="f-author" aria-label="Author"><option value="">Anyone</option></select>
<label>from <input type="date" id="f-from"></label>
<label>to <input type="date" id="f-to"></label>
</form>
<p id="search-status" class="meta" aria-live="polite"></p>
<ol id="results" class="results"></ol>
</section>`;
  return page({
    title: "Mattermost archive",
    root: "",
    kind: "index-page",
    body: `<main><h1>Mattermost archive</h1>
<p class="meta">Built ${esc(f.full(builtAt))} (${
      esc(f.timeZone)
    }) by matterbak · <a href="users.html">people</a></p>
${search}
<noscript><p class="note">Search needs JavaScript; every channel below reads without it.</p></noscript>
${sections.join("\n")}
</main>`,
  });
}

export function usersPage(users: SiteUser[]): string {
  const rows = users.map((u) =>
    `<li id="u-${esc(u.id)}">${avatarHtml(u, "")}<span><strong>${esc(u.name)}</strong> @${
      esc(u.username)
    }${u.bot ? ` <span class="tag">BOT</span>` : ""}${
      u.deactivated ? ` <span class="tag">deactivated</span>` : ""
    }</span></li>`
  ).join("\n");
  return page({
    title: "People",
    root: "",
    kind: "users-page",
    searchForm: true,
    body: `<main><h1>People</h1><ul class="people">\n${rows}\n</ul></main>`,
  });
}

const ARTICLE_START = `<article class="`;
const ARTICLE_END = "</article>\n";

/**
 * A page's bytes with the articles of some posts replaced by new ones (`html` by post id),
 * found as postHtml writes them; undefined when one is not there. Bytes, not text: a page is
 * about a megabyte, and a string of it for each post replaced was most of a rebuild's memory.
 */
export function replaceArticles(
  page: Uint8Array,
  articles: Map<string, string>,
): Uint8Array | undefined {
  const bytes = Buffer.from(page.buffer, page.byteOffset, page.byteLength);
  const found: { at: number; end: number; html: Uint8Array }[] = [];
  for (const [id, html] of articles) {
    const tail = bytes.indexOf(`" id="${esc(id)}">`);
    const at = tail === -1 ? -1 : bytes.lastIndexOf(ARTICLE_START, tail);
    // The classes between the start and the id hold no quote.
    if (at === -1 || bytes.subarray(at + ARTICLE_START.length, tail).includes(0x22)) {
      return undefined;
    }
    const end = bytes.indexOf(ARTICLE_END, tail);
    if (end === -1) return undefined;
    found.push({ at, end: end + ARTICLE_END.length, html: Buffer.from(html) });
  }
  found.sort((a, b) => a.at - b.at);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const { at, end, html } of found) {
    if (at < from) return undefined;
    parts.push(bytes.subarray(from, at), html);
    from = end;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}
