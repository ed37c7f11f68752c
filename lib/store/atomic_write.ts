/**
 * Crash-safe file writes: data goes to a temporary file in the target's directory, is flushed
 * to disk and only then renamed over the target, so a final name never holds a partial file.
 * Temporary files carry TEMP_SUFFIX so a later run can remove what a crash left behind.
 *
 * No call here writes through a symbolic link at the name it is given: a temporary file is
 * created with `createNew` (O_EXCL, which fails on any existing name, a link included), a rename
 * replaces a link instead of following it, and `openNoFollow` checks that what it opened is what
 * `lstat` saw. The folders above the name are the caller's to check (see DataDir).
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import {
  ExitCode,
  ExpectedError,
  OutputError,
  SizeMismatchError,
  StorageError,
} from "../util/errors.ts";

export const TEMP_SUFFIX = ".mbtmp";
const WINDOWS = Deno.build.os === "windows";

/** True for names of our temporary files. */
export function isTempName(name: string): boolean {
  return name.endsWith(TEMP_SUFFIX);
}

function tempPathFor(path: string): string {
  const random = crypto.getRandomValues(new Uint32Array(2)).join("-");
  return join(dirname(path), `.${random}${TEMP_SUFFIX}`);
}

/**
 * One step on the way to a durable file, as a recorder sees it: data written to a file, its
 * data synced, a rename into place, a folder's entries synced, and a checkpoint (a sync state
 * file is about to claim the work done before it). Tests record the steps of whole runs and
 * assert their order.
 */
export type FsStep =
  | { op: "write"; path: string }
  | { op: "sync"; path: string }
  | { op: "rename"; from: string; to: string }
  | { op: "syncDir"; path: string }
  | { op: "remove"; path: string }
  | { op: "checkpoint"; path: string; state: unknown };

/**
 * Called just before each step, by the same call that does it (so a step cannot be dropped
 * while its record stays). Production code passes none; a recorder that throws stops the write
 * at that step, as a crash there would.
 */
export type FsRecorder = (step: FsStep) => void;

/** A file that reached its final name: its size and SHA-256 (of the bytes written) and mtime. */
export interface WrittenFile {
  path: string;
  size: number;
  /** Lowercase hex. */
  sha256: string;
  /** Modification time in ms, as the file system recorded it. */
  mtime: number;
}

/**
 * Told of every completed write (the manifest of the backup). The hash is computed from the
 * bytes as they are written, so nothing is read back.
 */
export type WriteSink = (file: WrittenFile) => void;

export interface AtomicWriteOptions {
  /** Refuse to rename into place unless exactly this many bytes were written. */
  expectedSize?: number;
  /** Aborts a streamed write; the temporary file is removed. */
  signal?: AbortSignal;
  recorder?: FsRecorder | undefined;
  /**
   * Permission bits of the new file (POSIX; less the umask), set when it is created, so a
   * secret is never in a file others can read, not even for a moment.
   */
  mode?: number;
  /** Called once the file is renamed into place (not when the write fails). */
  sink?: WriteSink | undefined;
  /**
   * false: no sync of the data before the rename (a crash may leave the file empty), for
   * derived files whose loss their reader survives (a site's thread scripts).
   */
  sync?: boolean;
}

/**
 * Writes `data` to `path` atomically and returns the number of bytes written.
 * Streams are copied chunk by chunk, so memory stays flat for large downloads.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string | ReadableStream<Uint8Array>,
  options: AtomicWriteOptions = {},
): Promise<number> {
  const temp = tempPathFor(path);
  const { recorder, sink } = options;
  const hash = sink ? createHash("sha256") : undefined;
  const file = await Deno.open(temp, {
    write: true,
    createNew: true,
    ...(options.mode === undefined ? {} : { mode: options.mode }),
  });
  let closed = false;
  try {
    let written = 0;
    if (data instanceof ReadableStream) {
      const reader = data.getReader();
      try {
        while (true) {
          options.signal?.throwIfAborted();
          const { done, value } = await reader.read();
          if (done) break;
          hash?.update(value);
          written += await writeStep(file, temp, value, recorder);
          // A server sending more than announced must not fill the disk first.
          if (options.expectedSize !== undefined && written > options.expectedSize) {
            throw new SizeMismatchError(path, options.expectedSize, written);
          }
        }
      } catch (error) {
        // The source stops too (a download's connection, a file being read).
        await reader.cancel(error).catch(() => {});
        throw error;
      } finally {
        reader.releaseLock();
      }
    } else {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      hash?.update(bytes);
      written = await writeStep(file, temp, bytes, recorder);
    }
    if (options.expectedSize !== undefined && written !== options.expectedSize) {
      throw new SizeMismatchError(path, options.expectedSize, written);
    }
    if (options.sync !== false) await syncStep(file, temp, recorder);
    // A rename keeps the time of the last write; statSync costs microseconds, an async stat 20+.
    const mtime = hash ? file.statSync().mtime?.getTime() ?? 0 : 0;
    file.close();
    closed = true;
    recorder?.({ op: "rename", from: temp, to: path });
    await Deno.rename(temp, path);
    if (hash) sink?.({ path, size: written, sha256: hash.digest("hex"), mtime });
    return written;
  } catch (error) {
    if (!closed) file.close();
    await Deno.remove(temp).catch(() => {});
    throw storageFailure(error, path);
  }
}

/** A file of a batch: where it goes, and all of its content. */
export interface BatchFile {
  path: string;
  bytes: Uint8Array;
}

