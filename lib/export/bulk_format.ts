/**
 * Mattermost's bulk-import format (JSONL, version 1), pure: its limits and naming rules as the
 * server checks them, and stored posts turned into import objects. Sources, all in
 * mattermost/mattermost: server/channels/app/imports/import_validators.go (the checks),
 * import_types.go (the fields), server/channels/app/import.go (line size, type order),
 * import_functions.go (how lines become posts) and server/public/model/{post,user,team,
 * channel,utils,emoji}.go (the limits).
 */
import type { Post } from "../model/records.ts";

/** The order of line types; each type is one contiguous run (the importer waits between runs). */
export const LINE_TYPES = [
  "version",
  "emoji",
  "team",
  "channel",
  "user",
  "post",
  "direct_channel",
  "direct_post",
] as const;
export type LineType = typeof LINE_TYPES[number];

export const LIMITS = {
  /** model.PostMessageMaxRunesV2: 65,535 bytes at 4 bytes per rune. */
  messageRunes: 16_383,
  /**
   * Attachments one post takes: Post.IsValid caps the JSON of its file ids at 300 runes
   * (model.PostFileidsMaxRunes), which 10 ids of 26 characters fit and 11 do not. mmetl uses 5,
   * the web app's limit when it was written (MM-19474); the server itself takes 10.
   */
  attachments: 10,
  /** import.go maxScanTokenSize: a line and its "\n" must fit the scanner's 16 MiB buffer. */
  lineBytes: 16 * 1024 * 1024 - 1,
  /** model.PostPropsMaxRunes, for the props' JSON. */
  propsRunes: 800_000,
  teamNameMin: 2,
  teamName: 64,
  teamDisplayRunes: 64,
  teamDescription: 255,
  channelName: 64,
  channelDisplayRunes: 64,
  channelHeaderRunes: 1024,
  channelPurposeRunes: 250,
  username: 64,
  email: 128,
  nicknameRunes: 64,
  firstNameRunes: 64,
  lastNameRunes: 64,
  positionRunes: 128,
  emojiName: 64,
  /** model.ChannelGroupMinUsers and ChannelGroupMaxUsers; a DM has exactly 2. */
  groupMin: 3,
  groupMax: 8,
} as const;

/** model/utils.go validAlphaNum (team names). */
const TEAM_NAME = /^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$/;
/** model/utils.go validSimpleAlphaNum (channel names, lowercased by the validator). */
const CHANNEL_NAME = /^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]*$/;
/** model/user.go validUsernameChars and restrictedUsernames. */
const USERNAME = /^[a-z0-9.\-_]+$/;
const RESTRICTED_USERNAMES = new Set(["all", "channel", "matterbot", "system"]);
/** model/utils.go reservedName: a team name may not start with any of these. */
const RESERVED_TEAM_PREFIXES = [
  "admin",
  "api",
  "channel",
  "claim",
  "error",
  "files",
  "help",
  "landing",
  "login",
  "mfa",
  "oauth",
  "plug",
  "plugins",
  "post",
  "signup",
  "boards",
  "playbooks",
];
/** model/emoji.go: letters, digits, "-", "+", "_". */
const EMOJI_NAME = /^[a-zA-Z0-9\-+_]+$/;
/** The roles this export writes; model.IsValidUserRoles accepts these built-in roles. */
export const ROLES = new Set([
  "system_user",
  "team_user",
  "team_admin",
  "channel_user",
  "channel_admin",
]);

