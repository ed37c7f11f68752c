/**
 * Zips the whole data dir into one archive, entry by entry, under a temporary name that is
 * renamed over the target only when complete (an old zip stays until then). JSON is deflated;
 * media that is already compressed is stored. Memory stays flat in the number of files.
 */
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import { checkWritableFolder, isTempName, TEMP_SUFFIX } from "../store/atomic_write.ts";
import type { DataDir } from "../store/data_dir.ts";
import { LOCK_FILE } from "../store/layout.ts";
import { isSafeComponent, safeName } from "../store/safe_name.ts";
import { StorageError, UsageError } from "../util/errors.ts";
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

/**
 * Zips the data dir. Entries come unsorted, in the order the file system lists them (matterbak
 * did not sort either), so memory stays flat however many posts a folder holds; each zip name
 * is its folder's name plus its own.
 */
export async function writeZip(
  dataDir: DataDir,
  zipPath: string,
  options: ZipOptions,
): Promise<{ entries: number; bytes: number }> {
  const exclude = await excludedKeys([...options.exclude, dataDir.path(LOCK_FILE)]);
  // Below the root nothing is a link (walk never follows one): a file's real path is the
  // root's real path and its components.
  const realRoot = await Deno.realPath(dataDir.root);
  const folder = dirname(zipPath);
  const tempPrefix = `.${basename(zipPath)}.`;
  await removeStaleArchives(folder, tempPrefix);
  const temp = join(folder, `${tempPrefix}${crypto.randomUUID().slice(0, 8)}${TEMP_SUFFIX}`);
  const writer = await ZipWriter.create(temp);
  try {
    for await (const entry of dataDir.walk()) {
      options.signal?.throwIfAborted();
      if (entry.kind === "skipped") {
        options.onSkip?.(dataDir.existingPath(entry.parts), entry.reason);
        continue;
      }
      const name = entry.parts.map(zipComponent).join("/");
      if (entry.kind === "directory") {
        await writer.addDirectory(`${name}/`);
        continue;
      }
      const info = await dataDir.stat(entry.parts);
      const key = info.ino === null ? join(realRoot, ...entry.parts) : fileKey(info);
      if (exclude.has(key)) continue;
      const zipOptions = {
        level: STORED.test(name) ? 0 : 6,
        ...(info.mtime ? { mtime: info.mtime } : {}),
      };
      if (info.size <= WHOLE_FILE_LIMIT) {
        await writer.addBytes(name, await dataDir.readBytes(entry.parts), zipOptions);
      } else {
        const source = await dataDir.openForReading(entry.parts);
        await writer.addStream(name, source.readable, { ...zipOptions, size: info.size });
      }
    }
    await writer.close();
    await Deno.rename(temp, zipPath);
    return { entries: writer.entries, bytes: writer.size };
  } catch (error) {
    await writer.abort();
    await Deno.remove(temp).catch(() => {});
    throw error;
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
