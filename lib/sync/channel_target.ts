/**
 * Where a selected channel lives in the data dir: its label for messages and its posts folder,
 * decided once here (a folder found by id wins over the current name, so a rename or a group
 * converted to a private channel keeps its history where it is).
 */
import type { MattermostApi } from "../api/mattermost.ts";
import type { Member } from "../model/records.ts";
import type { DataDir, RelPath } from "../store/data_dir.ts";
import { channelStateFile, DIRS, groupLabel } from "../store/layout.ts";
import { findBase, readChannelState, relPathFromString } from "../store/state.ts";
import type { ChannelTarget } from "./channel_sync.ts";
import type { SelectedChannel } from "./selection.ts";

export function channelLabel(selected: SelectedChannel): string {
  if (selected.kind === "teams") return `${selected.team?.name}/${selected.channel.name}`;
  if (selected.kind === "direct") return `@${selected.label}`;
  return `group(${[selected.label].flat().join(", ")})`;
}

/** The folder, members and state a channel's sync starts from. */
export async function channelTarget(
  api: MattermostApi,
  dataDir: DataDir,
  selected: SelectedChannel,
  teamBases: ReadonlyMap<string, string>,
  groupMembers: ReadonlyMap<string, Member[]>,
): Promise<ChannelTarget> {
  const { channel } = selected;
  const label = channelLabel(selected);
  const stored = await readChannelState(dataDir, channel.id);
  const state = stored && !("damaged" in stored) ? stored : undefined;
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
  const folder = stateUsable
    ? stateDir
    : [...parent, await findBase(dataDir, parent, channel.id, name)];
  const members = groupMembers.get(channel.id) ?? await api.channelMembers(channel.id, label);
  // A state without its folder no longer describes what is stored: crawl it all again.
  const damagedState = stored && "damaged" in stored
    ? stored.damaged
    : state && !stateUsable
    ? `${channelStateFile(channel.id).join("/")}: its folder ${state.dir} is missing`
    : undefined;
  return {
    channel,
    label,
    folder,
    members,
    state: stateUsable ? state : undefined,
    ...(damagedState ? { damagedState } : {}),
  };
}
