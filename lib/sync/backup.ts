/**
 * One backup run: read the config, log in, select channels, then back up teams, channels,
 * users and emoji into the data dir, and zip it. Everything the run touches comes in through
 * `BackupDeps`, so tests drive it with a simulator, a fake clock and their own signal.
 */
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { ApiClient } from "../api/client.ts";
import type { FsRecorder } from "../store/atomic_write.ts";
import {
  findBase,
  readChannelState,
  readRunState,
  relPathFromString,
  writeRunState,
} from "../store/state.ts";
import { type ChannelTarget, syncChannel } from "./channel_sync.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { type ChannelsConfig, loadConfig, type SecretEnv } from "../config/config.ts";
import { DataDir, type RelPath } from "../store/data_dir.ts";
import { describeError, isFatal, StorageError, UsageError } from "../util/errors.ts";
import {
  addCounts,
  emptyCounts,
  type EventSink,
  type Failure,
  type RunSummary,
} from "../util/events.ts";
import { DIRS, groupLabel } from "../store/layout.ts";
import { isArchivedPostsHidden, MattermostApi } from "../api/mattermost.ts";
import type { Channel, Member, Team, User } from "../model/records.ts";
import { backupEmojis, backupTeam, backupUsers, type RecordsContext } from "./records.ts";
import { DEFAULT_RETRY_POLICY } from "../api/retry.ts";
import { acquireRunLock } from "../store/run_lock.ts";
import { dmPartnerId, selectChannels, type SelectedChannel } from "./selection.ts";
import { mapPooled } from "../util/semaphore.ts";
import { clientCredentials, closeSession, openSession } from "../api/session.ts";
import { writeZip } from "../zip/archive.ts";

export interface BackupOptions {
  credentials: string;
  channels: string;
  dataDir: string;
  /** Zip path; undefined means `matterbak_<user>.zip` in the current directory. */
  outputZip: string | undefined;
  updateOldPosts: boolean;
  skipDirect: boolean;
  skipGroups: boolean;
  skipTeams: boolean;
  skipUsers: boolean;
  skipUserImages: boolean;
  skipEmojis: boolean;
  rateLimit: number;
  initialJitter: number;
  stepJitter: number;
  concurrency: number;
  retries: number;
  timeoutSeconds: number;
  mfaCode: string | undefined;
}

export interface BackupDeps {
  env: SecretEnv;
  emit: EventSink;
  fetch?: typeof fetch;
  clock?: Clock;
  random?: () => number;
  signal?: AbortSignal;
  /** Sees every step of every write to the data dir (tests of durability and order). */
  fsRecorder?: FsRecorder;
}

export function defaultZipPath(user: string): string {
  return `matterbak_${user.replace(/[^A-Za-z0-9._-]/g, "_")}.zip`;
}

async function openDataDir(path: string, recorder?: FsRecorder): Promise<DataDir> {
  const dataDir = new DataDir(path, recorder);
  try {
    const info = await Deno.stat(dataDir.root);
    if (!info.isDirectory) {
      throw new StorageError(`The data dir ${dataDir.root} is not a directory`);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      if (error instanceof StorageError) throw error;
      throw new StorageError(`Cannot use the data dir ${dataDir.root}: ${describeError(error)}`);
    }
  }
  try {
    await dataDir.ensureDir([DIRS.state]);
  } catch (error) {
    throw new StorageError(`Cannot write to the data dir ${dataDir.root}: ${describeError(error)}`);
  }
  return dataDir;
}

/** The zip must be writable where asked, and not inside the data dir it is made from. */
async function checkZipPath(zipPath: string, dataRoot: string): Promise<string> {
  const rel = relative(dataRoot, zipPath);
  if (rel === "" || (!rel.startsWith("..") && !isAbsolute(rel))) {
    throw new UsageError(
      `--output-zip ${zipPath} is inside the data dir ${dataRoot}; put it elsewhere`,
    );
  }
  const info = await Deno.stat(zipPath).catch(() => undefined);
  if (info?.isDirectory) throw new UsageError(`--output-zip ${zipPath} is a directory`);
  const parent = await Deno.stat(dirname(zipPath)).catch(() => undefined);
  if (!parent?.isDirectory) {
    throw new StorageError(`The folder for --output-zip ${zipPath} does not exist`);
  }
  return zipPath;
}

