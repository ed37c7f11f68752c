import assert from "node:assert/strict";
import { type BackupEvent, type ChannelProgress, emptyCounts } from "../lib/util/events.ts";
import {
  formatCounts,
  formatDuration,
  formatZip,
  PROGRESS_LINE_MS,
  Reporter,
} from "../lib/cli/progress.ts";
import { formatBytes } from "../lib/util/format.ts";
import { EtaEstimator, RATE_WINDOW_MS, workTotals } from "../lib/cli/eta.ts";
import { installInterruptHandlers } from "../lib/cli/interrupt.ts";
import { InterruptedError } from "../lib/util/errors.ts";
import { readJsonFile, startGenerated } from "./harness.ts";

function capture(terminal: boolean) {
  const out: string[] = [];
  const err: string[] = [];
  const status: string[] = [];
  const output = {
    out: (l: string) => out.push(l),
    err: (l: string) => err.push(l),
    ...(terminal ? { status: (l: string) => status.push(l) } : {}),
  };
  return { out, err, status, output };
}

/** A reporter on a fake clock that the test moves; no timer runs. */
function fakeReporter(terminal: boolean, quiet = false) {
  const clock = { time: 0 };
  const captured = capture(terminal);
  const reporter = new Reporter(captured.output, {
    quiet,
    now: () => clock.time,
    timer: false,
  });
  const at = (ms: number, ...events: BackupEvent[]) => {
    clock.time = ms;
    events.forEach(reporter.listener);
    reporter.tick();
  };
  return { ...captured, reporter, clock, at };
}

const progress = (fetched: number, files = 0, bytes = 0, saved = fetched): ChannelProgress => ({
  counts: { ...emptyCounts(), newPosts: saved, files, fileBytes: bytes },
  fetched,
  files,
  fileBytes: bytes,
});

Deno.test("the status line: bars for posts and bytes, channels done, ETA, the channels under way", () => {
  const { reporter, at, status } = fakeReporter(true);
  at(
    0,
    { type: "phase", phase: "Backing up 4 channel(s)" },
    { type: "channels-selected", total: 4, posts: { a: 1000, b: 1000, c: 1000, d: 1000 } },
    { type: "channel-start", label: "a", mode: "full history", posts: 1000 },
    { type: "channel-start", label: "b", mode: "full history", posts: 1000 },
    { type: "channel-start", label: "c", mode: "full history", posts: 1000 },
  );
  at(5_000);
  // 10 s in: a is done (1000 posts, 10 files of 1 MB), b has 400 posts, c 200.
  at(
    10_000,
    { type: "channel-done", label: "a", outcome: "saved", progress: progress(1000, 10, 10e6) },
    { type: "channel-progress", label: "b", progress: progress(400, 4, 4e6) },
    { type: "channel-progress", label: "c", progress: progress(200, 2, 1e6, 200) },
  );
  const line = reporter.statusLine();
  assert.equal(
    line,
    "posts [####------] 1,600/4,000  files [###-------] 15.0 MB/39.0 MB  ETA 8s  " +
      "1/4 channels: b, c",
    // The median channel has a file of 10 KB per 100 posts: the 2,400 posts to come are
    // expected to bring 24 files and 24 MB. Work in requests (a channel's own 2, a page per 200
    // posts, a request per file, 2 MB as one): 87.5 in all, 35.5 done. The rate is that of the
    // later half of the 10 s: 32.5 in 5 s; 52 left take 8 s.
  );
  assert.equal(status.at(-1), line, "the tick drew it");
});

Deno.test("the ETA follows the recent rate, not the average since the start", () => {
  const eta = new EtaEstimator();
  const totals = (done: number) => ({ ...workTotals([]), units: 1000, unitsDone: done });
  eta.sample(0, 0);
  eta.sample(500, 0);
  assert.equal(eta.remainingMs(totals(0), 500, 0), undefined, "nothing to tell at first");
  // Nothing for 2 s (the first answers are on their way), then 10 units/s until 60 s: the
  // slow start is forgotten once it is out of the later half of the time so far.
  for (let t = 1000; t <= 60_000; t += 1000) eta.sample(t, Math.max(0, (t - 2000) / 100));
  assert.equal(Math.round(eta.remainingMs(totals(580), 60_000, 0) as number), 42_000);
  // Then 2 units/s: after RATE_WINDOW_MS that is all the rate says.
  for (let t = 61_000; t <= 60_000 + RATE_WINDOW_MS; t += 1000) {
    eta.sample(t, 580 + (t - 60_000) / 500);
  }
  assert.equal(
    Math.round(eta.remainingMs(totals(640), 90_000, 0) as number),
    180_000,
    "360 units left at 2 units/s",
  );
});

