/**
 * One run per data dir, enforced with an OS file lock on `.matterbak/lock`. The operating
 * system releases the lock when the process ends in any way (kill -9 and crashes included),
 * so a lock is never stale. The file also records who holds it, for the error message. The
 * same lock marks an export's staging folder as in use (lockFolder).
 */
import type { DataDir } from "./data_dir.ts";
import { describeError, LockedError, StorageError } from "../util/errors.ts";
import { DIRS, LOCK_FILE } from "./layout.ts";
import { openNoFollow } from "./atomic_write.ts";

export interface RunLock {
  release(): void;
}

export async function acquireRunLock(dataDir: DataDir): Promise<RunLock> {
  await dataDir.ensureDir([DIRS.state]);
  const file = await dataDir.openForUpdate(LOCK_FILE).catch((error) => {
    // The first file a run writes: a data dir that cannot take it cannot take the backup.
    if (error instanceof StorageError) throw error;
    throw new StorageError(
      `Cannot write to the data dir ${dataDir.root}: ${describeError(error)}`,
      { cause: error },
    );
  });
  const lock = await holdLock(file);
  if (!lock) {
    const holder = await new Response(file.readable).text().catch(() => "");
    throw new LockedError(
      `The data dir ${dataDir.root} is in use by another run (${holder.trim() || "unknown"}); ` +
        `wait for it to finish`,
    );
  }
  await file.truncate(0);
  await file.write(
    new TextEncoder().encode(`pid ${Deno.pid}, started ${new Date().toISOString()}\n`),
  );
  return lock;
}

/** The OS lock of the open `file`, held until release() closes it; undefined when taken. */
async function holdLock(file: Deno.FsFile): Promise<RunLock | undefined> {
  if (!await file.tryLock(true)) return undefined;
  return {
    release() {
      file.close();
    },
  };
}

/**
 * A lock file outside the data dir that marks the folder it is in as in use, as the run lock
 * does the data dir (an export's staging folder): created new at `path` and locked. The lock
 * ends with the process, so a folder whose lock can be taken was left by a process that died.
 */
export async function lockFolder(path: string): Promise<RunLock> {
  // Locked under a name no one looks at, then renamed (the lock stays with the open file): a
  // lock file that can be seen is always held, so no one sees it free for a moment.
  const fresh = `${path}.new`;
  const file = await Deno.open(fresh, { read: true, write: true, createNew: true });
  const lock = await holdLock(file);
  if (!lock) {
    file.close();
    throw new StorageError(`Cannot lock ${fresh}`);
  }
  try {
    await Deno.rename(fresh, path);
  } catch (error) {
    lock.release();
    throw error;
  }
  return lock;
}

/**
 * Whether the lock file at `path` is held by a live process: true or false, or undefined when
 * there is no lock file (a folder from before locks, or one whose lock file was not made yet).
 */
export async function isLockHeld(path: string): Promise<boolean | undefined> {
  let file: Deno.FsFile;
  try {
    file = await openNoFollow(path, { read: true, write: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    return !await file.tryLock(true);
  } finally {
    file.close();
  }
}
