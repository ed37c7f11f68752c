/**
 * A channel's posts as threads (each root with its replies) in the time order of the roots,
 * with flat memory. The reader gives posts in time order, but a root must be written with all
 * its replies, which come later. So one pass over the channel spools the posts to scratch
 * files (roots in one, replies in another) and keeps in memory only where each root's replies
 * lie in the replies file (two numbers per reply); a second, sequential pass over the roots
 * file then reads each root's replies back by position. The threads map is not needed: the
 * posts' own `root_id` is the truth, and a map that missed a reply cannot lose it.
 *
 * A reply whose root is not stored (missing from the backup, or left out by `keep`) comes as a
 * thread of its own at its own time, marked `orphan`.
 */
import { readAt } from "../util/read_at.ts";
import { join } from "node:path";
import type { Post } from "../model/records.ts";
import type { BackupReader, ChannelEntry, Damage } from "../store/reader.ts";
import { readLines } from "../util/lines.ts";
import { BufferedFile } from "../zip/writer.ts";

export interface ThreadOptions {
  /** False: the post counts as not stored (a bulk import leaves out deleted posts). */
  keep(post: Post): boolean;
  /** False: the thread of this root (or this orphan) is left out (date filters). */
  select(post: Post): boolean;
  onDamage(damage: Damage): void;
  signal?: AbortSignal;
}

export interface Thread {
  root: Post;
  /** `root` is a reply whose root is not stored or not kept; it stands alone. */
  orphan: boolean;
  replyCount: number;
  /** The replies in time order, read from the spool; consume before asking for the next thread. */
  replies(): AsyncGenerator<Post>;
}

