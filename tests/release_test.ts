/** What ships is what is tested: one version, one set of permissions. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { RUNTIME_FLAGS } from "../lib/cli/runtime_flags.ts";
import { VERSION } from "../lib/util/version.ts";
import { REPO_ROOT } from "../scripts/_util.ts";
import { changelogSection, release, ReleaseError } from "../scripts/release_check.ts";

const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))) as {
  version: string;
  tasks: Record<string, string>;
};

Deno.test("the version in deno.json is the one --version prints", () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/);
  assert.equal(config.version, VERSION);
});

Deno.test("deno task backup runs with exactly the binary's flags", () => {
  assert.equal(config.tasks.backup, `deno run ${RUNTIME_FLAGS.join(" ")} main.ts`);
});

Deno.test("the binary never asks for a permission: --no-prompt is baked in", () => {
  assert.ok(RUNTIME_FLAGS.includes("--no-prompt"));
});

Deno.test("the permissions are the narrow ones: no --allow-all, run, sys or ffi; env limited", () => {
  for (const flag of RUNTIME_FLAGS) assert.doesNotMatch(flag, /allow-(all|run|sys|ffi)|^-A$/);
  assert.ok(
    RUNTIME_FLAGS.includes("--allow-env=MATTERBAK_PASSWORD,MATTERBAK_TOKEN,MATTERBAK_MFA_CODE"),
  );
});

Deno.test("no path is taken from a file URL's pathname (on Windows it is /D:/..., and %20 stays)", async () => {
  const offenders: string[] = [];
  const scan = async (dir: string) => {
    for await (const entry of Deno.readDir(join(REPO_ROOT, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await scan(path);
      else if (path.endsWith(".ts")) {
        const text = await Deno.readTextFile(join(REPO_ROOT, path));
        if (/import\.meta\.url\s*\)\s*\.pathname/.test(text)) offenders.push(path);
      }
    }
  };
  for (const dir of ["lib", "scripts", "tests"]) await scan(dir);
  assert.deepEqual(offenders, [], "use REPO_ROOT (scripts/_util.ts) or fileURLToPath");
});

Deno.test("CHANGELOG.md keeps an Unreleased section and has one for the version in deno.json", async () => {
  const changelog = await Deno.readTextFile(join(REPO_ROOT, "CHANGELOG.md"));
  assert.notEqual(changelogSection(changelog, "Unreleased"), undefined);
  assert.doesNotThrow(() => release(config.version, changelog));
});

const CHANGELOG = `# Changelog

## [Unreleased]

- Something to come.

## [0.2.0-rc.1] - 2026-12-01

- A release candidate.

## [0.2.0] - 2026-12-02

### Fixed

- A fix.

## [0.1.0] - 2026-11-30

- The first release.

[0.2.0]: https://example.org/compare/v0.1.0...v0.2.0
`;

Deno.test("a version's release notes are its CHANGELOG section, no more", () => {
  assert.equal(changelogSection(CHANGELOG, "0.2.0"), "### Fixed\n\n- A fix.");
  assert.equal(changelogSection(CHANGELOG, "0.2.0-rc.1"), "- A release candidate.");
  assert.equal(changelogSection(CHANGELOG, "0.1.0"), "- The first release.");
  assert.equal(changelogSection(CHANGELOG, "0.1"), undefined);
  assert.equal(changelogSection(CHANGELOG, "0.3.0"), undefined);
});

Deno.test("a release needs a tag naming its version and a CHANGELOG section; a '-' makes it a pre-release", () => {
  assert.deepEqual(release("0.2.0", CHANGELOG, "v0.2.0"), {
    version: "0.2.0",
    prerelease: false,
    notes: "### Fixed\n\n- A fix.",
  });
  assert.equal(release("0.2.0-rc.1", CHANGELOG, "v0.2.0-rc.1").prerelease, true);
  assert.equal(release("0.2.0", CHANGELOG).version, "0.2.0", "a dry run has no tag");
  assert.throws(
    () => release("0.2.0", CHANGELOG, "v0.2.1"),
    new ReleaseError(
      "the tag v0.2.1 does not match the version in deno.json (0.2.0): tag v0.2.0, or change the version",
    ),
  );
  assert.throws(
    () => release("0.3.0", CHANGELOG, "v0.3.0"),
    new ReleaseError(
      'CHANGELOG.md has no section for 0.3.0: add "## [0.3.0] - YYYY-MM-DD" with its changes',
    ),
  );
  assert.throws(
    () => release("0.3.0", "## [0.3.0] - 2027-01-01\n\n## [0.2.0]\n- x\n", "v0.3.0"),
    new ReleaseError("CHANGELOG.md's section for 0.3.0 is empty"),
  );
});

Deno.test("the release workflow's check writes the notes and its outputs, and refuses a wrong tag", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const notes = join(dir, "notes.md");
    const output = join(dir, "github_output");
    const run = (tag: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["task", "release:check", "--tag", tag, "--notes", notes],
        cwd: REPO_ROOT,
        env: { GITHUB_OUTPUT: output, NO_COLOR: "1" },
      }).output();
    const ok = await run(`v${VERSION}`);
    assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
    const changelog = await Deno.readTextFile(join(REPO_ROOT, "CHANGELOG.md"));
    assert.equal(await Deno.readTextFile(notes), `${changelogSection(changelog, VERSION)}\n`);
    assert.equal(
      await Deno.readTextFile(output),
      `version=${VERSION}\nprerelease=${VERSION.includes("-")}\n`,
    );
    const wrong = await run("v0.0.0-wrong");
    assert.equal(wrong.code, 1);
    assert.match(
      new TextDecoder().decode(wrong.stderr),
      /^error: the tag v0\.0\.0-wrong does not match the version in deno\.json/m,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
