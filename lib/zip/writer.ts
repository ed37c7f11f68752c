/**
 * A streaming ZIP writer with flat memory: entries are written one at a time, and the central
 * directory (46 bytes per entry plus its name: 37 MB for 200,000 posts with our paths) is
 * collected in a scratch file beside the archive and copied to its end on close().
 *
 * Why not zip.js or another npm writer: zip.js keeps about 5 KB per entry alive until
 * close() (3.5 GB of RSS for 200,000 files, measured), and the other streaming writers on npm
 * either buffer their central directory the same way (archiver, zip-stream), slow down with
 * the square of the entry count (yazl), or cannot write zip64 (fflate). The format is small;
 * deflate and CRC-32 come from node:zlib. Archives are checked with zip.js's reader and
 * `unzip -t` in the tests.
 *
 * Zip64 records appear only where needed (an entry or offset at or past 4 GiB, 65,535 entries
 * or more). Streamed entries get their CRC and sizes patched into the local header afterwards
 * (no data descriptors), so the output must be a seekable file.
 */
import zlib from "node:zlib";
import { type FsRecorder, syncStep, TEMP_SUFFIX, writeAll } from "../store/atomic_write.ts";
import {
  type CentralEntry,
  centralRecord,
  encodeName,
  endRecords,
  type EntryStat,
  localHeader,
  U32,
} from "./format.ts";

/** Writes are collected into buffers of this size. */
const CHUNK = 1 << 20;

export interface ZipEntryOptions {
  /** 0 stores, 1-9 deflates (default 6). */
  level?: number;
  mtime?: Date;
  /** What the file looked like when it was read, recorded for the next run (see format.ts). */
  stat?: EntryStat;
}

/** An entry's compressed bytes as another archive holds them, and what describes them. */
export interface CopiedEntry {
  method: number;
  crc: number;
  compressed: number;
  size: number;
  /** Its local header and data, exactly as they stand in the other archive. */
  raw: Uint8Array | AsyncIterable<Uint8Array>;
}

export interface ZipWriterOptions {
  /** Write zip64 records for every entry and the end record (tests use it). */
  forceZip64?: boolean;
  /** Sees the sync that makes the archive durable (tests). */
  recorder?: FsRecorder | undefined;
}

export class ZipWriter {
  #out: BufferedFile;
  #directory: BufferedFile;
  #count = 0;
  #force: boolean;
  #deflater: EntryDeflater | undefined;
  /** Set while the scratch file still has a name (it could not be unlinked while open). */
  #scratchPath: string | undefined;

  private constructor(
    readonly path: string,
    out: Deno.FsFile,
    directory: Deno.FsFile,
    readonly options: ZipWriterOptions,
  ) {
    this.#out = new BufferedFile(out);
    this.#directory = new BufferedFile(directory);
    this.#force = options.forceZip64 ?? false;
  }

  /**
   * Creates the archive at `path` (which must not exist) and its scratch file beside it, named
   * `path` plus a suffix. The scratch file is unlinked at once where the platform allows, so a
   * crash leaves nothing behind; elsewhere it is removed by close() or abort().
   */
  static async create(path: string, options: ZipWriterOptions = {}): Promise<ZipWriter> {
    const out = await Deno.open(path, { write: true, createNew: true });
    const scratchPath = `${path}.directory${TEMP_SUFFIX}`;
    let scratch: Deno.FsFile;
    try {
      scratch = await Deno.open(scratchPath, { read: true, write: true, createNew: true });
    } catch (error) {
      out.close();
      await Deno.remove(path).catch(() => {});
      throw error;
    }
    const writer = new ZipWriter(path, out, scratch, options);
    try {
      await Deno.remove(scratchPath);
    } catch {
      writer.#scratchPath = scratchPath;
    }
    return writer;
  }

  get entries(): number {
    return this.#count;
  }

  get size(): number {
    return this.#out.offset;
  }

