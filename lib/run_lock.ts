/**
 * One run per data dir: a lock file with the owner's pid and start time, refreshed while the
 * run lasts. A lock is stale when its process is gone (checked where /proc exists) or when it
 * has not been refreshed for STALE_MS (a run on another machine that died).
 */
import type { DataDir } from "./data_dir.ts";
import { StorageError } from "./errors.ts";
import { DIRS } from "./layout.ts";

const REFRESH_MS = 60_000;
const STALE_MS = 5 * REFRESH_MS;

export interface RunLock {
  release(): Promise<void>;
}

interface LockInfo {
  pid: number;
  started: string;
}

export async function acquireRunLock(dataDir: DataDir): Promise<RunLock> {
  await dataDir.ensureDir([DIRS.state]);
  const path = dataDir.path([DIRS.state, "lock"]);
  const info: LockInfo = { pid: Deno.pid, started: new Date().toISOString() };
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.writeTextFile(path, JSON.stringify(info), { createNew: true });
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists) || attempt > 0) throw error;
      const holder = await readLock(path);
      if (holder && !await isStale(path, holder)) {
        throw new StorageError(
          `The data dir ${dataDir.root} is in use by another run (pid ${holder.pid}, started ` +
            `${holder.started}); if no such run is active, delete ${path}`,
        );
      }
      await Deno.remove(path).catch(() => {});
    }
  }
  const timer = setInterval(() => {
    const now = new Date();
    Deno.utime(path, now, now).catch(() => {});
  }, REFRESH_MS);
  Deno.unrefTimer(timer);
  return {
    async release() {
      clearInterval(timer);
      await Deno.remove(path).catch(() => {});
    },
  };
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await Deno.readTextFile(path)) as LockInfo;
    return typeof info.pid === "number" ? info : undefined;
  } catch {
    return undefined; // Unreadable or half-written: treat as stale.
  }
}

async function isStale(path: string, holder: LockInfo): Promise<boolean> {
  const stat = await Deno.stat(path);
  if (Date.now() - (stat.mtime?.getTime() ?? 0) > STALE_MS) return true;
  if (holder.pid === Deno.pid) return false;
  try {
    await Deno.stat(`/proc/${holder.pid}`);
    return false;
  } catch (error) {
    // Without /proc (macOS, Windows) only the age tells.
    return error instanceof Deno.errors.NotFound && await procAvailable();
  }
}

async function procAvailable(): Promise<boolean> {
  try {
    await Deno.stat("/proc/self");
    return true;
  } catch {
    return false;
  }
}
