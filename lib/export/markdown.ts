/**
 * `matterbak export markdown`: the backup as Markdown to read, grep and keep. One file per
 * channel in a folder per team, `direct/` and `groups/`, with an `index.md` linking them all;
 * a channel with many posts becomes a folder with one file per month and an index. Replies are
 * quoted under their root; when a channel is split by month, a month where replies continue
 * an earlier month's thread lists them with a link back to the root. Attachments are hard
 * links to the backup's files (copies where linking fails, or with `copy`), linked relatively.
 * Everything is written into a staging folder and moved into place when complete.
 */
import { join } from "node:path";
import type { Post, User } from "../model/records.ts";
import { type VersionLine, versionLines } from "../store/history.ts";
import { fileDataName } from "../store/layout.ts";
import type { Attachment, BackupReader, ChannelEntry, Damage } from "../store/reader.ts";
import { MAX_NAME_BYTES, safeName, utf8Length } from "../store/safe_name.ts";
import { UsageError } from "../util/errors.ts";
import { VERSION } from "../util/version.ts";
import { BufferedFile } from "../zip/writer.ts";
import {
  channelTitle,
  checkOutputPlace,
  damageWarning,
  type ExportSink,
  fullName,
  loadUsers,
  openBackup,
  pickChannels,
} from "./common.ts";
import {
  anchorOf,
  dayHeading,
  escapeText,
  type FileLink,
  href,
  isImage,
  localDate,
  localTime,
  monthKey,
  monthTitle,
  type PostView,
  quote,
  renderPost,
  utcOffset,
} from "./markdown_render.ts";
import { Staging } from "./staging.ts";
import { type FsRecorder, outputFailure } from "../store/atomic_write.ts";
import { ChannelSpool, type Thread } from "./threads.ts";

export interface MarkdownOptions {
  dataDir: string;
  out: string;
  /** Only threads whose root was posted at or after this time (ms). */
  since?: number;
  /** Only threads whose root was posted before this time (ms). */
  until?: number;
  /** Channel names, display names or usernames; none means every channel. */
  channels: readonly string[];
  /** Copy attachments instead of hard-linking them to the backup's files. */
  copy: boolean;
  /** A channel with more posts than this gets one file per month. */
  splitAbove?: number;
  signal?: AbortSignal;
  emit: ExportSink;
  /** Sees the steps that make the output durable (tests). */
  recorder?: FsRecorder;
}

export interface MarkdownSummary {
  out: string;
  channels: number;
  /** Markdown files written. */
  files: number;
  threads: number;
  posts: number;
  orphans: number;
  damaged: number;
  attachments: number;
  attachmentBytes: number;
  linked: number;
  copied: number;
  missingAttachments: number;
  durationMs: number;
}

/** Above this many posts a channel is split by month (a file stays quick to open). */
export const SPLIT_ABOVE = 2000;

const encoder = new TextEncoder();
/** Write buffer of a Markdown file: a split channel writes hundreds of files one by one. */
const TEXT_BUFFER = 64 * 1024;

/** A Markdown file written through a buffer, line by line. */
class TextFile {
  #closed = false;

  private constructor(readonly out: BufferedFile) {}

  static async create(path: string): Promise<TextFile> {
    const file = await Deno.open(path, { write: true, createNew: true });
    return new TextFile(new BufferedFile(file, TEXT_BUFFER));
  }

  async write(lines: readonly string[]): Promise<void> {
    await this.out.write(encoder.encode(lines.join("\n") + "\n"));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.out.flush();
    } finally {
      this.out.file.close();
    }
  }
}

/**
 * Names within each output folder, compared without regard to case (for case-insensitive
 * file systems). A channel named `x` takes `x.md`, `x/` and `x.files/`.
 */
class Names {
  #taken = new Map<string, Set<string>>();
  #teams = new Map<string, string>();

  constructor(reserved: string[]) {
    this.#taken.set("", new Set(reserved.map((name) => name.toLowerCase())));
  }

  take(folder: string, wanted: string, id: string): string {
    const taken = this.#taken.get(folder) ?? new Set<string>();
    this.#taken.set(folder, taken);
    const forms = (base: string) =>
      [base, `${base}.md`, `${base}.files`].map((n) => n.toLowerCase());
    // Taken: the id's start, then the whole id, then a count, each after as much of the name
    // as leaves room for it (a suffix cut off would give the same name again).
    let base = wanted;
    for (let n = 0; forms(base).some((name) => taken.has(name)); n++) {
      const suffix = n === 0 ? `-${id.slice(0, 8)}` : n === 1 ? `-${id}` : `-${id}-${n}`;
      base = safeName(wanted, MAX_NAME_BYTES - utf8Length(suffix)) + suffix;
    }
    forms(base).forEach((name) => taken.add(name));
    return base;
  }

