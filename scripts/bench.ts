/**
 * `deno task bench`: measures the backup against the simulator and prints the figures the
 * README quotes. Each run is the real CLI in its own process (so its memory is its own), the
 * simulator in this one.
 *
 * 0. fast network (issue 13): a 20,000-post world with no latency (a LAN server): the first
 *    backup with its zip, against a plain durable write of the same files (the floor for this
 *    disk), and an update with nothing new; a 2,000-post world with 30 ms latency: the first
 *    backup against the network floor, and an update with nothing new (no latency); the zip step
 *    alone against `zip -r -1` of the same folder. With `--baseline REV` the same runs are made
 *    with the code of git revision REV too (checked out into a temporary folder), interleaved
 *    with this checkout's, so that both meet the same load; `--repeat N` (default 3) repeats
 *    them and ranges are printed. `--speed` runs only this section.
 * 1. speed: many channels, tens of thousands of posts, thousands of files, 30 ms latency, no
 *    rate limit; --concurrency 8 against --concurrency 1; requests against the minimum the data
 *    needs.
 * 2. rate: --rate-limit 10 must take requests/10 seconds (within 10 %).
 * 3. memory: one channel of 50,000 and of 200,000 posts, crawled, zipped (one file per post),
 *    then updated with changes; peak RSS of each run, to show it flat in channel size; then
 *    `matterbak verify` of that data dir against `sha256sum -c` of its manifest and against the
 *    floor in Deno (scripts/bench_verify_floor.ts). `--verify DATA_DIR` runs only this comparison,
 *    on a data dir made before (e.g. by `scripts/synthetic_backup.ts DIR 200000 threads 50`).
 * Both exports (Markdown, bulk-import archive) run on the backups of 1 and 3, each in its own
 * process: their time and peak RSS.
 *
 * 4. view (only with `--view`, instead of 0-3): `matterbak view` on the speed world (build time,
 *    site size, a rebuild after a small update) and on the 200,000-post channel (build, a rebuild
 *    after a day's changes, and search answer times in headless chromium from file://).
 *
 * `deno task bench --quick` runs smaller worlds (a smoke test of this script).
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateWorld } from "../tests/simulator/generate.ts";
import { startSimulator } from "../tests/simulator/server.ts";
import type { Channel, PostRecord, World } from "../tests/simulator/world.ts";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import { DEFAULT_CONNECTION } from "../lib/api/session.ts";
import { fail, REPO_ROOT, scriptArgs } from "./_util.ts";

const flags = parseArgs({
  args: scriptArgs(),
  options: {
    quick: { type: "boolean", default: false },
    view: { type: "boolean", default: false },
    speed: { type: "boolean", default: false },
    baseline: { type: "string" },
    repeat: { type: "string" },
    verify: { type: "string" },
  },
});
const quick = flags.values.quick;
const viewBench = flags.values.view;
const speedOnly = flags.values.speed;
/** `--verify DATA_DIR`: only verify against sha256sum and the floor, on an existing data dir. */
const verifyOnly = flags.values.verify;
const repeats = Number(flags.values.repeat ?? (quick ? 1 : 3));
if (!Number.isInteger(repeats) || repeats < 1) {
  fail(`--repeat needs a whole number, got ${repeats}`);
}

interface RunFigures {
  seconds: number;
  /** User plus system CPU seconds of the CLI's process (0 where /usr/bin/time is missing). */
  cpuSeconds: number;
  requests: number;
  inFlightPeak: number;
  peakRssMb: number;
  status: number;
  /** Seconds from the first request's start to the last one's. */
  requestSpan: number;
}