/**
 * Fsyncs of a batch issued at once. The file system commits syncs that wait together in one
 * journal commit: on our development disk the 20,710 files of the bench's first backup took
 * 28-45 s synced one by one and 8-21 s with 16 to 500 at a time, no size clearly best
 * (`scripts/bench_floor.ts`, load 10 to 18); 200 is what that floor uses.
 */
export const BATCH_SYNCS = 200;

/**
 * Writes `files` durably together: each to a temporary name in its folder (`createNew`, never
 * through a link), then the data of all of them synced, BATCH_SYNCS at a time, then each
 * renamed into place in the order given, then each folder synced once. When this returns,
 * every file is durable under its final name, so a checkpoint may vouch for them; a final
 * name never holds a partial file. `renamed(index)` and the `sink` are told of each file in
 * place, at once.
 * Opening a file, its sync and its rename are asynchronous: each may wait for the file
 * system's journal while other syncs commit (synchronous opens took 1 ms each then, with the
 * network waiting); a small file's write goes to the page cache, synchronously. On a failure
 * no temporary file is left, the files renamed before it stay (each whole), and the error is thrown (a full disk as StorageError).
 */
export async function writeFilesDurably(
  files: readonly BatchFile[],
  options: {
    recorder?: FsRecorder | undefined;
    sink?: WriteSink | undefined;
    renamed?: (index: number) => void;
  } = {},
): Promise<void> {
  const { recorder, sink } = options;
  const temps: (string | undefined)[] = new Array(files.length);
  /** Each file's modification time, for the sink (a rename keeps it). */
  const mtimes: number[] = [];
  let current = files[0]?.path ?? "";
  try {
    await inSyncChunks(files, async ({ path, bytes }, index, opened) => {
      const temp = tempPathFor(path);
      const handle = opened(await Deno.open(temp, { write: true, createNew: true }));
      temps[index] = temp;
      recorder?.({ op: "write", path: temp });
      for (let offset = 0; offset < bytes.length;) {
        offset += handle.writeSync(bytes.subarray(offset));
      }
      if (sink) mtimes[index] = handle.statSync().mtime?.getTime() ?? 0;
      await syncStep(handle, temp, recorder);
    }, (index) => current = files[index]?.path ?? current);
    const folders = new Set<string>();
    for (const [index, { path }] of files.entries()) {
      current = path;
      const temp = temps[index] as string;
      recorder?.({ op: "rename", from: temp, to: path });
      await Deno.rename(temp, path);
      temps[index] = undefined;
      folders.add(dirname(path));
      if (sink) {
        const { bytes } = files[index] as BatchFile;
        const sha256 = createHash("sha256").update(bytes).digest("hex");
        sink({ path, size: bytes.length, sha256, mtime: mtimes[index] ?? 0 });
      }
      options.renamed?.(index);
    }
    for (const folder of folders) await syncDir(folder, recorder);
  } catch (error) {
    for (const temp of temps) {
      if (temp === undefined) continue;
      try {
        Deno.removeSync(temp);
      } catch {
        // Already gone; a later run removes what is left (isTempName).
      }
    }
    throw storageFailure(error, current);
  }
}

/**
 * Runs `each` on `items` BATCH_SYNCS at a time, a chunk all at once (their syncs then commit
 * together, see BATCH_SYNCS), so that no more are open at once. The files `each` opens (passed
 * to `opened`) are closed once the whole chunk has settled, even when one failed; the first
 * failure of the chunk, by position, is then thrown (`failed` told its index first).
 */
async function inSyncChunks<T>(
  items: readonly T[],
  each: (item: T, index: number, opened: (file: Deno.FsFile) => Deno.FsFile) => Promise<void>,
  failed?: (index: number) => void,
): Promise<void> {
  for (let start = 0; start < items.length; start += BATCH_SYNCS) {
    const open: Deno.FsFile[] = [];
    const opened = (file: Deno.FsFile) => {
      open.push(file);
      return file;
    };
    try {
      const done = await Promise.allSettled(
        items.slice(start, start + BATCH_SYNCS).map((item, i) => each(item, start + i, opened)),
      );
      const first = done.findIndex((result) => result.status === "rejected");
      if (first >= 0) {
        failed?.(start + first);
        throw (done[first] as PromiseRejectedResult).reason;
      }
    } finally {
      for (const file of open) file.close();
    }
  }
}