  /** A team's folder: the same for each of its channels. */
  teamFolder(teamId: string, wanted: string): string {
    let folder = this.#teams.get(teamId);
    if (folder === undefined) {
      folder = this.take("", wanted, teamId);
      this.#teams.set(teamId, folder);
    }
    return folder;
  }
}

interface IndexEntry {
  section: string;
  title: string;
  link: string;
  posts: number;
  first: number | undefined;
  last: number | undefined;
  archived: boolean;
}

interface Counts {
  threads: number;
  posts: number;
  orphans: number;
  damaged: number;
  files: number;
  attachments: number;
  attachmentBytes: number;
  linked: number;
  copied: number;
  missingAttachments: number;
}

export async function exportMarkdown(options: MarkdownOptions): Promise<MarkdownSummary> {
  const started = performance.now();
  await checkOutputPlace(options.out, options.dataDir);
  const reader = await openBackup(options.dataDir);
  const users = await loadUsers(reader, options.emit);
  const { picked, unmatched } = pickChannels(await reader.channels(), options.channels);
  if (unmatched.length > 0) {
    throw new UsageError(`No channel in the backup is called ${unmatched.join(", ")}`);
  }
  const staging = await Staging.create(options.out, "folder", options.recorder);
  const counts: Counts = {
    threads: 0,
    posts: 0,
    orphans: 0,
    damaged: 0,
    files: 0,
    attachments: 0,
    attachmentBytes: 0,
    linked: 0,
    copied: 0,
    missingAttachments: 0,
  };
  try {
    const names = new Names(["index.md", "direct", "groups"]);
    const entries: IndexEntry[] = [];
    for (const [i, channel] of picked.entries()) {
      options.signal?.throwIfAborted();
      options.emit({
        type: "channel",
        label: channelTitle(channel),
        index: i + 1,
        total: picked.length,
      });
      const writer = new ChannelWriter(reader, channel, users, staging, names, options, counts);
      entries.push(await writer.write());
    }
    await writeIndex(join(staging.output, "index.md"), entries, options);
    counts.files++;
    await staging.commit();
  } catch (error) {
    await staging.discard();
    // The disk filled up or turned read-only under the output: named as the output.
    throw outputFailure(error, staging.target, "disk");
  }
  return {
    out: staging.target,
    channels: picked.length,
    files: counts.files,
    threads: counts.threads,
    posts: counts.posts,
    orphans: counts.orphans,
    damaged: counts.damaged,
    attachments: counts.attachments,
    attachmentBytes: counts.attachmentBytes,
    linked: counts.linked,
    copied: counts.copied,
    missingAttachments: counts.missingAttachments,
    durationMs: performance.now() - started,
  };
}

function describeRange(entry: IndexEntry): string {
  const posts = `${entry.posts.toLocaleString("en-US")} post${entry.posts === 1 ? "" : "s"}`;
  const range = entry.first === undefined
    ? ""
    : `, ${localDate(entry.first)} to ${localDate(entry.last as number)}`;
  return `${posts}${range}${entry.archived ? " (archived)" : ""}`;
}

async function writeIndex(
  path: string,
  entries: IndexEntry[],
  options: MarkdownOptions,
): Promise<void> {
  const now = Date.now();
  const lines = [
    "# Mattermost conversations",
    "",
    `Exported by matterbak ${VERSION} on ${localDate(now)} ${localTime(now)} from the backup in ` +
    `\`${options.dataDir}\`. Times are local (${utcOffset(now)} at the time of the export).`,
  ];
  const range = [
    options.since === undefined ? "" : `from ${localDate(options.since)}`,
    options.until === undefined ? "" : `until before ${localDate(options.until)}`,
  ].filter(Boolean);
  if (range.length) lines.push("", `Threads started ${range.join(" ")} only.`);
  let section: string | undefined;
  for (const entry of entries) {
    if (entry.section !== section) {
      section = entry.section;
      lines.push("", `## ${escapeText(section)}`, "");
    }
    lines.push(`- [${escapeText(entry.title)}](${entry.link}): ${describeRange(entry)}`);
  }
  const file = await TextFile.create(path);
  await file.write(lines);
  await file.close();
}

