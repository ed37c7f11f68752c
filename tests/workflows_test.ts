/**
 * The GitHub workflows cannot run here, so what the release depends on is checked in them:
 * valid YAML, CI gating the release, each binary built and run on its own OS, publishing only
 * from a tag and after everything passed, pre-releases marked.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { REPO_ROOT } from "../scripts/_util.ts";
import { TARGETS } from "../scripts/compile.ts";

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}

interface Job {
  "runs-on"?: string;
  uses?: string;
  needs?: string | string[];
  permissions?: Record<string, string>;
  strategy?: { matrix: { os?: string[]; include?: { target: string; runner: string }[] } };
  defaults?: { run?: { shell?: string } };
  steps?: Step[];
}

interface Workflow {
  name: string;
  on: Record<string, { tags?: string[] } | null>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const WORKFLOWS = join(REPO_ROOT, ".github", "workflows");

async function workflow(file: string): Promise<Workflow> {
  const doc = parseDocument(await Deno.readTextFile(join(WORKFLOWS, file)), { uniqueKeys: true });
  assert.deepEqual(doc.errors.map((e) => e.message), [], `${file} is valid YAML`);
  assert.deepEqual(doc.warnings.map((e) => e.message), [], `${file} has no YAML warning`);
  return doc.toJS() as Workflow;
}

const steps = (job: Job | undefined) => job?.steps ?? [];
const runs = (job: Job | undefined) => steps(job).map((s) => s.run ?? "");

Deno.test("every workflow parses and every job and step is complete", async () => {
  const files: string[] = [];
  for await (const entry of Deno.readDir(WORKFLOWS)) files.push(entry.name);
  assert.deepEqual(files.sort(), ["ci.yml", "release.yml"]);
  for (const file of files) {
    const { name, on, jobs } = await workflow(file);
    assert.ok(name && on && Object.keys(jobs).length > 0, file);
    for (const [id, job] of Object.entries(jobs)) {
      assert.ok(job["runs-on"] !== undefined || job.uses !== undefined, `${file}: ${id}`);
      for (const step of steps(job)) {
        assert.ok((step.uses === undefined) !== (step.run === undefined), `${file}: ${id}`);
      }
    }
  }
});

Deno.test("CI runs every check, the tests that spawn the CLI on Windows too, and can be called", async () => {
  const ci = await workflow("ci.yml");
  assert.ok("workflow_call" in ci.on);
  const check = ci.jobs.check;
  assert.deepEqual(check?.strategy?.matrix.os, ["ubuntu-latest", "macos-latest", "windows-latest"]);
  // Git Bash on Windows has the unzip the zip tests call.
  assert.equal(check?.defaults?.run?.shell, "bash");
  for (const command of ["deno task smoke", "deno task check:embed", "deno task test"]) {
    assert.ok(runs(check).includes(command), command);
  }
});

Deno.test("the release is gated by CI, the version check and every binary; only a tag publishes", async () => {
  const release = await workflow("release.yml");
  assert.deepEqual(release.on.push?.tags, ["v*"]);
  assert.ok("workflow_dispatch" in release.on, "a dry run by hand");
  assert.deepEqual(release.permissions, { contents: "read" });
  assert.equal(release.jobs.ci?.uses, "./.github/workflows/ci.yml");
  assert.ok(runs(release.jobs.version).some((r) => r.startsWith("deno task release:check")));
  const publish = release.jobs.publish;
  assert.deepEqual([publish?.needs ?? []].flat().sort(), ["binary", "ci", "version"]);
  for (const [id, job] of Object.entries(release.jobs)) {
    if (id !== "publish") assert.equal(job.permissions, undefined, `${id} cannot write`);
  }
  const publishing = steps(publish).filter((s) => /gh release create/.test(s.run ?? ""));
  assert.equal(publishing.length, 1);
  const step = publishing[0] as Step;
  assert.equal(step.if, "github.event_name == 'push' && github.ref_type == 'tag'");
  assert.match(step.run ?? "", /--notes-file RELEASE_NOTES\.md/);
  assert.match(step.run ?? "", /if \[ "\$PRERELEASE" = true \]; then flags\+=\(--prerelease\)/);
  assert.equal(step.env?.PRERELEASE, "${{ needs.version.outputs.prerelease }}");
  assert.ok(runs(publish).some((r) => r.includes("sha256sum -c SHA256SUMS")));
});

Deno.test("each target is built and run on a runner of its own OS and CPU", async () => {
  const binary = (await workflow("release.yml")).jobs.binary;
  const include = binary?.strategy?.matrix.include ?? [];
  assert.deepEqual(include.map((e) => e.target).sort(), [...TARGETS].sort());
  for (const { target, runner } of include) {
    const os = target.includes("linux")
      ? "ubuntu"
      : target.includes("darwin")
      ? "macos"
      : "windows";
    assert.ok(runner.startsWith(`${os}-`), `${target} on ${runner}`);
    // Hosted runners: ubuntu-*-arm is arm64, macos-*-intel is x86_64, other macos are arm64.
    const arm = runner.endsWith("-arm") || (os === "macos" && !runner.endsWith("-intel"));
    assert.equal(arm, target.startsWith("aarch64"), `${target} on ${runner}`);
  }
  const commands = runs(binary);
  for (
    const command of [
      "deno task compile --target ${{ matrix.target }}",
      'deno task smoke --binary "$BINARY"',
      'deno task check:embed --binary "$BINARY"',
    ]
  ) {
    assert.ok(commands.includes(command), command);
  }
  const codesign = steps(binary).find((s) => s.run?.startsWith("codesign --verify"));
  assert.equal(codesign?.if, "runner.os == 'macOS'");
});
