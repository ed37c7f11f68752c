/**
 * Brings one channel's folder up to the server's state: a full crawl for a new channel, the
 * rest of an interrupted crawl, or the changes since the watermark. Posts are found by id,
 * merged (deletions keep content), written atomically; attachments are downloaded once; the
 * threads map and the sync state are checkpointed after the work they describe.
 */
import type { FailureLog } from "./failures.ts";
import type { EditHistorySource } from "./edit_history.ts";
import {
  BackupReader,
  isThreadsMap,
  parseHistory,
  parseStoredPost,
  postFiles,
} from "../store/reader.ts";
import {
  editAt,
  mergeVersions,
  type PostHistory,
  type PostVersion,
  type VersionSource,
} from "../store/history.ts";
import { type ChannelState, relPathString, SeenLog, writeChannelState } from "../store/state.ts";
import type { Clock } from "../util/clock.ts";
import {
  type BatchWrite,
  type DataDir,
  encodeJson,
  type RelPath,
  UnfitFileError,
} from "../store/data_dir.ts";
import { ApiError, describeError, isFatal, ServerError } from "../util/errors.ts";
import {
  type ChannelProgress,
  emptyProgress,
  type EventSink,
  type PostCounts,
} from "../util/events.ts";
import {
  CHANNEL_STATES_DIR,
  DIRS,
  fileDataName,
  fileIdFromDataName,
  fileInfoName,
  historyFileName,
  JSON_EXT,
  MEMBERS_SUFFIX,
  postFileName,
  postIdFromFileName,
  seenLogFile,
  THREADS_SUFFIX,
} from "../store/layout.ts";
import { type MattermostApi, SINCE_LIMIT } from "../api/mattermost.ts";
import type { Channel, FileInfo, Member, Post, PostList } from "../model/records.ts";
import { mapPooled } from "../util/semaphore.ts";
import { isGone, restorePost } from "./repair.ts";
import {
  asksEditHistory,
  type ChannelPlan,
  crawlWatermark,
  type Cursor,
  cursorProblem,
  displacedVersions,
  FirstCrawl,
  isHistoryCopy,
  isLastPage,
  isOwnEdited,
  markDeleted,
  maxUpdateAt,
  mergePost,
  nextCursor,
  NOT_FOUND_RUNS,
  planChannel,
  postsToFetch,
  SINCE_OVERLAP_MS,
  sinceFor,
} from "./sync_plan.ts";

export interface ChannelSyncOptions {
  api: MattermostApi;
  dataDir: DataDir;
  clock: Clock;
  updateOldPosts: boolean;
  /** Parallel attachment downloads (the client's semaphore bounds requests overall). */
  concurrency: number;
  signal?: AbortSignal;
  emit: EventSink;
  failures: FailureLog;
  /** The edit history of the user's own posts, asked for when the backup sees them edited. */
  editHistory: EditHistorySource;
}

export interface ChannelTarget {
  channel: Channel;
  /** Shown in messages: `team/channel`, `@partner`, or the group's members. */
  label: string;
  /** The posts folder `<parent>/<id>__<name>` (see channel_target.ts); its records sit beside it. */
  folder: RelPath;
  members: Member[];
  /** Sync state from the previous run, if any. */
  state: ChannelState | undefined;
  /** Why a state file that is there cannot be used (it names the file), if so. */
  damagedState?: string;
}

export interface ChannelResult {
  /** What was saved (`counts`), fetched and downloaded. */
  progress: ChannelProgress;
  /** Authors and reacting users of the posts handled, for the users phase. */
  userIds: Set<string>;
  unchanged: boolean;
}

/** A page of a channel's posts as the API gives it. */
type PostsPage = Awaited<ReturnType<MattermostApi["postsPage"]>>;

/** Pages between checkpoints of the threads map and the state during a long crawl. */
const CHECKPOINT_PAGES = 25;

export async function syncChannel(
  target: ChannelTarget,
  options: ChannelSyncOptions,
): Promise<ChannelResult> {
  const sync = new ChannelSync(target, options);
  await sync.run();
  return sync.result;
}

class ChannelSync {
  readonly result: ChannelResult = {
    progress: emptyProgress(),
    userIds: new Set(),
    unchanged: false,
  };
  /** Post files in the folder, kept in the state (`posts`) for messages and the progress. */
  #stored = 0;
  /**
   * Post files by id in a folder whose names may be matterbak's (local time, not derivable from
   * the post). Undefined in a folder of our own names, where a post's file follows from its
   * `create_at`: an update then keeps nothing per post, so its memory does not grow with the
   * channel. Posts written during the run get our names and are found the same way.
   */
  #legacyNames: Map<string, string> | undefined;
  /** During a crawl that reconciles: the posts the server listed, also on disk. */
  #seen: SeenLog | undefined;
  #threads = new Map<string, string[]>();
  #threadsChanged = false;
  /** Attachment data files present, by file id. */
  #files = new Map<string, string>();
  /** Attachments tried this run: each at most once, so a failure counts once per run. */
  #attempted = new Set<string>();
  /** Stored post files found damaged while reading them, by post id: fetched again. */
  #damaged = new Map<string, string>();
  #postsDir: RelPath;
  #filesDir: RelPath;
  #historyDir: RelPath;
  #state: ChannelState;
  /** During the first crawl of a folder this run started: which posts it may hold. */
  #first: FirstCrawl | undefined;
  /** True once the folder, the channel's records and its state exist (see #open). */
  #opened = false;

