/**
 * `matterbak verify`: proves a backup intact or names what is not, cheapest checks first (as
 * restic's check): what the data dir holds against its manifest (missing, unexpected and
 * leftover temporary files, from the names alone), then every file read through (or a random
 * share of them): its size and SHA-256 against the manifest, the shape of every record, and
 * what the records say of each other (attachments of live posts, threads, authors), then the
 * zip. What is damaged or missing is recorded by id in `.matterbak/repair.json` for the next
 * backup run to fetch again.
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import {
  isMattermostId,
  type Post,
  type Raw,
  validChannel,
  validEmoji,
  validFileInfo,
  validMember,
  validTeam,
  validUser,
} from "../model/records.ts";
import { isTempName } from "../store/atomic_write.ts";
import { DataDir, type RelPath } from "../store/data_dir.ts";
import {
  CHANNEL_STATES_DIR,
  classifyPath,
  DIRS,
  fileDataName,
  type PathRole,
  postIdFromFileName,
  REPAIR_FILE,
  RUN_STATE_FILE,
} from "../store/layout.ts";
import {
  isStatePath,
  type ManifestEntry,
  type ManifestReader,
  MTIME_MARGIN_MS,
  openManifest,
  pathHash,
} from "../store/manifest.ts";
import {
  type HashedFile,
  hashFile,
  isThreadsMap,
  parseHistory,
  parseStoredPost,
} from "../store/reader.ts";
import { readRepairList, type RepairItem, writeRepairList } from "../store/repair_list.ts";
import { acquireRunLock, type RunLock } from "../store/run_lock.ts";
import {
  channelStateProblem,
  isRunState,
  relPathFromString,
  relPathString,
} from "../store/state.ts";
import { describeError, LockedError, StorageError, UsageError } from "../util/errors.ts";
import { isObject } from "../util/objects.ts";
import { ZipFormatError, ZipReader } from "../zip/reader.ts";
import { zipName } from "../zip/archive.ts";

/**
 * damaged and missing make the exit status 6; unexpected files and warnings (leftover
 * temporary files, gaps the backup knows of, a stale zip) do not.
 */
export type FindingKind = "damaged" | "missing" | "unexpected" | "warning";

export interface Finding {
  kind: FindingKind;
  /** Relative to the data dir, `/`-separated (the zip's own path when the zip is unreadable). */
  path: string;
  reason: string;
}

export interface VerifyOptions {
  dataDir: string;
  zip?: string | undefined;
  /** Percent of the files (by bytes, at random) whose content is read; 100 reads all. */
  sample: number;
  random?: () => number;
  /** Files read at once. */
  concurrency?: number;
  progress?: (progress: VerifyProgress) => void;
  signal?: AbortSignal;
}

export interface VerifyProgress {
  phase: "listing" | "reading" | "zip";
  files: number;
  bytes: number;
}

export interface VerifyReport {
  dataDir: string;
  /** Files of the backup (our own state in `.matterbak/` not counted). */
  files: number;
  /** Bytes read and hashed. */
  bytesRead: number;
  seconds: number;
  sample: number;
  manifest: "complete" | "none" | "interrupted";
  counts: Record<FindingKind, number>;
  findings: Finding[];
  zip: { path: string; entries: number; stale: number } | undefined;
  /** What was recorded for the next backup run; undefined when nothing could be written. */
  repair: { file: string; items: number } | undefined;
  /** Files an interrupted run changed after its last checkpoint (not checked). */
  unverified: number;
  /** Why the check ran without the data dir's lock, if it did. */
  unlocked: string | undefined;
}

/** Files read at once by default: enough to keep a disk busy, few enough to stay polite. */
const CONCURRENCY = 8;

/** What the names and records of one channel folder say, for the checks across files. */
interface FolderFacts {
  channelId: string;
  /** Post ids with a file in the folder. */
  posts: Set<string>;
  /** Attachment data files present, by file id (their names) and sizes when read. */
  files: Map<string, string>;
  dataSizes: Map<string, number>;
  /** Sizes stated by the stored FileInfo records. */
  infoSizes: Map<string, number>;
  /** Attachments of live posts read: file id, its name, and the post's path. */
  attachments: Array<{ fileId: string; name: string | undefined; post: string; archived: boolean }>;
  threads: { path: string; map: Record<string, string[]> } | undefined;
  /** Attachments the sync state lists as not downloaded yet. */
  pending: Set<string>;
}

