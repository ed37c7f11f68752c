/**
 * `deno task check:embed`: proves that the standalone binary carries everything the program
 * loads at run time, so a missing module or asset fails CI, not a user's run.
 *
 * Without arguments it compiles main.ts with the release's exact command (scripts/compile.ts)
 * against a stand-in runtime: `deno compile` takes the runtime it appends the program to from
 * DENORT_BIN instead of downloading denort, and any executable will do for inspecting what is
 * embedded (default: this deno). The result cannot run: deno itself does not look for an
 * appended program, only denort does, and denort is not on npm. `--binary PATH` inspects a
 * binary built with the real runtime instead (the release workflow, on each target's OS).
 *
 * Then it reads the payload Deno 2.9 stores in the binary (an ELF section, a Mach-O segment or
 * a PE resource named d3n0l4nd; cli/standalone/binary.rs `serialize_binary_data_section`):
 * metadata, npm snapshot, remote modules and the virtual file system, and asserts that it has
 * every module main.ts runs (its `deno info` graph along code imports, and those of the modules
 * it starts as workers, RUNTIME_MODULES in scripts/compile.ts), every npm package it
 * imports, every asset in RUNTIME_ASSETS, raw imports switched on when the program uses them,
 * and no permission prompt.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { fail, REPO_ROOT, scriptArgs } from "./_util.ts";
import { compileArgs, RUNTIME_MODULES } from "./compile.ts";

/**
 * Every file the program loads at run time that is not one of its modules, relative to the
 * repository: the viewer's CSS, JS and images go here. Each must be imported as text or bytes
 * (`import css from "./viewer.css" with { type: "text" }`, see README, Development), which is
 * what makes `deno compile` embed it. Files of npm packages are named by where `deno install`
 * puts them (node_modules/.deno/<name>@<version>/...), so a new version must be named here too.
 */
export const RUNTIME_ASSETS: readonly string[] = [
  "lib/view/assets/site.css",
  "lib/view/assets/site.js",
  "node_modules/.deno/twemoji-colr-font@15.0.3/node_modules/twemoji-colr-font/twemoji.woff2",
  "node_modules/.deno/emojibase-data@17.0.0/node_modules/emojibase-data/en/shortcodes/iamcal.json",
];

/** What `deno info --json` says about a program's module graph (the fields used here). */
export interface ModuleGraph {
  roots: string[];
  modules: GraphModule[];
  redirects?: Record<string, string>;
}

interface GraphModule {
  specifier: string;
  kind?: string;
  npmPackage?: string;
  error?: string;
  /** `code` for what runs; an import that only brings types has `type` alone. */
  dependencies?: { code?: { specifier: string }; assertionType?: string }[];
}

/**
 * The modules the program runs: those reached from the entry point along code imports. A
 * module only imported with `import type` is in the graph, but `deno compile` rightly leaves
 * it out.
 */
export function runtimeModules(graph: ModuleGraph): GraphModule[] {
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const resolve = (specifier: string) => graph.redirects?.[specifier] ?? specifier;
  const seen = new Set<string>();
  const out: GraphModule[] = [];
  const queue = graph.roots.map(resolve);
  for (let specifier = queue.pop(); specifier !== undefined; specifier = queue.pop()) {
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    const module = bySpecifier.get(specifier) ?? { specifier, error: "not in deno info's graph" };
    out.push(module);
    for (const d of module.dependencies ?? []) if (d.code) queue.push(resolve(d.code.specifier));
  }
  return out;
}

/** The part of the binary's metadata the check reads. */
export interface EmbeddedMetadata {
  entrypoint_key: string;
  permissions: { prompt?: boolean };
  unstable_config: { raw_imports?: boolean };
}

export interface EmbeddedPayload {
  metadata: EmbeddedMetadata;
  /** npm package ids, `name@version`. */
  npmPackages: string[];
  /** Specifiers of embedded remote (https:, jsr:) modules. */
  remoteModules: string[];
  /** The virtual file system: `/`-separated paths relative to its root, and their bytes. */
  files: Map<string, Uint8Array>;
}

/** A binary that is not what the check expects; its message says what and where. */
export class EmbedError extends Error {}

const MAGIC = "d3n0l4nd";

/** A reader over the payload's little-endian, length-prefixed fields. */
class Reader {
  #offset: number;
  readonly #view: DataView;

