/** A channel folder as the original Python matterbak wrote it, for tests of continuing one. */
import assert from "node:assert/strict";
import { fileDataName, fileInfoName } from "../lib/store/layout.ts";
import type { Channel, World } from "./simulator/world.ts";

/** Python's json.dump defaults: ", " and ": " separators, non-ASCII escaped. */
export function pythonJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(", ")}]`;
  return `{${
    Object.entries(value).map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`).join(", ")
  }}`;
}

/** matterbak's post file name: create time in the machine's local zone (here UTC+2). */
export function localName(id: string, createAt: number): string {
  const d = new Date(createAt + 2 * 3600_000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${
    p(d.getUTCHours())
  }` +
    `${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}${
      p(d.getUTCMilliseconds() * 1000, 6)
    }__${id}.json`;
}

export async function writeMatterbakChannel(
  world: World,
  channel: Channel,
  folder: string,
): Promise<void> {
  await Deno.mkdir(`${folder}/files`, { recursive: true });
  await Deno.writeTextFile(`${folder}.json`, pythonJson(channel));
  await Deno.writeTextFile(`${folder}__members.json`, pythonJson(world.channelMembers(channel.id)));
  const threads: Record<string, string[]> = {};
  for (const record of world.channelPosts(channel.id)) {
    if (record.delete_at > 0) continue;
    const post = world.post(record.id);
    assert.ok(post);
    await Deno.writeTextFile(`${folder}/${localName(post.id, post.create_at)}`, pythonJson(post));
    if (post.root_id) (threads[post.root_id] ??= []).push(post.id);
    for (const info of post.metadata.files ?? []) {
      await Deno.writeTextFile(`${folder}/files/${fileInfoName(info.id)}`, pythonJson(info));
      await Deno.writeFile(
        `${folder}/files/${fileDataName(info.id, info.name)}`,
        world.fileBytes(info.id) as Uint8Array,
      );
    }
  }
  await Deno.writeTextFile(`${folder}__threads.json`, pythonJson(threads));
}