/** ENOSPC (and EDQUOT, a full quota), which Deno reports without an error class of its own. */
export function isDiskFull(error: unknown): boolean {
  return error instanceof Error &&
    (/\(os error (28|122)\)/.test(error.message) ||
      /ENOSPC|EDQUOT/.test(String((error as { code?: string }).code)));
}

/** EROFS: the whole file system refuses writes (mounted read-only, or remounted after errors). */
function isReadOnlyFs(error: unknown): boolean {
  return error instanceof Error &&
    (/\(os error 30\)/.test(error.message) || (error as { code?: string }).code === "EROFS");
}

/**
 * A failure that no later write to the same file system can escape (a full disk, a read-only
 * mount) as a StorageError naming `path`, which ends the run with exit status 2 instead of
 * failing every item in turn; any other error as it is.
 */
export function storageFailure(error: unknown, path: string): unknown {
  if (error instanceof StorageError) return error;
  if (isDiskFull(error)) {
    return new StorageError(`The disk is full: cannot write ${path}`, { cause: error });
  }
  if (isReadOnlyFs(error)) {
    return new StorageError(`Cannot write ${path}: the file system is read-only`, {
      cause: error,
    });
  }
  return error;
}

/**
 * A failure to write an output outside the data dir (the zip, an export) as an OutputError
 * naming `path` (the output as the user gave it) and the cause: a full disk, a read-only mount,
 * and unless only `"disk"` causes are asked for (where reads of the data dir fail too), a
 * folder we may not write or that does not exist. Unlike a data-dir file, whose missing
 * permission may be one item's failure, an output that cannot be written ends the run (exit
 * status 2); a StorageError stays as it is, any other error too (a bug).
 */
export function outputFailure(
  error: unknown,
  path: string,
  causes: "any" | "disk" = "any",
): unknown {
  if (error instanceof StorageError) return error;
  const options = { cause: error };
  // A full disk or a read-only mount, in the words used for the data dir.
  const disk = storageFailure(error, path);
  if (disk instanceof StorageError) return new OutputError(disk.message, options);
  if (causes === "disk") return error;
  const cause = error instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : error instanceof Deno.errors.NotFound
    ? "a folder on the way does not exist"
    : error instanceof Deno.errors.NotADirectory
    ? "a file on the way is not a folder"
    : error instanceof Deno.errors.NotCapable
    ? "Deno does not let this program write there"
    : error instanceof Error && /\(os error 5\)/.test(error.message)
    ? "input/output error"
    : undefined;
  if (cause === undefined) return error;
  return new OutputError(`Cannot write ${path}: ${cause}`, options);
}

/**
 * Makes files and folders written in place durable, before one rename publishes them (an
 * export's staging folder): the data of each of `files` synced, BATCH_SYNCS at a time (see
 * there why together), then each of `folders` (their entries: the files' names, hard links
 * included). A file that cannot be opened or synced fails the call.
 */
export async function syncWritten(
  files: readonly string[],
  folders: readonly string[],
  recorder?: FsRecorder,
): Promise<void> {
  await inSyncChunks(files, async (path, _index, opened) => {
    // Windows flushes only a file opened for writing (nothing is truncated); elsewhere reading
    // is enough, and works for a copy that kept a read-only mode.
    const file = opened(await Deno.open(path, WINDOWS ? { write: true } : { read: true }));
    await syncStep(file, path, recorder);
  });
  for (let start = 0; start < folders.length; start += BATCH_SYNCS) {
    await Promise.all(folders.slice(start, start + BATCH_SYNCS).map((f) => syncDir(f, recorder)));
  }
}

/** The error for a symbolic link where a file or folder of the data dir (or `where`) was expected. */
export function linkRefused(path: string, where = "the data dir"): StorageError {
  return new StorageError(
    `${path} is a symbolic link: nothing in ${where} is read or written through one ` +
      `(replace it with the folder or file itself, or remove it)`,
  );
}

/**
 * The most a file read whole may hold (a record, a members list, a threads map, a sync state, a
 * seen log). The largest the tool writes are the members of a huge channel, about 650 bytes a
 * member (notify_props and all): 260 MB at the 400,000 members it pages to at most
 * (lib/api/mattermost.ts MAX_LIST_PAGES). Anything larger was not written by it.
 */
export const MAX_READ_WHOLE_BYTES = 256 * 1024 * 1024;