interface Pointer {
  root: Post;
  /** The file the root is in. */
  rootFile: string;
  replies: number;
  first: number;
}

/** One file of a split channel: a month, or part of a busy month. */
interface Part {
  name: string;
  title: string;
  threads: number;
  posts: number;
  /** Replies to threads of earlier months, listed at the top. */
  continued: number;
}

/** Writes one channel: its file, or its folder of month files with an index. */
class ChannelWriter {
  #folder: string[];
  #base = "";
  #split = false;
  #file: TextFile | undefined;
  #month = "";
  #part: Part | undefined;
  #day = "";
  #dayStart: number | undefined;
  /** Month to the threads of earlier months that its replies continue. */
  #pending = new Map<string, Map<string, Pointer>>();
  /** The files of a split channel in order, for its index. */
  #parts: Part[] = [];
  /** The posts with other versions stored (see BackupReader.historyIds). */
  #withHistory = new Set<string>();
  #filesDirMade = false;
  #posts = 0;
  #first: number | undefined;
  #last: number | undefined;

  constructor(
    readonly reader: BackupReader,
    readonly channel: ChannelEntry,
    readonly users: Map<string, User>,
    readonly staging: Staging,
    readonly names: Names,
    readonly options: MarkdownOptions,
    readonly counts: Counts,
  ) {
    const team = channel.team;
    this.#folder = channel.kind === "teams"
      ? [names.teamFolder(team?.id ?? "", safeName(team?.record?.name ?? team?.base ?? "team"))]
      : [channel.kind];
  }

