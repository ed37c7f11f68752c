import assert from "node:assert/strict";
import { emptyCounts } from "../lib/util/events.ts";
import { formatDuration, Reporter } from "../lib/cli/progress.ts";
import { formatBytes } from "../lib/util/format.ts";
import { readJsonFile, startGenerated } from "./harness.ts";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, output: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

Deno.test("the status line counts finished and running channels, requests, rate and ETA", () => {
  const { output } = capture();
  const reporter = new Reporter(output, false);
  const start = performance.now();
  const counts = (newPosts: number, files: number) => ({
    ...emptyCounts(),
    newPosts,
    files,
    fileBytes: files * 1000,
  });
  reporter.listener({ type: "channels-selected", total: 4 });
  reporter.listener({ type: "channel-start", label: "a", mode: "full history" });
  reporter.listener({ type: "channel-done", label: "a", counts: counts(100, 2), unchanged: false });
  reporter.listener({ type: "channel-start", label: "b", mode: "full history" });
  reporter.listener({ type: "channel-progress", label: "b", counts: counts(50, 1) });
  for (let i = 0; i < 10; i++) reporter.listener({ type: "request" });
  const line = reporter.statusLine(start + 10_000);
  assert.match(line, /^channels 1\/4 \| posts 150 \| files 3 \(3.0 KB\) \| requests 10 /);
  assert.match(line, /ETA 30s$/, "three channels left at ten seconds each");
});

Deno.test("quiet mode prints only warnings and errors", () => {
  const { out, err, output } = capture();
  const reporter = new Reporter(output, true);
  reporter.listener({ type: "phase", phase: "Listing" });
  reporter.listener({ type: "info", message: "hello" });
  reporter.listener({ type: "channel-done", label: "a", counts: emptyCounts(), unchanged: true });
  reporter.listener({ type: "warning", message: "careful" });
  reporter.listener({ type: "failure", failure: { what: "x", why: "y" } });
  assert.deepEqual(out, []);
  assert.deepEqual(err, ["warning: careful", "error: x: y"]);
});

Deno.test("a wait of more than a few seconds is said, even in quiet mode", () => {
  const { out, err, output } = capture();
  const reporter = new Reporter(output, true);
  const retry = { type: "retry", what: "your teams", attempt: 1, reason: "HTTP 429" } as const;
  reporter.listener({ ...retry, delayMs: 1000 });
  reporter.listener({ ...retry, delayMs: 60_000 });
  assert.deepEqual(out, []);
  assert.deepEqual(err, ["warning: waiting: retry 1 for your teams in 60.0 s (HTTP 429)"]);
});

Deno.test("sizes and durations read naturally", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1_500_000), "1.5 MB");
  assert.equal(formatDuration(59_400), "59s");
  assert.equal(formatDuration(61_000), "1m01s");
  assert.equal(formatDuration(3_720_000), "1h02m");
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
