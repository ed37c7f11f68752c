/**
 * Where each object lives in the data dir, found by id so that a rename on the server keeps
 * the existing folder and files, plus our own sync state under `.matterbak/`.
 */
import zlib from "node:zlib";
import { isMattermostId, isPostTime, isTime } from "../model/records.ts";
import { isObject } from "../util/objects.ts";
import { isContainedComponent } from "./safe_name.ts";
import { type FsRecorder, syncStep, writeStep } from "./atomic_write.ts";
import { type DataDir, isFileEntry, type RelPath, UnfitFileError } from "./data_dir.ts";
import {
  CHANNEL_STATES_DIR,
  channelStateFile,
  DIRS,
  idBase,
  idPrefix,
  JSON_EXT,
  MEMBERS_SUFFIX,
  RUN_STATE_FILE,
  seenLogFile,
  THREADS_SUFFIX,
} from "./layout.ts";

/** Per-channel sync state, kept in the data dir and written after the work it describes. */
export interface ChannelState {
  version: 1;
  channelId: string;
  /** Posts folder relative to the data dir, `/`-separated (stable across renames). */
  dir: string;
  /** True once the whole history down to the first post is stored. */
  historyComplete: boolean;
  /** While the history is incomplete: the crawl continues with `before=` this post. */
  cursor?: string;
  /** The cursor post's `create_at`, for saying where a resumed crawl continues. */
  cursorAt?: number | undefined;
  /**
   * Post files in the folder, as of this state (for messages and the progress display; a
   * crash can leave it a few pages behind).
   */
  posts?: number;
  /** Every post change with `update_at` <= watermark is in the backup (server time, ms). */
  watermark: number;
  /** Channel-posts ETag seen when the watermark was taken; a 304 means nothing changed. */
  etag?: string;
  /**
   * Set when the watermark moves: a change with an older `update_at` may still commit (a slow
   * transaction, a lagging replica) without changing the ETag. Until a `since` asked at or
   * after this time (wall clock, ms) has found nothing new, each run asks `since` whatever the
   * ETag says; then it is cleared.
   */
  settleBy?: number;
  /** Attachments that failed; retried on the next run. */
  pendingFiles: PendingFile[];
  /**
   * Attachments given up (the server answered 404 in NOT_FOUND_RUNS runs): not asked for again
   * when their post comes back in a later answer (the overlap of `since` sends it again).
   */
  givenUpFiles?: string[];
  /**
   * The user's own posts whose edit history is still to be asked for: each edit the backup sees
   * of one (or one first seen edited) asks once, and a request that failed is retried next run.
   */
  pendingHistory?: PendingHistory[];
  /**
   * The crawl in progress started from the newest post and reconciles the stored posts with
   * the server's; the ids it has seen are in the channel's seen log (see SeenLog).
   */
  reconciling?: true;
  /**
   * While reconciling: which seen log this crawl writes (the token in its header) and how many
   * lines it held on disk when this state was written. A log of another crawl, or with fewer
   * valid lines, cannot be trusted.
   */
  seenLog?: SeenLogMark;
  /** The threads file lags behind the posts (a crash mid-crawl): rebuild it from them. */
  threadsStale?: boolean;
  /**
   * Every post file in the folder was named by this tool (UTC time of `create_at`), so a post's
   * file follows from the post. Set only for folders this tool started empty; the others
   * (matterbak's local-time names, or states from version 0.1.0) are listed on each run.
   */
  ownPostNames?: true;
}

export interface SeenLogMark {
  token: string;
  lines: number;
}

export interface PendingFile {
  fileId: string;
  postId: string;
  /** Runs in a row in which the server answered 404 for it (given up at NOT_FOUND_RUNS). */
  notFoundRuns?: number;
}

export interface PendingHistory {
  postId: string;
  /** The post's `create_at`: where its file is (see postFileName). */
  createAt: number;
}

/**
 * The `<id>__<name>` base of an object in `parent`: an existing folder for that id first,
 * then an existing `<base>.json`, else a new base from the current name.
 */