/**
 * A file of the data dir that is no regular file (a FIFO, a device, a socket, a folder) or too
 * large to be read whole: damage, never opened (the open of a FIFO blocks until a writer
 * comes, and nothing, not even a signal, ends it). Not a StorageError: the run goes on, and
 * callers treat the file as the damaged record it is (fetched again, skipped, reported).
 */
export class UnfitFileError extends ExpectedError {
  readonly exitCode = ExitCode.usage;
  /** `reason` says what the file is ("a FIFO (named pipe), not a regular file"). */
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}; it is never read (remove it: the next backup replaces it)`);
  }
}

/**
 * Why the file `info` describes may not be opened (`maxBytes`: it is to be read whole), or
 * undefined when it may.
 */
export function unfitReason(info: Deno.FileInfo, maxBytes?: number): string | undefined {
  if (!info.isFile) return `${fileKind(info)}, not a regular file`;
  return maxBytes === undefined ? undefined : oversizeReason(info.size, maxBytes);
}

/** Why a file of `size` bytes is not read whole, or undefined when it may be. */
export function oversizeReason(
  size: number,
  maxBytes = MAX_READ_WHOLE_BYTES,
): string | undefined {
  return size > maxBytes
    ? `${size} bytes, more than the ${maxBytes} a file read whole may hold`
    : undefined;
}

function fileKind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isSymlink) return "a symbolic link";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  return "something else";
}

/**
 * Opens the file at `path` without following a symbolic link there: `lstat` first (a link is
 * refused), then open, then `fstat` the open file and refuse it unless it is the very file
 * `lstat` saw, so a link swapped in between is caught before a byte is read or written (the
 * open itself neither creates nor truncates anything). A missing file is created with
 * `createNew` when `create` is set, which never follows a link either.
 */
export async function openNoFollow(
  path: string,
  options: { read?: boolean; write?: boolean; append?: boolean; create?: boolean },
): Promise<Deno.FsFile> {
  const { create, ...mode } = options;
  // Twice at most: a file created by someone else between our lstat and createNew.
  for (let attempt = 0;; attempt++) {
    let seen: Deno.FileInfo;
    try {
      seen = await Deno.lstat(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound) || !create) throw error;
      try {
        return await Deno.open(path, { ...mode, write: true, createNew: true });
      } catch (createError) {
        if (createError instanceof Deno.errors.AlreadyExists && attempt === 0) continue;
        throw createError;
      }
    }
    if (seen.isSymlink) throw linkRefused(path);
    // A FIFO would block the open itself, before any check of what was opened.
    const unfit = unfitReason(seen);
    if (unfit) throw new UnfitFileError(path, unfit);
    const file = await Deno.open(path, mode);
    const opened = await file.stat().catch((error) => {
      file.close();
      throw error;
    });
    if (opened.dev !== seen.dev || opened.ino !== seen.ino) {
      file.close();
      throw new StorageError(
        `${path} was replaced while it was being opened (by a symbolic link?); refusing to use it`,
      );
    }
    return file;
  }
}

/**
 * Fails with a StorageError unless a file can be created in `folder` (one is created and
 * removed), so that an unusable folder for the zip or the report stops the run before the
 * backup instead of after it.
 */
export async function checkWritableFolder(folder: string, what: string): Promise<void> {
  const probe = tempPathFor(join(folder, "probe"));
  try {
    (await Deno.open(probe, { write: true, createNew: true })).close();
    await Deno.remove(probe);
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/ \(os error \d+\).*$/s, "") : "";
    throw new StorageError(`Cannot write ${what} into ${folder}: ${reason}`, { cause: error });
  }
}

/** `writeAll` as a recorded step: the record and the write are one call, as for the others. */
export function writeStep(
  file: Deno.FsFile,
  path: string,
  bytes: Uint8Array,
  recorder: FsRecorder | undefined,
): Promise<number> {
  recorder?.({ op: "write", path });
  return writeAll(file, bytes);
}

/** Flushes a file's data to disk, as a recorded step. */
export async function syncStep(
  file: Deno.FsFile,
  path: string,
  recorder: FsRecorder | undefined,
): Promise<void> {
  recorder?.({ op: "sync", path });
  await file.sync();
}

/** Writes all of `bytes` (a single write may take only part); returns their length. */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<number> {
  let offset = 0;
  while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
  return bytes.length;
}

/**
 * Flushes a directory's entries (the renames into it) to disk. Best effort: some platforms
 * (Windows) cannot open a directory for syncing.
 */
export async function syncDir(path: string, recorder?: FsRecorder): Promise<void> {
  recorder?.({ op: "syncDir", path });
  let dir: Deno.FsFile | undefined;
  try {
    dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // Not supported here; the rename is still atomic, only its durability is weaker.
  } finally {
    dir?.close();
  }
}