export async function verifyBackup(options: VerifyOptions): Promise<VerifyReport> {
  const dataDir = new DataDir(options.dataDir);
  const info = await Deno.stat(dataDir.root).catch(() => undefined);
  if (!info?.isDirectory) {
    throw new StorageError(`The data dir ${dataDir.root} does not exist or is not a folder`);
  }
  let zipPath: string | undefined;
  if (options.zip !== undefined) {
    zipPath = resolve(options.zip);
    if (!(await Deno.stat(zipPath).catch(() => undefined))?.isFile) {
      throw new UsageError(`--zip ${zipPath} is not a file`);
    }
  }
  // A backup writing meanwhile would show as damage; a read-only copy can still be checked.
  let lock: RunLock | undefined;
  let unlocked: string | undefined;
  try {
    lock = await acquireRunLock(dataDir);
  } catch (error) {
    if (error instanceof LockedError) throw error;
    unlocked = `cannot take the data dir's lock (${describeError(error)})`;
  }
  try {
    return await new Verification(dataDir, options, zipPath, unlocked).run();
  } finally {
    lock?.release();
  }
}

class Verification {
  readonly findings: Array<Finding & { stage: number }> = [];
  readonly items = new Map<string, RepairItem>();
  readonly folders = new Map<string, FolderFacts>();
  /** Users with a record, and an example post of each author. */
  readonly users = new Set<string>();
  readonly authors = new Map<string, string>();
  /**
   * Hashes of the paths the manifest lists: the walk tells the others by them. Two paths
   * sharing one would hide one file not in the manifest from the report; with 200,000 files
   * the odds are about one in 10^10.
   */
  readonly listed = new Set<number>();
  interruptedSince: number | undefined;
  hasManifest = false;
  files = 0;
  bytesRead = 0;
  /** Files an interrupted run changed after its last checkpoint. */
  unverified = 0;
  /** The zip's entries not yet compared, by zip name: their SHA-256 (with --zip). */
  zipContent: Map<string, string> | undefined;
  zipTime = 0;
  zipStale = 0;
  readonly started = performance.now();
  readonly #random: () => number;
  /** Large files being read in the background; at most `concurrency`. */
  readonly #inFlight = new Set<Promise<void>>();
  #done = 0;
  /** When #tick last let the event loop run (performance.now()). */
  #yielded = 0;

  constructor(
    readonly dataDir: DataDir,
    readonly options: VerifyOptions,
    readonly zipPath: string | undefined,
    readonly unlocked: string | undefined,
  ) {
    this.#random = options.random ?? Math.random;
  }