/** Peak resident memory of a running process, from /proc (Linux); 0 where unavailable. */
async function peakRss(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    return Number(/^VmHWM:\s*(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** GNU time gives a child's CPU time and peak memory exactly; without it RSS is polled. */
const TIME_TOOL = await Deno.stat("/usr/bin/time").then(() => "/usr/bin/time", () => undefined);

/**
 * Runs a Deno program with the binary's flags in its own process (from the checkout `root`);
 * its time, CPU time and peak RSS.
 */
async function measured(
  args: string[],
  stdout: "null" | "piped" = "null",
  root = REPO_ROOT,
) {
  const timeFile = TIME_TOOL ? await Deno.makeTempFile({ prefix: "matterbak-bench-" }) : undefined;
  const command = ["run", ...RUNTIME_FLAGS, ...args];
  const started = performance.now();
  const child = new Deno.Command(timeFile ? TIME_TOOL as string : Deno.execPath(), {
    cwd: root,
    args: timeFile ? ["-f", "%U %S %M", "-o", timeFile, Deno.execPath(), ...command] : command,
    stdout,
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  let peak = 0;
  const poll = timeFile ? undefined : setInterval(async () => {
    peak = Math.max(peak, await peakRss(child.pid));
  }, 50);
  const output = await child.output();
  clearInterval(poll);
  const seconds = (performance.now() - started) / 1000;
  let cpu = 0;
  if (timeFile) {
    // The last line: GNU time puts "Command exited with non-zero status" before it.
    const line = (await Deno.readTextFile(timeFile)).trim().split("\n").at(-1) ?? "";
    const [user, system, maxKb] = line.split(" ").map(Number);
    cpu = (user ?? 0) + (system ?? 0);
    peak = (maxKb ?? 0) / 1024;
    await Deno.remove(timeFile);
  }
  // output.stdout throws when it was not piped.
  const out = stdout === "piped" ? new TextDecoder().decode(output.stdout) : "";
  return { code: output.code, seconds, cpu, peak, out };
}

async function runCli(
  world: World,
  user: string,
  token: string,
  config: unknown,
  args: string[],
  latencyMs: number,
  /** The folder of an earlier run, to update its backup; a new one by default. */
  dir?: string,
  /** The checkout whose main.ts runs (a baseline's); this one by default. */
  root = REPO_ROOT,
) {
  const sim = await startSimulator({ world, latencyMs });
  dir ??= await Deno.makeTempDir({ prefix: "matterbak-bench-" });
  try {
    await Deno.writeTextFile(join(dir, "c.json"), JSON.stringify({ user, token, url: sim.url }), {
      mode: 0o600,
    });
    await Deno.writeTextFile(join(dir, "ch.json"), JSON.stringify(config));
    const { code, seconds, cpu, peak } = await measured(
      [
        "main.ts",
        "--credentials",
        join(dir, "c.json"),
        "--channels",
        join(dir, "ch.json"),
        "-d",
        join(dir, "data"),
        "-o",
        join(dir, "out.zip"),
        "--report",
        join(dir, "report.json"),
        "--quiet",
        ...args,
      ],
      "null",
      root,
    );
    const starts = sim.requests.map((r) => r.startedAt);
    const figures: RunFigures = {
      seconds,
      cpuSeconds: cpu,
      requests: sim.requests.length,
      inFlightPeak: sim.inFlightPeak,
      peakRssMb: peak,
      status: code,
      requestSpan: (Math.max(...starts) - Math.min(...starts)) / 1000,
    };
    const report = JSON.parse(await Deno.readTextFile(join(dir, "report.json")));
    return { figures, dir, sim, report };
  } finally {
    await sim.close();
  }
}

/**
 * Requests the data needs at the least: lists end with a short page (no total is given),
 * post pages end when the server says there is nothing older; one request per file,
 * picture and image, and per edited post of one's own. A token run has no login or logout.
 */
function minimumRequests(world: World, meId: string): number {
  const listPages = (n: number) => Math.floor(n / 200) + 1;
  const postPages = (n: number) => Math.max(1, Math.ceil(n / 200));
  const mine = [...world.channels.values()].filter((c) =>
    world.isChannelMember(c.id, meId) && c.type !== "D" && c.type !== "G"
  );
  let total = 3 + 1; // me, teams, channels; the emoji list
  const users = new Set<string>([meId]);
  for (const team of world.teams.values()) {
    if (!world.isTeamMember(team.id, meId)) continue;
    total += listPages(world.teamMembers(team.id).length) + (world.teamIcon(team.id) ? 1 : 0);
    world.teamMembers(team.id).forEach((m) => users.add(m.user_id));
  }
  for (const channel of mine) {
    const live = world.channelPosts(channel.id).filter((p) => p.delete_at === 0);
    total += listPages(world.channelMembers(channel.id).length) + postPages(live.length);
    world.channelMembers(channel.id).forEach((m) => users.add(m.user_id));
    for (const post of live) {
      total += post.file_ids.length;
      users.add(post.user_id);
      // The edit history of each of one's own edited posts.
      if (post.user_id === meId && post.edit_at > 0) total++;
    }
  }
  total += Math.ceil(users.size / 200);
  total += [...users].filter((id) => (world.user(id).last_picture_update ?? 0) > 0).length;
  total += [...world.emojis.values()].filter((e) => e.delete_at === 0).length;
  return total;
}

/** Both exports of a backed-up data dir, each as its own process with the binary's flags. */
async function runExports(dir: string) {
  const data = join(dir, "data");
  const markdown = await measured([
    "main.ts",
    "export",
    "markdown",
    "-d",
    data,
    "-o",
    join(dir, "md"),
    "--quiet",
  ]);
  const bulk = await measured([
    "main.ts",
    "export",
    "mattermost",
    "-d",
    data,
    "-o",
    join(dir, "import.zip"),
    "--quiet",
  ]);
  const zipMb = (await Deno.stat(join(dir, "import.zip")).catch(() => ({ size: 0 }))).size / 1e6;
  note(
    `  export markdown: ${markdown.seconds.toFixed(1)} s, peak RSS ${
      markdown.peak.toFixed(0)
    } MB, exit ${markdown.code}`,
  );
  note(
    `  export mattermost (${zipMb.toFixed(1)} MB zip, self-checked): ${
      bulk.seconds.toFixed(1)
    } s, peak RSS ${bulk.peak.toFixed(0)} MB, exit ${bulk.code}`,
  );
}

function teamsConfig(world: World) {
  return { teams: Object.fromEntries([...world.teams.values()].map((t) => [t.name, {}])) };
}

/**
 * The longest chain of requests that depend on each other in a first backup: the account and
 * the channel list (which gives each channel's post count), the posts (every page can be asked
 * at once with page=N), then the users who wrote them, then their pictures.
 */
const CHAIN = 4;

/** The network floor: the dependent chain, plus every request spread over the concurrency. */
function networkFloorSeconds(requests: number, latency: number, concurrency: number): number {
  return CHAIN * latency + (requests * latency) / concurrency;
}

/** Runs a program to its end; its wall time in seconds. */
async function timed(program: string, args: string[], options: { cwd: string }): Promise<number> {
  const started = performance.now();
  const { code } = await new Deno.Command(program, { args, ...options, stdout: "null" }).output();
  if (code !== 0) fail(`${program} ${args.join(" ")} exited with ${code}`);
  return (performance.now() - started) / 1000;
}

/** The files of git revision `rev` in a temporary folder, with this checkout's npm packages. */
async function checkoutRevision(rev: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "matterbak-baseline-" });
  const archive = new Deno.Command("git", {
    args: ["-C", REPO_ROOT, "archive", "--format=tar", rev],
    stdout: "piped",
  }).spawn();
  const tar = new Deno.Command("tar", { args: ["-x", "-C", dir], stdin: "piped" }).spawn();
  await archive.stdout.pipeTo(tar.stdin);
  const [archived, extracted] = await Promise.all([archive.status, tar.status]);
  if (!archived.success || !extracted.success) fail(`cannot check out ${rev} into ${dir}`);
  await Deno.symlink(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? sorted[middle] as number
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** `min-max (median)`, or the one value; whole numbers (counts) without decimals. */
function range(values: readonly number[]): string {
  const digits = values.every(Number.isInteger) || Math.max(...values) >= 100 ? 0 : 2;
  const f = (n: number) => n.toFixed(digits);
  if (Math.min(...values) === Math.max(...values)) return f(values[0] as number);
  return `${f(Math.min(...values))}-${f(Math.max(...values))} (${f(median(values))})`;
}

function ratio(a: number, b: number): string {
  return (a / b).toFixed(2);
}

const results: string[] = [];
const note = (line: string) => {
  results.push(line);
  // deno-lint-ignore no-console
  console.log(line);
};

// 0. Fast network (issue 13): before and after in one run, repeated.
if (!viewBench && !verifyOnly) {
  const variants = [{ label: "this checkout", root: REPO_ROOT }];
  if (flags.values.baseline) {
    const rev = flags.values.baseline;
    variants.unshift({ label: `baseline ${rev}`, root: await checkoutRevision(rev) });
  }
  const big = () =>
    generateWorld(
      quick
        ? { teams: 1, channelsPerTeam: 4, postsPerChannel: 1000, filesEvery: 35, dms: 0, gms: 0 }
        : { teams: 2, channelsPerTeam: 5, postsPerChannel: 2000, filesEvery: 35, dms: 0, gms: 0 },
    );
  const small = () =>
    generateWorld({
      teams: 1,
      channelsPerTeam: 4,
      postsPerChannel: 500,
      filesEvery: 30,
      dms: 0,
      gms: 0,
    });
  const livePosts = (world: World) =>
    [...world.posts.values()].filter((p) => p.delete_at === 0 && p.original_id === "").length;
  const bigWorld = big();
  const smallWorld = small();
  const bigPosts = livePosts(bigWorld.world);
  const smallPosts = livePosts(smallWorld.world);
  const smallChannels = [...smallWorld.world.channels.values()].filter((c) =>
    smallWorld.world.isChannelMember(c.id, smallWorld.me.id)
  ).length;
  note(
    `fast network: a ${bigPosts}-post world (${bigWorld.world.files.size} files, no latency) and a ` +
      `${smallPosts}-post world (${smallWorld.world.files.size} files, ${smallChannels} channels, ` +
      `30 ms latency); --rate-limit 0, default --concurrency; ${repeats} repeat(s), ranges are ` +
      `min-max (median)`,
  );
  const noLimit = ["--rate-limit", "0"];
  type Sample = Record<string, number[]>;
  const samples = new Map(variants.map((v) => [v.label, {} as Sample]));
  const add = (label: string, key: string, value: number) =>
    ((samples.get(label) as Sample)[key] ??= []).push(value);
  let floorSeconds: number[] = [];
  let bigFiles = 0;
  for (let r = 0; r < repeats; r++) {
    for (const variant of variants) {
      const { label, root } = variant;
      // The world is fresh for each run: the simulator's state is the world's.
      const first = await runCli(
        big().world,
        bigWorld.me.username,
        bigWorld.token,
        teamsConfig(bigWorld.world),
        noLimit,
        0,
        undefined,
        root,
      );
      add(label, "bigFirst", first.figures.seconds);
      add(label, "bigFirstCpu", first.figures.cpuSeconds);
      add(label, "bigFirstRss", first.figures.peakRssMb);
      add(label, "bigFirstRequests", first.figures.requests);
      const again = await runCli(
        big().world,
        bigWorld.me.username,
        bigWorld.token,
        teamsConfig(bigWorld.world),
        noLimit,
        0,
        first.dir,
        root,
      );
      add(label, "bigNothingNew", again.figures.seconds);
      add(label, "bigNothingNewRequests", again.figures.requests);
      if (variant.root === REPO_ROOT) {
        // The floor of this disk, and the zip step alone against zip -r -1, on the same files.
        const floorDir = await Deno.makeTempDir({ prefix: "matterbak-bench-floor-" });
        const floor = await measured(
          ["scripts/bench_floor.ts", join(first.dir, "data"), floorDir],
          "piped",
        );
        await Deno.remove(floorDir, { recursive: true });
        const [files, seconds] = floor.out.trim().split(" ").map(Number);
        bigFiles = files ?? 0;
        floorSeconds = [...floorSeconds, seconds ?? NaN];
        const infoZip = await timed("zip", ["-q", "-r", "-1", join(first.dir, "info.zip"), "."], {
          cwd: join(first.dir, "data"),
        });
        add(label, "infoZip", infoZip);
        const zipStep = async (...args: string[]) => {
          const run = await measured(
            ["scripts/bench_zip.ts", join(first.dir, "data"), join(first.dir, "full.zip"), ...args],
            "piped",
          );
          return JSON.parse(run.out) as { seconds: number; unchanged: boolean; copied: number };
        };
        add(label, "zipFull", (await zipStep()).seconds);
        const unchanged = await zipStep();
        if (!unchanged.unchanged) {
          fail("the zip of an unchanged data dir was rewritten");
        }
        add(label, "zipUnchanged", unchanged.seconds);
        const touched = await zipStep("--touch", "0.01");
        add(label, "zipTouched", touched.seconds);
        add(label, "zipTouchedCopied", touched.copied);
      }
      await Deno.remove(first.dir, { recursive: true });

      const latent = await runCli(
        small().world,
        smallWorld.me.username,
        smallWorld.token,
        teamsConfig(smallWorld.world),
        noLimit,
        30,
        undefined,
        root,
      );
      add(label, "smallFirst", latent.figures.seconds);
      add(label, "smallFirstRequests", latent.figures.requests);
      add(label, "smallFirstInFlight", latent.figures.inFlightPeak);
      const quiet = await runCli(
        small().world,
        smallWorld.me.username,
        smallWorld.token,
        teamsConfig(smallWorld.world),
        noLimit,
        0,
        latent.dir,
        root,
      );
      add(label, "smallNothingNew", quiet.figures.seconds);
      add(label, "smallNothingNewRequests", quiet.figures.requests);
      await Deno.remove(latent.dir, { recursive: true });
    }
  }
  const current = samples.get("this checkout") as Sample;
  const before = flags.values.baseline ? samples.get(variants[0]!.label) : undefined;
  const values = (key: string, sample: Sample = current) =>
    sample[key] ?? [];
  const seconds = (key: string, sample: Sample) => range(values(key, sample));
  const byVariant = (key: string, unit = " s") =>
    variants.map((v) => `${v.label} ${seconds(key, samples.get(v.label) as Sample)}${unit}`)
      .join("; ");
  note(`  ${bigPosts}-post world, first backup with its zip: ${byVariant("bigFirst")}`);
  note(
    `    CPU (user + system): ${byVariant("bigFirstCpu")}; peak RSS: ${
      byVariant("bigFirstRss", " MB")
    }`,
  );
  if (before) {
    note(
      `    speed-up ${
        ratio(median(values("bigFirst", before)), median(values("bigFirst")))
      }x of the median ` +
        `(target at least 4x)`,
    );
  }
  const postsPerSecond = bigPosts / median(values("bigFirst"));
  const floorPostsPerSecond = bigPosts / median(floorSeconds);
  note(
    `    ${postsPerSecond.toFixed(0)} posts/s with the zip; a plain durable write of the same ` +
      `${bigFiles} files (the floor of this disk): ${range(floorSeconds)} s, ` +
      `${floorPostsPerSecond.toFixed(0)} posts/s; ratio ${
        ratio(floorPostsPerSecond, postsPerSecond)
      }x (target within 1.5x)`,
  );
  note(
    `  the same, update with nothing new: ${byVariant("bigNothingNew")}; requests ${
      byVariant("bigNothingNewRequests", "")
    }`,
  );
  note(
    `  the zip step alone, full build: ${seconds("zipFull", current)} s; zip -r -1 of the same ` +
      `folder ${seconds("infoZip", current)} s; ratio ${
        ratio(median(values("zipFull")), median(values("infoZip")))
      }x (target within 1.5x)`,
  );
  note(
    `  the zip step again, nothing changed: ${seconds("zipUnchanged", current)} s (left as it ` +
      `was); after 1 % of the posts changed: ${seconds("zipTouched", current)} s, ${
        seconds("zipTouchedCopied", current)
      } entries copied; ratio to the full build ${
        ratio(median(values("zipTouched")), median(values("zipFull")))
      }x (target at most 0.2x)`,
  );
  const smallMinimum = minimumRequests(smallWorld.world, smallWorld.me.id);
  const networkFloor = networkFloorSeconds(smallMinimum, 0.03, DEFAULT_CONNECTION.concurrency);
  note(
    `  ${smallPosts}-post world, 30 ms latency, first backup: ${byVariant("smallFirst")}; ` +
      `requests ${byVariant("smallFirstRequests", "")} (minimum ${smallMinimum}); at most ` +
      `${byVariant("smallFirstInFlight", "")} in flight`,
  );
  note(
    `    network floor at --concurrency ${DEFAULT_CONNECTION.concurrency}: ${
      networkFloor.toFixed(2)
    } s ` +
      `(${CHAIN} dependent requests + ${smallMinimum} requests / ${DEFAULT_CONNECTION.concurrency}, x 30 ms); ` +
      `ratio ${ratio(median(values("smallFirst")), networkFloor)}x (target within 1.3x)`,
  );
  note(
    `  the same, update with nothing new, no latency: ${byVariant("smallNothingNew")} ` +
      `(target under 1 s); requests ${byVariant("smallNothingNewRequests", "")} (target at most ` +
      `2 per channel, ${2 * smallChannels}, plus a constant)`,
  );
  for (const variant of variants) {
    if (variant.root !== REPO_ROOT) await Deno.remove(variant.root, { recursive: true });
  }
}

// 1. Speed and request count.
if (!viewBench && !speedOnly && !verifyOnly) {
  const size = quick
    ? { teams: 2, channelsPerTeam: 4, postsPerChannel: 300 }
    : { teams: 4, channelsPerTeam: 10, postsPerChannel: 1000 };
  const make = () => generateWorld({ ...size, filesEvery: 10, dms: 0, gms: 0 });
  const { world, me, token } = make();
  const posts = [...world.posts.values()].filter((p) =>
    p.delete_at === 0 && p.original_id === ""
  ).length;
  note(
    `speed: ${world.channels.size} channels, ${posts} posts, ${world.files.size} files, 30 ms latency, no rate limit`,
  );
  const parallel = await runCli(world, me.username, token, teamsConfig(world), [
    "--rate-limit",
    "0",
    "--concurrency",
    "8",
  ], 30);
  const minimum = minimumRequests(world, me.id);
  const serial = await runCli(make().world, me.username, token, teamsConfig(world), [
    "--rate-limit",
    "0",
    "--concurrency",
    "1",
  ], 30);
  const p = parallel.figures;
  const s = serial.figures;
  for (const [concurrency, f] of [[8, p], [1, s]] as const) {
    note(
      `  --concurrency ${concurrency}: ${f.seconds.toFixed(1)} s, ${f.requests} requests (${
        (f.requests / f.seconds).toFixed(0)
      }/s), peak in flight ${f.inFlightPeak}, peak RSS ${
        f.peakRssMb.toFixed(0)
      } MB, exit ${f.status}`,
    );
  }
  note(
    `  speed-up ${
      (s.seconds / p.seconds).toFixed(1)
    }x (target >= 4x); requests ${p.requests} vs minimum ${minimum}: +${
      ((p.requests / minimum - 1) * 100).toFixed(1)
    } % (target <= 10 %)`,
  );
  await runExports(parallel.dir);
  for (const run of [parallel, serial]) await Deno.remove(run.dir, { recursive: true });
}

// 2. The rate limit holds over a whole run.
if (!viewBench && !speedOnly && !verifyOnly) {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: quick ? 2 : 4,
    postsPerChannel: 200,
    filesEvery: 8,
    dms: 0,
    gms: 0,
  });
  const run = await runCli(
    world,
    me.username,
    token,
    teamsConfig(world),
    ["--rate-limit", "10"],
    0,
  );
  await Deno.remove(run.dir, { recursive: true });
  const { requestSpan, requests } = run.figures;
  // The yardstick is requests / 10 seconds. At most 10 start in any second, so the
  // shortest possible span is (N - 10) / 10 s; pauses where the client has nothing to ask add.
  const target = requests / 10;
  note(
    `rate: --rate-limit 10, ${requests} requests started over ${requestSpan.toFixed(1)} s; ` +
      `requests/10 = ${target.toFixed(1)} s: ${((requestSpan / target - 1) * 100).toFixed(1)} % ` +
      `(target within 10 %); the fastest the limit allows is ${
        ((requests - 10) / 10).toFixed(1)
      } s`,
  );
}

// 3. Memory, flat in channel size: one channel crawled and zipped, then updated.
for (
  const postsPerChannel of viewBench || speedOnly || verifyOnly
    ? []
    : quick
    ? [5_000, 20_000]
    : [50_000, 200_000]
) {
  const { world, me, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel,
    filesEvery: 0,
    dms: 0,
    gms: 0,
    users: 20,
  });
  const channel = [...world.channels.values()][0] as Channel;
  // The generator's reactions, edits and deletions all land in its last second, within the
  // 5-minute overlap of the next `since`; a quiet hour and one more post put them behind it.
  world.advance(3_600_000);
  world.addPost({ channelId: channel.id, userId: me.id, message: "before the first backup" });
  const args = ["--rate-limit", "0", "--skip-users", "--skip-emojis"];
  const first = await runCli(world, me.username, token, teamsConfig(world), args, 0);
  const zipped = (await Deno.stat(join(first.dir, "out.zip"))).size;
  // A day's changes (fewer than the 1,000 `since` returns): new posts and replies, edits and
  // deletions of old posts.
  const old = world.channelPosts(channel.id).filter((p) => p.delete_at === 0);
  world.advance(86_400_000);
  for (let i = 0; i < 150; i++) {
    const root = world.addPost({ channelId: channel.id, userId: me.id, message: `new ${i}` });
    world.addPost({ channelId: channel.id, userId: me.id, message: "reply", rootId: root.id });
  }
  for (let i = 0; i < 100; i++) {
    world.editPost((old[(i * 97) % old.length] as PostRecord).id, `edited ${i}`);
  }
  for (let i = 0; i < 20; i++) world.deletePost((old[(i * 89 + 1) % old.length] as PostRecord).id);
  const update = await runCli(world, me.username, token, teamsConfig(world), args, 0, first.dir);
  // The worst case: a crawl of the whole history that reconciles it with the stored posts.
  const recrawl = await runCli(
    world,
    me.username,
    token,
    teamsConfig(world),
    [
      ...args,
      "--update-old-posts",
    ],
    0,
    first.dir,
  );
  const read = await measured(["scripts/bench_reader.ts", join(first.dir, "data")], "piped");
  const [readPosts, readDamaged] = read.out.trim().split(" ");
  const verified = await verifyAgainstSha256sum(join(first.dir, "data"));
  const f = first.figures;
  note(
    `memory: one channel of ${postsPerChannel} posts crawled and zipped (${
      (zipped / 1e6).toFixed(0)
    } MB zip): ${f.seconds.toFixed(0)} s, ${f.requests} requests, peak RSS ${
      f.peakRssMb.toFixed(0)
    } MB (target < 150 MB), exit ${f.status}`,
  );
  const runs = [
    ["update with a day's changes (300 new posts, 100 edits, 20 deletions)", update],
    ["full re-crawl (--update-old-posts)", recrawl],
  ] as const;
  note(
    `  every post read back in time order through store/reader.ts: ${readPosts} posts, ${readDamaged} damaged, ${
      read.seconds.toFixed(1)
    } s, peak RSS ${read.peak.toFixed(0)} MB, exit ${read.code}`,
  );
  for (const [what, run] of runs) {
    const r = run.figures;
    note(
      `  ${what}, then zip: ${r.seconds.toFixed(0)} s, ${r.requests} requests, peak RSS ${
        r.peakRssMb.toFixed(0)
      } MB, exit ${r.status}`,
    );
  }
  note(`  ${verified}`);
  await runExports(first.dir);
  await Deno.remove(first.dir, { recursive: true });
}

/**
 * `matterbak verify` of a data dir against `sha256sum -c` of its manifest (the same files read
 * and hashed) and against the floor in Deno (scripts/bench_verify_floor.ts: the same files read
 * and hashed in as many workers, with the binary's flags and nothing else), three times each,
 * interleaved; the best of each, as machines are noisy, and CPU time (user and system).
 */
async function verifyAgainstSha256sum(data: string): Promise<string> {
  const verify: Array<Awaited<ReturnType<typeof measured>>> = [];
  const floor: Array<Awaited<ReturnType<typeof measured>>> = [];
  const sums: number[] = [];
  for (let i = 0; i < 3; i++) {
    verify.push(await measured(["main.ts", "verify", "-d", data], "piped"));
    floor.push(await measured(["scripts/bench_verify_floor.ts", data], "piped"));
    const started = performance.now();
    const sum = await new Deno.Command("sha256sum", {
      args: ["-c", "--quiet", ".matterbak/manifest.sha256"],
      cwd: data,
      stdout: "null",
      stderr: "null",
    }).output().catch(() => undefined);
    if (sum?.success) sums.push((performance.now() - started) / 1000);
  }
  const fastest = (runs: typeof verify) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const best = fastest(verify);
  const bestFloor = fastest(floor);
  const cpu = (runs: typeof verify) => range(runs.map((run) => run.cpu));
  const summary = best.out.trim().split("\n").at(-1);
  const sum = Math.min(...sums);
  const against = sums.length
    ? `; sha256sum -c of its manifest ${sum.toFixed(1)} s: ${
      (best.seconds / sum).toFixed(1)
    }x (target within 1.5x); the floor in Deno (read and hash only, same workers and flags) ${
      bestFloor.seconds.toFixed(1)
    } s (CPU ${cpu(floor)} s, ${(bestFloor.seconds / sum).toFixed(1)}x sha256sum); verify ${
      (best.seconds / bestFloor.seconds).toFixed(1)
    }x the floor`
    : "; sha256sum not found";
  return `matterbak verify: ${best.seconds.toFixed(1)} s (CPU ${cpu(verify)} s), peak RSS ${
    best.peak.toFixed(0)
  } MB, exit ${best.code} (${summary})${against}`;
}

if (verifyOnly) note(await verifyAgainstSha256sum(verifyOnly));

// 4. The website: build, size, rebuild after a change, search in a browser.
if (viewBench) {
  const sizes = quick
    ? { speed: { teams: 2, channelsPerTeam: 4, postsPerChannel: 300 }, big: 20_000 }
    : { speed: { teams: 4, channelsPerTeam: 10, postsPerChannel: 1000 }, big: 200_000 };
  const view = async (dir: string) => {
    const run = await measured(
      ["main.ts", "view", "-d", join(dir, "data"), "-o", join(dir, "site")],
      "piped",
    );
    const line = run.out.trim().split("\n").at(-1) ?? "";
    const written = /(\d+) pages and (\d+) threads written/.exec(line);
    const read = /posts \((\d+) read\)/.exec(line);
    return {
      ...run,
      pages: Number(written?.[1]),
      threads: Number(written?.[2]),
      read: Number(read?.[1]),
    };
  };
  const describe = (what: string, r: Awaited<ReturnType<typeof view>>) =>
    note(
      `  ${what}: ${
        r.seconds.toFixed(1)
      } s, ${r.read} posts read, ${r.pages} pages and ${r.threads} thread pages written, peak RSS ${
        r.peak.toFixed(0)
      } MB, exit ${r.code}`,
    );

  {
    const { world, me, token } = generateWorld({ ...sizes.speed, filesEvery: 10, dms: 0, gms: 0 });
    const backup = ["--rate-limit", "0", "--concurrency", "8"];
    const first = await runCli(world, me.username, token, teamsConfig(world), backup, 0);
    const posts = [...world.posts.values()].filter((p) => p.original_id === "").length;
    note(`view: ${world.channels.size} channels, ${posts} posts, ${world.files.size} files`);
    const build = await view(first.dir);
    describe("first build", build);
    const size = await siteSize(join(first.dir, "site"));
    note(
      `  site: ${size.files} files, ${(size.own / 1e6).toFixed(1)} MB written (pages ${
        (size.pages / 1e6).toFixed(1)
      } MB, search ${(size.search / 1e6).toFixed(1)} MB) + ${
        (size.linked / 1e6).toFixed(1)
      } MB of attachments and pictures hard-linked from the backup`,
    );
    const channel = [...world.channels.values()][0] as Channel;
    world.advance(3_600_000);
    for (let i = 0; i < 20; i++) {
      world.addPost({ channelId: channel.id, userId: me.id, message: `an update ${i}` });
    }
    await runCli(world, me.username, token, teamsConfig(world), backup, 0, first.dir);
    // A minute later, as after a cron run: file times within the clock's step are not trusted.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    describe("rebuild after 20 new posts in one channel", await view(first.dir));
    describe("rebuild with nothing changed", await view(first.dir));
    await Deno.remove(first.dir, { recursive: true });
  }

  {
    const { world, me, token } = generateWorld({
      teams: 1,
      channelsPerTeam: 1,
      postsPerChannel: sizes.big,
      filesEvery: 0,
      dms: 0,
      gms: 0,
      users: 20,
    });
    const channel = [...world.channels.values()][0] as Channel;
    const args = ["--rate-limit", "0", "--skip-emojis"];
    const first = await runCli(world, me.username, token, teamsConfig(world), args, 0);
    note(`view: one channel of ${sizes.big} posts`);
    const build = await view(first.dir);
    describe("first build", build);
    const size = await siteSize(join(first.dir, "site"));
    note(
      `  site: ${size.files} files, ${(size.own / 1e6).toFixed(0)} MB (pages ${
        (size.pages / 1e6).toFixed(0)
      } MB, search index ${(size.search / 1e6).toFixed(0)} MB)`,
    );
    const old = world.channelPosts(channel.id).filter((p) => p.delete_at === 0);
    world.advance(86_400_000);
    for (let i = 0; i < 150; i++) {
      const root = world.addPost({ channelId: channel.id, userId: me.id, message: `new ${i}` });
      world.addPost({ channelId: channel.id, userId: me.id, message: "reply", rootId: root.id });
    }
    for (let i = 0; i < 10; i++) {
      world.editPost((old[old.length - 1 - i * 7] as PostRecord).id, `edited ${i}`);
    }
    await runCli(world, me.username, token, teamsConfig(world), args, 0, first.dir);
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    describe("rebuild after 300 new posts and 10 recent edits", await view(first.dir));
    const search = await searchTimes(join(first.dir, "site"));
    note(
      `  search in chromium from file:// ("${search.first.query}", ${search.first.hits} hits): ${search.first.ms} ms from opening the page to the results (${search.first.shown}); next query ("${search.next.query}", ${search.next.hits} hits): ${search.next.ms} ms`,
    );
    await Deno.remove(first.dir, { recursive: true });
  }
}

/** Bytes the site's own files take, and those hard-linked from the data dir (several links). */
async function siteSize(root: string) {
  const out = { files: 0, own: 0, linked: 0, pages: 0, search: 0 };
  const walk = async (dir: string, top: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path, top || entry.name);
      else {
        const info = await Deno.stat(path);
        out.files++;
        if ((info.nlink ?? 1) > 1) out.linked += info.size;
        else out.own += info.size;
        if (top === "search") out.search += info.size;
        else if (entry.name.endsWith(".html")) out.pages += info.size;
      }
    }
  };
  await walk(root, "");
  return out;
}