  constructor(readonly target: ChannelTarget, readonly options: ChannelSyncOptions) {
    this.#postsDir = target.folder;
    this.#filesDir = [...this.#postsDir, DIRS.files];
    this.#historyDir = [...this.#postsDir, DIRS.history];
    this.#state = target.state ?? {
      version: 1,
      channelId: target.channel.id,
      dir: relPathString(this.#postsDir),
      historyComplete: false,
      watermark: 0,
      pendingFiles: [],
    };
  }

  get #label() {
    return this.target.label;
  }

  /** The folder base: the posts folder's own name, so renames keep every file together. */
  get #base(): string {
    return this.#postsDir.at(-1) as string;
  }

  get #parent(): RelPath {
    return this.#postsDir.slice(0, -1);
  }

  async run(): Promise<void> {
    // A channel new to the backup gets its folder only once the server has answered for its
    // posts, so one it refuses (an archived channel it hides) leaves nothing behind.
    const fresh = !this.target.state && !await this.options.dataDir.exists(this.#postsDir);
    await this.#loadIndexes();

    const { damagedState } = this.target;
    if (damagedState) {
      this.options.emit({
        type: "warning",
        message: `The sync state of ${this.#label} (${damagedState}) cannot be used; the ` +
          `channel is crawled again in full and reconciled`,
      });
    }
    const storedWatermark = this.target.state || !this.#legacyNames
      ? undefined
      : await this.#adoptStoredPosts();
    const plan = planChannel(this.target.state, {
      updateOldPosts: this.options.updateOldPosts,
      storedWatermark,
      damagedState: damagedState !== undefined,
    });
    this.#stored = await this.#countStoredPosts(fresh);
    this.options.emit({
      type: "channel-start",
      label: this.#label,
      mode: describePlan(plan),
      posts: postsToFetch(this.target.channel, this.#stored, plan),
      ...(plan.kind === "resume"
        ? { resume: { stored: this.#stored, from: this.#state.cursorAt } }
        : {}),
    });
    try {
      if (!fresh) await this.#open();
      // A fresh folder's plan is always a crawl from the newest post.
      if (fresh) this.#first = new FirstCrawl();
      // Changes first: a post deleted since the last run drops its pending attachments, which
      // the server would only answer with 404.
      await this.#execute(plan);
      this.#first = undefined;
      await this.#retryPendingFiles();
      await this.#refetchDamaged();
      await this.#askEditHistories();
    } finally {
      // The seen log is closed even when this last checkpoint fails (a full disk).
      let saved = false;
      try {
        if (this.#opened) await this.#checkpoint(true);
        saved = true;
      } finally {
        await this.#closeSeenLog(saved);
        // Also when stopped part-way through a page: what was saved is then said exactly.
        this.#reportProgress();
      }
    }
  }

  get #counts(): PostCounts {
    return this.result.progress.counts;
  }

  /** Posts, versions and files saved so far. */
  #saved(): number {
    const c = this.#counts;
    return c.newPosts + c.updatedPosts + c.deletedPosts + c.versions + c.files;
  }

  #reportProgress(): void {
    this.options.emit({
      type: "channel-progress",
      label: this.#label,
      progress: this.result.progress,
    });
  }

  /**
   * Post files in the folder: from the state, from the listing a folder of matterbak's names
   * needs anyway, or counted once (a state written before the count was kept).
   */
  async #countStoredPosts(fresh: boolean): Promise<number> {
    if (fresh) return 0;
    if (this.#state.posts !== undefined) return this.#state.posts;
    if (this.#legacyNames) return this.#legacyNames.size;
    let count = 0;
    for await (const _ of this.#postFiles()) count++;
    return count;
  }

  /** Creates the folder and writes the channel's record, members and (new) state; once. */
  async #open(): Promise<void> {
    if (this.#opened) return;
    this.#opened = true;
    const { dataDir } = this.options;
    await dataDir.ensureDir(this.#filesDir);
    await dataDir.writeJson([...this.#parent, `${this.#base}${JSON_EXT}`], this.target.channel);
    await dataDir.writeJson(
      [...this.#parent, `${this.#base}${MEMBERS_SUFFIX}`],
      this.target.members,
    );
    // Record the crawl before the first post is written, durably: posts without a state file
    // would otherwise look like a finished matterbak backup after a crash or a power cut.
    if (!this.target.state) {
      await writeChannelState(dataDir, this.#state);
      await dataDir.syncDir(CHANNEL_STATES_DIR);
      await dataDir.syncDir([DIRS.state]);
    }
  }

  async #execute(plan: ChannelPlan): Promise<void> {
    switch (plan.kind) {
      case "crawl":
        return await this.#crawl(undefined);
      case "resume": {
        // Before the changes are stored: they count as seen too.
        if (this.#state.reconciling) await this.#resumeSeenLog();
        if (!await this.#applyChangesSince(plan.watermark)) return await this.#crawl(undefined);
        return await this.#crawl(plan.cursor);
      }
      case "incremental": {
        const probe = await this.options.api.postsPage(this.target.channel.id, this.#label, {
          perPage: 1,
          ...(plan.etag ? { etag: plan.etag } : {}),
        });
        if (probe.list === undefined && this.#state.settleBy === undefined) {
          this.result.unchanged = true;
          return;
        }
        const asked = this.options.clock.wallTime();
        const savedBefore = this.#saved();
        if (!await this.#applyChangesSince(plan.watermark)) return await this.#crawl(undefined);
        if (probe.list !== undefined) {
          if (probe.etag) this.#state.etag = probe.etag;
          else delete this.#state.etag;
        }
        if (this.#state.watermark > plan.watermark) this.#settleFromNow();
        else {
          if (asked >= (this.#state.settleBy ?? 0)) delete this.#state.settleBy;
          // Asked only to let late commits in, and none came.
          if (probe.list === undefined && this.#saved() === savedBefore) {
            this.result.unchanged = true;
          }
        }
        this.#state.historyComplete = true;
      }
    }
  }

  /** The watermark was just taken: the next runs ask `since` until the overlap has passed. */
  #settleFromNow(): void {
    this.#state.settleBy = this.options.clock.wallTime() + SINCE_OVERLAP_MS;
  }

  /**
   * Stores what changed after the watermark; false when the server's answer was capped (an
   * arbitrary subset), in which case the caller must crawl the whole channel instead.
   */
  async #applyChangesSince(watermark: number): Promise<boolean> {
    const list = await this.options.api.postsSince(
      this.target.channel.id,
      this.#label,
      sinceFor(watermark),
    );
    // Too large to take at once, or capped by the server: only a crawl gets all of it.
    if (list === undefined || list.listed >= SINCE_LIMIT) return false;
    await this.#storePosts(list);
    this.#state.watermark = Math.max(watermark, maxUpdateAt(Object.values(list.posts)));
    return true;
  }

  /**
   * Walks the history newest to oldest with the `before` cursor, from the newest post or from
   * `cursor`. A crawl from the top also reconciles: stored posts the server no longer lists
   * were deleted there and are marked so.
   */
  async #crawl(cursor: string | undefined): Promise<void> {
    const { clock } = this.options;
    const fromTop = cursor === undefined;
    const started = clock.now();
    if (fromTop) await this.#startSeenLog();
    let firstPageMax = 0;
    let overallMax = 0;
    let request: Promise<PostsPage> | undefined = this.#askPage(cursor);
    let previous: Cursor | undefined = cursor === undefined
      ? undefined
      : { id: cursor, at: this.#state.cursorAt };
    try {
      for (let page = 0;; page++) {
        const { list, etag, perPage } = await (request as Promise<PostsPage>);
        request = undefined;
        if (!list) throw new Error("unexpected 304 for an unconditional request");
        await this.#open();
        if (page === 0) {
          if (!fromTop && list.listed === 0) {
            // The resume cursor vanished (purged post): start over rather than assume the end.
            return await this.#crawl(undefined);
          }
          if (fromTop) {
            firstPageMax = maxUpdateAt(Object.values(list.posts));
            this.#state = {
              ...this.#state,
              historyComplete: false,
              watermark: Math.max(this.#state.watermark, firstPageMax),
              ...(etag ? { etag } : {}),
            };
            // An earlier crawl's place is void from here: resumed with this page's watermark it
            // would skip every post between the two crawls. Stopped before the next cursor, the
            // next run starts again from the top.
            delete this.#state.cursor;
          }
        }
        const next = nextCursor(list.order, list.posts);
        const last = isLastPage(list, perPage);
        const nextAt = next === undefined ? undefined : list.posts[next]?.create_at;
        if (!last && next !== undefined && previous) {
          const problem = cursorProblem(previous, { id: next, at: nextAt });
          if (problem) {
            throw new ServerError(
              `${this.options.api.client.root} does not page back in time through the posts ` +
                `of channel ${this.#label}: ${problem}; its crawl stops here (it would page ` +
                `for ever)`,
            );
          }
        }
        // The next page is on its way while this one is stored: the disk's work and the
        // network's round trip overlap.
        if (!last && next !== undefined) request = this.#askPage(next);
        await this.#storePosts(list);
        overallMax = Math.max(overallMax, maxUpdateAt(Object.values(list.posts)));
        if (last) break;
        if (next === undefined) {
          // A full page of nothing but malformed posts: going on would skip whatever follows.
          throw new ServerError(
            `Malformed answer for posts of channel ${this.#label}: a full page without one ` +
              `usable post`,
          );
        }
        this.#state.cursor = next;
        this.#state.cursorAt = nextAt;
        previous = { id: next, at: nextAt };
        if ((page + 1) % CHECKPOINT_PAGES === 0) await this.#checkpoint(false);
      }
    } finally {
      // Stopped with a page on its way: it ends before the run does (its answer is not used).
      await request?.catch(() => {});
    }
    if (this.#seen) {
      await this.#markVanished(this.#seen.ids, overallMax);
      delete this.#state.reconciling;
    }
    if (fromTop) {
      this.#state.watermark = Math.max(
        this.#state.watermark,
        crawlWatermark(firstPageMax, overallMax, clock.now() - started),
      );
    }
    this.#settleFromNow();
    this.#state.historyComplete = true;
    delete this.#state.cursor;
    delete this.#state.cursorAt;
  }

  /**
   * A page of posts before `before` (the newest without), asked for now and awaited later: a
   * failure is the awaiting code's to handle, never an unhandled rejection meanwhile.
   */
  #askPage(before: string | undefined): Promise<PostsPage> {
    const answer = this.options.api.postsPage(this.target.channel.id, this.#label, {
      ...(before ? { before } : {}),
    });
    answer.catch(() => {});
    return answer;
  }

  /** Stored live posts absent from a complete crawl were deleted on the server. */
  async #markVanished(seen: Set<string>, deleteAt: number): Promise<void> {
    // Listed first, written after: some file systems skip entries of a folder changed while read.
    const unseen: string[] = [];
    for await (const [id, fileName] of this.#postFiles()) if (!seen.has(id)) unseen.push(fileName);
    for (const fileName of unseen) {
      const stored = await this.#readPost(fileName);
      if (stored && stored.delete_at === 0) {
        // No post listed at all gives no server time: the post's own last update stands in.
        await this.#writePost(fileName, markDeleted(stored, Math.max(deleteAt, stored.update_at)));
        this.#dropPendingFilesOf(stored.id);
        this.#counts.deletedPosts++;
      }
    }
  }

  /** A crawl from the newest post reconciles when posts are stored: it records what it sees. */
  async #startSeenLog(): Promise<void> {
    this.#seen?.close();
    this.#seen = undefined;
    if (await this.#hasStoredPosts()) {
      this.#seen = await SeenLog.create(this.options.dataDir, this.target.channel.id);
      this.#state.reconciling = true;
    } else {
      delete this.#state.reconciling;
    }
  }

  async #resumeSeenLog(): Promise<void> {
    const { dataDir, emit } = this.options;
    const channelId = this.target.channel.id;
    const resumed = await SeenLog.resume(dataDir, channelId, this.#state.seenLog);
    if (resumed instanceof SeenLog) {
      this.#seen = resumed;
      return;
    }
    // Without a log it can trust, the crawl cannot tell vanished posts from seen ones: it only
    // adds, and marks nothing deleted.
    delete this.#state.reconciling;
    delete this.#state.seenLog;
    await SeenLog.remove(dataDir, channelId);
    emit({
      type: "warning",
      message: `The seen log ${dataDir.path(seenLogFile(channelId))} of ${this.#label} cannot ` +
        `be trusted (${resumed.problem}): the interrupted re-crawl goes on without it and marks ` +
        `no post deleted (--update-old-posts finds deletions again)`,
    });
  }

  /** The log is removed only once the saved state no longer refers to it. */
  async #closeSeenLog(stateSaved: boolean): Promise<void> {
    if (!this.#seen) return;
    this.#seen.close();
    this.#seen = undefined;
    if (stateSaved && !this.#state.reconciling) {
      await SeenLog.remove(this.options.dataDir, this.target.channel.id);
    }
  }

  async #storePosts(list: PostList): Promise<void> {
    const { dataDir } = this.options;
    const posts: Post[] = [];
    // The server's hidden copies of earlier versions, by the post they are versions of.
    const copies = new Map<string, Post[]>();
    for (const post of Object.values(list.posts)) {
      if (post.channel_id !== this.target.channel.id) continue;
      if (!isHistoryCopy(post)) {
        posts.push(post);
        continue;
      }
      const of = post.original_id as string;
      copies.set(of, [...copies.get(of) ?? [], post]);
    }
    await this.#seen?.add([...posts.map((post) => post.id), ...list.malformedIds]);
    this.result.progress.fetched += posts.length;
    // Posts of a page are independent files: read and merged in parallel, then written
    // together (durable before the next checkpoint can vouch for them). Each is counted as soon
    // as it is in place, so an interruption reports exactly what was saved.
    const writes: BatchWrite[] = [];
    const counters: (() => void)[] = [];
    const stored = await mapPooled(posts, this.options.concurrency, async (post) => {
      this.options.signal?.throwIfAborted();
      const postCopies = copies.get(post.id) ?? [];
      copies.delete(post.id);
      const name = this.#postFileName(post);
      // A first crawl knows most posts are not stored yet: no read that would fail (the
      // error it throws costs more than the write).
      const text = this.#first?.mayHold(post) === false
        ? undefined
        : await this.#readStored([...this.#postsDir, name]);
      const before = storedPost(text);
      const merged = mergePost(before, post);
      if (!merged) return undefined;
      // Into the history before the post file is replaced: the version stored until now may
      // exist nowhere else (the server sends its copy without the text).
      await this.#keepVersions(merged, [
        ...asVersions(postCopies, "changes"),
        ...displacedVersions(before, post),
      ]);
      const newText = encodeJson(merged);
      if (newText !== text) {
        writes.push({ parts: [...this.#postsDir, name], data: newText });
        counters.push(() => {
          if (text === undefined) this.#stored++;
          if (!before) this.#counts.newPosts++;
          else if (merged.delete_at > 0 && before.delete_at === 0) this.#counts.deletedPosts++;
          else this.#counts.updatedPosts++;
          if (text !== undefined && !before) this.#replacedDamaged(post.id, name);
        });
      }
      return merged;
    });
    this.options.signal?.throwIfAborted();
    await dataDir.writeBatch(writes, (index) => counters[index]?.());
    this.#first?.stored(list, stored);
    // Stopped while the page was written: the crawl's place stays before it.
    this.options.signal?.throwIfAborted();
    // Copies of posts not in this answer: stored earlier (or never, and then kept for nothing).
    await mapPooled([...copies], this.options.concurrency, async ([postId, postCopies]) => {
      const first = postCopies[0] as Post;
      const current = await this.#readPost(
        this.#postFileName({ id: postId, create_at: first.create_at }),
      );
      if (current) await this.#keepVersions(current, asVersions(postCopies, "changes"));
    });
    const files: FileInfo[] = [];
    for (const merged of stored) {
      if (!merged) continue;
      if (merged.delete_at === 0) {
        files.push(...(merged.metadata?.files ?? []));
        this.#collectUsers(merged);
      } else {
        this.#dropPendingFilesOf(merged.id);
      }
      if (merged.root_id) this.#addReply(merged.root_id, merged.id);
    }
    // Reports the page with the attachments it brings.
    await this.#saveFiles(files);
  }

  /** A post's file name: matterbak's where it named the folder, else ours from `create_at`. */
  #postFileName(post: { id: string; create_at: number }): string {
    return this.#legacyNames?.get(post.id) ?? postFileName(post);
  }

  /**
   * Adds `versions` of the post `current` (as it is stored from now on) to its history file,
   * and notes whether the server's edit history is to be asked for it. See #writeHistory.
   */
  async #keepVersions(current: Post, versions: PostVersion[]): Promise<void> {
    const { meId } = this.options.editHistory;
    if (versions.length === 0 && !isOwnEdited(current, meId)) return;
    const stored = await this.#readHistory(current.id);
    await this.#writeHistory(current, stored, versions, stored.history?.edit_history_at);
    if (asksEditHistory(current, meId, stored.history?.edit_history_at)) {
      const pending = (this.#state.pendingHistory ?? []).filter((p) => p.postId !== current.id);
      this.#state.pendingHistory = [...pending, {
        postId: current.id,
        createAt: current.create_at,
      }];
    }
  }

  async #readHistory(postId: string): Promise<StoredHistory> {
    const path = [...this.#historyDir, historyFileName(postId)];
    const text = await this.#readStored(path);
    const parsed = text === undefined ? undefined : parseHistory(text, postId);
    if (!parsed) return { path, history: undefined, damaged: undefined };
    return "history" in parsed
      ? { path, history: parsed.history, damaged: undefined }
      : { path, history: undefined, damaged: parsed.reason };
  }

  /**
   * Writes the history of `current` with `versions` merged in and `askedAt` (see
   * PostHistory.edit_history_at), when that changes the file; never a file without versions. A
   * damaged file is replaced, with a warning.
   */
  async #writeHistory(
    current: Post,
    stored: StoredHistory,
    versions: PostVersion[],
    askedAt: number | undefined,
  ): Promise<void> {
    const merged = mergeVersions(stored.history?.versions ?? [], versions, editAt(current));
    const changed = merged.changed || askedAt !== stored.history?.edit_history_at;
    if (!changed || merged.versions.length === 0) return;
    if (stored.damaged) {
      this.options.emit({
        type: "warning",
        message: `The edit history ${stored.path.join("/")} was damaged (${stored.damaged}); ` +
          `it is replaced by the versions known now`,
      });
    }
    const { dataDir } = this.options;
    await dataDir.ensureDir(this.#historyDir);
    const history: PostHistory = {
      version: 1,
      post_id: current.id,
      versions: merged.versions,
      ...(askedAt === undefined ? {} : { edit_history_at: askedAt }),
    };
    await dataDir.writeJson(stored.path, history);
    this.#counts.versions += merged.added;
  }

  /**
   * Asks for the edit history of the user's own posts that wait for it, one request each, and
   * keeps the versions. A request that fails stays pending for the next run; the server's "no
   * history", "refused" and "no such endpoint" are answers and end the wait.
   */
  async #askEditHistories(): Promise<void> {
    const pending = this.#state.pendingHistory ?? [];
    const source = this.options.editHistory;
    await mapPooled(pending, this.options.concurrency, async ({ postId, createAt }) => {
      if (!source.available) return;
      this.#counts.historyRequests++;
      let copies: Post[] | undefined;
      try {
        copies = await source.copies(postId, this.#label);
      } catch (error) {
        this.options.failures.record(`edit history of post ${postId} in ${this.#label}`, error);
        return;
      }
      // An answer without copies ("none", "refused") still marks a history already there as
      // asked; no answer (no such endpoint) marks nothing.
      const current = copies === undefined
        ? undefined
        : await this.#readPost(this.#postFileName({ id: postId, create_at: createAt }));
      if (current && copies) {
        await this.#writeHistory(
          current,
          await this.#readHistory(postId),
          asVersions(copies, "edit_history"),
          editAt(current),
        );
      }
      const left = this.#state.pendingHistory ?? [];
      this.#state.pendingHistory = left.filter((p) => p.postId !== postId);
    });
    if (!source.available || this.#state.pendingHistory?.length === 0) {
      delete this.#state.pendingHistory;
    }
  }

  async #hasStoredPosts(): Promise<boolean> {
    for await (const _ of this.#postFiles()) return true;
    return false;
  }

  #postFiles(): AsyncGenerator<[id: string, fileName: string]> {
    return postFiles(this.options.dataDir, this.#postsDir);
  }

  #collectUsers(post: Post): void {
    if (post.user_id) this.result.userIds.add(post.user_id);
    for (const reaction of post.metadata?.reactions ?? []) {
      if (typeof reaction.user_id === "string") this.result.userIds.add(reaction.user_id);
    }
  }

  #addReply(rootId: string, replyId: string): void {
    const replies = this.#threads.get(rootId);
    if (replies?.includes(replyId)) return;
    if (replies) replies.push(replyId);
    else this.#threads.set(rootId, [replyId]);
    this.#threadsChanged = true;
  }

  /**
   * A stored file's text; undefined when it is missing. One unfit to be read (UnfitFileError:
   * a FIFO, a device, a file too large for a record) is never opened: it reads as empty, which
   * is damaged for every reader here (a post file is fetched again and replaced, an edit
   * history replaced), with a warning saying what was there.
   */
  async #readStored(parts: RelPath): Promise<string | undefined> {
    try {
      return await this.options.dataDir.readText(parts);
    } catch (error) {
      if (!(error instanceof UnfitFileError)) throw error;
      this.options.emit({
        type: "warning",
        message: `${parts.join("/")}: ${error.reason}; taken as damaged`,
      });
      return "";
    }
  }

  /** A stored post; a file that is there but no valid post is noted to be fetched again. */
  async #readPost(fileName: string): Promise<Post | undefined> {
    const text = await this.#readStored([...this.#postsDir, fileName]);
    const post = storedPost(text);
    const id = postIdFromFileName(fileName);
    if (text !== undefined && !post && id) this.#damaged.set(id, fileName);
    return post;
  }

  /** A damaged post file that this run's answer from the server replaced. */
  #replacedDamaged(postId: string, fileName: string): void {
    this.#damaged.delete(postId);
    this.options.emit({
      type: "info",
      message: `Replaced the damaged post file ${
        [...this.#postsDir, fileName].join("/")
      } with the server's copy`,
    });
  }

  /**
   * Post files found damaged while reading stored posts are fetched again by id and replaced
   * (never kept as they are); one the server no longer serves stays, with a warning.
   */
  async #refetchDamaged(): Promise<void> {
    const { api, dataDir, signal } = this.options;
    for (const [postId, fileName] of this.#damaged) {
      const path = [...this.#postsDir, fileName].join("/");
      try {
        const post = await restorePost(
          api,
          dataDir,
          this.target.channel.id,
          this.#postsDir,
          postId,
          fileName,
        );
        if (post.root_id) this.#addReply(post.root_id, post.id);
        this.#replacedDamaged(postId, fileName);
      } catch (error) {
        if (isFatal(error, signal)) throw error;
        if (!isGone(error)) {
          this.options.failures.record(`damaged post file ${path}`, error);
          continue;
        }
        this.options.emit({
          type: "warning",
          message: `The post file ${path} is damaged and the server no longer serves post ` +
            `${postId} (${describeError(error)}); the damaged file is kept`,
        });
      }
    }
    this.#damaged.clear();
  }

  #writePost(fileName: string, post: Post): Promise<boolean> {
    return this.options.dataDir.writeJson([...this.#postsDir, fileName], post);
  }

  /** Writes each FileInfo and downloads attachments not yet present with the right size. */
  async #saveFiles(infos: FileInfo[]): Promise<void> {
    const { dataDir, concurrency } = this.options;
    const unique = [...new Map(infos.map((info) => [info.id, info])).values()];
    const writes: BatchWrite[] = [];
    const missing = await mapPooled(unique, concurrency, async (info) => {
      const parts = [...this.#filesDir, fileInfoName(info.id)];
      const text = encodeJson(info);
      // One that cannot be read is written again.
      const stored = this.#first?.mayHoldInfo(info.id) === false
        ? undefined
        : await this.#readStored(parts).catch(() => undefined);
      if (stored !== text) writes.push({ parts, data: text });
      const present = this.#files.get(info.id);
      if (present && await dataDir.size([...this.#filesDir, present]) === info.size) return;
      if (this.#state.givenUpFiles?.includes(info.id)) return;
      return this.#attempted.has(info.id) ? undefined : info;
    });
    await dataDir.writeBatch(writes);
    for (const info of unique) this.#first?.storedInfo(info.id);
    const downloads = missing.filter((info) => info !== undefined);
    // All of a page's attachments are known before the first is fetched: the progress says so.
    const { progress } = this.result;
    for (const info of downloads.filter((i) => i.archived !== true)) {
      progress.files++;
      progress.fileBytes += info.size;
    }
    this.#reportProgress();
    await mapPooled(downloads, concurrency, (info) => this.#download(info));
  }

  async #download(info: FileInfo): Promise<void> {
    if (this.#attempted.has(info.id)) return;
    this.#attempted.add(info.id);
    const { api, dataDir, signal } = this.options;
    const name = fileDataName(info.id, info.name);
    const what = `attachment ${JSON.stringify(info.name)} (${info.id}) in ${this.#label}`;
    if (info.archived === true) {
      this.options.failures.add({
        what,
        why: "the server archived its content (plan limits); it cannot be downloaded",
      });
      return;
    }
    const { progress } = this.result;
    try {
      const bytes = await api.downloadFile(
        info.id,
        info.name,
        (body) => dataDir.writeStream([...this.#filesDir, name], body, info.size, signal),
      );
      this.#files.set(info.id, name);
      this.#state.pendingFiles = this.#state.pendingFiles.filter((p) => p.fileId !== info.id);
      this.#counts.files++;
      this.#counts.fileBytes += bytes;
    } catch (error) {
      // Not to be downloaded after all: the progress counts only what is still to come.
      progress.files--;
      progress.fileBytes -= info.size;
      if (isFatal(error, signal)) throw error;
      this.#recordFailedDownload(info, what, error);
    } finally {
      this.#reportProgress();
    }
  }

  /**
   * Keeps a failed attachment pending for the next run. One that answers 404 in
   * NOT_FOUND_RUNS runs in a row is given up with one warning: the server has no such file
   * (its post was deleted without our seeing it, or its content is lost).
   */
  #recordFailedDownload(info: FileInfo, what: string, error: unknown): void {
    let pending = this.#state.pendingFiles.find((p) => p.fileId === info.id);
    if (!pending) {
      pending = { fileId: info.id, postId: String(info.post_id ?? "") };
      this.#state.pendingFiles.push(pending);
    }
    if (!isServerNotFound(error)) {
      delete pending.notFoundRuns;
      this.options.failures.record(what, error);
      return;
    }
    const runs = (pending.notFoundRuns ?? 0) + 1;
    if (runs >= NOT_FOUND_RUNS) {
      this.#state.pendingFiles = this.#state.pendingFiles.filter((p) => p !== pending);
      this.#state.givenUpFiles = [...this.#state.givenUpFiles ?? [], info.id];
      this.options.emit({
        type: "warning",
        message: `Gave up on ${what}: the server answered 404 (not found) in ${runs} runs; ` +
          `its post was probably deleted, and the file is not in the backup`,
      });
      return;
    }
    pending.notFoundRuns = runs;
    this.options.failures.add({
      what,
      why: `${describeError(error)} (not found in ${runs} of ${NOT_FOUND_RUNS} runs before it ` +
        `is given up)`,
    });
  }

  /** A deleted post's attachments are gone from the server: nothing is left to retry. */
  #dropPendingFilesOf(postId: string): void {
    this.#state.pendingFiles = this.#state.pendingFiles.filter((p) => p.postId !== postId);
  }

  async #retryPendingFiles(): Promise<void> {
    const infos: FileInfo[] = [];
    for (const pending of this.#state.pendingFiles) {
      const info = await this.options.dataDir.readJson<FileInfo>([
        ...this.#filesDir,
        fileInfoName(pending.fileId),
      ]);
      if (info) infos.push(info);
    }
    await this.#saveFiles(infos);
  }

  async #loadIndexes(): Promise<void> {
    const { dataDir } = this.options;
    if (!this.#state.ownPostNames) {
      const names = new Map<string, string>();
      for await (const [id, name] of this.#postFiles()) names.set(id, name);
      // A folder we start from empty only ever gets names we make.
      if (!this.target.state && names.size === 0) this.#state.ownPostNames = true;
      else this.#legacyNames = names;
    }
    for (const entry of await dataDir.list(this.#filesDir)) {
      const id = entry.isFile ? fileIdFromDataName(entry.name) : undefined;
      if (id) this.#files.set(id, entry.name);
    }
    const threads = await dataDir.readJson<unknown>([
      ...this.#parent,
      `${this.#base}${THREADS_SUFFIX}`,
    ]);
    if (isThreadsMap(threads) && !this.target.state?.threadsStale) {
      for (const [root, replies] of Object.entries(threads)) this.#threads.set(root, [...replies]);
    } else {
      // Missing, unreadable (matterbak's old list format too) or behind the posts after a
      // crash: rebuild it from the posts.
      this.#threadsChanged = true;
      await this.#rebuildThreads();
    }
  }

  /**
   * A folder with posts but no state was written by matterbak (or lost its state): its
   * history counts as complete and the watermark is the highest stored `update_at`.
   */
  async #adoptStoredPosts(): Promise<number> {
    let max = 0;
    for (const fileName of this.#legacyNames?.values() ?? []) {
      max = Math.max(max, (await this.#readPost(fileName))?.update_at ?? 0);
    }
    return max;
  }

  async #rebuildThreads(): Promise<void> {
    const reader = new BackupReader(this.options.dataDir);
    const { threads, damaged } = await reader.threadsFromPosts(this.#postsDir);
    for (const [root, replies] of threads) for (const id of replies) this.#addReply(root, id);
    for (const { path } of damaged) {
      const name = path.at(-1) as string;
      const id = postIdFromFileName(name);
      if (id) this.#damaged.set(id, name);
    }
  }

  /**
   * Persists the sync state after making what it describes durable: the renames of posts,
   * attachments (no longer pending once the state says so) and the threads file, and the seen
   * log. The threads map is written only at the end of the channel (`final`): rewriting a file
   * that grows with the channel every few pages cost tens of MB of memory on big channels.
   * Until then the state says the map is stale, and a run after a crash rebuilds it from the
   * posts.
   */
  async #checkpoint(final: boolean): Promise<void> {
    const { dataDir } = this.options;
    if (final && this.#threadsChanged) {
      await dataDir.writeJson(
        [...this.#parent, `${this.#base}${THREADS_SUFFIX}`],
        Object.fromEntries(this.#threads),
      );
      await dataDir.syncDir(this.#parent);
      this.#threadsChanged = false;
    }
    await dataDir.syncDir(this.#postsDir);
    await dataDir.syncDir(this.#filesDir);
    if (await dataDir.exists(this.#historyDir)) await dataDir.syncDir(this.#historyDir);
    const seenLog = await this.#seen?.sync();
    if (this.#state.reconciling && seenLog) this.#state.seenLog = seenLog;
    else delete this.#state.seenLog;
    if (this.#threadsChanged) this.#state.threadsStale = true;
    else delete this.#state.threadsStale;
    this.#state.posts = this.#stored;
    await writeChannelState(dataDir, this.#state);
  }
}

/**
 * A 404 in the server's own error shape: the file is not there. A 404 without it (a proxy, a
 * wrong URL) or the router's "no such route" says nothing about the file.
 */
function isServerNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404 && error.errorId !== undefined &&
    error.errorId !== "api.context.404.app_error";
}

/** A post's history file as read: its content, or why it cannot be used. */
interface StoredHistory {
  path: RelPath;
  history: PostHistory | undefined;
  damaged: string | undefined;
}

function asVersions(posts: readonly Post[], from: VersionSource): PostVersion[] {
  return posts.map((post) => ({ from, post }));
}

/**
 * A stored post as the merge sees it: a file that is no valid post counts as not stored (one
 * that a crash of the original matterbak, which wrote in place, left truncated is then replaced
 * by the server's copy).
 */
function storedPost(text: string | undefined): Post | undefined {
  if (text === undefined) return undefined;
  const parsed = parseStoredPost(text);
  return "post" in parsed ? parsed.post : undefined;
}

const CRAWL_MODES = {
  "new": "full history",
  "damaged-state": "full re-crawl (its sync state was damaged)",
  "no-watermark": "full history (empty until now)",
  "update-old-posts": "full re-crawl (--update-old-posts)",
} as const;

function describePlan(plan: ChannelPlan): string {
  switch (plan.kind) {
    case "crawl":
      return CRAWL_MODES[plan.reason];
    case "resume":
      return "resuming interrupted crawl";
    case "incremental":
      return "changes";
  }
}
