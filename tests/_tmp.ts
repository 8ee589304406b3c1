/**
 * Temporary folders and files for tests, removed when the test file ends.
 *
 * Every test file runs in a worker of its own, whose `unload` event comes once
 * its tests are done, failed or not. A run used to leave each home, inbox and
 * npm prefix behind (about 7 GB a run, some files 64 MiB): on a shared disk
 * that filled it, and the next run failed at random. Tests make their
 * temporary paths here, never with `Deno.makeTempDir` itself
 * (tests/tmp_test.ts checks).
 */

const made: string[] = [];

globalThis.addEventListener("unload", () => {
  for (const path of made.splice(0)) {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        console.error(`tests/_tmp.ts: cannot remove ${path}: ${error}`);
      }
    }
  }
});

const PREFIX = "ovtp-test-";

/**
 * A new empty folder, removed with everything in it when the test file ends,
 * with `PATH.user` beside it: tests run child processes with HOME there, so
 * that nothing reaches the real ~/.ovtp, and Deno caches a few MB in it.
 */
export async function tempDir(options: Deno.MakeTempOptions = {}): Promise<string> {
  const path = await Deno.makeTempDir({ prefix: PREFIX, ...options });
  made.push(path, `${path}.user`);
  return path;
}

/** {@link tempDir}, synchronously. */
export function tempDirSync(options: Deno.MakeTempOptions = {}): string {
  const path = Deno.makeTempDirSync({ prefix: PREFIX, ...options });
  made.push(path, `${path}.user`);
  return path;
}

/** A new empty file, removed when the test file ends. */
export async function tempFile(options: Deno.MakeTempOptions = {}): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: PREFIX, ...options });
  made.push(path);
  return path;
}
