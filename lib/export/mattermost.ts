/**
 * `matterbak export mattermost`: the backup as a Mattermost bulk-import archive (`mmctl import
 * process`): `import.jsonl` at the root of a zip, attachments and emoji images under `data/`.
 * Posts stream through a channel spool (threads.ts) so each root is written with its replies
 * nested, with flat memory; post lines go to scratch files while the users they name are
 * gathered, and the JSONL is put together in the importer's order at the end: version, emoji,
 * team, channel, user, post, direct_channel, direct_post. Deleted posts are left out; a reply
 * whose root is not there (deleted or missing) becomes a post of its own; an edited post goes
 * with its current text (the format has no edit history). The archive is checked with the same
 * checks as `--check` before it is moved into place.
 */
import { join } from "node:path";
import type { Post, User } from "../model/records.ts";
import { isMattermostId } from "../model/records.ts";
import type { BackupReader, ChannelEntry, TeamEntry } from "../store/reader.ts";
import { safeName } from "../store/safe_name.ts";
import { UsageError } from "../util/errors.ts";
import { VERSION } from "../util/version.ts";
import { BufferedFile, ZipWriter } from "../zip/writer.ts";
import { type BulkCheck, checkBulkArchive } from "./bulk_check.ts";
import {
  importPost,
  type ImportReply,
  isValidEmojiName,
  LIMITS,
  truncateRunes,
} from "./bulk_format.ts";
import {
  channelTitle,
  checkOutputPlace,
  damageWarning,
  type ExportSink,
  loadUsers,
  openBackup,
} from "./common.ts";
import { Staging } from "./staging.ts";
import { type FsRecorder, outputFailure } from "../store/atomic_write.ts";
import { ChannelSpool, type Thread } from "./threads.ts";

export interface MattermostOptions {
  dataDir: string;
  out: string;
  /** Team names or display names; none means every team. Direct and group messages always go. */
  teams: readonly string[];
  /** The longest line to write (tests make it small); the importer's limit by default. */
  lineBytes?: number;
  signal?: AbortSignal;
  emit: ExportSink;
  /** Sees the steps that make the output durable (tests). */
  recorder?: FsRecorder;
}

export interface MattermostSummary {
  out: string;
  bytes: number;
  teams: number;
  channels: number;
  directChannels: number;
  users: number;
  /** Users whose e-mail address was not in the backup: they got `<username>@users.invalid`. */
  placeholderEmails: number;
  /** Users the posts name who are not in the backup: they got `user-<id>` as username. */
  unknownUsers: number;
  emoji: number;
  threads: number;
  posts: number;
  orphans: number;
  deletedLeftOut: number;
  /** Posts with other versions in the backup: the format has no edit history, only the text. */
  postsWithHistory: number;
  damaged: number;
  attachments: number;
  attachmentBytes: number;
  missingAttachments: number;
  /** Replies added for the rest of long messages and for attachments beyond the limit. */
  addedReplies: number;
  /** Threads too long for one line, continued in another. */
  splitThreads: number;
  skippedChannels: number;
  check: BulkCheck;
  durationMs: number;
}

/** The JSONL's name in the zip. */
export const JSONL_NAME = "import.jsonl";
/** The domain of placeholder addresses: `.invalid` is reserved never to resolve (RFC 2606). */
export const PLACEHOLDER_DOMAIN = "users.invalid";

const encoder = new TextEncoder();

type Where = { team: string; channel: string } | { channel_members: string[] };

interface Membership {
  admin: boolean;
  channels: Map<string, boolean>;
}

/** A team's names on the new server (from its record, else its folder). */
function teamName(team: TeamEntry): string {
  return (team.record?.name ?? team.base.slice(28)).toLowerCase();
}

function teamMatches(team: TeamEntry | undefined, names: readonly string[]): boolean {
  if (!team) return false;
  const own = [teamName(team), team.record?.display_name ?? ""].map((n) => n.toLowerCase());
  return names.some((name) => own.includes(name.toLowerCase()));
}

