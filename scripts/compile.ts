/**
 * `deno task compile`: a standalone binary for this machine; `deno task compile -- --target T`
 * for one target; `deno task compile:all`: Linux x86_64/aarch64, macOS x86_64/aarch64 and
 * Windows x86_64. Binaries go to dist/ with the version in their names and a SHA256SUMS file;
 * each has the tool's permissions baked in.
 *
 * `deno compile` downloads Deno's runtime for each target from Deno's own server, so this runs
 * where that server is reachable (the release workflow), not on machines limited to npm.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import { VERSION } from "../lib/util/version.ts";
import { fail, REPO_ROOT, scriptArgs } from "./_util.ts";

/** Every target a release ships; the release workflow builds and runs each on its own OS. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** The name a target's binary is published under. */
export function binaryName(target: string): string {
  return `matterbak-${VERSION}-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/**
 * Modules the program starts at run time that main.ts does not import: verify's workers
 * (`new Worker(url)`), which `deno compile` embeds only when `--include` names them.
 */
export const RUNTIME_MODULES: readonly string[] = ["lib/verify/check_worker.ts"];

/** `deno compile`'s arguments, run in the repository: the release's and the embed check's. */
export function compileArgs(target: string, output: string): string[] {
  return [
    "compile",
    ...RUNTIME_FLAGS,
    ...RUNTIME_MODULES.flatMap((module) => ["--include", module]),
    "--target",
    target,
    "--output",
    output,
    "main.ts",
  ];
}

async function sha256(path: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: scriptArgs(),
    options: { all: { type: "boolean" }, target: { type: "string", multiple: true } },
  });
  const targets = values.all ? [...TARGETS] : values.target ?? [Deno.build.target];
  for (const target of targets) {
    if (!(TARGETS as readonly string[]).includes(target)) {
      fail(`unknown target ${target}: use one of ${TARGETS.join(", ")}`);
    }
  }
  const dist = join(REPO_ROOT, "dist");
  await Deno.mkdir(dist, { recursive: true });
  const sums: string[] = [];
  for (const target of targets) {
    const name = binaryName(target);
    const output = join(dist, name);
    const { code } = await new Deno.Command(Deno.execPath(), {
      cwd: REPO_ROOT,
      args: compileArgs(target, output),
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code !== 0) Deno.exit(code);
    // sha256sum's format, so `sha256sum -c` checks the files.
    sums.push(`${await sha256(output)}  ${name}`);
  }
  await Deno.writeTextFile(join(dist, "SHA256SUMS"), sums.join("\n") + "\n");
  // deno-lint-ignore no-console
  console.log(`Built ${targets.length} binar${targets.length === 1 ? "y" : "ies"} in ${dist}`);
}
