/**
 * Atomic export output: everything is written into a staging folder beside the target (same
 * file system, so the final move is a rename), with a scratch folder for spools, and moved
 * into place only when complete. An interrupted export leaves the previous output untouched;
 * the next export removes the staging folder it left behind.
 */
import { basename, dirname, join, resolve } from "node:path";
import { isTempName, syncDir, TEMP_SUFFIX } from "../store/atomic_write.ts";
import { StorageError } from "../util/errors.ts";

/** Marks a folder as a Markdown export, which a later export may replace. */
export const EXPORT_MARKER = ".matterbak-export";
/** A staging folder changes every few milliseconds while in use; one older than this was left. */
const STALE_STAGING_MS = 10 * 60_000;

export type OutputKind = "folder" | "file";

export class Staging {
  /** Where the export writes: a folder (kind "folder") or a file path (kind "file"). */
  readonly output: string;
  /** Scratch space for spools, removed with the staging folder. */
  readonly spool: string;

  private constructor(
    readonly target: string,
    readonly kind: OutputKind,
    readonly dir: string,
  ) {
    this.output = join(dir, kind === "folder" ? "out" : "out.zip");
    this.spool = join(dir, "spool");
  }

  /**
   * Checks that `target` may be written (a folder only replaces an earlier Markdown export or
   * an empty folder; a file replaces a file) and creates the staging folder beside it.
   */
  static async create(target: string, kind: OutputKind): Promise<Staging> {
    const full = resolve(target);
    await checkTarget(full, kind);
    const parent = dirname(full);
    await Deno.mkdir(parent, { recursive: true });
    const prefix = `.${basename(full)}.`;
    await removeStaleStaging(parent, prefix);
    const random = crypto.getRandomValues(new Uint32Array(1))[0]?.toString(36);
    const dir = join(parent, `${prefix}${random}${TEMP_SUFFIX}`);
    await Deno.mkdir(dir);
    const staging = new Staging(full, kind, dir);
    await Deno.mkdir(staging.spool);
    if (kind === "folder") {
      await Deno.mkdir(staging.output);
      await Deno.writeTextFile(join(staging.output, EXPORT_MARKER), "matterbak Markdown export\n");
    }
    return staging;
  }

  /** Moves the output into place (replacing the previous one) and removes the staging folder. */
  async commit(): Promise<void> {
    await Deno.remove(this.spool, { recursive: true });
    if (this.kind === "file") {
      await Deno.rename(this.output, this.target);
    } else {
      // A folder cannot be renamed over a non-empty one: the previous export steps aside first.
      const previous = join(this.dir, "previous");
      const existed = await exists(this.target);
      if (existed) await Deno.rename(this.target, previous);
      try {
        await Deno.rename(this.output, this.target);
      } catch (error) {
        if (existed) await Deno.rename(previous, this.target).catch(() => {});
        throw error;
      }
    }
    await syncDir(dirname(this.target));
    await this.discard();
  }

  /** Removes the staging folder and everything in it (after an error or an interruption). */
  async discard(): Promise<void> {
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

/** Removes staging folders that an export killed part-way left beside the target. */
async function removeStaleStaging(parent: string, prefix: string): Promise<void> {
  const stale: string[] = [];
  for await (const entry of Deno.readDir(parent)) {
    if (entry.isDirectory && entry.name.startsWith(prefix) && isTempName(entry.name)) {
      stale.push(join(parent, entry.name));
    }
  }
  for (const path of stale) {
    const modified = (await Deno.stat(path).catch(() => undefined))?.mtime?.getTime();
    if (modified !== undefined && Date.now() - modified > STALE_STAGING_MS) {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    }
  }
}
