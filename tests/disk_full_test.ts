/**
 * A full disk stops the run cleanly: exit status 2 with a message naming the file, nothing
 * complete lost, no temporary file left. Needs a small tmpfs, so root on Linux (as in our CI).
 */
import assert from "node:assert/strict";
import { assertRunCompletes } from "./expected_backup.ts";
import { canMount, listFiles, startGenerated } from "./harness.ts";

Deno.test({
  name: "a disk that fills up mid-run stops it with exit 2; the next run on a roomy disk completes",
  ignore: !await canMount(),
  async fn() {
    const { h, me } = await startGenerated({
      teams: 1,
      channelsPerTeam: 2,
      postsPerChannel: 400,
      dms: 0,
      gms: 0,
    });
    const small = await Deno.makeTempDir();
    try {
      // Room for each channel's first page of 200 posts (a page is written as one batch, each
      // file a page of tmpfs, 4 KB), not for their second: the disk fills in the middle.
      const mounted = await new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small],
      }).output();
      assert.ok(mounted.success);
      const dataDir = `${small}/data`;
      const result = await h.run(["-d", dataDir, "--skip-users", "--skip-emojis"]);
      assert.equal(result.status, 2, result.err.join("\n"));
      assert.match(result.err.join("\n"), /^error: The disk is full: cannot write .*data\//m);
      const files = await listFiles(dataDir);
      assert.ok(files.length > 10, "what was complete stays");
      assert.ok(!files.some((p) => p.endsWith(".mbtmp")), "no temporary file left");
      for (const path of files.filter((p) => p.endsWith(".json"))) {
        JSON.parse(await Deno.readTextFile(`${dataDir}/${path}`));
      }

      const grown = await new Deno.Command("mount", { args: ["-o", "remount,size=64m", small] })
        .output();
      assert.ok(grown.success);
      await assertRunCompletes(h, me.id, { args: ["-d", dataDir], dataDir });
    } finally {
      await new Deno.Command("umount", { args: [small] }).output();
      await Deno.remove(small, { recursive: true });
      await h.close();
    }
  },
});