export interface SpoolCounts {
  /** Post files read (kept or not). */
  read: number;
  /** Posts that `keep` left out. */
  left: number;
  /** Threads to come, orphans included, and the replies in them. */
  threads: number;
  replies: number;
  orphans: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Write buffers of spool files: three per channel, so small (1 MB each piled up, measured). */
const SPOOL_BUFFER = 64 * 1024;

function byTime(a: Post, b: Post): number {
  return a.create_at - b.create_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class ChannelSpool {
  readonly counts: SpoolCounts = { read: 0, left: 0, threads: 0, replies: 0, orphans: 0 };
  /** Root id to [offset, length, offset, length, ...] of its replies in the replies file. */
  #spans = new Map<string, number[]>();
  /** Offsets and lengths of orphans in the replies file, in time order. */
  #orphans: number[] = [];
  #replies: Deno.FsFile;
  /** Reads of the replies file queue up: each is a seek and a read. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string, replies: Deno.FsFile) {
    this.#replies = replies;
  }

  static async create(
    reader: BackupReader,
    channel: ChannelEntry,
    dir: string,
    options: ThreadOptions,
  ): Promise<ChannelSpool> {
    await Deno.mkdir(dir, { recursive: true });
    const replies = await Deno.open(join(dir, "replies.jsonl"), {
      read: true,
      write: true,
      create: true,
      truncate: true,
    });
    const spool = new ChannelSpool(dir, replies);
    try {
      await spool.#fill(reader, channel, options);
    } catch (error) {
      await spool.close();
      throw error;
    }
    return spool;
  }

  /** First pass: every post to the roots or the replies file; root ids to a third. */
  async #fill(reader: BackupReader, channel: ChannelEntry, options: ThreadOptions): Promise<void> {
    const open = (name: string) =>
      Deno.open(join(this.dir, name), { write: true, create: true, truncate: true });
    const roots = new BufferedFile(await open("roots.jsonl"), SPOOL_BUFFER);
    const rootIds = new BufferedFile(await open("root-ids.txt"), SPOOL_BUFFER);
    const replies = new BufferedFile(this.#replies, SPOOL_BUFFER);
    try {
      for await (const item of reader.posts(channel)) {
        options.signal?.throwIfAborted();
        if (item.kind === "damaged") {
          options.onDamage(item.damage);
          continue;
        }
        const post = item.post;
        this.counts.read++;
        if (!options.keep(post)) {
          this.counts.left++;
          continue;
        }
        const line = encoder.encode(JSON.stringify(post) + "\n");
        if (post.root_id === "") {
          // "+" a root whose thread is wanted, "-" one that only hides its replies.
          const selected = options.select(post);
          await rootIds.write(encoder.encode(`${selected ? "+" : "-"}${post.id}\n`));
          if (selected) await roots.write(line);
          continue;
        }
        const spans = this.#spans.get(post.root_id);
        if (spans) spans.push(replies.offset, line.length);
        else this.#spans.set(post.root_id, [replies.offset, line.length]);
        await replies.write(line);
      }
      await roots.flush();
      await rootIds.flush();
      await replies.flush();
    } finally {
      roots.file.close();
      rootIds.file.close();
    }
    await this.#matchRoots(options);
  }

  /**
   * Between the passes: which replies have a selected root, which belong to a hidden one
   * (dropped) and which have none stored (orphans), from the root ids written in pass one.
   */
  async #matchRoots(options: ThreadOptions): Promise<void> {
    const withRoot = new Map<string, number[]>();
    const ids = await Deno.open(join(this.dir, "root-ids.txt"), { read: true });
    for await (const { text } of readLines(ids.readable)) {
      if (!text) continue;
      const id = text.slice(1);
      const spans = this.#spans.get(id);
      if (spans === undefined) {
        if (text[0] === "+") this.counts.threads++;
        continue;
      }
      this.#spans.delete(id);
      if (text[0] === "+") {
        withRoot.set(id, spans);
        this.counts.threads++;
        this.counts.replies += spans.length / 2;
      }
    }
    const orphans: number[] = [];
    for (const spans of this.#spans.values()) for (const n of spans) orphans.push(n);
    this.#spans = withRoot;
    // Pairs sorted by offset: the replies file is in time order.
    const pairs = Array.from({ length: orphans.length / 2 }, (_, i) => i * 2)
      .sort((a, b) => (orphans[a] as number) - (orphans[b] as number));
    for (const i of pairs) {
      const [offset, length] = [orphans[i] as number, orphans[i + 1] as number];
      if (!options.select(await this.#read(offset, length))) continue;
      this.#orphans.push(offset, length);
      this.counts.threads++;
      this.counts.orphans++;
    }
  }

  /** Second pass: the threads in the time order of their roots (orphans at their own time). */
  async *threads(): AsyncGenerator<Thread> {
    const roots = await Deno.open(join(this.dir, "roots.jsonl"), { read: true });
    const lines = readLines(roots.readable);
    try {
      let orphanIndex = 0;
      let orphan: Post | undefined;
      const nextOrphan = async () => {
        orphan = orphanIndex < this.#orphans.length
          ? await this.#read(
            this.#orphans[orphanIndex] as number,
            this.#orphans[orphanIndex + 1] as number,
          )
          : undefined;
        orphanIndex += 2;
      };
      await nextOrphan();
      let next = await lines.next();
      while (!next.done || orphan) {
        const root = next.done ? undefined : JSON.parse(next.value.text as string) as Post;
        if (orphan && (!root || byTime(orphan, root) < 0)) {
          yield { root: orphan, orphan: true, replyCount: 0, replies: async function* () {} };
          await nextOrphan();
          continue;
        }
        const spans = this.#spans.get((root as Post).id) ?? [];
        yield {
          root: root as Post,
          orphan: false,
          replyCount: spans.length / 2,
          replies: () => this.#readAll(spans),
        };
        next = await lines.next();
      }
    } finally {
      await lines.return(undefined);
    }
  }

  async *#readAll(spans: number[]): AsyncGenerator<Post> {
    for (let i = 0; i < spans.length; i += 2) {
      yield await this.#read(spans[i] as number, spans[i + 1] as number);
    }
  }

  #read(offset: number, length: number): Promise<Post> {
    const read = this.#queue.then(async () => {
      const bytes = await readAt(this.#replies, offset, length);
      if (bytes.length < length) {
        throw new Error(`spool ${this.dir} ends before offset ${offset + length}`);
      }
      return JSON.parse(decoder.decode(bytes)) as Post;
    });
    this.#queue = read.catch(() => {});
    return read;
  }

  /** Closes and removes the spool files. */
  async close(): Promise<void> {
    try {
      this.#replies.close();
    } catch {
      // Already closed.
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