  async write(): Promise<IndexEntry> {
    const { channel, options } = this;
    const wanted = channel.kind === "teams"
      ? safeName(channel.record?.name || channel.label.join("__"))
      : safeName(channel.label.join(channel.kind === "groups" ? ", " : "__"));
    this.#base = this.names.take(this.#folder.join("/"), wanted, channel.id);
    this.#withHistory = await this.reader.historyIds(channel);
    await Deno.mkdir(join(this.staging.output, ...this.#folder), { recursive: true });
    const spool = await ChannelSpool.create(
      this.reader,
      channel,
      join(this.staging.spool, channel.id),
      {
        // Edit-history copies are not posts; everything else is shown, deleted posts marked.
        keep: (post) => !post.original_id,
        select: (post) =>
          (options.since === undefined || post.create_at >= options.since) &&
          (options.until === undefined || post.create_at < options.until),
        onDamage: (damage) => this.#damaged(damage),
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    try {
      const posts = spool.counts.threads + spool.counts.replies;
      this.#split = posts > (options.splitAbove ?? SPLIT_ABOVE);
      if (this.#split) {
        await Deno.mkdir(join(this.staging.output, ...this.#folder, this.#base));
      } else await this.#open(`${this.#base}.md`, this.#title(), 1);
      for await (const thread of spool.threads()) {
        options.signal?.throwIfAborted();
        await this.#thread(thread);
        options.emit({
          type: "progress",
          posts: this.counts.posts,
          files: this.counts.attachments,
        });
      }
      if (this.#split) {
        for (const month of [...this.#pending.keys()].sort()) await this.#enterMonth(month);
        await this.#file?.close();
        await this.#writeChannelIndex();
      } else {
        if (posts === 0) await this.#file?.write(["*No posts.*"]);
        await this.#file?.close();
      }
    } finally {
      await this.#file?.close();
      await spool.close();
    }
    return {
      section: channel.kind === "teams"
        ? channel.team?.record?.display_name || channel.team?.record?.name || "Team"
        : channel.kind === "direct"
        ? "Direct messages"
        : "Group messages",
      title: channelTitle(channel),
      link: href(
        ...this.#folder,
        ...(this.#split ? [this.#base, "index.md"] : [`${this.#base}.md`]),
      ),
      posts: this.#posts,
      first: this.#first,
      last: this.#last,
      archived: (channel.record?.delete_at ?? 0) > 0,
    };
  }

  #title(): string {
    const { channel } = this;
    if (channel.kind === "direct") return `Direct messages with ${channelTitle(channel)}`;
    if (channel.kind === "groups") return `Group messages with ${channelTitle(channel)}`;
    return channelTitle(channel);
  }

  /** Opens a Markdown file of this channel, `depth` folders below the output root. */
  async #open(name: string, title: string, depth: number, extra: string[] = []): Promise<TextFile> {
    const { channel } = this;
    const folder = this.#split ? [...this.#folder, this.#base] : this.#folder;
    const file = await TextFile.create(join(this.staging.output, ...folder, name));
    this.#file = file;
    this.counts.files++;
    this.#day = "";
    const kind = channel.kind === "direct"
      ? "direct messages"
      : channel.kind === "groups"
      ? "group messages"
      : channel.record?.type === "P"
      ? "private channel"
      : "public channel";
    const about = [
      ...(channel.kind === "teams" && channel.team?.record
        ? [escapeText(channel.team.record.display_name || channel.team.record.name)]
        : []),
      kind,
      ...((channel.record?.delete_at ?? 0) > 0 ? ["archived"] : []),
      ...extra,
      `[all conversations](${"../".repeat(depth)}index.md)`,
    ];
    const lines = [`# ${escapeText(title)}`, "", about.join(" · ")];
    for (const field of ["purpose", "header"] as const) {
      const text = channel.record?.[field];
      if (typeof text === "string" && text.trim() !== "") {
        const label = field === "purpose" ? "Purpose" : "Header";
        lines.push("", ...quote(`**${label}:** ${text}`.split(/\r?\n/)));
      }
    }
    await file.write([...lines, ""]);
    return file;
  }

  /** Closes the current month and opens `month` with the threads its replies continue. */
  async #enterMonth(month: string): Promise<void> {
    if (month === this.#month) return;
    // Months before it that only continue earlier threads get files of their own first.
    for (const earlier of [...this.#pending.keys()].filter((m) => m < month).sort()) {
      await this.#enterMonth(earlier);
    }
    this.#month = month;
    const part = await this.#openPart(`${month}.md`, monthTitle(month));
    const pointers = this.#pending.get(month);
    this.#pending.delete(month);
    if (!pointers) return;
    const lines = ["## Replies this month to threads of earlier months", ""];
    for (const pointer of pointers.values()) {
      const author = this.#person(pointer.root.user_id).username;
      const link = `${href(pointer.rootFile)}#${anchorOf(pointer.root.id)}`;
      lines.push(
        `- [${escapeText(author)}, ${localDate(pointer.root.create_at)} ` +
          `${localTime(pointer.root.create_at)}](${link}): ${pointer.replies} repl` +
          `${pointer.replies === 1 ? "y" : "ies"}, from ${localDate(pointer.first)} ` +
          `${localTime(pointer.first)}`,
      );
      part.continued += pointer.replies;
    }
    await this.#file?.write([...lines, ""]);
  }

  /** Closes the current file of a split channel and opens the next. */
  async #openPart(name: string, title: string): Promise<Part> {
    await this.#file?.close();
    const part = { name, title, threads: 0, posts: 0, continued: 0 };
    this.#parts.push(part);
    this.#part = part;
    await this.#open(name, `${this.#title()}: ${title}`, this.#folder.length + 1, [
      "[months](index.md)",
    ]);
    return part;
  }

  async #thread(thread: Thread): Promise<void> {
    const root = thread.root;
    if (this.#split) {
      const month = monthKey(root.create_at);
      await this.#enterMonth(month);
      // A busy month goes on in parts; a thread is never cut.
      const splitAbove = this.options.splitAbove ?? SPLIT_ABOVE;
      if (this.#part && this.#part.threads > 0 && this.#part.posts >= splitAbove) {
        const n = this.#parts.filter((part) => part.name.startsWith(month)).length + 1;
        await this.#openPart(`${month}-${n}.md`, `${monthTitle(month)}, part ${n}`);
      }
    }
    const file = this.#file as TextFile;
    if (localDate(root.create_at) !== this.#day) {
      this.#day = localDate(root.create_at);
      this.#dayStart = root.create_at;
      await file.write([dayHeading(root.create_at), ""]);
    }
    const view = { ...await this.#view(root), orphan: thread.orphan };
    await file.write([...renderPost(view, this.#dayStart), ""]);
    this.#count(root);
    this.counts.threads++;
    if (thread.orphan) this.counts.orphans++;
    if (this.#part) this.#part.threads++;
    for await (const reply of thread.replies()) {
      await file.write([...quote(renderPost(await this.#view(reply), root.create_at)), ""]);
      this.#count(reply);
      const replyMonth = monthKey(reply.create_at);
      if (this.#split && replyMonth > this.#month) this.#point(root, replyMonth, reply);
    }
  }

  #count(post: Post): void {
    this.#posts++;
    this.counts.posts++;
    if (this.#part) this.#part.posts++;
    this.#first = Math.min(this.#first ?? post.create_at, post.create_at);
    this.#last = Math.max(this.#last ?? post.create_at, post.create_at);
  }

  /** Notes a reply posted in a later month than its root, for that month's file. */
  #point(root: Post, month: string, reply: Post): void {
    const pointers = this.#pending.get(month) ?? new Map<string, Pointer>();
    this.#pending.set(month, pointers);
    const pointer = pointers.get(root.id);
    if (pointer) pointer.replies++;
    else {
      const rootFile = this.#part?.name ?? "";
      pointers.set(root.id, { root, rootFile, replies: 1, first: reply.create_at });
    }
  }

  async #writeChannelIndex(): Promise<void> {
    const file = await this.#open("index.md", this.#title(), this.#folder.length + 1);
    const lines = ["## Months", ""];
    for (const { name, title, threads, posts, continued } of this.#parts) {
      const more = continued
        ? `, and ${continued} repl${continued === 1 ? "y" : "ies"} to earlier threads`
        : "";
      lines.push(
        `- [${title}](${href(name)}): ${threads} thread${threads === 1 ? "" : "s"}, ` +
          `${posts} post${posts === 1 ? "" : "s"}${more}`,
      );
    }
    await file.write(lines);
    await file.close();
  }

  #person(userId: string): { username: string; fullName: string } {
    const user = this.users.get(userId);
    return { username: user?.username ?? userId, fullName: fullName(user) };
  }

  async #view(post: Post): Promise<PostView> {
    const files: FileLink[] = [];
    for (const attachment of await this.reader.attachments(this.channel, post)) {
      if (attachment.damage) this.#damaged(attachment.damage);
      files.push(await this.#place(attachment));
    }
    return {
      post,
      author: this.#person(post.user_id),
      files,
      versions: await this.#versions(post),
    };
  }

  async #versions(post: Post): Promise<VersionLine[]> {
    if (!this.#withHistory.has(post.id)) return [];
    const history = await this.reader.history(this.channel, post.id);
    if (Array.isArray(history)) return versionLines(post, history);
    this.#damaged(history);
    return [];
  }

  #damaged(damage: Damage): void {
    this.counts.damaged++;
    this.options.emit({ type: "warning", message: damageWarning(damage) });
  }

  /** Links (or copies) an attachment into the channel's files folder. */
  async #place(attachment: Attachment): Promise<FileLink> {
    const name = attachment.info?.name ??
      attachment.path?.at(-1)?.slice(attachment.fileId.length + 2) ?? attachment.fileId;
    const image = isImage(name, attachment.info?.mime_type);
    this.counts.attachments++;
    if (attachment.path === undefined) {
      this.counts.missingAttachments++;
      return { name, href: undefined, image, size: undefined };
    }
    const filesDir = this.#split ? [this.#base, "files"] : [`${this.#base}.files`];
    const dir = join(this.staging.output, ...this.#folder, ...filesDir);
    if (!this.#filesDirMade) {
      await Deno.mkdir(dir, { recursive: true });
      this.#filesDirMade = true;
    }
    const fileName = fileDataName(attachment.fileId, name);
    const target = join(dir, fileName);
    const source = this.reader.localPath(attachment.path);
    const placed = await placeFile(source, target, this.options.copy);
    if (placed === "linked") this.staging.linked(target);
    // An attachment placed before (on another post) counts as linked, as it always did.
    if (placed === "copied") this.counts.copied++;
    else this.counts.linked++;
    this.counts.attachmentBytes += attachment.size ?? 0;
    const link = this.#split ? ["files", fileName] : [`${this.#base}.files`, fileName];
    return { name, href: href(...link), image, size: attachment.size };
  }
}

/**
 * A hard link to the backup's file, else (another file system, no link support) a copy. An
 * existing target (the same attachment on two posts) is kept ("placed before").
 */
async function placeFile(
  source: string,
  target: string,
  copy: boolean,
): Promise<"linked" | "copied" | "placed before"> {
  if (!copy) {
    try {
      await Deno.link(source, target);
      return "linked";
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) return "placed before";
    }
  }
  await Deno.copyFile(source, target);
  return "copied";
}
