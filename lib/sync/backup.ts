/**
 * One backup run: read the config, log in, select channels, then back up teams, channels,
 * users and emoji into the data dir, and zip it. Everything the run touches comes in through
 * `BackupDeps`, so tests drive it with a simulator, a fake clock and their own signal.
 */
import { resolve } from "node:path";
import type { ApiClient } from "../api/client.ts";
import { isArchivedPostsHidden, type MattermostApi } from "../api/mattermost.ts";
import { apiFor, closeSession, openSession } from "../api/session.ts";
import type { ChannelsConfig } from "../config/channels.ts";
import type { Credentials, SecretEnv } from "../config/credentials.ts";
import { loadConfig } from "../config/load.ts";
import type { Team, User } from "../model/records.ts";
import type { FsRecorder } from "../store/atomic_write.ts";
import { DataDir } from "../store/data_dir.ts";
import { DIRS } from "../store/layout.ts";
import { Manifest } from "../store/manifest.ts";
import { acquireRunLock } from "../store/run_lock.ts";
import { readChannelState, readRunState, writeRunState } from "../store/state.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { describeError, isFatal, OutputError } from "../util/errors.ts";
import {
  addCounts,
  emptyCounts,
  type EventSink,
  type Failure,
  type RunSummary,
} from "../util/events.ts";
import { mapPooled } from "../util/semaphore.ts";
import { checkZipPath, writeZip } from "../zip/archive.ts";
import { syncChannel } from "./channel_sync.ts";
import { EditHistorySource } from "./edit_history.ts";
import { channelLabel, channelTarget } from "./channel_target.ts";
import { FailureLog } from "./failures.ts";
import { listConversations, selectionBasis } from "./listing.ts";
import { backupEmojis, backupTeam, backupUsers, type RecordsContext } from "./records.ts";
import { repairFromList } from "./repair.ts";
import { selectChannels, type SelectedChannel } from "./selection.ts";
import { planChannel, postsToFetch } from "./sync_plan.ts";
import type { SecretRegistry } from "../util/secrets.ts";

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
  /** Where failed items are recorded; the caller's, to report them after an interruption. */
  failures?: FailureLog;
  /** Where the API client registers the run's secrets, for whatever prints or reports. */
  secrets?: SecretRegistry;
}

export function defaultZipPath(user: string): string {
  return `matterbak_${user.replace(/[^A-Za-z0-9._-]/g, "_")}.zip`;
}

export async function runBackup(options: BackupOptions, deps: BackupDeps): Promise<RunSummary> {
  const clock = deps.clock ?? systemClock;
  const started = clock.now();
  const { emit, signal } = deps;
  const { credentials, channels: config, warnings } = await loadConfig(
    options,
    deps.env,
    options.mfaCode,
  );
  for (const message of warnings) emit({ type: "warning", message });
  const dataDir = await DataDir.open(options.dataDir, deps.fsRecorder);
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
    const start = await Manifest.open(dataDir, {
      concurrency: options.concurrency,
      ...(signal ? { signal } : {}),
    });
    const manifest = start.manifest;
    dataDir.sink = manifest;
    if (start.hashed > 0) {
      emit({
        type: "info",
        message: start.reason === "no-manifest"
          ? `Recorded the SHA-256 of the ${start.hashed} file(s) already in the data dir in its ` +
            `manifest (once: it had none, as matterbak and earlier versions kept none)`
          : `Recorded the SHA-256 of ${start.hashed} file(s) that an interrupted run changed`,
      });
    }
    try {
      const summary = await runPhases(
        options,
        deps,
        { dataDir, manifest, credentials, config },
        zipPath,
      );
      summary.manifest = { hashed: start.hashed, reason: start.reason };
      summary.durationMs = clock.now() - started;
      return summary;
    } catch (error) {
      await manifest.close().catch(() => manifest.abandon());
      throw error;
    }
  } finally {
    lock.release();
  }
}

