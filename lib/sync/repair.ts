/**
 * Repairs: what `matterbak verify` recorded as damaged or missing (`.matterbak/repair.json`) is
 * fetched again by id at the start of the next plain backup run, with one request per post,
 * file, picture or record (users in one request), and written over the damaged copy; the list
 * is then cleared. The channel sync uses `restorePost` for damaged post files it comes across.
 */
import { editHistoryAnswer, type MattermostApi } from "../api/mattermost.ts";
import { editAt, mergeVersions, type PostHistory } from "../store/history.ts";
import { type FileInfo, type Post, type User, validFileInfo, validUser } from "../model/records.ts";
import { isObject } from "../util/objects.ts";
import { type DataDir, encodeJson, type RelPath, UnfitFileError } from "../store/data_dir.ts";
import {
  besideFolder,
  classifyPath,
  DAMAGED_DIR,
  DIRS,
  fileDataName,
  fileInfoName,
  ICON_SUFFIX,
  idBase,
  IMAGE_SUFFIX,
  JSON_EXT,
  postFileName,
  REPAIR_FILE,
  THREADS_SUFFIX,
} from "../store/layout.ts";
import { BackupReader, isThreadsMap, parseStoredPost } from "../store/reader.ts";
import {
  describeItem,
  readRepairList,
  type RepairItem,
  writeRepairList,
} from "../store/repair_list.ts";
import { indexBases, relPathFromString } from "../store/state.ts";
import { ApiError, describeError, isFatal } from "../util/errors.ts";
import type { Failure } from "../util/events.ts";
import { mapPooled } from "../util/semaphore.ts";
import { existingImages, type RecordsContext, saveImage } from "./records.ts";

type UserItem = Extract<RepairItem, { kind: "user" | "userImage" }>;

/** What the repair of verify's list did. */
export interface RepairSummary {
  /** Paths (or descriptions) restored. */
  repaired: string[];
  /** Items the server no longer serves: dropped from the list, with why. */
  lost: Failure[];
  /** Items that failed for now (kept in the list for the next run). */
  failed: number;
}

/** The server left a requested object out of a list answer (users it does not show). */
class NotShownError extends Error {}

/** Nothing the server gives can restore the item (an edit history of another's post). */
class UnrepairableError extends Error {}

/**
 * True when the server said the object is not there, or no longer ours to read (its own 404 or
 * a 403, or left out of a list): fetching it again cannot help.
 */
export function isGone(error: unknown): boolean {
  return error instanceof NotShownError || error instanceof UnrepairableError ||
    error instanceof ApiError && (error.status === 404 || error.status === 403) &&
      error.errorId !== undefined && error.errorId !== "api.context.404.app_error";
}

/**
 * Fetches a post by id and writes the server's copy to `fileName` in `folder` (its own name
 * when none is given), replacing whatever the file held: a damaged copy is never merged in.
 */
export async function restorePost(
  api: MattermostApi,
  dataDir: DataDir,
  channelId: string,
  folder: RelPath,
  postId: string,
  fileName?: string,
): Promise<Post> {
  const post = await api.post(postId);
  if (post.channel_id !== channelId) {
    throw new Error(
      `the server has post ${postId} in channel ${post.channel_id}, not ${channelId}`,
    );
  }
  await dataDir.writeText([...folder, fileName ?? postFileName(post)], encodeJson(post));
  return post;
}

