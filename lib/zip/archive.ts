/**
 * Zips the whole data dir into one archive, entry by entry, under a temporary name that is
 * renamed over the target only when complete (an old zip stays until then). JSON is deflated;
 * media that is already compressed is stored; what the previous archive holds unchanged is
 * copied from it. Memory stays flat in the number of files but for the previous archive's
 * table (see previous.ts).
 */
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import zlib from "node:zlib";
import {
  checkWritableFolder,
  isTempName,
  outputFailure,
  syncDir,
  TEMP_SUFFIX,
} from "../store/atomic_write.ts";
import type { DataDir, RelPath, WalkEntry } from "../store/data_dir.ts";
import { LOCK_FILE, ZIP_RECORD_FILE } from "../store/layout.ts";
import { isSafeComponent, safeName } from "../store/safe_name.ts";
import { StorageError, UsageError } from "../util/errors.ts";
import { encodeName, type EntryStat } from "./format.ts";
import { PreviousZip, ReuseError, zipRecord } from "./previous.ts";
import { ZipWriter } from "./writer.ts";

/** Extensions whose content is already compressed: deflating them again wastes CPU. */
const STORED =
  /\.(png|jpe?g|gif|webp|zip|gz|tgz|bz2|xz|7z|rar|mp3|mp4|m4a|mov|avi|mkv|webm|ogg|pdf|docx|xlsx|pptx|heic)$/i;
/** Files up to this size are read whole and deflated in one call; larger ones are streamed. */
const WHOLE_FILE_LIMIT = 1 << 20;

export interface ZipOptions {
  /**
   * Files never to include (credentials, the zip itself), however they are spelled: through a
   * symbolic link to the data dir or a folder above it, or as a hard link.
   */
  exclude: string[];
  /** Told of each entry left out because it cannot be read safely (a link, a bad name). */
  onSkip?: (path: string, reason: string) => void;
  signal?: AbortSignal;
  /** Zip64 records for every entry (tests). */
  forceZip64?: boolean;
}

/**
 * Keys of the files to leave out, the same for every path that reaches a file: its device and
 * inode (a hard link or a path through a symbolic link gives the same), else its real path.
 */
async function excludedKeys(paths: string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const path of paths) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (info) keys.add(info.ino === null ? await Deno.realPath(path) : fileKey(info));
  }
  return keys;
}

const fileKey = (info: Deno.FileInfo) => `${info.dev}:${info.ino}`;

/**
 * A path component as it goes into the zip. Names matterbak wrote unsanitised are made safe
 * there; a short hash of the original keeps two such names from colliding with each other or
 * with a safe name, without remembering every name written.
 */
function zipComponent(part: string): string {
  if (isSafeComponent(part)) return part;
  let hash = 2166136261;
  for (let i = 0; i < part.length; i++) hash = Math.imul(hash ^ part.charCodeAt(i), 16777619);
  return `${safeName(part, 180)}~${(hash >>> 0).toString(36)}`;
}

/** The name of a data-dir file in the zip: its path, with unsafe components made safe. */
export function zipName(parts: readonly string[]): string {
  return parts.map(zipComponent).join("/");
}

/**
 * The zip must be writable where asked (checked before the backup, not after it), and not
 * inside the data dir it is made from, also not through another spelling of the path (a
 * symbolic link to the data dir or above it): each run would zip the zip before it.
 */
export async function checkZipPath(zipPath: string, dataRoot: string): Promise<string> {
  const inside = (root: string, path: string) => {
    const rel = relative(root, path);
    return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
  };
  const insideMessage = `--output-zip ${zipPath} is inside the data dir ${dataRoot}`;
  if (inside(dataRoot, zipPath)) throw new UsageError(`${insideMessage}; put it elsewhere`);
  const info = await Deno.stat(zipPath).catch(() => undefined);
  if (info?.isDirectory) throw new UsageError(`--output-zip ${zipPath} is a directory`);
  const folder = dirname(zipPath);
  const realFolder = await Deno.realPath(folder).catch(() => undefined);
  if (realFolder === undefined || !(await Deno.stat(realFolder)).isDirectory) {
    throw new StorageError(`The folder for --output-zip ${zipPath} does not exist`);
  }
  if (inside(await Deno.realPath(dataRoot), join(realFolder, basename(zipPath)))) {
    throw new UsageError(
      `${insideMessage} (through ${folder}, which is ${realFolder}); put it elsewhere`,
    );
  }
  await checkWritableFolder(folder, `--output-zip ${zipPath}`);
  return zipPath;
}