export async function findBase(
  dataDir: DataDir,
  parent: RelPath,
  id: string,
  currentName: string,
): Promise<string> {
  const fresh = idBase(id, currentName);
  const entries = (await dataDir.list(parent)).filter((e) => idPrefix(e.name) === id);
  const dirs = entries.filter((e) => e.isDirectory).map((e) => e.name).sort();
  if (dirs.length > 0) return dirs.includes(fresh) ? fresh : dirs[0] as string;
  const jsons = entries.filter((e) =>
    e.isFile && e.name.endsWith(JSON_EXT) && !e.name.endsWith(MEMBERS_SUFFIX) &&
    !e.name.endsWith(THREADS_SUFFIX)
  ).map((e) => e.name.slice(0, -JSON_EXT.length)).sort();
  if (jsons.length > 0) return jsons.includes(fresh) ? fresh : jsons[0] as string;
  return fresh;
}

/** Bases of all `<id>__<name>.json` records in a folder (users, emojis), by id. */
export async function indexBases(dataDir: DataDir, parent: RelPath): Promise<Map<string, string>> {
  const bases = new Map<string, string>();
  for (const entry of await dataDir.list(parent)) {
    const id = idPrefix(entry.name);
    if (!id || !isFileEntry(entry) || !entry.name.endsWith(JSON_EXT)) continue;
    const base = entry.name.slice(0, -JSON_EXT.length);
    // Keep the shortest base: `<id>__bob.json` rather than a stray `<id>__bob__x.json`.
    const known = bases.get(id);
    if (known === undefined || base.length < known.length) bases.set(id, base);
  }
  return bases;
}

/** A state file that is there but cannot be used, and why (naming the file). */
export interface DamagedState {
  damaged: string;
}

/**
 * The channel's sync state; undefined when there is none (a new channel, or a folder the
 * original matterbak wrote). One that is there but unreadable or wrong is reported as
 * damaged, never used: its values would be sent to the server or steer the crawl.
 */
export async function readChannelState(
  dataDir: DataDir,
  channelId: string,
): Promise<ChannelState | DamagedState | undefined> {
  const path = channelStateFile(channelId);
  let text: string | undefined;
  try {
    text = await dataDir.readText(path);
  } catch (error) {
    if (error instanceof UnfitFileError) return { damaged: `${path.join("/")}: ${error.reason}` };
    throw error;
  }
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { damaged: `${path.join("/")}: ${text === "" ? "empty" : "not valid JSON"}` };
  }
  const problem = channelStateProblem(value, channelId);
  return problem ? { damaged: `${path.join("/")}: ${problem}` } : value as ChannelState;
}

/** What is wrong with a parsed channel state, if anything (pure). */
export function channelStateProblem(value: unknown, channelId: string): string | undefined {
  if (!isObject(value)) return "not an object";
  if (value.version !== 1) return `unknown version ${JSON.stringify(value.version)}`;
  if (value.channelId !== channelId) return `it names channel ${JSON.stringify(value.channelId)}`;
  const dir = value.dir;
  if (
    typeof dir !== "string" ||
    !dir.split("/").every((part) => isContainedComponent(part) && part !== ".")
  ) {
    return `"dir" ${JSON.stringify(dir)} is not a folder inside the data dir`;
  }
  if (!isChannelFolder(dir.split("/"), channelId)) {
    return `"dir" ${JSON.stringify(dir)} is not a folder of this channel`;
  }
  if (typeof value.historyComplete !== "boolean") return '"historyComplete" is not true or false';
  if (!isTime(value.watermark)) return `"watermark" ${JSON.stringify(value.watermark)} is no time`;
  if (value.cursor !== undefined && !isMattermostId(value.cursor)) {
    return `"cursor" ${JSON.stringify(value.cursor)} is no post id`;
  }
  if (value.etag !== undefined && !(typeof value.etag === "string" && ETAG.test(value.etag))) {
    return '"etag" is not a header value (printable ASCII)';
  }
  if (value.settleBy !== undefined && !isTime(value.settleBy)) {
    return `"settleBy" ${JSON.stringify(value.settleBy)} is no time`;
  }
  if (value.cursorAt !== undefined && !isTime(value.cursorAt)) {
    return `"cursorAt" ${JSON.stringify(value.cursorAt)} is no time`;
  }
  if (value.posts !== undefined && !(Number.isInteger(value.posts) && Number(value.posts) >= 0)) {
    return `"posts" ${JSON.stringify(value.posts)} is no count`;
  }
  const pending = value.pendingFiles;
  if (
    !Array.isArray(pending) ||
    !pending.every((p) =>
      isObject(p) && isMattermostId(p.fileId) && typeof p.postId === "string" &&
      (p.notFoundRuns === undefined ||
        (Number.isInteger(p.notFoundRuns) && Number(p.notFoundRuns) > 0))
    )
  ) {
    return '"pendingFiles" is not a list of attachments';
  }
  if (
    value.givenUpFiles !== undefined &&
    !(Array.isArray(value.givenUpFiles) && value.givenUpFiles.every(isMattermostId))
  ) {
    return '"givenUpFiles" is not a list of file ids';
  }
  const history = value.pendingHistory;
  if (
    history !== undefined &&
    !(Array.isArray(history) &&
      history.every((p) => isObject(p) && isMattermostId(p.postId) && isPostTime(p.createAt)))
  ) {
    return '"pendingHistory" is not a list of posts';
  }
  for (const flag of ["reconciling", "threadsStale", "ownPostNames"]) {
    if (value[flag] !== undefined && typeof value[flag] !== "boolean") {
      return `"${flag}" is not true or false`;
    }
  }
  if (value.seenLog !== undefined && !isSeenLogMark(value.seenLog)) {
    return '"seenLog" is not {token, lines}';
  }
  return undefined;
}

