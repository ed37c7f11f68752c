/**
 * Atomic export output: everything is written into a staging folder beside the target (same
 * file system, so the final move is a rename), with a scratch folder for spools, and moved
 * into place only when complete and durable. An interrupted export leaves the previous output
 * untouched; the next export removes the staging folder it left behind. A lock file held while
 * the export runs tells a live staging folder from a dead one.
 */
import { basename, dirname, join, resolve } from "node:path";
import {
  type FsRecorder,
  isTempName,
  outputFailure,
  syncDir,
  syncWritten,
  TEMP_SUFFIX,
} from "../store/atomic_write.ts";
import { isLockHeld, lockFolder, type RunLock } from "../store/run_lock.ts";
import { StorageError } from "../util/errors.ts";

/** Marks a folder as a Markdown export, which a later export may replace. */
export const EXPORT_MARKER = ".matterbak-export";
/** Held by the export writing into the staging folder, for as long as it runs. */
export const STAGING_LOCK = "lock";
/**
 * A staging folder without a lock file (made by a version before locks, or just being
 * created) is judged by its age: one this old was left behind.
 */
const STALE_STAGING_MS = 10 * 60_000;

export type OutputKind = "folder" | "file";

export class Staging {
  /** Where the export writes: a folder (kind "folder") or a file path (kind "file"). */
  readonly output: string;
  /** Scratch space for spools, removed with the staging folder. */
  readonly spool: string;
  /** Files placed as hard links: their data is the backup's, already on disk. */
  readonly #linked = new Set<string>();

  private constructor(
    readonly target: string,
    readonly kind: OutputKind,
    readonly dir: string,
    readonly lock: RunLock,
    readonly recorder: FsRecorder | undefined,
  ) {
    this.output = join(dir, kind === "folder" ? "out" : "out.zip");
    this.spool = join(dir, "spool");
  }

  /**
   * Checks that `target` may be written (a folder only replaces an earlier Markdown export or
   * an empty folder; a file replaces a file) and creates the staging folder beside it. A
   * place that cannot be written is a StorageError naming `target` and why.
   */
  static async create(
    target: string,
    kind: OutputKind,
    recorder?: FsRecorder,
  ): Promise<Staging> {
    const full = resolve(target);
    let dir: string | undefined;
    let lock: RunLock | undefined;
    try {
      await checkTarget(full, kind);
      const parent = dirname(full);
      await Deno.mkdir(parent, { recursive: true });
      const prefix = `.${basename(full)}.`;
      await removeStaleStaging(parent, prefix);
      const random = crypto.getRandomValues(new Uint32Array(1))[0]?.toString(36);
      dir = join(parent, `${prefix}${random}${TEMP_SUFFIX}`);
      await Deno.mkdir(dir);
      lock = await lockFolder(join(dir, STAGING_LOCK));
      const staging = new Staging(full, kind, dir, lock, recorder);
      await Deno.mkdir(staging.spool);
      if (kind === "folder") {
        await Deno.mkdir(staging.output);
        await Deno.writeTextFile(
          join(staging.output, EXPORT_MARKER),
          "matterbak Markdown export\n",
        );
      }
      return staging;
    } catch (error) {
      lock?.release();
      if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw outputFailure(error, full);
    }
  }

  /** Records that `path` (below `output`) is a hard link: it needs no data sync. */
  linked(path: string): void {
    this.#linked.add(path);
  }

  /**
   * Makes the output durable (every file's data but hard links', every folder's entries),
   * moves it into place, makes the move durable, and only then removes the previous output
   * and the staging folder: after a power cut the target holds the previous output or the new
   * one, whole (between a folder's two renames, both are whole in the staging folder).
   */
  async commit(): Promise<void> {
    const { recorder } = this;
    try {
      await Deno.remove(this.spool, { recursive: true });
      const { files, folders } = await this.#written();
      await syncWritten(files, folders, recorder);
      const previous = join(this.dir, "previous");
      if (this.kind === "file") {
        recorder?.({ op: "rename", from: this.output, to: this.target });
        await Deno.rename(this.output, this.target);
      } else {
        // A folder cannot be renamed over a non-empty one: the previous export steps aside
        // first, into the staging folder, which is removed once the new one is durable.
        const existed = await exists(this.target);
        if (existed) {
          recorder?.({ op: "rename", from: this.target, to: previous });
          await Deno.rename(this.target, previous);
        }
        try {
          recorder?.({ op: "rename", from: this.output, to: this.target });
          await Deno.rename(this.output, this.target);
        } catch (error) {
          if (existed) await Deno.rename(previous, this.target).catch(() => {});
          throw error;
        }
      }
      await syncDir(dirname(this.target), recorder);
    } catch (error) {
      throw outputFailure(error, this.target);
    }
    await this.discard();
  }

  /** The files and folders below `output` to sync; the folders deepest first. */
  async #written(): Promise<{ files: string[]; folders: string[] }> {
    if (this.kind === "file") return { files: [this.output], folders: [] };
    const files: string[] = [];
    const folders: string[] = [];
    const walk = async (folder: string) => {
      for await (const entry of Deno.readDir(folder)) {
        const path = join(folder, entry.name);
        if (entry.isDirectory) await walk(path);
        else if (!this.#linked.has(path)) files.push(path);
      }
      folders.push(folder);
    };
    await walk(this.output);
    return { files, folders };
  }

  /**
   * Removes the staging folder and everything in it: after an error or an interruption, or
   * after the commit (the previous output with it).
   */
  async discard(): Promise<void> {
    this.lock.release();
    this.recorder?.({ op: "remove", path: this.dir });
    await Deno.remove(this.dir, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function checkTarget(target: string, kind: OutputKind): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(target);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (kind === "file") {
    if (!info.isFile) throw new StorageError(`${target} exists and is not a file`);
    return;
  }
  if (!info.isDirectory) throw new StorageError(`${target} exists and is not a folder`);
  if (await exists(join(target, EXPORT_MARKER))) return;
  for await (const _ of Deno.readDir(target)) {
    throw new StorageError(
      `${target} is neither empty nor an earlier Markdown export; choose a new folder ` +
        `(an export replaces the whole folder)`,
    );
  }
}

/**
 * Removes staging folders that an export killed part-way left beside the target: those whose
 * lock no process holds. One still being written (by another export to the same target) stays.
 */
async function removeStaleStaging(parent: string, prefix: string): Promise<void> {
  const stale: string[] = [];
  for await (const entry of Deno.readDir(parent)) {
    if (entry.isDirectory && entry.name.startsWith(prefix) && isTempName(entry.name)) {
      stale.push(join(parent, entry.name));
    }
  }
  for (const path of stale) {
    if (await isLive(path)) continue;
    await Deno.remove(path, { recursive: true }).catch(() => {});
  }
}

/** Whether the export that made the staging folder at `path` still runs. */
async function isLive(path: string): Promise<boolean> {
  const held = await isLockHeld(join(path, STAGING_LOCK));
  if (held !== undefined) return held;
  const modified = (await Deno.stat(path).catch(() => undefined))?.mtime?.getTime();
  return modified === undefined || Date.now() - modified <= STALE_STAGING_MS;
}
