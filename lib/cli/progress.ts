/**
 * Listeners for backup events: plain lines for logs and terminals, quiet mode for cron, and
 * the final summary in text or JSON (`--report`). On a terminal a status line shows bars for
 * posts and attachment bytes, the ETA and the channels under way; off a terminal a plain
 * progress line is printed every PROGRESS_LINE_MS instead.
 */
import {
  addCounts,
  type BackupEvent,
  type ChannelProgress,
  emptyCounts,
  emptyProgress,
  type PostCounts,
  type RunSummary,
  type ZipSummary,
} from "../util/events.ts";
import { type ChannelWork, EtaEstimator, type WorkTotals, workTotals } from "./eta.ts";
import { formatBytes, formatNumber } from "../util/format.ts";

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Redraws the live status line (terminals only); absent where there is no terminal. */
  status?: (line: string) => void;
}

export function formatCounts(counts: PostCounts): string {
  const parts = [`${formatNumber(counts.newPosts)} new`];
  if (counts.updatedPosts) parts.push(`${formatNumber(counts.updatedPosts)} updated`);
  if (counts.deletedPosts) parts.push(`${formatNumber(counts.deletedPosts)} deleted`);
  if (counts.versions) parts.push(`${formatNumber(counts.versions)} earlier version(s) kept`);
  parts.push(`${formatNumber(counts.files)} file(s) (${formatBytes(counts.fileBytes)})`);
  return parts.join(", ");
}

/**
 * A wait before a retry longer than this is said even in quiet mode: a run that seems to hang
 * is waiting for the server (a 429's Retry-After, at most MAX_SERVER_WAIT_MS).
 */
