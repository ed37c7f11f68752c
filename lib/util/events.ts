/**
 * Progress as events: the core reports what happens, and the terminal display, quiet mode
 * and the JSON report are listeners that decide what to show.
 */

export interface PostCounts {
  newPosts: number;
  updatedPosts: number;
  deletedPosts: number;
  files: number;
  fileBytes: number;
  /** Earlier versions of edited posts newly kept (see store/history.ts). */
  versions: number;
  /** Requests for the edit history of the user's own posts. */
  historyRequests: number;
}

/** How far a channel's sync has come: what it saved, and what it fetched and found to fetch. */
export interface ChannelProgress {
  counts: PostCounts;
  /** Posts received from the server (a crawl's pages, or the changes since the last run). */
  fetched: number;
  /** Attachments found that are to be downloaded, and their bytes (done: counts.files). */
  files: number;
  fileBytes: number;
}

export interface Failure {
  /** What could not be saved ("attachment x.pdf in channel town-square"). */
  what: string;
  why: string;
}

/** What a backup run did, for the summary and the report. */
export interface RunSummary {
  counts: PostCounts;
  channels: { total: number; unchanged: number; skipped: number; failed: number };
  users: number;
  pictures: number;
  emojis: number | undefined;
  requests: number;
  retries: number;
  bytes: number;
  failures: Failure[];
  /** Channels left out on purpose (not failures): what and why. */
  skipped: Failure[];
  unmatched: string[];
  zip: ZipSummary | undefined;
  /**
   * Why the zip could not be written (an OutputError's message naming it): the backup in the
   * data dir is complete, the previous zip is as it was.
   */
  zipFailed: string | undefined;
  durationMs: number;
  /**
   * Files hashed from disk for the manifest before the run began: every file when the data dir
   * had no manifest, or those an interrupted run changed after its last checkpoint.
   */
  manifest: { hashed: number; reason: "no-manifest" | "interrupted" | undefined };
  /** What `matterbak verify` had found damaged or missing, and what this run did about it. */
  repairs: { repaired: string[]; lost: Failure[]; failed: number } | undefined;
}

/** The archive a run wrote or kept. */
export interface ZipSummary {
  path: string;
  entries: number;
  bytes: number;
  /** Nothing in the data dir changed: the archive was left as it was, and is still exact. */
  unchanged: boolean;
  /** Files whose compressed bytes were copied from the previous archive. */
  copied: number;
  /** Files read and compressed (or stored) anew. */
  written: number;
}

export type BackupEvent =
  | { type: "info"; message: string }
  | { type: "warning"; message: string }
  | { type: "phase"; phase: string }
  /** `posts`: the posts the server is expected to send for each channel, by label. */
  | { type: "channels-selected"; total: number; posts: Record<string, number> }
  /** `posts`: this channel's expected posts again, now from what is stored (exact). */
  | {
    type: "channel-start";
    label: string;
    mode: string;
    posts: number;
    /** An interrupted crawl that continues: posts stored, and the date it continues from. */
    resume?: { stored: number; from: number | undefined };
  }
  | { type: "channel-progress"; label: string; progress: ChannelProgress }
  /** Also for a channel that failed or was skipped; `progress` when its sync completed. */
  | {
    type: "channel-done";
    label: string;
    outcome: "saved" | "unchanged" | "skipped" | "failed";
    progress?: ChannelProgress;
  }
  | { type: "failure"; failure: Failure }
  | { type: "retry"; what: string; attempt: number; delayMs: number; reason: string }
  | { type: "request" };

export type EventSink = (event: BackupEvent) => void;

export function emptyProgress(): ChannelProgress {
  return { counts: emptyCounts(), fetched: 0, files: 0, fileBytes: 0 };
}

export function emptyCounts(): PostCounts {
  return {
    newPosts: 0,
    updatedPosts: 0,
    deletedPosts: 0,
    files: 0,
    fileBytes: 0,
    versions: 0,
    historyRequests: 0,
  };
}

export function addCounts(into: PostCounts, from: PostCounts): void {
  into.newPosts += from.newPosts;
  into.updatedPosts += from.updatedPosts;
  into.deletedPosts += from.deletedPosts;
  into.files += from.files;
  into.fileBytes += from.fileBytes;
  into.versions += from.versions;
  into.historyRequests += from.historyRequests;
}