export async function runBackup(options: BackupOptions, deps: BackupDeps): Promise<RunSummary> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const started = clock.now();
  const { emit, signal } = deps;
  const { credentials, channels: config, warnings } = await loadConfig(
    options,
    deps.env,
    options.mfaCode,
  );
  for (const message of warnings) emit({ type: "warning", message });
  const dataDir = await openDataDir(options.dataDir, deps.fsRecorder);
  const zipPath = await checkZipPath(
    resolve(options.outputZip ?? defaultZipPath(credentials.user)),
    dataDir.root,
  );
  const lock = await acquireRunLock(dataDir);
  try {
    const removed = await dataDir.removeStaleTempFiles();
    if (removed > 0) {
      emit({
        type: "info",
        message: `Removed ${removed} temporary file(s) left by an earlier run`,
      });
    }
    const jitter = async (seconds: number, what: string) => {
      if (seconds <= 0) return;
      const ms = random() * seconds * 1000;
      emit({ type: "info", message: `${what} jitter: sleeping for ${(ms / 1000).toFixed(2)} s` });
      await clock.sleep(ms, signal);
    };
    await jitter(options.initialJitter, "Initial");

    const client = new ApiClient({
      serverUrl: credentials.url,
      credentials: clientCredentials(credentials),
      rateLimit: options.rateLimit,
      concurrency: options.concurrency,
      retry: { ...DEFAULT_RETRY_POLICY, retries: options.retries },
      timeoutMs: options.timeoutSeconds * 1000,
      clock,
      random,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
      ...(signal ? { signal } : {}),
      onEvent: (event) => {
        if (event.type === "retry") emit(event);
        else if (event.type === "request") emit({ type: "request" });
      },
    });
    const api = new MattermostApi(client);
    emit({
      type: "phase",
      phase: `Logging in to ${client.root} as ${client.loginId ?? credentials.user}`,
    });
    const session = await openSession(api, credentials, options.credentials);
    emit({ type: "info", message: `Logged in as user ${session.me.username} (${session.me.id})` });
    let summary: RunSummary;
    try {
      summary = await backupAll({
        api,
        client,
        dataDir,
        config,
        options,
        me: session.me,
        emit,
        clock,
        jitter: () => jitter(options.stepJitter, "Step"),
        ...(signal ? { signal } : {}),
      });
    } finally {
      await closeSession(api).catch((error) =>
        emit({ type: "warning", message: `Logout failed: ${describeError(error)}` })
      );
    }
    emit({ type: "phase", phase: `Writing ${zipPath}` });
    summary.zip = {
      path: zipPath,
      ...await writeZip(dataDir, zipPath, {
        exclude: [resolve(options.credentials), resolve(options.channels), zipPath],
        ...(signal ? { signal } : {}),
      }),
    };
    summary.requests = client.stats.requests;
    summary.retries = client.stats.retries;
    summary.bytes = client.stats.bytes;
    summary.durationMs = clock.now() - started;
    return summary;
  } finally {
    lock.release();
  }
}

interface RunContext {
  api: MattermostApi;
  client: ApiClient;
  dataDir: DataDir;
  config: ChannelsConfig;
  options: BackupOptions;
  me: User;
  emit: EventSink;
  clock: Clock;
  signal?: AbortSignal;
  jitter: () => Promise<void>;
}

/** Why an archived channel whose posts the server refuses is skipped, not failed. */
const ARCHIVED_HIDDEN_WHY =
  "the server hides the posts of archived channels (TeamSettings.ExperimentalViewArchivedChannels " +
  "is off; a system admin can turn it on)";

