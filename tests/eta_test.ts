/**
 * The ETA on the demo world at 150 ms latency: the backup runs for real against the simulator
 * while its events are recorded; the display then sees them again on a fake clock, ticking as
 * the terminal's status line does, and every ETA it shows once a fifth of the work is done must
 * be within 25 % of the time the channels took from then on. On the fake clock the requests
 * follow each other evenly over the phase's real duration: what is judged is how well the
 * display foresees the work, not how steadily a busy test machine ran it.
 */
import assert from "node:assert/strict";
import { Reporter } from "../lib/cli/progress.ts";
import type { BackupEvent } from "../lib/util/events.ts";
import { startHarness } from "./harness.ts";
import { DEMO_CHANNELS, DEMO_RATE_LIMIT, demoWorld } from "./simulator/demo_world.ts";

/** The status line is redrawn this often on a terminal. */
const TICK_MS = 250;
/** The ETA is shown in whole seconds: closer than this cannot be asked of it. */
const SHOWN_TO_MS = 1000;

Deno.test("the ETA is within 25 % of the time left once a fifth of the work is done (demo world, 150 ms latency)", async () => {
  const { world, me, token } = demoWorld();
  const h = await startHarness({
    world,
    latencyMs: 150,
    credentials: { user: me.username, token },
    channels: DEMO_CHANNELS,
    baseArgs: ["--rate-limit", String(DEMO_RATE_LIMIT)],
  });
  const trace: Array<{ at: number; requests: number; event: BackupEvent }> = [];
  let requests = 0;
  try {
    await h.runInProcess({
      emit: (event) => {
        if (event.type === "request") requests++;
        trace.push({ at: performance.now(), requests, event: structuredClone(event) });
      },
    });
  } finally {
    await h.close();
  }
  const selected = trace.findIndex((t) => t.event.type === "channels-selected");
  const end = trace.findIndex((t, i) => i > selected && t.event.type === "phase");
  assert.ok(selected >= 0 && end > selected, "a channel phase");
  const first = trace[selected] as { at: number; requests: number };
  const last = trace[end] as { at: number; requests: number };
  const startAt = first.at;
  const endAt = last.at;
  const perRequest = (endAt - startAt) / Math.max(1, last.requests - first.requests);
  for (const entry of trace) entry.at = startAt + (entry.requests - first.requests) * perRequest;

  // Replay on a fake clock, as the display would have seen it.
  const clock = { time: startAt };
  const reporter = new Reporter({ out: () => {}, err: () => {}, status: () => {} }, {
    quiet: false,
    now: () => clock.time,
    timer: false,
  });
  const shown: Array<{ at: number; unitsDone: number; eta: number | undefined }> = [];
  let next = 0;
  for (let t = startAt; t < endAt; t += TICK_MS) {
    clock.time = t;
    while (next < end && (trace[next] as { at: number }).at <= t) {
      reporter.listener((trace[next++] as { event: BackupEvent }).event);
    }
    reporter.tick();
    shown.push({ at: t, unitsDone: reporter.totals().unitsDone, eta: reporter.remainingMs() });
  }
  while (next < end) reporter.listener((trace[next++] as { event: BackupEvent }).event);
  const work = reporter.totals().units;

  const judged = shown.filter((s) => s.unitsDone >= work / 5);
  assert.ok(judged.length >= 10, `${judged.length} ETAs after a fifth of the work`);
  const misses = judged.filter((s) => {
    const actual = endAt - s.at;
    // Near the end a quarter is under a second: the shown whole seconds, a tick stale at most.
    const allowed = Math.max(actual / 4, SHOWN_TO_MS + TICK_MS);
    return s.eta === undefined || Math.abs(s.eta - actual) > allowed;
  }).map((s) =>
    `at ${((s.at - startAt) / 1000).toFixed(2)} s: ETA ${
      s.eta === undefined ? "none" : (s.eta / 1000).toFixed(1)
    } s, actual ${((endAt - s.at) / 1000).toFixed(1)} s`
  );
  assert.deepEqual(misses, [], `channel phase ${((endAt - startAt) / 1000).toFixed(1)} s`);
});