/** What writeZip did. */
export interface ZipResult {
  entries: number;
  bytes: number;
  /** Nothing in the data dir changed: the archive was left as it was, and is still exact. */
  unchanged: boolean;
  /** Files whose compressed bytes were copied from the previous archive. */
  copied: number;
  /** Files read and compressed (or stored) anew. */
  written: number;
}

/**
 * Zips the data dir. Entries come unsorted, in the order the file system lists them (matterbak
 * did not sort either), so memory stays flat however many posts a folder holds; each zip name
 * is its folder's name plus its own.
 *
 * The archive the last run wrote is reused when `.matterbak/zip.json` shows it untouched
 * since: a file whose size, modification time (ms) and inode are what that archive recorded
 * has its compressed bytes and CRC copied from it; only new and changed files are read and
 * compressed. When every entry is the same, in the same order, the archive is left as it is.
 */
export async function writeZip(
  dataDir: DataDir,
  zipPath: string,
  options: ZipOptions,
): Promise<ZipResult> {
  const folder = dirname(zipPath);
  const tempPrefix = `.${basename(zipPath)}.`;
  await removeStaleArchives(folder, tempPrefix).catch(asOutputFailure(zipPath));
  const exclude = await excludedKeys([
    ...options.exclude,
    dataDir.path(LOCK_FILE),
    dataDir.path(ZIP_RECORD_FILE),
  ]);
  // Below the root nothing is a link (walk never follows one): a file's real path is the
  // root's real path and its components.
  const realRoot = await Deno.realPath(dataDir.root);
  const context = { dataDir, zipPath, tempPrefix, options, exclude, realRoot };
  const previous = await PreviousZip.open(zipPath, await dataDir.readJson(ZIP_RECORD_FILE));
  try {
    try {
      return await new ArchiveBuild(context, previous).run();
    } catch (error) {
      // The previous archive was not what its directory said: zip everything anew.
      if (!(error instanceof ReuseError)) throw error;
    }
    return await new ArchiveBuild(context, undefined).run();
  } catch (error) {
    // A full or read-only disk while entries are written: the zip's (the data dir's own
    // writes name their file already).
    throw outputFailure(error, zipPath, "disk");
  } finally {
    previous?.close();
  }
}

/**
 * For `.catch` on what only writes the zip: any failure there is the zip's (an OutputError
 * naming it, see outputFailure); reading the data dir is not wrapped, its errors are its own.
 */
function asOutputFailure(zipPath: string): (error: unknown) => never {
  return (error) => {
    throw outputFailure(error, zipPath);
  };
}

/** Entries being stat'ed and read ahead of the one being written. */
const READ_AHEAD = 16;
/**
 * A file modified this close before it was read may change again within the file system's
 * clock step (2 s on FAT) without its time changing: its entry is marked racy, and the next
 * run compares its content before it trusts the time.
 */
const RACY_MS = 3000;

/** What every build of one writeZip call shares. */
interface BuildContext {
  dataDir: DataDir;
  zipPath: string;
  tempPrefix: string;
  options: ZipOptions;
  /** Keys of the files to leave out (see excludedKeys). */
  exclude: Set<string>;
  realRoot: string;
}

/** A folder or file of the walk, with its name in the zip. */
type Listed = Exclude<WalkEntry, { kind: "skipped" }> & { name: string };

/** One entry of the walk, with what was read ahead for it. */
type Item =
  | { kind: "excluded" }
  | { kind: "directory"; name: string; raw: Uint8Array; index: number }
  | {
    kind: "file";
    name: string;
    raw: Uint8Array;
    parts: RelPath;
    info: Deno.FileInfo;
    /** The previous archive's entry of that name, or -1. */
    index: number;
    /** What that entry says of the file as it is now (see PreviousZip.describes). */
    known: "same" | "racy" | false;
    /** Its bytes can be copied; `stat` is what the new entry records. */
    reuse: boolean;
    stat: EntryStat;
    /** The content when it was read (small files that are not reused). */
    data: Uint8Array | undefined;
  };

