/**
 * Listeners for backup events: plain lines for logs and terminals, quiet mode for cron, and
 * the final summary in text or JSON (`--report`).
 */
import type { RunSummary } from "./backup.ts";
import {
  addCounts,
  type BackupEvent,
  emptyCounts,
  type Failure,
  type PostCounts,
} from "./events.ts";

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatCounts(counts: PostCounts): string {
  const parts = [`${counts.newPosts} new`];
  if (counts.updatedPosts) parts.push(`${counts.updatedPosts} updated`);
  if (counts.deletedPosts) parts.push(`${counts.deletedPosts} deleted`);
  parts.push(`${counts.files} file(s) (${formatBytes(counts.fileBytes)})`);
  return parts.join(", ");
}

/** Tallies what was saved, for the summary after an interruption. */
export class Reporter {
  readonly saved: PostCounts = emptyCounts();
  readonly failures: Failure[] = [];
  channelsDone = 0;
  #total = 0;

  constructor(readonly output: Output, readonly quiet: boolean) {}

  readonly listener = (event: BackupEvent): void => {
    const { out, err } = this.output;
    switch (event.type) {
      case "info":
      case "phase":
        if (!this.quiet) out(event.type === "phase" ? `== ${event.phase}` : event.message);
        break;
      case "warning":
        err(`warning: ${event.message}`);
        break;
      case "channels-selected":
        this.#total = event.total;
        break;
      case "channel-start":
        break;
      case "channel-progress":
        break;
      case "channel-done":
        this.channelsDone++;
        addCounts(this.saved, event.counts);
        if (!this.quiet) {
          const what = event.unchanged ? "unchanged" : formatCounts(event.counts);
          out(`[${this.channelsDone}/${this.#total}] ${event.label}: ${what}`);
        }
        break;
      case "failure":
        this.failures.push(event.failure);
        err(`error: ${event.failure.what}: ${event.failure.why}`);
        break;
      case "retry":
        if (!this.quiet) {
          out(
            `retry ${event.attempt} for ${event.what} in ${
              (event.delayMs / 1000).toFixed(1)
            } s (${event.reason})`,
          );
        }
        break;
    }
  };

  summary(summary: RunSummary): void {
    if (this.quiet) return;
    const { out } = this.output;
    const c = summary.channels;
    out(
      `Done in ${(summary.durationMs / 1000).toFixed(1)} s: ${c.total} channel(s) ` +
        `(${c.unchanged} unchanged, ${c.failed} failed); posts ${formatCounts(summary.counts)}`,
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
    this.output.err(
      `Interrupted by ${signal}: ${this.channelsDone} channel(s) finished, posts ${
        formatCounts(this.saved)
      }; ` +
        `the next run continues where this one stopped`,
    );
  }
}
