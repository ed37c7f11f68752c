/**
 * Mutation testing: realistic one-line bugs in sync, storage, the client and secrets, each
 * applied alone to a scratch copy of the repository and run against only the tests named for
 * it. Every mutant must make those tests fail ("killed"); one that passes ("survived") is a bug
 * the suite would let through. A search string that is no longer in its file, or is there more
 * than once, fails the run too, so the list cannot silently rot. The working tree is never
 * touched.
 *
 *   deno task mutate                 every mutation
 *   deno task mutate --only NAME     those whose name contains NAME (may be repeated)
 *
 * Run it before resolving an issue that touches sync, storage, the client or secrets, and add
 * a mutation here for each new "must not happen" property. Zero survivors is the bar.
 * Exit status: 0 all killed, 1 some survived, 2 a broken list, a mutant that does not load or
 * a failing baseline.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export interface Mutation {
  /** Short id, for --only and the report. */
  name: string;
  /** What the bug would cost the users. */
  cost: string;
  /** Path from the repository root. */
  file: string;
  /** Exact text that occurs exactly once in `file`. */
  search: string;
  replace: string;
  /** Test files (from the repository root) that must catch it. */
  tests: string[];
  /** Only the tests whose name contains this (`deno test --filter`). */
  filter?: string;
}

const CHANNEL_SYNC = "lib/sync/channel_sync.ts";
const SYNC_PLAN = "lib/sync/sync_plan.ts";
const ATOMIC_WRITE = "lib/store/atomic_write.ts";
const CLIENT = "lib/api/client.ts";
const DURABILITY = "tests/durability_test.ts";
const INCREMENTAL = "tests/incremental_test.ts";
const API_CLIENT = "tests/api_client_test.ts";
const HOSTILE = "tests/hostile_server_test.ts";
const SECRETS = "tests/secrets_test.ts";
const THREADS = "lib/export/threads.ts";
const BULK_FORMAT = "lib/export/bulk_format.ts";
const EXPORT_MM = "tests/export_mattermost_test.ts";
const EXPORT_MD = "tests/export_markdown_test.ts";
const EDIT_HISTORY = "tests/edit_history_test.ts";
const INIT_LIST = "tests/init_list_test.ts";
const PROGRESS = "tests/progress_test.ts";
const DATA_DIR = "lib/store/data_dir.ts";
const STATE = "lib/store/state.ts";
const HOSTILE_FS = "tests/hostile_fs_test.ts";
const ZIP_ARCHIVE = "tests/zip_archive_test.ts";
const VERIFY = "lib/verify/verify.ts";
const CHECK_FILE = "lib/verify/check_file.ts";
const CHECK_POOL = "lib/verify/check_pool.ts";
const VERIFY_TEST = "tests/verify_test.ts";
const REPAIR = "lib/sync/repair.ts";
const OUTPUT_STORAGE = "tests/output_storage_test.ts";
const STAGING = "lib/export/staging.ts";
const DATA_DIR_TEST = "tests/data_dir_test.ts";
const UNFIT_FILES = "tests/unfit_files_test.ts";
const ENDLESS_PAGING = "tests/endless_paging_test.ts";