  constructor(readonly bytes: Uint8Array, offset: number) {
    this.#offset = offset;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  take(length: number): Uint8Array {
    if (length < 0 || this.#offset + length > this.bytes.length) {
      throw new RangeError(`a field of ${length} bytes runs past the end of the file`);
    }
    const out = this.bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }
  u8(): number {
    return this.take(1)[0] as number;
  }
  u32(): number {
    const value = this.#view.getUint32(this.#offset, true);
    this.#offset += 4;
    return value;
  }
  u64(): number {
    const value = this.#view.getBigUint64(this.#offset, true);
    this.#offset += 8;
    return value > BigInt(this.bytes.length) ? Infinity : Number(value);
  }
  text(length: number): string {
    return new TextDecoder("utf-8", { fatal: true }).decode(this.take(length));
  }
}

type VfsEntry =
  | { Dir: { n: string; e: VfsEntry[] } }
  | { File: { n: string; o: [number, number] } }
  | { Symlink: { n: string } };

function parseAt(bytes: Uint8Array, start: number): EmbeddedPayload {
  const r = new Reader(bytes, start);
  if (r.text(8) !== MAGIC) throw new SyntaxError("no magic bytes");
  const metadata = JSON.parse(r.text(r.u64())) as EmbeddedMetadata;
  // The npm snapshot starts with its package ids; their dependencies follow and are not needed.
  const snapshot = new Reader(r.take(r.u64()), 0);
  const npmPackages: string[] = [];
  if (snapshot.bytes.length > 0) {
    for (let i = snapshot.u32(); i > 0; i--) npmPackages.push(snapshot.text(snapshot.u32()));
  }
  const specifiers = new Map<number, string>();
  for (let i = r.u32(); i > 0; i--) {
    const specifier = r.text(r.u32());
    specifiers.set(r.u32(), specifier);
  }
  for (let i = r.u32(); i > 0; i--) r.take(8); // redirects: two specifier ids each
  const remoteModules: string[] = [];
  for (let i = r.u32(); i > 0; i--) {
    remoteModules.push(specifiers.get(r.u32()) ?? "?");
    r.u8(); // media type
    r.take(r.u32()); // source
    const flags = r.u8();
    // transpiled code, source map, CommonJS export analysis (1, 2, 4), each length-prefixed
    for (const bit of [1, 2, 4]) if (flags & bit) r.take(r.u32());
  }
  const entries = JSON.parse(r.text(r.u64())) as VfsEntry[];
  const data = r.take(r.u64());
  if (r.text(8) !== MAGIC) throw new SyntaxError("no magic bytes at the end");
  const files = new Map<string, Uint8Array>();
  const walk = (list: VfsEntry[], prefix: string) => {
    for (const entry of list) {
      if ("Dir" in entry) walk(entry.Dir.e, `${prefix}${entry.Dir.n}/`);
      else if ("File" in entry) {
        const [offset, length] = entry.File.o;
        files.set(`${prefix}${entry.File.n}`, data.subarray(offset, offset + length));
      }
    }
  };
  walk(entries, "");
  return { metadata, npmPackages, remoteModules, files };
}

/**
 * The payload of a standalone binary. It is found by its magic bytes rather than through each
 * executable format: the runtime's own code holds the same string, so every occurrence is tried
 * until one parses from the opening magic through the closing one.
 */
export function readPayload(binary: Uint8Array, name: string): EmbeddedPayload {
  const buffer = Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength);
  for (let at = buffer.indexOf(MAGIC); at !== -1; at = buffer.indexOf(MAGIC, at + 1)) {
    try {
      return parseAt(binary, at);
    } catch {
      // Not the payload: the string inside the runtime's code, or the section's name.
    }
  }
  throw new EmbedError(`${name} has no ${MAGIC} payload: not a binary from deno compile 2.9`);
}