Deno.test("work not known up front: attachments expected as the channels so far have them, channels refine their estimate", () => {
  const totals = workTotals([
    { planned: 400, started: true, done: false, progress: progress(200, 20, 0, 200) },
    { planned: 600, started: false, done: false, progress: progress(0) },
  ]);
  assert.equal(totals.posts, 1000);
  // First: 2 + 400/200 + 20 files + 200 posts to come at 0.1 files each; second: 2 + 3 + 60.
  assert.equal(totals.units, 2 + 2 + 20 + 20 + 2 + 3 + 60);
  // The median channel's attachments per post, not one channel's many.
  const skewed = workTotals([
    { planned: 100, started: true, done: true, progress: progress(100, 50) },
    { planned: 100, started: true, done: true, progress: progress(100, 1) },
    { planned: 100, started: true, done: true, progress: progress(100, 2) },
    { planned: 1000, started: false, done: false, progress: progress(0) },
  ]);
  // Done: 2 + a page's half + the files each; to come: 2 + 5 pages + 1000 posts at 2 per 100.
  assert.equal(skewed.units, 52.5 + 3.5 + 4.5 + (2 + 5 + 1000 * 0.02));
  assert.equal(totals.unitsDone, 1 + 1 + 20);
  const more = workTotals([
    { planned: 100, started: true, done: false, progress: progress(150) },
    { planned: 100, started: true, done: true, progress: progress(50) },
  ]);
  assert.equal(more.posts, 200, "a channel that sends more than expected, one that sent less");
});

Deno.test("off a terminal: a progress line every 10 s in every phase, and one line per finished channel", () => {
  const { at, out } = fakeReporter(false);
  at(0, { type: "phase", phase: "Listing teams and channels" });
  at(9_999);
  assert.deepEqual(out, ["== Listing teams and channels"]);
  at(PROGRESS_LINE_MS);
  at(PROGRESS_LINE_MS + 1, { type: "phase", phase: "Backing up 2 channel(s)" });
  at(
    12_000,
    { type: "channels-selected", total: 2, posts: { a: 300, b: 100 } },
    { type: "channel-start", label: "a", mode: "full history", posts: 300 },
    { type: "channel-start", label: "b", mode: "changes", posts: 100 },
  );
  at(18_000, { type: "channel-progress", label: "a", progress: progress(200, 3, 3000) });
  at(19_000, { type: "channel-done", label: "b", outcome: "unchanged", progress: progress(0) });
  at(20_000);
  at(25_000, { type: "phase", phase: "Backing up users" });
  at(29_999);
  at(30_000);
  assert.deepEqual(out, [
    "== Listing teams and channels",
    "progress: Listing teams and channels (10s)",
    "== Backing up 2 channel(s)",
    "[1/2] b: unchanged",
    // 7 of 10 requests' worth done; in the later half of the 8 s, 1 in 2 s: 3 left take 6 s.
    "progress: posts 200/300 (66%), files 3/3 (3.0 KB/3.0 KB), channels 1/2 done, ETA 6s; now: a",
    "== Backing up users",
    "progress: Backing up users (5s)",
  ]);
});

Deno.test("a resumed crawl says how much is stored and where it continues", () => {
  const { at, out } = fakeReporter(false);
  at(0, {
    type: "channel-start",
    label: "eng/dev",
    mode: "resuming interrupted crawl",
    posts: 1200,
    resume: { stored: 2401, from: Date.UTC(2023, 10, 15, 23, 59) },
  });
  assert.deepEqual(out, ["resuming eng/dev: 2,401 posts stored, continuing from 2023-11-15"]);
});

Deno.test("after an interruption the summary counts what every channel saved, finished or not", () => {
  const { reporter, at, err } = fakeReporter(true);
  at(
    0,
    { type: "channels-selected", total: 3, posts: { a: 3000, b: 3000, c: 3000 } },
    { type: "channel-start", label: "a", mode: "full history", posts: 3000 },
    { type: "channel-start", label: "b", mode: "full history", posts: 3000 },
  );
  at(5_000, { type: "channel-progress", label: "a", progress: progress(1400, 2, 2000, 1400) });
  at(6_000, { type: "channel-progress", label: "b", progress: progress(1001, 0, 0, 1001) });
  reporter.interrupted("SIGINT");
  assert.deepEqual(err, [
    "Interrupted by SIGINT: 0 of 3 channel(s) finished, 2 partly saved; saved posts 2,401 new, " +
    "2 file(s) (2.0 KB); the next run continues where this one stopped",
  ]);
  assert.equal(reporter.saved.newPosts, 2401);
});

