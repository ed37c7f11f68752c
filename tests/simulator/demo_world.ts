/**
 * The world `deno task demo` backs up, and its channels.json: the tests measure the progress
 * display on the same data a new user first watches.
 */
import type { ChannelsConfig } from "../../lib/config/channels.ts";
import { type GeneratedWorld, generateWorld } from "./generate.ts";

export function demoWorld(): GeneratedWorld {
  return generateWorld({ hostileNames: true, postsPerChannel: 120, showcase: true });
}

export const DEMO_CHANNELS: ChannelsConfig = {
  teams: { "team-0": {}, "Team 1": { exclude: ["public-1-2"] } },
  direct: ["alice", "bob"],
  groups: { subset: [["bob"]] },
};

/** The demo's rate limit (requests per second). */
export const DEMO_RATE_LIMIT = 50;
