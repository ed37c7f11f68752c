/**
 * End-to-end test harness: a simulator on 127.0.0.1, config files in a temporary folder, and
 * the CLI's `main` run in-process with its output captured.
 */
import { join, relative } from "node:path";
import { type BackupDeps, runBackup } from "../lib/sync/backup.ts";
import type { RunSummary } from "../lib/util/events.ts";
import { main, type MainDeps } from "../lib/cli/main.ts";
import { parseBackupArgs } from "../lib/cli/commands/backup.ts";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import type { ChannelsConfig } from "../lib/config/channels.ts";
import { type Simulator, type SimulatorOptions, startSimulator } from "./simulator/server.ts";
import { type GenerateOptions, generateWorld } from "./simulator/generate.ts";
import { type Channel, type User, World } from "./simulator/world.ts";
import { REPO_ROOT } from "../scripts/_util.ts";

export interface RunResult {
  status: number;
  out: string[];
  err: string[];
}

export interface Harness {
  sim: Simulator;
  world: World;
  dir: string;
  dataDir: string;
  zipPath: string;
  credentialsPath: string;
  channelsPath: string;
  /** The options naming the config files, the data dir and the zip of this harness. */
  configArgs: string[];
  /** The CLI in-process; `deps` can send it signals and see the steps of its writes. */
  run(
    extraArgs?: string[],
    env?: Record<string, string>,
    deps?: Pick<MainDeps, "signals" | "fsRecorder" | "clock">,
  ): Promise<RunResult>;
  /**
   * Runs the backup in-process with a signal the test controls (to stop it at a chosen point),
   * a recorder of the steps of its writes, a listener for its events, or a clock.
   */
  runInProcess(
    deps: Partial<Pick<BackupDeps, "signal" | "fsRecorder" | "emit" | "clock">>,
    extraArgs?: string[],
  ): Promise<RunSummary>;
  writeChannels(config: ChannelsConfig): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions extends Omit<SimulatorOptions, "world"> {
  world: World;
  credentials: Record<string, string>;
  channels: ChannelsConfig;
  /** Options passed on every run (default: no rate limit, quick retries). */
  baseArgs?: string[];
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const { credentials, channels, baseArgs, ...simOptions } = options;
  const sim = await startSimulator(simOptions);
  const dir = await Deno.makeTempDir({ prefix: "matterbak-test-" });
  const credentialsPath = join(dir, "credentials.json");
  const channelsPath = join(dir, "channels.json");
  const dataDir = join(dir, "data");
  const zipPath = join(dir, "backup.zip");
  const url = credentials.url ?? `${sim.url}/api`;
  await Deno.writeTextFile(credentialsPath, JSON.stringify({ ...credentials, url }), {
    mode: 0o600,
  });
  const writeChannels = (config: ChannelsConfig) =>
    Deno.writeTextFile(channelsPath, JSON.stringify(config));
  await writeChannels(channels);
  const configArgs = [
    "--credentials",
    credentialsPath,
    "--channels",
    channelsPath,
    "--data-dir",
    dataDir,
    "--output-zip",
    zipPath,
  ];
  const args = [...configArgs, ...(baseArgs ?? ["--rate-limit", "0"])];
  return {
    sim,
    world: options.world,
    dir,
    dataDir,
    zipPath,
    credentialsPath,
    channelsPath,
    configArgs,
    writeChannels,
    async run(extraArgs = [], env = {}, deps = {}) {
      const out: string[] = [];
      const err: string[] = [];
      const status = await main([...args, ...extraArgs], {
        ...deps,
        env: (name) => env[name],
        output: { out: (line) => out.push(line), err: (line) => err.push(line) },
      });
      return { status, out, err };
    },
    runInProcess(deps, extraArgs = []) {
      return runBackup(parseBackupArgs([...args, ...extraArgs]), {
        env: {},
        emit: () => {},
        ...deps,
      });
    },
    async close() {
      await sim.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Runs `main.ts` as its own process with the binary's permissions. With `timeoutMs`, a process
 * still running then is killed (SIGKILL: a process stuck in a system call ignores SIGTERM)
 * and the call fails: a test of "never hangs" fails instead of hanging the suite.
 */
export async function runCliProcess(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs?: number,
): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    cwd: REPO_ROOT,
    args: ["run", ...RUNTIME_FLAGS, "main.ts", ...args],
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const output = await child.output().finally(() => clearTimeout(timer));
  const lines = (bytes: Uint8Array) =>
    new TextDecoder().decode(bytes).split("\n").filter((l) => l !== "");
  const err = lines(output.stderr);
  if (timedOut) {
    throw new Error(`matterbak ${args[0]} still ran after ${timeoutMs} ms:\n${err.join("\n")}`);
  }
  return { status: output.code, out: lines(output.stdout), err };
}

/**
 * A generated world backed up by its account with a token; by default the config selects
 * every channel of team-0.
 */
export async function startGenerated(
  worldOptions: GenerateOptions,
  options: Partial<Omit<HarnessOptions, "world">> = {},
): Promise<{ h: Harness; world: World; me: User; token: string }> {
  const generated = generateWorld(worldOptions);
  return { ...generated, h: await harnessFor(generated, options) };
}

/** A harness for a world made beforehand, with the same defaults as `startGenerated`. */
export function harnessFor(
  { world, me, token }: { world: World; me: User; token: string },
  options: Partial<Omit<HarnessOptions, "world">> = {},
): Promise<Harness> {
  return startHarness({
    credentials: { user: me.username, token },
    channels: { teams: { "team-0": {} } },
    ...options,
    world,
  });
}

export type Generated = Awaited<ReturnType<typeof startGenerated>>;

/**
 * `test` against a world of one team with one channel of `posts` posts and nothing else; the
 * harness is closed afterwards whatever happens.
 */
export async function withOneChannel(
  posts: number,
  test: (generated: Generated) => Promise<void>,
  options: Partial<Omit<HarnessOptions, "world">> = {},
): Promise<void> {
  const generated = await startGenerated(
    { teams: 1, channelsPerTeam: 1, postsPerChannel: posts, dms: 0, gms: 0 },
    options,
  );
  try {
    await test(generated);
  } finally {
    await generated.h.close();
  }
}

/**
 * alice (the backup's account, logging in with a token) and bob in the channel "general" of
 * the team "eng", and nothing else; the config selects the team.
 */
export async function startAliceAndBob(
  options: Partial<Omit<HarnessOptions, "world">> = {},
): Promise<{ h: Harness; world: World; me: User; bob: User; channel: Channel }> {
  const world = new World();
  const me = world.addUser({ username: "alice" });
  const bob = world.addUser({ username: "bob" });
  const team = world.addTeam({ name: "eng" });
  const channel = world.addChannel({ teamId: team.id, name: "general", type: "O" });
  for (const user of [me, bob]) {
    world.addTeamMember(team.id, user.id);
    world.addChannelMember(channel.id, user.id);
  }
  const h = await startHarness({
    world,
    credentials: { user: me.username, token: world.addPersonalAccessToken(me.id) },
    channels: { teams: { eng: {} } },
    ...options,
  });
  return { h, world, me, bob, channel };
}

/** Every file below `root` as a relative `/`-separated path. */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else out.push(relative(root, path).split("\\").join("/"));
    }
  };
  await walk(root);
  return out.sort();
}

