/**
 * Zips the whole data dir into one archive, entry by entry, under a temporary name that is
 * renamed over the target only when complete (an old zip stays until then). JSON is deflated;
 * media that is already compressed is stored. Memory stays flat in the number of files.
 */
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { isTempName, TEMP_SUFFIX } from "../store/atomic_write.ts";
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
  /** Absolute paths never to include (credentials, the zip itself). */
  exclude: string[];
  signal?: AbortSignal;
}

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

/** The zip must be writable where asked, and not inside the data dir it is made from. */
export async function checkZipPath(zipPath: string, dataRoot: string): Promise<string> {
  const rel = relative(dataRoot, zipPath);
  if (rel === "" || (!rel.startsWith("..") && !isAbsolute(rel))) {
    throw new UsageError(
      `--output-zip ${zipPath} is inside the data dir ${dataRoot}; put it elsewhere`,
    );
  }
  const info = await Deno.stat(zipPath).catch(() => undefined);
  if (info?.isDirectory) throw new UsageError(`--output-zip ${zipPath} is a directory`);
  const parent = await Deno.stat(dirname(zipPath)).catch(() => undefined);
  if (!parent?.isDirectory) {
    throw new StorageError(`The folder for --output-zip ${zipPath} does not exist`);
  }
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
  const exclude = new Set([
    ...options.exclude.map((p) => resolve(p)),
    dataDir.path(LOCK_FILE),
  ]);
  const folder = dirname(zipPath);
  const tempPrefix = `.${basename(zipPath)}.`;
  await removeStaleArchives(folder, tempPrefix);
  const temp = join(folder, `${tempPrefix}${crypto.randomUUID().slice(0, 8)}${TEMP_SUFFIX}`);
  const writer = await ZipWriter.create(temp);
  try {
    for await (const entry of dataDir.walk()) {
      options.signal?.throwIfAborted();
      if (exclude.has(dataDir.existingPath(entry.parts))) continue;
      const name = entry.parts.map(zipComponent).join("/");
      if (entry.isDirectory) {
        await writer.addDirectory(`${name}/`);
        continue;
      }
      const info = await dataDir.stat(entry.parts);
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