export const LONG_WAIT_MS = 5000;

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** A day as YYYY-MM-DD in UTC, as post files are named. */
function formatDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** `[#####-------]` for `done` of `total`. */
function bar(done: number, total: number, width = 10): string {
  const filled = total > 0 ? Math.min(width, Math.floor((done / total) * width)) : 0;
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

/** The status line is redrawn this often on a terminal. */
const STATUS_INTERVAL_MS = 250;
/** Off a terminal a progress line is printed this often, during any phase. */
export const PROGRESS_LINE_MS = 10_000;
/** How often the clock is looked at off a terminal (and the rate sampled). */
const TICK_MS = 1000;
/** Channels under way named in the status line; the rest are counted. */
const NAMED_CHANNELS = 2;

export interface ReporterOptions {
  quiet: boolean;
  /** Milliseconds, for the ETA and the progress lines (tests give a fake clock). */
  now?: () => number;
  /** Run the timer that redraws the status line or prints progress lines (tests tick). */
  timer?: boolean;
}

/**
 * Turns events into output: a line per finished channel, warnings and errors, progress (a
 * status line on a terminal, a plain line every PROGRESS_LINE_MS elsewhere), and the summary,
 * also of an interrupted run: what every channel saved, finished or not.
 */
export class Reporter {
  requests = 0;
  readonly quiet: boolean;
  #now: () => number;
  #channels = new Map<string, ChannelWork>();
  #eta = new EtaEstimator();
  /** True while channels are backed up (from channels-selected to the next phase). */
  #channelPhase = false;
  /** When the channel phase began (channels selected); undefined before. */
  #channelsStartedAt: number | undefined;
  #phase: { name: string; at: number } | undefined;
  #lastProgressLine: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly output: Output, options: ReporterOptions) {
    this.quiet = options.quiet;
    this.#now = options.now ?? (() => performance.now());
    this.#lastProgressLine = this.#now();
    if (!this.quiet && options.timer !== false) {
      this.#timer = setInterval(
        () => this.tick(),
        output.status ? STATUS_INTERVAL_MS : TICK_MS,
      );
    }
  }

  /** Stops the live display and clears the status line. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.output.status?.("");
  }

  /** What every channel saved so far, finished or not. */
  get saved(): PostCounts {
    const counts = emptyCounts();
    for (const channel of this.#channels.values()) addCounts(counts, channel.progress.counts);
    return counts;
  }

  get channelsDone(): number {
    return [...this.#channels.values()].filter((c) => c.done).length;
  }

  readonly listener = (event: BackupEvent): void => {
    const { err } = this.output;
    const out = (line: string) => {
      if (!this.quiet) this.output.out(line);
    };
    switch (event.type) {
      case "info":
        out(event.message);
        break;
      case "phase":
        // The channels are done (or failed) when the next phase begins.
        this.#channelPhase = false;
        this.#phase = { name: event.phase, at: this.#now() };
        out(`== ${event.phase}`);
        break;
      case "warning":
        err(`warning: ${event.message}`);
        break;
      case "channels-selected":
        this.#channelPhase = true;
        this.#channelsStartedAt = this.#now();
        this.#eta.sample(this.#channelsStartedAt, 0);
        for (const [label, planned] of Object.entries(event.posts)) {
          this.#channels.set(label, {
            planned,
            started: false,
            done: false,
            progress: emptyProgress(),
          });
        }
        break;
      case "channel-start": {
        this.#update(event.label, { planned: event.posts, started: true });
        const { resume } = event;
        if (resume) {
          const from = resume.from === undefined
            ? ""
            : `, continuing from ${formatDay(resume.from)}`;
          out(`resuming ${event.label}: ${formatNumber(resume.stored)} posts stored${from}`);
        }
        break;
      }
      case "channel-progress":
        this.#update(event.label, { progress: copy(event.progress) });
        break;
      case "channel-done": {
        const { progress } = event;
        this.#update(event.label, {
          done: true,
          ...(progress ? { progress: copy(progress) } : {}),
        });
        const what = event.outcome === "saved" && progress
          ? formatCounts(progress.counts)
          : event.outcome === "failed"
          ? "failed (see the error above)"
          : event.outcome;
        out(`[${this.channelsDone}/${this.#channels.size}] ${event.label}: ${what}`);
        break;
      }
      case "failure":
        err(`error: ${event.failure.what}: ${event.failure.why}`);
        break;
      case "retry": {
        const line = `retry ${event.attempt} for ${event.what} in ${
          (event.delayMs / 1000).toFixed(1)
        } s (${event.reason})`;
        if (event.delayMs > LONG_WAIT_MS) err(`warning: waiting: ${line}`);
        else out(line);
        break;
      }
      case "request":
        this.requests++;
        break;
    }
  };

  #update(label: string, change: Partial<ChannelWork>): void {
    const known = this.#channels.get(label) ??
      { planned: 0, started: false, done: false, progress: emptyProgress() };
    this.#channels.set(label, { ...known, ...change });
  }

  /**
   * Samples the rate, and redraws the status line or prints the progress line when it is due.
   * The timer calls it; tests call it with their clock.
   */
  tick(): void {
    if (this.quiet) return;
    const now = this.#now();
    if (this.#channelPhase) this.#eta.sample(now, this.totals().unitsDone);
    if (this.output.status) {
      this.output.status(this.statusLine());
    } else if (now - this.#lastProgressLine >= PROGRESS_LINE_MS) {
      this.#lastProgressLine = now;
      this.output.out(this.progressLine());
    }
  }

  /** The ETA of the channel work, in ms; undefined when it cannot be told (yet). */
  remainingMs(totals = this.totals()): number | undefined {
    if (!this.#channelPhase || this.#channelsStartedAt === undefined) return undefined;
    return this.#eta.remainingMs(totals, this.#now(), this.#channelsStartedAt);
  }

  /** The channel work as the display sees it. */
  totals(): WorkTotals {
    return workTotals(this.#channels.values());
  }

  /** The channels under way: the first few by name, then how many more. */
  #running(): string {
    const running = [...this.#channels].filter(([, c]) => c.started && !c.done).map(([l]) => l);
    const named = running.slice(0, NAMED_CHANNELS).join(", ");
    const more = running.length - NAMED_CHANNELS;
    return more > 0 ? `${named} +${more}` : named;
  }

  #phaseSoFar(): string {
    if (!this.#phase) return "starting";
    return `${this.#phase.name} (${formatDuration(this.#now() - this.#phase.at)})`;
  }

  /** The terminal's status line: bars for posts and attachment bytes, ETA, channels under way. */
  statusLine(): string {
    const totals = this.totals();
    if (!this.#channelPhase) return this.#phaseSoFar();
    const eta = this.remainingMs(totals);
    return [
      `posts ${bar(totals.postsDone, totals.posts)} ${formatNumber(totals.postsDone)}/${
        formatNumber(totals.posts)
      }`,
      `files ${bar(totals.bytesDone, totals.bytesExpected)} ${formatBytes(totals.bytesDone)}/${
        formatBytes(totals.bytesExpected)
      }`,
      `ETA ${eta === undefined ? "-" : formatDuration(eta)}`,
      `${totals.channelsDone}/${totals.channels} channels${
        this.#running() ? `: ${this.#running()}` : ""
      }`,
    ].join("  ");
  }

  /** The line printed every PROGRESS_LINE_MS off a terminal. */
  progressLine(): string {
    const totals = this.totals();
    if (!this.#channelPhase) return `progress: ${this.#phaseSoFar()}`;
    const percent = totals.posts > 0 ? Math.floor((totals.postsDone / totals.posts) * 100) : 0;
    const eta = this.remainingMs(totals);
    return `progress: posts ${formatNumber(totals.postsDone)}/${formatNumber(totals.posts)} ` +
      `(${percent}%), files ${formatNumber(totals.filesDone)}/${formatNumber(totals.files)} ` +
      `(${formatBytes(totals.bytesDone)}/${formatBytes(totals.bytes)}), channels ` +
      `${totals.channelsDone}/${totals.channels} done` +
      (eta === undefined ? "" : `, ETA ${formatDuration(eta)}`) +
      (this.#running() ? `; now: ${this.#running()}` : "");
  }

  summary(summary: RunSummary): void {
    this.stop();
    if (this.quiet) return;
    const { out } = this.output;
    const c = summary.channels;
    out(
      `Done in ${(summary.durationMs / 1000).toFixed(1)} s: ${c.total} channel(s) ` +
        `(${c.unchanged} unchanged, ${c.skipped ? `${c.skipped} skipped, ` : ""}${c.failed} ` +
        `failed); posts ${formatCounts(summary.counts)}`,
    );
    out(
      `Users ${summary.users} written, ${summary.pictures} picture(s); emoji images ${
        summary.emojis ?? "-"
      }; ` +
        `${summary.requests} request(s)${
          summary.counts.historyRequests
            ? ` (${summary.counts.historyRequests} for edit histories)`
            : ""
        }, ${summary.retries} retr${summary.retries === 1 ? "y" : "ies"}, ` +
        `${formatBytes(summary.bytes)} received`,
    );
    if (summary.zip) out(formatZip(summary.zip));
    const { manifest, repairs } = summary;
    if (manifest.hashed > 0) {
      out(
        manifest.reason === "no-manifest"
          ? `Manifest: the SHA-256 of ${manifest.hashed} file(s) already in the data dir ` +
            `recorded once (it had no manifest)`
          : `Manifest: ${manifest.hashed} file(s) changed by an interrupted run hashed again`,
      );
    }
    if (repairs) {
      const total = repairs.repaired.length + repairs.lost.length + repairs.failed;
      out(
        `Repaired ${repairs.repaired.length} of the ${total} item(s) matterbak verify found` +
          (repairs.lost.length ? `; ${repairs.lost.length} cannot be repaired` : "") +
          (repairs.failed ? `; ${repairs.failed} failed and are tried again next run` : ""),
      );
    }
    const problems = summary.failures.length + summary.unmatched.length;
    if (problems > 0) out(`Completed with ${problems} problem(s); see the messages above`);
  }

  /** What an interrupted run saved: every channel's posts and files, finished or not. */
  interrupted(signal: string): void {
    this.stop();
    const channels = [...this.#channels.values()];
    const partly = channels.filter((c) => c.started && !c.done).length;
    this.output.err(
      `Interrupted by ${signal}: ${this.channelsDone} of ${channels.length} channel(s) ` +
        `finished${partly ? `, ${partly} partly saved` : ""}; saved posts ` +
        `${formatCounts(this.saved)}; the next run continues where this one stopped`,
    );
  }
}

/** The summary's zip line: kept as it was, or what was copied and what compressed. */
export function formatZip(zip: ZipSummary): string {
  const size = `${zip.entries} entries, ${formatBytes(zip.bytes)}`;
  if (zip.unchanged) return `Zip ${zip.path}: unchanged, still exact (${size})`;
  return `Zip ${zip.path}: ${size} (${zip.written} file(s) compressed, ${zip.copied} copied ` +
    `from the previous zip)`;
}

/** Events carry the sync's live object; the display keeps its own copy. */
function copy(progress: ChannelProgress): ChannelProgress {
  return { ...progress, counts: { ...progress.counts } };
}