/** Repairs the items of verify's list, if there is one, and clears it (keeping what failed). */
export async function repairFromList(ctx: RecordsContext): Promise<RepairSummary | undefined> {
  const { dataDir, emit } = ctx;
  const read = await readRepairList(dataDir);
  if (!read) return undefined;
  const { list, dropped } = read;
  const summary: RepairSummary = { repaired: [], lost: [], failed: 0 };
  if (dropped > 0) {
    emit({
      type: "warning",
      message: `Left out ${dropped} item(s) of ${REPAIR_FILE.join("/")} that name nothing this ` +
        "version can repair (run matterbak verify again to find what is damaged)",
    });
  }
  if (list.items.length > 0) {
    emit({
      type: "phase",
      phase: `Repairing ${list.items.length} damaged or missing item(s) that matterbak verify ` +
        `found${list.verifiedAt ? ` (${list.verifiedAt})` : ""}`,
    });
  }
  const kept: RepairItem[] = [];
  const attempt = async (items: RepairItem[], task: () => Promise<void>) => {
    const what = items.map(describeItem).join(", ");
    try {
      await task();
      summary.repaired.push(...items.map(describeItem));
      emit({ type: "info", message: `Repaired ${what}` });
    } catch (error) {
      if (isFatal(error, ctx.signal)) throw error;
      if (isGone(error)) {
        const lost = {
          what,
          why: error instanceof UnrepairableError
            ? `${error.message}; it cannot be repaired`
            : `the server no longer serves it (${describeError(error)}); it cannot be repaired`,
        };
        summary.lost.push(lost);
        emit({ type: "warning", message: `Cannot repair ${lost.what}: ${lost.why}` });
        return;
      }
      summary.failed += items.length;
      kept.push(...items);
      ctx.failures.record(`repair of ${what}`, error);
    }
  };
  const users = list.items.filter((i): i is UserItem =>
    i.kind === "user" || i.kind === "userImage"
  );
  if (users.length > 0) {
    // A picture needs its user's record: the stored one when it is intact; the others come
    // in one request for all of them.
    const records = await storedUsers(dataDir, users);
    const ids = [
      ...new Set(
        users.filter((i) => i.kind === "user" || !records.has(i.userId)).map((i) => i.userId),
      ),
    ];
    let fetched = true;
    if (ids.length > 0) {
      try {
        for (const user of await ctx.api.usersByIds(ids)) records.set(user.id, user);
      } catch (error) {
        if (isFatal(error, ctx.signal)) throw error;
        fetched = false;
        summary.failed += users.length;
        kept.push(...users);
        ctx.failures.record(`repair of ${users.map(describeItem).join(", ")}`, error);
      }
    }
    if (fetched) {
      for (const item of users) await attempt([item], () => repairUser(ctx, item, records));
    }
  }
  const others = list.items.filter((i) => i.kind !== "user" && i.kind !== "userImage");
  // Threads files last: they are rebuilt from the posts, which may be repaired first.
  others.sort((a, b) => Number(a.kind === "threads") - Number(b.kind === "threads"));
  const threads = others.filter((i) => i.kind === "threads");
  await mapPooled(
    others.filter((i) => i.kind !== "threads"),
    ctx.concurrency,
    (item) => attempt([item], () => repairItem(ctx, item)),
  );
  for (const item of threads) await attempt([item], () => repairItem(ctx, item));
  await writeRepairList(dataDir, { ...list, items: kept });
  return summary;
}

