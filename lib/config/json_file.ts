/**
 * Reading a config file and parsing its JSON, with messages that name the file, the line and
 * column of a syntax error, and keys the file should not have.
 */
import { ConfigError } from "../util/errors.ts";

export interface Parsed<T> {
  value: T;
  /** Things worth telling the user that do not stop the run (unknown keys). */
  warnings: string[];
}

/**
 * Reads a config file as text; a missing or unreadable file is a ConfigError naming it, and a
 * missing one says how to make it (`howToCreate`). UTF-16 with a byte order mark is read too:
 * Windows PowerShell 5 writes it for `matterbak list --json > channels.json`.
 */
export async function readConfigFile(
  path: string,
  what: string,
  howToCreate?: string,
): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ConfigError(
        `${what} file not found: ${path}${howToCreate ? ` (${howToCreate})` : ""}`,
      );
    }
    if (error instanceof Deno.errors.IsADirectory) {
      throw new ConfigError(`${what} file ${path} is a directory`);
    }
    throw new ConfigError(`Cannot read ${what} file ${path}: ${(error as Error).message}`);
  }
  const encoding = bytes[0] === 0xff && bytes[1] === 0xfe
    ? "utf-16le"
    : bytes[0] === 0xfe && bytes[1] === 0xff
    ? "utf-16be"
    : "utf-8";
  // The decoder drops the byte order mark.
  return new TextDecoder(encoding).decode(bytes);
}

/** JSON.parse with errors that give the file, line and column. */
export function parseJsonFile(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const offset = jsonErrorOffset(text);
    const before = text.slice(0, offset);
    const line = before.split("\n").length;
    const column = offset - before.lastIndexOf("\n");
    const found = offset < text.length
      ? `unexpected ${JSON.stringify(text[offset])}`
      : "unexpected end of file";
    const hint = /,\s*[}\]]/.test(text) ? " (trailing commas are not allowed in JSON)" : "";
    throw new ConfigError(`Invalid JSON in ${path}:${line}:${column}: ${found}${hint}`, {
      cause: error,
    });
  }
}

/**
 * Offset of the first syntax error in invalid JSON. JSON.parse does not always say where
 * (V8 often quotes a snippet instead), so a small scanner finds it.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i] as string)) i++;
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const string = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") i++;
      else if ((text.charCodeAt(i) ?? 0) < 0x20) fail();
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match) fail();
    i += (match as RegExpExecArray)[0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      while (true) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ":") fail();
        i++;
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail();
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      while (true) {
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail();
      }
    } else if (c === '"') string();
    else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else number();
  };
  try {
    value();
    ws();
    return i < text.length ? i : text.length;
  } catch (offset) {
    return Math.min(offset as number, text.length);
  }
}

export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

export function unknownKeys(
  obj: Record<string, unknown>,
  known: readonly string[],
  where: string,
): string[] {
  return Object.keys(obj).filter((key) => !known.includes(key)).map((key) =>
    `${where}: unknown key "${key}" ignored (known: ${known.join(", ")})`
  );
}
