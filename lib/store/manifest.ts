/**
 * The manifest of the backup: the SHA-256 and size of every file of the data dir but our own
 * state in `.matterbak/`, so that `matterbak verify` (or `sha256sum -c`) can prove the files
 * intact and name the ones that are not.
 *
 * - `.matterbak/manifest.sha256` is complete as of the end of the last run, in `sha256sum`'s
 *   format (`<hex>  <path>`, paths relative to the data dir; names with a backslash or a line
 *   break escaped as sha256sum does). Comment lines, which sha256sum and shasum skip, hold each
 *   file's size (`#size N` before its line) and the count at the end (`#files N`).
 * - `.matterbak/manifest.journal` holds what changed since: a run appends to it at each
 *   checkpoint (`+ <hex> <size> <mtime> <path>`, `- <path>`), so its cost follows what changed,
 *   and folds it into manifest.sha256 at its end (and during a run whenever the journal grows
 *   past a quarter of the manifest). `R <ms>` marks the start of a run; the journal exists only
 *   while a run is under way or after one was interrupted.
 *
 * Hashes are computed while the files are written (DataDir's sink), never by reading them
 * back. A line is appended only after its file's folder was synced (the file's data was synced
 * before its rename), so the journal never vouches for a file a power cut could still lose.
 * A run that finds the journal of an interrupted run re-hashes the files changed since that
 * run started; a data dir without any manifest (matterbak's, or an earlier version's) has its
 * files hashed once.
 */
import { readAt } from "../util/read_at.ts";
import { relative, sep } from "node:path";
import { isTempName, syncStep, writeStep, type WrittenFile } from "./atomic_write.ts";
import type { DataDir, DataDirSink, RelPath, SyncReader } from "./data_dir.ts";
import { DIRS, MANIFEST_FILE, MANIFEST_JOURNAL } from "./layout.ts";
import { hashFile } from "./reader.ts";
import { relPathString } from "./state.ts";
import { forEachPooled } from "../util/semaphore.ts";

export interface ManifestEntry {
  /** Lowercase hex. */
  sha256: string;
  size: number;
  /** Modification time (ms) when the hash was taken; 0 when not recorded (manifest.sha256). */
  mtime: number;
}

const HEADER = "#matterbak-manifest 1\n" +
  "# SHA-256 of every file of this backup (paths relative to the data dir), in sha256sum's\n" +
  "# format. In the data dir: sha256sum -c .matterbak/manifest.sha256 (macOS: shasum -a 256 -c),\n" +
  "# or matterbak verify. A line #size N gives the size of the file on the next line.\n";
const SIZE_PREFIX = "#size ";
const FILES_PREFIX = "#files ";
/** The journal is folded in once it holds this many files, or a quarter of the manifest. */
const COMPACT_MIN = 20_000;
/** A file changed this close before a run started may still be that run's (clock steps). */
export const MTIME_MARGIN_MS = 2000;

/** True for paths of our own state, which the manifest leaves out (they change every run). */
export function isStatePath(path: string): boolean {
  return path.startsWith(`${DIRS.state}/`);
}

/** sha256sum's escaping of a name: `\` as `\\`, line feed as `\n`, carriage return as `\r`. */
export function escapePath(path: string): string {
  return path.replace(/[\\\n\r]/g, (c) => c === "\\" ? "\\\\" : c === "\n" ? "\\n" : "\\r");
}

function unescapePath(text: string): string | undefined {
  let bad = false;
  const path = text.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    if (c === "r") return "\r";
    bad = true;
    return "";
  });
  return bad ? undefined : path;
}

/** The lines of one file in manifest.sha256: its size as a comment, then sha256sum's line. */
export function manifestLines(path: string, entry: Pick<ManifestEntry, "sha256" | "size">): string {
  const escaped = escapePath(path);
  return `${SIZE_PREFIX}${entry.size}\n${
    escaped === path ? "" : "\\"
  }${entry.sha256}  ${escaped}\n`;
}

const HEX64 = /^[0-9a-f]{64}$/;
const JOURNAL_ADD = /^\+ ([0-9a-f]{64}) (\d+) (\d+) (.+)$/;

/**
 * The complete lines of a file, a batch per megabyte read (a generator step per line cost more
 * than parsing it); a last line without its line feed was cut short and is dropped. Read with
 * synchronous calls: an async read waits for a thread of Deno's pool, milliseconds each on a
 * busy machine. Each line is decoded on its own: a string cut from a megabyte decoded at once
 * keeps all of it alive (V8 shares the text), and verify keeps paths (of posts with
 * attachments, of findings) from every part of the manifest: 60 MB more at 200,000 files.
 */
