/** channels.json: which teams, channels, direct and group messages to back up. */
import { isObject } from "../util/objects.ts";
import { ConfigError } from "../util/errors.ts";
import { kindOf, type Parsed, parseJsonFile, unknownKeys } from "./json_file.ts";

export interface TeamSelection {
  include?: string[];
  exclude?: string[];
}

export interface ChannelsConfig {
  teams?: Record<string, TeamSelection>;
  direct?: string[];
  groups?: { exact?: string[][]; subset?: string[][] };
}

function stringList(value: unknown, where: string, what: string): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
    throw new ConfigError(`${where} must be a list of ${what} (strings), got ${kindOf(value)}`);
  }
  return value as string[];
}

/** Checks channels.json against matterbak's format. */
export function parseChannels(text: string, path: string): Parsed<ChannelsConfig> {
  const data = parseJsonFile(text, path);
  if (!isObject(data)) {
    throw new ConfigError(`${path}: expected an object with "teams", "direct" and/or "groups"`);
  }
  const warnings = unknownKeys(data, ["teams", "direct", "groups"], path);
  const value: ChannelsConfig = {};
  if (data.teams !== undefined) {
    if (!isObject(data.teams)) {
      throw new ConfigError(
        `${path}: "teams" must be an object mapping team names to {include, exclude}, got ${
          kindOf(data.teams)
        }`,
      );
    }
    value.teams = {};
    for (const [team, selection] of Object.entries(data.teams)) {
      const where = `${path}: "teams.${team}"`;
      if (!isObject(selection)) {
        throw new ConfigError(
          `${where} must be an object like {"include": [...]}, got ${kindOf(selection)}`,
        );
      }
      warnings.push(...unknownKeys(selection, ["include", "exclude"], where));
      const entry: TeamSelection = {};
      if (selection.include !== undefined) {
        entry.include = stringList(selection.include, `${where}.include`, "channel names");
      }
      if (selection.exclude !== undefined) {
        entry.exclude = stringList(selection.exclude, `${where}.exclude`, "channel names");
      }
      value.teams[team] = entry;
    }
  }
  if (data.direct !== undefined) {
    value.direct = stringList(data.direct, `${path}: "direct"`, "usernames");
  }
  if (data.groups !== undefined) {
    if (!isObject(data.groups)) {
      throw new ConfigError(
        `${path}: "groups" must be an object with "exact" and/or "subset", got ${
          kindOf(data.groups)
        }`,
      );
    }
    warnings.push(...unknownKeys(data.groups, ["exact", "subset"], `${path}: "groups"`));
    value.groups = {};
    for (const key of ["exact", "subset"] as const) {
      const lists = data.groups[key];
      if (lists === undefined) continue;
      const where = `${path}: "groups.${key}"`;
      if (!Array.isArray(lists)) {
        throw new ConfigError(`${where} must be a list of username lists, got ${kindOf(lists)}`);
      }
      value.groups[key] = lists.map((list, i) => stringList(list, `${where}[${i}]`, "usernames"));
    }
  }
  return { value, warnings };
}
