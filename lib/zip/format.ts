/**
 * The parts of the ZIP format (PKWARE's APPNOTE 6.3) that the writer produces and the reader of
 * a previous archive parses: central directory records, end records, and our own extra field.
 *
 * The extra field "bm" (0x6d62, not among APPNOTE's registered ids) records what a file looked
 * like when it was zipped: its modification time in milliseconds and its inode number. A DOS
 * time has 2 s steps and local time, too coarse to tell whether a file changed since; with
 * these the next run copies an unchanged entry's compressed bytes instead of compressing it
 * again. Readers skip extra fields they do not know (unzip, Python's zipfile and zip.js do).
 */

export const U32 = 0xffffffff;
export const U16 = 0xffff;
export const LOCAL_SIGNATURE = 0x04034b50;
export const CENTRAL_SIGNATURE = 0x02014b50;
export const END_SIGNATURE = 0x06054b50;
export const END64_SIGNATURE = 0x06064b50;
export const END64_LOCATOR_SIGNATURE = 0x07064b50;
/** Fixed part of a local header and of a central directory record. */
export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const END_SIZE = 22;
export const END64_SIZE = 56;
export const END64_LOCATOR_SIZE = 20;

const ZIP64_EXTRA = 0x0001;
const TIME_EXTRA = 0x5455;
export const STAT_EXTRA = 0x6d62;
const STAT_VERSION = 1;
/** Bytes of the stat field's data: version, flags, mtime (float64 ms), inode (float64). */
const STAT_DATA_SIZE = 18;
/** Set when the file was modified so shortly before it was read that the time proves little. */
const RACY_FLAG = 1;

const encoder = new TextEncoder();

/** What a file looked like when it was zipped (see the module comment). */
export interface EntryStat {
  mtimeMs: number;
  /** Undefined where the platform gives none. */
  ino: number | undefined;
  /**
   * The file was modified within the file system's clock step of being read: a later change in
   * that same step would keep its time, so its content must be compared before it is trusted.
   */
  racy: boolean;
}

/** A central directory record's fields. */
export interface CentralEntry {
  /** The name as stored (UTF-8). */
  name: Uint8Array;
  directory: boolean;
  /** 0 stored, 8 deflated. */
  method: number;
  crc: number;
  compressed: number;
  size: number;
  /** Where its local header starts in the archive. */
  offset: number;
  mtime: Date | undefined;
  stat: EntryStat | undefined;
}

export function encodeName(name: string): Uint8Array {
  const raw = encoder.encode(name);
  if (raw.length > U16) throw new RangeError(`Zip entry name too long: ${name.slice(0, 80)}...`);
  return raw;
}

/** The central directory record of `entry`; zip64 fields where a value needs them, or all. */
export function centralRecord(entry: CentralEntry, forceZip64: boolean): Uint8Array {
  const { name, directory, method, crc, compressed, size, offset, mtime, stat } = entry;
  const big = [
    forceZip64 || size >= U32,
    forceZip64 || compressed >= U32,
    forceZip64 || offset >= U32,
  ];
  const zip64Bytes = big.filter(Boolean).length * 8;
  const statBytes = stat ? 4 + STAT_DATA_SIZE : 0;
  const extra = (zip64Bytes ? 4 + zip64Bytes : 0) + 9 + statBytes;
  const record = new Uint8Array(CENTRAL_HEADER_SIZE + name.length + extra);
  const v = new DataView(record.buffer);
  const [dosTime, dosDate] = dosDateTime(mtime);
  const version = zip64Bytes ? 45 : 20;
  v.setUint32(0, CENTRAL_SIGNATURE, true);
  v.setUint16(4, (3 << 8) | version, true); // made by Unix, so the mode bits count
  v.setUint16(6, version, true);
  v.setUint16(8, 0x0800, true); // UTF-8 names
  v.setUint16(10, method, true);
  v.setUint16(12, dosTime, true);
  v.setUint16(14, dosDate, true);
  v.setUint32(16, crc, true);
  v.setUint32(20, big[1] ? U32 : compressed, true);
  v.setUint32(24, big[0] ? U32 : size, true);
  v.setUint16(28, name.length, true);
  v.setUint16(30, extra, true);
  const mode = directory ? 0o40755 : 0o100644;
  v.setUint32(38, ((mode << 16) | (directory ? 0x10 : 0)) >>> 0, true);
  v.setUint32(42, big[2] ? U32 : offset, true);
  record.set(name, CENTRAL_HEADER_SIZE);
  let p = CENTRAL_HEADER_SIZE + name.length;
  if (zip64Bytes) {
    v.setUint16(p, ZIP64_EXTRA, true);
    v.setUint16(p + 2, zip64Bytes, true);
    p += 4;
    for (const [i, value] of [size, compressed, offset].entries()) {
      if (!big[i]) continue;
      v.setBigUint64(p, BigInt(value), true);
      p += 8;
    }
  }
  // "UT" extra field: the modification time in UTC seconds.
  v.setUint16(p, TIME_EXTRA, true);
  v.setUint16(p + 2, 5, true);
  v.setUint8(p + 4, 1);
  v.setUint32(p + 5, Math.floor((mtime ?? new Date()).getTime() / 1000) >>> 0, true);
  p += 9;
  // Last, so that its flags sit at a fixed distance from the record's end (see racyFlagOffset).
  if (stat) {
    v.setUint16(p, STAT_EXTRA, true);
    v.setUint16(p + 2, STAT_DATA_SIZE, true);
    v.setUint8(p + 4, STAT_VERSION);
    v.setUint8(p + 5, stat.racy ? RACY_FLAG : 0);
    v.setFloat64(p + 6, stat.mtimeMs, true);
    v.setFloat64(p + 14, stat.ino ?? NaN, true);
  }
  return record;
}