  /** A directory entry (`name` ends with `/`). */
  async addDirectory(name: string, options: ZipEntryOptions = {}): Promise<void> {
    const raw = encodeName(name.endsWith("/") ? name : `${name}/`);
    const offset = this.#out.offset;
    await this.#out.write(localHeader(raw, 0, options.mtime, 0, 0, 0, this.#force));
    await this.#addCentral({
      name: raw,
      directory: true,
      method: 0,
      crc: 0,
      compressed: 0,
      size: 0,
      offset,
      mtime: options.mtime,
      stat: undefined,
    });
  }

  /** An entry already in memory, deflated in one go unless that does not make it smaller. */
  async addBytes(name: string, data: Uint8Array, options: ZipEntryOptions = {}): Promise<void> {
    const raw = encodeName(name);
    const crc = zlib.crc32(data) >>> 0;
    let method = 0;
    let payload = data;
    const level = options.level ?? 6;
    if (level > 0 && data.length > 0) {
      this.#deflater ??= new EntryDeflater(level);
      const deflated = await this.#deflater.deflate(data);
      if (deflated.length < data.length) {
        method = 8;
        payload = deflated;
      }
    }
    const offset = this.#out.offset;
    const zip64 = this.#force || data.length >= U32 || payload.length >= U32;
    await this.#out.write(
      localHeader(raw, method, options.mtime, crc, payload.length, data.length, zip64),
    );
    await this.#out.write(payload);
    await this.#addCentral({
      name: raw,
      directory: false,
      method,
      crc,
      compressed: payload.length,
      size: data.length,
      offset,
      mtime: options.mtime,
      stat: options.stat,
    });
  }

  /** An entry streamed from `readable`; `size` (when known) decides zip64 up front and is checked. */
  async addStream(
    name: string,
    readable: ReadableStream<Uint8Array>,
    options: ZipEntryOptions & { size?: number } = {},
  ): Promise<void> {
    const raw = encodeName(name);
    const offset = this.#out.offset;
    const method = (options.level ?? 6) > 0 ? 8 : 0;
    // Deflate can grow incompressible data slightly: leave room below 4 GiB.
    const zip64 = this.#force || options.size === undefined || options.size >= 0xff000000;
    await this.#out.write(localHeader(raw, method, options.mtime, 0, 0, 0, zip64));
    let crc = 0;
    let size = 0;
    let compressed = 0;
    let source = readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          crc = zlib.crc32(chunk, crc);
          size += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    );
    if (method === 8) {
      source = source.pipeThrough(
        new CompressionStream("deflate-raw") as unknown as TransformStream<Uint8Array, Uint8Array>,
      );
    }
    for await (const chunk of source) {
      compressed += chunk.length;
      await this.#out.write(chunk);
    }
    crc >>>= 0;
    if (options.size !== undefined && size !== options.size) {
      throw new Error(
        `${name} changed while being zipped: ${size} bytes read, ${options.size} expected`,
      );
    }
    const patch = new DataView(new ArrayBuffer(12));
    patch.setUint32(0, crc, true);
    patch.setUint32(4, zip64 ? U32 : compressed, true);
    patch.setUint32(8, zip64 ? U32 : size, true);
    await this.#patch(offset + 14, new Uint8Array(patch.buffer));
    if (zip64) {
      const sizes = new DataView(new ArrayBuffer(16));
      sizes.setBigUint64(0, BigInt(size), true);
      sizes.setBigUint64(8, BigInt(compressed), true);
      await this.#patch(offset + 30 + raw.length + 4, new Uint8Array(sizes.buffer));
    }
    await this.#addCentral({
      name: raw,
      directory: false,
      method,
      crc,
      compressed,
      size,
      offset,
      mtime: options.mtime,
      stat: options.stat,
    });
  }

  /**
   * An entry copied from another archive as it is, compressed bytes and CRC included: nothing
   * is inflated or deflated. Only its central directory record is new (its offset changed).
   */
  async addCopy(name: string, entry: CopiedEntry, options: ZipEntryOptions = {}): Promise<void> {
    const offset = this.#out.offset;
    if (entry.raw instanceof Uint8Array) await this.#out.write(entry.raw);
    else for await (const chunk of entry.raw) await this.#out.write(chunk);
    await this.#addCentral({
      name: encodeName(name),
      directory: false,
      method: entry.method,
      crc: entry.crc,
      compressed: entry.compressed,
      size: entry.size,
      offset,
      mtime: options.mtime,
      stat: options.stat,
    });
  }

  /**
   * Starts the archive with the first `count` entries of another archive, copied as they are:
   * `entries`, their local headers and data from its first byte, then `records`, their central
   * directory records. Their offsets stay valid because they start at the same place.
   */
  async addCopiedStart(
    entries: AsyncIterable<Uint8Array>,
    records: AsyncIterable<Uint8Array>,
    count: number,
  ): Promise<void> {
    if (this.#count > 0 || this.#out.offset > 0) {
      throw new Error("copied entries can only start an archive");
    }
    for await (const chunk of entries) await this.#out.write(chunk);
    for await (const chunk of records) await this.#directory.write(chunk);
    this.#count = count;
  }

  /** Writes the central directory and end records, then closes the file. */
  async close(): Promise<void> {
    try {
      const start = this.#out.offset;
      const size = await this.#directory.copyTo(this.#out);
      await this.#out.write(endRecords(this.#count, start, size, this.#force));
      await this.#out.flush();
      await syncStep(this.#out.file, this.path, this.options.recorder);
    } finally {
      await this.#release();
    }
  }

  /** Closes the files without finishing the archive (after an error or an abort). */
  async abort(): Promise<void> {
    await this.#release();
  }

  async #release(): Promise<void> {
    this.#deflater?.close();
    for (const file of [this.#out.file, this.#directory.file]) {
      try {
        file.close();
      } catch {
        // Already closed.
      }
    }
    if (this.#scratchPath) await Deno.remove(this.#scratchPath).catch(() => {});
    this.#scratchPath = undefined;
  }

  async #addCentral(entry: CentralEntry): Promise<void> {
    await this.#directory.write(centralRecord(entry, this.#force));
    this.#count++;
  }

  async #patch(at: number, bytes: Uint8Array): Promise<void> {
    await this.#out.flush();
    await this.#out.file.seek(at, Deno.SeekMode.Start);
    await writeAll(this.#out.file, bytes);
    await this.#out.file.seek(0, Deno.SeekMode.End);
  }
}

