/**
 * One file of `matterbak verify`, read and checked on its own: its size and SHA-256 as read,
 * the shape of a record from the bytes already read (no second read), and the few facts the
 * checks across files need (a live post's author and attachments, a file info's size, a
 * threads map, a sync state's pending attachments). What does not depend on other files is
 * decided here, so that it runs in verify's workers (check_worker.ts) as well as inline; the
 * comparison with the manifest and the zip stays with the Verification, which holds them.
 */
import {
  isMattermostId,
  type Raw,
  validChannel,
  validEmoji,
  validFileInfo,
  validMember,
  validTeam,
  validUser,
} from "../model/records.ts";
import { DataDir, oversizeReason, UnfitFileError } from "../store/data_dir.ts";
import { classifyPath, type PathRole, postIdFromFileName } from "../store/layout.ts";
import { hashFile, isThreadsMap, parseHistory, parseStoredPost } from "../store/reader.ts";
import { channelStateProblem, isRunState, relPathFromString } from "../store/state.ts";
import { describeError } from "../util/errors.ts";
import { isObject } from "../util/objects.ts";

/** What a record says that the checks across files need. */
export type RecordFact =
  | {
    kind: "post";
    /** The author; empty when the post names none. */
    author: string;
    attachments: Array<{ fileId: string; name: string | undefined; archived: boolean }>;
  }
  | { kind: "fileInfo"; size: number }
  | { kind: "threads"; map: Record<string, string[]> }
  | { kind: "channelState"; dir: string; pending: string[]; givenUp: string[] };

/**
 * The outcomes of a batch of files, in its order, packed: a few arrays and strings a batch
 * rather than objects a file (200,000 files' objects, passed between threads, cost more CPU
 * than their checks).
 */
export interface Outcomes {
  /** The SHA-256 of each file read, 64 hex digits each (blanks for a file not read). */
  sha256: string;
  /** Bytes read; or MISSING, or UNREADABLE (why in `notes`). */
  sizes: Float64Array;
  /** Modification times in ms (with `withTime`; else empty). */
  mtimes: Float64Array;
  /**
   * The author of each live post with no attachment (most files of a backup), ID_LENGTH
   * characters each; blanks for other files, whose facts are in `notes`.
   */
  authors: string;
  /** The rest, rare, by index: what is wrong with a record, its facts, why it was unreadable. */
  notes: Array<[index: number, note: Note]>;
}

export interface Note {
  /** What is wrong with the record's content. */
  problem?: string;
  /** Only for a record whose shape is right, and only live posts. */
  fact?: RecordFact;
  unreadable?: string;
}

export const MISSING = -1;
export const UNREADABLE = -2;
/** The length of a Mattermost id (isMattermostId). */
export const ID_LENGTH = 26;
const NO_AUTHOR = " ".repeat(ID_LENGTH);
const NO_HASH = " ".repeat(64);

export interface CheckOptions {
  /** The modification times too (an fstat more per file). */
  withTime: boolean;
  signal?: AbortSignal | undefined;
}

/**
 * Reads and checks the files at `paths` (relative, `/`-separated) in order. Each folder is
 * checked once for links before its files are opened (DataDir.prepareReads), as every read of
 * the data dir.
 */
