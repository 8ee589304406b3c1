import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { atomicWrite, openForAppend } from "../lib/io/files.ts";
import { chmodFile, openExistingFile } from "../lib/io/no_follow.ts";
import { OvtpError } from "../lib/errors.ts";

// Symlinks on Windows need a privilege, and modes do not exist there.
const POSIX = Deno.build.os !== "windows";

async function setup() {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/target`, "keep me\n");
  await Deno.chmod(`${dir}/target`, 0o640);
  await Deno.symlink(`${dir}/target`, `${dir}/link`);
  await Deno.symlink(`${dir}/nothing`, `${dir}/dangling`);
  return {
    dir,
    async assertUntouched() {
      assert.equal(await Deno.readTextFile(`${dir}/target`), "keep me\n");
      assert.equal((await Deno.stat(`${dir}/target`)).mode! & 0o777, 0o640);
      await assert.rejects(Deno.lstat(`${dir}/nothing`), Deno.errors.NotFound);
    },
  };
}

Deno.test("the writers refuse a symlink, to a file or to nothing, and leave the target alone", {
  ignore: !POSIX,
}, async () => {
  const { dir, assertUntouched } = await setup();
  for (const name of ["link", "dangling"]) {
    const path = `${dir}/${name}`;
    const refusal = /Cannot write ".*": it is a symbolic link \(ovtp never writes through one\)/;
    await assert.rejects(openExistingFile(path, { write: true }), refusal);
    await assert.rejects(openForAppend(path, 0o600), refusal);
    await assert.rejects(atomicWrite(path, "new"), refusal);
    assert.throws(
      () => chmodFile(path, 0o777),
      /Cannot set the mode of ".*": it is a symbolic link/,
    );
    assert.ok((await Deno.lstat(path)).isSymlink);
  }
  await assertUntouched();
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).length, 3); // No temporary left.
});

Deno.test("openExistingFile() refuses a hard-linked file for writing, and a folder", {
  ignore: !POSIX,
}, async () => {
  const { dir, assertUntouched } = await setup();
  await Deno.link(`${dir}/target`, `${dir}/second-name`);
  await assert.rejects(
    openExistingFile(`${dir}/second-name`, { write: true }),
    (error) => error instanceof OvtpError && /it has other names/.test(error.message),
  );
  await Deno.mkdir(`${dir}/folder`);
  await assert.rejects(openExistingFile(`${dir}/folder`), /it is not a regular file/);
  // Reading a file with two names is fine.
  (await openExistingFile(`${dir}/second-name`))!.close();
  assert.equal(await openExistingFile(`${dir}/missing`), null);
  await assertUntouched();
});

Deno.test("openForAppend() creates a new file exclusively and appends to its own", async () => {
  const dir = await tempDir();
  for (const text of ["one\n", "two\n"]) {
    using file = await openForAppend(`${dir}/queue`, 0o600);
    await file.write(new TextEncoder().encode(text));
  }
  assert.equal(await Deno.readTextFile(`${dir}/queue`), "one\ntwo\n");
});
