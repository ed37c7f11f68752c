/**
 * `matterbak export mattermost --check FILE.zip`: checks a bulk-import archive against what
 * Mattermost's importer requires (import_validators.go, import.go), reading the JSONL a line at
 * a time: one .jsonl at the root, the version line first, each line type in one run in the
 * importer's order, every field within its limit, and every team, channel, user and
 * attachment a line refers to present in the archive. The export checks its own output with
 * it, and the tests check every archive they make.
 */
import { type ZipEntry, ZipFormatError, ZipReader } from "../zip/reader.ts";
import { readLines } from "../util/lines.ts";
import { isObject } from "../util/objects.ts";
import {
  isValidChannelName,
  isValidEmojiName,
  isValidTeamName,
  isValidUsername,
  LIMITS,
  LINE_TYPES,
  type LineType,
  ROLES,
  runes,
} from "./bulk_format.ts";

export interface BulkCheckCounts {
  lines: number;
  teams: number;
  channels: number;
  users: number;
  emoji: number;
  posts: number;
  directChannels: number;
  directPosts: number;
  replies: number;
  reactions: number;
  attachments: number;
}

export interface BulkCheck {
  problems: string[];
  /** Problems beyond the first MAX_PROBLEMS, counted only. */
  moreProblems: number;
  counts: BulkCheckCounts;
}

const MAX_PROBLEMS = 100;
const DATA_DIR = "data/";

type Json = Record<string, unknown>;

/** Reads and checks the archive at `path`; nothing is thrown for what is wrong inside it. */
export async function checkBulkArchive(path: string): Promise<BulkCheck> {
  const check = new Checker();
  let zip: ZipReader;
  try {
    zip = await ZipReader.open(path);
  } catch (error) {
    if (error instanceof ZipFormatError) check.problem(undefined, error.message);
    else throw error;
    return check.result();
  }
  try {
    const names = new Set<string>();
    const jsonl: ZipEntry[] = [];
    try {
      for await (const entry of zip.entries()) {
        if (names.has(entry.name)) check.problem(undefined, `${entry.name} is in the zip twice`);
        names.add(entry.name);
        if (entry.name.startsWith(DATA_DIR) && !entry.directory) check.files.add(entry.name);
        if (entry.name.endsWith(".jsonl")) jsonl.push(entry);
      }
    } catch (error) {
      // A broken central directory: the importer cannot read the archive either.
      if (!(error instanceof ZipFormatError)) throw error;
      check.problem(undefined, error.message);
      return check.result();
    }
    // The importer reads the first .jsonl it meets, anywhere (jobs/import_process/worker.go).
    if (jsonl.length !== 1) {
      check.problem(undefined, `the zip holds ${jsonl.length} .jsonl files; exactly one is needed`);
    }
    const entry = jsonl[0];
    if (entry === undefined) return check.result();
    if (entry.name.includes("/")) {
      check.problem(undefined, `${entry.name} is not at the root of the zip`);
    }
    try {
      for await (const line of readLines(await zip.readable(entry), LIMITS.lineBytes)) {
        check.line(line.text, line.bytes);
      }
    } catch (error) {
      if (error instanceof ZipFormatError) check.problem(undefined, error.message);
      else throw error;
    }
    check.end();
  } finally {
    zip.close();
  }
  return check.result();
}

/** The checks, line by line; what it knows of the file so far is kept in sets of names. */
export class Checker {
  readonly files = new Set<string>();
  readonly #problems: string[] = [];
  #more = 0;
  readonly counts: BulkCheckCounts = {
    lines: 0,
    teams: 0,
    channels: 0,
    users: 0,
    emoji: 0,
    posts: 0,
    directChannels: 0,
    directPosts: 0,
    replies: 0,
    reactions: 0,
    attachments: 0,
  };
  #teams = new Set<string>();
  /** `team/channel`, lowercase. */
  #channels = new Set<string>();
  #users = new Set<string>();
  /** Sorted member usernames of each direct or group channel. */
  #directs = new Set<string>();
  #seen = new Set<LineType>();
  #type: LineType | undefined;

