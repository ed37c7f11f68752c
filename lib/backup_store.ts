/**
 * Where each object lives in the data dir, found by id so that a rename on the server keeps
 * the existing folder and files, plus our own sync state under `.matterbak/`.
 */
import type { DataDir, RelPath } from "./data_dir.ts";
import { DIRS, idBase, idPrefix, JSON_EXT, MEMBERS_SUFFIX, THREADS_SUFFIX } from "./layout.ts";
import type { ChannelState } from "./sync_plan.ts";

/**
 * The `<id>__<name>` base of an object in `parent`: an existing folder for that id first,
 * then an existing `<base>.json`, else a new base from the current name.
 */
export async function findBase(
  dataDir: DataDir,
  parent: RelPath,
  id: string,
  currentName: string,
): Promise<string> {
  const fresh = idBase(id, currentName);
  const entries = (await dataDir.list(parent)).filter((e) => idPrefix(e.name) === id);
  const dirs = entries.filter((e) => e.isDirectory).map((e) => e.name).sort();
  if (dirs.length > 0) return dirs.includes(fresh) ? fresh : dirs[0] as string;
  const jsons = entries.filter((e) =>
    e.isFile && e.name.endsWith(JSON_EXT) && !e.name.endsWith(MEMBERS_SUFFIX) &&
    !e.name.endsWith(THREADS_SUFFIX)
  ).map((e) => e.name.slice(0, -JSON_EXT.length)).sort();
  if (jsons.length > 0) return jsons.includes(fresh) ? fresh : jsons[0] as string;
  return fresh;
}

/** Bases of all `<id>__<name>.json` records in a folder (users, emojis), by id. */
export async function indexBases(dataDir: DataDir, parent: RelPath): Promise<Map<string, string>> {
  const bases = new Map<string, string>();
  for (const entry of await dataDir.list(parent)) {
    const id = idPrefix(entry.name);
    if (!id || !entry.isFile || !entry.name.endsWith(JSON_EXT)) continue;
    const base = entry.name.slice(0, -JSON_EXT.length);
    // Keep the shortest base: `<id>__bob.json` rather than a stray `<id>__bob__x.json`.
    const known = bases.get(id);
    if (known === undefined || base.length < known.length) bases.set(id, base);
  }
  return bases;
}

const STATE_CHANNELS: RelPath = [DIRS.state, "channels"];

export async function readChannelState(
  dataDir: DataDir,
  channelId: string,
): Promise<ChannelState | undefined> {
  // An unreadable state is treated as none: the channel is then checked against the server.
  const state = await dataDir.readJson<ChannelState>([
    ...STATE_CHANNELS,
    `${channelId}${JSON_EXT}`,
  ]).catch(() => undefined);
  return state?.version === 1 && state.channelId === channelId ? state : undefined;
}

export async function writeChannelState(dataDir: DataDir, state: ChannelState): Promise<void> {
  await dataDir.ensureDir(STATE_CHANNELS);
  await dataDir.writeJson([...STATE_CHANNELS, `${state.channelId}${JSON_EXT}`], state);
}

/** Run-wide state: the users watermark for `POST /users/ids?since=`. */
export interface RunState {
  version: 1;
  usersWatermark: number;
}

const RUN_STATE: RelPath = [DIRS.state, `state${JSON_EXT}`];

export async function readRunState(dataDir: DataDir): Promise<RunState> {
  const state = await dataDir.readJson<RunState>(RUN_STATE);
  return state?.version === 1 ? state : { version: 1, usersWatermark: 0 };
}

export async function writeRunState(dataDir: DataDir, state: RunState): Promise<void> {
  await dataDir.ensureDir([DIRS.state]);
  await dataDir.writeJson(RUN_STATE, state);
}

/** Relative `/`-separated form of a path, for state files. */
export function relPathString(parts: RelPath): string {
  return parts.join("/");
}

export function relPathFromString(text: string): RelPath {
  return text.split("/");
}