/** Where, counted back from a record's end, the flags byte of its stat field is. */
export const RACY_FLAG_FROM_END = STAT_DATA_SIZE - 1;

/** A local header; with zip64, sizes go into its zip64 field (and may be patched later). */
export function localHeader(
  name: Uint8Array,
  method: number,
  mtime: Date | undefined,
  crc: number,
  compressed: number,
  size: number,
  zip64: boolean,
): Uint8Array {
  const extra = zip64 ? 20 : 0;
  const v = new DataView(new ArrayBuffer(LOCAL_HEADER_SIZE + name.length + extra));
  const [dosTime, dosDate] = dosDateTime(mtime);
  v.setUint32(0, LOCAL_SIGNATURE, true);
  v.setUint16(4, zip64 ? 45 : 20, true);
  v.setUint16(6, 0x0800, true);
  v.setUint16(8, method, true);
  v.setUint16(10, dosTime, true);
  v.setUint16(12, dosDate, true);
  v.setUint32(14, crc, true);
  v.setUint32(18, zip64 ? U32 : compressed, true);
  v.setUint32(22, zip64 ? U32 : size, true);
  v.setUint16(26, name.length, true);
  v.setUint16(28, extra, true);
  const bytes = new Uint8Array(v.buffer);
  bytes.set(name, LOCAL_HEADER_SIZE);
  if (zip64) {
    v.setUint16(30 + name.length, ZIP64_EXTRA, true);
    v.setUint16(32 + name.length, 16, true);
    v.setBigUint64(34 + name.length, BigInt(size), true);
    v.setBigUint64(42 + name.length, BigInt(compressed), true);
  }
  return bytes;
}

/** The end records: zip64 ones first when a count, size or offset needs them (or forced). */
export function endRecords(
  count: number,
  directoryStart: number,
  directorySize: number,
  forceZip64: boolean,
): Uint8Array {
  const zip64 = forceZip64 || count >= U16 || directoryStart >= U32 || directorySize >= U32;
  const out = new Uint8Array((zip64 ? END64_SIZE + END64_LOCATOR_SIZE : 0) + END_SIZE);
  const v = new DataView(out.buffer);
  let p = 0;
  if (zip64) {
    const end64 = directoryStart + directorySize;
    v.setUint32(0, END64_SIGNATURE, true);
    v.setBigUint64(4, BigInt(END64_SIZE - 12), true);
    v.setUint16(12, (3 << 8) | 45, true);
    v.setUint16(14, 45, true);
    v.setBigUint64(24, BigInt(count), true);
    v.setBigUint64(32, BigInt(count), true);
    v.setBigUint64(40, BigInt(directorySize), true);
    v.setBigUint64(48, BigInt(directoryStart), true);
    v.setUint32(56, END64_LOCATOR_SIGNATURE, true);
    v.setBigUint64(64, BigInt(end64), true);
    v.setUint32(72, 1, true);
    p = END64_SIZE + END64_LOCATOR_SIZE;
  }
  v.setUint32(p, END_SIGNATURE, true);
  v.setUint16(p + 8, Math.min(count, U16), true);
  v.setUint16(p + 10, Math.min(count, U16), true);
  v.setUint32(p + 12, Math.min(directorySize, U32), true);
  v.setUint32(p + 16, Math.min(directoryStart, U32), true);
  return out;
}

