/**
 * Which channels a run backs up: matterbak's channels.json rules as a pure function of the
 * user's teams and channels, with one fix (an `include` list that matches nothing selects
 * nothing instead of the whole team). Every configured name that matches nothing is reported.
 */
import type { ChannelsConfig } from "../config/channels.ts";
import type { ChannelKind } from "../store/layout.ts";
import { isMattermostId } from "../model/records.ts";
import type { Channel, Team } from "../model/records.ts";

export interface SelectedChannel {
  channel: Channel;
  kind: ChannelKind;
  /** The team of a team channel. */
  team?: Team;
  /** Name part of the file names: channel name, DM partner, or the GM's other members. */
  label: string | string[];
}

export interface SelectionInput {
  meId: string;
  teams: readonly Team[];
  channels: readonly Channel[];
  /** Usernames of DM partners and GM members, by user id. */
  usernames: ReadonlyMap<string, string>;
  /** Member ids of each GM, by channel id. */
  groupMembers: ReadonlyMap<string, readonly string[]>;
  config: ChannelsConfig;
  skip: { teams: boolean; direct: boolean; groups: boolean };
}

export interface Selection {
  channels: SelectedChannel[];
  /** One message per configured name that matched nothing. */
  unmatched: string[];
}

/** The other user of a DM, from its name `<idA>__<idB>`; yourself for a self-DM. */
export function dmPartnerId(channel: Channel, meId: string): string | undefined {
  const [a, b, ...rest] = channel.name.split("__");
  if (rest.length > 0 || !isMattermostId(a) || !isMattermostId(b)) return undefined;
  if (a === meId) return b;
  if (b === meId) return a;
  return undefined;
}

/** Member ids of a GM other than you (an id stands in for a username we could not see). */
export function groupOthers(members: readonly string[], meId: string): string[] {
  return members.filter((id) => id !== meId);
}

const lower = (s: string) => s.toLowerCase();

/** Names listed in a message at most; `matterbak list` shows them all. */
const LISTED_NAMES = 30;

/** Sorted names for a message, cut at LISTED_NAMES. */
export function nameList(names: readonly string[]): string {
  if (names.length === 0) return "none";
  const sorted = [...new Set(names)].sort();
  const shown = sorted.slice(0, LISTED_NAMES).join(", ");
  const more = sorted.length - LISTED_NAMES;
  return more > 0 ? `${shown}, and ${more} more (matterbak list shows them all)` : shown;
}

