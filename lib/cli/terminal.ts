/**
 * Questions asked at a terminal (`matterbak init`): a line that is echoed, and a secret that is
 * not. Prompts go to stderr, so stdout stays clean for what a command prints.
 */
import { InterruptedError } from "../util/errors.ts";

export interface Terminal {
  /** The answer, trimmed; undefined at end of input. */
  ask(question: string): Promise<string | undefined>;
  /** Like `ask`, without showing what is typed. */
  askSecret(question: string): Promise<string | undefined>;
}

/** Keys that end or edit a line typed with echo off. */
const ENTER = [0x0d, 0x0a];
const BACKSPACE = [0x7f, 0x08];
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CTRL_U = 0x15;

/**
 * The state of a secret being typed in raw mode: bytes so far, and whether the line ended.
 * Pure, so the key handling is tested without a terminal.
 */
export interface SecretInput {
  bytes: number[];
  /** "enter": complete; "eof": Ctrl+D on an empty line; "interrupt": Ctrl+C. */
  end?: "enter" | "eof" | "interrupt";
}

export function typeSecret(state: SecretInput, chunk: Uint8Array): SecretInput {
  const bytes = [...state.bytes];
  for (const byte of chunk) {
    if (ENTER.includes(byte)) return { bytes, end: "enter" };
    if (byte === CTRL_C) return { bytes: [], end: "interrupt" };
    if (byte === CTRL_D && bytes.length === 0) return { bytes, end: "eof" };
    if (BACKSPACE.includes(byte)) {
      // A whole UTF-8 character: its continuation bytes (10xxxxxx) and its lead byte.
      while (bytes.length > 0 && ((bytes.at(-1) as number) & 0xc0) === 0x80) bytes.pop();
      bytes.pop();
    } else if (byte === CTRL_U) {
      bytes.length = 0;
    } else if (byte >= 0x20 || byte === 0x09) {
      bytes.push(byte);
    }
  }
  return { bytes };
}

function writeErr(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(text));
}

/** The process's terminal, when stdin is one. */
export function processTerminal(): Terminal | undefined {
  if (!Deno.stdin.isTerminal()) return undefined;
  return {
    ask(question) {
      writeErr(question);
      return readLine();
    },
    async askSecret(question) {
      writeErr(question);
      Deno.stdin.setRaw(true);
      let state: SecretInput = { bytes: [] };
      const buffer = new Uint8Array(256);
      try {
        while (!state.end) {
          const n = await Deno.stdin.read(buffer);
          state = n === null ? { ...state, end: "eof" } : typeSecret(state, buffer.subarray(0, n));
        }
      } finally {
        Deno.stdin.setRaw(false);
        writeErr("\n");
      }
      if (state.end === "interrupt") throw new InterruptedError("SIGINT");
      if (state.end === "eof") return undefined;
      return new TextDecoder().decode(new Uint8Array(state.bytes)).trim();
    },
  };
}

/** One line of stdin (echoed by the terminal). */
async function readLine(): Promise<string | undefined> {
  const bytes: number[] = [];
  const buffer = new Uint8Array(1);
  while (true) {
    const n = await Deno.stdin.read(buffer);
    if (n === null) return bytes.length > 0 ? decode(bytes) : undefined;
    if (buffer[0] === 0x0a) return decode(bytes);
    bytes.push(buffer[0] as number);
  }
}

function decode(bytes: number[]): string {
  return new TextDecoder().decode(new Uint8Array(bytes)).trim();
}
