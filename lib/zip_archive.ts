/**
 * Zips the whole data dir into one archive, streamed entry by entry, under a temporary name
 * that is renamed over the target only when complete (an old zip stays until then). JSON is
 * deflated; media that is already compressed is stored.
 */
import { configure, ZipWriter } from "@zip.js/zip.js";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { isTempName, TEMP_SUFFIX } from "./atomic_write.ts";
import { DIRS } from "./layout.ts";
import { isSafeComponent, safeName } from "./safe_name.ts";

configure({ useWebWorkers: false });

/** Extensions whose content is already compressed: deflating them again wastes CPU. */
const STORED =
  /\.(png|jpe?g|gif|webp|zip|gz|tgz|bz2|xz|7z|rar|mp3|mp4|m4a|mov|avi|mkv|webm|ogg|pdf|docx|xlsx|pptx|heic)$/i;

export interface ZipOptions {
  /** Absolute paths never to include (credentials, the zip itself). */
  exclude: string[];
  signal?: AbortSignal;
}

/** Files below `root` in a stable order, as paths relative to it with `/` separators. */
async function* walk(
  root: string,
  dir = root,
): AsyncGenerator<{ path: string; name: string; isDir: boolean }> {
  const entries = (await Array.fromAsync(Deno.readDir(dir))).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  for (const entry of entries) {
    const path = join(dir, entry.name);
    // Names matterbak wrote unsanitised are made safe inside the zip only.
    const name = relative(root, path).split(sep).map((part) =>
      isSafeComponent(part) ? part : safeName(part, 200)
    ).join("/");
    if (entry.isDirectory) {
      yield { path, name: `${name}/`, isDir: true };
      yield* walk(root, path);
    } else if (entry.isFile && !isTempName(entry.name)) {
      yield { path, name, isDir: false };
    }
  }
}

export async function writeZip(
  root: string,
  zipPath: string,
  options: ZipOptions,
): Promise<{ entries: number; bytes: number }> {
  const exclude = new Set([
    ...options.exclude.map((p) => resolve(p)),
    join(root, DIRS.state, "lock"),
  ]);
  const temp = join(
    dirname(zipPath),
    `.${basename(zipPath)}.${crypto.randomUUID().slice(0, 8)}${TEMP_SUFFIX}`,
  );
  const file = await Deno.open(temp, { write: true, createNew: true });
  let entries = 0;
  try {
    const sink = new WritableStream<Uint8Array>({
      async write(chunk) {
        let offset = 0;
        while (offset < chunk.length) offset += await file.write(chunk.subarray(offset));
      },
    });
    const writer = new ZipWriter(sink, { useWebWorkers: false });
    const names = new Set<string>();
    for await (const entry of walk(root)) {
      options.signal?.throwIfAborted();
      if (exclude.has(entry.path)) continue;
      // Two unsafe names can map to one safe name; keep both entries.
      let name = entry.name;
      for (let n = 2; names.has(name); n++) name = entry.name.replace(/(\/?)$/, `~${n}$1`);
      names.add(name);
      if (entry.isDir) {
        await writer.add(name, undefined, { directory: true });
      } else {
        const source = await Deno.open(entry.path, { read: true });
        const { size } = await source.stat();
        await writer.add(name, { readable: source.readable, size }, {
          level: STORED.test(name) ? 0 : 6,
        });
      }
      entries++;
    }
    await writer.close();
    await file.sync();
    const { size } = await file.stat();
    file.close();
    await Deno.rename(temp, zipPath);
    return { entries, bytes: size };
  } catch (error) {
    try {
      file.close();
    } catch {
      // Already closed.
    }
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
