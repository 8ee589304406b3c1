import assert from "node:assert/strict";
import { tempDir } from "./_tmp.ts";

const TESTS = new URL(".", import.meta.url);

Deno.test("tests make temporary paths only through tests/_tmp.ts, which removes them", async () => {
  const offenders: string[] = [];
  for await (const entry of Deno.readDir(TESTS)) {
    if (!entry.name.endsWith(".ts") || entry.name === "_tmp.ts") continue;
    const text = await Deno.readTextFile(new URL(entry.name, TESTS));
    // Built from pieces so that this file does not name it either.
    if (text.includes("Deno." + "makeTemp")) offenders.push(entry.name);
  }
  assert.deepEqual(offenders.sort(), []);
});

Deno.test("a test file's temporary folders are gone once it ends, failed or not", async () => {
  const dir = await tempDir();
  const script = `${dir}/leaves_test.ts`;
  const marker = `${dir}/made`;
  await Deno.writeTextFile(
    script,
    `import { tempDir, tempFile } from ${JSON.stringify(new URL("_tmp.ts", TESTS).href)};
Deno.test("makes a folder and a file, then fails", async () => {
  const folder = await tempDir();
  await Deno.writeTextFile(folder + "/data", "x".repeat(1000));
  await Deno.mkdir(folder + ".user/.cache", { recursive: true });
  Deno.writeTextFileSync(
    ${JSON.stringify(marker)},
    [folder, folder + ".user", await tempFile()].join("\\n"),
  );
  throw new Error("failing on purpose");
});
`,
  );
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--quiet", "--allow-read", "--allow-write", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(run.code, 0, "the inner test was meant to fail");
  const made = (await Deno.readTextFile(marker)).split("\n");
  assert.equal(made.length, 3);
  for (const path of made) {
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound, `${path} is still there`);
  }
});