export const MUTATIONS: readonly Mutation[] = [
  // Sync: watermark, cursor, tombstones, threads, attachments.
  {
    name: "since-overlap-call-site",
    cost: "changes a lagging replica shows late are skipped for good",
    file: CHANNEL_SYNC,
    search: "      sinceFor(watermark),\n",
    replace: "      watermark,\n",
    tests: [INCREMENTAL],
    filter: "lagging replica",
  },
  {
    name: "since-overlap-dropped",
    cost: "the same, for every caller of sinceFor",
    file: SYNC_PLAN,
    search: "return Math.max(1, watermark - SINCE_OVERLAP_MS);",
    replace: "return Math.max(1, watermark);",
    tests: ["tests/sync_plan_test.ts"],
    filter: "overlap",
  },
  {
    name: "watermark-before-store",
    cost: "an interrupted update loses the changes it had not stored yet",
    file: CHANNEL_SYNC,
    search: "    await this.#storePosts(list);\n" +
      "    this.#state.watermark = Math.max(watermark, maxUpdateAt(Object.values(list.posts)));\n",
    replace:
      "    this.#state.watermark = Math.max(watermark, maxUpdateAt(Object.values(list.posts)));\n" +
      "    await this.#storePosts(list);\n",
    tests: [INCREMENTAL],
    filter: "an interrupted update",
  },
  {
    name: "crawl-watermark-overall-max",
    cost: "posts edited while a crawl ran are never fetched again",
    file: SYNC_PLAN,
    search: "return Math.max(firstPageMax, overallMax - Math.ceil(durationMs));",
    replace: "return Math.max(firstPageMax, overallMax);",
    tests: ["tests/sync_plan_test.ts"],
    filter: "crawl's watermark",
  },
  {
    name: "cursor-last-post",
    cost: "posts sharing a millisecond at a page boundary are skipped",
    file: CHANNEL_SYNC,
    search: "const next = nextCursor(list.order, list.posts);",
    replace: "const next = list.order.at(-1);",
    tests: ["tests/backup_e2e_test.ts"],
    filter: "share one millisecond",
  },
  {
    name: "since-limit-never-falls-back",
    cost: "after 1000 or more changes, an arbitrary subset is taken as all of them",
    file: CHANNEL_SYNC,
    search: "list.listed >= SINCE_LIMIT) return false;",
    replace: "list.listed > SINCE_LIMIT) return false;",
    tests: [INCREMENTAL],
    filter: "exactly 1000",
  },
  {
    name: "deletion-loses-content",
    cost: "a post deleted on the server loses its stored text",
    file: SYNC_PLAN,
    search: "      ...stored,\n",
    replace: "      ...incoming,\n",
    tests: ["tests/sync_plan_test.ts"],
    filter: "deletion keeps",
  },
  {
    name: "every-tombstone-a-history-copy",
    cost: "deletions are never recorded",
    file: SYNC_PLAN,
    search: 'return post.delete_at > 0 && typeof post.original_id === "string" && ' +
      'post.original_id !== "";',
    replace: "return post.delete_at > 0;",
    tests: ["tests/sync_plan_test.ts"],
    filter: "history copies",
  },
  {
    name: "resumed-recrawl-forgets-seen",
    cost: "posts deleted before an interrupted re-crawl are never marked",
    file: CHANNEL_SYNC,
    search: "        if (this.#state.reconciling) await this.#resumeSeenLog();\n",
    replace: "",
    tests: ["tests/interruption_test.ts"],
    filter: "interrupted re-crawl",
  },
  {
    name: "threads-stale-never-set",
    cost: "after a crash the threads file is stale and never rebuilt",
    file: CHANNEL_SYNC,
    search: "    if (this.#threadsChanged) this.#state.threadsStale = true;\n" +
      "    else delete this.#state.threadsStale;\n",
    replace: "    delete this.#state.threadsStale;\n",
    tests: [DURABILITY],
    filter: "mid-crawl",
  },
  {
    name: "attachment-size-unchecked",
    cost: "a truncated attachment is never repaired",
    file: CHANNEL_SYNC,
    search:
      "if (present && await dataDir.size([...this.#filesDir, present]) === info.size) return;",
    replace: "if (present) return;",
    tests: [INCREMENTAL],
    filter: "update-old-posts repairs",
  },
  {
    name: "recrawl-keeps-old-cursor",
    cost:
      "a re-crawl stopped on its first page resumes at the old place: posts lost, live ones marked deleted",
    file: CHANNEL_SYNC,
    search: "          delete this.#state.cursor;\n",
    replace: "",
    tests: ["tests/interruption_test.ts"],
    filter: "first page after an interrupted crawl",
  },
  {
    name: "damaged-state-adopted",
    cost: "a half-crawled channel whose state is damaged passes for a finished matterbak backup",
    file: SYNC_PLAN,
    search: '  if (options.damagedState) return { kind: "crawl", reason: "damaged-state" };\n',
    replace: "",
    tests: ["tests/damaged_state_test.ts", "tests/sync_plan_test.ts"],
    filter: "/interrupted first crawl|planChannel: new/",
  },
  {
    name: "state-values-unchecked",
    cost: "a tampered state sends since=NaN or steers writes to another folder",
    file: "lib/store/state.ts",
    search: "  const problem = channelStateProblem(value, channelId);\n",
    replace: "  const problem = undefined;\n",
    tests: ["tests/damaged_state_test.ts"],
    filter: "must not reach the server",
  },
  {
    name: "any-404-gives-up",
    cost: "a proxy's 404 makes the tool give up attachments for good",
    file: CHANNEL_SYNC,
    search:
      "  return error instanceof ApiError && error.status === 404 && error.errorId !== undefined &&",
    replace:
      "  return error instanceof ApiError && error.status === 404 || error.errorId !== undefined &&",
    tests: ["tests/faults_e2e_test.ts"],
    filter: "proxy",
  },
  // Storage: durability, atomic writes, temporary files, containment, names, the zip.
  {
    name: "no-fsync-before-rename",
    cost: "a power cut leaves empty files under final names",
    file: ATOMIC_WRITE,
    search: "    if (options.sync !== false) await syncStep(file, temp, recorder);\n",
    replace: "",
    tests: [DURABILITY],
    filter: "a write stopped",
  },
  {
    name: "no-fsync-in-batch",
    cost: "a power cut leaves empty post files under their final names",
    file: ATOMIC_WRITE,
    search: "      await syncStep(handle, temp, recorder);\n",
    replace: "",
    tests: [DURABILITY],
    filter: "every checkpoint",
  },
  {
    name: "batch-renamed-before-synced",
    cost: "a power cut leaves empty post files under their final names",
    file: ATOMIC_WRITE,
    search: "    await inSyncChunks(files, async ({ path, bytes }, index, opened) => {\n",
    replace: "    await inSyncChunks([], async ({ path, bytes }, index, opened) => {\n",
    tests: ["tests/atomic_write_test.ts"],
    filter: "a batch stopped",
  },
  {
    name: "no-dir-sync-in-batch",
    cost: "a batch returns before the renames of its posts are durable",
    file: ATOMIC_WRITE,
    search: "    for (const folder of folders) await syncDir(folder, recorder);\n",
    replace: "",
    tests: ["tests/atomic_write_test.ts"],
    filter: "a batch stopped",
  },
  {
    name: "batch-temp-left-on-failure",
    cost: "a failed batch leaves temporary files (and may rename none of them)",
    file: ATOMIC_WRITE,
    search: "        Deno.removeSync(temp);\n",
    replace: "",
    tests: ["tests/atomic_write_test.ts"],
    filter: "a batch stopped",
  },
  {
    name: "checkpoint-claims-unstored-posts",
    cost: "a crash after a checkpoint resumes past a month of posts never stored",
    file: CHANNEL_SYNC,
    search: "      this.#state.cursorAt = nextAt;\n",
    replace: "      this.#state.cursorAt = (nextAt ?? 0) - 30 * 86_400_000;\n",
    tests: ["tests/checkpoint_coverage_test.ts"],
  },
  {
    name: "zip-reads-a-link-swapped-in",
    cost: "the zip takes in a file outside the data dir through a link put in place of a post",
    file: DATA_DIR,
    search: "      if (opened.dev !== entry.info.dev || opened.ino !== entry.info.ino) {\n",
    replace: "      if (opened.dev !== entry.info.dev && opened.ino !== entry.info.ino) {\n",
    tests: ["tests/data_dir_test.ts"],
    filter: "still that file",
  },
  {
    name: "batch-not-in-manifest",
    cost: "verify reports every post a batch wrote as missing from the manifest",
    file: DATA_DIR,
    search:
      "    await writeFilesDurably(batch, { ...this.#writeOptions(), ...(renamed ? { renamed } : {}) });\n",
    replace:
      "    await writeFilesDurably(batch, { recorder: this.recorder, ...(renamed ? { renamed } : {}) });\n",
    tests: ["tests/verify_test.ts"],
  },
  {
    name: "batch-place-moved-after-interrupt",
    cost: "an interruption while a page is written records the place past it",
    file: CHANNEL_SYNC,
    search: "    // Stopped while the page was written: the crawl's place stays before it.\n" +
      "    this.options.signal?.throwIfAborted();\n",
    replace: "",
    tests: ["tests/interruption_test.ts"],
    filter: "a re-crawl stopped",
  },
  {
    name: "probe-skipped-outside-first-crawl",
    cost: "an update overwrites stored posts without merging (edit history lost)",
    file: CHANNEL_SYNC,
    search: "      if (fresh) this.#first = new FirstCrawl();\n",
    replace: "      this.#first = new FirstCrawl();\n",
    tests: [INCREMENTAL, EDIT_HISTORY],
  },
  {
    name: "first-crawl-forgets-roots-ahead",
    cost: "a root sent ahead of its page is overwritten unmerged and counted twice",
    file: SYNC_PLAN,
    search: "      if (post && post.create_at < below) this.#ahead.set(post.id, post.create_at);\n",
    replace: "",
    tests: ["tests/sync_plan_test.ts"],
    filter: "first crawl",
  },
  {
    name: "first-crawl-trusts-its-place-too-far",
    cost: "a post stored at the crawl's place is overwritten unmerged",
    file: SYNC_PLAN,
    search: "    return post.create_at >= this.#below || this.#ahead.has(post.id);\n",
    replace: "    return post.create_at > this.#below || this.#ahead.has(post.id);\n",
    tests: ["tests/sync_plan_test.ts"],
    filter: "first crawl",
  },
  {
    name: "no-dir-sync-posts",
    cost: "a power cut loses posts the saved state says are stored",
    file: CHANNEL_SYNC,
    search: "    await dataDir.syncDir(this.#postsDir);\n",
    replace: "",
    // Batches sync their folder themselves; a post marked deleted by a re-crawl is not in one.
    tests: ["tests/checkpoint_coverage_test.ts"],
    filter: "marks posts deleted",
  },
  {
    name: "no-dir-sync-attachments",
    cost: "a power cut loses attachments no longer listed as pending",
    file: CHANNEL_SYNC,
    search: "    await dataDir.syncDir(this.#filesDir);\n",
    replace: "",
    tests: [DURABILITY],
    filter: "every checkpoint",
  },
  {
    name: "no-dir-sync-threads",
    cost: "a power cut leaves an old threads file the state calls current",
    file: CHANNEL_SYNC,
    search: "      await dataDir.syncDir(this.#parent);\n",
    replace: "",
    tests: [DURABILITY],
    filter: "every checkpoint",
  },
  {
    name: "no-dir-sync-users",
    cost: "a power cut loses user records the users watermark has passed",
    file: "lib/sync/backup.ts",
    search: "    await dataDir.syncDir([DIRS.users]);\n",
    replace: "",
    tests: [DURABILITY],
    filter: "every checkpoint",
  },
  {
    name: "seen-log-not-synced",
    cost: "a resumed re-crawl marks posts it had seen as deleted",
    file: CHANNEL_SYNC,
    search: "    const seenLog = await this.#seen?.sync();\n",
    replace:
      "    const seenLog = this.#seen && { token: this.#seen.token, lines: this.#seen.lines };\n",
    tests: [DURABILITY],
    filter: "every checkpoint",
  },
  {
    name: "short-download-kept",
    cost: "a cut-off download is renamed into place",
    file: ATOMIC_WRITE,
    search: "if (options.expectedSize !== undefined && written !== options.expectedSize) {",
    replace: "if (options.expectedSize !== undefined && written > options.expectedSize) {",
    tests: ["tests/atomic_write_test.ts"],
    filter: "short download",
  },
  {
    name: "temp-left-after-failure",
    cost: "every failed write leaves a temporary file behind",
    file: ATOMIC_WRITE,
    search: "    await Deno.remove(temp).catch(() => {});\n",
    replace: "",
    tests: ["tests/atomic_write_test.ts"],
    filter: "short download",
  },
  {
    name: "stale-temp-cleanup-shallow",
    cost: "temporary files a crash left in channel folders stay forever",
    file: "lib/store/data_dir.ts",
    search:
      "    for (const name of subdirs) removed += await this.removeStaleTempFiles([...parts, name]);\n",
    replace: "",
    tests: ["tests/atomic_write_test.ts"],
    filter: "left by a crash",
  },
  {
    name: "containment-checks-only-dotdot",
    cost: "an empty or control-character component reaches the file system",
    file: "lib/store/data_dir.ts",
    search: "      if (!isContainedComponent(part)) {",
    replace: '      if (part === "..") {',
    tests: ["tests/atomic_write_test.ts"],
    filter: "refuses any path",
  },
  {
    name: "sanitiser-keeps-slash",
    cost: "an attachment named ../x becomes a path",
    file: "lib/store/safe_name.ts",
    search: String.raw`const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f/\\:*?"<>|]/g;`,
    replace: String.raw`const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\\:*?"<>|]/g;`,
    tests: ["tests/safe_name_test.ts"],
  },
  {
    name: "name-cut-one-short",
    cost: "long names lose a character they had room for",
    file: "lib/store/safe_name.ts",
    search: "if (bytes + size > maxBytes) break;",
    replace: "if (bytes + size >= maxBytes) break;",
    tests: ["tests/safe_name_test.ts"],
    filter: "long names",
  },
  {
    name: "zip64-force-ignored",
    cost: "the zip64 end records are missing where they are required",
    file: "lib/zip/format.ts",
    search:
      "const zip64 = forceZip64 || count >= U16 || directoryStart >= U32 || directorySize >= U32;",
    replace: "const zip64 = count >= U16 || directoryStart >= U32 || directorySize >= U32;",
    tests: ["tests/zip_writer_test.ts"],
    filter: "round-trip",
  },
  // The zip reuses what the previous one holds: never a stale entry, never a half-written zip.
  {
    name: "zip-reuse-ignores-inode",
    cost: "a file replaced by another of the same size and time keeps its old content in the zip",
    file: "lib/zip/previous.ts",
    search: "const sameIno = Number.isNaN(ino) ? stat.ino === undefined : stat.ino === ino;",
    replace: "const sameIno = true;",
    tests: [ZIP_ARCHIVE],
    filter: "inode differs",
  },
  {
    name: "zip-racy-trusted",
    cost: "a file changed again just after it was zipped keeps its old content in the zip",
    file: "lib/zip/previous.ts",
    search: 'return flags & RACY ? "racy" : "same";',
    replace: 'return "same";',
    tests: [ZIP_ARCHIVE],
    filter: "racy file",
  },
  {
    name: "zip-racy-crc-skipped",
    cost: "the same: a racy entry is reused without comparing its content",
    file: "lib/zip/archive.ts",
    search: "return (crc >>> 0) === this.previous?.crc(index);",
    replace: "return crc !== undefined;",
    tests: [ZIP_ARCHIVE],
    filter: "racy file",
  },
  {
    name: "zip-record-size-only",
    cost: "a zip something else changed since the last run is trusted as that run's",
    file: "lib/zip/previous.ts",
    search:
      "if (same.size !== record.size || same.mtimeMs !== record.mtimeMs || same.ino !== record.ino) {",
    replace: "if (same.size !== record.size) {",
    tests: [ZIP_ARCHIVE],
    filter: "missing, touched",
  },
  {
    name: "zip-copy-name-unchecked",
    cost: "an entry found by a colliding name hash puts one file's bytes under another's name",
    file: "lib/zip/previous.ts",
    search: "!equalBytes(first.subarray(LOCAL_HEADER_SIZE, LOCAL_HEADER_SIZE + name.length), name)",
    replace: "false",
    tests: [ZIP_ARCHIVE],
    filter: "local header holds",
  },
  {
    name: "zip-temp-kept",
    cost: "an interrupted zip leaves a half-written archive beside the zip",
    file: "lib/zip/archive.ts",
    search: "      if (this.#writer) await Deno.remove(this.#temp).catch(() => {});\n",
    replace: "",
    tests: [ZIP_ARCHIVE],
    filter: "interrupted incremental",
  },
  {
    name: "zip-unchanged-rewritten",
    cost: "every run rewrites an unchanged zip (a minute of a cron run at 200,000 posts)",
    file: "lib/zip/archive.ts",
    search: "if (!this.#writer && previous && this.#matched === previous.count) {",
    replace: "if (!this.#writer && previous && this.#matched > previous.count) {",
    tests: [ZIP_ARCHIVE],
    filter: "left as it is",
  },
  {
    name: "first-state-not-durable",
    cost: "after a power cut, posts without their channel's state pass for a finished backup",
    file: CHANNEL_SYNC,
    search: "      await dataDir.syncDir(CHANNEL_STATES_DIR);\n",
    replace: "",
    tests: [DURABILITY],
    filter: "every checkpoint",
  },
  // A tampered data dir: links out of it, damaged state, a read-only file system.
  {
    name: "links-followed-below-data-dir",
    cost: "a folder replaced by a link to an outside folder receives the backup",
    file: DATA_DIR,
    search: "      if (info.isSymlink) throw linkRefused(current, this.label);\n    }\n",
    replace: "    }\n",
    tests: [HOSTILE_FS],
    filter: "replaced by a link to an outside folder",
  },
  {
    name: "ensure-dir-mkdir-p",
    cost: "mkdir -p through a dangling link creates folders outside the data dir",
    file: DATA_DIR,
    search: "      await Deno.mkdir(this.root, { recursive: true });\n",
    replace: "      await Deno.mkdir(this.path(parts), { recursive: true });\n",
    tests: ["tests/data_dir_test.ts"],
    filter: "every operation refuses a link",
  },
  {
    name: "open-follows-final-link",
    cost: "a lock file that is a link to an outside file is truncated",
    file: ATOMIC_WRITE,
    search: "    if (seen.isSymlink) throw linkRefused(path);\n",
    replace: "",
    tests: ["tests/data_dir_test.ts"],
    filter: "openNoFollow",
  },
  {
    name: "damaged-seen-log-read-as-empty",
    cost: "a garbled seen log marks every live post of an interrupted re-crawl deleted",
    file: STATE,
    search: '    if ("problem" in checked) return checked;\n',
    replace: '    if ("problem" in checked) Object.assign(checked, { ids: new Set(), lines: 0, ' +
      "length: text.length, problem: undefined });\n",
    tests: ["tests/interruption_test.ts"],
    filter: "seen log was zeroed",
  },
  {
    name: "seen-log-damaged-lines-skipped",
    cost: "a post whose id a flipped byte garbled is marked deleted",
    file: STATE,
    search: "    if (!match || crc32Hex(match[1] as string) !== match[2]) {\n",
    replace: "    if (!match) {\n",
    tests: ["tests/state_test.ts"],
    filter: "never trusted",
  },
  {
    name: "seen-log-length-unchecked",
    cost: "a seen log that lost its tail marks the posts listed there deleted",
    file: STATE,
    search: "  if (lines.length < vouched.lines) {\n",
    replace: "  if (lines.length < 0) {\n",
    tests: ["tests/state_test.ts"],
    filter: "never trusted",
  },
  {
    name: "seen-log-of-another-crawl",
    cost: "a resumed crawl trusts the log a later crawl started, and marks older posts deleted",
    file: STATE,
    search: "  const header = seenLogHeader(channelId, vouched.token);\n",
    replace: '  const header = text.slice(0, text.indexOf("\\n") + 1);\n',
    tests: ["tests/state_test.ts"],
    filter: "never trusted",
  },
  {
    name: "state-dir-any-folder",
    cost: "a state pointing at another channel's folder mixes this channel's posts into it",
    file: STATE,
    search: '  if (!isChannelFolder(dir.split("/"), channelId)) {\n',
    replace: '  if (dir === "") {\n',
    tests: ["tests/damaged_state_test.ts"],
    filter: "another channel's folder",
  },
  {
    name: "zip-exclude-by-spelling",
    cost: "credentials reached through another spelling of their path end up in the zip",
    file: "lib/zip/archive.ts",
    search: 'if (this.context.exclude.has(key)) return { kind: "excluded" };',
    replace:
      'if (this.context.exclude.has(dataDir.existingPath(entry.parts))) return { kind: "excluded" };',
    tests: [HOSTILE_FS],
    filter: "credentials in the data dir",
  },
  {
    name: "zip-inside-data-dir-by-spelling",
    cost: "a zip inside the data dir through a link zips every earlier zip and grows each run",
    file: "lib/zip/archive.ts",
    search: "  if (inside(await Deno.realPath(dataRoot), join(realFolder, basename(zipPath)))) {\n",
    replace: "  if (inside(dataRoot, zipPath)) {\n",
    tests: [HOSTILE_FS],
    filter: "zip path inside the data dir",
  },
  {
    name: "zip-folder-checked-late",
    cost: "a read-only folder for the zip is found after the whole backup ran",
    file: "lib/zip/archive.ts",
    search: "  await checkWritableFolder(folder, `--output-zip ${zipPath}`);\n",
    replace: "",
    tests: [HOSTILE_FS],
    filter: "read-only folder for -o",
  },
  {
    name: "read-only-fs-per-item",
    cost: "a read-only data dir fails with a message that does not say so",
    file: ATOMIC_WRITE,
    search: "  if (isReadOnlyFs(error)) {\n",
    replace: "  if (error === undefined) {\n",
    tests: [HOSTILE_FS],
    filter: "read-only data dir",
  },
  {
    name: "report-failure-exit-0",
    cost: "cron sees success when the report it reads was not written",
    file: "lib/cli/commands/backup.ts",
    search: "  if (!reported && status === ExitCode.ok) status = ExitCode.usage;\n",
    replace: "",
    tests: [HOSTILE_FS],
    filter: "report that cannot be written",
  },
  // The reader: what verify, view and export see of the backup.
  {
    name: "reader-no-zone-margin",
    cost: "posts of matterbak's local-time folders come out of order in every reader",
    file: "lib/store/reader.ts",
    search: "const MAX_ZONE_OFFSET_MS = 14 * 3600_000;",
    replace: "const MAX_ZONE_OFFSET_MS = 0;",
    tests: ["tests/reader_test.ts"],
    filter: "time order",
  },
  {
    name: "reader-pass-drops-last-hour",
    cost: "the posts of the last hour of each pass are never read back",
    file: "lib/store/reader.ts",
    search: "name.slice(0, 11) >= first && name.slice(0, 11) <= last;",
    replace: "name.slice(0, 11) >= first && name.slice(0, 11) < last;",
    tests: ["tests/reader_test.ts"],
    filter: "time order",
  },
  {
    name: "reader-trusts-file-name",
    cost: "a post file holding another post is read as the post its name says",
    file: "lib/store/reader.ts",
    search: "if (expectedId !== undefined && value.id !== expectedId) {",
    replace: "if (expectedId === undefined && value.id !== expectedId) {",
    tests: ["tests/reader_test.ts"],
    filter: "damaged",
  },
  // The manifest and verify: no damage reported intact, no line before its file is durable.
  {
    name: "verify-size-only",
    cost: "a file changed but not resized (a message rewritten) is reported intact",
    file: VERIFY,
    search: "      const same = outcomes.sha256.startsWith(entry.sha256, 64 * i);",
    replace: "      const same = entry.sha256.length === 64;",
    tests: [VERIFY_TEST],
    filter: "each kind of damage",
  },
  {
    name: "verify-digest-of-another-file",
    cost: "each file is compared with the digest of another file of its batch",
    file: VERIFY,
    search: "      const same = outcomes.sha256.startsWith(entry.sha256, 64 * i);",
    replace: "      const same = outcomes.sha256.startsWith(entry.sha256, 64 * (i ^ 1));",
    tests: [VERIFY_TEST],
    filter: "workers find",
  },
  {
    name: "verify-packed-author-dropped",
    cost: "an author without a user record goes unreported (the next run does not ask for it)",
    file: VERIFY,
    search:
      "      this.#noteAuthor(outcomes.authors.slice(ID_LENGTH * i, ID_LENGTH * i + ID_LENGTH), path);",
    replace: "      outcomes.authors.slice(ID_LENGTH * i, ID_LENGTH * i + ID_LENGTH);",
    tests: [VERIFY_TEST],
    filter: "workers find",
  },
  {
    name: "verify-missing-not-reported",
    cost: "a file lost from the backup is not reported",
    file: VERIFY,
    search: "      if (entry) this.#missing(path);\n",
    replace: "",
    tests: [VERIFY_TEST],
    filter: "each kind of damage",
  },
  {
    name: "verify-sample-skips-sizes",
    cost: "with --sample, a cut file that was not read is reported intact",
    file: VERIFY,
    search: "    if (entry.size < 0 || info.size === entry.size) return;",
    replace: "    return;",
    tests: [VERIFY_TEST],
    filter: "--sample 0",
  },
  {
    name: "verify-interrupted-excuses-old-damage",
    cost: "after a killed run, bit rot in any older file passes for the run's own change",
    file: VERIFY,
    search: "    if (since === undefined || mtime < since - MTIME_MARGIN_MS) return false;",
    replace: "    if (since === undefined) return false;",
    tests: [VERIFY_TEST],
    filter: "kill -9",
  },
  {
    name: "zip-crc-unchecked",
    cost: "a corrupt entry in the zip is reported intact",
    file: "lib/zip/reader.ts",
    search: "          if (size !== entry.size || crc >>> 0 !== entry.crc) {",
    replace: "          if (size !== entry.size) {",
    tests: ["tests/zip_reader_test.ts"],
    filter: "a changed byte",
  },
  {
    name: "manifest-hash-misses-streams",
    cost: "downloaded attachments get a wrong SHA-256: verify calls every one damaged",
    file: ATOMIC_WRITE,
    search: "          hash?.update(value);\n",
    replace: "",
    tests: ["tests/backup_e2e_test.ts"],
    filter: "a first run stores everything",
  },
  {
    name: "manifest-line-before-durable",
    cost: "after a power cut the manifest vouches for files that were lost: false damage",
    file: "lib/store/manifest.ts",
    search: '    for (const dir of dirs) if (dir !== "") await dataDir.syncDir(dir.split("/"));\n',
    replace: "",
    tests: [DURABILITY],
    filter: "every checkpoint",
  },
  {
    name: "repair-list-cleared-before-durable",
    cost: "after a power cut a repaired file is damaged again and no longer listed for repair",
    file: "lib/store/repair_list.ts",
    search: "  await dataDir.sink?.checkpoint();\n",
    replace: "",
    tests: [DURABILITY],
    filter: "repair list",
  },
  {
    name: "manifest-removal-before-durable",
    cost: "after a power cut the manifest forgets a file whose removal was lost: unexpected file",
    file: "lib/store/manifest.ts",
    search: '    this.#dirtyDirs.add(rel.slice(0, Math.max(0, rel.lastIndexOf("/"))));\n',
    replace: "",
    tests: [DURABILITY],
    filter: "repair list",
  },
  {
    name: "removal-not-announced",
    cost: "a run stopped right after removing a file leaves its line: verify calls it missing",
    file: DATA_DIR,
    search: "    await this.sink?.removing(full);\n",
    replace: "",
    tests: ["tests/manifest_test.ts"],
    filter: "stopped before its next checkpoint",
  },
  {
    name: "announced-removal-not-rehashed",
    cost: "a file a stopped run meant to remove and did not drops out of the manifest",
    file: "lib/store/manifest.ts",
    search: "      if (since !== undefined && known !== null) {",
    replace: "      if (since !== undefined) {",
    tests: ["tests/manifest_test.ts"],
    filter: "stopped before its next checkpoint",
  },
  // Repairs: what verify found is fetched again and replaces the damaged copy.
  {
    name: "repair-keeps-damaged-post",
    cost: "a damaged post file stays as it is after the repair",
    file: REPAIR,
    search:
      "  await dataDir.writeText([...folder, fileName ?? postFileName(post)], encodeJson(post));",
    replace: "  const target = [...folder, fileName ?? postFileName(post)];\n" +
      "  if (!await dataDir.exists(target)) await dataDir.writeText(target, encodeJson(post));",
    tests: [VERIFY_TEST],
    filter: "each kind of damage",
  },
  {
    name: "repair-keeps-damaged-attachment",
    cost: "an attachment with a flipped byte (the right size) is kept after the repair",
    file: REPAIR,
    search: "      await restoreFile(ctx, folder, info, { path: item.path });",
    replace: "      await restoreFile(ctx, folder, info, { path: item.path, onlyMissing: true });",
    tests: [VERIFY_TEST],
    filter: "each kind of damage",
  },
  {
    name: "repair-list-never-cleared",
    cost: "every later run repairs the same items again",
    file: REPAIR,
    search: "  await writeRepairList(dataDir, { ...list, items: kept });",
    replace: "  await writeRepairList(dataDir, list);",
    tests: [VERIFY_TEST],
    filter: "each kind of damage",
  },
  {
    name: "sync-never-refetches",
    cost: "damaged post files the sync reads are left as they are",
    file: CHANNEL_SYNC,
    search: "      await this.#refetchDamaged();\n",
    replace: "",
    tests: [VERIFY_TEST],
    filter: "comes across",
  },
  {
    name: "sync-keeps-damaged-post",
    cost: "a post file that is no valid JSON is kept as it is by the runs that read it",
    file: CHANNEL_SYNC,
    search: "    if (text !== undefined && !post && id) this.#damaged.set(id, fileName);\n",
    replace: "",
    tests: [VERIFY_TEST],
    filter: "comes across",
  },
  {
    name: "zip-inflate-error-bare",
    cost: "a zip entry whose deflate data is broken ends verify --zip with a stack trace",
    file: "lib/zip/reader.ts",
    search: "        if (!(error instanceof TypeError)) throw error;\n",
    replace: "        throw error;\n",
    tests: ["tests/zip_reader_test.ts"],
    filter: "cannot be inflated",
  },
  // Verify's reads go through no symbolic link either.
  {
    name: "verify-reads-through-file-link",
    cost: "a post file replaced by a link to a copy elsewhere is read there and passes as intact",
    file: DATA_DIR,
    search: "    const full = !irregular || irregular.has(parts.at(-1) as string)\n",
    replace: "    const full = !irregular\n",
    tests: [VERIFY_TEST],
    filter: "symbolic link",
  },
  {
    name: "verify-reads-through-folder-link",
    cost: "a channel folder replaced by a link to a copy elsewhere is read there and passes",
    file: DATA_DIR,
    search: "      for await (const entry of this.entries(folder)) {\n",
    replace: "      for await (const entry of Deno.readDir(this.existingPath(folder))) {\n",
    tests: [VERIFY_TEST],
    filter: "symbolic link",
  },
  {
    name: "verify-walk-misses-file-link",
    cost: "a post file replaced by a link is read through it by a worker and passes as intact",
    file: DATA_DIR,
    search:
      "        if (entry.isSymlink || info?.isSymlink || (!entry.isFile && !entry.isDirectory)) {\n",
    replace: "        if (false) {\n",
    tests: [VERIFY_TEST],
    filter: "symbolic link",
  },
  // A server whose paging never ends: bounded requests, an error naming the list and server.
  {
    name: "list-paging-repeat-unguarded",
    cost: "members or emoji that repeat a full page are asked for 2,000 times before the " +
      "run gives up",
    file: "lib/api/mattermost.ts",
    search: "      if (all.size === known) {\n",
    replace: "      if (false) {\n",
    tests: [ENDLESS_PAGING],
    filter: "repeat a full page",
  },
  {
    name: "list-paging-cap-removed",
    cost: "a members or emoji list of ever new ids is paged for ever, its memory growing " +
      "without bound",
    file: "lib/api/mattermost.ts",
    search: "      if (page === MAX_LIST_PAGES) {\n",
    replace: "      if (false) {\n",
    tests: [ENDLESS_PAGING],
    filter: "page cap",
  },
  {
    name: "crawl-cursor-unchecked",
    cost: "a server that answers every before= with the same page makes the crawl page for ever",
    file: CHANNEL_SYNC,
    search: "          if (problem) {\n",
    replace: "          if (false) {\n",
    tests: [ENDLESS_PAGING],
    filter: "crawl whose cursor",
  },
  {
    name: "cursor-repeat-unchecked",
    cost: "resumed from a state without the cursor's time, the same page is crawled for ever",
    file: SYNC_PLAN,
    search:
      "  if (next.id === previous.id) return `the next page starts again before post ${next.id}`;\n",
    replace: "",
    tests: ["tests/sync_plan_test.ts"],
    filter: "cursor",
  },
  {
    name: "cursor-equal-time-accepted",
    cost: "a server that answers with posts of the cursor's own millisecond pages for ever",
    file: SYNC_PLAN,
    search: "next.at < previous.at) {",
    replace: "next.at <= previous.at) {",
    tests: ["tests/sync_plan_test.ts"],
    filter: "cursor",
  },
  // A FIFO or a huge file at rest in the data dir: never opened, never read whole.
  {
    name: "unfit-type-check-skipped",
    cost: "a FIFO left at a post file, a record or a file info hangs backup, export and view " +
      "for good (SIGTERM does not end them)",
    file: ATOMIC_WRITE,
    search: "  if (!info.isFile) return `${fileKind(info)}, not a regular file`;\n",
    replace: "",
    tests: [DATA_DIR_TEST, UNFIT_FILES],
  },
  {
    name: "unfit-size-check-skipped",
    cost: "a huge file at a record's name is read whole: memory of several times its size, " +
      "and the export ends with status 0 and no warning",
    file: DATA_DIR,
    search:
      "    const unfit = info && unfitReason(info, whole ? MAX_READ_WHOLE_BYTES : undefined);\n",
    replace: "    const unfit = info && unfitReason(info);\n",
    tests: [DATA_DIR_TEST, UNFIT_FILES],
  },
  {
    name: "unfit-fifo-not-prepared",
    cost: "verify opens a FIFO where the manifest has a file, and hangs",
    file: DATA_DIR,
    search: "        if (!entry.isFile && !entry.isDirectory) irregular.add(entry.name);\n",
    replace: "        if (entry.isSymlink) irregular.add(entry.name);\n",
    tests: [DATA_DIR_TEST],
    filter: "FIFO",
  },
  {
    name: "unfit-walk-misses-fifo",
    cost: "verify's workers open a FIFO where the manifest has a file, and verify hangs",
    file: DATA_DIR,
    search:
      "        if (entry.isSymlink || info?.isSymlink || (!entry.isFile && !entry.isDirectory)) {\n",
    replace: "        if (entry.isSymlink || info?.isSymlink) {\n",
    tests: [UNFIT_FILES],
    filter: "FIFO",
  },
  {
    name: "unfit-post-file-invisible",
    cost: "a FIFO at a post file's name is passed over in silence: the post is missing from " +
      "the export and the site, and nothing says so",
    file: "lib/store/reader.ts",
    search: "    const id = isFileEntry(entry) ? postIdFromFileName(entry.name) : undefined;\n",
    replace: "    const id = entry.isFile ? postIdFromFileName(entry.name) : undefined;\n",
    tests: [UNFIT_FILES],
    filter: "FIFO",
  },
  // Verify's workers: Ctrl+C ends verify as an interruption, with no stray error.
  {
    name: "verify-abort-unhandled-rejection",
    cost: "Ctrl+C during verify crashes with an uncaught error instead of exit status 130",
    file: CHECK_POOL,
    search: "    promise.catch(() => {});\n",
    replace: "",
    tests: [VERIFY_TEST],
    filter: "workers find",
  },
  {
    name: "verify-abort-reported-as-failure",
    cost: "Ctrl+C during verify is reported as a storage failure, not an interruption",
    file: CHECK_POOL,
    search: "  readonly #onAbort = () => this.#fail(this.options.signal?.reason);",
    replace: '  readonly #onAbort = () => this.#fail(new StorageError("stopped"));',
    tests: [VERIFY_TEST],
    filter: "workers find",
  },
  // Edit histories: classified, checked, and repaired or set aside, never reported forever.
  {
    name: "verify-history-unclassified",
    cost: "a damaged or missing edit history is named without what the next run can do for it",
    file: "lib/store/layout.ts",
    search: '    if (postId) return { kind: "history", folder, channelId, postId };\n',
    replace: "",
    tests: [VERIFY_TEST],
    filter: "edit histories",
  },
  {
    name: "verify-history-shape-unchecked",
    cost: "without a manifest, an edit history of another post passes for intact",
    file: CHECK_FILE,
    search: '    return "reason" in parsed ? { problem: parsed.reason } : {};\n',
    replace: "    return {};\n",
    tests: [VERIFY_TEST],
    filter: "edit histories",
  },
  {
    name: "repair-history-reported-forever",
    cost: "an edit history no one can restore stays damaged and is reported by every verify",
    file: REPAIR,
    search: "  await dataDir.remove(path);\n  throw new UnrepairableError(",
    replace: "  throw new UnrepairableError(",
    tests: [VERIFY_TEST],
    filter: "edit histories",
  },
  {
    name: "repair-history-bytes-dropped",
    cost: "the damaged edit history of another's post is deleted instead of set aside",
    file: REPAIR,
    search: "  if (bytes) {\n",
    replace: "  if (bytes && false) {\n",
    tests: [VERIFY_TEST],
    filter: "edit histories",
  },
  // Client: retries, rate limits, the token.
  {
    name: "retry-400",
    cost: "a server is hammered with requests it already refused",
    file: CLIENT,
    search: "if (!isRetriableStatus(error.status)) return undefined;",
    replace: "if (!isRetriableStatus(error.status) && error.status !== 400) return undefined;",
    tests: [API_CLIENT],
    filter: "not retried",
  },
  {
    name: "retry-once-too-often",
    cost: "--retries N makes N+1 further attempts",
    file: CLIENT,
    search: "if (!verdict || attempt >= this.#retry.retries)",
    replace: "if (!verdict || attempt > this.#retry.retries)",
    tests: [API_CLIENT],
    filter: "bounded",
  },
  {
    name: "retry-after-not-shared",
    cost: "other requests keep running into a 429 the server asked us to wait out",
    file: CLIENT,
    search: "        if (verdict.serverDelayMs !== undefined) this.limiter.pauseFor(delayMs);\n",
    replace: "",
    tests: [API_CLIENT],
    filter: "429 pauses",
  },
  {
    name: "server-budget-ignored",
    cost: "the client runs into the server's limit instead of slowing down",
    file: CLIENT,
    search: "this.limiter.setMinGap(low ? gap : 0);",
    replace: "this.limiter.setMinGap(0);",
    tests: [API_CLIENT],
    filter: "slows down",
  },
  {
    name: "rate-below-one-per-second",
    cost: "--rate-limit 0.5 allows one request a second",
    file: "lib/api/rate_limiter.ts",
    search: "const windowMs = this.perSecond >= 1 ? 1000 : 1000 / this.perSecond;",
    replace: "const windowMs = 1000;",
    tests: ["tests/rate_limiter_test.ts"],
    filter: "below one",
  },
  // Client: a hostile server's redirects, sizes and waits.
  {
    name: "redirect-to-other-origin-followed",
    cost: "the token (or a login's password) is sent to another server",
    file: CLIENT,
    search: '  if (url.origin !== origin) return { kind: "origin", url };\n',
    replace: "",
    tests: [API_CLIENT],
    filter: "another host",
  },
  {
    name: "redirected-login-resent",
    cost: "a redirected login sends the password again, wherever it was sent",
    file: CLIENT,
    search: '  if (method !== "GET") return { kind: "method", url };\n',
    replace: "",
    tests: [API_CLIENT],
    filter: "login redirected",
  },
  {
    name: "redirect-any-scheme",
    cost: "a redirect to file: is judged like one to another server, not as a failed item",
    file: CLIENT,
    search:
      '  if (url.protocol !== "http:" && url.protocol !== "https:") return { kind: "scheme", url };\n',
    replace: "",
    tests: [API_CLIENT],
    filter: "file: or data:",
  },
  {
    name: "foreign-redirect-not-fatal",
    cost: "a server that redirects elsewhere is tried again for every item of the run",
    file: "lib/util/errors.ts",
    search: "  return signal?.aborted === true || error instanceof StorageError ||\n" +
      "    error instanceof UnsafeRedirectError;\n",
    replace: "  return signal?.aborted === true || error instanceof StorageError;\n",
    tests: [HOSTILE],
    filter: "picture redirected",
  },
  {
    name: "json-answer-uncapped",
    cost: "an endless JSON answer grows in memory until the timeout (GBs)",
    file: CLIENT,
    search: "const maxBytes = spec.maxBytes ?? (spec.stream ? undefined : JSON_MAX_BYTES);",
    replace: "const maxBytes = spec.maxBytes;",
    tests: [API_CLIENT],
    filter: "far over the cap",
  },
  {
    name: "image-uncapped",
    cost: "a 250 MB profile picture is taken whole",
    file: "lib/api/mattermost.ts",
    search: "{ path, what, stream: true, maxBytes: IMAGE_MAX_BYTES },",
    replace: "{ path, what, stream: true },",
    tests: [API_CLIENT],
    filter: "image without end",
  },
  {
    name: "json-deadline-ends-at-headers",
    cost: "a server that trickles a JSON answer holds the run for hours",
    file: CLIENT,
    search: "      if (!ok) throw await httpError(response, spec, this.#secrets);\n",
    replace: "      if (!ok) throw await httpError(response, spec, this.#secrets);\n" +
      "      clearTimeout(timer);\n",
    tests: [API_CLIENT],
    filter: "trickles in",
  },
  {
    name: "download-pace-unchecked",
    cost: "a download that trickles holds the run for hours",
    file: CLIENT,
    search: "          if (windowBytes < minBytes) {",
    replace: "          if (windowBytes < 0) {",
    tests: [API_CLIENT],
    filter: "minimum pace",
  },
  {
    name: "server-wait-uncapped",
    cost: "a Retry-After of 20000000 stalls the run for an hour per retry",
    file: CLIENT,
    search: "const wait = Math.min(asked, MAX_SERVER_WAIT_MS);",
    replace: "const wait = asked;",
    tests: [API_CLIENT],
    filter: "Retry-After 20000000",
  },
  {
    name: "budget-gap-uncapped",
    cost: "an X-RateLimit-Reset of 20000000 stalls the run silently",
    file: CLIENT,
    search: "const gap = Math.min((reset * 1000) / (limit - remaining), MAX_BUDGET_GAP_MS);",
    replace: "const gap = (reset * 1000) / (limit - remaining);",
    tests: [API_CLIENT],
    filter: "at most a second",
  },
  {
    name: "oversized-page-not-split",
    cost: "a channel whose posts are near the length limit can never be backed up",
    file: "lib/api/mattermost.ts",
    search: "if (!(error instanceof AnswerTooLargeError && perPage > 1)) throw error;",
    replace: "throw error;",
    tests: [HOSTILE],
    filter: "size cap",
  },
  {
    name: "oversized-changes-not-crawled",
    cost: "a day of large edits fails the channel at every run",
    file: CHANNEL_SYNC,
    search: "if (list === undefined || list.listed >= SINCE_LIMIT) return false;",
    replace: "if (list!.listed >= SINCE_LIMIT) return false;",
    tests: [HOSTILE],
    filter: "size cap",
  },
  // Records the real server never sends.
  {
    name: "malformed-post-fails-page",
    cost: "one bad post fails its whole channel, every run",
    file: "lib/api/mattermost.ts",
    search: "      if (isMattermostId(key)) malformedIds.push(key);\n      continue;\n",
    replace: "      throw malformed(what, expected);\n",
    tests: [HOSTILE],
    filter: "one malformed record",
  },
  {
    name: "malformed-record-fails-list",
    cost: "one bad user (reaction, file info) fails the run or the channel",
    file: "lib/api/mattermost.ts",
    search: "else skipped(sink, `record ${recordName(item, `#${index + 1}`)} in ${what}`, " +
      "`one of ${desc}`);",
    replace: "else throw malformed(what, `expected ${desc}`);",
    tests: [HOSTILE],
    filter: "one malformed record",
  },
  {
    name: "malformed-post-counted-deleted",
    cost: "a re-crawl marks a live post deleted because the server sent it malformed",
    file: CHANNEL_SYNC,
    search: "await this.#seen?.add([...posts.map((post) => post.id), ...list.malformedIds]);",
    replace: "await this.#seen?.add(posts.map((post) => post.id));",
    tests: [HOSTILE],
    filter: "never marked deleted",
  },
  // Secrets.
  {
    name: "output-not-scrubbed",
    cost: "a secret in any message is printed",
    file: "lib/cli/main.ts",
    search: "  const output = scrubbedOutput(deps.output, secrets);\n",
    replace: "  const output = deps.output;\n",
    tests: [SECRETS],
    filter: "where it leaves",
  },
  {
    name: "report-not-scrubbed",
    cost: "a secret in a failure's message is written to --report",
    file: "lib/cli/commands/backup.ts",
    search: "  const report = secrets.scrubValue({",
    replace: "  const report = ({",
    tests: [SECRETS],
    filter: "where it leaves",
  },
  {
    name: "session-token-not-registered",
    cost: "a session token a server echoes is printed and written to the report",
    file: CLIENT,
    search: "    this.#secrets.add(token);\n",
    replace: "",
    tests: [SECRETS],
    filter: "echoes back",
  },
  {
    name: "error-page-cut-before-scrub",
    cost: "the start of a password an error page echoes survives in the message",
    file: CLIENT,
    search: '    detail = oneLine(secrets.scrub(text).replace(/<[^>]*>/g, " "));',
    replace: '    detail = secrets.scrub(oneLine(text.replace(/<[^>]*>/g, " ")));',
    tests: [API_CLIENT],
    filter: "before it is cut",
  },
  {
    name: "mfa-option-unwarned",
    cost: "an MFA code on the command line is shown to other users without a word",
    file: "lib/config/load.ts",
    search: "      ...(mfaCodeOption ? [MFA_OPTION_WARNING] : []),\n",
    replace: "",
    tests: ["tests/bad_input_test.ts"],
    filter: "MFA code from",
  },
  {
    name: "config-url-echo",
    cost: "a password or access_token in the URL is printed",
    file: "lib/config/credentials.ts",
    search: 'must not carry user info or a query; put secrets in "password" or "token"`',
    replace: 'must not carry user info or a query (${url}); put secrets in "password" or "token"`',
    tests: ["tests/config_test.ts"],
    filter: "never repeats",
  },
  {
    name: "redact-keeps-password",
    cost: "a password in a URL shows in messages",
    file: CLIENT,
    search: '  if (copy.password) copy.password = "REDACTED";\n',
    replace: "",
    tests: ["tests/secrets_test.ts"],
    filter: "redacted",
  },
  {
    name: "credentials-in-zip",
    cost: "a credentials file kept in the data dir ends up in the zip",
    file: "lib/sync/backup.ts",
    search: "exclude: [resolve(options.credentials), resolve(options.channels), zipPath],",
    replace: "exclude: [resolve(options.channels), zipPath],",
    tests: ["tests/secrets_test.ts"],
    filter: "inside the data dir",
  },
  // The viewer: untrusted text stays text, and a rebuild skips only what did not change.
  {
    name: "view-active-extension-kept",
    cost: "an x.html attachment opens as a page of the site and sends the archive's text away",
    file: "lib/view/attachments.ts",
    search:
      "if (INERT_EXTENSIONS.has(extensionOf(base)) && isContainedComponent(base)) return base;",
    replace: "if (isContainedComponent(base)) return base;",
    tests: ["tests/view_attachments_test.ts"],
  },
  {
    name: "view-inline-by-mime-alone",
    cost: "photo.html with the type image/png is shown and linked as a picture",
    file: "lib/view/attachments.ts",
    search: 'return media?.extensions.includes(extensionOf(name)) ? media.shown : "link";',
    replace: 'return media ? media.shown : "link";',
    tests: ["tests/view_attachments_test.ts"],
  },
  {
    name: "view-svg-media",
    cost: "an SVG keeps its name: its link opens it as a document whose scripts run",
    file: "lib/view/attachments.ts",
    search: '  "image/webp": { shown: "image", extensions: ["webp"] },\n',
    replace:
      '  "image/webp": { shown: "image", extensions: ["webp"] },\n  "image/svg+xml": { shown: "image", extensions: ["svg"] },\n',
    tests: ["tests/view_attachments_test.ts"],
  },
  {
    name: "view-keeps-older-active-names",
    cost: "a site built before keeps x.html under its own name after the upgrade",
    file: "lib/view/site.ts",
    search: "if (siteFileName(name) !== name) await site.remove(",
    replace: "if (siteFileName(name) === undefined) await site.remove(",
    tests: ["tests/view_attachments_test.ts"],
    filter: "older build",
  },
  {
    name: "view-site-path-unchecked",
    cost: "a link in the site (c/<channel> to another folder) makes the build read and write there",
    file: "lib/view/site.ts",
    search: "return this.#dir.checkedPath(parts);",
    replace: "return join(this.root, ...parts);",
    tests: ["tests/view_links_test.ts"],
  },
  {
    name: "view-site-file-link-followed",
    cost: "a page of the site replaced by a link to an outside file is read there and written over",
    file: "lib/view/site.ts",
    search: "      if (Deno.lstatSync(full).isSymlink) throw linkRefused(full, this.#dir.label);\n",
    replace: "",
    tests: ["tests/view_links_test.ts"],
    filter: "stops the build",
  },
  {
    name: "view-site-remove-through-link",
    cost: "removing a channel gone from the backup deletes a folder outside the site",
    file: "lib/view/site.ts",
    search: "await Deno.remove(this.path(rel), { recursive: true })",
    replace: "await Deno.remove(join(this.root, rel), { recursive: true })",
    tests: ["tests/view_links_test.ts"],
    filter: "gone from the backup",
  },
  {
    name: "view-manifest-before-pages-durable",
    cost: "after a power cut a later build trusts page hashes of pages that were lost: stale pages",
    file: "lib/view/site.ts",
    search: "    await site.syncWritten();\n",
    replace: "",
    tests: ["tests/view_test.ts"],
    filter: "durable",
  },
  {
    name: "view-table-not-durable",
    cost: "after a power cut the manifest names a table whose data was lost: the channel is read " +
      "whole, or a torn table vouched for",
    file: "lib/view/site.ts",
    search:
      "      recorder: this.recorder,\n      sink: ({ size, sha256 }) => written = { size, sha256 },",
    replace:
      "      recorder: this.recorder,\n      sync: false,\n      sink: ({ size, sha256 }) => written = { size, sha256 },",
    tests: ["tests/view_test.ts"],
    filter: "durable",
  },
  {
    name: "view-table-hash-unchecked",
    cost: "a table the manifest does not name (an earlier build's, a changed byte) is trusted: " +
      "pages keep posts that changed",
    file: "lib/view/table_file.ts",
    search: '    hash.digest("hex") !== ref.sha256',
    replace: "    false",
    tests: ["tests/view_rebuild_test.ts", "tests/view_test.ts"],
    filter: "/torn|reads only/",
  },
  {
    name: "view-rebuild-keeps-changed-rows",
    cost: "a post read again is also kept as it was: it shows twice, its old text once",
    file: "lib/view/rebuild.ts",
    search: "    else kept[i] = 1;",
    replace: "    if (i !== -1) kept[i] = 1;",
    tests: ["tests/view_rebuild_test.ts", "tests/view_test.ts"],
    filter: "/files read|reads only/",
  },
  {
    name: "view-older-thread-hashes-dropped",
    cost: "the first build after an upgrade rewrites every thread page of every changed channel",
    file: "lib/view/site.ts",
    search: "      value.threads = ThreadHashes.text(new Map(Object.entries(value.threads)));",
    replace: '      value.threads = "";',
    tests: ["tests/view_test.ts"],
    filter: "older version",
  },
  {
    name: "view-raw-html",
    cost: "a message's <script> or onerror= becomes part of the archive's pages",
    file: "lib/view/markdown.ts",
    search: "new MarkdownIt({ html: false,",
    replace: "new MarkdownIt({ html: true,",
    tests: ["tests/markdown_test.ts"],
    filter: "hostile",
  },
  {
    name: "view-any-link-scheme",
    cost: "a protocol-relative link leaves the archive for another host",
    file: "lib/view/markdown.ts",
    search: "  md.validateLink = isAllowedLink;\n",
    replace: "",
    tests: ["tests/markdown_test.ts"],
    filter: "hostile",
  },
  {
    name: "view-unescaped-names",
    cost: "a channel or person named <b>... writes markup into every page that names them",
    file: "lib/view/html.ts",
    search: "return String(value).replace(/[&<>\"']/g, (c) => ESCAPES[c] as string);",
    replace: "return String(value);",
    tests: ["tests/view_test.ts"],
    filter: "every stored post",
  },
  {
    name: "view-never-skips",
    cost: "every build reads and rewrites every channel: hours for a large archive",
    file: "lib/view/site.ts",
    search: "manifest.stamp === stamp",
    replace: "manifest.stamp === `${stamp}x`",
    tests: ["tests/view_test.ts"],
    filter: "long channels",
  },
  {
    name: "view-trusts-fresh-times",
    cost: "a post written within the file system's clock step after a build never reaches the site",
    file: "lib/view/site.ts",
    search: "const stamp = changeStamp.newest > startedAt - RACY_MS ?",
    replace: "const stamp = false ?",
    tests: ["tests/view_test.ts"],
    filter: "long channels",
  },
  {
    name: "view-trusts-fresh-files",
    cost:
      "a post changed twice within the clock's step keeps its first change on the site for good",
    file: "lib/view/site.ts",
    search: "const trusted = (mtime: number) => mtime <= startedAt - RACY_MS;",
    replace: "const trusted = (_mtime: number) => true;",
    tests: ["tests/view_test.ts"],
    filter: "reads only",
  },
  {
    name: "view-rebuild-trusts-untrusted-rows",
    cost: "a post the last build could not trust is never read again: its page keeps an old text",
    file: "lib/view/rebuild.ts",
    search: "i === -1 || old.mtime(i) === -1 || old.mtime(i) !== mtime",
    replace: "i === -1 || old.mtime(i) !== mtime",
    tests: ["tests/view_rebuild_test.ts", "tests/view_test.ts"],
    filter: "/files read|reads only/",
  },
  {
    name: "view-rebuild-ignores-attachments",
    cost: "an attachment downloaded after its post (a retry) never shows on the rebuilt page",
    file: "lib/view/rebuild.ts",
    search: "historyIds.has(old.id(i)) || old.fileIds(i).some((id) => fileIds.has(id))",
    replace: "historyIds.has(old.id(i))",
    tests: ["tests/view_rebuild_test.ts"],
  },
  {
    name: "view-rebuild-ignores-reply-counts",
    cost: "a root keeps its old reply count on its page when only the threads file changed",
    file: "lib/view/rebuild.ts",
    search:
      "if (changed.has(row.name) || now.dependency(row) !== before.dependency(row)) return true;",
    replace: "if (changed.has(row.name)) return true;",
    tests: ["tests/view_rebuild_test.ts"],
  },
  {
    name: "view-rebuild-ignores-root-edits",
    cost: "replies on other pages keep showing their root's old text after the root was edited",
    file: "lib/view/rebuild.ts",
    search: "return root !== undefined && changed.has(root.name);",
    replace: "return false;",
    tests: ["tests/view_rebuild_test.ts", "tests/view_test.ts"],
    filter: "/root changed|reads only/",
  },
  {
    name: "view-rebuild-splices-moved-posts",
    cost: "after a post is inserted or removed, later pages keep the old posts at the old places",
    file: "lib/view/rebuild.ts",
    search: "rows.some((row, j) => !same(row, old[j]))",
    replace: "false",
    tests: ["tests/view_rebuild_test.ts"],
  },
  {
    name: "view-layout-misses-posts",
    cost:
      "a post looked up by id in a layout is never found: roots lose their reply counts and links",
    file: "lib/view/rebuild.ts",
    search: "if (this.table.id(this.#order[byId[mid] as number] as number) <= id) lo = mid + 1;",
    replace: "if (this.table.id(this.#order[byId[mid] as number] as number) < id) lo = mid + 1;",
    tests: ["tests/view_rebuild_test.ts"],
  },
  {
    name: "view-site-through-link",
    cost: "a site folder inside the data dir through a link is zipped into every backup zip",
    file: "lib/store/placement.ts",
    search: "  refuseNesting(data, real, what, how);\n",
    replace: "",
    tests: ["tests/view_test.ts"],
    filter: "refuses a site folder",
  },
  {
    name: "view-site-through-bind-mount",
    cost: "a site folder in a bind mount of the data dir is zipped into every backup zip",
    file: "lib/store/placement.ts",
    search: "if (dataIds.self && outputIds.all.includes(dataIds.self)) {",
    replace: "if (false) {",
    tests: ["tests/view_test.ts"],
    filter: "bind mount",
  },
  {
    name: "view-data-through-bind-mount",
    cost: "a data dir inside a bind mount of the site folder: the site's files mix with the backup",
    file: "lib/store/placement.ts",
    search: "if (outputIds.self && dataIds.all.includes(outputIds.self)) {",
    replace: "if (false) {",
    tests: ["tests/view_test.ts"],
    filter: "bind mount",
  },
  {
    name: "view-stamp-without-attachments",
    cost: "an attachment downloaded after the post (a retry) never reaches the site",
    file: "lib/store/reader.ts",
    search: "      [...folder, DIRS.files],\n",
    replace: "",
    tests: ["tests/reader_test.ts"],
    filter: "change stamp",
  },
  // Exports: every post once, threads whole, the import format's limits, output in place.
  {
    name: "export-orphans-dropped",
    cost: "replies whose root is not in the backup vanish from both exports",
    file: THREADS,
    search: "      this.#orphans.push(offset, length);\n",
    replace: "",
    tests: [EXPORT_MM, "tests/export_threads_test.ts"],
    filter: "/stand|exactly once/",
  },
  {
    name: "export-replies-of-wrong-root",
    cost: "a thread's replies are read from the wrong place in the spool",
    file: THREADS,
    search: "yield await this.#read(spans[i] as number, spans[i + 1] as number);",
    replace: "yield await this.#read(spans[0] as number, spans[1] as number);",
    tests: ["tests/export_threads_test.ts"],
    filter: "each root comes once",
  },
  {
    name: "export-deleted-imported",
    cost: "posts deleted on the server come back to life on the new one",
    file: "lib/export/mattermost.ts",
    search: "keep: (post) => post.delete_at === 0 && !post.original_id,",
    replace: "keep: (post) => !post.original_id,",
    tests: [EXPORT_MM],
    filter: "exactly once",
  },
  {
    name: "export-extra-attachments-lost",
    cost: "attachments beyond the tenth of a post are left out of the import",
    file: BULK_FORMAT,
    search: "  for (const attachments of groups.slice(1)) {",
    replace: "  for (const attachments of groups.slice(2)) {",
    tests: ["tests/bulk_format_test.ts"],
    filter: "beyond the limit",
  },
  {
    name: "export-split-loses-text",
    cost: "a character is lost at each cut of a long message",
    file: BULK_FORMAT,
    search: "    start = cut;",
    replace: "    start = cut + 1;",
    tests: ["tests/bulk_format_test.ts"],
    filter: "nothing is lost",
  },
  {
    name: "export-reaction-before-post",
    cost: "a reaction without a time makes the importer refuse the whole post",
    file: BULK_FORMAT,
    search: "    create_at: Math.max(",
    replace: "    create_at: Math.min(",
    tests: ["tests/bulk_format_test.ts"],
    filter: "never older",
  },
  {
    name: "export-long-line",
    cost: "a long thread makes a line the importer cannot read, and the import stops",
    file: "lib/export/mattermost.ts",
    search: "if (count > 0 && size + 1 + bytes.length + close.length - 1 > limit) {",
    replace: "if (count > 0 && size + 1 + bytes.length + close.length - 1 > limit * 2) {",
    tests: [EXPORT_MM],
    filter: "too long for one line",
  },
  {
    name: "check-missing-attachment",
    cost: "--check passes an archive whose attachments are not in it",
    file: "lib/export/bulk_check.ts",
    search: "    if (!this.files.has(DATA_DIR + path)) {",
    replace: "    if (this.files.has(DATA_DIR + path)) {",
    tests: ["tests/bulk_check_test.ts"],
    filter: "not in the zip",
  },
  {
    name: "export-replies-not-quoted",
    cost: "Markdown replies read as new posts, apart from their thread",
    file: "lib/export/markdown.ts",
    search:
      'await file.write([...quote(renderPost(await this.#view(reply), root.create_at)), ""]);',
    replace: 'await file.write([...renderPost(await this.#view(reply), root.create_at), ""]);',
    tests: [EXPORT_MD],
    filter: "every stored post",
  },
  {
    name: "export-name-suffix-cut",
    cost: "two conversations whose names share 120 bytes abort the Markdown export",
    file: "lib/export/markdown.ts",
    search: "      base = safeName(wanted, MAX_NAME_BYTES - utf8Length(suffix)) + suffix;\n    }\n",
    replace: "      base = safeName(`${wanted}${suffix}`);\n      break;\n    }\n",
    tests: [EXPORT_MD],
    filter: "first 120 bytes",
  },
  {
    name: "verify-zip-directory-crash",
    cost: "verify --zip of a zip with a broken central directory fails with a stack trace",
    file: VERIFY,
    search:
      '      if (!(error instanceof ZipFormatError)) throw error;\n      this.#add(4, "damaged", zipPath,',
    replace: '      throw error;\n      this.#add(4, "damaged", zipPath,',
    tests: [VERIFY_TEST],
    filter: "broken central directory",
  },
  {
    name: "terminal-controls-raw",
    cost: "a server's team name clears the user's screen or writes to their clipboard",
    file: "lib/cli/main.ts",
    search: "  const clean = (line: string) => visibleControls(secrets.scrub(line));",
    replace: "  const clean = (line: string) => secrets.scrub(line);",
    tests: ["tests/init_list_test.ts"],
    filter: "drive the terminal",
  },
  {
    name: "team-folder-named-as-icon",
    cost: "a team named icon.png fails every run of its channels",
    file: "lib/sync/records.ts",
    search:
      "  const name = isImageOf(iconBase, idBase(team.id, team.name)) ? `${team.name}_` : team.name;",
    replace: "  const name = team.name;",
    tests: [HOSTILE],
    filter: "its own icon",
  },
  {
    name: "etag-trusted-while-settling",
    cost: "an edit a lagging replica shows late is never stored when nothing else changes",
    file: CHANNEL_SYNC,
    search: "        if (probe.list === undefined && this.#state.settleBy === undefined) {",
    replace: "        if (probe.list === undefined) {",
    tests: [INCREMENTAL],
    filter: "lagging replica shows late",
  },
  {
    name: "settle-never-cleared",
    cost: "every run asks each channel for its changes though its ETag says nothing changed",
    file: CHANNEL_SYNC,
    search: "          if (asked >= (this.#state.settleBy ?? 0)) delete this.#state.settleBy;",
    replace: "",
    tests: [INCREMENTAL],
    filter: "overlap has passed",
  },
  {
    name: "users-since-without-overlap",
    cost: "a rename committed late is never stored",
    file: "lib/sync/records.ts",
    search: "    const since = watermark > 0 ? sinceFor(watermark) : watermark;",
    replace: "    const since = watermark;",
    tests: [INCREMENTAL],
    filter: "committed late",
  },
  {
    name: "edit-history-probed-in-parallel",
    cost: "a server without the edit-history endpoint is asked once per channel at once",
    file: "lib/sync/edit_history.ts",
    search: "    while (this.#probe) {",
    replace: "    while (this.#probe && this.#known) {",
    tests: [EDIT_HISTORY],
    filter: "without the edit-history endpoint",
  },
  {
    name: "verify-given-up-as-missing",
    cost:
      "verify calls an attachment the backup gave up on missing, and asks for a repair that cannot be",
    file: VERIFY,
    search: "        } else if (facts.givenUp.has(fileId)) {",
    replace: "        } else if (facts.givenUp.has(`${fileId}.`)) {",
    tests: ["tests/faults_e2e_test.ts"],
    filter: "404 in three runs",
  },
  {
    name: "given-up-file-asked-again",
    cost: "an attachment given up is asked for again whenever its post comes back",
    file: CHANNEL_SYNC,
    search: "      if (this.#state.givenUpFiles?.includes(info.id)) return;\n",
    replace: "",
    tests: ["tests/faults_e2e_test.ts"],
    filter: "404 in three runs",
  },
  {
    name: "export-foreign-folder-replaced",
    cost: "an export to a folder of the user's own files deletes them",
    file: "lib/export/staging.ts",
    search: "  for await (const _ of Deno.readDir(target)) {",
    replace: "  for await (const _ of [] as string[]) {",
    tests: [EXPORT_MD],
    filter: "output folder",
  },
  {
    name: "export-interrupted-leftovers",
    cost: "an interrupted export leaves its half-written staging folder behind",
    file: "lib/export/staging.ts",
    search: "    await Deno.remove(this.dir, { recursive: true }).catch((error) => {",
    replace: "    await Promise.resolve().catch((error) => {",
    tests: [EXPORT_MM, EXPORT_MD],
    filter: "interrupted",
  },
  {
    name: "init-file-readable",
    cost: "credentials.json with the secret is readable by every user of the machine",
    file: "lib/cli/commands/init.ts",
    search: "await writeFileAtomic(path, text, { mode: 0o600 });",
    replace: "await writeFileAtomic(path, text);",
    tests: [INIT_LIST],
    filter: "mode 600",
  },
  {
    name: "init-writes-before-check",
    cost: "a wrong token or password is stored, and the first backup fails at night",
    file: "lib/cli/commands/init.ts",
    search: "  const { me } = await openSession(api, credentials, path);\n" +
      "  await closeSession(api);\n" +
      "  await writeFileAtomic(path, text, { mode: 0o600 });\n",
    replace: "  await writeFileAtomic(path, text, { mode: 0o600 });\n" +
      "  const { me } = await openSession(api, credentials, path);\n" +
      "  await closeSession(api);\n",
    tests: [INIT_LIST],
    filter: "mode 600",
  },
  // What the user is told.
  {
    name: "list-json-drops-archived",
    cost: "a channels.json from list --json silently leaves archived channels out",
    file: "lib/sync/selection.ts",
    search: "{ include: channels.map((c) => c.name) }",
    replace: "{ include: channels.filter((c) => c.delete_at === 0).map((c) => c.name) }",
    tests: [INIT_LIST],
    filter: "list --json",
  },
  {
    name: "interrupted-summary-finished-only",
    cost: "after Ctrl+C the summary says nothing was saved while thousands of posts were",
    file: "lib/cli/progress.ts",
    search:
      "for (const channel of this.#channels.values()) addCounts(counts, channel.progress.counts);",
    replace: "for (const channel of [...this.#channels.values()].filter((c) => c.done)) {\n" +
      "      addCounts(counts, channel.progress.counts);\n    }",
    tests: [PROGRESS],
    filter: "interruption",
  },
  {
    name: "interrupted-summary-last-page",
    cost: "after Ctrl+C the summary leaves out the posts of the page under way",
    file: CHANNEL_SYNC,
    search:
      "        // Also when stopped part-way through a page: what was saved is then said exactly.\n" +
      "        this.#reportProgress();\n",
    replace: "",
    tests: ["tests/interruption_test.ts"],
    // Stopped at a chosen write of a page, not by a signal at a random moment.
    filter: "SIGINT while a page of posts is written",
  },
  {
    name: "stored-count-rewrites",
    cost: "a resumed crawl says more posts are stored than there are",
    file: CHANNEL_SYNC,
    search: "if (text === undefined) this.#stored++;",
    replace: "this.#stored++;",
    tests: [INCREMENTAL],
    filter: "state counts the post files",
  },
  {
    name: "posts-to-fetch-ignores-stored",
    cost: "every update run shows the whole history still to fetch, and a wild ETA",
    file: SYNC_PLAN,
    search: 'return plan.kind === "crawl" ? total : Math.max(0, total - stored);',
    replace: "return total;",
    tests: ["tests/sync_plan_test.ts"],
    filter: "posts to fetch",
  },
  {
    name: "eta-one-channel-stands-for-all",
    cost: "one channel full of attachments makes the ETA of the rest far too long",
    file: "lib/cli/eta.ts",
    search: "const filesPerPost = perPost((p) => p.files, files);",
    replace: "const filesPerPost = fetched > 0 ? files / fetched : 0;",
    tests: [PROGRESS],
    filter: "work not known",
  },
  {
    name: "second-signal-leaves-status",
    cost: "a second Ctrl+C leaves the status line on screen, the shell prompt after it",
    file: "lib/cli/interrupt.ts",
    search: "        beforeExit();\n",
    replace: "",
    tests: [PROGRESS],
    filter: "second signal",
  },
  // Edit history: every version once, in order; no copy as a post; the server asked as needed.
  {
    name: "history-copy-stored-as-post",
    cost: "the server's hidden copies of old versions show up as posts of their own",
    file: CHANNEL_SYNC,
    search: "      if (!isHistoryCopy(post)) {\n",
    replace: '      if (post.id !== "") {\n',
    tests: [EDIT_HISTORY, INCREMENTAL],
    filter: "/no copy becomes a post|catches new posts/",
  },
  {
    name: "history-version-lost",
    cost: "the text a post had before an edit is overwritten and gone",
    file: SYNC_PLAN,
    search: '  return [{ from: "backup", post: stored }];\n',
    replace: "  return [];\n",
    tests: [EDIT_HISTORY],
    filter: "no copy becomes a post",
  },
  {
    name: "history-after-post",
    cost: "a crash right after an edit is stored loses the text before it",
    file: CHANNEL_SYNC,
    search: "      if (!merged) return undefined;\n      // Into the history",
    replace: "      if (!merged) return undefined;\n" +
      "      await dataDir.writeText([...this.#postsDir, name], encodeJson(merged));\n" +
      "      // Into the history",
    tests: [EDIT_HISTORY],
    filter: "crash right after",
  },
  {
    name: "history-version-duplicated",
    cost: "a pin (or a copy of the current text) shows up as an earlier version of the post",
    file: "lib/store/history.ts",
    search: "    if (key === currentEditAt) continue;\n",
    replace: "",
    tests: [EDIT_HISTORY, "tests/history_test.ts"],
    filter: "/no copy becomes a post|never the post file's own/",
  },
  {
    name: "history-out-of-order",
    cost: "the versions of a post read in the wrong order",
    file: "lib/store/history.ts",
    search: "const versions = [...byEdit].sort((a, b) => a[0] - b[0])",
    replace: "const versions = [...byEdit]",
    tests: [EDIT_HISTORY, "tests/history_test.ts"],
    filter: "/own edited posts|oldest first/",
  },
  {
    name: "no-dir-sync-history",
    cost: "a power cut loses edit histories the saved state says are stored",
    file: CHANNEL_SYNC,
    search:
      "    if (await dataDir.exists(this.#historyDir)) await dataDir.syncDir(this.#historyDir);\n",
    replace: "",
    tests: [DURABILITY],
    filter: "every checkpoint",
  },
  {
    name: "own-reedit-not-asked",
    cost: "versions of your own post between two backups are kept without their text",
    file: SYNC_PLAN,
    search: "  return isOwnEdited(post, meId) && askedAt !== editAt(post);",
    replace: "  return isOwnEdited(post, meId) && askedAt === undefined;",
    tests: [EDIT_HISTORY],
    filter: "own edited posts",
  },
  {
    name: "edit-history-asked-for-others",
    cost: "a request for every edited post of other people, each refused",
    file: SYNC_PLAN,
    search: "return post.delete_at === 0 && post.user_id === meId && editAt(post) > 0;",
    replace: "return post.delete_at === 0 && editAt(post) > 0;",
    tests: [EDIT_HISTORY],
    filter: "no copy becomes a post",
  },
  {
    name: "edit-history-failure-forgotten",
    cost: "a failed request for your post's history is never made again",
    file: CHANNEL_SYNC,
    search:
      "        this.options.failures.record(`edit history of post ${postId} in ${this.#label}`, " +
      "error);\n        return;\n",
    replace:
      "        this.options.failures.record(`edit history of post ${postId} in ${this.#label}`, " +
      "error);\n",
    tests: [EDIT_HISTORY],
    filter: "fails is a failed item",
  },
  {
    name: "edit-history-no-route-every-post",
    cost: "a server before 7.9 is asked for every edited post of yours, on every run",
    file: "lib/sync/edit_history.ts",
    search: "        this.#missing = true;\n",
    replace: "",
    tests: [EDIT_HISTORY],
    filter: "without the edit-history endpoint",
  },
  {
    name: "view-stamp-without-history",
    cost: "an edit history the server gave later never reaches the site",
    file: "lib/store/reader.ts",
    search: "      [...folder, DIRS.history],\n",
    replace: "",
    tests: ["tests/reader_test.ts", "tests/view_test.ts"],
    filter: "/change stamp|edited post opens/",
  },
  {
    name: "view-versions-hidden",
    cost: "the site shows edited posts without their earlier versions",
    file: "lib/view/pages.ts",
    search: "  if (post.versions.length) html += versionsHtml(post.versions, post.edited, f);\n",
    replace: "",
    tests: ["tests/view_test.ts"],
    filter: "edited post opens",
  },
  {
    name: "markdown-versions-hidden",
    cost: "the Markdown export shows edited posts without their earlier versions",
    file: "lib/export/markdown_render.ts",
    search: '  if (versions.length) lines.push("", ...renderVersions(versions, post.create_at));\n',
    replace: "",
    tests: [EXPORT_MD],
    filter: "edited post shows",
  },
  // The outputs outside the data dir: the zip and the exports.
  {
    name: "export-not-synced-before-commit",
    cost: "a power cut just after an export leaves empty Markdown files, the previous export gone",
    file: STAGING,
    search: "      await syncWritten(files, folders, recorder);\n",
    replace: "",
    tests: [OUTPUT_STORAGE],
    filter: "durable",
  },
  {
    name: "export-live-staging-removed",
    cost: "a second export to the same target deletes a long export's files while it runs",
    file: STAGING,
    search: "    if (await isLive(path)) continue;\n",
    replace: "",
    tests: [OUTPUT_STORAGE],
    filter: "same target",
  },
  {
    name: "export-output-by-spelled-path",
    cost: "an export through a link to the data dir lands in it, and in every later zip",
    file: "lib/store/placement.ts",
    search: "  refuseNesting(data, real, what, how);\n",
    replace: "",
    tests: [OUTPUT_STORAGE],
    filter: "symbolic link",
  },
  {
    name: "export-folder-error-unwrapped",
    cost: "an output folder that cannot be made ends with 'a bug' and a stack trace",
    file: STAGING,
    search: "      throw outputFailure(error, full);\n",
    replace: "      throw error;\n",
    tests: [OUTPUT_STORAGE],
    filter: "cannot be made",
  },
  {
    name: "export-full-disk-unwrapped",
    cost: "a full disk under a Markdown export ends with 'a bug' and a stack trace",
    file: "lib/export/markdown.ts",
    search: '    throw outputFailure(error, staging.target, "disk");\n',
    replace: "    throw error;\n",
    tests: [OUTPUT_STORAGE],
    filter: "full or read-only disk",
  },
  {
    name: "bulk-export-full-disk-unwrapped",
    cost: "a full disk under a bulk export ends with 'a bug' and a stack trace",
    file: "lib/export/mattermost.ts",
    search: '    throw outputFailure(error, staging.target, "disk");\n',
    replace: "    throw error;\n",
    tests: [OUTPUT_STORAGE],
    filter: "full or read-only disk",
  },
  {
    name: "zip-full-disk-unwrapped",
    cost: "a full disk under the zip ends a complete backup with 'a bug' and a stack trace",
    file: "lib/zip/archive.ts",
    search: '    throw outputFailure(error, zipPath, "disk");\n',
    replace: "    throw error;\n",
    tests: [OUTPUT_STORAGE],
    filter: "full or read-only disk",
  },
  {
    name: "zip-failure-exit-0",
    cost: "a backup whose zip could not be written ends with 0: cron never says the zip is stale",
    file: "lib/cli/commands/backup.ts",
    search: "      if (status === ExitCode.ok) status = ExitCode.usage;\n    }\n",
    replace: "    }\n",
    tests: [OUTPUT_STORAGE],
    filter: "full or read-only disk",
  },
  {
    name: "zip-rename-not-synced",
    cost: "after a power cut zip.json vouches for a zip that is not on disk",
    file: "lib/zip/archive.ts",
    search: "    await syncDir(dirname(this.zipPath), recorder);\n",
    replace: "",
    tests: [OUTPUT_STORAGE],
    filter: "durable",
  },
];

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Everything wrong with the list: unknown files, search strings missing or ambiguous. */
export async function checkMutations(
  mutations: readonly Mutation[],
  root = ROOT,
): Promise<string[]> {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const m of mutations) {
    if (names.has(m.name)) problems.push(`${m.name}: the name is used twice`);
    names.add(m.name);
    if (m.search === m.replace) problems.push(`${m.name}: the replacement changes nothing`);
    const text = await Deno.readTextFile(join(root, m.file)).catch(() => undefined);
    if (text === undefined) {
      problems.push(`${m.name}: ${m.file} not found`);
    } else {
      const count = text.split(m.search).length - 1;
      if (count !== 1) {
        problems.push(
          `${m.name}: the search string occurs ${count} times in ${m.file}: ` +
            JSON.stringify(m.search),
        );
      }
    }
    for (const test of m.tests) {
      if (!await Deno.stat(join(root, test)).then((i) => i.isFile, () => false)) {
        problems.push(`${m.name}: test file ${test} not found`);
      }
    }
  }
  return problems;
}