export async function exportMattermost(options: MattermostOptions): Promise<MattermostSummary> {
  const started = performance.now();
  await checkOutputPlace(options.out, options.dataDir);
  const reader = await openBackup(options.dataDir);
  const users = await loadUsers(reader, options.emit);
  const channels = await reader.channels();
  const unmatched = options.teams.filter((name) =>
    !channels.some((channel) => teamMatches(channel.team, [name]))
  );
  if (unmatched.length > 0) {
    throw new UsageError(`No team in the backup is called ${unmatched.join(", ")}`);
  }
  const picked = channels.filter((channel) =>
    channel.kind !== "teams" || options.teams.length === 0 ||
    teamMatches(channel.team, options.teams)
  );
  const staging = await Staging.create(options.out, "file", options.recorder);
  let zip: ZipWriter | undefined;
  let exporter: BulkExporter | undefined;
  try {
    zip = await ZipWriter.create(staging.output);
    exporter = await BulkExporter.create(reader, users, zip, staging, options);
    for (const [i, channel] of picked.entries()) {
      options.signal?.throwIfAborted();
      options.emit({
        type: "channel",
        label: channelTitle(channel),
        index: i + 1,
        total: picked.length,
      });
      await exporter.channel(channel);
    }
    await exporter.finish();
    const bytes = zip.size;
    const check = await checkBulkArchive(staging.output);
    await staging.commit();
    return {
      ...exporter.summary,
      out: staging.target,
      bytes,
      check,
      durationMs: performance.now() - started,
    };
  } catch (error) {
    exporter?.dispose();
    await zip?.abort();
    await staging.discard();
    // The disk filled up or turned read-only under the output: named as the output.
    throw outputFailure(error, staging.target, "disk");
  }
}

/** Builds the archive channel by channel; the JSONL is assembled by finish(). */
class BulkExporter {
  readonly summary: Omit<MattermostSummary, "out" | "bytes" | "check" | "durationMs"> = {
    teams: 0,
    channels: 0,
    directChannels: 0,
    users: 0,
    placeholderEmails: 0,
    unknownUsers: 0,
    emoji: 0,
    threads: 0,
    posts: 0,
    orphans: 0,
    deletedLeftOut: 0,
    postsWithHistory: 0,
    damaged: 0,
    attachments: 0,
    attachmentBytes: 0,
    missingAttachments: 0,
    addedReplies: 0,
    splitThreads: 0,
    skippedChannels: 0,
  };
  /** Users named by posts, reactions or members who have no record in the backup. */
  #unknown = new Set<string>();
  /** The channel's posts with other versions stored (only counted: see postsWithHistory). */
  #withHistory = new Set<string>();
  #teams = new Map<string, TeamEntry>();
  /** User id to team name to membership. */
  #members = new Map<string, Map<string, Membership>>();
  #channelLines: string[] = [];
  #directChannelLines: string[] = [];
  /** Scratch files to close. */
  #open: Deno.FsFile[];

  private constructor(
    readonly reader: BackupReader,
    readonly users: Map<string, User>,
    readonly zip: ZipWriter,
    readonly staging: Staging,
    readonly options: MattermostOptions,
    readonly posts: BufferedFile,
    readonly directPosts: BufferedFile,
  ) {
    this.#open = [posts.file, directPosts.file];
  }

  static async create(
    reader: BackupReader,
    users: Map<string, User>,
    zip: ZipWriter,
    staging: Staging,
    options: MattermostOptions,
  ): Promise<BulkExporter> {
    const open = async (name: string) =>
      new BufferedFile(
        await Deno.open(join(staging.spool, name), { read: true, write: true, createNew: true }),
      );
    return new BulkExporter(
      reader,
      users,
      zip,
      staging,
      options,
      await open("posts.jsonl"),
      await open("direct_posts.jsonl"),
    );
  }