async function backupAll(ctx: RunContext): Promise<RunSummary> {
  const { api, dataDir, options, me, emit, signal } = ctx;
  const failures: Failure[] = [];
  const records: RecordsContext = {
    api,
    dataDir,
    concurrency: options.concurrency,
    emit,
    failures,
    ...(signal ? { signal } : {}),
  };

  emit({ type: "phase", phase: "Listing teams and channels" });
  const teams = await api.teamsForUser(me.id);
  const allChannels = await api.channelsForUser(me.id, teams);
  const { users: selectionUsers, groupMembers } = await resolveDirectAndGroups(ctx, allChannels);
  const usernames = new Map([...selectionUsers.values()].map((u) => [u.id, u.username]));
  usernames.set(me.id, me.username);
  const selection = selectChannels({
    meId: me.id,
    teams,
    channels: allChannels,
    usernames,
    groupMembers: new Map(
      [...groupMembers].map(([id, members]) => [id, members.map((m) => m.user_id)]),
    ),
    config: ctx.config,
    skip: { teams: options.skipTeams, direct: options.skipDirect, groups: options.skipGroups },
  });
  for (const message of selection.unmatched) emit({ type: "warning", message });
  emit({ type: "channels-selected", total: selection.channels.length });

  const neededUsers = new Set<string>([me.id]);
  const teamBases = new Map<string, string>();
  const selectedTeams = [...new Map(
    selection.channels.filter((s) => s.team).map((s) => [s.team?.id, s.team as Team]),
  ).values()];
  if (selectedTeams.length > 0) {
    emit({ type: "phase", phase: `Backing up ${selectedTeams.length} team(s)` });
  }
  for (const team of selectedTeams) {
    try {
      const { base, memberIds } = await backupTeam(records, team);
      teamBases.set(team.id, base);
      memberIds.forEach((id) => neededUsers.add(id));
    } catch (error) {
      if (isFatal(error, signal)) throw error;
      records.failures.push({ what: `team ${team.name}`, why: describeError(error) });
      emit({ type: "failure", failure: records.failures.at(-1) as Failure });
    }
  }
  await ctx.jitter();

  emit({ type: "phase", phase: `Backing up ${selection.channels.length} channel(s)` });
  const counts = emptyCounts();
  const channelStats = { total: selection.channels.length, unchanged: 0, skipped: 0, failed: 0 };
  const skipped: Failure[] = [];
  const runnable = selection.channels.filter((s) => !s.team || teamBases.has(s.team.id));
  channelStats.failed += selection.channels.length - runnable.length;
  await mapPooled(runnable, options.concurrency, async (selected) => {
    const label = channelLabel(selected);
    try {
      const target = await channelTarget(ctx, selected, label, teamBases, groupMembers);
      target.members.forEach((m) => neededUsers.add(m.user_id));
      const result = await syncChannel(target, {
        api,
        dataDir,
        clock: ctx.clock,
        updateOldPosts: options.updateOldPosts,
        concurrency: options.concurrency,
        emit,
        ...(signal ? { signal } : {}),
      });
      result.userIds.forEach((id) => neededUsers.add(id));
      failures.push(...result.failures);
      addCounts(counts, result.counts);
      if (result.unchanged) channelStats.unchanged++;
      emit({ type: "channel-done", label, counts: result.counts, unchanged: result.unchanged });
    } catch (error) {
      if (isFatal(error, signal)) throw error;
      if (isArchivedPostsHidden(error)) {
        channelStats.skipped++;
        const skip = { what: `channel ${label}`, why: ARCHIVED_HIDDEN_WHY };
        skipped.push(skip);
        emit({ type: "warning", message: `Skipped archived ${skip.what}: ${skip.why}` });
        return;
      }
      channelStats.failed++;
      const failure = { what: `channel ${label}`, why: describeError(error) };
      failures.push(failure);
      emit({ type: "failure", failure });
    }
  });
  await ctx.jitter();

  let users = 0;
  let pictures = 0;
  if (!options.skipUsers) {
    emit({ type: "phase", phase: `Backing up users` });
    const runState = await readRunState(dataDir);
    const result = await backupUsers(
      records,
      neededUsers,
      new Map([[me.id, me], ...selectionUsers]),
      runState.usersWatermark,
      {
        skipImages: options.skipUserImages,
      },
    );
    users = result.written;
    pictures = result.pictures;
    // The watermark vouches for the user records: their renames must be durable first.
    await dataDir.syncDir([DIRS.users]);
    await writeRunState(dataDir, { ...runState, usersWatermark: result.watermark });
    await ctx.jitter();
  }

  let emojis: number | undefined;
  if (!options.skipEmojis) {
    emit({ type: "phase", phase: "Backing up custom emoji" });
    try {
      const result = await backupEmojis(records);
      if (result === undefined) {
        emit({ type: "info", message: "Custom emoji are disabled on this server" });
      }
      emojis = result?.images;
    } catch (error) {
      if (isFatal(error, signal)) throw error;
      failures.push({ what: "custom emoji", why: describeError(error) });
      emit({ type: "failure", failure: failures.at(-1) as Failure });
    }
    await ctx.jitter();
  }

  return {
    counts,
    channels: channelStats,
    users,
    pictures,
    emojis,
    requests: 0,
    retries: 0,
    bytes: 0,
    failures,
    skipped,
    unmatched: selection.unmatched,
    zip: undefined,
    durationMs: 0,
  };
}