/** `deno test` flags of the project's test task (permissions, sanitizers). */
async function testFlags(root: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
  const task = String(config.tasks?.test ?? "");
  if (!task.startsWith("deno test ")) throw new Error(`unexpected test task: ${task}`);
  return task.split(/\s+/).slice(2).filter((arg) => arg.startsWith("--"));
}

/** A copy of the working tree (tracked and new files, as they are now) in a temporary folder. */
async function scratchCopy(root: string): Promise<string> {
  const listed = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    cwd: root,
    stdout: "piped",
  }).output();
  if (!listed.success) throw new Error("git ls-files failed: is this a git checkout?");
  const scratch = await Deno.makeTempDir({ prefix: "matterbak-mutate-" });
  for (const path of new TextDecoder().decode(listed.stdout).split("\0").filter(Boolean)) {
    const bytes = await Deno.readFile(join(root, path)).catch(() => undefined);
    if (bytes === undefined) continue; // deleted in the working tree
    await Deno.mkdir(dirname(join(scratch, path)), { recursive: true });
    await Deno.writeFile(join(scratch, path), bytes);
  }
  return scratch;
}

interface TestRun {
  passed: boolean;
  seconds: number;
  /** How many tests ran (0 means the filter matched none). */
  ran: number;
  /** Names of the tests that failed. */
  failed: string[];
  timedOut: boolean;
}

