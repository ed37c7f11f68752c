/**
 * Lines of a byte stream, one at a time, so memory holds one line however long the stream is
 * (spool files of 200,000 posts, a bulk-import JSONL of gigabytes).
 */

/** A line's text and UTF-8 length; `text` is undefined for a line longer than the limit. */
export interface Line {
  text: string | undefined;
  bytes: number;
}

const NEWLINE = 0x0a;
const RETURN = 0x0d;

/**
 * The lines of `stream`, split on "\n" with a "\r" before it dropped (as Go's bufio.ScanLines
 * does, which Mattermost's importer reads with); a last line without "\n" counts too. A line
 * longer than `maxBytes` is not collected: it comes with its length and no text.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  maxBytes = Infinity,
): AsyncGenerator<Line> {
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let length = 0;
  let tooLong = false;
  const take = (piece: Uint8Array) => {
    length += piece.length;
    if (tooLong) return;
    if (length > maxBytes) {
      tooLong = true;
      parts = [];
    } else parts.push(piece);
  };
  const finish = (): Line => {
    let bytes = length;
    let text: string | undefined;
    if (!tooLong) {
      const whole = parts.length === 1 ? parts[0] as Uint8Array : concat(parts, length);
      const end = whole[whole.length - 1] === RETURN ? whole.length - 1 : whole.length;
      bytes = end;
      text = decoder.decode(whole.subarray(0, end));
    }
    parts = [];
    length = 0;
    tooLong = false;
    return { text, bytes };
  };
  for await (const chunk of stream) {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      take(chunk.subarray(start, end));
      yield finish();
      start = end + 1;
    }
    // The chunk's tail: a copy, since a stream may reuse its buffers.
    if (start < chunk.length) take(chunk.slice(start));
  }
  if (length > 0 || tooLong) yield finish();
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