  problem(line: number | undefined, message: string): void {
    if (this.#problems.length >= MAX_PROBLEMS) this.#more++;
    else this.#problems.push(line === undefined ? message : `line ${line}: ${message}`);
  }

  result(): BulkCheck {
    return { problems: [...this.#problems], moreProblems: this.#more, counts: { ...this.counts } };
  }

  line(text: string | undefined, bytes: number): void {
    const n = ++this.counts.lines;
    const say = (message: string) => this.problem(n, message);
    if (text === undefined) {
      return say(`${bytes} bytes long; the importer reads at most ${LIMITS.lineBytes} per line`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return say("not valid JSON");
    }
    if (!isObject(value) || typeof value.type !== "string") return say("no line type");
    const type = value.type as LineType;
    if (!LINE_TYPES.includes(type)) return say(`unknown line type ${JSON.stringify(value.type)}`);
    if (n === 1 && type !== "version") say("the first line must be the version line");
    if (type !== this.#type) {
      if (this.#seen.has(type)) say(`${type} lines must form one run; they appeared before`);
      const previous = this.#type ? LINE_TYPES.indexOf(this.#type) : -1;
      if (LINE_TYPES.indexOf(type) < previous) say(`${type} lines must come before ${this.#type}`);
      this.#seen.add(type);
      this.#type = type;
    }
    const body = value[type];
    if (type === "version") {
      if (value.version !== 1) say("version must be 1");
      if (n !== 1) say("the version line must be the first line");
      return;
    }
    if (!isObject(body)) return say(`a ${type} line needs a "${type}" object`);
    switch (type) {
      case "emoji":
        return this.#emoji(body, say);
      case "team":
        return this.#team(body, say);
      case "channel":
        return this.#channel(body, say);
      case "user":
        return this.#user(body, say);
      case "post":
        return this.#post(body, say);
      case "direct_channel":
        return this.#directChannel(body, say);
      case "direct_post":
        return this.#directPost(body, say);
    }
  }

  /** After the last line. */
  end(): void {
    if (this.counts.lines === 0) this.problem(undefined, "the .jsonl is empty");
  }

  #path(path: unknown, what: string, say: (message: string) => void): void {
    if (typeof path !== "string" || path === "") return say(`${what} has no path`);
    const segments = path.split("/");
    if (path.startsWith("/") || segments.includes("..") || segments.includes(".")) {
      return say(`${what} ${JSON.stringify(path)} leaves the data/ folder`);
    }
    if (!this.files.has(DATA_DIR + path)) {
      say(`${what} ${JSON.stringify(path)} is not in the zip (as data/${path})`);
    }
  }

  #emoji(body: Json, say: (message: string) => void): void {
    this.counts.emoji++;
    if (typeof body.name !== "string" || !isValidEmojiName(body.name)) {
      say(`emoji name ${JSON.stringify(body.name)} is not valid`);
    }
    this.#path(body.image, "emoji image", say);
  }

  #team(body: Json, say: (message: string) => void): void {
    this.counts.teams++;
    const name = body.name;
    if (typeof name !== "string" || !isValidTeamName(name)) {
      say(`team name ${JSON.stringify(name)} is not valid (or reserved)`);
    } else this.#teams.add(name.toLowerCase());
    const display = body.display_name;
    if (typeof display !== "string" || display === "" || runes(display) > LIMITS.teamDisplayRunes) {
      say(`team display_name must be 1 to ${LIMITS.teamDisplayRunes} characters`);
    }
    if (body.type !== "O" && body.type !== "I") say(`team type must be "O" or "I"`);
    if (typeof body.description === "string" && body.description.length > LIMITS.teamDescription) {
      say(`team description is longer than ${LIMITS.teamDescription} bytes`);
    }
  }

  #channel(body: Json, say: (message: string) => void): void {
    this.counts.channels++;
    const team = typeof body.team === "string" ? body.team.toLowerCase() : undefined;
    if (team === undefined || !this.#teams.has(team)) {
      say(`channel's team ${JSON.stringify(body.team)} is not in the file`);
    }
    const name = body.name;
    if (typeof name !== "string" || !isValidChannelName(name)) {
      say(`channel name ${JSON.stringify(name)} is not valid`);
    } else this.#channels.add(`${team}/${name.toLowerCase()}`);
    const display = body.display_name;
    if (
      display !== undefined &&
      (typeof display !== "string" || runes(display) > LIMITS.channelDisplayRunes)
    ) {
      say(`channel display_name must be at most ${LIMITS.channelDisplayRunes} characters`);
    }
    if (body.type !== "O" && body.type !== "P") say(`channel type must be "O" or "P"`);
    this.#longText(body.header, LIMITS.channelHeaderRunes, "channel header", say);
    this.#longText(body.purpose, LIMITS.channelPurposeRunes, "channel purpose", say);
  }

  #longText(text: unknown, max: number, what: string, say: (message: string) => void): void {
    if (text === undefined) return;
    if (typeof text !== "string") return say(`${what} must be text`);
    if (runes(text) > max) say(`${what} is longer than ${max} characters`);
  }