class ArchiveBuild {
  #writer: ZipWriter | undefined;
  #temp: string;
  /**
   * While nothing differs from the previous archive: how many of its entries the walk has
   * matched, in its order. The new archive starts with a copy of these, so nothing is written
   * until an entry differs, and nothing at all when none does.
   */
  #matched = 0;
  #matchedFiles = 0;
  /** Matched racy entries whose content was compared and whose time is now old enough. */
  #settled = new Set<number>();
  #copied = 0;
  #written = 0;
  readonly dataDir: DataDir;
  readonly zipPath: string;
  readonly options: ZipOptions;

  constructor(readonly context: BuildContext, readonly previous: PreviousZip | undefined) {
    ({ dataDir: this.dataDir, zipPath: this.zipPath, options: this.options } = context);
    this.#temp = join(
      dirname(this.zipPath),
      `${context.tempPrefix}${crypto.randomUUID().slice(0, 8)}${TEMP_SUFFIX}`,
    );
  }

  async run(): Promise<ZipResult> {
    try {
      for await (const item of readAhead(this.#entries(), READ_AHEAD, (e) => this.#read(e))) {
        this.options.signal?.throwIfAborted();
        if (item.kind === "excluded") continue;
        if (!this.#writer && this.#matches(item)) continue;
        await this.#write(item);
      }
      const { previous } = this;
      if (!this.#writer && previous && this.#matched === previous.count) {
        return {
          entries: previous.count,
          bytes: previous.bytes,
          unchanged: true,
          copied: 0,
          written: 0,
        };
      }
      const writer = await this.#start();
      await this.#publish(writer).catch(asOutputFailure(this.zipPath));
      await this.dataDir.writeJson(
        ZIP_RECORD_FILE,
        zipRecord(this.zipPath, await Deno.stat(this.zipPath)),
      );
      return {
        entries: writer.entries,
        bytes: writer.size,
        unchanged: false,
        copied: this.#copied,
        written: this.#written,
      };
    } catch (error) {
      await this.#writer?.abort();
      if (this.#writer) await Deno.remove(this.#temp).catch(() => {});
      throw error;
    }
  }

  /**
   * Finishes the archive, synced, renames it over the previous one and syncs the folder: the
   * zip.json written next vouches for an archive that is on disk.
   */
  async #publish(writer: ZipWriter): Promise<void> {
    const { recorder } = this.dataDir;
    await writer.close();
    recorder?.({ op: "rename", from: this.#temp, to: this.zipPath });
    await Deno.rename(this.#temp, this.zipPath);
    await syncDir(dirname(this.zipPath), recorder);
  }

  /** The entries to zip, with their zip names, in the order the walk lists them. */
  async *#entries(): AsyncGenerator<Listed> {
    for await (const entry of this.dataDir.walk()) {
      if (entry.kind === "skipped") {
        this.options.onSkip?.(this.dataDir.existingPath(entry.parts), entry.reason);
        continue;
      }
      yield { ...entry, name: zipName(entry.parts) };
    }
  }

  /** What can be known of an entry before it is written: its stat, and whether it is reused. */
  async #read(entry: Listed): Promise<Item> {
    const { dataDir, previous } = this;
    if (entry.kind === "directory") {
      const raw = encodeName(`${entry.name}/`);
      return { kind: "directory", name: entry.name, raw, index: previous?.find(raw) ?? -1 };
    }
    const raw = encodeName(entry.name);
    const { info } = entry;
    const key = info.ino === null ? join(this.context.realRoot, ...entry.parts) : fileKey(info);
    if (this.context.exclude.has(key)) return { kind: "excluded" };
    const mtimeMs = info.mtime?.getTime() ?? 0;
    const stat = { mtimeMs, ino: info.ino ?? undefined, racy: false };
    const index = previous?.find(raw) ?? -1;
    const known = (index >= 0 && previous?.describes(index, info.size, stat)) || false;
    const small = info.size <= WHOLE_FILE_LIMIT;
    const data = known === "same" || !small ? undefined : dataDir.readWalked(entry);
    stat.racy = known !== "same" && mtimeMs > Date.now() - RACY_MS;
    const reuse = known === "same" ||
      (known === "racy" && await this.#sameContent(index, entry.parts, data));
    return {
      kind: "file",
      name: entry.name,
      raw,
      parts: entry.parts,
      info,
      index,
      known,
      reuse,
      stat,
      data: reuse ? undefined : data,
    };
  }

  /** Whether a file has the CRC its previous entry recorded (sizes are already equal). */
  async #sameContent(index: number, parts: RelPath, data: Uint8Array | undefined) {
    let crc = 0;
    if (data) {
      crc = zlib.crc32(data);
    } else {
      const file = await this.dataDir.openForReading(parts);
      for await (const chunk of file.readable) crc = zlib.crc32(chunk, crc);
    }
    return (crc >>> 0) === this.previous?.crc(index);
  }

  /** True while the walk still matches the previous archive, entry for entry, in order. */
  #matches(item: Exclude<Item, { kind: "excluded" }>): boolean {
    const { previous } = this;
    if (!previous || item.index !== this.#matched) return false;
    if (item.kind === "directory") {
      if (!previous.isDirectory(item.index)) return false;
    } else {
      if (!item.reuse) return false;
      if (item.known === "racy" && !item.stat.racy) this.#settled.add(item.index);
      this.#matchedFiles++;
    }
    this.#matched++;
    return true;
  }

  /** The new archive, begun with a copy of the entries matched so far. */
  async #start(): Promise<ZipWriter> {
    if (this.#writer) return this.#writer;
    const writer = await ZipWriter.create(this.#temp, {
      forceZip64: this.options.forceZip64 ?? false,
      recorder: this.dataDir.recorder,
    }).catch(asOutputFailure(this.zipPath));
    this.#writer = writer;
    if (this.#matched > 0 && this.previous) {
      await writer.addCopiedStart(
        this.previous.startEntries(this.#matched),
        this.previous.startRecords(this.#matched, this.#settled),
        this.#matched,
      );
      this.#copied += this.#matchedFiles;
    }
    return writer;
  }

  async #write(item: Exclude<Item, { kind: "excluded" }>): Promise<void> {
    const writer = await this.#start();
    if (item.kind === "directory") {
      await writer.addDirectory(`${item.name}/`);
      return;
    }
    const { info, stat } = item;
    const entryOptions = { ...(info.mtime ? { mtime: info.mtime } : {}), stat };
    if (item.reuse && this.previous) {
      const copied = await this.previous.copied(item.index, item.raw);
      await writer.addCopy(item.name, copied, entryOptions);
      this.#copied++;
      return;
    }
    const options = { level: STORED.test(item.name) ? 0 : 6, ...entryOptions };
    if (item.data) {
      await writer.addBytes(item.name, item.data, options);
    } else {
      const source = await this.dataDir.openForReading(item.parts);
      await writer.addStream(item.name, source.readable, { ...options, size: info.size });
    }
    this.#written++;
  }
}

/**
 * Maps `source` through `task` with up to `ahead` tasks running, yielding the results in the
 * source's order. A task's error is thrown when its turn comes.
 */
async function* readAhead<T, R>(
  source: AsyncIterable<T>,
  ahead: number,
  task: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const pending: Promise<R>[] = [];
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  try {
    while (true) {
      while (!done && pending.length < ahead) {
        const next = await iterator.next();
        if (next.done) {
          done = true;
          break;
        }
        const promise = task(next.value);
        // Handled when its turn comes; until then a rejection is not "unhandled".
        promise.catch(() => {});
        pending.push(promise);
      }
      const first = pending.shift();
      if (!first) return;
      yield await first;
    }
  } finally {
    // When the caller stops early: the tasks under way end before this does, and the folders
    // the walk has open are closed.
    await Promise.allSettled(pending);
    if (!done) await iterator.return?.();
  }
}

/** An archive being written changes every few milliseconds; one older than this was left. */
const STALE_ARCHIVE_MS = 10 * 60_000;

/**
 * Removes temporary archives that a run killed while zipping left beside the zip (they can be
 * big). One still being written, by a run for another data dir, is recent and stays.
 */
async function removeStaleArchives(folder: string, tempPrefix: string): Promise<void> {
  const stale: string[] = [];
  for await (const entry of Deno.readDir(folder)) {
    if (entry.isFile && entry.name.startsWith(tempPrefix) && isTempName(entry.name)) {
      stale.push(join(folder, entry.name));
    }
  }
  for (const path of stale) {
    const modified = (await Deno.stat(path).catch(() => undefined))?.mtime?.getTime();
    if (modified !== undefined && Date.now() - modified > STALE_ARCHIVE_MS) {
      await Deno.remove(path).catch(() => {});
    }
  }
}
