/**
 * One run per data dir, enforced with an OS file lock on `.matterbak/lock`. The operating
 * system releases the lock when the process ends in any way (kill -9 and crashes included),
 * so a lock is never stale. The file also records who holds it, for the error message.
 */
import type { DataDir } from "./data_dir.ts";
import { describeError, LockedError, StorageError } from "../util/errors.ts";
import { DIRS, LOCK_FILE } from "./layout.ts";

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
  if (!await file.tryLock(true)) {
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
  return {
    release() {
      file.close();
    },
  };
}