/** Login, the phases and the zip, once the data dir is locked and its manifest open. */
async function runPhases(
  options: BackupOptions,
  deps: BackupDeps,
  run: { dataDir: DataDir; manifest: Manifest; credentials: Credentials; config: ChannelsConfig },
  zipPath: string,
): Promise<RunSummary> {
  const { dataDir, manifest, credentials, config } = run;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const { emit, signal } = deps;
  const jitter = async (seconds: number, what: string) => {
    if (seconds <= 0) return;
    const ms = random() * seconds * 1000;
    emit({ type: "info", message: `${what} jitter: sleeping for ${(ms / 1000).toFixed(2)} s` });
    await clock.sleep(ms, signal);
  };
  await jitter(options.initialJitter, "Initial");

  const failures = deps.failures ?? new FailureLog(emit, signal);
  const malformed = new Set<string>();
  const api = apiFor(credentials, {
    ...options,
    clock,
    random,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(signal ? { signal } : {}),
    ...(deps.secrets ? { secrets: deps.secrets } : {}),
    onEvent: (event) => {
      if (event.type === "retry") emit(event);
      else if (event.type === "request") emit({ type: "request" });
    },
    // Each record the server got wrong is one failed item (once, however often it is sent);
    // the rest of its answer is kept.
    onMalformed: (failure) => {
      const key = `${failure.what}\n${failure.why}`;
      if (malformed.has(key)) return;
      malformed.add(key);
      failures.add(failure);
    },
  });
  const client = api.client;
  emit({
    type: "phase",
    phase: `Logging in to ${client.root} as ${client.loginId ?? credentials.user}`,
  });
  const session = await openSession(api, credentials, options.credentials);
  emit({ type: "info", message: `Logged in as user ${session.me.username} (${session.me.id})` });
  let summary: RunSummary;
  try {
    summary = await backupAll({
      failures,
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
  // The manifest is complete before the zip is written: the zip holds it too.
  await manifest.close();
  emit({ type: "phase", phase: `Writing ${zipPath}` });
  try {
    summary.zip = {
      path: zipPath,
      ...await writeZip(dataDir, zipPath, {
        exclude: [resolve(options.credentials), resolve(options.channels), zipPath],
        onSkip: (path, reason) =>
          emit({ type: "warning", message: `Left out of the zip: ${path}: ${reason}` }),
        ...(signal ? { signal } : {}),
      }),
    };
  } catch (error) {
    // The data dir is complete and its state saved: the run says so with its summary, and
    // the zip's failure (a full or read-only disk there) decides the exit status.
    if (!(error instanceof OutputError) || signal?.aborted) throw error;
    summary.zipFailed = error.message;
  }
  summary.requests = client.stats.requests;
  summary.retries = client.stats.retries;
  summary.bytes = client.stats.bytes;
  return summary;
}

interface RunContext {
  failures: FailureLog;
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
  const { api, dataDir, options, me, emit, signal, failures } = ctx;
  const records: RecordsContext = {
    api,
    dataDir,
    concurrency: options.concurrency,
    emit,
    failures,
    ...(signal ? { signal } : {}),
  };

  // Before the channels, so that they read a repaired store.
  const repairs = await repairFromList(records);

  emit({ type: "phase", phase: "Listing teams and channels" });
  const conversations = await listConversations(
    api,
    me,
    {
      direct: ctx.config.direct !== undefined && !options.skipDirect,
      groups: ctx.config.groups !== undefined && !options.skipGroups,
    },
    options.concurrency,
  );
  const { users: selectionUsers, groupMembers } = conversations;
  const selection = selectChannels({
    ...selectionBasis(conversations, me),
    config: ctx.config,
    skip: { teams: options.skipTeams, direct: options.skipDirect, groups: options.skipGroups },
  });
  for (const message of selection.unmatched) emit({ type: "warning", message });

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
      failures.record(`team ${team.name}`, error);
    }
  }
  await ctx.jitter();

  emit({ type: "phase", phase: `Backing up ${selection.channels.length} channel(s)` });
  emit({
    type: "channels-selected",
    total: selection.channels.length,
    posts: await expectedPosts(selection.channels, dataDir, options),
  });
  const editHistory = new EditHistorySource(api, me.id, emit);
  const counts = emptyCounts();
  const channelStats = { total: selection.channels.length, unchanged: 0, skipped: 0, failed: 0 };
  const skipped: Failure[] = [];
  const runnable = selection.channels.filter((s) => !s.team || teamBases.has(s.team.id));
  channelStats.failed += selection.channels.length - runnable.length;
  for (const selected of selection.channels.filter((s) => !runnable.includes(s))) {
    // Its team's folder could not be made (the team's failure is reported).
    emit({ type: "channel-done", label: channelLabel(selected), outcome: "failed" });
  }
  await mapPooled(runnable, options.concurrency, async (selected) => {
    const label = channelLabel(selected);
    try {
      const target = await channelTarget(api, dataDir, selected, teamBases, groupMembers);
      target.members.forEach((m) => neededUsers.add(m.user_id));
      const result = await syncChannel(target, {
        api,
        dataDir,
        clock: ctx.clock,
        updateOldPosts: options.updateOldPosts,
        concurrency: options.concurrency,
        emit,
        failures,
        editHistory,
        ...(signal ? { signal } : {}),
      });
      result.userIds.forEach((id) => neededUsers.add(id));
      addCounts(counts, result.progress.counts);
      if (result.unchanged) channelStats.unchanged++;
      const outcome = result.unchanged ? "unchanged" : "saved";
      emit({ type: "channel-done", label, outcome, progress: result.progress });
    } catch (error) {
      if (isFatal(error, signal)) throw error;
      if (isArchivedPostsHidden(error)) {
        channelStats.skipped++;
        const skip = { what: `channel ${label}`, why: ARCHIVED_HIDDEN_WHY };
        skipped.push(skip);
        emit({ type: "warning", message: `Skipped archived ${skip.what}: ${skip.why}` });
        emit({ type: "channel-done", label, outcome: "skipped" });
        return;
      }
      channelStats.failed++;
      failures.record(`channel ${label}`, error);
      emit({ type: "channel-done", label, outcome: "failed" });
    }
  });
  await ctx.jitter();

  let users = 0;
  let pictures = 0;
  if (!options.skipUsers) {
    emit({ type: "phase", phase: `Backing up users` });
    try {
      const runState = await readRunState(dataDir);
      const result = await backupUsers(
        records,
        neededUsers,
        new Map([[me.id, me], ...selectionUsers]),
        runState.usersWatermark,
        { skipImages: options.skipUserImages },
      );
      users = result.written;
      pictures = result.pictures;
      // The watermark vouches for the user records: their renames must be durable first.
      await dataDir.syncDir([DIRS.users]);
      await writeRunState(dataDir, { ...runState, usersWatermark: result.watermark });
    } catch (error) {
      // The channels are saved: the emoji and the zip still follow, and the next run asks
      // for the users again from the old watermark.
      failures.record("users", error);
    }
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
      failures.record("custom emoji", error);
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
    failures: failures.items,
    skipped,
    unmatched: selection.unmatched,
    zip: undefined,
    zipFailed: undefined,
    durationMs: 0,
    manifest: { hashed: 0, reason: undefined },
    repairs,
  };
}

/**
 * The posts each channel is expected to receive, by label, from its state before its folder is
 * looked at (each sync says again, exactly, when it starts). A state written before the count
 * was kept is taken as up to date; a damaged one means a crawl from the top.
 */
async function expectedPosts(
  channels: readonly SelectedChannel[],
  dataDir: DataDir,
  options: BackupOptions,
): Promise<Record<string, number>> {
  const expected: Record<string, number> = {};
  await mapPooled(channels, options.concurrency, async (selected) => {
    const stored = await readChannelState(dataDir, selected.channel.id);
    const damaged = stored !== undefined && "damaged" in stored;
    const state = damaged ? undefined : stored;
    const plan = planChannel(state, {
      updateOldPosts: options.updateOldPosts,
      storedWatermark: undefined,
      damagedState: damaged,
    });
    const posts = state?.posts ?? (plan.kind === "incremental" ? Infinity : 0);
    expected[channelLabel(selected)] = postsToFetch(selected.channel, posts, plan);
  });
  return expected;
}
