/**
 * All file access below the data dir goes through here: every path is built from checked
 * components and verified to stay inside the root, JSON is read and written in one format,
 * and every write is atomic. Nothing below the root is read, written, created or removed
 * through a symbolic link: each component is checked with `lstat` on the way (the root itself
 * may be a link; where the data dir lives is the user's choice). Nothing is opened by name for
 * reading unless that `lstat` saw a regular file, no larger than MAX_READ_WHOLE_BYTES when it
 * is read whole (UnfitFileError): a FIFO left in the data dir would block the open for good,
 * and a device or a huge file would never end or fill the memory.
 */
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import {
  type FsRecorder,
  isTempName,
  linkRefused,
  MAX_READ_WHOLE_BYTES,
  openNoFollow,
  oversizeReason,
  storageFailure,
  syncDir,
  UnfitFileError,
  unfitReason,
  writeFileAtomic,
  writeFilesDurably,
  type WrittenFile,
} from "./atomic_write.ts";
import { describeError, StorageError } from "../util/errors.ts";
import { DIRS } from "./layout.ts";
import { isContainedComponent } from "./safe_name.ts";

export { MAX_READ_WHOLE_BYTES, oversizeReason, UnfitFileError };

/** Relative path inside the data dir, as components. */
export type RelPath = readonly string[];

/**
 * An entry of `walk`: a folder, a file with what `lstat` said of it (read it with
 * `readWalked`; no `lstat` when the walk only prepares reads), or one that cannot be read, and
 * why.
 */
export type WalkEntry<Info = Deno.FileInfo> =
  | { parts: RelPath; kind: "directory" }
  | { parts: RelPath; kind: "file"; info: Info }
  | { parts: RelPath; kind: "skipped"; reason: string };

/**
 * Told of every file written or removed below the root, with absolute paths (the manifest,
 * lib/store/manifest.ts), and of each checkpoint before its state file is written.
 */
export interface DataDirSink {
  written(file: WrittenFile): void;
  /**
   * A file is about to be removed: say so durably first, so that a run stopped right after
   * the removal leaves no line for a file that is gone (which would pass for damage).
   */
  removing(path: string): Promise<void>;
  removed(path: string): void;
  /** A sync state is about to vouch for what was written: record it durably first. */
  checkpoint(): Promise<void>;
}

/** A file of a batch written with `writeBatch`. */
export interface BatchWrite {
  parts: RelPath;
  data: string | Uint8Array;
}

export class DataDir {
  readonly root: string;
  /**
   * Folders prepared by prepareReads, `/`-joined ("" for the root), with the names in them that
   * are neither regular files nor folders: links, FIFOs, devices, sockets (almost always none).
   */
  #irregularIn = new Map<string, Set<string>>();
  /** The root with a separator after it: existingPath's prefix. */
  readonly #prefix: string;
  /** Set by the run that keeps the manifest; none for readers. */
  sink: DataDirSink | undefined;

  /**
   * `recorder` sees every step of every write below the root (tests only); `label` names the
   * root in errors (the viewer's site folder is kept with the same checks).
   */
  constructor(root: string, readonly recorder?: FsRecorder, readonly label = "the data dir") {
    this.root = resolve(root);
    this.#prefix = this.root.endsWith(sep) ? this.root : this.root + sep;
  }

  /**
   * The data dir at `path` for a backup run: an existing folder or one that can be made, with
   * `.matterbak/` writable; anything else is a StorageError that names the folder.
   */
  static async open(path: string, recorder?: FsRecorder): Promise<DataDir> {
    const dataDir = new DataDir(path, recorder);
    try {
      const info = await Deno.stat(dataDir.root);
      if (!info.isDirectory) {
        throw new StorageError(`The data dir ${dataDir.root} is not a directory`);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        if (error instanceof StorageError) throw error;
        throw new StorageError(`Cannot use the data dir ${dataDir.root}: ${describeError(error)}`);
      }
    }
    try {
      await dataDir.ensureDir([DIRS.state]);
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw new StorageError(
        `Cannot write to the data dir ${dataDir.root}: ${describeError(error)}`,
      );
    }
    return dataDir;
  }

