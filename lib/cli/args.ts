/**
 * Command-line options for every command: node's parseArgs, with messages for people. A typo
 * gets the closest option, and a negative number is taken as the value it is (parseArgs calls
 * `--rate-limit -3` ambiguous), so the command's own check can say what the value must be.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { UsageError } from "../util/errors.ts";

/** A number like -3 or -.5, taken as an option's value rather than as an option. */
const NEGATIVE_NUMBER = /^-\.?\d/;

/**
 * Parses `args` against `options`; no positional arguments. Errors are UsageErrors that point
 * at `help` (the command's help option).
 */
export function parseOptions<O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
  help = "--help",
) {
  try {
    return parseArgs({
      args: joinNegativeValues(args, options),
      options,
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(`${describeParseError(error as Error, options)} (see ${help})`);
  }
}

/** `--name -3` (or `-n -3`) as `--name=-3`, for options that take a value. */
function joinNegativeValues(args: string[], options: ParseArgsOptionsConfig): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    if (arg === "--") return [...out, ...args.slice(i)];
    const name = optionName(arg, options);
    if (name && options[name]?.type === "string" && next && NEGATIVE_NUMBER.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** The long name of `--name` or of a short `-n`, if it is one of `options`. */
function optionName(arg: string, options: ParseArgsOptionsConfig): string | undefined {
  if (arg.startsWith("--")) return arg.slice(2) in options ? arg.slice(2) : undefined;
  if (/^-[A-Za-z]$/.test(arg)) {
    return Object.keys(options).find((name) => options[name]?.short === arg.slice(1));
  }
  return undefined;
}

function describeParseError(error: Error, options: ParseArgsOptionsConfig): string {
  const message = error.message.replace(/\. To specify a positional argument.*$/s, "")
    .replace(/\s*\n\s*/g, " ");
  const unknown = /^Unknown option '(--?[^'=]+)'/.exec(message)?.[1];
  if (unknown === undefined) return message;
  const closest = closestOption(unknown, Object.keys(options));
  return closest ? `${message}; did you mean ${closest}?` : message;
}

/**
 * The option most like `typed` (`--updat-old-posts`, `--datadir`), when it is close enough to
 * be a typo: at most a third of its letters differ.
 */
export function closestOption(typed: string, names: readonly string[]): string | undefined {
  const bare = typed.replace(/^-+/, "");
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(bare, name);
    if (!best || distance < best.distance) best = { name, distance };
  }
  if (!best || best.distance > Math.max(1, Math.floor(best.name.length / 3))) return undefined;
  return `--${best.name}`;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(
        substitution,
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}