/** Characters as Go's utf8.RuneCountInString counts them (code points). */
export function runes(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** `text` cut to at most `max` code points. */
export function truncateRunes(text: string, max: number): string {
  return runes(text) <= max ? text : [...text].slice(0, max).join("");
}

export function isValidTeamName(name: string): boolean {
  const lower = name.toLowerCase();
  return name.length >= LIMITS.teamNameMin && name.length <= LIMITS.teamName &&
    TEAM_NAME.test(lower) && !RESERVED_TEAM_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

export function isValidChannelName(name: string): boolean {
  return name.length >= 1 && name.length <= LIMITS.channelName &&
    CHANNEL_NAME.test(name.toLowerCase());
}

export function isValidUsername(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.length >= 1 && lower.length <= LIMITS.username && USERNAME.test(lower) &&
    !RESTRICTED_USERNAMES.has(lower);
}

export function isValidEmojiName(name: string): boolean {
  return name.length >= 1 && name.length <= LIMITS.emojiName && EMOJI_NAME.test(name);
}

/**
 * A message cut into pieces of at most `maxRunes` code points, as mmetl does
 * (SplitTextIntoChunks): each cut is made after the last line break, else the last space,
 * within the 100 code points before the limit, else at the limit. The pieces joined give the
 * message back exactly.
 */
export function splitMessage(text: string, maxRunes: number = LIMITS.messageRunes): string[] {
  if (runes(text) <= maxRunes) return [text];
  const chars = [...text];
  const pieces: string[] = [];
  for (let start = 0; start < chars.length;) {
    const end = start + maxRunes;
    if (end >= chars.length) {
      pieces.push(chars.slice(start).join(""));
      break;
    }
    const searchFrom = Math.max(start, end - 100);
    let cut = end;
    const newline = chars.lastIndexOf("\n", end - 1);
    if (newline >= searchFrom) cut = newline + 1;
    else {
      const space = chars.lastIndexOf(" ", end - 1);
      if (space >= searchFrom) cut = space + 1;
    }
    pieces.push(chars.slice(start, cut).join(""));
    start = cut;
  }
  return pieces;
}

export interface ImportReaction {
  user: string;
  emoji_name: string;
  create_at: number;
}

export interface ImportAttachment {
  /** Relative to the archive's `data/` folder, which the importer joins it to. */
  path: string;
}

/** The fields a post and a reply share (ReplyImportData; PostImportData adds where it goes). */
export interface ImportReply {
  user: string;
  message: string;
  create_at: number;
  type?: string;
  edit_at?: number;
  is_pinned?: boolean;
  props?: Record<string, unknown>;
  reactions?: ImportReaction[];
  attachments?: ImportAttachment[];
}

/** What the converter needs from the rest of the export. */
export interface PostContext {
  username(userId: string): string;
  /** Attachment paths (under `data/`) of the files the backup holds for this post. */
  attachments: string[];
}

/**
 * A stored post as import fields, and the replies that carry what one post cannot: the rest
 * of a message longer than the limit (a millisecond apart, in order, as mmetl does), then the
 * attachments beyond the limit, a group per reply. Reactions and the other fields stay on the
 * first part.
 */
export function importPost(post: Post, context: PostContext): {
  fields: ImportReply;
  extra: ImportReply[];
} {
  const user = context.username(post.user_id);
  const pieces = splitMessage(typeof post.message === "string" ? post.message : "");
  const fields: ImportReply = {
    user,
    message: pieces[0] as string,
    create_at: post.create_at,
  };
  if (typeof post.type === "string" && post.type !== "") fields.type = post.type;
  if (typeof post.edit_at === "number" && post.edit_at > 0) fields.edit_at = post.edit_at;
  if (post.is_pinned === true) fields.is_pinned = true;
  const props = post.props;
  if (props && typeof props === "object" && Object.keys(props).length > 0) {
    fields.props = props as Record<string, unknown>;
  }
  const reactions = (post.metadata?.reactions ?? []).map((reaction) => ({
    user: context.username(reaction.user_id),
    emoji_name: reaction.emoji_name,
    // The importer refuses a reaction older than its post, and a zero time.
    create_at: Math.max(
      typeof reaction.create_at === "number" ? reaction.create_at : 0,
      post.create_at,
    ),
  }));
  if (reactions.length) fields.reactions = reactions;
  const groups: ImportAttachment[][] = [];
  for (let i = 0; i < context.attachments.length; i += LIMITS.attachments) {
    groups.push(
      context.attachments.slice(i, i + LIMITS.attachments).map((path) => ({ path })),
    );
  }
  if (groups[0]) fields.attachments = groups[0];
  const extra: ImportReply[] = [];
  let time = post.create_at;
  for (const message of pieces.slice(1)) extra.push({ user, message, create_at: ++time });
  for (const attachments of groups.slice(1)) {
    extra.push({ user, message: "", create_at: ++time, attachments });
  }
  return { fields, extra };
}