  async run(): Promise<VerifyReport> {
    const manifest = await openManifest(this.dataDir);
    this.hasManifest = manifest.exists;
    this.interruptedSince = manifest.interruptedSince;
    if (this.unlocked) {
      this.#add(0, "warning", ".matterbak/lock", `${this.unlocked}: checked without it`);
    }
    if (!manifest.exists) {
      this.#add(
        0,
        "warning",
        ".matterbak/manifest.sha256",
        "no manifest (a data dir made by matterbak or an earlier version): the files are checked " +
          "for their shape only; the next backup run records their SHA-256",
      );
    }
    const zip = this.zipPath ? await this.#readZip(this.zipPath) : undefined;
    await this.#readStates();
    await this.#readListed(manifest);
    await this.#readOthers();
    if (manifest.exists && manifest.interruptedSince !== undefined) {
      this.#add(
        0,
        "warning",
        ".matterbak/manifest.journal",
        `the backup run started ${
          new Date(manifest.interruptedSince).toISOString()
        } did not finish: ${this.unverified} file(s) it changed after its last checkpoint ` +
          "cannot be checked until the next run records them",
      );
    }
    this.#crossCheck();
    if (zip && this.zipStale > 0) {
      this.#add(
        4,
        "warning",
        zip.path,
        `the zip is older than the latest backup run: ${this.zipStale} file(s) changed since it ` +
          "was written (stale, not damaged; the next backup run writes it again)",
      );
    }
    const repair = await this.#recordRepairs();
    const counts: Record<FindingKind, number> = {
      damaged: 0,
      missing: 0,
      unexpected: 0,
      warning: 0,
    };
    // Cheapest checks first, as they ran in restic: names, then content, then the zip.
    const findings = this.findings.sort((a, b) => a.stage - b.stage).map((
      { kind, path, reason },
    ) => ({ kind, path, reason }));
    for (const finding of findings) counts[finding.kind]++;
    return {
      dataDir: this.dataDir.root,
      files: this.files,
      bytesRead: this.bytesRead,
      seconds: (performance.now() - this.started) / 1000,
      sample: this.options.sample,
      manifest: !manifest.exists
        ? "none"
        : manifest.interruptedSince === undefined
        ? "complete"
        : "interrupted",
      counts,
      findings,
      zip: zip ? { ...zip, stale: this.zipStale } : undefined,
      repair,
      unverified: this.unverified,
      unlocked: this.unlocked,
    };
  }

  /**
   * A finding; `stage` orders the report by the cost of the check that found it: 0 notes,
   * 1 names (missing, unexpected, temporary), 2 content, 3 records against each other, 4 zip.
   */
  #add(stage: number, kind: FindingKind, path: string, reason: string, item?: RepairItem): void {
    this.findings.push({ stage, kind, path, reason });
    if (item) this.items.set(itemKey(item), item);
  }

  #folder(role: { folder: readonly string[]; channelId: string }): FolderFacts {
    const key = relPathString(role.folder);
    let facts = this.folders.get(key);
    if (!facts) {
      facts = {
        channelId: role.channelId,
        posts: new Set(),
        files: new Map(),
        dataSizes: new Map(),
        infoSizes: new Map(),
        attachments: [],
        threads: undefined,
        pending: new Set(),
      };
      this.folders.set(key, facts);
    }
    return facts;
  }

  #noteName(role: PathRole, parts: RelPath): void {
    if (role.kind === "post") this.#folder(role).posts.add(role.postId);
    else if (role.kind === "fileData") {
      this.#folder(role).files.set(role.fileId, parts.at(-1) as string);
    } else if (role.kind === "user") this.users.add(role.userId);
  }

  /**
   * Counts a file; now and then reports progress, and lets the event loop run (small files are
   * read without awaiting anything, and Ctrl+C must still be heard).
   */
  #tick(): Promise<void> | undefined {
    if (++this.#done % 256 !== 0) return undefined;
    this.options.progress?.({ phase: "reading", files: this.#done, bytes: this.bytesRead });
    // A timer costs a millisecond or more: one every 256 files was a quarter of the time.
    const now = performance.now();
    if (now - this.#yielded < YIELD_MS) return undefined;
    this.#yielded = now;
    return new Promise((resolve) => setTimeout(resolve, 0));
  }

  #chosen(): boolean {
    return this.options.sample >= 100 || this.#random() < this.options.sample / 100;
  }

  /** The sync states first: the attachments they list as pending are gaps, not damage. */
  async #readStates(): Promise<void> {
    const states: RelPath[] = [RUN_STATE_FILE];
    for await (const entry of this.dataDir.entries(CHANNEL_STATES_DIR)) {
      const parts = [...CHANNEL_STATES_DIR, entry.name];
      if (entry.isFile && classifyPath(parts).kind === "channelState") states.push(parts);
    }
    for (const parts of states) {
      if (await this.dataDir.exists(parts)) await this.#check(parts, relPathString(parts));
    }
  }

  /**
   * The files the manifest lists, in its order (as sha256sum -c reads them): each read (all, or
   * a random share with --sample) and hashed, a missing one found by its absence; one left
   * unread by --sample has its size checked.
   */
  async #readListed(manifest: ManifestReader): Promise<void> {
    for await (const batch of manifest.entries()) {
      for (const [path, entry] of batch) {
        this.options.signal?.throwIfAborted();
        this.listed.add(pathHash(path));
        const parts = relPathFromString(path);
        // A folder that cannot be prepared (a link) is read file by file, each read saying why.
        const preparing = this.dataDir.prepareReads(parts.slice(0, -1));
        if (preparing) await preparing.catch(() => {});
        // A promise only for a large file: awaiting one per small file cost more than its read.
        const checking = this.#chosen()
          ? this.#check(parts, path, entry)
          : this.#checkSize(parts, path, entry);
        if (checking) await checking;
        const tick = this.#tick();
        if (tick) await tick;
      }
    }
    await Promise.all(this.#inFlight);
  }

  /**
   * The walk of the data dir: temporary files, and files the manifest does not list (all of
   * them when there is none), read and checked like the others.
   */
  async #readOthers(): Promise<void> {
    for await (const entry of this.dataDir.walk([], { withTemp: true })) {
      if (entry.kind === "directory") continue;
      this.options.signal?.throwIfAborted();
      const path = relPathString(entry.parts);
      if (entry.kind === "skipped") {
        // A file the manifest lists is damaged already when it could not be read.
        if (!this.listed.has(pathHash(path))) {
          this.#add(1, "warning", path, `not checked: ${entry.reason}`);
        }
        continue;
      }
      if (isTempName(entry.parts.at(-1) as string)) {
        this.#add(
          1,
          "warning",
          path,
          "a temporary file an interrupted write left behind (the next backup run removes it)",
        );
        continue;
      }
      if (isStatePath(path)) continue;
      this.files++;
      if (this.listed.has(pathHash(path))) continue;
      if (this.#chosen()) await this.#check(entry.parts, path);
      else this.#noteName(classifyPath(entry.parts), entry.parts);
      await this.#tick();
    }
    await Promise.all(this.#inFlight);
  }

  /** A file left unread by --sample: its size at least. */
  async #checkSize(parts: RelPath, path: string, entry: ManifestEntry): Promise<void> {
    let info: Deno.FileInfo;
    try {
      info = await this.dataDir.stat(parts);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      return this.#missing(path);
    }
    this.#noteName(classifyPath(parts), parts);
    if (entry.size < 0 || info.size === entry.size) return;
    if (this.#changedByInterruptedRun(entry, info.size, info.mtime?.getTime() ?? 0)) {
      return this.#addInterrupted();
    }
    this.#add(
      2,
      "damaged",
      path,
      `${info.size} bytes, the manifest says ${entry.size}`,
      itemFor(path),
    );
  }

  #missing(path: string): void {
    const history = classifyPath(relPathFromString(path)).kind === "history";
    this.#add(
      1,
      "missing",
      path,
      `listed in the manifest, not in the data dir${history ? HISTORY_REPAIR : ""}`,
      itemFor(path),
    );
  }

  /** A file written after the manifest's line by a run that did not finish: not damage. */
  #changedByInterruptedRun(
    entry: ManifestEntry | undefined,
    size: number,
    mtime: number,
  ): boolean {
    const since = this.interruptedSince;
    if (since === undefined || mtime < since - MTIME_MARGIN_MS) return false;
    return !entry || entry.size !== size || entry.mtime !== mtime;
  }

  /** Counted, not listed: a killed first run can leave thousands. */
  #addInterrupted(): void {
    this.unverified++;
  }

  /**
   * Reads and checks one file. A small one is read at once (synchronous calls, see hashFile);
   * a large one is read in the background, at most `concurrency` at a time.
   */
  #check(parts: RelPath, path: string, entry?: ManifestEntry): Promise<void> | undefined {
    const role = classifyPath(parts);
    let read: HashedFile | Promise<HashedFile>;
    try {
      read = hashFile(this.dataDir, parts, {
        keepBytes: isRecord(role),
        // Times matter only after a run that did not finish, and against the zip's.
        withTime: this.interruptedSince !== undefined || this.zipPath !== undefined,
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      });
    } catch (error) {
      this.#unreadable(path, error, entry);
      return undefined;
    }
    if (!(read instanceof Promise)) {
      this.#checked(parts, path, role, read, entry);
      return undefined;
    }
    const task: Promise<void> = read.then(
      (hashed) => this.#checked(parts, path, role, hashed, entry),
      (error) => this.#unreadable(path, error, entry),
    ).finally(() => this.#inFlight.delete(task));
    this.#inFlight.add(task);
    if (this.#inFlight.size >= (this.options.concurrency ?? CONCURRENCY)) {
      return Promise.race(this.#inFlight);
    }
  }

  #unreadable(path: string, error: unknown, entry: ManifestEntry | undefined): void {
    if (error instanceof Deno.errors.NotFound) {
      if (entry) this.#missing(path);
      return;
    }
    if (this.options.signal?.aborted) return;
    this.#add(2, "damaged", path, `cannot be read: ${describeError(error)}`, itemFor(path));
  }

  #checked(
    parts: RelPath,
    path: string,
    role: PathRole,
    hashed: HashedFile,
    entry: ManifestEntry | undefined,
  ): void {
    this.#noteName(role, parts);
    const state = isStatePath(path);
    if (!state) {
      this.bytesRead += hashed.size;
      this.#compareWithZip(path, hashed, entry);
    }
    const problems: string[] = [];
    if (entry) {
      if (entry.sha256 !== hashed.sha256 || (entry.size >= 0 && entry.size !== hashed.size)) {
        if (this.#changedByInterruptedRun(entry, hashed.size, hashed.mtime ?? 0)) {
          return this.#addInterrupted();
        }
        problems.push(
          entry.size >= 0 && entry.size !== hashed.size
            ? `${hashed.size} bytes, the manifest says ${entry.size}`
            : "its SHA-256 differs from the manifest",
        );
      }
    } else if (!state) {
      if (this.#changedByInterruptedRun(undefined, hashed.size, hashed.mtime ?? 0)) {
        this.#addInterrupted();
      } else if (this.hasManifest) {
        this.#add(1, "unexpected", path, "not in the manifest (not written by a backup run)");
      }
    }
    if (role.kind === "fileData") this.#folder(role).dataSizes.set(role.fileId, hashed.size);
    const shape = hashed.bytes ? this.#checkRecord(role, path, hashed.bytes) : undefined;
    if (shape) problems.push(shape);
    if (problems.length === 0) return;
    const reason = problems.join("; ") +
      (role.kind === "channelState"
        ? " (the next backup run crawls the channel again in full)"
        : role.kind === "runState"
        ? " (the next backup run asks for every user again)"
        : role.kind === "history"
        ? HISTORY_REPAIR
        : "");
    this.#add(2, "damaged", path, reason, itemFor(path));
  }

  /** What is wrong with a record's content, if anything; gathers its facts when it is right. */
  #checkRecord(role: PathRole, path: string, bytes: Uint8Array): string | undefined {
    const text = new TextDecoder().decode(bytes);
    if (role.kind === "post") {
      const parsed = parseStoredPost(
        text,
        postIdFromFileName(path.slice(path.lastIndexOf("/") + 1)),
      );
      if ("reason" in parsed) return parsed.reason;
      if (parsed.post.channel_id !== role.channelId) {
        return `holds a post of channel ${parsed.post.channel_id}, not of its folder's`;
      }
      this.#notePost(role, path, parsed.post);
      return undefined;
    }
    if (role.kind === "history") {
      const parsed = parseHistory(text, role.postId);
      return "reason" in parsed ? parsed.reason : undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return text.length === 0 ? "empty file" : "not valid JSON";
    }
    switch (role.kind) {
      case "channel":
        return recordProblem(value, validChannel, "a channel record", role.channelId);
      case "team":
        return recordProblem(value, validTeam, "a team record", role.teamId);
      case "user":
        return recordProblem(value, validUser, "a user record", role.userId);
      case "emoji":
        return recordProblem(value, validEmoji, "an emoji record", role.emojiId);
      case "fileInfo": {
        const problem = recordProblem(value, validFileInfo, "a file info", role.fileId);
        if (!problem) this.#folder(role).infoSizes.set(role.fileId, (value as Raw).size as number);
        return problem;
      }
      case "channelMembers":
      case "teamMembers":
        return Array.isArray(value) && value.every((m) => isObject(m) && validMember(m))
          ? undefined
          : "not a list of members";
      case "threads":
        if (!isThreadsMap(value)) return "not a threads map";
        this.#folder(role).threads = { path, map: value };
        return undefined;
      case "channelState": {
        const problem = channelStateProblem(value, role.channelId);
        if (!problem) {
          const state = value as { dir: string; pendingFiles: Array<{ fileId: string }> };
          const facts = this.#folder({
            folder: relPathFromString(state.dir),
            channelId: role.channelId,
          });
          for (const pending of state.pendingFiles) facts.pending.add(pending.fileId);
        }
        return problem;
      }
      case "runState":
        return isRunState(value) ? undefined : "not the run state (version 1, a users watermark)";

      default:
        return undefined;
    }
  }

  #notePost(role: { folder: readonly string[]; channelId: string }, path: string, post: Post) {
    if (post.delete_at > 0) return;
    if (post.user_id && !this.authors.has(post.user_id)) this.authors.set(post.user_id, path);
    const facts = this.#folder(role);
    const infos = new Map((post.metadata?.files ?? []).map((info) => [info.id, info]));
    const ids = new Set([
      ...(Array.isArray(post.file_ids) ? post.file_ids.filter(isMattermostId) : []),
      ...infos.keys(),
    ]);
    for (const fileId of ids) {
      const info = infos.get(fileId);
      facts.attachments.push({
        fileId,
        name: info?.name,
        post: path,
        archived: info?.archived === true,
      });
    }
  }

  /** What the records say of each other: attachments, threads, authors. */
  #crossCheck(): void {
    for (const [folder, facts] of this.folders) {
      for (const { fileId, name, post, archived } of facts.attachments) {
        if (facts.files.has(fileId) || archived) continue;
        const path = `${folder}/${DIRS.files}/${name ? fileDataName(fileId, name) : fileId}`;
        if (facts.pending.has(fileId)) {
          this.#add(
            3,
            "warning",
            path,
            `attachment of ${post} not downloaded yet (the next backup run tries again)`,
          );
        } else {
          this.#add(3, "missing", path, `attachment of ${post}, not in the backup`, {
            kind: "fileData",
            channelId: facts.channelId,
            folder,
            fileId,
            ...(name ? { path } : {}),
          });
        }
      }
      for (const [fileId, size] of facts.dataSizes) {
        const stated = facts.infoSizes.get(fileId);
        const name = facts.files.get(fileId);
        if (stated === undefined || stated === size || !name) continue;
        const path = `${folder}/${DIRS.files}/${name}`;
        this.#add(3, "damaged", path, `${size} bytes, its file info says ${stated}`, itemFor(path));
      }
      if (!facts.threads) continue;
      const { path, map } = facts.threads;
      for (const [root, replies] of Object.entries(map)) {
        if (!facts.posts.has(root)) {
          this.#add(3, "warning", path, `names root post ${root}, which is not stored`);
        }
        for (const reply of replies) {
          if (facts.posts.has(reply) || !isMattermostId(reply)) continue;
          this.#add(3, "missing", path, `names reply ${reply}, which is not stored`, {
            kind: "post",
            channelId: facts.channelId,
            folder,
            postId: reply,
          });
        }
      }
    }
    // A backup made with --skip-users stores no user records at all.
    if (this.users.size === 0) return;
    for (const [userId, post] of this.authors) {
      if (this.users.has(userId)) continue;
      this.#add(
        3,
        "warning",
        post,
        `its author ${userId} has no user record in ${DIRS.users}/ (the next backup run asks ` +
          "for it)",
        { kind: "user", userId },
      );
    }
  }

  /**
   * The zip, read through first: every entry's CRC-32 and size; the SHA-256 of each kept to be
   * compared with the files of the manifest as they are read.
   */
  async #readZip(zipPath: string): Promise<{ path: string; entries: number }> {
    this.zipTime = (await Deno.stat(zipPath)).mtime?.getTime() ?? 0;
    const content = new Map<string, string>();
    let entries = 0;
    let reader: ZipReader;
    try {
      reader = await ZipReader.open(zipPath);
    } catch (error) {
      if (!(error instanceof ZipFormatError)) throw error;
      this.#add(4, "damaged", zipPath, `${error.message} (the next backup run writes it again)`);
      return { path: zipPath, entries: 0 };
    }
    try {
      for await (const entry of reader.entries()) {
        if (entry.directory) continue;
        this.options.signal?.throwIfAborted();
        entries++;
        const hash = createHash("sha256");
        try {
          for await (const chunk of await reader.readable(entry)) hash.update(chunk);
        } catch (error) {
          if (!(error instanceof ZipFormatError)) throw error;
          this.#add(
            4,
            "damaged",
            entry.name,
            `its copy in the zip is damaged: ${error.message} (the next backup run writes ` +
              "the zip again)",
          );
          content.set(entry.name, "");
          continue;
        }
        if (!isStatePath(entry.name)) content.set(entry.name, hash.digest("hex"));
        if (entries % 256 === 0) {
          this.options.progress?.({ phase: "zip", files: entries, bytes: this.bytesRead });
        }
      }
    } finally {
      reader.close();
    }
    this.zipContent = content;
    return { path: zipPath, entries };
  }

  /**
   * A file of the backup against its copy in the zip: the same content as the manifest says
   * (or as read, without a manifest), unless the file changed after the zip was written.
   */
  #compareWithZip(path: string, hashed: HashedFile, entry: ManifestEntry | undefined): void {
    const content = this.zipContent;
    if (!content) return;
    const name = zipName(path.split("/"));
    const copy = content.get(name);
    content.delete(name);
    // A damaged copy is reported already.
    if (copy === "" || copy === (entry?.sha256 ?? hashed.sha256)) return;
    if ((hashed.mtime ?? 0) > this.zipTime) {
      this.zipStale++;
      return;
    }
    this.#add(
      4,
      copy === undefined ? "missing" : "damaged",
      path,
      copy === undefined
        ? "not in the zip (the next backup run writes the zip again)"
        : "its copy in the zip differs from the backup (the next backup run writes the zip again)",
    );
  }

  /**
   * Writes what the next backup run should fetch again. A sampled check saw only part of the
   * files, so the items of an earlier check are kept with its own.
   */
  async #recordRepairs(): Promise<VerifyReport["repair"]> {
    if (this.unlocked) return undefined;
    if (this.options.sample < 100) {
      for (const item of (await readRepairList(this.dataDir))?.list.items ?? []) {
        if (!this.items.has(itemKey(item))) this.items.set(itemKey(item), item);
      }
    }
    const items = [...this.items.values()];
    await writeRepairList(this.dataDir, {
      version: 1,
      verifiedAt: new Date().toISOString(),
      items,
    });
    return { file: relPathString(REPAIR_FILE), items: items.length };
  }
}

