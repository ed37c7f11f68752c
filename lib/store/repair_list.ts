/**
 * What `matterbak verify` found damaged or missing, by the ids the next backup run needs to
 * fetch it again (`.matterbak/repair.json`). Verify writes it; the next plain backup run
 * repairs the items and clears it.
 */
import { isMattermostId } from "../model/records.ts";
import { isObject } from "../util/objects.ts";
import type { DataDir } from "./data_dir.ts";
import { REPAIR_FILE } from "./layout.ts";

/**
 * One thing to fetch again. `path` is the file it restores (relative, `/`-separated) when
 * known; a post named only by a threads file and a user named only as an author have none.
 */
export type RepairItem =
  | { kind: "post"; channelId: string; folder: string; postId: string; path?: string }
  /** An edit history: rebuilt from the server's edit history, which it keeps of one's own posts. */
  | { kind: "history"; channelId: string; folder: string; postId: string; path: string }
  | {
    kind: "fileInfo" | "fileData";
    channelId: string;
    folder: string;
    fileId: string;
    path?: string;
  }
  | {
    kind: "channel" | "channelMembers" | "threads";
    channelId: string;
    folder: string;
    path: string;
  }
  | { kind: "team" | "teamMembers" | "teamIcon"; teamId: string; path: string }
  | { kind: "user" | "userImage"; userId: string; path?: string }
  | { kind: "emoji" | "emojiImage"; emojiId: string; path: string };

export interface RepairList {
  version: 1;
  /** When verify wrote it (ISO 8601). */
  verifiedAt: string;
  items: RepairItem[];
}

const KINDS: Record<RepairItem["kind"], string[]> = {
  post: ["channelId", "folder", "postId"],
  history: ["channelId", "folder", "postId", "path"],
  fileInfo: ["channelId", "folder", "fileId"],
  fileData: ["channelId", "folder", "fileId"],
  channel: ["channelId", "folder", "path"],
  channelMembers: ["channelId", "folder", "path"],
  threads: ["channelId", "folder", "path"],
  team: ["teamId", "path"],
  teamMembers: ["teamId", "path"],
  teamIcon: ["teamId", "path"],
  user: ["userId"],
  userImage: ["userId"],
  emoji: ["emojiId", "path"],
  emojiImage: ["emojiId", "path"],
};

/** True for an item whose fields have the shape its kind needs (ids are ids, paths strings). */
export function isRepairItem(value: unknown): value is RepairItem {
  if (!isObject(value) || typeof value.kind !== "string" || !(value.kind in KINDS)) return false;
  const fields = KINDS[value.kind as RepairItem["kind"]];
  return fields.every((field) =>
    field.endsWith("Id") ? isMattermostId(value[field]) : typeof value[field] === "string"
  ) && (value.path === undefined || typeof value.path === "string");
}

/** The list verify left, or undefined when there is none; unusable items are left out. */
export async function readRepairList(
  dataDir: DataDir,
): Promise<{ list: RepairList; dropped: number } | undefined> {
  const value = await dataDir.readJson<unknown>(REPAIR_FILE);
  if (!isObject(value) || value.version !== 1 || !Array.isArray(value.items)) return undefined;
  const items = value.items.filter(isRepairItem);
  return {
    list: { version: 1, verifiedAt: String(value.verifiedAt ?? ""), items },
    dropped: value.items.length - items.length,
  };
}

/**
 * Writes the list, or removes it when it is empty. It is a checkpoint: an item it no longer
 * names must be repaired durably first, so the manifest's checkpoint (which syncs the folders
 * written and removed from) comes before it.
 */
export async function writeRepairList(dataDir: DataDir, list: RepairList): Promise<void> {
  await dataDir.sink?.checkpoint();
  dataDir.recorder?.({
    op: "checkpoint",
    path: dataDir.path(REPAIR_FILE),
    state: { repairItems: list.items.length },
  });
  if (list.items.length === 0) await dataDir.remove(REPAIR_FILE);
  else await dataDir.writeJson(REPAIR_FILE, list);
}

/** A short name of an item for messages: its path, or what it is. */
export function describeItem(item: RepairItem): string {
  if (item.path) return item.path;
  if (item.kind === "post") return `post ${item.postId} in ${item.folder}`;
  if (item.kind === "user" || item.kind === "userImage") return `user ${item.userId}`;
  return item.kind;
}
