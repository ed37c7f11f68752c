/**
 * Up to `length` bytes of `file` at `position`, fewer only at the end of the file; into `into`
 * when given (a buffer reused from call to call).
 */
export async function readAt(
  file: Deno.FsFile,
  position: number,
  length: number,
  into = new Uint8Array(length),
): Promise<Uint8Array> {
  await file.seek(position, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < length) {
    const read = await file.read(into.subarray(filled, length));
    if (read === null) break;
    filled += read;
  }
  return into.subarray(0, filled);
}
