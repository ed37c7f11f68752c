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
import { isMattermostId } from "../model/records.ts";
import { isTempName } from "../store/atomic_write.ts";
import { DataDir, type RelPath } from "../store/data_dir.ts";
import {
  CHANNEL_STATES_DIR,
  classifyPath,
  DIRS,
  fileDataName,
  type PathRole,
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
import { readRepairList, type RepairItem, writeRepairList } from "../store/repair_list.ts";
import { acquireRunLock, type RunLock } from "../store/run_lock.ts";
import { relPathFromString, relPathString } from "../store/state.ts";
import { describeError, LockedError, StorageError, UsageError } from "../util/errors.ts";
import { NumberSet } from "../util/number_set.ts";
import { ZipFormatError, ZipReader } from "../zip/reader.ts";
import {
  ID_LENGTH,
  MISSING,
  type Note,
  type Outcomes,
  type RecordFact,
  UNREADABLE,
} from "./check_file.ts";
import { CheckPool, defaultWorkers } from "./check_pool.ts";
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
  /** Worker threads that read and check the files; 0 reads inline. Default: one a CPU, at most 4. */
  workers?: number;
  progress?: (progress: VerifyProgress) => void;
  signal?: AbortSignal;
}

export interface VerifyProgress {
  phase: "listing" | "reading" | "zip";
  files: number;
  bytes: number;
  /** While reading: the files the walk found, all of which are read (with --sample, checked). */
  total?: number;
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

/** What the names and records of one channel folder say, for the checks across files. */
interface FolderFacts {
  channelId: string;
  /**
   * Post ids with a file in the folder, by pathHash (200,000 ids as strings, each holding its
   * manifest line, were 30 MB); a reply taken for stored by a shared hash: 1 in 10^10.
   */
  posts: NumberSet;
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
  /** Attachments the sync gave up on (the server answered 404 in 3 runs). */
  givenUp: Set<string>;
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
   * The files the walk found, by folder (`/`-separated), and those the manifest lists: the
   * pathHash of each path. Two paths sharing one would hide one file not in the manifest from
   * the report; with 200,000 files the odds are about one in 10^10.
   */
  readonly #found = new Map<string, NumberSet>();
  readonly #listed = new NumberSet();
  /** What the walk could not read as a file (a link...), by pathHash of its path. */
  readonly #skipped = new Map<number, { path: string; reason: string }>();
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
  /** Reads and checks the files, in workers. */
  #pool: CheckPool | undefined;
  /** Folders checked for links (DataDir.prepareReads). */
  readonly #prepared = new Set<string>();
  /** Files to send to the pool as one batch, and the manifest's word on each. */
  #batch: Array<[path: string, entry: ManifestEntry | undefined]> = [];
  /** Batches sent, oldest first: their outcomes are taken in this order (a stable report). */
  readonly #sent: Array<
    { files: Array<[string, ManifestEntry | undefined]>; outcomes: Promise<Outcomes> }
  > = [];
  #done = 0;
  /** The folder #folder last gave the facts of. */
  #lastFolder: { folder: readonly string[]; facts: FolderFacts } | undefined;
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
    this.#pool = new CheckPool(this.dataDir, this.options.workers ?? defaultWorkers(), {
      // Times matter only after a run that did not finish, and against the zip's.
      withTime: this.interruptedSince !== undefined || this.zipPath !== undefined,
      signal: this.options.signal,
    });
    try {
      await this.#readStates();
      await this.#walk();
      await this.#readListed(manifest);
      await this.#readUnnamed();
    } finally {
      this.#pool.close();
    }
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
    // Files come folder by folder: the last one's facts, without a key made a file.
    const last = this.#lastFolder;
    if (
      last && last.folder.length === role.folder.length &&
      last.folder.every((part, i) => part === role.folder[i])
    ) {
      return last.facts;
    }
    const key = relPathString(role.folder);
    let facts = this.folders.get(key);
    if (!facts) {
      facts = {
        channelId: role.channelId,
        posts: new NumberSet(),
        files: new Map(),
        dataSizes: new Map(),
        infoSizes: new Map(),
        attachments: [],
        threads: undefined,
        pending: new Set(),
        givenUp: new Set(),
      };
      this.folders.set(key, facts);
    }
    this.#lastFolder = { folder: role.folder, facts };
    return facts;
  }

  #noteName(role: PathRole, parts: RelPath): void {
    if (role.kind === "post") this.#folder(role).posts.add(pathHash(role.postId));
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
    this.options.progress?.({
      phase: "reading",
      files: this.#done,
      bytes: this.bytesRead,
      total: Math.max(this.files, this.#done),
    });
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
      if (await this.dataDir.exists(parts)) await this.#check(relPathString(parts));
    }
    await this.#drain(0);
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
        const hash = pathHash(path);
        this.#listed.add(hash);
        // A file the manifest lists is damaged already when it cannot be read.
        if (this.#skipped.size > 0) this.#skipped.delete(hash);
        if (this.#chosen()) {
          const sending = this.#check(path, entry);
          if (sending) await sending;
        } else {
          await this.#checkSize(relPathFromString(path), path, entry);
          const tick = this.#tick();
          if (tick) await tick;
        }
      }
    }
    await this.#drain(0);
  }

  /**
   * The walk of the data dir, first: each folder listed once (and so checked for links before
   * any of its files is read), temporary files reported, the other files noted for the
   * manifest to name.
   */
  async #walk(): Promise<void> {
    for await (const entry of this.dataDir.walk([], { withTemp: true, prepare: true })) {
      if (entry.kind === "directory") continue;
      this.options.signal?.throwIfAborted();
      const path = relPathString(entry.parts);
      if (entry.kind === "skipped") {
        this.#skipped.set(pathHash(path), { path, reason: entry.reason });
        continue;
      }
      const name = entry.parts.at(-1) as string;
      if (isTempName(name)) {
        this.#add(
          1,
          "warning",
          path,
          "a temporary file an interrupted write left behind (the next backup run removes it)",
        );
        continue;
      }
      if (isStatePath(path)) continue;
      if (++this.files % 4096 === 0) {
        this.options.progress?.({ phase: "listing", files: this.files, bytes: 0 });
      }
      const folder = path.slice(0, Math.max(0, path.length - name.length - 1));
      let found = this.#found.get(folder);
      if (!found) this.#found.set(folder, found = new NumberSet());
      found.add(pathHash(path));
    }
  }

  /**
   * The files the manifest does not list (all of them when there is none), read and checked
   * like the others: their folders listed again, only those that hold one.
   */
  async #readUnnamed(): Promise<void> {
    for (const { path, reason } of this.#skipped.values()) {
      this.#add(1, "warning", path, `not checked: ${reason}`);
    }
    for (const [folder, found] of this.#found) {
      if (found.values().every((hash) => this.#listed.has(hash))) continue;
      const parts = folder ? relPathFromString(folder) : [];
      for await (const entry of this.dataDir.entries(parts)) {
        this.options.signal?.throwIfAborted();
        const fileParts = [...parts, entry.name];
        const path = relPathString(fileParts);
        const hash = pathHash(path);
        if (!found.has(hash) || this.#listed.has(hash)) continue;
        if (this.#chosen()) await this.#check(path);
        else this.#noteName(classifyPath(fileParts), fileParts);
      }
    }
    await this.#drain(0);
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
   * Queues a file to be read and checked (by the pool, in batches); returns a promise only
   * when a batch was sent and enough are in flight that the oldest must be taken first.
   */
  #check(path: string, entry?: ManifestEntry): Promise<void> | undefined {
    // Each folder is checked for links once, here, before any of its files is read.
    const folder = path.slice(0, Math.max(0, path.lastIndexOf("/")));
    if (!this.#prepared.has(folder)) {
      this.#prepared.add(folder);
      const preparing = this.dataDir.prepareReads(folder ? relPathFromString(folder) : []);
      // A folder that cannot be prepared (a link) is read file by file, each read saying why.
      if (preparing) return preparing.catch(() => {}).then(() => this.#check(path, entry));
    }
    this.#batch.push([path, entry]);
    if (this.#batch.length < BATCH) return undefined;
    this.#send();
    return this.#sent.length > 2 * Math.max(1, this.#pool?.size ?? 0) ? this.#drain(1) : undefined;
  }

  #send(): void {
    if (this.#batch.length === 0) return;
    const files = this.#batch;
    this.#batch = [];
    const pool = this.#pool as CheckPool;
    this.#sent.push({ files, outcomes: pool.check(files.map(([path]) => path)) });
  }

  /** Sends what is queued, then takes the outcomes of the oldest batches until `keep` are left. */
  async #drain(keep: number): Promise<void> {
    this.#send();
    while (this.#sent.length > keep) {
      const { files, outcomes } = this.#sent.shift()!;
      const results = await outcomes;
      const notes = new Map(results.notes);
      for (let i = 0; i < files.length; i++) {
        const [path, entry] = files[i]!;
        this.#checked(path, results, i, notes.get(i), entry);
        const tick = this.#tick();
        if (tick) await tick;
      }
    }
  }

  /** The outcome of the `i`th file of a batch, and its note if it has one. */
  #checked(
    path: string,
    outcomes: Outcomes,
    i: number,
    note: Note | undefined,
    entry: ManifestEntry | undefined,
  ): void {
    const size = outcomes.sizes[i]!;
    if (size === MISSING) {
      if (entry) this.#missing(path);
      return;
    }
    if (size === UNREADABLE) {
      // Ctrl+C stopped the read: the error that ends verify says so, not a finding.
      if (this.options.signal?.aborted) return;
      this.#add(2, "damaged", path, `cannot be read: ${note?.unreadable}`, itemFor(path));
      return;
    }
    const mtime = outcomes.mtimes[i] ?? 0;
    const parts = relPathFromString(path);
    const role = classifyPath(parts);
    this.#noteName(role, parts);
    const state = isStatePath(path);
    if (!state) {
      this.bytesRead += size;
      if (this.zipContent) {
        this.#compareWithZip(path, outcomes.sha256.slice(64 * i, 64 * i + 64), mtime, entry);
      }
    }
    const problems: string[] = [];
    if (entry) {
      // Compared in place: no string a file.
      const same = outcomes.sha256.startsWith(entry.sha256, 64 * i);
      if (!same || (entry.size >= 0 && entry.size !== size)) {
        if (this.#changedByInterruptedRun(entry, size, mtime)) {
          return this.#addInterrupted();
        }
        problems.push(
          entry.size >= 0 && entry.size !== size
            ? `${size} bytes, the manifest says ${entry.size}`
            : "its SHA-256 differs from the manifest",
        );
      }
    } else if (!state) {
      if (this.#changedByInterruptedRun(undefined, size, mtime)) {
        this.#addInterrupted();
      } else if (this.hasManifest) {
        this.#add(1, "unexpected", path, "not in the manifest (not written by a backup run)");
      }
    }
    if (role.kind === "fileData") this.#folder(role).dataSizes.set(role.fileId, size);
    if (note?.fact) this.#noteFact(role, path, note.fact);
    else if (outcomes.authors.charCodeAt(ID_LENGTH * i) !== SPACE) {
      this.#noteAuthor(outcomes.authors.slice(ID_LENGTH * i, ID_LENGTH * i + ID_LENGTH), path);
    }
    if (note?.problem !== undefined) problems.push(note.problem);
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

  /** What a record that is right says, for the checks across files. */
  #noteFact(role: PathRole, path: string, fact: RecordFact): void {
    switch (fact.kind) {
      case "post": {
        if (role.kind !== "post") return;
        if (fact.author) this.#noteAuthor(fact.author, path);
        const facts = this.#folder(role);
        for (const attachment of fact.attachments) {
          facts.attachments.push({ ...attachment, post: path });
        }
        return;
      }
      case "fileInfo":
        if (role.kind === "fileInfo") this.#folder(role).infoSizes.set(role.fileId, fact.size);
        return;
      case "threads":
        if (role.kind === "threads") this.#folder(role).threads = { path, map: fact.map };
        return;
      case "channelState": {
        if (role.kind !== "channelState") return;
        const facts = this.#folder({
          folder: relPathFromString(fact.dir),
          channelId: role.channelId,
        });
        for (const fileId of fact.pending) facts.pending.add(fileId);
        for (const fileId of fact.givenUp) facts.givenUp.add(fileId);
        return;
      }
    }
  }

  /** A post's author, and the first post of each. */
  #noteAuthor(author: string, path: string): void {
    if (!this.authors.has(author)) this.authors.set(author, path);
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
        } else if (facts.givenUp.has(fileId)) {
          this.#add(
            3,
            "warning",
            path,
            `attachment of ${post} given up: the server answered 404 (not found) in 3 runs`,
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
        if (!facts.posts.has(pathHash(root))) {
          this.#add(3, "warning", path, `names root post ${root}, which is not stored`);
        }
        for (const reply of replies) {
          if (facts.posts.has(pathHash(reply)) || !isMattermostId(reply)) continue;
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
    let reader: ZipReader | undefined;
    try {
      reader = await ZipReader.open(zipPath);
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
    } catch (error) {
      // Each entry's damage is caught above: this is the zip's own (no end record, a broken
      // central directory). Which entries it holds is then unknown: no file is compared with it.
      if (!(error instanceof ZipFormatError)) throw error;
      this.#add(4, "damaged", zipPath, `${error.message} (the next backup run writes it again)`);
      return { path: zipPath, entries };
    } finally {
      reader?.close();
    }
    this.zipContent = content;
    return { path: zipPath, entries };
  }

  /**
   * A file of the backup against its copy in the zip: the same content as the manifest says
   * (or as read, without a manifest), unless the file changed after the zip was written.
   */
  #compareWithZip(
    path: string,
    sha256: string,
    mtime: number,
    entry: ManifestEntry | undefined,
  ): void {
    const content = this.zipContent;
    if (!content) return;
    const name = zipName(path.split("/"));
    const copy = content.get(name);
    content.delete(name);
    // A damaged copy is reported already.
    if (copy === "" || copy === (entry?.sha256 ?? sha256)) return;
    if (mtime > this.zipTime) {
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

const SPACE = 0x20;

/** Files sent to a worker at once: a message each way per batch, not per file. */
const BATCH = 256;

/** How long verify reads without letting the event loop run (a signal, a progress line). */
const YIELD_MS = 50;

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