  #user(body: Json, say: (message: string) => void): void {
    this.counts.users++;
    const name = body.username;
    if (typeof name !== "string" || !isValidUsername(name)) {
      say(`username ${JSON.stringify(name)} is not valid`);
    } else if (this.#users.has(name.toLowerCase())) say(`user ${name} is in the file twice`);
    else this.#users.add(name.toLowerCase());
    const email = body.email;
    if (typeof email !== "string" || email === "" || email.length > LIMITS.email) {
      say(`user email must be 1 to ${LIMITS.email} bytes`);
    } else if (!/^[^@\s<>]+@[^@\s<>]+$/.test(email) || email !== email.toLowerCase()) {
      say(`user email ${JSON.stringify(email)} is not a valid lowercase address`);
    }
    if (body.password !== undefined && body.auth_data !== undefined) {
      say("a user may have a password or auth_data, not both");
    }
    for (
      const [field, max] of [
        ["nickname", LIMITS.nicknameRunes],
        ["first_name", LIMITS.firstNameRunes],
        ["last_name", LIMITS.lastNameRunes],
        ["position", LIMITS.positionRunes],
      ] as const
    ) {
      this.#longText(body[field], max, `user ${field}`, say);
    }
    this.#roles(body.roles, "user roles", say);
    if (body.teams === undefined) return;
    if (!Array.isArray(body.teams)) return say("user teams must be a list");
    for (const team of body.teams) {
      if (!isObject(team) || typeof team.name !== "string") {
        say("a team membership without a team name");
        continue;
      }
      const teamName = team.name.toLowerCase();
      if (!this.#teams.has(teamName)) say(`user's team ${team.name} is not in the file`);
      this.#roles(team.roles, "team roles", say);
      if (team.channels === undefined) continue;
      if (!Array.isArray(team.channels)) {
        say("user channels must be a list");
        continue;
      }
      for (const channel of team.channels) {
        if (!isObject(channel) || typeof channel.name !== "string") {
          say("a channel membership without a channel name");
          continue;
        }
        if (!this.#channels.has(`${teamName}/${channel.name.toLowerCase()}`)) {
          say(`user's channel ${team.name}/${channel.name} is not in the file`);
        }
        this.#roles(channel.roles, "channel roles", say);
      }
    }
  }

  #roles(roles: unknown, what: string, say: (message: string) => void): void {
    if (roles === undefined) return;
    if (typeof roles !== "string") return say(`${what} must be text`);
    const unknown = roles.split(/\s+/).filter((role) => role !== "" && !ROLES.has(role));
    if (unknown.length) say(`${what} ${JSON.stringify(roles)}: unknown ${unknown.join(", ")}`);
  }

  #knownUser(name: unknown, what: string, say: (message: string) => void): void {
    if (typeof name !== "string" || name === "") return say(`${what} has no user`);
    if (!this.#users.has(name.toLowerCase())) say(`${what}'s user ${name} is not in the file`);
  }