/**
 * Sequential writes to a file through one reused buffer of `size` bytes (smaller where many
 * files are written one after another, so buffers do not pile up between collections);
 * `offset` counts every byte.
 */
export class BufferedFile {
  #buffer: Uint8Array;
  #used = 0;
  offset = 0;

  constructor(readonly file: Deno.FsFile, size = CHUNK) {
    this.#buffer = new Uint8Array(size);
  }

  async write(data: Uint8Array): Promise<void> {
    this.offset += data.length;
    if (data.length > this.#buffer.length - this.#used) await this.flush();
    if (data.length >= this.#buffer.length) {
      await writeAll(this.file, data);
      return;
    }
    this.#buffer.set(data, this.#used);
    this.#used += data.length;
  }

  async flush(): Promise<void> {
    if (this.#used) await writeAll(this.file, this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }

  /** Appends everything written here (the file must be readable) to `target`; the byte count. */
  async copyTo(target: BufferedFile): Promise<number> {
    await this.flush();
    await this.file.seek(0, Deno.SeekMode.Start);
    let copied = 0;
    while (copied < this.offset) {
      const read = await this.file.read(this.#buffer);
      if (read === null) throw new Error(`zip scratch file ended after ${copied} bytes`);
      await target.write(this.#buffer.subarray(0, read));
      copied += read;
    }
    return copied;
  }
}

/**
 * Deflates one entry after another with a single zlib stream. A new deflater per entry (what
 * zlib.deflateRawSync does) allocates and frees a few hundred KB of native memory each time,
 * which fragments the heap: +80 MB of RSS over 200,000 entries, measured. Instead each entry
 * ends with a full flush (which also resets the dictionary, so entries stay independent) and
 * a final empty block (`03 00`), which makes it a complete deflate stream of its own.
 */
class EntryDeflater {
  #stream: zlib.DeflateRaw;
  #output: Uint8Array[] = [];
  #error: Error | undefined;

  constructor(level: number) {
    this.#stream = zlib.createDeflateRaw({ level });
    this.#stream.on("data", (chunk: Uint8Array) => this.#output.push(chunk));
    this.#stream.on("error", (error: Error) => this.#error = error);
  }

  deflate(data: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.#stream.write(data);
      this.#stream.flush(zlib.constants.Z_FULL_FLUSH, () => {
        if (this.#error) return reject(this.#error);
        const parts = this.#output.splice(0);
        const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0) + 2);
        let offset = 0;
        for (const part of parts) {
          out.set(part, offset);
          offset += part.length;
        }
        out.set(FINAL_EMPTY_BLOCK, offset);
        resolve(out);
      });
    });
  }

  close(): void {
    this.#stream.close();
  }
}

/** A final (BFINAL=1) empty block with fixed Huffman codes: ends a deflate stream. */
const FINAL_EMPTY_BLOCK = new Uint8Array([0x03, 0x00]);
