/**
 * Listeners for backup events: plain lines for logs and terminals, quiet mode for cron, and
 * the final summary in text or JSON (`--report`).
 */
import type { RunSummary } from "../util/events.ts";
import { addCounts, type BackupEvent, emptyCounts, type PostCounts } from "../util/events.ts";
import { formatBytes } from "../util/format.ts";

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Redraws the live status line (terminals only); absent where there is no terminal. */
  status?: (line: string) => void;
}

export function formatCounts(counts: PostCounts): string {
  const parts = [`${counts.newPosts} new`];
  if (counts.updatedPosts) parts.push(`${counts.updatedPosts} updated`);
  if (counts.deletedPosts) parts.push(`${counts.deletedPosts} deleted`);
  parts.push(`${counts.files} file(s) (${formatBytes(counts.fileBytes)})`);
  return parts.join(", ");
}

/**
 * A wait before a retry longer than this is said even in quiet mode: a run that seems to hang
 * is waiting for the server (a 429's Retry-After, at most MAX_SERVER_WAIT_MS).
 */
export const LONG_WAIT_MS = 5000;

/** Redraw the live status line at most this often. */
const STATUS_INTERVAL_MS = 250;
/** Requests per second are measured over this window. */
const RATE_WINDOW_MS = 5000;

/**
 * Turns events into output: a line per finished channel, warnings and errors, and on a
 * terminal a live status line with channels done, posts, files, requests, rate and ETA.
 * Tallies what was saved, for the summary after an interruption.
 */
export class Reporter {
  readonly saved: PostCounts = emptyCounts();
  channelsDone = 0;
  requests = 0;
  #total = 0;
  #running = new Map<string, PostCounts>();
  #requestTimes: number[] = [];
  #started = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly output: Output, readonly quiet: boolean) {
    if (output.status && !quiet) {
      this.#timer = setInterval(() => this.#drawStatus(), STATUS_INTERVAL_MS);
    }
  }

  /** Stops the live display (clears the status line). */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.output.status?.("");
  }

  readonly listener = (event: BackupEvent): void => {
    const { err } = this.output;
    switch (event.type) {
      case "info":
        if (!this.quiet) this.output.out(event.message);
        break;
      case "phase":
        if (!this.quiet) this.output.out(`== ${event.phase}`);
        break;
      case "warning":
        err(`warning: ${event.message}`);
        break;
      case "channels-selected":
        this.#total = event.total;
        break;
      case "channel-start":
        this.#running.set(event.label, emptyCounts());
        break;
      case "channel-progress":
        this.#running.set(event.label, { ...event.counts });
        break;
      case "channel-done":
        this.#running.delete(event.label);
        this.channelsDone++;
        addCounts(this.saved, event.counts);
        if (!this.quiet) {
          const what = event.unchanged ? "unchanged" : formatCounts(event.counts);
          this.output.out(`[${this.channelsDone}/${this.#total}] ${event.label}: ${what}`);
        }
        break;
      case "failure":
        err(`error: ${event.failure.what}: ${event.failure.why}`);
        break;
      case "retry": {
        const line = `retry ${event.attempt} for ${event.what} in ${
          (event.delayMs / 1000).toFixed(1)
        } s (${event.reason})`;
        if (event.delayMs > LONG_WAIT_MS) err(`warning: waiting: ${line}`);
        else if (!this.quiet) this.output.out(line);
        break;
      }
      case "request":
        this.requests++;
        if (this.#timer !== undefined) this.#requestTimes.push(performance.now());
        break;
    }
  };

  /** The live status line: what is done so far, the request rate and a rough ETA. */
  statusLine(now = performance.now()): string {
    const counts = { ...this.saved };
    for (const running of this.#running.values()) addCounts(counts, running);
    while ((this.#requestTimes[0] ?? now) < now - RATE_WINDOW_MS) this.#requestTimes.shift();
    const rate = this.#requestTimes.length /
      (Math.min(RATE_WINDOW_MS, now - this.#started) / 1000 || 1);
    const elapsed = now - this.#started;
    const eta = this.channelsDone > 0 && this.channelsDone < this.#total
      ? ` ETA ${formatDuration((elapsed / this.channelsDone) * (this.#total - this.channelsDone))}`
      : "";
    return `channels ${this.channelsDone}/${this.#total} | posts ${
      counts.newPosts + counts.updatedPosts
    } | ` +
      `files ${counts.files} (${formatBytes(counts.fileBytes)}) | requests ${this.requests} ` +
      `(${rate.toFixed(1)}/s)${eta}`;
  }

  #drawStatus(): void {
    this.output.status?.(this.statusLine());
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
        `${summary.requests} request(s), ${summary.retries} retr${
          summary.retries === 1 ? "y" : "ies"
        }, ` +
        `${formatBytes(summary.bytes)} received`,
    );
    if (summary.zip) {
      out(
        `Zip ${summary.zip.path}: ${summary.zip.entries} entries, ${
          formatBytes(summary.zip.bytes)
        }`,
      );
    }
    const problems = summary.failures.length + summary.unmatched.length;
    if (problems > 0) out(`Completed with ${problems} problem(s); see the messages above`);
  }

  interrupted(signal: string): void {
    this.stop();
    this.output.err(
      `Interrupted by ${signal}: ${this.channelsDone} channel(s) finished, posts ${
        formatCounts(this.saved)
      }; ` +
        `the next run continues where this one stopped`,
    );
  }
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}