/** ETags are printable ASCII; anything else is no header value (and fails the request). */
const ETAG = /^[\x20-\x7e]{1,512}$/;

/**
 * A channel's posts folder as the sync makes it: `teams/<team>/<chanId>__<name>`, or `direct/`
 * or `groups/` and `<chanId>__<name>` (a group converted to a private channel keeps its
 * folder). Another folder, even inside the data dir, holds other posts: another channel's
 * folder would get this channel's posts mixed in.
 */
function isChannelFolder(parts: string[], channelId: string): boolean {
  if (idPrefix(parts.at(-1) ?? "") !== channelId) return false;
  return parts[0] === DIRS.teams
    ? parts.length === 3
    : parts.length === 2 && (parts[0] === DIRS.direct || parts[0] === DIRS.groups);
}

function isSeenLogMark(value: unknown): value is SeenLogMark {
  return isObject(value) && typeof value.token === "string" && /^[0-9a-f]{16}$/.test(value.token) &&
    Number.isSafeInteger(value.lines) && Number(value.lines) >= 0;
}

export async function writeChannelState(dataDir: DataDir, state: ChannelState): Promise<void> {
  await dataDir.ensureDir(CHANNEL_STATES_DIR);
  await dataDir.writeState(channelStateFile(state.channelId), state);
}

/**
 * The ids of the posts a reconciling crawl has seen, beside the channel's state, so that a
 * crawl interrupted and resumed can still tell which stored posts the server no longer lists.
 * Synced before each checkpoint of the state that refers to it, which records the log's token
 * and how many lines it then held (`seenLog`).
 *
 * A post missing from the log is marked deleted, so a damaged log would mark live posts
 * deleted: the log is checked before it is trusted (see `checkSeenLog`). Its header names the
 * channel and a token of its own crawl, and each line is an id and its CRC-32: zeros, a
 * flipped byte, a lost tail, another crawl's or another channel's log all fail the check.
 */
export class SeenLog {
  private constructor(
    readonly ids: Set<string>,
    readonly token: string,
    /** Lines in the log (an id seen twice has two). */
    public lines: number,
    readonly file: Deno.FsFile,
    readonly path: string,
    readonly recorder: FsRecorder | undefined,
  ) {}

  /** A new log holding only its header (replacing any old one). */
  static async create(dataDir: DataDir, channelId: string): Promise<SeenLog> {
    const token = Array.from(crypto.getRandomValues(new Uint8Array(8)))
      .map((byte) => byte.toString(16).padStart(2, "0")).join("");
    await dataDir.ensureDir(CHANNEL_STATES_DIR);
    await dataDir.writeText(seenLogFile(channelId), seenLogHeader(channelId, token));
    const file = await dataDir.openForAppend(seenLogFile(channelId));
    const path = dataDir.path(seenLogFile(channelId));
    return new SeenLog(new Set(), token, 0, file, path, dataDir.recorder);
  }

