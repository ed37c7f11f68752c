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
import { TEMP_SUFFIX, writeAll } from "../store/atomic_write.ts";

const U32 = 0xffffffff;
const U16 = 0xffff;
/** Writes are collected into buffers of this size. */
const CHUNK = 1 << 20;
const encoder = new TextEncoder();

export interface ZipEntryOptions {
  /** 0 stores, 1-9 deflates (default 6). */
  level?: number;
  mtime?: Date;
}

export interface ZipWriterOptions {
  /** Write zip64 records for every entry and the end record (tests use it). */
  forceZip64?: boolean;
}

export class ZipWriter {
  #out: BufferedFile;
  #directory: BufferedFile;
  #count = 0;
  #force: boolean;
  #deflater: EntryDeflater | undefined;
  /** Set while the scratch file still has a name (it could not be unlinked while open). */
  #scratchPath: string | undefined;

  private constructor(out: Deno.FsFile, directory: Deno.FsFile, options: ZipWriterOptions) {
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
    const writer = new ZipWriter(out, scratch, options);
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
    await this.#addCentral(raw, 0, options.mtime, 0, 0, 0, offset, true);
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
    await this.#addCentral(
      raw,
      method,
      options.mtime,
      crc,
      payload.length,
      data.length,
      offset,
      false,
    );
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
    await this.#addCentral(raw, method, options.mtime, crc, compressed, size, offset, false);
  }

  /** Writes the central directory and end records, then closes the file. */
  async close(): Promise<void> {
    try {
      const start = this.#out.offset;
      const size = await this.#directory.copyTo(this.#out);
      if (this.#force || this.#count >= U16 || start >= U32 || size >= U32) {
        const end64 = this.#out.offset;
        const v = new DataView(new ArrayBuffer(56 + 20));
        v.setUint32(0, 0x06064b50, true);
        v.setBigUint64(4, 44n, true);
        v.setUint16(12, (3 << 8) | 45, true);
        v.setUint16(14, 45, true);
        v.setBigUint64(24, BigInt(this.#count), true);
        v.setBigUint64(32, BigInt(this.#count), true);
        v.setBigUint64(40, BigInt(size), true);
        v.setBigUint64(48, BigInt(start), true);
        v.setUint32(56, 0x07064b50, true);
        v.setBigUint64(64, BigInt(end64), true);
        v.setUint32(72, 1, true);
        await this.#out.write(new Uint8Array(v.buffer));
      }
      const v = new DataView(new ArrayBuffer(22));
      v.setUint32(0, 0x06054b50, true);
      v.setUint16(8, Math.min(this.#count, U16), true);
      v.setUint16(10, Math.min(this.#count, U16), true);
      v.setUint32(12, Math.min(size, U32), true);
      v.setUint32(16, Math.min(start, U32), true);
      await this.#out.write(new Uint8Array(v.buffer));
      await this.#out.flush();
      await this.#out.file.sync();
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

  async #addCentral(
    raw: Uint8Array,
    method: number,
    mtime: Date | undefined,
    crc: number,
    compressed: number,
    size: number,
    offset: number,
    directory: boolean,
  ): Promise<void> {
    const big = [
      this.#force || size >= U32,
      this.#force || compressed >= U32,
      this.#force || offset >= U32,
    ];
    const zip64Bytes = big.filter(Boolean).length * 8;
    const extra = (zip64Bytes ? 4 + zip64Bytes : 0) + 9;
    const record = new Uint8Array(46 + raw.length + extra);
    const v = new DataView(record.buffer);
    const [dosTime, dosDate] = dosDateTime(mtime);
    const version = zip64Bytes ? 45 : 20;
    v.setUint32(0, 0x02014b50, true);
    v.setUint16(4, (3 << 8) | version, true); // made by Unix, so the mode bits count
    v.setUint16(6, version, true);
    v.setUint16(8, 0x0800, true); // UTF-8 names
    v.setUint16(10, method, true);
    v.setUint16(12, dosTime, true);
    v.setUint16(14, dosDate, true);
    v.setUint32(16, crc, true);
    v.setUint32(20, big[1] ? U32 : compressed, true);
    v.setUint32(24, big[0] ? U32 : size, true);
    v.setUint16(28, raw.length, true);
    v.setUint16(30, extra, true);
    const mode = directory ? 0o40755 : 0o100644;
    v.setUint32(38, ((mode << 16) | (directory ? 0x10 : 0)) >>> 0, true);
    v.setUint32(42, big[2] ? U32 : offset, true);
    record.set(raw, 46);
    let p = 46 + raw.length;
    if (zip64Bytes) {
      v.setUint16(p, 0x0001, true);
      v.setUint16(p + 2, zip64Bytes, true);
      p += 4;
      for (const [i, value] of [size, compressed, offset].entries()) {
        if (!big[i]) continue;
        v.setBigUint64(p, BigInt(value), true);
        p += 8;
      }
    }
    // "UT" extra field: the modification time in UTC seconds.
    v.setUint16(p, 0x5455, true);
    v.setUint16(p + 2, 5, true);
    v.setUint8(p + 4, 1);
    v.setUint32(p + 5, Math.floor((mtime ?? new Date()).getTime() / 1000) >>> 0, true);
    await this.#directory.write(record);
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

function encodeName(name: string): Uint8Array {
  const raw = encoder.encode(name);
  if (raw.length > U16) throw new RangeError(`Zip entry name too long: ${name.slice(0, 80)}...`);
  return raw;
}

function localHeader(
  raw: Uint8Array,
  method: number,
  mtime: Date | undefined,
  crc: number,
  compressed: number,
  size: number,
  zip64: boolean,
): Uint8Array {
  const extra = zip64 ? 20 : 0;
  const v = new DataView(new ArrayBuffer(30 + raw.length + extra));
  const [dosTime, dosDate] = dosDateTime(mtime);
  v.setUint32(0, 0x04034b50, true);
  v.setUint16(4, zip64 ? 45 : 20, true);
  v.setUint16(6, 0x0800, true);
  v.setUint16(8, method, true);
  v.setUint16(10, dosTime, true);
  v.setUint16(12, dosDate, true);
  v.setUint32(14, crc, true);
  v.setUint32(18, zip64 ? U32 : compressed, true);
  v.setUint32(22, zip64 ? U32 : size, true);
  v.setUint16(26, raw.length, true);
  v.setUint16(28, extra, true);
  const bytes = new Uint8Array(v.buffer);
  bytes.set(raw, 30);
  if (zip64) {
    v.setUint16(30 + raw.length, 0x0001, true);
    v.setUint16(32 + raw.length, 16, true);
    v.setBigUint64(34 + raw.length, BigInt(size), true);
    v.setBigUint64(42 + raw.length, BigInt(compressed), true);
  }
  return bytes;
}

/** MS-DOS date and time (local time, as zip tools expect), clamped to the format's range. */
function dosDateTime(date = new Date()): [number, number] {
  const year = Math.min(Math.max(date.getFullYear(), 1980), 2107);
  return [
    (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1),
    ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
  ];
}