Deno.test("quiet mode prints only warnings and errors, and no progress", () => {
  const { out, err, status, at } = fakeReporter(false, true);
  at(0, { type: "phase", phase: "Listing" }, { type: "info", message: "hello" });
  at(20_000, { type: "channel-done", label: "a", outcome: "unchanged", progress: progress(0) });
  at(40_000, { type: "warning", message: "careful" });
  at(50_000, { type: "failure", failure: { what: "x", why: "y" } });
  assert.deepEqual(out, []);
  assert.deepEqual(status, []);
  assert.deepEqual(err, ["warning: careful", "error: x: y"]);
});

Deno.test("a wait of more than a few seconds is said, even in quiet mode", () => {
  const { out, err, output } = capture(false);
  const reporter = new Reporter(output, { quiet: true, timer: false });
  const retry = { type: "retry", what: "your teams", attempt: 1, reason: "HTTP 429" } as const;
  reporter.listener({ ...retry, delayMs: 1000 });
  reporter.listener({ ...retry, delayMs: 60_000 });
  assert.deepEqual(out, []);
  assert.deepEqual(err, ["warning: waiting: retry 1 for your teams in 60.0 s (HTTP 429)"]);
});

Deno.test("sizes, counts and durations read naturally", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1_500_000), "1.5 MB");
  assert.equal(formatDuration(59_400), "59s");
  assert.equal(formatDuration(61_000), "1m01s");
  assert.equal(formatDuration(3_720_000), "1h02m");
  assert.equal(
    formatCounts({ ...emptyCounts(), newPosts: 2401, updatedPosts: 1000, files: 3 }),
    "2,401 new, 1,000 updated, 3 file(s) (0 B)",
  );
  assert.equal(
    formatCounts({ ...emptyCounts(), updatedPosts: 2, versions: 3, historyRequests: 1 }),
    "0 new, 2 updated, 3 earlier version(s) kept, 0 file(s) (0 B)",
  );
});

Deno.test({
  name: "a second signal clears the status line before it ends the process",
  // SIGTERM: the test runner takes SIGINT for itself; Windows has neither to send.
  ignore: Deno.build.os === "windows",
}, async () => {
  const steps: string[] = [];
  const controller = new AbortController();
  const exited = Promise.withResolvers<void>();
  // A signal listener does not keep the event loop alive; a test waiting for one needs this.
  const keepAlive = setInterval(() => {}, 1000);
  const uninstall = installInterruptHandlers(controller, {
    notify: (message) => steps.push(`notify: ${message}`),
    beforeExit: () => steps.push("clear the status line"),
    exit: (status) => {
      steps.push(`exit ${status}`);
      exited.resolve();
    },
  });
  try {
    Deno.kill(Deno.pid, "SIGTERM");
    await new Promise((resolve) => controller.signal.addEventListener("abort", resolve));
    assert.ok(controller.signal.reason instanceof InterruptedError);
    Deno.kill(Deno.pid, "SIGTERM");
    await exited.promise;
  } finally {
    uninstall();
    clearInterval(keepAlive);
  }
  assert.deepEqual(steps, [
    "notify: SIGTERM received: finishing current writes and stopping (again to quit at once)",
    "clear the status line",
    "notify: SIGTERM again: stopping now",
    "exit 143",
  ]);
});

Deno.test("the zip line says whether the zip was left as it was, or what was copied", () => {
  const zip = { path: "b.zip", entries: 120, bytes: 2_500_000, copied: 0, written: 0 };
  assert.equal(
    formatZip({ ...zip, unchanged: true }),
    "Zip b.zip: unchanged, still exact (120 entries, 2.5 MB)",
  );
  assert.equal(
    formatZip({ ...zip, unchanged: false, copied: 98, written: 2 }),
    "Zip b.zip: 120 entries, 2.5 MB (2 file(s) compressed, 98 copied from the previous zip)",
  );
});

Deno.test("--report writes the run summary as JSON, --quiet keeps stdout empty", async () => {
  const { h, token } = await startGenerated({
    teams: 1,
    channelsPerTeam: 2,
    postsPerChannel: 10,
    dms: 0,
    gms: 0,
  });
  try {
    const report = `${h.dir}/report.json`;
    const result = await h.run(["--quiet", "--report", report]);
    assert.equal(result.status, 0);
    assert.deepEqual(result.out, []);
    const json = await readJsonFile<Record<string, unknown>>(report);
    assert.equal(json.exitStatus, 0);
    assert.ok((json.counts as { newPosts: number }).newPosts > 10);
    assert.equal(json.requests, h.sim.requests.length);
    assert.deepEqual(json.failures, []);
    assert.ok(typeof json.durationMs === "number");
    assert.ok(!JSON.stringify(json).includes(token), "no secret in the report");
  } finally {
    await h.close();
  }
});