async function repairItem(ctx: RecordsContext, item: RepairItem): Promise<void> {
  const { api, dataDir } = ctx;
  switch (item.kind) {
    case "post": {
      const folder = relPathFromString(item.folder);
      const post = await restorePost(
        api,
        dataDir,
        item.channelId,
        folder,
        item.postId,
        item.path?.split("/").at(-1),
      );
      if (post.root_id) await addReply(dataDir, folder, post);
      if (post.delete_at === 0) {
        for (const info of post.metadata?.files ?? []) {
          await restoreFile(ctx, folder, info, { onlyMissing: true });
        }
      }
      return;
    }
    case "history":
      await repairHistory(ctx, item);
      return;
    case "fileInfo": {
      const folder = relPathFromString(item.folder);
      const info = await api.fileInfo(item.fileId);
      await dataDir.writeJson([...folder, DIRS.files, fileInfoName(item.fileId)], info);
      return;
    }
    case "fileData": {
      const folder = relPathFromString(item.folder);
      const stored = await dataDir.readJson<FileInfo>(
        [...folder, DIRS.files, fileInfoName(item.fileId)],
      );
      const info = stored && validFileInfo(stored) && stored.id === item.fileId
        ? stored
        : await api.fileInfo(item.fileId);
      if (info !== stored) {
        await dataDir.writeJson([...folder, DIRS.files, fileInfoName(item.fileId)], info);
      }
      await restoreFile(ctx, folder, info, { path: item.path });
      return;
    }
    case "channel":
      await dataDir.writeJson(relPathFromString(item.path), await api.channel(item.channelId));
      return;
    case "channelMembers":
      await dataDir.writeJson(
        relPathFromString(item.path),
        await api.channelMembers(item.channelId, item.path),
      );
      return;
    case "threads": {
      const folder = relPathFromString(item.folder);
      const { threads } = await new BackupReader(dataDir).threadsFromPosts(folder);
      await dataDir.writeJson(besideFolder(folder, THREADS_SUFFIX), Object.fromEntries(threads));
      return;
    }
    case "team":
      await dataDir.writeJson(relPathFromString(item.path), await api.team(item.teamId));
      return;
    case "teamMembers":
      await dataDir.writeJson(
        relPathFromString(item.path),
        await api.teamMembers(item.teamId, item.path),
      );
      return;
    case "teamIcon": {
      await saveImage(
        ctx,
        [DIRS.teams],
        `${item.teamId}${ICON_SUFFIX}`,
        (write) => api.teamIcon(item.teamId, item.path, write),
      );
      return;
    }
    case "emoji":
      await dataDir.writeJson(relPathFromString(item.path), await api.emoji(item.emojiId));
      return;
    case "emojiImage": {
      const role = classifyPath(relPathFromString(item.path));
      const base = role.kind === "emojiImage" ? role.base : item.emojiId;
      await saveImage(
        ctx,
        [DIRS.emojis],
        base,
        (write) => api.emojiImage(item.emojiId, base, write),
      );
      return;
    }
    case "user":
    case "userImage":
      throw new Error(`user items are repaired together (${describeItem(item)})`);
  }
}

/**
 * An edit history rebuilt from the server's edit history of the post (one request). The server
 * keeps that of one's own posts only: for another's post (403), a post never edited or deleted
 * (404) or a server before 7.9 the earlier versions are lost. Then the damaged bytes are set
 * aside in `.matterbak/damaged/` and the file leaves the backup and its manifest, so that verify
 * does not report it again; the run says so.
 */
async function repairHistory(
  ctx: RecordsContext,
  item: Extract<RepairItem, { kind: "history" }>,
): Promise<void> {
  const { api, dataDir } = ctx;
  const path = relPathFromString(item.path);
  const role = classifyPath(path);
  if (role.kind !== "history" || role.postId !== item.postId) {
    throw new UnrepairableError(`${item.path} is no edit history of post ${item.postId}`);
  }
  let copies: Post[] = [];
  try {
    copies = await api.editHistory(item.postId, item.folder);
  } catch (error) {
    if (editHistoryAnswer(error) === undefined) throw error;
  }
  const first = copies[0];
  if (first) {
    // A copy keeps its post's create_at, which names the post file; its edit_at is the version
    // the history leaves out (a pin copies the current version too).
    const current = await dataDir.readText([
      ...relPathFromString(item.folder),
      postFileName({ id: item.postId, create_at: first.create_at }),
    ]);
    const parsed = current === undefined ? undefined : parseStoredPost(current, item.postId);
    const currentEditAt = parsed && "post" in parsed ? editAt(parsed.post) : undefined;
    const { versions } = mergeVersions(
      [],
      copies.map((post) => ({ from: "edit_history", post })),
      currentEditAt ?? -1,
    );
    const history: PostHistory = {
      version: 1,
      post_id: item.postId,
      versions,
      ...(currentEditAt === undefined ? {} : { edit_history_at: currentEditAt }),
    };
    await dataDir.ensureDir(path.slice(0, -1));
    await dataDir.writeJson(path, history);
    return;
  }
  let kept = "";
  // A FIFO or a file too large to read (UnfitFileError) has no bytes worth keeping.
  const bytes = await dataDir.readBytes(path).catch((error) => {
    if (error instanceof Deno.errors.NotFound || error instanceof UnfitFileError) return undefined;
    throw error;
  });
  if (bytes) {
    const aside = [...DAMAGED_DIR, ...path];
    await dataDir.ensureDir(aside.slice(0, -1));
    await dataDir.writeBytes(aside, bytes);
    // The copy is the only record of the older versions left: durable before the file goes.
    await dataDir.syncDir(aside.slice(0, -1));
    kept = `; its damaged bytes are kept in ${aside.join("/")}`;
  }
  await dataDir.remove(path);
  throw new UnrepairableError(
    "the server gives the earlier versions of one's own posts only, and not of this one " +
      `(the post file keeps its current text)${kept}`,
  );
}