/** Users needed to name DMs and GMs, and each GM's member ids (only what the config asks). */
async function resolveDirectAndGroups(
  ctx: RunContext,
  channels: readonly Channel[],
): Promise<{ users: Map<string, User>; groupMembers: Map<string, Member[]> }> {
  const { api, config, options, me } = ctx;
  const ids = new Set<string>();
  if (config.direct && !options.skipDirect) {
    for (const channel of channels.filter((c) => c.type === "D")) {
      const partner = dmPartnerId(channel, me.id);
      if (partner) ids.add(partner);
    }
  }
  const groupMembers = new Map<string, Member[]>();
  if (config.groups && !options.skipGroups) {
    const groups = channels.filter((c) => c.type === "G");
    await mapPooled(groups, options.concurrency, async (channel) => {
      const members = await api.channelMembers(channel.id, channel.display_name);
      groupMembers.set(channel.id, members);
      members.forEach((m) => ids.add(m.user_id));
    });
  }
  ids.delete(me.id);
  const users = new Map((await api.usersByIds([...ids])).map((u) => [u.id, u]));
  return { users, groupMembers };
}

function channelLabel(selected: SelectedChannel): string {
  if (selected.kind === "teams") return `${selected.team?.name}/${selected.channel.name}`;
  if (selected.kind === "direct") return `@${selected.label}`;
  return `group(${[selected.label].flat().join(", ")})`;
}

async function channelTarget(
  ctx: RunContext,
  selected: SelectedChannel,
  label: string,
  teamBases: ReadonlyMap<string, string>,
  groupMembers: ReadonlyMap<string, Member[]>,
): Promise<ChannelTarget> {
  const { api, dataDir } = ctx;
  const { channel } = selected;
  const state = await readChannelState(dataDir, channel.id);
  let parent: RelPath;
  let name: string;
  if (selected.kind === "teams") {
    parent = [DIRS.teams, teamBases.get(selected.team?.id ?? "") as string];
    name = channel.name;
  } else if (selected.kind === "direct") {
    parent = [DIRS.direct];
    name = selected.label as string;
  } else {
    parent = [DIRS.groups];
    name = groupLabel([selected.label].flat());
  }
  // A state file that points at an existing folder wins: the channel may have been renamed,
  // or a group converted to a private channel; its history stays where it is.
  const stateDir = state ? relPathFromString(state.dir) : undefined;
  const stateUsable = stateDir !== undefined && await dataDir.exists(stateDir);
  const base = stateUsable
    ? (stateDir.at(-1) as string)
    : await findBase(dataDir, parent, channel.id, name);
  const members = groupMembers.get(channel.id) ?? await api.channelMembers(channel.id, label);
  return {
    channel,
    label,
    parent: stateUsable ? stateDir.slice(0, -1) : parent,
    base,
    members,
    state: stateUsable ? state : undefined,
  };
}
