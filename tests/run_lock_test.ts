import assert from "node:assert/strict";
import { DataDir } from "../lib/store/data_dir.ts";
import { acquireRunLock } from "../lib/store/run_lock.ts";
import { ExitCode } from "../lib/util/errors.ts";
import { startGenerated } from "./harness.ts";

Deno.test("a data dir locked by another run ends the run with its own exit status, 7, naming the holder", async () => {
  const { h } = await startGenerated({ teams: 1, channelsPerTeam: 1, postsPerChannel: 3 });
  try {
    const lock = await acquireRunLock(new DataDir(h.dataDir));
    try {
      const result = await h.run();
      assert.equal(result.status, ExitCode.locked);
      assert.equal(result.status, 7);
      assert.equal(result.err.length, 1);
      assert.match(
        result.err[0] as string,
        /^error: The data dir .* is in use by another run \(pid \d+, started /,
      );
      assert.equal(h.sim.requests.length, 0, "nothing is asked of the server");
    } finally {
      lock.release();
    }
    assert.equal((await h.run()).status, ExitCode.ok, "the lock is free again");
  } finally {
    await h.close();
  }
});