  /**
   * Absolute path of `parts` for writing. This is the final guard behind the sanitiser: a
   * component may not be empty, `.`/`..`, hold a separator or control character or exceed
   * 255 bytes, and the result must lie inside the root. (Existing folders that matterbak named
   * with, say, a trailing dot are still accepted; names we create are stricter, see safeName.)
   */
  path(parts: RelPath): string {
    for (const part of parts) {
      if (!isContainedComponent(part)) {
        throw new StorageError(
          `Refusing unsafe path component ${JSON.stringify(part)} in ${this.root}`,
        );
      }
    }
    const full = resolve(this.root, ...parts);
    const rel = relative(this.root, full);
    if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw new StorageError(`Refusing to write outside ${this.label} ${this.root}: ${full}`);
    }
    return full;
  }

  /**
   * Absolute path for reading an entry that may already exist under a name we would not
   * create (matterbak kept attachment names as they came); only containment is checked.
   */
  existingPath(parts: RelPath): string {
    for (const part of parts) {
      if (
        part === "" || part === "." || part === ".." || part.includes("/") ||
        (Deno.build.os === "windows" && part.includes("\\"))
      ) {
        throw new StorageError(`Refusing path component ${JSON.stringify(part)} in ${this.root}`);
      }
    }
    // What join() gives for such components (nothing to normalize), without its work: verify
    // opens 200,000 files by it.
    return parts.length === 0 ? this.root : this.#prefix + parts.join(sep);
  }

  /**
   * Refuses a symbolic link at any component of `parts`, the last one included: each is
   * `lstat`ed from the root down, never followed. Stops at the first component that does not
   * exist (nothing below it does either). A link swapped in by someone racing this check
   * before the path is used is not caught here (see "Security" in the README); at the last
   * component the callers close that gap where they can (atomic writes, openNoFollow).
   * Synchronous on purpose: it runs for every file read and written, and four async lstats
   * took about 120 µs where four synchronous ones took 8 µs (measured here). Returns what
   * `lstat` said of the last component; undefined when it does not exist.
   */
  #refuseLinks(parts: RelPath): Deno.FileInfo | undefined {
    let current = this.root;
    let info: Deno.FileInfo | undefined;
    for (const part of parts) {
      current = join(current, part);
      try {
        info = Deno.lstatSync(current);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
          return undefined;
        }
        throw error;
      }
      if (info.isSymlink) throw linkRefused(current, this.label);
    }
    return info;
  }

  /** The path of `parts` to create, write or remove: contained and with no link on the way. */
  #forWriting(parts: RelPath): string {
    const full = this.path(parts);
    this.#refuseLinks(parts);
    return full;
  }

  /** The path of an entry that may exist (to read or remove): contained, no link on the way. */
  #existing(parts: RelPath): string {
    const full = this.existingPath(parts);
    this.#refuseLinks(parts);
    return full;
  }

  /**
   * The path of an entry that may exist, contained and with no link at any component, for a
   * caller that does its own reads, renames and removals below the root (the viewer's site).
   */
  checkedPath(parts: RelPath): string {
    return this.#existing(parts);
  }

  /**
   * The path of a file to open for reading: as #existing, and what is there a regular file
   * (no larger than MAX_READ_WHOLE_BYTES when it is to be read `whole`), else UnfitFileError.
   * The check costs no system call: it is the `lstat` #refuseLinks takes of the last component.
   * A missing file passes (the open then says NotFound).
   */
  #forReading(parts: RelPath, whole: boolean): string {
    const full = this.existingPath(parts);
    const info = this.#refuseLinks(parts);
    const unfit = info && unfitReason(info, whole ? MAX_READ_WHOLE_BYTES : undefined);
    if (unfit) throw new UnfitFileError(full, unfit);
    return full;
  }

  /**
   * Creates the folder and the missing ones above it, one level at a time: a recursive mkdir
   * would follow a link on the way. mkdir of a single level never follows one.
   */
  async ensureDir(parts: RelPath): Promise<void> {
    let current = this.root;
    try {
      await Deno.mkdir(this.root, { recursive: true });
      for (let depth = 1; depth <= parts.length; depth++) {
        current = this.path(parts.slice(0, depth));
        let info = lstatOrUndefined(current);
        if (!info) {
          try {
            await Deno.mkdir(current);
            continue;
          } catch (error) {
            if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
            info = Deno.lstatSync(current);
          }
        }
        if (info.isSymlink) throw linkRefused(current, this.label);
        if (!info.isDirectory) throw new StorageError(`${current} is not a folder`);
      }
    } catch (error) {
      throw storageFailure(error, current);
    }
  }

  /** Entries of a folder, read one at a time (a folder can hold 200,000 posts); none when missing. */
  async *entries(parts: RelPath): AsyncGenerator<Deno.DirEntry> {
    try {
      yield* Deno.readDir(this.#existing(parts));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
  }

  /**
   * The files of a folder (isFileEntry) with their sizes and modification times (ms), entry by
   * entry; none when the folder is missing. The folder is checked for links once; each entry is
   * `lstat`ed, never followed. A file removed between the listing and its lstat is left out.
   * With `wanted`, only the names it accepts are `lstat`ed.
   */
  async *fileStats(
    parts: RelPath,
    wanted?: (name: string) => boolean,
  ): AsyncGenerator<{ name: string; size: number; mtime: number }> {
    const folder = this.#existing(parts);
    for await (const entry of this.entries(parts)) {
      if (!isFileEntry(entry) || wanted && !wanted(entry.name)) continue;
      const info = lstatOrUndefined(join(folder, entry.name));
      if (info && !info.isSymlink && !info.isDirectory) {
        yield { name: entry.name, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
      }
    }
  }

  /** All entries of a small folder; empty when it does not exist. */
  list(parts: RelPath): Promise<Deno.DirEntry[]> {
    return Array.fromAsync(this.entries(parts));
  }

  async exists(parts: RelPath): Promise<boolean> {
    try {
      await Deno.lstat(this.#existing(parts));
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }

  /** Size of a regular file, undefined when missing. */
  async size(parts: RelPath): Promise<number | undefined> {
    try {
      const info = await Deno.lstat(this.#existing(parts));
      return info.isFile ? info.size : undefined;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  /**
   * Parsed JSON of a file; undefined when it is missing, not valid JSON or unfit to be read
   * (UnfitFileError). Everything the sync reads back this way can be rebuilt (a state from the
   * server and the stored posts, a record fetched again), so a corrupt file is treated as
   * absent and replaced, never fatal; `verify` is what reports it. Callers still check the
   * shape of what they get.
   */
  async readJson<T>(parts: RelPath): Promise<T | undefined> {
    const text = await this.readText(parts).catch((error) => {
      if (error instanceof UnfitFileError) return undefined;
      throw error;
    });
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch {
      return undefined;
    }
  }

  /** A file's text, undefined when it is missing; UnfitFileError when it is unfit (#forReading). */
  async readText(parts: RelPath): Promise<string | undefined> {
    try {
      return await Deno.readTextFile(this.#forReading(parts, true));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  /**
   * Writes `value` as JSON unless the file already holds exactly that; true if written. A file
   * that cannot be read (damaged, unfit) is replaced.
   */
  async writeJson(parts: RelPath, value: unknown): Promise<boolean> {
    const text = encodeJson(value);
    if ((await this.readText(parts).catch(() => undefined)) === text) return false;
    await writeFileAtomic(this.#forWriting(parts), text, this.#writeOptions());
    return true;
  }

  /**
   * Writes a sync state file. It is a checkpoint: once it is on disk, the next run trusts that
   * the work it describes is, so callers make that work durable first (`syncDir`).
   */
  async writeState(parts: RelPath, state: unknown): Promise<boolean> {
    this.recorder?.({ op: "checkpoint", path: this.path(parts), state: structuredClone(state) });
    await this.sink?.checkpoint();
    return await this.writeJson(parts, state);
  }

  /**
   * Writes `files` durably together (see writeFilesDurably): when this returns, each is synced,
   * in place, and its folder synced. Each folder is checked for links once per batch. The final
   * names are not: a temporary file is created with `createNew` and a rename replaces a link
   * there instead of following it (callers that compare with the stored content read it first,
   * and that read refuses a link). `renamed(index)` is told of each file in place.
   */
  async writeBatch(
    files: readonly BatchWrite[],
    renamed?: (index: number) => void,
  ): Promise<void> {
    const checked = new Set<string>();
    const encoder = new TextEncoder();
    const batch = files.map(({ parts, data }) => {
      const path = this.path(parts);
      const folder = parts.slice(0, -1);
      const key = folder.join("/");
      if (!checked.has(key)) {
        this.#refuseLinks(folder);
        checked.add(key);
      }
      return { path, bytes: typeof data === "string" ? encoder.encode(data) : data };
    });
    await writeFilesDurably(batch, { ...this.#writeOptions(), ...(renamed ? { renamed } : {}) });
  }

  /** Writes `text` atomically (callers that already compared it with the file's content). */
  async writeText(parts: RelPath, text: string): Promise<void> {
    await writeFileAtomic(this.#forWriting(parts), text, this.#writeOptions());
  }

  async writeBytes(parts: RelPath, bytes: Uint8Array): Promise<number> {
    return await writeFileAtomic(this.#forWriting(parts), bytes, this.#writeOptions());
  }

  async writeStream(
    parts: RelPath,
    stream: ReadableStream<Uint8Array>,
    expectedSize: number | undefined,
    signal?: AbortSignal,
  ): Promise<number> {
    return await writeFileAtomic(this.#forWriting(parts), stream, {
      ...(expectedSize === undefined ? {} : { expectedSize }),
      ...(signal ? { signal } : {}),
      ...this.#writeOptions(),
    });
  }

  /** The recorder and, when a manifest is kept, the report of each finished write to it. */
  #writeOptions(): { recorder: FsRecorder | undefined; sink?: (file: WrittenFile) => void } {
    const sink = this.sink;
    return { recorder: this.recorder, ...(sink ? { sink: (file) => sink.written(file) } : {}) };
  }

  /** Opens an existing file for appending (a log; it is never truncated in place). */
  async openForAppend(parts: RelPath): Promise<Deno.FsFile> {
    const full = this.#forWriting(parts);
    try {
      return await openNoFollow(full, { append: true });
    } catch (error) {
      throw storageFailure(error, full);
    }
  }

  /** Opens a file for reading and writing, creating it when missing (the run lock). */
  async openForUpdate(parts: RelPath): Promise<Deno.FsFile> {
    const full = this.#forWriting(parts);
    try {
      return await openNoFollow(full, { read: true, write: true, create: true });
    } catch (error) {
      throw storageFailure(error, full);
    }
  }

  /**
   * Every entry below the root, folders before what they hold, in the order the file system
   * lists them: nothing is collected, so memory stays flat however many posts a folder holds.
   * Temporary files of writes under way or interrupted are left out unless `withTemp` (verify
   * reports them). What cannot be read as a file or folder of the backup comes as `skipped`
   * with the reason: a symbolic link (never followed), a name that is not valid UTF-8 (Deno
   * lists it with U+FFFD in place of the bad bytes, a name that then does not exist), anything
   * else (a socket, a device). A file comes with its `lstat`, taken synchronously: the walk
   * enters no link, so the folders above need no check, and 200,000 asynchronous calls cost
   * seconds (25-45 µs each against 6-8 µs). With `prepare`, each folder listed to its end
   * counts as prepared for reads (prepareReads), and files come without their `lstat`: verify
   * lists each folder once, and reads each file anyway.
   */
  walk(parts?: RelPath): AsyncGenerator<WalkEntry>;
  walk(
    parts: RelPath,
    options: { withTemp?: boolean; prepare: true },
  ): AsyncGenerator<WalkEntry<undefined>>;
  async *walk(
    parts: RelPath = [],
    options: { withTemp?: boolean; prepare?: boolean } = {},
  ): AsyncGenerator<WalkEntry<Deno.FileInfo | undefined>> {
    // One generator with a stack of open folders: nested generators would pass every entry up
    // through one `yield*` per level.
    const open = [{ parts, entries: this.entries(parts), irregular: new Set<string>() }];
    try {
      while (open.length > 0) {
        const folder = open.at(-1) as (typeof open)[number];
        const next = await folder.entries.next();
        if (next.done) {
          open.pop();
          if (options.prepare) this.#irregularIn.set(folder.parts.join("/"), folder.irregular);
          continue;
        }
        const entry = next.value;
        const child = [...folder.parts, entry.name];
        const wanted = entry.isFile && (options.withTemp || !isTempName(entry.name));
        const info = wanted && !options.prepare
          ? lstatOrUndefined(this.existingPath(child))
          : undefined;
        if (entry.isSymlink || info?.isSymlink || (!entry.isFile && !entry.isDirectory)) {
          folder.irregular.add(entry.name);
        }
        if (entry.name.includes("\uFFFD") && !lstatOrUndefined(this.existingPath(child))) {
          yield {
            parts: child,
            kind: "skipped",
            reason: "its name is not valid UTF-8 (rename it)",
          };
        } else if (entry.isSymlink || info?.isSymlink) {
          yield { parts: child, kind: "skipped", reason: "it is a symbolic link (never followed)" };
        } else if (entry.isDirectory) {
          yield { parts: child, kind: "directory" };
          open.push({ parts: child, entries: this.entries(child), irregular: new Set<string>() });
        } else if (!entry.isFile || (info && !info.isFile)) {
          yield { parts: child, kind: "skipped", reason: "it is neither a file nor a folder" };
        } else if (options.prepare ? wanted : info) {
          yield { parts: child, kind: "file", info };
        }
      }
    } finally {
      // Stopped early: the folders still open are closed.
      for (const folder of open) await folder.entries.return(undefined);
    }
  }

  /**
   * The whole content of a file `walk` listed, read synchronously (for small files: the zip
   * reads 200,000 of them). Refused unless the file opened is the one the walk saw (same
   * device and inode), so a link swapped in since is caught before a byte is read, as in
   * openNoFollow.
   */
  readWalked(entry: { parts: RelPath; info: Deno.FileInfo }): Uint8Array {
    const path = this.existingPath(entry.parts);
    const file = Deno.openSync(path, { read: true });
    try {
      const opened = file.statSync();
      if (opened.dev !== entry.info.dev || opened.ino !== entry.info.ino) {
        throw new StorageError(`${path} was replaced while it was being read; refusing to use it`);
      }
      // As long as the file was when opened: this tool replaces files, never grows them.
      const bytes = new Uint8Array(opened.size);
      let offset = 0;
      while (offset < bytes.length) {
        const read = file.readSync(bytes.subarray(offset));
        if (read === null) break;
        offset += read;
      }
      return bytes.subarray(0, offset);
    } finally {
      file.close();
    }
  }

  async stat(parts: RelPath): Promise<Deno.FileInfo> {
    return await Deno.lstat(this.#existing(parts));
  }

  /** A file's bytes; UnfitFileError when it is unfit (#forReading). */
  async readBytes(parts: RelPath): Promise<Uint8Array> {
    return await Deno.readFile(this.#forReading(parts, true));
  }

  /** A file to read in pieces (any size); UnfitFileError when it is no regular file. */
  async openForReading(parts: RelPath): Promise<Deno.FsFile> {
    return await Deno.open(this.#forReading(parts, false), { read: true });
  }

  /**
   * Makes openForReadingSync of the files in `folder` cost no system call of their own beyond
   * the open: the folder's components are checked with `lstat` and its entries listed once
   * (streamed: a folder can hold 200,000 posts), noting which are neither files nor folders
   * (links, FIFOs, devices: the listing tells). Fails like the other reads when a component is
   * a link.
   */
  prepareReads(folder: RelPath): Promise<void> | undefined {
    const key = folder.join("/");
    // Undefined when done already: most calls, and awaiting nothing costs nothing.
    if (this.#irregularIn.has(key)) return undefined;
    return (async () => {
      const irregular = new Set<string>();
      for await (const entry of this.entries(folder)) {
        if (!entry.isFile && !entry.isDirectory) irregular.add(entry.name);
      }
      this.#irregularIn.set(key, irregular);
    })();
  }

  /**
   * The names in a folder (`/`-separated, "" for the root) that prepareReads found neither
   * files nor folders; undefined when it has not checked the folder. Verify's workers are sent
   * them (adoptPreparedReads): each folder is listed once, not once a thread.
   */
  preparedIrregular(folder: string): string[] | undefined {
    const irregular = this.#irregularIn.get(folder);
    return irregular && [...irregular];
  }

  /** Takes the check of a folder that prepareReads of another DataDir of this root made. */
  adoptPreparedReads(folder: string, irregular: readonly string[]): void {
    this.#irregularIn.set(folder, new Set(irregular));
  }

  /**
   * Opens a file to read with synchronous calls (an async open costs tens of microseconds, most
   * of the time a verify of 200,000 small files takes). A link is refused at every component as
   * for the other reads, and so is a file that is no regular file (UnfitFileError; any size is
   * read, in pieces): by `lstat`, or in a folder prepared by prepareReads by its listing.
   * (O_NOFOLLOW cannot do it: with a permission narrower than --allow-all, Deno resolves links
   * in the path for its permission check and opens the target.) A link swapped in after the
   * check is not caught, as for the other reads (see "Security" in the README).
   */
  openForReadingSync(parts: RelPath): SyncReader {
    const irregular = this.#irregularIn.get(parts.slice(0, -1).join("/"));
    const full = !irregular || irregular.has(parts.at(-1) as string)
      ? this.#forReading(parts, false)
      : this.existingPath(parts);
    return new SyncReader(Deno.openSync(full, { read: true }));
  }

  /**
   * Removes temporary files that an interrupted or crashed run left below the root. Folders
   * are read entry by entry (a channel folder can hold 200,000 posts); only their temporary
   * files and subfolders are remembered.
   */
  async removeStaleTempFiles(parts: RelPath = []): Promise<number> {
    const temps: string[] = [];
    const subdirs: string[] = [];
    for await (const entry of this.entries(parts)) {
      if (entry.isDirectory) subdirs.push(entry.name);
      else if (entry.isFile && isTempName(entry.name)) temps.push(entry.name);
    }
    let removed = 0;
    for (const name of temps) if (await this.remove([...parts, name])) removed++;
    for (const name of subdirs) removed += await this.removeStaleTempFiles([...parts, name]);
    return removed;
  }

  /** Makes the renames into a folder durable (see `syncDir`). */
  async syncDir(parts: RelPath): Promise<void> {
    await syncDir(this.#forWriting(parts), this.recorder);
  }

  /** Removes a file; false when there was none (or its name cannot be opened: not UTF-8). */
  async remove(parts: RelPath): Promise<boolean> {
    const full = this.#existing(parts);
    await this.sink?.removing(full);
    this.recorder?.({ op: "remove", path: full });
    try {
      await Deno.remove(full);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw storageFailure(error, full);
      // Gone already: the manifest forgets it all the same.
      this.sink?.removed(full);
      return false;
    }
    this.sink?.removed(full);
    return true;
  }
}

/** A file open for synchronous reads (see openForReadingSync). */
export class SyncReader {
  constructor(readonly file: Deno.FsFile) {}

  /** Reads into `buffer` from where the last read ended; 0 at the end of the file. */
  read(buffer: Uint8Array): number {
    return this.file.readSync(buffer) ?? 0;
  }

  /** Its modification time in ms (a call of its own: most readers need none). */
  mtime(): number {
    return this.file.statSync().mtime?.getTime() ?? 0;
  }

  close(): void {
    this.file.close();
  }
}

/**
 * Whether a listed entry stands where a file of the backup is: a regular file, or anything else
 * that is neither a folder nor a link (a FIFO, a device, a socket), which readers then meet as
 * damage (UnfitFileError) instead of passing over it in silence.
 */
export function isFileEntry(entry: Deno.DirEntry): boolean {
  return !entry.isDirectory && !entry.isSymlink;
}

/** `lstat` of a path, undefined when nothing is there. */
function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** The one JSON format of the backup: compact UTF-8, as matterbak wrote it. */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value);
}
