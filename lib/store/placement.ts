/**
 * Where an output outside the data dir may go (the website, the exports): not inside the data
 * dir (the zip of the next backup would hold it) nor around it, judged on where the folders
 * really are, through symbolic links and bind mounts, not only as the paths are spelled.
 */
import { dirname, isAbsolute, join, relative, resolve, sep as SEP } from "node:path";
import { UsageError } from "../util/errors.ts";

/**
 * Refuses `output` inside the data dir or around it, as the paths are spelled (see
 * checkLocation for where they really are). `what` names the output in messages ("site
 * folder", "output").
 */
export function checkPlacement(dataDir: string, output: string, what: string): void {
  refuseNesting(resolve(dataDir), resolve(output), what, "");
}

function refuseNesting(data: string, output: string, what: string, how: string): void {
  const inside = (outer: string, inner: string) => {
    const rel = relative(outer, inner);
    return rel === "" || !rel.startsWith(`..`) && !isAbsolute(rel);
  };
  if (inside(data, output)) {
    throw new UsageError(
      `The ${what} ${output} is inside the data dir ${data}${how}, whose zip would hold it; choose a folder outside`,
    );
  }
  if (inside(output, data)) {
    throw new UsageError(
      `The data dir ${data} is inside the ${what} ${output}${how}; choose another`,
    );
  }
}

/** Where the absolute `path` really is: its nearest existing folder's real path, and the rest. */
async function realLocation(path: string): Promise<string> {
  const rest: string[] = [];
  for (let head = path;;) {
    try {
      return join(await Deno.realPath(head), ...rest);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory)) {
        throw error;
      }
    }
    const cut = Math.max(head.lastIndexOf("/"), head.lastIndexOf(SEP));
    if (cut <= 0) return path;
    rest.unshift(head.slice(cut + 1));
    head = head.slice(0, cut);
  }
}

/**
 * Device and inode of `real` (undefined when it does not exist) and of it and each folder
 * above it: a bind mount of a folder shows the folder's pair under another path.
 */
async function identities(real: string): Promise<{ self: string | undefined; all: string[] }> {
  const all: string[] = [];
  let self: string | undefined;
  for (let at = real;; at = dirname(at)) {
    const info = await Deno.stat(at).catch(() => undefined);
    if (info?.ino != null) {
      all.push(`${info.dev}:${info.ino}`);
      if (at === real) self = all[0];
    }
    if (dirname(at) === at) return { self, all };
  }
}

/**
 * checkPlacement on where the folders really are: through a symbolic link, `..` after one, or
 * a bind mount of a folder under another name (the same device and inode).
 */
export async function checkLocation(dataDir: string, output: string, what: string): Promise<void> {
  checkPlacement(dataDir, output, what);
  // The spelled paths are first made absolute as every file access here does (`..` taken
  // lexically), then followed through links.
  const [data, real] = await Promise.all([
    realLocation(resolve(dataDir)),
    realLocation(resolve(output)),
  ]);
  const how = ` (${resolve(dataDir)} is ${data}, ${resolve(output)} is ${real})`;
  refuseNesting(data, real, what, how);
  const [dataIds, outputIds] = await Promise.all([identities(data), identities(real)]);
  const sameFolder = " (the same folder under another name: a bind mount)";
  if (dataIds.self && outputIds.all.includes(dataIds.self)) {
    throw new UsageError(
      `The ${what} ${real} is inside the data dir ${data}${sameFolder}, whose zip would hold it; choose a folder outside`,
    );
  }
  if (outputIds.self && dataIds.all.includes(outputIds.self)) {
    throw new UsageError(
      `The data dir ${data} is inside the ${what} ${real}${sameFolder}; choose another`,
    );
  }
}
