/**
 * A symlink (or a hard link) planted where ovtp is about to write is
 * refused with a clear error, and its target keeps its bytes and its mode:
 * getfile's partial file and destination, open -o and seal -o, and the
 * atomic writes of ~/.ovtp (authorized_keys, known_hosts).
 */

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { assertOneError, makePair, ovtp, startListen, SYMLINKS, tempHome } from "./_cli.ts";
import { Keystore } from "../mod.ts";

// Hard links, modes and dangling links are checked where the system has them.
const POSIX = Deno.build.os !== "windows";
if (!POSIX) console.log("cli_symlink_test: skipped on Windows (symlinks need a privilege)");

/** A file that must come through untouched: its bytes and mode. */
async function victim(dir: string, name: string, text = "precious\n") {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, 0o640);
  return {
    path,
    async assertUntouched() {
      assert.equal(await Deno.readTextFile(path), text, path);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640, path);
    },
  };
}

Deno.test("getfile refuses a link planted at DEST.ovtp-partial or DEST; the target is untouched", {
  ignore: !POSIX || !SYMLINKS,
}, async () => {
  const { server, client } = await makePair();
  const served = await tempDir();
  const data = crypto.getRandomValues(new Uint8Array(30_000));
  await Deno.writeFile(`${served}/a.bin`, data);
  const work = await tempDir();
  const target = await victim(work, "victim.txt");
  const listener = await startListen(server.home, ["--serve", served]);
  const get = (dest: string) =>
    ovtp(["getfile", listener.target, "a.bin", "-o", `${work}/${dest}`], { home: client.home });
  try {
    // A symlink to an existing file: today its target was truncated and overwritten.
    await Deno.symlink(target.path, `${work}/one.bin.ovtp-partial`);
    const one = await get("one.bin");
    assert.equal(one.code, 6, one.stderr); // A local file (README's exit codes).
    assertOneError(
      one,
      /Cannot resume into ".*one\.bin\.ovtp-partial": it is a symbolic link \(ovtp never writes through one\)/,
    );
    await target.assertUntouched();
    await assert.rejects(Deno.lstat(`${work}/one.bin`), Deno.errors.NotFound);

    // A dangling symlink: its target must not be created.
    await Deno.symlink(`${work}/made-by-link`, `${work}/two.bin.ovtp-partial`);
    const two = await get("two.bin");
    assert.equal(two.code, 6);
    assertOneError(two, /Cannot resume into ".*two\.bin\.ovtp-partial": it is a symbolic link/);
    await assert.rejects(Deno.lstat(`${work}/made-by-link`), Deno.errors.NotFound);

    // A hard link to another file: writing into it would change that file.
    await Deno.link(target.path, `${work}/three.bin.ovtp-partial`);
    const three = await get("three.bin");
    assert.equal(three.code, 6);
    assertOneError(three, /Cannot resume into ".*three\.bin\.ovtp-partial": it has other names/);
    await target.assertUntouched();

    // The destination itself is a link.
    await Deno.symlink(target.path, `${work}/four.bin`);
    const four = await get("four.bin");
    assert.equal(four.code, 6);
    assertOneError(four, /"[^"]*four\.bin" already exists/);
    await target.assertUntouched();

    // The server still serves, and an honest download still works.
    const fine = await get("fine.bin");
    assert.equal(fine.code, 0, fine.stderr);
    assert.deepEqual(await Deno.readFile(`${work}/fine.bin`), data);
  } finally {
    await listener.stop();
  }
});

Deno.test("seal -o and open -o refuse a link planted at OUT; the target is untouched", {
  ignore: !POSIX || !SYMLINKS,
}, async () => {
  const home = await tempHome();
  const { line } = await new Keystore(home).createIdentity({ comment: "me" });
  await new Keystore(home).addAuthorizedKey(
    (await new Keystore(home).loadIdentity(() => Promise.resolve(""))).publicKey,
    "me",
  );
  assert.ok(line);
  const work = await tempDir();
  const target = await victim(work, "victim.txt");
  await Deno.writeTextFile(`${work}/plain.txt`, "secret plans\n");
  const sealed = await ovtp(["seal", "-r", "me", `${work}/plain.txt`, "-o", `${work}/s.ovtp`], {
    home,
  });
  assert.equal(sealed.code, 0, sealed.stderr);

  await Deno.symlink(target.path, `${work}/sealed-link`);
  const seal = await ovtp(["seal", "-r", "me", `${work}/plain.txt`, "-o", `${work}/sealed-link`], {
    home,
  });
  assert.equal(seal.code, 6, seal.stderr);
  assertOneError(seal, /Cannot write ".*sealed-link": it is a symbolic link/);
  await target.assertUntouched();

  await Deno.symlink(target.path, `${work}/opened-link`);
  const open = await ovtp(["open", `${work}/s.ovtp`, "-o", `${work}/opened-link`], { home });
  assert.equal(open.code, 6, open.stderr);
  assertOneError(open, /Cannot write ".*opened-link": it is a symbolic link/);
  await target.assertUntouched();
  assert.ok((await Deno.lstat(`${work}/opened-link`)).isSymlink);

  await Deno.symlink(`${work}/made-by-link`, `${work}/dangling`);
  const dangling = await ovtp(["open", `${work}/s.ovtp`, "-o", `${work}/dangling`], { home });
  assert.equal(dangling.code, 6);
  assertOneError(dangling, /Cannot write ".*dangling": it is a symbolic link/);
  await assert.rejects(Deno.lstat(`${work}/made-by-link`), Deno.errors.NotFound);
});

Deno.test("~/.ovtp files written atomically refuse a link planted in their place", {
  ignore: !POSIX || !SYMLINKS,
}, async () => {
  const { server, client } = await makePair();
  const work = await tempDir();
  // authorized_keys: read through the link is fine, replacing it is refused.
  const keys = await victim(
    work,
    "keys.txt",
    await Deno.readTextFile(`${server.home}/authorized_keys`),
  );
  await Deno.remove(`${server.home}/authorized_keys`);
  await Deno.symlink(keys.path, `${server.home}/authorized_keys`);
  const other = await tempHome();
  const { line } = await new Keystore(other).createIdentity({ comment: "bob" });
  const added = await ovtp(["add-key", line], { home: server.home });
  assert.notEqual(added.code, 0);
  assertOneError(added, /Cannot write ".*authorized_keys": it is a symbolic link/);
  await keys.assertUntouched();

  // known_hosts: the first connection records the server.
  const hosts = await victim(work, "hosts.txt", "");
  await Deno.symlink(hosts.path, `${client.home}/known_hosts`);
  const listener = await startListen(server.home);
  try {
    const sent = await ovtp(["send", listener.target, "hello"], { home: client.home });
    assert.notEqual(sent.code, 0);
    assert.match(sent.stderr, /Cannot write ".*known_hosts": it is a symbolic link/);
    await hosts.assertUntouched();
    // The server still serves a client whose files are in order.
    await Deno.remove(`${client.home}/known_hosts`);
    const fine = await ovtp(["send", listener.target, "hello"], { home: client.home });
    assert.equal(fine.code, 0, fine.stderr);
  } finally {
    await listener.stop();
  }
});