async function* fileLines(dataDir: DataDir, parts: RelPath): AsyncGenerator<string[]> {
  let file: SyncReader;
  try {
    file = dataDir.openForReadingSync(parts);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  try {
    let buffer = new Uint8Array(1 << 20);
    const decoder = new TextDecoder();
    let filled = 0;
    while (true) {
      // A line longer than the buffer (no path is) only makes it grow.
      if (filled === buffer.length) {
        const larger = new Uint8Array(buffer.length * 2);
        larger.set(buffer);
        buffer = larger;
      }
      const read = file.read(buffer.subarray(filled));
      if (read === 0) break;
      filled += read;
      const bytes = buffer.subarray(0, filled);
      const lines: string[] = [];
      let start = 0;
      for (let end = bytes.indexOf(10); end !== -1; end = bytes.indexOf(10, start)) {
        lines.push(decoder.decode(bytes.subarray(start, end)));
        start = end + 1;
      }
      buffer.copyWithin(0, start, filled);
      filled -= start;
      yield lines;
    }
  } finally {
    file.close();
  }
}

/** The files of manifest.sha256, in its order, with their sizes (-1 where none is given). */
async function* baseEntries(dataDir: DataDir): AsyncGenerator<Array<[string, ManifestEntry]>> {
  let size = -1;
  for await (const lines of fileLines(dataDir, MANIFEST_FILE)) {
    const batch: Array<[string, ManifestEntry]> = [];
    for (const line of lines) {
      if (line.startsWith("#")) {
        if (line.startsWith(SIZE_PREFIX)) size = Number(line.slice(SIZE_PREFIX.length));
        continue;
      }
      const entry = parseSumLine(line);
      if (entry) batch.push([entry.path, { sha256: entry.sha256, size, mtime: 0 }]);
      size = -1;
    }
    yield batch;
  }
}

/**
 * One line of sha256sum's format, read by position (a regular expression per line cost a third
 * of reading a manifest of 200,000 files): `[\]<64 hex><space><space or *><path>`.
 */
function parseSumLine(line: string): { sha256: string; path: string } | undefined {
  const escaped = line.charCodeAt(0) === 92; // "\"
  const at = escaped ? 1 : 0;
  const sha256 = line.slice(at, at + 64);
  const mark = line[at + 65];
  if (line[at + 64] !== " " || (mark !== " " && mark !== "*") || !HEX64.test(sha256)) {
    return undefined;
  }
  const path = escaped ? unescapePath(line.slice(at + 66)) : line.slice(at + 66);
  return path ? { sha256, path } : undefined;
}

interface Journal {
  /** The latest change of each path (null: removed), in the order first changed. */
  changes: Map<string, ManifestEntry | null>;
  /** Starts of the runs that wrote it (ms). */
  runs: number[];
}

async function readJournal(dataDir: DataDir): Promise<Journal | undefined> {
  if (!await dataDir.exists(MANIFEST_JOURNAL)) return undefined;
  const journal: Journal = { changes: new Map(), runs: [] };
  for await (const lines of fileLines(dataDir, MANIFEST_JOURNAL)) {
    for (const line of lines) {
      const parsed = parseJournalLine(line);
      if (parsed && "run" in parsed) journal.runs.push(parsed.run);
      else if (parsed) journal.changes.set(parsed.path, parsed.entry);
    }
  }
  return journal;
}

/** A change (`entry` null: removed), the start of a run, or undefined for anything else. */
function parseJournalLine(
  line: string,
): { path: string; entry: ManifestEntry | null } | { run: number } | undefined {
  const add = JOURNAL_ADD.exec(line);
  if (add) {
    const path = unescapePath(add[4] as string);
    const entry = { sha256: add[1] as string, size: Number(add[2]), mtime: Number(add[3]) };
    return path ? { path, entry } : undefined;
  }
  if (line.startsWith("- ")) {
    const path = unescapePath(line.slice(2));
    return path ? { path, entry: null } : undefined;
  }
  return /^R \d+$/.test(line) ? { run: Number(line.slice(2)) } : undefined;
}

function journalLine(path: string, entry: ManifestEntry | null): string {
  return entry
    ? `+ ${entry.sha256} ${entry.size} ${entry.mtime} ${escapePath(path)}\n`
    : `- ${escapePath(path)}\n`;
}

/** The manifest as a reader (verify) sees it: manifest.sha256 with the journal applied. */
export interface ManifestReader {
  /** False when neither file exists: the data dir was made by matterbak or an earlier version. */
  exists: boolean;
  /**
   * Set when the journal of a run that did not finish is there: the start (wall-clock ms) of
   * the first such run. A file changed since then and not as its line says was being written
   * by it; the next run records it.
   */
  interruptedSince: number | undefined;
  /**
   * Every file by relative `/`-separated path, streamed in batches (200,000 files are not held
   * at once): manifest.sha256's, then those the journal added.
   */
  entries(): AsyncGenerator<Array<[string, ManifestEntry]>>;
}

export async function openManifest(dataDir: DataDir): Promise<ManifestReader> {
  const hasBase = await dataDir.exists(MANIFEST_FILE);
  const journal = await readJournal(dataDir);
  const changes = journal?.changes ?? new Map<string, ManifestEntry | null>();
  return {
    exists: hasBase || journal !== undefined,
    interruptedSince: journal?.runs.length ? Math.min(...journal.runs) : undefined,
    async *entries() {
      for await (const batch of baseEntries(dataDir)) {
        yield changes.size ? batch.filter(([path]) => !changes.has(path)) : batch;
      }
      const added: Array<[string, ManifestEntry]> = [];
      for (const [path, entry] of changes) if (entry) added.push([path, entry]);
      yield added;
    },
  };
}

/** Why a run hashed files already in the data dir before it began, if it did. */
export interface ManifestStart {
  manifest: Manifest;
  /** Files hashed from disk: all of them when there was no manifest, else those changed by an interrupted run. */
  hashed: number;
  reason: "no-manifest" | "interrupted" | undefined;
}

/**
 * The manifest as a backup run keeps it: the DataDir's sink. Open it after taking the run lock;
 * close it at the end of the run (also after an error or an interruption).
 */
export class Manifest implements DataDirSink {
  /** Changes not yet in the journal. */
  #pending = new Map<string, ManifestEntry | null>();
  /** Removals whose line went to the journal before the file went (removing). */
  #announced = new Set<string>();
  /** Folders renamed into since the last flush: synced before a line vouches for their files. */
  #dirtyDirs = new Set<string>();
  /**
   * Lines in the journal since manifest.sha256 was written. The changes themselves are not
   * held: the journal is read back when it is folded in (50,000 of them would be 15 MB).
   */
  #journalLines = 0;
  #journal: Deno.FsFile | undefined;
  #chain: Promise<void> = Promise.resolve();
  readonly #runStart = Date.now();

  private constructor(
    readonly dataDir: DataDir,
    /** Whether manifest.sha256 exists, and how many files it lists. */
    private hasBase: boolean,
    private baseFiles: number,
    readonly compactMin: number,
  ) {}

  /**
   * Reads the state of the manifest, hashes what it lacks (every file when there is none; the
   * files an interrupted run changed after its last checkpoint), and opens the journal.
   * `progress` is told the count of files hashed so far.
   */
  static async open(
    dataDir: DataDir,
    options: {
      concurrency: number;
      signal?: AbortSignal;
      progress?: (hashed: number) => void;
      /** The journal is folded in at this many files at least (tests make it small). */
      compactMin?: number;
    },
  ): Promise<ManifestStart> {
    const hasBase = await dataDir.exists(MANIFEST_FILE);
    const journal = await readJournal(dataDir);
    const manifest = new Manifest(
      dataDir,
      hasBase,
      hasBase ? await countBase(dataDir) : 0,
      options.compactMin ?? COMPACT_MIN,
    );
    const reason = journal ? "interrupted" : hasBase ? undefined : "no-manifest";
    const since = journal?.runs.length ? Math.min(...journal.runs) : manifest.#runStart;
    const changes = journal?.changes ?? new Map<string, ManifestEntry | null>();
    let hashed = 0;
    if (reason) {
      hashed = await manifest.#scan(changes, reason === "no-manifest" ? undefined : since, options);
    }
    // A fresh journal: an interrupted one may end in a line cut short, which an append would
    // complete into a wrong one. It keeps the interrupted run's start until what this run
    // hashed is flushed, and opens this run's.
    const text = (journal ? `R ${since}\n` : "") +
      [...changes].map(([path, entry]) => journalLine(path, entry)).join("") +
      `R ${manifest.#runStart}\n`;
    manifest.#journalLines = changes.size;
    try {
      await manifest.#resetJournal(text);
      await manifest.checkpoint();
    } catch (error) {
      manifest.abandon();
      throw error;
    }
    return { manifest, hashed, reason };
  }

  /**
   * Hashes the files the manifest cannot vouch for: all of them (`since` undefined), or those
   * an interrupted run that started at `since` changed after its last checkpoint.
   */
  async #scan(
    changes: ReadonlyMap<string, ManifestEntry | null>,
    since: number | undefined,
    options: { concurrency: number; signal?: AbortSignal; progress?: (hashed: number) => void },
  ): Promise<number> {
    let hashed = 0;
    const files = async function* (dataDir: DataDir) {
      for await (const entry of dataDir.walk()) {
        if (entry.kind === "file" && !isStatePath(relPathString(entry.parts))) yield entry.parts;
      }
    };
    await forEachPooled(files(this.dataDir), options.concurrency, async (parts) => {
      options.signal?.throwIfAborted();
      const path = relPathString(parts);
      const known = changes.get(path);
      // Null: the interrupted run was about to remove it and did not; it is hashed again.
      if (since !== undefined && known !== null) {
        const info = await this.dataDir.stat(parts);
        const mtime = info.mtime?.getTime() ?? 0;
        if (known && known.size === info.size && known.mtime === mtime) return;
        // An older file is as the manifest says, or damaged (verify's to tell); unless the
        // manifest was never written, when it was not hashed yet.
        if (mtime < since - MTIME_MARGIN_MS && (this.hasBase || known)) return;
      } else if (since === undefined && known) {
        return;
      }
      const { sha256, size, mtime } = await hashFile(this.dataDir, parts, {
        ...options,
        withTime: true,
      });
      this.#pending.set(path, { sha256, size, mtime: mtime ?? 0 });
      hashed++;
      options.progress?.(hashed);
    });
    if (since !== undefined) {
      // Files the interrupted run recorded and then removed.
      for (const [path, entry] of changes) {
        if (entry && !await this.dataDir.exists(path.split("/"))) this.#pending.set(path, null);
      }
    }
    return hashed;
  }

  written(file: WrittenFile): void {
    const path = this.#rel(file.path);
    if (isStatePath(path)) return;
    this.#pending.set(path, { sha256: file.sha256, size: file.size, mtime: file.mtime });
    this.#dirtyDirs.add(path.slice(0, Math.max(0, path.lastIndexOf("/"))));
  }

  removing(path: string): Promise<void> {
    const rel = this.#rel(path);
    // No line was ever written for a temporary file: the removal of one needs none either.
    if (isStatePath(rel) || isTempName(rel)) return Promise.resolve();
    // The line goes to the journal with what is pending, before the file goes: a run stopped
    // between the two leaves the file, which the next run hashes again (see #scan).
    this.#pending.set(rel, null);
    this.#announced.add(rel);
    return this.checkpoint();
  }

  removed(path: string): void {
    const rel = this.#rel(path);
    if (isStatePath(rel)) return;
    // Its line went to the journal before (removing); the removal is made durable all the
    // same before the next lines, or before the manifest is written without it.
    if (!this.#announced.delete(rel)) this.#pending.set(rel, null);
    // Its line goes only once the removal is durable, as a written file's once its rename is.
    this.#dirtyDirs.add(rel.slice(0, Math.max(0, rel.lastIndexOf("/"))));
  }

  /** Appends what was written since the last checkpoint to the journal, durably. */
  checkpoint(): Promise<void> {
    return this.#serial(() => this.#flush());
  }

  /** Flushes, folds the journal into manifest.sha256 and removes it: the run is complete. */
  close(): Promise<void> {
    return this.#serial(async () => {
      if (!this.#journal) return;
      await this.#flush();
      if (this.#journalLines > 0 || !this.hasBase) await this.#compact(true);
      else await this.#removeJournal();
    });
  }

  /** Closes the journal as it is (after a failure): the next run recovers from it. */
  abandon(): void {
    this.#closeJournal();
  }

  #closeJournal(): void {
    const journal = this.#journal;
    this.#journal = undefined;
    journal?.close();
  }

  #serial(task: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(task);
    this.#chain = next.catch(() => {});
    return next;
  }

  #rel(path: string): string {
    return relative(this.dataDir.root, path).split(sep).join("/");
  }

  async #flush(): Promise<void> {
    if ((this.#pending.size === 0 && this.#dirtyDirs.size === 0) || !this.#journal) return;
    const batch = this.#pending;
    const dirs = this.#dirtyDirs;
    this.#pending = new Map();
    this.#dirtyDirs = new Set();
    const { dataDir } = this;
    // Each file's data was synced before its rename; its folder makes the rename durable.
    // (Nothing is written at the top of the data dir, which has no path of its own here.)
    for (const dir of dirs) if (dir !== "") await dataDir.syncDir(dir.split("/"));
    if (batch.size === 0) return;
    const path = dataDir.path(MANIFEST_JOURNAL);
    dataDir.recorder?.({
      op: "checkpoint",
      path,
      state: { manifest: [...batch.keys()].map((p) => dataDir.existingPath(p.split("/"))) },
    });
    const text = [...batch].map(([file, entry]) => journalLine(file, entry)).join("");
    await writeStep(this.#journal, path, new TextEncoder().encode(text), dataDir.recorder);
    await syncStep(this.#journal, path, dataDir.recorder);
    this.#journalLines += batch.size;
    if (this.#journalLines >= Math.max(this.compactMin, this.baseFiles / 4)) {
      await this.#compact(false);
    }
  }

  /**
   * Writes manifest.sha256 anew (streamed: the old one with the journal's changes) and then
   * starts the journal over, or removes it at the end of the run. A crash in between leaves the
   * old journal, which applies to the new manifest just as well.
   */
  async #compact(closing: boolean): Promise<void> {
    const { dataDir } = this;
    // The journal is read twice rather than held: first the number of each path's last line
    // (keyed by a 106-bit hash of the path, not the path), then those lines are written.
    const last = new Map<string, number>();
    let number = 0;
    for await (const lines of fileLines(dataDir, MANIFEST_JOURNAL)) {
      for (const line of lines) {
        const change = parseJournalLine(line);
        if (change && "path" in change) last.set(pathKey(change.path), number);
        number++;
      }
    }
    const hasBase = this.hasBase;
    let count = 0;
    async function* text(): AsyncGenerator<string> {
      yield HEADER;
      if (hasBase) {
        for await (const batch of baseEntries(dataDir)) {
          for (const [path, entry] of batch) {
            if (last.has(pathKey(path))) continue;
            count++;
            yield manifestLines(path, entry);
          }
        }
      }
      let number = 0;
      for await (const lines of fileLines(dataDir, MANIFEST_JOURNAL)) {
        for (const line of lines) {
          const change = parseJournalLine(line);
          if (change && "path" in change && change.entry) {
            if (last.get(pathKey(change.path)) === number) {
              count++;
              yield manifestLines(change.path, change.entry);
            }
          }
          number++;
        }
      }
      yield `${FILES_PREFIX}${count}\n`;
    }
    await dataDir.writeStream(MANIFEST_FILE, ReadableStream.from(chunked(text())), undefined);
    await dataDir.syncDir([DIRS.state]);
    this.hasBase = true;
    this.baseFiles = count;
    this.#journalLines = 0;
    if (closing) await this.#removeJournal();
    else await this.#resetJournal(`R ${this.#runStart}\n`);
  }

  async #resetJournal(text: string): Promise<void> {
    this.#closeJournal();
    await this.dataDir.writeText(MANIFEST_JOURNAL, text);
    await this.dataDir.syncDir([DIRS.state]);
    this.#journal = await this.dataDir.openForAppend(MANIFEST_JOURNAL);
  }

  async #removeJournal(): Promise<void> {
    this.#closeJournal();
    await this.dataDir.remove(MANIFEST_JOURNAL);
    await this.dataDir.syncDir([DIRS.state]);
  }
}

