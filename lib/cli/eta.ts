/**
 * How much of a run's channel work is done and how long the rest will take, from what is
 * known up front (each channel's posts to fetch: the server's count minus what is stored) and
 * what is found on the way (attachments come with the posts). Pure: tests drive it with their
 * own clock.
 *
 * Time goes to requests far more than to anything else, so work is counted in requests: a page
 * of posts, an attachment, a channel's own few. Attachments of posts not fetched yet are
 * expected at the rate seen so far. The ETA divides the work left by the rate of the last
 * RATE_WINDOW_MS, so a slow start or a burst does not stick.
 */
import { PAGE_SIZE } from "../api/mattermost.ts";
import type { ChannelProgress } from "../util/events.ts";

/** A channel's requests besides its pages and files: its members, the first posts request. */
const CHANNEL_UNITS = 2;
/**
 * Bytes that take about as long as one request: what a 100 Mbit/s line carries in the 150 ms
 * a distant server takes to answer. Only large attachments make bytes count.
 */
const BYTES_PER_UNIT = 2_000_000;
/** The rate is measured over this much of the recent past. */
export const RATE_WINDOW_MS = 30_000;
/** A channel tells how many attachments posts have once this many of its posts are in. */
const SAMPLE_POSTS = 50;
/** No ETA before the channels have been under way this long: the first answers say little. */
const ETA_AFTER_MS = 1_000;

export interface ChannelWork {
  /** Posts the server is expected to send (the estimate, until the channel says exactly). */
  planned: number;
  started: boolean;
  done: boolean;
  progress: ChannelProgress;
}

export interface WorkTotals {
  channels: number;
  channelsDone: number;
  posts: number;
  postsDone: number;
  /** Attachments found so far (more come with posts not fetched yet). */
  files: number;
  filesDone: number;
  bytes: number;
  bytesDone: number;
  /** `bytes`, and those of the attachments expected with the posts still to come. */
  bytesExpected: number;
  /** Requests' worth of work: done, and expected in all. */
  units: number;
  unitsDone: number;
}

export function workTotals(channels: Iterable<ChannelWork>): WorkTotals {
  const list = [...channels];
  const sum = (f: (c: ChannelWork) => number) => list.reduce((total, c) => total + f(c), 0);
  const fetched = sum((c) => c.progress.fetched);
  const files = sum((c) => c.progress.files);
  const bytes = sum((c) => c.progress.fileBytes);
  // Attachments (and their bytes) per post, for the posts still to come: the median channel's,
  // so that one channel full of attachments does not stand for all (until channels have
  // enough posts to tell, all posts so far).
  const sampled = list.filter((c) => c.progress.fetched >= SAMPLE_POSTS);
  const perPost = (f: (p: ChannelProgress) => number, overall: number) =>
    sampled.length > 0
      ? median(sampled.map((c) => f(c.progress) / c.progress.fetched))
      : fetched > 0
      ? overall / fetched
      : 0;
  const filesPerPost = perPost((p) => p.files, files);
  const bytesPerPost = perPost((p) => p.fileBytes, bytes);
  const totals: WorkTotals = {
    channels: list.length,
    channelsDone: list.filter((c) => c.done).length,
    posts: 0,
    postsDone: fetched,
    files,
    filesDone: sum((c) => c.progress.counts.files),
    bytes,
    bytesDone: sum((c) => c.progress.counts.fileBytes),
    bytesExpected: bytes,
    units: 0,
    unitsDone: 0,
  };
  for (const { planned, started, done, progress } of list) {
    const posts = done ? progress.fetched : Math.max(planned, progress.fetched);
    const coming = posts - progress.fetched;
    totals.posts += posts;
    totals.bytesExpected += coming * bytesPerPost;
    totals.unitsDone += (started ? CHANNEL_UNITS / 2 : 0) + (done ? CHANNEL_UNITS / 2 : 0) +
      progress.fetched / PAGE_SIZE + progress.counts.files +
      progress.counts.fileBytes / BYTES_PER_UNIT;
    totals.units += CHANNEL_UNITS + posts / PAGE_SIZE + progress.files + coming * filesPerPost +
      (progress.fileBytes + coming * bytesPerPost) / BYTES_PER_UNIT;
  }
  return totals;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = (sorted.length - 1) / 2;
  return ((sorted[Math.floor(middle)] ?? 0) + (sorted[Math.ceil(middle)] ?? 0)) / 2;
}

/**
 * Work done over time, for the rate of the recent past and the time left. The rate is taken
 * over the later half of the time so far, at most RATE_WINDOW_MS: the first seconds, spent on
 * requests whose answers have not come yet, say little about the rest.
 */
export class EtaEstimator {
  #samples: Array<{ at: number; units: number }> = [];
  #startedAt: number | undefined;

  /** Records the work done at `now` (ms); the first sample is the start. */
  sample(now: number, unitsDone: number): void {
    this.#startedAt ??= now;
    this.#samples.push({ at: now, units: unitsDone });
    // Keep one sample older than the longest window, so the window is always covered.
    while ((this.#samples[1]?.at ?? now) <= now - RATE_WINDOW_MS) this.#samples.shift();
  }

  /** Units per ms over the window (see the class). */
  rate(): number | undefined {
    const last = this.#samples.at(-1);
    if (this.#startedAt === undefined || !last) return undefined;
    const from = last.at - Math.min(RATE_WINDOW_MS, (last.at - this.#startedAt) / 2);
    const first = this.#samples.find((s) => s.at >= from);
    if (!first || last.at <= first.at) return undefined;
    return (last.units - first.units) / (last.at - first.at);
  }

  /** Milliseconds left for `totals`, or undefined when it cannot be told yet. */
  remainingMs(totals: WorkTotals, now: number, startedAt: number): number | undefined {
    const rate = this.rate();
    if (rate === undefined || rate <= 0 || now - startedAt < ETA_AFTER_MS) return undefined;
    return Math.max(0, totals.units - totals.unitsDone) / rate;
  }
}
