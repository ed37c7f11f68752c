/**
 * Peak memory of a real process (the binary's flags) against a server whose every post page,
 * picture, team icon and emoji image is hundreds of MB: each answer is refused at its cap while
 * it streams, so the peak stays far below the 300 MB the issue allows. Measured with GNU time
 * (`/usr/bin/time -v`, Linux), which reports the process's maximum resident set size.
 */
import assert from "node:assert/strict";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import { REPO_ROOT } from "../scripts/_util.ts";
import { harnessFor } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import type { FaultPlan } from "./simulator/server.ts";

const GNU_TIME = "/usr/bin/time";
const measurable = Deno.build.os === "linux" &&
  await Deno.stat(GNU_TIME).then((info) => info.isFile, () => false);

const MB = 1024 * 1024;

Deno.test({
  name: "answers of hundreds of MB keep a real run's peak memory under 300 MB",
  ignore: !measurable,
  async fn() {
    const { world, me, token } = generateWorld({
      teams: 1,
      // As many channels as requests in flight (the default --concurrency 4).
      channelsPerTeam: 4,
      postsPerChannel: 5,
      dms: 0,
      gms: 0,
      users: 12,
    });
    const faults: FaultPlan = (req) => {
      if (/^\/api\/v4\/channels\/\w+\/posts$/.test(req.path)) {
        return { kind: "flood", contentType: "application/json", bytes: 300 * MB };
      }
      if (req.path.endsWith("/image")) {
        return { kind: "flood", contentType: "image/png", bytes: 250 * MB };
      }
      return undefined;
    };
    const h = await harnessFor({ world, me, token }, { faults });
    try {
      const started = performance.now();
      const output = await new Deno.Command(GNU_TIME, {
        args: [
          "-v",
          Deno.execPath(),
          "run",
          ...RUNTIME_FLAGS,
          "main.ts",
          ...h.configArgs,
          "--rate-limit",
          "0",
        ],
        cwd: REPO_ROOT,
        env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
        stdin: "null",
      }).output();
      const seconds = (performance.now() - started) / 1000;
      const stderr = new TextDecoder().decode(output.stderr);
      const peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1]);
      const status = Number(/Exit status: (\d+)/.exec(stderr)?.[1]);
      const errors = stderr.split("\n").filter((line) => line.startsWith("error: "));
      console.log(`peak RSS ${(peakKb / 1024).toFixed(0)} MB in ${seconds.toFixed(1)} s`);
      assert.equal(status, 3, stderr);
      // Four channels, the pictures of alice and six others, a team icon, three emoji images.
      assert.equal(errors.length, 4 + 7 + 1 + 3, stderr);
      assert.ok(errors.every((line) => /larger than \d+ bytes/.test(line)), stderr);
      assert.ok(peakKb > 0 && peakKb < 300 * 1024, `peak RSS ${peakKb} kB`);
      assert.ok(seconds < 60, `${seconds} s`);
    } finally {
      await h.close();
    }
  },
});