  #username(userId: string): string {
    const user = this.users.get(userId);
    if (user) return user.username;
    this.#unknown.add(userId);
    return `user-${userId}`;
  }

  #membership(userId: string, team: string): Membership {
    this.#username(userId);
    const teams = this.#members.get(userId) ?? new Map<string, Membership>();
    this.#members.set(userId, teams);
    const membership = teams.get(team) ?? { admin: false, channels: new Map<string, boolean>() };
    teams.set(team, membership);
    return membership;
  }

  async channel(channel: ChannelEntry): Promise<void> {
    const where = channel.kind === "teams"
      ? await this.#teamChannel(channel)
      : await this.#directChannel(channel);
    if (!where) return;
    this.#withHistory = await this.reader.historyIds(channel);
    const spool = await ChannelSpool.create(
      this.reader,
      channel,
      join(this.staging.spool, channel.id),
      {
        // The import has no deleted posts; edit-history copies are not posts.
        keep: (post) => post.delete_at === 0 && !post.original_id,
        select: () => true,
        onDamage: (damage) => {
          this.summary.damaged++;
          this.options.emit({ type: "warning", message: damageWarning(damage) });
        },
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      },
    );
    try {
      this.summary.deletedLeftOut += spool.counts.left;
      for await (const thread of spool.threads()) {
        this.options.signal?.throwIfAborted();
        await this.#thread(channel, where, thread);
        this.options.emit({
          type: "progress",
          posts: this.summary.posts,
          files: this.summary.attachments,
        });
      }
    } finally {
      await spool.close();
    }
  }

  async #teamChannel(channel: ChannelEntry): Promise<Where | undefined> {
    const team = channel.team as TeamEntry;
    const name = (channel.record?.name || channel.label.join("__")).toLowerCase();
    const teamKey = teamName(team);
    if (!this.#teams.has(team.id)) {
      this.#teams.set(team.id, team);
      const members = await this.reader.teamMembers(team);
      if (Array.isArray(members)) {
        for (const member of members) {
          const roles = typeof member.roles === "string" ? member.roles : "";
          this.#membership(member.user_id, teamKey).admin ||= roles.includes("team_admin");
        }
      } else this.options.emit({ type: "warning", message: damageWarning(members) });
    }
    const record = channel.record;
    const line: Record<string, unknown> = {
      team: teamKey,
      name,
      display_name: truncateRunes(record?.display_name || name, LIMITS.channelDisplayRunes),
      // A group message converted to a channel is private; a lost record is kept private too.
      type: record?.type === "O" ? "O" : "P",
    };
    if (typeof record?.header === "string" && record.header !== "") {
      line.header = truncateRunes(record.header, LIMITS.channelHeaderRunes);
    }
    if (typeof record?.purpose === "string" && record.purpose !== "") {
      line.purpose = truncateRunes(record.purpose, LIMITS.channelPurposeRunes);
    }
    // Archived channels stay archived (ChannelImportData.DeletedAt; older servers ignore it).
    if ((record?.delete_at ?? 0) > 0) line.deleted_at = record?.delete_at;
    this.#channelLines.push(JSON.stringify({ type: "channel", channel: line }));
    this.summary.channels++;
    const members = await this.reader.members(channel);
    if (Array.isArray(members)) {
      for (const member of members) {
        const roles = typeof member.roles === "string" ? member.roles : "";
        this.#membership(member.user_id, teamKey).channels.set(
          name,
          roles.includes("channel_admin"),
        );
      }
    } else this.options.emit({ type: "warning", message: damageWarning(members) });
    return { team: teamKey, channel: name };
  }

  /**
   * The members of a direct or group message, by username. A DM's two ids come from its name
   * (`<idA>__<idB>`); a DM with yourself has the same id twice, and stays a DM of one user with
   * themselves, as Mattermost stores it. A group's members come from its member list.
   */
  async #directChannel(channel: ChannelEntry): Promise<Where | undefined> {
    let ids: string[] = [];
    const fromName = (channel.record?.name ?? "").split("__");
    if (channel.kind === "direct" && fromName.length === 2 && fromName.every(isMattermostId)) {
      ids = fromName;
    } else {
      const members = await this.reader.members(channel);
      if (Array.isArray(members)) ids = members.map((member) => member.user_id);
      else this.options.emit({ type: "warning", message: damageWarning(members) });
      if (channel.kind === "direct" && ids.length === 1) ids = [ids[0] as string, ids[0] as string];
    }
    const fits = channel.kind === "direct"
      ? ids.length === 2
      : ids.length >= LIMITS.groupMin && ids.length <= LIMITS.groupMax;
    if (!fits) {
      this.summary.skippedChannels++;
      this.options.emit({
        type: "warning",
        message: `left out ${channelTitle(channel)}: ${ids.length} members known, and a ` +
          `${channel.kind === "direct" ? "direct message needs 2" : "group message 3 to 8"}`,
      });
      return undefined;
    }
    const members = ids.map((id) => this.#username(id));
    if (channel.kind === "groups") members.sort();
    const line: Record<string, unknown> = { members };
    const header = channel.record?.header;
    if (typeof header === "string" && header !== "") {
      line.header = truncateRunes(header, LIMITS.channelHeaderRunes);
    }
    this.#directChannelLines.push(JSON.stringify({ type: "direct_channel", direct_channel: line }));
    this.summary.directChannels++;
    return { channel_members: members };
  }

  /** A post's import fields; its attachments go into the zip now. */
  async #convert(channel: ChannelEntry, post: Post) {
    if (this.#withHistory.has(post.id)) this.summary.postsWithHistory++;
    const paths: string[] = [];
    for (const attachment of await this.reader.attachments(channel, post)) {
      this.summary.attachments++;
      if (attachment.damage) {
        this.summary.damaged++;
        this.options.emit({ type: "warning", message: damageWarning(attachment.damage) });
      }
      if (attachment.path === undefined) {
        this.summary.missingAttachments++;
        continue;
      }
      const name = safeName(
        attachment.info?.name ?? attachment.path.at(-1)?.slice(28) ?? attachment.fileId,
        160,
      );
      const path = `attachments/${attachment.fileId}/${name}`;
      const file = await Deno.open(this.reader.localPath(attachment.path));
      const size = (await file.stat()).size;
      await this.zip.addStream(`data/${path}`, file.readable, { size, level: 0 });
      this.summary.attachmentBytes += size;
      paths.push(path);
    }
    const converted = importPost(post, {
      username: (id) => this.#username(id),
      attachments: paths,
    });
    this.summary.addedReplies += converted.extra.length;
    return converted;
  }

  async #thread(channel: ChannelEntry, where: Where, thread: Thread): Promise<void> {
    const root = await this.#convert(channel, thread.root);
    this.summary.threads++;
    this.summary.posts++;
    if (thread.orphan) this.summary.orphans++;
    const convert = (post: Post) => this.#convert(channel, post);
    const summary = this.summary;
    async function* replies(): AsyncGenerator<ImportReply> {
      yield* root.extra;
      for await (const reply of thread.replies()) {
        const converted = await convert(reply);
        summary.posts++;
        yield converted.fields;
        yield* converted.extra;
      }
    }
    const kind = "team" in where ? "post" : "direct_post";
    const out = kind === "post" ? this.posts : this.directPosts;
    const fields = { ...where, ...root.fields };
    if (root.extra.length === 0 && thread.replyCount === 0) {
      await out.write(encoder.encode(JSON.stringify({ type: kind, [kind]: fields }) + "\n"));
      return;
    }
    await this.#writeNested(out, kind, fields, replies());
  }

  /**
   * A root line with its replies nested, streamed reply by reply. A thread too long for one
   * line (the importer reads at most 16 MiB per line) goes on in a further line under a short
   * post saying so: the importer cannot add replies to a root of an earlier line.
   */
  async #writeNested(
    out: BufferedFile,
    kind: "post" | "direct_post",
    fields: Record<string, unknown> & ImportReply,
    replies: AsyncGenerator<ImportReply>,
  ): Promise<void> {
    const limit = this.options.lineBytes ?? LIMITS.lineBytes;
    const close = encoder.encode("]}}\n");
    const comma = encoder.encode(",");
    let head = fields;
    let size = 0;
    let count = 0;
    for await (const reply of replies) {
      const bytes = encoder.encode(JSON.stringify(reply));
      if (count > 0 && size + 1 + bytes.length + close.length - 1 > limit) {
        await out.write(close);
        this.summary.splitThreads++;
        this.summary.addedReplies++;
        head = {
          ...("team" in fields
            ? { team: fields.team, channel: fields.channel }
            : { channel_members: fields.channel_members }),
          user: fields.user,
          message: `(continued: the thread of ${new Date(fields.create_at).toISOString()} is ` +
            `too long for one import line)`,
          create_at: reply.create_at,
        };
        count = 0;
      }
      if (count === 0) {
        const text = JSON.stringify({ type: kind, [kind]: head });
        const prefix = encoder.encode(`${text.slice(0, -2)},"replies":[`);
        await out.write(prefix);
        size = prefix.length;
      } else {
        await out.write(comma);
        size++;
      }
      await out.write(bytes);
      size += bytes.length;
      count++;
    }
    await out.write(close);
  }

  async #emoji(head: BufferedFile): Promise<void> {
    for await (const entry of this.reader.emojis()) {
      for (const damage of entry.damage) {
        this.options.emit({ type: "warning", message: damageWarning(damage) });
      }
      const name = entry.record?.name;
      if (!entry.record || name === undefined) continue;
      if (!entry.image || !isValidEmojiName(name)) {
        this.options.emit({
          type: "warning",
          message: `left out emoji :${name}:: ${
            entry.image ? "its name is not valid" : "no image"
          }`,
        });
        continue;
      }
      const ext = entry.image.at(-1)?.split(".").at(-1) ?? "png";
      const path = `emoji/${entry.id}.${ext}`;
      const file = await Deno.open(this.reader.localPath(entry.image));
      const size = (await file.stat()).size;
      await this.zip.addStream(`data/${path}`, file.readable, { size, level: 0 });
      await head.write(
        encoder.encode(JSON.stringify({ type: "emoji", emoji: { name, image: path } }) + "\n"),
      );
      this.summary.emoji++;
    }
  }

  #userLine(id: string): Record<string, unknown> {
    const user = this.users.get(id);
    const username = this.#username(id);
    const email = typeof user?.email === "string" ? user.email.toLowerCase() : "";
    const line: Record<string, unknown> = { username, email, roles: "system_user" };
    if (!/^[^@\s<>]+@[^@\s<>]+$/.test(email) || email.length > LIMITS.email) {
      line.email = `${username}@${PLACEHOLDER_DOMAIN}`;
      this.summary.placeholderEmails++;
    }
    for (
      const [field, max] of [
        ["first_name", LIMITS.firstNameRunes],
        ["last_name", LIMITS.lastNameRunes],
        ["nickname", LIMITS.nicknameRunes],
        ["position", LIMITS.positionRunes],
      ] as const
    ) {
      const value = user?.[field];
      if (typeof value === "string" && value !== "") line[field] = truncateRunes(value, max);
    }
    if ((user?.delete_at ?? 0) > 0) line.delete_at = user?.delete_at;
    const teams = [...(this.#members.get(id) ?? new Map<string, Membership>())];
    if (teams.length) {
      line.teams = teams.map(([name, membership]) => ({
        name,
        roles: membership.admin ? "team_user team_admin" : "team_user",
        channels: [...membership.channels].map(([channel, admin]) => ({
          name: channel,
          roles: admin ? "channel_user channel_admin" : "channel_user",
        })),
      }));
    }
    return line;
  }

  /** Puts the JSONL together from its parts and closes the zip. */
  async finish(): Promise<void> {
    const head = await this.#scratch("head.jsonl");
    const directChannels = await this.#scratch("direct_channels.jsonl");
    const line = (value: unknown) => encoder.encode(JSON.stringify(value) + "\n");
    // `info` says who made the file (VersionInfoImportData); the importer only logs it.
    await head.write(line({
      type: "version",
      version: 1,
      info: { generator: "matterbak", version: VERSION, created: new Date().toISOString() },
    }));
    await this.#emoji(head);
    for (const team of this.#teams.values()) {
      const record = team.record;
      const name = teamName(team);
      const fields: Record<string, unknown> = {
        name,
        display_name: truncateRunes(record?.display_name || name, LIMITS.teamDisplayRunes),
        type: record?.type === "I" ? "I" : "O",
      };
      if (typeof record?.description === "string" && record.description !== "") {
        fields.description = record.description;
      }
      await head.write(line({ type: "team", team: fields }));
      this.summary.teams++;
    }
    for (const text of this.#channelLines) await head.write(encoder.encode(text + "\n"));
    const ids = new Set([...this.users.keys(), ...this.#unknown]);
    const lines = [...ids].map((id) => this.#userLine(id))
      .sort((a, b) => (a.username as string) < (b.username as string) ? -1 : 1);
    for (const user of lines) await head.write(line({ type: "user", user }));
    this.summary.users = lines.length;
    this.summary.unknownUsers = this.#unknown.size;
    for (const text of this.#directChannelLines) {
      await directChannels.write(encoder.encode(text + "\n"));
    }
    const parts = [head, this.posts, directChannels, this.directPosts];
    for (const part of parts) await part.flush();
    const size = parts.reduce((sum, part) => sum + part.offset, 0);
    await this.zip.addStream(JSONL_NAME, concatenate(parts.map((part) => part.file)), {
      size,
      level: 6,
    });
    this.dispose();
    await this.zip.close();
  }

  async #scratch(name: string): Promise<BufferedFile> {
    const path = join(this.staging.spool, name);
    const file = await Deno.open(path, { read: true, write: true, createNew: true });
    this.#open.push(file);
    return new BufferedFile(file);
  }

  /** Closes the scratch files (finish() does it; after an error the caller does). */
  dispose(): void {
    for (const file of this.#open) {
      try {
        file.close();
      } catch {
        // Already closed.
      }
    }
    this.#open = [];
  }
}

/** The files one after another, each read from its start. */
function concatenate(files: Deno.FsFile[]): ReadableStream<Uint8Array> {
  let index = 0;
  let started = false;
  const buffer = new Uint8Array(1 << 16);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (index < files.length) {
        const file = files[index] as Deno.FsFile;
        if (!started) {
          await file.seek(0, Deno.SeekMode.Start);
          started = true;
        }
        const read = await file.read(buffer);
        if (read !== null) {
          controller.enqueue(buffer.slice(0, read));
          return;
        }
        index++;
        started = false;
      }
      controller.close();
    },
  });
}