/** The count of files in manifest.sha256, from its last line (or by reading it all). */
async function countBase(dataDir: DataDir): Promise<number> {
  const file = await dataDir.openForReading(MANIFEST_FILE);
  try {
    const size = file.statSync().size;
    const length = Math.min(size, 64);
    const tail = await readAt(file, size - length, length);
    const last = new TextDecoder().decode(tail).trimEnd().split("\n").at(-1);
    if (last?.startsWith(FILES_PREFIX)) return Number(last.slice(FILES_PREFIX.length));
  } finally {
    file.close();
  }
  let count = 0;
  for await (const batch of baseEntries(dataDir)) count += batch.length;
  return count;
}

/**
 * A 53-bit hash of a path (cyrb53 with a seed): the paths of a large set are remembered by it,
 * not as strings (200,000 of them would be 30 MB).
 */
export function pathHash(path: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Two hashes of a path (106 bits): two paths sharing one key is beyond any chance. */
function pathKey(path: string): string {
  return `${pathHash(path).toString(36)}.${pathHash(path, 1).toString(36)}`;
}

/** Strings joined into chunks of about 64 KB of UTF-8 (one write per chunk, not per line). */
async function* chunked(parts: AsyncIterable<string>): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  let buffer = "";
  for await (const part of parts) {
    buffer += part;
    if (buffer.length >= 65_536) {
      yield encoder.encode(buffer);
      buffer = "";
    }
  }
  if (buffer) yield encoder.encode(buffer);
}
