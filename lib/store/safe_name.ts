/**
 * Turns names taken from the server (usernames, channel, team, emoji and file names) into
 * file-name fragments that are safe on Linux, macOS and Windows, and checks whole path
 * components before anything is written.
 */

// Path separators, Windows-forbidden characters, C0/C1 controls and DEL.
// deno-lint-ignore no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f/\\:*?"<>|]/g;
// deno-lint-ignore no-control-regex
const CONTAINED_FORBIDDEN = /[\u0000-\u001f\u007f/\\]/;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
/** Default cap for a name fragment; ids, separators and suffixes stay well under 255 bytes. */
export const MAX_NAME_BYTES = 120;

const encoder = new TextEncoder();

/** UTF-8 length of a string. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes without splitting a code point. */
function truncateUtf8(text: string, maxBytes: number): string {
  let bytes = 0;
  let out = "";
  for (const char of text) {
    const size = utf8Length(char);
    if (bytes + size > maxBytes) break;
    bytes += size;
    out += char;
  }
  return out;
}

/**
 * A fragment for use inside a file name: NFC-normalised, with separators, control and
 * Windows-forbidden characters replaced by `_`, no trailing dots or spaces, never empty or
 * `.`/`..`, and at most `maxBytes` UTF-8 bytes (a short extension is kept when cutting).
 */
export function safeName(name: string, maxBytes = MAX_NAME_BYTES): string {
  let out = name.normalize("NFC").replace(UNSAFE_CHARS, "_");
  if (utf8Length(out) > maxBytes) {
    const dot = out.lastIndexOf(".");
    const ext = dot > 0 && out.length - dot <= 16 ? out.slice(dot) : "";
    out = truncateUtf8(out.slice(0, out.length - ext.length), maxBytes - utf8Length(ext)) + ext;
  }
  out = out.replace(/[. ]+$/, "");
  if (out === "" || /^\.+$/.test(out)) out = "_";
  if (WINDOWS_RESERVED.test(out)) out = `_${out}`;
  return out;
}

/** True when `component` can be used as one path component on every supported OS. */
export function isSafeComponent(component: string): boolean {
  return component !== "" &&
    component === component.replace(UNSAFE_CHARS, "") &&
    !/^\.+$/.test(component) &&
    !/[. ]$/.test(component) &&
    !WINDOWS_RESERVED.test(component) &&
    utf8Length(component) <= 255;
}

/**
 * The weaker rule every written path component must pass, whoever named it: not empty, not
 * `.` or `..`, no separator or control character, at most 255 bytes.
 */
export function isContainedComponent(component: string): boolean {
  return component !== "" && !/^\.\.?$/.test(component) && !CONTAINED_FORBIDDEN.test(component) &&
    utf8Length(component) <= 255;
}