/** Time from opening index.html?q= to the results, then of a second query, in chromium. */
async function searchTimes(site: string) {
  const { default: puppeteer } = await import("puppeteer-core");
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
    headless: true,
  });
  try {
    const page = await browser.newPage();
    const status = async () =>
      await page.$eval("#search-status", (e) => e.textContent ?? "") as string;
    const answered = '/messages? \\(/.test(document.getElementById("search-status").textContent)';
    const started = performance.now();
    await page.goto(`file://${site}/index.html?q=incident`);
    await page.waitForFunction(answered, { timeout: 60_000 });
    const firstMs = Math.round(performance.now() - started);
    const first = { query: "incident", ms: firstMs, shown: await status(), hits: 0 };
    first.hits = Number(/^(\d+)/.exec(first.shown)?.[1]);
    await page.$eval("#search-status", (e) => e.textContent = "");
    const again = performance.now();
    await page.type("#q", " 1999");
    await page.waitForFunction(answered, { timeout: 60_000 });
    const shown = await status();
    const next = {
      query: "incident 1999",
      ms: Math.round(performance.now() - again),
      hits: Number(/^(\d+)/.exec(shown)?.[1]),
    };
    return { first, next };
  } finally {
    await browser.close();
  }
}

await Deno.mkdir(join(REPO_ROOT, ".bench"), { recursive: true });
await Deno.writeTextFile(
  join(
    REPO_ROOT,
    ".bench",
    `${viewBench ? "view-" : verifyOnly ? "verify-" : ""}${quick ? "quick" : "results"}.txt`,
  ),
  results.join("\n") + "\n",
);