/**
 * What the next run can do for an edit history: the server gives the earlier versions of one's
 * own posts only (GET /posts/{id}/edit_history); those of others' posts were seen by earlier runs
 * and are nowhere else.
 */
const HISTORY_REPAIR = " (the next backup run rebuilds it from the server's edit history if the " +
  "post is yours; of others' posts the earlier versions cannot be fetched again, and it says so)";

/** How long verify reads without letting the event loop run (a signal, a progress line). */
const YIELD_MS = 50;

/** Files whose content is a JSON record this tool checks the shape of. */
function isRecord(role: PathRole): boolean {
  return !["fileData", "teamIcon", "userImage", "emojiImage", "other"].includes(role.kind);
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

/** What the next backup run fetches to restore a file at `path`, if it can. */
export function itemFor(path: string): RepairItem | undefined {
  const role = classifyPath(relPathFromString(path));
  switch (role.kind) {
    case "post":
      return {
        kind: "post",
        channelId: role.channelId,
        folder: relPathString(role.folder),
        postId: role.postId,
        path,
      };
    case "history":
      return {
        kind: "history",
        channelId: role.channelId,
        folder: relPathString(role.folder),
        postId: role.postId,
        path,
      };
    case "fileInfo":
    case "fileData":
      return {
        kind: role.kind,
        channelId: role.channelId,
        folder: relPathString(role.folder),
        fileId: role.fileId,
        path,
      };
    case "channel":
    case "channelMembers":
    case "threads":
      return {
        kind: role.kind,
        channelId: role.channelId,
        folder: relPathString(role.folder),
        path,
      };
    case "team":
    case "teamMembers":
    case "teamIcon":
      return { kind: role.kind, teamId: role.teamId, path };
    case "user":
    case "userImage":
      return { kind: role.kind, userId: role.userId, path };
    case "emoji":
    case "emojiImage":
      return { kind: role.kind, emojiId: role.emojiId, path };
    default:
      return undefined;
  }
}

function itemKey(item: RepairItem): string {
  const id = "postId" in item
    ? item.postId
    : "fileId" in item
    ? item.fileId
    : "userId" in item
    ? item.userId
    : "emojiId" in item
    ? item.emojiId
    : "teamId" in item
    ? item.teamId
    : item.channelId;
  return `${item.kind}:${id}:${item.path ?? ""}`;
}
