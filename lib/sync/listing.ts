/**
 * What the user can back up: their teams and channels (archived included), and the names
 * direct and group messages are known by (the partner's username, the members' usernames).
 */
import type { MattermostApi } from "../api/mattermost.ts";
import type { Channel, Member, Team, User } from "../model/records.ts";
import { mapPooled } from "../util/semaphore.ts";
import { dmPartnerId, type SelectionInput } from "./selection.ts";

export interface Conversations {
  teams: Team[];
  channels: Channel[];
  /** The users that name DMs and GMs (without the user), by id. */
  users: Map<string, User>;
  /** Each group message's members. */
  groupMembers: Map<string, Member[]>;
}

/**
 * Lists the user's teams and channels; DM partners and group members only as far as `names`
 * asks (each costs requests).
 */
export async function listConversations(
  api: MattermostApi,
  me: User,
  names: { direct: boolean; groups: boolean },
  concurrency: number,
): Promise<Conversations> {
  const teams = await api.teamsForUser(me.id);
  const channels = await api.channelsForUser(me.id, teams);
  const ids = new Set<string>();
  if (names.direct) {
    for (const channel of channels.filter((c) => c.type === "D")) {
      const partner = dmPartnerId(channel, me.id);
      if (partner) ids.add(partner);
    }
  }
  const groupMembers = new Map<string, Member[]>();
  if (names.groups) {
    const groups = channels.filter((c) => c.type === "G");
    await mapPooled(groups, concurrency, async (channel) => {
      const members = await api.channelMembers(channel.id, channel.display_name);
      groupMembers.set(channel.id, members);
      members.forEach((m) => ids.add(m.user_id));
    });
  }
  ids.delete(me.id);
  const users = new Map((await api.usersByIds([...ids])).map((u) => [u.id, u]));
  return { teams, channels, users, groupMembers };
}

/** What selection works from: the listing, with names by user id (the user's own included). */
export function selectionBasis(
  conversations: Conversations,
  me: User,
): Omit<SelectionInput, "config" | "skip"> {
  const usernames = new Map([...conversations.users.values()].map((u) => [u.id, u.username]));
  usernames.set(me.id, me.username);
  return {
    meId: me.id,
    teams: conversations.teams,
    channels: conversations.channels,
    usernames,
    groupMembers: new Map(
      [...conversations.groupMembers].map(([id, members]) => [id, members.map((m) => m.user_id)]),
    ),
  };
}
