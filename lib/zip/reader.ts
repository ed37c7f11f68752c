/**
 * Reads ZIP archives (ours and others', zip64 included) entry by entry: the central directory
 * is streamed, not collected, and each entry's data comes as a stream that is inflated and
 * checked against its CRC-32 and size. `export mattermost --check` and the tests read the
 * bulk-import archives with it.
 */
import zlib from "node:zlib";
import { readAt } from "../util/read_at.ts";

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated; anything else cannot be read here. */
  method: number;
  size: number;
  compressedSize: number;
  crc: number;
  /** Offset of the entry's local header. */
  offset: number;
  directory: boolean;
}

/** The file is not a ZIP archive we can read, or an entry's data does not match its record. */
export class ZipFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ZipFormatError";
  }
}

const U16 = 0xffff;
const U32 = 0xffffffff;
const END_RECORD = 0x06054b50;
const END64_LOCATOR = 0x07064b50;
const END64_RECORD = 0x06064b50;
const CENTRAL_RECORD = 0x02014b50;
const LOCAL_RECORD = 0x04034b50;
/** The end record is 22 bytes and may be followed by a comment of up to 65,535. */
const END_SEARCH = 22 + U16;
const READ_CHUNK = 1 << 16;

export class ZipReader {
  /** Reads queue up: entries and streams share one file position. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    readonly file: Deno.FsFile,
    readonly count: number,
    readonly directoryOffset: number,
    readonly directorySize: number,
  ) {}

  static async open(path: string): Promise<ZipReader> {
    const file = await Deno.open(path, { read: true });
    try {
      const size = (await file.stat()).size;
      const tailStart = Math.max(0, size - END_SEARCH);
      const tail = await readAt(file, tailStart, size - tailStart);
      const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
      let end = -1;
      for (let i = tail.length - 22; i >= 0; i--) {
        if (view.getUint32(i, true) === END_RECORD) {
          end = i;
          break;
        }
      }
      if (end < 0) throw new ZipFormatError(`${path} is not a ZIP archive (no end record)`);
      let count = view.getUint16(end + 10, true);
      let dirSize = view.getUint32(end + 12, true);
      let dirOffset = view.getUint32(end + 16, true);
      if (count === U16 || dirSize === U32 || dirOffset === U32) {
        const locator = end - 20;
        if (locator < 0 || view.getUint32(locator, true) !== END64_LOCATOR) {
          throw new ZipFormatError(`${path} needs zip64 records but has no zip64 locator`);
        }
        const end64 = await readAt(file, Number(view.getBigUint64(locator + 8, true)), 56);
        const v64 = new DataView(end64.buffer, end64.byteOffset, end64.byteLength);
        if (v64.getUint32(0, true) !== END64_RECORD) {
          throw new ZipFormatError(`${path} has a broken zip64 end record`);
        }
        count = Number(v64.getBigUint64(32, true));
        dirSize = Number(v64.getBigUint64(40, true));
        dirOffset = Number(v64.getBigUint64(48, true));
      }
      if (dirOffset + dirSize > size) {
        throw new ZipFormatError(`${path} is truncated (its central directory lies past the end)`);
      }
      return new ZipReader(path, file, count, dirOffset, dirSize);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** The entries in the order of the central directory, read a chunk at a time. */
  async *entries(): AsyncGenerator<ZipEntry> {
    const decoder = new TextDecoder();
    let buffer = new Uint8Array(0);
    /** Where the next record starts in `buffer`; what is before it is used up. */
    let at = 0;
    let position = this.directoryOffset;
    const end = this.directoryOffset + this.directorySize;
    const need = async (bytes: number) => {
      while (buffer.length - at < bytes) {
        if (position >= end) throw new ZipFormatError(`${this.path}: central directory cut short`);
        const chunk = await this.#readAt(position, Math.min(READ_CHUNK, end - position));
        position += chunk.length;
        const joined = new Uint8Array(buffer.length - at + chunk.length);
        joined.set(buffer.subarray(at));
        joined.set(chunk, buffer.length - at);
        buffer = joined;
        at = 0;
      }
    };
    for (let n = 0; n < this.count; n++) {
      await need(46);
      let v = new DataView(buffer.buffer, buffer.byteOffset + at, buffer.length - at);
      if (v.getUint32(0, true) !== CENTRAL_RECORD) {
        throw new ZipFormatError(`${this.path}: entry ${n + 1} of the central directory is broken`);
      }
      const nameLength = v.getUint16(28, true);
      const extraLength = v.getUint16(30, true);
      const recordLength = 46 + nameLength + extraLength + v.getUint16(32, true);
      await need(recordLength);
      v = new DataView(buffer.buffer, buffer.byteOffset + at, buffer.length - at);
      const name = decoder.decode(buffer.subarray(at + 46, at + 46 + nameLength));
      let size = v.getUint32(24, true);
      let compressedSize = v.getUint32(20, true);
      let offset = v.getUint32(42, true);
      // The zip64 extra field holds, in this order, only the values that overflowed.
      for (let p = 46 + nameLength; p + 4 <= 46 + nameLength + extraLength;) {
        const id = v.getUint16(p, true);
        const length = v.getUint16(p + 2, true);
        if (id === 0x0001) {
          let q = p + 4;
          const next = () => {
            const value = Number(v.getBigUint64(q, true));
            q += 8;
            return value;
          };
          if (size === U32) size = next();
          if (compressedSize === U32) compressedSize = next();
          if (offset === U32) offset = next();
        }
        p += 4 + length;
      }
      yield {
        name,
        method: v.getUint16(10, true),
        size,
        compressedSize,
        crc: v.getUint32(16, true),
        offset,
        directory: name.endsWith("/"),
      };
      at += recordLength;
    }
  }