export async function checkFiles(
  dataDir: DataDir,
  paths: readonly string[],
  options: CheckOptions,
): Promise<Outcomes> {
  const hashes: string[] = [];
  const authors: string[] = [];
  const sizes = new Float64Array(paths.length);
  const mtimes = new Float64Array(options.withTime ? paths.length : 0);
  const notes: Outcomes["notes"] = [];
  let folder: string | undefined;
  for (let i = 0; i < paths.length; i++) {
    const path = paths[i]!;
    const parts = relPathFromString(path);
    // Once a folder (a batch holds the files of a few): a folder that cannot be prepared (a
    // link) is read file by file, each read saying why.
    if (!path.startsWith(folder ?? "\0") || path.indexOf("/", folder!.length) !== -1) {
      folder = path.slice(0, path.lastIndexOf("/") + 1);
      const preparing = dataDir.prepareReads(parts.slice(0, -1));
      if (preparing) await preparing.catch(() => {});
    }
    const role = classifyPath(parts);
    let author = NO_AUTHOR;
    try {
      // Synchronous for a small file; a promise only for a large one (awaiting one per small
      // file cost more than its read).
      const read = hashFile(dataDir, parts, {
        keepBytes: isRecord(role),
        withTime: options.withTime,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const hashed = read instanceof Promise ? await read : read;
      hashes.push(hashed.sha256);
      sizes[i] = hashed.size;
      if (hashed.mtime !== undefined) mtimes[i] = hashed.mtime;
      // A record the backup, the view and the export would refuse to read.
      const oversize = isRecord(role) ? oversizeReason(hashed.size) : undefined;
      if (oversize) notes.push([i, { problem: oversize }]);
      if (hashed.bytes) {
        const note = checkRecord(role, path, hashed.bytes);
        const fact = note.fact;
        if (
          fact?.kind === "post" && fact.attachments.length === 0 && isMattermostId(fact.author)
        ) {
          author = fact.author;
          delete note.fact;
        }
        if (note.problem !== undefined || note.fact) notes.push([i, note]);
      }
    } catch (error) {
      hashes.push(NO_HASH);
      if (error instanceof Deno.errors.NotFound) sizes[i] = MISSING;
      else {
        sizes[i] = UNREADABLE;
        const why = error instanceof UnfitFileError ? error.reason : describeError(error);
        notes.push([i, { unreadable: why }]);
      }
    }
    authors.push(author);
  }
  return { sha256: hashes.join(""), sizes, mtimes, authors: authors.join(""), notes };
}

/** Files whose content is a JSON record this tool checks the shape of. */
function isRecord(role: PathRole): boolean {
  return !["fileData", "teamIcon", "userImage", "emojiImage", "other"].includes(role.kind);
}

const decoder = new TextDecoder();

/** What is wrong with a record's content, if anything; its facts when it is right. */
export function checkRecord(
  role: PathRole,
  path: string,
  bytes: Uint8Array,
): Note {
  const text = decoder.decode(bytes);
  if (role.kind === "post") {
    const parsed = parseStoredPost(
      text,
      postIdFromFileName(path.slice(path.lastIndexOf("/") + 1)),
    );
    if ("reason" in parsed) return { problem: parsed.reason };
    const post = parsed.post;
    if (post.channel_id !== role.channelId) {
      return { problem: `holds a post of channel ${post.channel_id}, not of its folder's` };
    }
    if (post.delete_at > 0) return {};
    const author = post.user_id ?? "";
    // Most posts have no attachment: no collections made for them.
    const fileIds = Array.isArray(post.file_ids) ? post.file_ids : [];
    if (!post.metadata?.files?.length && fileIds.length === 0) {
      return { fact: { kind: "post", author, attachments: [] } };
    }
    const infos = new Map((post.metadata?.files ?? []).map((info) => [info.id, info]));
    const ids = new Set([
      ...fileIds.filter(isMattermostId),
      ...infos.keys(),
    ]);
    const attachments = [...ids].map((fileId) => {
      const info = infos.get(fileId);
      return { fileId, name: info?.name, archived: info?.archived === true };
    });
    return { fact: { kind: "post", author, attachments } };
  }
  if (role.kind === "history") {
    const parsed = parseHistory(text, role.postId);
    return "reason" in parsed ? { problem: parsed.reason } : {};
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: text.length === 0 ? "empty file" : "not valid JSON" };
  }
  const problem = (message: string | undefined) =>
    message === undefined ? {} : { problem: message };
  switch (role.kind) {
    case "channel":
      return problem(recordProblem(value, validChannel, "a channel record", role.channelId));
    case "team":
      return problem(recordProblem(value, validTeam, "a team record", role.teamId));
    case "user":
      return problem(recordProblem(value, validUser, "a user record", role.userId));
    case "emoji":
      return problem(recordProblem(value, validEmoji, "an emoji record", role.emojiId));
    case "fileInfo": {
      const message = recordProblem(value, validFileInfo, "a file info", role.fileId);
      return message === undefined
        ? { fact: { kind: "fileInfo", size: (value as Raw).size as number } }
        : { problem: message };
    }
    case "channelMembers":
    case "teamMembers":
      return Array.isArray(value) && value.every((m) => isObject(m) && validMember(m))
        ? {}
        : { problem: "not a list of members" };
    case "threads":
      return isThreadsMap(value)
        ? { fact: { kind: "threads", map: value } }
        : { problem: "not a threads map" };
    case "channelState": {
      const message = channelStateProblem(value, role.channelId);
      if (message !== undefined) return { problem: message };
      const state = value as {
        dir: string;
        pendingFiles: Array<{ fileId: string }>;
        givenUpFiles?: string[];
      };
      return {
        fact: {
          kind: "channelState",
          dir: state.dir,
          pending: state.pendingFiles.map((pending) => pending.fileId),
          givenUp: state.givenUpFiles ?? [],
        },
      };
    }
    case "runState":
      return isRunState(value)
        ? {}
        : { problem: "not the run state (version 1, a users watermark)" };
    default:
      return {};
  }
}

function recordProblem(
  value: unknown,
  valid: (value: Raw) => boolean,
  what: string,
  id: string,
): string | undefined {
  if (!isObject(value) || !valid(value)) return `not ${what}`;
  return value.id === id
    ? undefined
    : `holds ${value.id}, not the ${what.split(" ").at(-1)} its name says`;
}