  /** The fields posts, direct posts and replies share (ValidateReplyImportData and kin). */
  #postFields(
    body: Json,
    parentCreateAt: number | undefined,
    what: string,
    say: (m: string) => void,
  ): void {
    this.#knownUser(body.user, what, say);
    if (typeof body.message !== "string") say(`${what} has no message`);
    else if (runes(body.message) > LIMITS.messageRunes) {
      say(`${what} message is longer than ${LIMITS.messageRunes} characters`);
    }
    const createAt = body.create_at;
    if (typeof createAt !== "number" || createAt === 0) {
      say(`${what} needs a non-zero create_at`);
    }
    const time = typeof createAt === "number" ? createAt : 0;
    if (body.props !== undefined) {
      if (!isObject(body.props)) say(`${what} props must be an object`);
      else if (runes(JSON.stringify(body.props)) > LIMITS.propsRunes) {
        say(`${what} props are longer than ${LIMITS.propsRunes} characters`);
      }
    }
    if (body.reactions !== undefined) {
      if (!Array.isArray(body.reactions)) say(`${what} reactions must be a list`);
      else {
        for (const reaction of body.reactions) {
          this.counts.reactions++;
          if (!isObject(reaction)) {
            say(`${what} has a reaction that is not an object`);
            continue;
          }
          this.#knownUser(reaction.user, `${what} reaction`, say);
          const emoji = reaction.emoji_name;
          if (typeof emoji !== "string" || emoji === "" || runes(emoji) > LIMITS.emojiName) {
            say(`${what} reaction emoji_name must be 1 to ${LIMITS.emojiName} characters`);
          }
          const at = reaction.create_at;
          if (typeof at !== "number" || at === 0) {
            say(`${what} reaction needs a non-zero create_at`);
          } else if (at < time) say(`${what} reaction is older than its post`);
        }
      }
    }
    if (body.attachments !== undefined) {
      if (!Array.isArray(body.attachments)) say(`${what} attachments must be a list`);
      else {
        if (body.attachments.length > LIMITS.attachments) {
          say(
            `${what} has ${body.attachments.length} attachments; a post takes ${LIMITS.attachments}`,
          );
        }
        for (const attachment of body.attachments) {
          this.counts.attachments++;
          this.#path(isObject(attachment) ? attachment.path : undefined, `${what} attachment`, say);
        }
      }
    }
    if (parentCreateAt !== undefined) return;
    if (body.replies === undefined) return;
    if (!Array.isArray(body.replies)) return say(`${what} replies must be a list`);
    for (const [i, reply] of body.replies.entries()) {
      this.counts.replies++;
      if (!isObject(reply)) {
        say(`${what} reply ${i + 1} is not an object`);
        continue;
      }
      if (reply.replies !== undefined) say(`${what} reply ${i + 1} has replies of its own`);
      this.#postFields(reply, time, `${what} reply ${i + 1}`, say);
    }
  }

  #post(body: Json, say: (message: string) => void): void {
    this.counts.posts++;
    const team = typeof body.team === "string" ? body.team.toLowerCase() : undefined;
    const channel = typeof body.channel === "string" ? body.channel.toLowerCase() : undefined;
    if (team === undefined || !this.#teams.has(team)) {
      say(`post's team ${JSON.stringify(body.team)} is not in the file`);
    } else if (channel === undefined || !this.#channels.has(`${team}/${channel}`)) {
      say(`post's channel ${JSON.stringify(body.channel)} is not in the file`);
    }
    this.#postFields(body, undefined, "post", say);
  }

  #members(value: unknown, what: string, say: (message: string) => void): string | undefined {
    if (!Array.isArray(value) || !value.every((name) => typeof name === "string")) {
      say(`${what} needs a list of usernames`);
      return undefined;
    }
    const count = value.length;
    if (count !== 2 && (count < LIMITS.groupMin || count > LIMITS.groupMax)) {
      say(
        `${what} has ${count} members: 2 for a direct message, ${LIMITS.groupMin} to ` +
          `${LIMITS.groupMax} for a group`,
      );
    }
    for (const name of value) this.#knownUser(name, what, say);
    return value.map((name) => name.toLowerCase()).sort().join(",");
  }

  #directChannel(body: Json, say: (message: string) => void): void {
    this.counts.directChannels++;
    const key = this.#members(body.members, "direct_channel", say);
    if (key !== undefined) this.#directs.add(key);
    this.#longText(body.header, LIMITS.channelHeaderRunes, "direct_channel header", say);
  }

  #directPost(body: Json, say: (message: string) => void): void {
    this.counts.directPosts++;
    const key = this.#members(body.channel_members, "direct_post", say);
    if (key !== undefined && !this.#directs.has(key)) {
      say(`direct_post's channel (${key}) has no direct_channel line`);
    }
    this.#postFields(body, undefined, "direct_post", say);
  }
}
