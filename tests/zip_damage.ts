/** Damage done to zip archives by the tests of the commands that read them. */

const CENTRAL_RECORD = [0x50, 0x4b, 0x01, 0x02];

/**
 * Breaks the signature of the `n`th record (from 1) of the central directory of the zip at
 * `path`, as one flipped bit on disk would: the entries before it still read.
 */
export async function breakCentralRecord(path: string, n: number): Promise<void> {
  const bytes = await Deno.readFile(path);
  const end = bytes.length - 22;
  const view = new DataView(bytes.buffer);
  if (view.getUint32(end, true) !== 0x06054b50) throw new Error(`${path}: no end record last`);
  let at = view.getUint32(end + 16, true);
  for (let seen = 1;; seen++) {
    if (!CENTRAL_RECORD.every((byte, i) => bytes[at + i] === byte)) {
      throw new Error(`${path}: no central record ${seen}`);
    }
    if (seen === n) break;
    at += 46 + view.getUint16(at + 28, true) + view.getUint16(at + 30, true) +
      view.getUint16(at + 32, true);
  }
  bytes[at + 2] = (bytes[at + 2] as number) ^ 0x10;
  await Deno.writeFile(path, bytes);
}