/** The intact stored records of the users whose pictures are to be repaired. */
async function storedUsers(dataDir: DataDir, items: UserItem[]): Promise<Map<string, User>> {
  const records = new Map<string, User>();
  for (const item of items) {
    const role = item.path ? classifyPath(relPathFromString(item.path)) : undefined;
    if (item.kind !== "userImage" || role?.kind !== "userImage") continue;
    const user = await dataDir.readJson<User>([DIRS.users, `${role.base}${JSON_EXT}`]);
    if (isObject(user) && validUser(user) && user.id === item.userId) records.set(user.id, user);
  }
  return records;
}

/**
 * A user's record (stored, or from the one request for all of them) and picture: the picture when it was
 * asked for, or when the record promises one the backup lacks.
 */
async function repairUser(
  ctx: RecordsContext,
  item: UserItem,
  fetched: ReadonlyMap<string, User>,
): Promise<void> {
  const { api, dataDir } = ctx;
  const user = fetched.get(item.userId);
  if (!user) throw new NotShownError(`the server does not show user ${item.userId}`);
  const parent = [DIRS.users];
  await dataDir.ensureDir(parent);
  const role = item.path ? classifyPath(relPathFromString(item.path)) : undefined;
  const base = role?.kind === "user" || role?.kind === "userImage"
    ? role.base
    : (await indexBases(dataDir, parent)).get(user.id) ?? idBase(user.id, user.username);
  const record = [...parent, `${base}${JSON_EXT}`];
  if (item.kind === "user") await dataDir.writeJson(record, user);
  const imageBase = `${base}${IMAGE_SUFFIX}`;
  const promised = (user.last_picture_update ?? 0) > 0 &&
    (await existingImages(dataDir, parent, imageBase)).length === 0;
  if (item.kind === "userImage" || promised) {
    await saveImage(
      ctx,
      parent,
      imageBase,
      (write) => api.userImage(user.id, user.username, write),
    );
  }
}

/**
 * Downloads an attachment to `path` (its name in this tool's layout when none is given),
 * checked against its size; with `onlyMissing`, only when no file of the right size is there.
 */
async function restoreFile(
  ctx: RecordsContext,
  folder: RelPath,
  info: FileInfo,
  options: { path?: string | undefined; onlyMissing?: boolean },
): Promise<void> {
  const { api, dataDir } = ctx;
  const target = options.path
    ? relPathFromString(options.path)
    : [...folder, DIRS.files, fileDataName(info.id, info.name)];
  if (options.onlyMissing && await dataDir.size(target) === info.size) return;
  await dataDir.ensureDir([...folder, DIRS.files]);
  await dataDir.writeJson([...folder, DIRS.files, fileInfoName(info.id)], info);
  await api.downloadFile(
    info.id,
    info.name,
    (body) => dataDir.writeStream(target, body, info.size, ctx.signal),
  );
}

/** Adds a restored reply to its channel's threads file, unless it is listed there. */
async function addReply(dataDir: DataDir, folder: RelPath, post: Post): Promise<void> {
  const path = besideFolder(folder, THREADS_SUFFIX);
  const stored = await dataDir.readJson<unknown>(path);
  const threads = isThreadsMap(stored) ? stored : {};
  const replies = threads[post.root_id] ?? [];
  if (replies.includes(post.id)) return;
  threads[post.root_id] = [...replies, post.id];
  await dataDir.writeJson(path, threads);
}