export async function readJsonFile<T = Record<string, unknown>>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path)) as T;
}

/**
 * True where a test can mount a tmpfs (root on Linux, as in our CI): what a full disk or a
 * read-only file system does can only be seen on a real one, and root bypasses permissions.
 */
export async function canMount(): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  const dir = await Deno.makeTempDir();
  try {
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
      stderr: "null",
    })
      .output();
    if (!mount.success) return false;
    await new Deno.Command("umount", { args: [dir] }).output();
    return true;
  } catch {
    return false;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export interface Child {
  process: Deno.ChildProcess;
  stderr: Promise<string>;
}

/**
 * Starts the CLI as its own process on the harness (posts and files only), to be signalled or
 * killed mid-run; stderr is collected.
 */
export function spawnCli(h: Harness, extra: string[] = []): Child {
  const command = new Deno.Command(Deno.execPath(), {
    cwd: REPO_ROOT,
    args: [
      "run",
      ...RUNTIME_FLAGS,
      "main.ts",
      ...h.configArgs,
      "--rate-limit",
      "0",
      "--skip-users",
      "--skip-emojis",
      ...extra,
    ],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
  });
  const process = command.spawn();
  return { process, stderr: new Response(process.stderr).text() };
}

/** Polls `condition` until it holds, or fails naming `what`. */
export async function waitFor(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!await condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
