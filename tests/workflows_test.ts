/**
 * The GitHub workflows cannot run here; these tests parse them as YAML (a
 * tab or a bad indent fails the parse, as it would fail on GitHub) and check
 * what they promise: CI on three systems running the README's test task,
 * releases for the five compile targets with SHA256SUMS attached.
 */

import assert from "node:assert/strict";
import { parse } from "yaml";
import { TARGETS } from "../scripts/compile.ts";

const WORKFLOWS = new URL("../.github/workflows/", import.meta.url);

interface Step {
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
}
interface Job {
  "runs-on": string;
  needs?: string;
  strategy?: { matrix: Record<string, string[]> };
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
}

async function workflow(name: string): Promise<Workflow> {
  const text = await Deno.readTextFile(new URL(name, WORKFLOWS));
  // `strict` and `uniqueKeys` refuse what GitHub refuses: duplicate keys.
  return parse(text, { strict: true, uniqueKeys: true }) as Workflow;
}

function runs(job: Job): string {
  return job.steps.map((step) => step.run ?? "").join("\n");
}

Deno.test("ci.yml runs the test task on Linux, macOS and Windows with the pinned Deno", async () => {
  const ci = await workflow("ci.yml");
  assert.ok("push" in ci.on && "pull_request" in ci.on);
  const test = ci.jobs.test;
  assert.deepEqual(test.strategy?.matrix.os, ["ubuntu-latest", "macos-latest", "windows-latest"]);
  assert.equal(test["runs-on"], "${{ matrix.os }}");
  assert.match(runs(test), /npm install -g deno@2\.9\.6/);
  assert.match(runs(test), /^deno task test$/m);
});

Deno.test("release.yml builds the five targets on a tag and attaches them with SHA256SUMS", async () => {
  const release = await workflow("release.yml");
  assert.deepEqual(release.on, { push: { tags: ["v*"] } });
  const build = release.jobs.build;
  assert.deepEqual([...build.strategy!.matrix.target].sort(), [...TARGETS].sort());
  assert.match(runs(build), /deno task compile \$\{\{ matrix\.target \}\}/);
  const publish = release.jobs.release;
  assert.equal(publish.needs, "build");
  assert.match(runs(publish), /sha256sum ovtp-\* > SHA256SUMS/);
  assert.match(runs(publish), /gh release upload .*dist\/ovtp-\* dist\/SHA256SUMS/);
});

Deno.test("a workflow with a tab for indentation does not parse", () => {
  // The check above would be worthless if the parser accepted anything.
  assert.throws(() => parse("jobs:\n\tbuild: {}\n", { strict: true }));
  assert.throws(() => parse("a: 1\na: 2\n", { strict: true, uniqueKeys: true }));
});
