import assert from "node:assert/strict";
import type { ChannelsConfig } from "../lib/config/channels.ts";
import type { Channel, Team } from "../lib/model/records.ts";
import {
  dmPartnerId,
  nameList,
  selectChannels,
  type SelectionInput,
} from "../lib/sync/selection.ts";

const id = (name: string) => name.padEnd(26, "0").slice(0, 26);
const ME = id("me");
const team = (name: string, display: string): Team => ({
  id: id(`t${name}`),
  name,
  display_name: display,
});
const T1 = team("eng", "Engineering");
const T2 = team("ops", "Operations");
const channel = (name: string, fields: Partial<Channel> = {}): Channel => ({
  id: id(`c${name}`),
  team_id: T1.id,
  type: "O",
  name,
  display_name: name.toUpperCase(),
  delete_at: 0,
  ...fields,
});
const BOB = id("bob");
const CAROL = id("carol");
const DAVE = id("dave");
const channels: Channel[] = [
  channel("general"),
  channel("random"),
  channel("secret", { type: "P" }),
  channel("old", { delete_at: 5 }),
  channel("ops-general", { team_id: T2.id }),
  channel(`${ME}__${BOB}`, { type: "D", team_id: "" }),
  channel(`${CAROL}__${ME}`, { type: "D", team_id: "" }),
  channel(`${ME}__${ME}`, { type: "D", team_id: "" }),
  channel("gm1", { type: "G", team_id: "" }),
  channel("gm2", { type: "G", team_id: "" }),
];
const base: Omit<SelectionInput, "config"> = {
  meId: ME,
  teams: [T1, T2],
  channels,
  usernames: new Map([[ME, "me"], [BOB, "bob"], [CAROL, "carol"], [DAVE, "dave"]]),
  groupMembers: new Map([[channel("gm1").id, [ME, BOB, CAROL]], [channel("gm2").id, [
    ME,
    BOB,
    CAROL,
    DAVE,
  ]]]),
  skip: { teams: false, direct: false, groups: false },
};

function names(config: ChannelsConfig, skip = base.skip) {
  const result = selectChannels({ ...base, config, skip });
  return {
    selected: result.channels.map((s) => s.channel.name),
    unmatched: result.unmatched.length,
  };
}

const table: Array<[string, ChannelsConfig, string[], number]> = [
  ["no keys: nothing", {}, [], 0],
  ["a team by name: all its channels, archived and private included", { teams: { eng: {} } }, [
    "general",
    "random",
    "secret",
    "old",
  ], 0],
  ["a team by display name", { teams: { Operations: {} } }, ["ops-general"], 0],
  ["include by name or display name", { teams: { eng: { include: ["general", "RANDOM"] } } }, [
    "general",
    "random",
  ], 0],
  ["exclude wins over include", {
    teams: { eng: { include: ["general", "random"], exclude: ["random"] } },
  }, [
    "general",
  ], 0],
  ["exclude alone", { teams: { eng: { exclude: ["old", "secret"] } } }, ["general", "random"], 0],
  ["an empty include means all", { teams: { eng: { include: [] } } }, [
    "general",
    "random",
    "secret",
    "old",
  ], 0],
  [
    "an include matching nothing selects nothing (matterbak took all)",
    {
      teams: { eng: { include: ["typo"] } },
    },
    [],
    2,
  ],
  ["a partly wrong include reports the wrong name", {
    teams: { eng: { include: ["general", "typo"] } },
  }, [
    "general",
  ], 1],
  ["an unknown team is reported", { teams: { nope: {} } }, [], 1],
  ["direct: by username, any case, partner on either side", { direct: ["bob", "Carol"] }, [
    `${ME}__${BOB}`,
    `${CAROL}__${ME}`,
  ], 0],
  ["direct: your own name is the self-DM", { direct: ["me"] }, [`${ME}__${ME}`], 0],
  ["direct: an unknown user is reported", { direct: ["zed"] }, [], 1],
  [
    "groups.exact: the other members exactly",
    { groups: { exact: [["carol", "bob"]] } },
    ["gm1"],
    0,
  ],
  ["groups.subset: the listed users among the members", { groups: { subset: [["bob"]] } }, [
    "gm1",
    "gm2",
  ], 0],
  [
    "groups: a list matching no group is reported",
    { groups: { exact: [["bob"]], subset: [["zed"]] } },
    [],
    2,
  ],
];

for (const [name, config, expected, unmatched] of table) {
  Deno.test(`selection: ${name}`, () => {
    assert.deepEqual(names(config), { selected: expected, unmatched });
  });
}

Deno.test("selection: skip flags leave their kind out", () => {
  const config = { teams: { eng: {} }, direct: ["bob"], groups: { subset: [[]] } };
  assert.deepEqual(names(config, { teams: true, direct: true, groups: false }).selected, [
    "gm1",
    "gm2",
  ]);
  assert.deepEqual(names(config, { teams: false, direct: true, groups: true }).selected.length, 4);
});

Deno.test("selection: a team named twice is backed up once", () => {
  assert.deepEqual(names({ teams: { eng: {}, Engineering: { include: ["general"] } } }).selected, [
    "general",
    "random",
    "secret",
    "old",
  ]);
});

Deno.test("the DM partner comes from the channel name", () => {
  assert.equal(dmPartnerId(channel(`${ME}__${BOB}`, { type: "D" }), ME), BOB);
  assert.equal(dmPartnerId(channel(`${BOB}__${ME}`, { type: "D" }), ME), BOB);
  assert.equal(dmPartnerId(channel(`${ME}__${ME}`, { type: "D" }), ME), ME);
  assert.equal(dmPartnerId(channel(`${BOB}__${CAROL}`, { type: "D" }), ME), undefined);
  assert.equal(dmPartnerId(channel("weird", { type: "D" }), ME), undefined);
});

Deno.test("a name that matches nothing is reported with the names there are", () => {
  const unmatched = (config: ChannelsConfig) => selectChannels({ ...base, config }).unmatched;
  assert.deepEqual(unmatched({ teams: { engineering: {} } }), [
    'team "engineering": you are not a member of such a team; your teams: eng, ops',
  ]);
  assert.deepEqual(unmatched({ teams: { eng: { include: ["genral"], exclude: ["x"] } } }), [
    'team "eng": include channel "genral" not found; its channels: general, old, random, secret',
    'team "eng": exclude channel "x" not found; its channels: general, old, random, secret',
    'team "eng": no "include" name matched, so none of its channels is backed up',
  ]);
  assert.deepEqual(unmatched({ direct: ["dave"] }), [
    'direct: no direct message channel with "dave"; you have them with: bob, carol, me',
  ]);
});

Deno.test("a long list of names is cut, and says where to see them all", () => {
  const many = Array.from({ length: 45 }, (_, i) => `c${String(i).padStart(2, "0")}`);
  assert.equal(
    nameList(many),
    `${many.slice(0, 30).join(", ")}, and 15 more (matterbak list shows them all)`,
  );
  assert.equal(nameList(["b", "a", "b"]), "a, b");
  assert.equal(nameList([]), "none");
});
