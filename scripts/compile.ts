/**
 * `deno task compile`: a standalone binary for this machine; `deno task compile:all`: Linux
 * x86_64/aarch64, macOS x86_64/aarch64 and Windows x86_64. Binaries go to dist/ with the
 * version in their names and a SHA256SUMS file; each has the tool's permissions baked in.
 *
 * `deno compile` downloads Deno's runtime for each target from Deno's own server, so this runs
 * where that server is reachable (the release workflow), not on machines limited to npm.
 */
import { join } from "node:path";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import { REPO_ROOT } from "./repo_root.ts";
import { VERSION } from "../lib/util/version.ts";

const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

const DIST = join(REPO_ROOT, "dist");
const targets = Deno.args.includes("--all") ? [...TARGETS] : [Deno.build.target];

await Deno.mkdir(DIST, { recursive: true });
const sums: string[] = [];
for (const target of targets) {
  const name = `matterbak-${VERSION}-${target}${target.includes("windows") ? ".exe" : ""}`;
  const output = join(DIST, name);
  const { code } = await new Deno.Command(Deno.execPath(), {
    cwd: REPO_ROOT,
    args: ["compile", ...RUNTIME_FLAGS, "--target", target, "--output", output, "main.ts"],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) Deno.exit(code);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(output)));
  sums.push(`${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}  ${name}`);
}
await Deno.writeTextFile(join(DIST, "SHA256SUMS"), sums.join("\n") + "\n");
// deno-lint-ignore no-console
console.log(`Built ${targets.length} binar${targets.length === 1 ? "y" : "ies"} in ${DIST}`);