/** Where the central directory is, from an archive's last bytes; undefined if not found. */
export function parseEnd(
  tail: Uint8Array,
  tailStart: number,
): { count: number; start: number; size: number; end: number } | undefined {
  const v = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  // Our archives have no comment: the end record is the last 22 bytes.
  const at = tail.length - END_SIZE;
  if (at < 0 || v.getUint32(at, true) !== END_SIGNATURE || v.getUint16(at + 20, true) !== 0) {
    return undefined;
  }
  let count = v.getUint16(at + 10, true);
  let size = v.getUint32(at + 12, true);
  let start = v.getUint32(at + 16, true);
  let end = tailStart + at;
  const locator = at - END64_LOCATOR_SIZE;
  if (locator >= 0 && v.getUint32(locator, true) === END64_LOCATOR_SIGNATURE) {
    const end64 = Number(v.getBigUint64(locator + 8, true)) - tailStart;
    if (end64 < 0 || end64 + END64_SIZE > locator) return undefined;
    if (v.getUint32(end64, true) !== END64_SIGNATURE) return undefined;
    count = Number(v.getBigUint64(end64 + 32, true));
    size = Number(v.getBigUint64(end64 + 40, true));
    start = Number(v.getBigUint64(end64 + 48, true));
    end = tailStart + end64;
  }
  if (start + size !== end) return undefined;
  return { count, start, size, end };
}

/**
 * A central directory record as read back: the fields the next build uses. One is filled again
 * for every record (a directory of 200,000 entries makes no garbage).
 */
export interface ParsedRecord {
  /** The record's length in bytes. */
  length: number;
  /** Where the name starts in the bytes parsed, and its length. */
  nameStart: number;
  nameLength: number;
  directory: boolean;
  method: number;
  crc: number;
  compressed: number;
  size: number;
  offset: number;
  /** Whether the record has our stat field; then the three after it are set. */
  hasStat: boolean;
  mtimeMs: number;
  ino: number | undefined;
  racy: boolean;
}

export function emptyParsedRecord(): ParsedRecord {
  return {
    length: 0,
    nameStart: 0,
    nameLength: 0,
    directory: false,
    method: 0,
    crc: 0,
    compressed: 0,
    size: 0,
    offset: 0,
    hasStat: false,
    mtimeMs: 0,
    ino: undefined,
    racy: false,
  };
}

/**
 * Reads the central directory record at `at` in `bytes` into `out`; false when there is no
 * whole, well-formed record there. Sizes and offset come from the zip64 field where the
 * record has one.
 */
export function parseCentral(bytes: Uint8Array, at: number, out: ParsedRecord): boolean {
  if (at + CENTRAL_HEADER_SIZE > bytes.length) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(at, true) !== CENTRAL_SIGNATURE) return false;
  const nameLength = v.getUint16(at + 28, true);
  const extraLength = v.getUint16(at + 30, true);
  const commentLength = v.getUint16(at + 32, true);
  out.length = CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
  if (at + out.length > bytes.length) return false;
  out.nameStart = at + CENTRAL_HEADER_SIZE;
  out.nameLength = nameLength;
  out.method = v.getUint16(at + 10, true);
  out.crc = v.getUint32(at + 16, true);
  out.compressed = v.getUint32(at + 20, true);
  out.size = v.getUint32(at + 24, true);
  out.offset = v.getUint32(at + 42, true);
  out.directory = (v.getUint32(at + 38, true) & 0x10) !== 0 ||
    (nameLength > 0 && bytes[out.nameStart + nameLength - 1] === 0x2f);
  out.hasStat = false;
  let p = out.nameStart + nameLength;
  const extraEnd = p + extraLength;
  while (p + 4 <= extraEnd) {
    const id = v.getUint16(p, true);
    const dataSize = v.getUint16(p + 2, true);
    const data = p + 4;
    const dataEnd = data + dataSize;
    if (dataEnd > extraEnd) return false;
    if (id === ZIP64_EXTRA) {
      let q = data;
      for (const field of ["size", "compressed", "offset"] as const) {
        if (out[field] !== U32) continue;
        if (q + 8 > dataEnd) return false;
        out[field] = Number(v.getBigUint64(q, true));
        q += 8;
      }
    } else if (
      id === STAT_EXTRA && dataSize === STAT_DATA_SIZE && dataEnd === extraEnd &&
      commentLength === 0 && v.getUint8(data) === STAT_VERSION
    ) {
      const ino = v.getFloat64(data + 10, true);
      out.hasStat = true;
      out.racy = (v.getUint8(data + 1) & RACY_FLAG) !== 0;
      out.mtimeMs = v.getFloat64(data + 2, true);
      out.ino = Number.isNaN(ino) ? undefined : ino;
    }
    p = dataEnd;
  }
  return true;
}

/** MS-DOS date and time (local time, as zip tools expect), clamped to the format's range. */
export function dosDateTime(date = new Date()): [number, number] {
  const year = Math.min(Math.max(date.getFullYear(), 1980), 2107);
  return [
    (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1),
    ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
  ];
}
