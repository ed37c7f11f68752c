/**
 * Markdown for posts, pure: what a post, its replies, reactions and attachments look like in
 * the Markdown export. Times are the local time of the machine that exports. Messages are
 * written verbatim (Mattermost messages are Markdown, so they render as written); only names
 * around them are escaped.
 */
import type { Post, Reaction } from "../model/records.ts";
import type { VersionLine } from "../store/history.ts";
import { formatBytes } from "../util/format.ts";

export interface Person {
  username: string;
  fullName: string;
}

export interface FileLink {
  name: string;
  /** Relative link to the copied file; undefined when the backup does not hold it. */
  href: string | undefined;
  image: boolean;
  size: number | undefined;
}

export interface PostView {
  post: Post;
  author: Person;
  files: FileLink[];
  /** A reply shown on its own: its root is not in the backup. */
  orphan?: boolean;
  /** The post's other versions, oldest first (see store/history.ts). */
  versions?: VersionLine[];
}

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const pad = (n: number) => String(n).padStart(2, "0");

/** `YYYY-MM-DD` in local time. */
export function localDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** `HH:MM` in local time. */
export function localTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** `YYYY-MM` in local time: the month a post's file is in when a channel is split. */
export function monthKey(ms: number): string {
  return localDate(ms).slice(0, 7);
}

/** "January 2024" for `2024-01`. */
export function monthTitle(key: string): string {
  return `${MONTHS[Number(key.slice(5, 7)) - 1]} ${key.slice(0, 4)}`;
}

/** The heading of a day: `## 2024-01-15 Monday`. */
export function dayHeading(ms: number): string {
  return `## ${localDate(ms)} ${WEEKDAYS[new Date(ms).getDay()]}`;
}

/** The local UTC offset at `ms`, like `UTC+02:00`. */
export function utcOffset(ms: number): string {
  const minutes = -new Date(ms).getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  return `UTC${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
}

/** Text from the server shown as text (names, titles): Markdown characters escaped. */
export function escapeText(text: string): string {
  return text.replace(/[\\`*_{}[\]<>()#+!|~]/g, (c) => `\\${c}`).replace(/\s+/g, " ");
}

/** A relative link target: each path segment percent-encoded, `/` between them. */
export function href(...segments: string[]): string {
  return segments.map((segment) => encodeURIComponent(segment)).join("/");
}

/** The anchor of a post, for links to it from other files. */
export function anchorOf(postId: string): string {
  return `p-${postId}`;
}

const IMAGE_EXTENSIONS = /\.(png|jpe?g|gif|webp|svg|bmp)$/i;

/** True for files a Markdown viewer can show inline. */
export function isImage(name: string, mimeType: unknown): boolean {
  return (typeof mimeType === "string" && mimeType.startsWith("image/")) ||
    IMAGE_EXTENSIONS.test(name);
}

/** `:emoji: count` for each emoji, in the order they were first used. */
export function reactionSummary(reactions: readonly Reaction[] | undefined): string {
  const counts = new Map<string, number>();
  for (const reaction of reactions ?? []) {
    counts.set(reaction.emoji_name, (counts.get(reaction.emoji_name) ?? 0) + 1);
  }
  return [...counts].map(([name, count]) => `:${name}: ${count}`).join(" · ");
}

function when(ms: number, sameDayAs: number | undefined): string {
  return sameDayAs !== undefined && localDate(ms) === localDate(sameDayAs)
    ? localTime(ms)
    : `${localDate(ms)} ${localTime(ms)}`;
}

/**
 * A post's lines: an anchor, a header line (author, time, marks), the message, reactions and
 * attachments, paragraphs apart. `day` is the time of the day heading above it (a time on
 * another day is shown with its date).
 */
export function renderPost(view: PostView, day: number | undefined): string[] {
  const { post, author } = view;
  const props = (post.props ?? {}) as Record<string, unknown>;
  let who = `**${escapeText(author.username)}**`;
  if (author.fullName) who += ` (${escapeText(author.fullName)})`;
  if (typeof props.override_username === "string" && props.override_username !== "") {
    who = `**${escapeText(props.override_username)}** (posted by ${who})`;
  }
  const marks = [who, when(post.create_at, day)];
  const versions = view.versions ?? [];
  const editAt = Math.max(
    typeof post.edit_at === "number" ? post.edit_at : 0,
    ...versions.map((version) => version.at),
  );
  if (editAt > 0) marks.push(`*edited ${when(editAt, post.create_at)}*`);
  if (post.is_pinned === true) marks.push("*pinned*");
  if (post.delete_at > 0) marks.push(`**deleted ${when(post.delete_at, post.create_at)}**`);
  if (typeof post.type === "string" && post.type.startsWith("system_")) {
    marks.push("*system message*");
  }
  if (view.orphan) marks.push("*reply to a post that is not in the backup*");
  const lines = [`<a id="${anchorOf(post.id)}"></a>`, marks.join(" · ")];
  const message = typeof post.message === "string" ? post.message : "";
  if (message !== "") lines.push("", ...message.split(/\r?\n/));
  if (versions.length) lines.push("", ...renderVersions(versions, post.create_at));
  const reactions = reactionSummary(post.metadata?.reactions);
  if (reactions) lines.push("", reactions);
  for (const file of view.files) {
    const name = escapeText(file.name);
    lines.push(
      "",
      file.href === undefined
        ? `${name} *(not in the backup)*`
        : file.image
        ? `![${name}](${file.href})`
        : `[${name}](${file.href})${file.size === undefined ? "" : ` (${formatBytes(file.size)})`}`,
    );
  }
  return lines;
}

/**
 * A post's other versions under its text, each quoted and marked with its time: "Original" for
 * the post as first sent, "Edited" for a later text (and one edited after the text above, for a
 * post deleted after an edit the backup never saw).
 */
function renderVersions(versions: readonly VersionLine[], createAt: number): string[] {
  const lines = ["*Edit history:*"];
  for (const version of versions) {
    const label = version.first
      ? "Original"
      : version.later
      ? "Edited again before it was deleted,"
      : "Edited";
    const text = version.text === undefined
      ? [
        "*(the backup does not have this version's text: the server sends earlier versions " +
        "without it, only the author's own posts with it)*",
      ]
      : version.text === ""
      ? ["*(no text)*"]
      : version.text.split(/\r?\n/);
    lines.push("", ...quote([`*${label} ${when(version.at, createAt)}:*`, "", ...text]));
  }
  return lines;
}

/** Lines inside a block quote (a reply under its root). */
export function quote(lines: readonly string[]): string[] {
  return lines.map((line) => line === "" ? ">" : `> ${line}`);
}