  /**
   * The log of an interrupted crawl, checked against the channel and what its state vouches
   * for: `problem` says why it cannot be trusted (a missing log included).
   */
  static async resume(
    dataDir: DataDir,
    channelId: string,
    vouched: SeenLogMark | undefined,
  ): Promise<SeenLog | { problem: string }> {
    let text: string | undefined;
    try {
      text = await dataDir.readText(seenLogFile(channelId));
    } catch (error) {
      if (error instanceof UnfitFileError) return { problem: `it is ${error.reason}` };
      throw error;
    }
    if (text === undefined) return { problem: "it is missing" };
    if (vouched === undefined) return { problem: "its state does not vouch for it" };
    const checked = checkSeenLog(text, channelId, vouched);
    if ("problem" in checked) return checked;
    const file = await dataDir.openForAppend(seenLogFile(channelId));
    // A line a crash cut short goes, so that the next append starts a line of its own.
    if (checked.length < text.length) await file.truncate(checked.length);
    const path = dataDir.path(seenLogFile(channelId));
    return new SeenLog(checked.ids, vouched.token, checked.lines, file, path, dataDir.recorder);
  }

  static async remove(dataDir: DataDir, channelId: string): Promise<void> {
    await dataDir.remove(seenLogFile(channelId));
  }

  async add(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) this.ids.add(id);
    const text = ids.map(seenLogLine).join("");
    await writeStep(this.file, this.path, new TextEncoder().encode(text), this.recorder);
    this.lines += ids.length;
  }

  /** Makes the log durable; returns what a state written now may vouch for. */
  async sync(): Promise<SeenLogMark> {
    await syncStep(this.file, this.path, this.recorder);
    return { token: this.token, lines: this.lines };
  }

  close(): void {
    this.file.close();
  }
}

function seenLogHeader(channelId: string, token: string): string {
  return `matterbak seen log 1 ${channelId} ${token}\n`;
}

function crc32Hex(text: string): string {
  return (zlib.crc32(text) >>> 0).toString(16).padStart(8, "0");
}

function seenLogLine(id: string): string {
  return `${id} ${crc32Hex(id)}\n`;
}

const SEEN_LINE = /^([a-z0-9]{26}) ([0-9a-f]{8})$/;

/**
 * The ids of a seen log, or why it cannot be trusted. Pure. The header must name the channel
 * and the token its state vouches for; every complete line must be an id with its checksum,
 * at least as many as the state counts. Only an unfinished last line (an append a crash cut
 * short, after the last checkpoint) is ignored; `length` is where the good part ends.
 */
export function checkSeenLog(
  text: string,
  channelId: string,
  vouched: SeenLogMark,
): { ids: Set<string>; lines: number; length: number } | { problem: string } {
  const header = seenLogHeader(channelId, vouched.token);
  if (!text.startsWith(header)) {
    return { problem: "it does not start with the header its state expects" };
  }
  const lines = text.slice(header.length).split("\n");
  lines.pop(); // "" after the last newline, else the unfinished line
  const ids = new Set<string>();
  for (const [index, line] of lines.entries()) {
    const match = SEEN_LINE.exec(line);
    if (!match || crc32Hex(match[1] as string) !== match[2]) {
      return { problem: `line ${index + 2} is damaged` };
    }
    ids.add(match[1] as string);
  }
  if (lines.length < vouched.lines) {
    return { problem: `it holds ${lines.length} ids where its state counts ${vouched.lines}` };
  }
  // Header and lines are ASCII: their length in characters is their length in bytes.
  const length = lines.reduce((sum, line) => sum + line.length + 1, header.length);
  return { ids, lines: lines.length, length };
}

/** Run-wide state: the users watermark for `POST /users/ids?since=`. */
export interface RunState {
  version: 1;
  usersWatermark: number;
}

/**
 * The run state; a missing, corrupt or unknown one starts over from a watermark of 0 (every
 * user is asked for again), and the end of the run writes a good one.
 */
export async function readRunState(dataDir: DataDir): Promise<RunState> {
  const state = await dataDir.readJson<unknown>(RUN_STATE_FILE);
  return isRunState(state) ? state : { version: 1, usersWatermark: 0 };
}

export function isRunState(value: unknown): value is RunState {
  return isObject(value) && value.version === 1 && isTime(value.usersWatermark);
}

export async function writeRunState(dataDir: DataDir, state: RunState): Promise<void> {
  await dataDir.ensureDir([DIRS.state]);
  await dataDir.writeState(RUN_STATE_FILE, state);
}

/** Relative `/`-separated form of a path, for state files. */
export function relPathString(parts: RelPath): string {
  return parts.join("/");
}

export function relPathFromString(text: string): RelPath {
  return text.split("/");
}