const RUN_TIMEOUT_MS = 10 * 60_000;

async function runTests(
  dir: string,
  flags: string[],
  m: Pick<Mutation, "tests" | "filter">,
): Promise<TestRun> {
  const started = performance.now();
  const signal = AbortSignal.timeout(RUN_TIMEOUT_MS);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      ...flags,
      // Behaviour is what is tested here; `deno task check` covers the types.
      "--no-check",
      "--fail-fast",
      ...(m.filter ? ["--filter", m.filter] : []),
      ...m.tests,
    ],
    cwd: dir,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdout: "piped",
    stderr: "piped",
    signal,
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  const summary = /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/.exec(text);
  return {
    passed: output.success,
    seconds: (performance.now() - started) / 1000,
    ran: summary ? Number(summary[1]) + Number(summary[2]) : 0,
    failed: [...text.matchAll(/^(.+) \.\.\. FAILED/gm)].map((match) => match[1] as string),
    timedOut: signal.aborted,
  };
}

const runKey = (m: Pick<Mutation, "tests" | "filter">) =>
  `${m.tests.join(" ")}${m.filter ? ` --filter ${JSON.stringify(m.filter)}` : ""}`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    // `deno task mutate -- --only x` passes the `--` on.
    args: args[0] === "--" ? args.slice(1) : args,
    options: { only: { type: "string", multiple: true } },
  });
  const problems = await checkMutations(MUTATIONS);
  if (problems.length > 0) {
    console.error(`The mutation list is broken:\n  ${problems.join("\n  ")}`);
    return 2;
  }
  const only = values.only ?? [];
  const selected = MUTATIONS.filter((m) =>
    only.length === 0 || only.some((part) => m.name.includes(part))
  );
  if (selected.length === 0) {
    console.error(`No mutation matches --only ${only.join(", ")}`);
    return 2;
  }
  const flags = await testFlags(ROOT);
  const started = performance.now();
  const scratch = await scratchCopy(ROOT);
  try {
    // The named tests must pass unmutated, or a "kill" would mean nothing.
    const baselines = new Map<string, Pick<Mutation, "tests" | "filter">>();
    for (const m of selected) baselines.set(runKey(m), m);
    let baselineSeconds = 0;
    for (const [key, m] of baselines) {
      const run = await runTests(scratch, flags, m);
      baselineSeconds += run.seconds;
      console.log(`baseline  ${run.seconds.toFixed(1).padStart(5)}s  ${key}`);
      if (!run.passed || run.ran === 0) {
        console.error(
          run.ran === 0
            ? `No test ran for ${key}`
            : `These tests fail without any mutation: ${run.failed.join("; ") || key}`,
        );
        return 2;
      }
    }
    const results: Array<{ m: Mutation; run: TestRun }> = [];
    for (const m of selected) {
      const path = join(scratch, m.file);
      const original = await Deno.readTextFile(path);
      await Deno.writeTextFile(path, original.replace(m.search, () => m.replace));
      let run: TestRun;
      try {
        run = await runTests(scratch, flags, m);
      } finally {
        await Deno.writeTextFile(path, original);
      }
      results.push({ m, run });
      // A run that failed without a failing test (a syntax or load error of the mutant) proves
      // nothing about the tests: it is a broken entry, not a kill.
      const broken = !run.passed && !run.timedOut && run.failed.length === 0;
      const verdict = run.passed ? "SURVIVED" : broken ? "BROKEN  " : "killed  ";
      const by = run.passed
        ? `(${m.cost})`
        : broken
        ? "(no test failed: the mutant does not load; fix its replacement)"
        : run.timedOut
        ? "by a timeout"
        : `by ${run.failed[0]}`;
      console.log(`${verdict}  ${run.seconds.toFixed(1).padStart(5)}s  ${m.name}  ${by}`);
    }
    const brokenEntries = results.filter((r) =>
      !r.run.passed && !r.run.timedOut && r.run.failed.length === 0
    );
    const survivors = results.filter((r) => r.run.passed);
    const mutantSeconds = results.reduce((sum, r) => sum + r.run.seconds, 0);
    console.log(
      `\n${results.length - survivors.length} killed, ${survivors.length} survived; ` +
        `mutants ${mutantSeconds.toFixed(0)} s, baselines ${baselineSeconds.toFixed(0)} s, ` +
        `total ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    for (const { m } of survivors) {
      console.log(`  survived: ${m.name} in ${m.file}: ${m.cost}`);
    }
    for (const { m } of brokenEntries) console.log(`  broken: ${m.name} in ${m.file}`);
    return brokenEntries.length > 0 ? 2 : survivors.length > 0 ? 1 : 0;
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