/** Everything the payload lacks, one message each; empty when the binary is complete. */
export function findProblems(
  graph: ModuleGraph,
  payload: EmbeddedPayload,
  assets: readonly string[],
): string[] {
  const problems: string[] = [];
  const entry = graph.roots[0] ?? "";
  const key = payload.metadata.entrypoint_key;
  if (!entry.endsWith(key)) return [`the entry point ${entry} is embedded as ${key}`];
  // The virtual file system's root, as a URL: the entry point's URL without its key.
  const root = entry.slice(0, entry.length - key.length);
  const embedded = (url: string) =>
    url.startsWith(root) && payload.files.has(decodeURIComponent(url.slice(root.length)));
  let usesRawImports = false;
  for (const module of runtimeModules(graph)) {
    usesRawImports ||= module.dependencies?.some((d) =>
      d.assertionType === "text" || d.assertionType === "bytes"
    ) ?? false;
    if (module.error !== undefined) {
      problems.push(`${module.specifier}: ${module.error}`);
    } else if (module.kind === "node") {
      continue; // built into the runtime
    } else if (module.kind === "npm") {
      const id = module.npmPackage ?? module.specifier;
      if (!payload.npmPackages.some((p) => p === id || p.startsWith(`${id}_`))) {
        problems.push(`the npm package ${id} is not embedded`);
      }
    } else if (module.specifier.startsWith("file:")) {
      if (!embedded(module.specifier)) {
        problems.push(`the module ${module.specifier} is not embedded`);
      }
    } else if (!payload.remoteModules.includes(module.specifier)) {
      problems.push(`the remote module ${module.specifier} is not embedded`);
    }
  }
  for (const asset of assets) {
    if (!embedded(pathToFileURL(join(REPO_ROOT, asset)).href)) {
      problems.push(
        `the asset ${asset} is not embedded: import it with { type: "text" } or { type: "bytes" }`,
      );
    }
  }
  if (usesRawImports && payload.metadata.unstable_config.raw_imports !== true) {
    problems.push(
      `raw imports are off in the binary: add "raw-imports" to "unstable" in deno.json`,
    );
  }
  if (payload.metadata.permissions.prompt !== false) {
    problems.push("the binary would prompt for permissions: --no-prompt is missing");
  }
  return problems;
}

/** `deno info --json` of a program, run in the repository so that deno.json applies. */
export async function moduleGraph(entry: string): Promise<ModuleGraph> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    cwd: REPO_ROOT,
    args: ["info", "--json", entry],
  }).output();
  if (code !== 0) {
    throw new EmbedError(`deno info ${entry} failed: ${new TextDecoder().decode(stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(stdout)) as ModuleGraph;
}

/** The runtime `deno compile` appends to: DENORT_BIN if set, else this deno. */
function standIn(): string {
  return Deno.env.get("DENORT_BIN") ?? Deno.execPath();
}

/** Runs `deno compile` in the repository against the stand-in runtime; nothing is downloaded. */
export async function compileWithStandIn(args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    cwd: REPO_ROOT,
    args,
    env: { DENORT_BIN: standIn() },
    stdout: "null",
  }).output();
  if (code !== 0) {
    throw new EmbedError(`deno ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
  }
}

/** The graph of main.ts and of the modules it starts as workers, as one (main.ts its entry). */
export async function programGraph(): Promise<ModuleGraph> {
  const graphs = [await moduleGraph("main.ts")];
  for (const module of RUNTIME_MODULES) graphs.push(await moduleGraph(module));
  const modules = new Map(graphs.flatMap((graph) => graph.modules).map((m) => [m.specifier, m]));
  return {
    roots: graphs.flatMap((graph) => graph.roots),
    modules: [...modules.values()],
    redirects: Object.assign({}, ...graphs.map((graph) => graph.redirects ?? {})),
  };
}

/** Compiles main.ts against the stand-in runtime, or takes a built binary, and checks it. */
async function checkMain(builtBinary: string | undefined): Promise<string> {
  const graph = await programGraph();
  if (builtBinary !== undefined) {
    return report(builtBinary, graph, readPayload(await Deno.readFile(builtBinary), builtBinary));
  }
  const dir = await Deno.makeTempDir({ prefix: "matterbak-embed-" });
  try {
    const binary = join(dir, "matterbak");
    await compileWithStandIn(compileArgs(Deno.build.target, binary));
    return report(
      `main.ts compiled against ${standIn()}`,
      graph,
      readPayload(await Deno.readFile(binary), binary),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function report(what: string, graph: ModuleGraph, payload: EmbeddedPayload): string {
  const problems = findProblems(graph, payload, RUNTIME_ASSETS);
  if (problems.length > 0) throw new EmbedError(`${what} lacks:\n  ${problems.join("\n  ")}`);
  return `ok: ${what} embeds all ${
    runtimeModules(graph).length
  } modules main.ts and its ${RUNTIME_MODULES.length} worker module(s) run and ${RUNTIME_ASSETS.length} assets`;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: scriptArgs(), options: { binary: { type: "string" } } });
  try {
    // deno-lint-ignore no-console
    console.log(await checkMain(values.binary));
  } catch (error) {
    if (!(error instanceof EmbedError)) throw error;
    fail(error.message);
  }
}