export function selectChannels(input: SelectionInput): Selection {
  const { config, skip } = input;
  const channels: SelectedChannel[] = [];
  const unmatched: string[] = [];
  const nameOf = (id: string) => input.usernames.get(id) ?? id;

  if (config.teams && !skip.teams) {
    for (const [key, rules] of Object.entries(config.teams)) {
      const teams = input.teams.filter((t) => t.name === key || t.display_name === key);
      if (teams.length === 0) {
        unmatched.push(
          `team ${JSON.stringify(key)}: you are not a member of such a team; ` +
            `your teams: ${nameList(input.teams.map((t) => t.name))}`,
        );
        continue;
      }
      for (const team of teams) {
        const candidates = input.channels.filter((c) =>
          c.team_id === team.id && (c.type === "O" || c.type === "P")
        );
        const matches = (names: string[] | undefined, what: string) => {
          const found = new Set<Channel>();
          for (const name of names ?? []) {
            const hits = candidates.filter((c) => c.name === name || c.display_name === name);
            if (hits.length === 0) {
              unmatched.push(
                `team ${JSON.stringify(key)}: ${what} channel ${JSON.stringify(name)} not found; ` +
                  `its channels: ${nameList(candidates.map((c) => c.name))}`,
              );
            }
            hits.forEach((c) => found.add(c));
          }
          return found;
        };
        const included = matches(rules.include, "include");
        const excluded = matches(rules.exclude, "exclude");
        const hasInclude = (rules.include?.length ?? 0) > 0;
        if (hasInclude && included.size === 0) {
          unmatched.push(
            `team ${
              JSON.stringify(key)
            }: no "include" name matched, so none of its channels is backed up`,
          );
        }
        const base = hasInclude ? [...included] : candidates;
        for (const channel of base) {
          if (!excluded.has(channel)) {
            channels.push({ channel, kind: "teams", team, label: channel.name });
          }
        }
      }
    }
  }

  if (config.direct && !skip.direct) {
    const dms = input.channels.filter((c) => c.type === "D");
    for (const username of config.direct) {
      const hits = dms.filter((c) => {
        const partner = dmPartnerId(c, input.meId);
        return partner !== undefined && lower(nameOf(partner)) === lower(username);
      });
      if (hits.length === 0) {
        const partners = dms.map((c) => dmPartnerId(c, input.meId)).filter((id) => id !== undefined)
          .map(nameOf);
        unmatched.push(
          `direct: no direct message channel with ${JSON.stringify(username)}; ` +
            `you have them with: ${nameList(partners)}`,
        );
      }
      for (const channel of hits) {
        const partner = dmPartnerId(channel, input.meId) as string;
        channels.push({ channel, kind: "direct", label: nameOf(partner) });
      }
    }
  }

  if (config.groups && !skip.groups) {
    const groups = input.channels.filter((c) => c.type === "G");
    const others = new Map(groups.map((c) => [
      c,
      new Set(
        groupOthers(input.groupMembers.get(c.id) ?? [], input.meId).map((id) => lower(nameOf(id))),
      ),
    ]));
    const selected = new Set<Channel>();
    const rules: Array<
      [string, string[][] | undefined, (want: Set<string>, have: Set<string>) => boolean]
    > = [
      [
        "exact",
        config.groups.exact,
        (want, have) => want.size === have.size && [...want].every((n) => have.has(n)),
      ],
      ["subset", config.groups.subset, (want, have) => [...want].every((n) => have.has(n))],
    ];
    for (const [rule, lists, test] of rules) {
      for (const list of lists ?? []) {
        const want = new Set(list.map(lower));
        const hits = groups.filter((c) => test(want, others.get(c) as Set<string>));
        if (hits.length === 0) {
          unmatched.push(`groups.${rule}: no group message channel with ${JSON.stringify(list)}`);
        }
        hits.forEach((c) => selected.add(c));
      }
    }
    for (const channel of groups.filter((c) => selected.has(c))) {
      const members = groupOthers(input.groupMembers.get(channel.id) ?? [], input.meId);
      channels.push({ channel, kind: "groups", label: members.map(nameOf) });
    }
  }

  // A channel matched twice (two team keys naming the same team) is backed up once.
  const seen = new Set<string>();
  return {
    channels: channels.filter((s) => !seen.has(s.channel.id) && seen.add(s.channel.id)),
    unmatched,
  };
}

/** Everything the user can back up, sorted, by the names channels.json uses. */
export interface Backupable {
  teams: Array<{ team: Team; channels: Channel[] }>;
  /** Direct messages by partner (`self` for the DM with yourself). */
  direct: Array<{ channel: Channel; username: string; self: boolean }>;
  /** Group messages by their other members. */
  groups: Array<{ channel: Channel; usernames: string[] }>;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function backupable(input: Omit<SelectionInput, "config" | "skip">): Backupable {
  const nameOf = (id: string) => input.usernames.get(id) ?? id;
  const teams = [...input.teams].sort((a, b) => byName(a.name, b.name)).map((team) => ({
    team,
    channels: input.channels.filter((c) =>
      c.team_id === team.id && (c.type === "O" || c.type === "P")
    ).sort((a, b) => byName(a.name, b.name)),
  }));
  const direct = input.channels.filter((c) => c.type === "D").flatMap((channel) => {
    const partner = dmPartnerId(channel, input.meId);
    return partner === undefined
      ? []
      : [{ channel, username: nameOf(partner), self: partner === input.meId }];
  }).sort((a, b) => byName(a.username, b.username));
  const groups = input.channels.filter((c) => c.type === "G").map((channel) => ({
    channel,
    usernames: groupOthers(input.groupMembers.get(channel.id) ?? [], input.meId).map(nameOf).sort(
      byName,
    ),
  })).sort((a, b) => byName(a.usernames.join(","), b.usernames.join(",")));
  return { teams, direct, groups };
}

/**
 * A channels.json that selects all of `what`, every name spelled out so that editing it down
 * is deleting lines. (An empty `include` would mean every channel, new ones too.)
 */
export function selectEverything(what: Backupable): ChannelsConfig {
  return {
    teams: Object.fromEntries(
      what.teams.map(({ team, channels }) => [team.name, { include: channels.map((c) => c.name) }]),
    ),
    direct: what.direct.map((d) => d.username),
    groups: { exact: what.groups.map((g) => g.usernames) },
  };
}
