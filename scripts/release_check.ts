/**
 * `deno task release:check [-- --tag vX.Y.Z] [--notes FILE]`: what the release workflow checks
 * before it builds anything. The tag must name the version in deno.json, and CHANGELOG.md must
 * have a section for that version, which becomes the release notes (written to FILE). Prints the
 * version and whether it is a pre-release (a `-` in it: 0.2.0-rc.1), and on GitHub Actions also
 * writes them to $GITHUB_OUTPUT for the publishing job.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fail, REPO_ROOT, scriptArgs } from "./_util.ts";

export interface Release {
  version: string;
  /** Published as a pre-release, never as the latest release. */
  prerelease: boolean;
  notes: string;
}

/** A release that must not be made; the message says why and what to do. */
export class ReleaseError extends Error {}

/**
 * The body of a version's section in a Keep a Changelog file: from its `## [version]` heading
 * to the next `## ` heading or the link definitions at the end. Undefined when there is none.
 */
export function changelogSection(changelog: string, version: string): string | undefined {
  const lines = changelog.split(/\r?\n/);
  const start = lines.findIndex((line) => /^##\s+\[?([^\]\s]+)/.exec(line)?.[1] === version);
  if (start === -1) return undefined;
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((line) => /^##\s/.test(line) || /^\[[^\]]+\]:\s/.test(line));
  return rest.slice(0, end === -1 ? undefined : end).join("\n").trim();
}

/** The release for `version`, checked against the tag that asks for it (none in a dry run). */
export function release(version: string, changelog: string, tag?: string): Release {
  if (tag !== undefined && tag !== `v${version}`) {
    throw new ReleaseError(
      `the tag ${tag} does not match the version in deno.json (${version}): tag v${version}, or change the version`,
    );
  }
  const notes = changelogSection(changelog, version);
  if (notes === undefined) {
    throw new ReleaseError(
      `CHANGELOG.md has no section for ${version}: add "## [${version}] - YYYY-MM-DD" with its changes`,
    );
  }
  if (notes === "") throw new ReleaseError(`CHANGELOG.md's section for ${version} is empty`);
  return { version, prerelease: version.includes("-"), notes };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: scriptArgs(),
    options: { tag: { type: "string" }, notes: { type: "string" } },
  });
  const config = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json"))) as {
    version: string;
  };
  const changelog = await Deno.readTextFile(join(REPO_ROOT, "CHANGELOG.md"));
  let checked: Release;
  try {
    checked = release(config.version, changelog, values.tag);
  } catch (error) {
    if (!(error instanceof ReleaseError)) throw error;
    fail(error.message);
  }
  if (values.notes !== undefined) await Deno.writeTextFile(values.notes, checked.notes + "\n");
  const outputs = `version=${checked.version}\nprerelease=${checked.prerelease}\n`;
  const githubOutput = Deno.env.get("GITHUB_OUTPUT");
  if (githubOutput) await Deno.writeTextFile(githubOutput, outputs, { append: true });
  // deno-lint-ignore no-console
  console.log(outputs.trimEnd());
}