  /** The entry's content, inflated; the stream fails if its CRC-32 or size is wrong. */
  async readable(entry: ZipEntry): Promise<ReadableStream<Uint8Array>> {
    const header = await this.#readAt(entry.offset, 30);
    const v = new DataView(header.buffer, header.byteOffset, header.byteLength);
    if (header.length < 30 || v.getUint32(0, true) !== LOCAL_RECORD) {
      throw new ZipFormatError(`${this.path}: the local header of ${entry.name} is broken`);
    }
    if (entry.method !== 0 && entry.method !== 8) {
      throw new ZipFormatError(
        `${this.path}: ${entry.name} uses compression method ${entry.method}`,
      );
    }
    let position = entry.offset + 30 + v.getUint16(26, true) + v.getUint16(28, true);
    const end = position + entry.compressedSize;
    const read = (at: number, length: number) => this.#readAt(at, length);
    const raw = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (position >= end) return controller.close();
        const chunk = await read(position, Math.min(READ_CHUNK, end - position));
        if (chunk.length === 0) {
          return controller.error(new ZipFormatError(`${entry.name} is cut short`));
        }
        position += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const data = entry.method === 8 ? inflated(raw, entry.name) : raw;
    let crc = 0;
    let size = 0;
    return data.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          crc = zlib.crc32(chunk, crc);
          size += chunk.length;
          controller.enqueue(chunk);
        },
        flush() {
          if (size !== entry.size || crc >>> 0 !== entry.crc) {
            throw new ZipFormatError(
              `${entry.name} does not match its record (${size} bytes read, ${entry.size} ` +
                `expected; CRC ${crc >>> 0 === entry.crc ? "right" : "wrong"})`,
            );
          }
        },
      }),
    );
  }

  close(): void {
    this.file.close();
  }

  #readAt(offset: number, length: number): Promise<Uint8Array> {
    const read = this.#queue.then(() => readAt(this.file, offset, length));
    this.#queue = read.catch(() => {});
    return read;
  }
}

/**
 * `raw` inflated; deflate data that cannot be inflated is a ZipFormatError naming the entry
 * (the stream fails with a bare TypeError, "corrupt deflate stream").
 */
function inflated(raw: ReadableStream<Uint8Array>, name: string): ReadableStream<Uint8Array> {
  const reader = raw.pipeThrough(
    new DecompressionStream("deflate-raw") as unknown as TransformStream<Uint8Array, Uint8Array>,
  ).getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        if (!(error instanceof TypeError)) throw error;
        throw new ZipFormatError(`${name} cannot be inflated (${error.message})`);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
