import assert from "node:assert/strict";
import { assertOneError, homeWithIdentity, makePair, ovtp, startListen } from "./_cli.ts";

/** Printable text of `size` bytes (stdout is read as text by the helpers). */
function text(size: number): string {
  const letters = "abcdefghijklmnopqrstuvwxyz0123456789\n";
  let out = "";
  while (out.length < size) {
    const random = crypto.getRandomValues(new Uint8Array(Math.min(65536, size - out.length)));
    out += Array.from(random, (b) => letters[b % letters.length]).join("");
  }
  return out;
}

Deno.test("getfile -o - writes the file, and only the file, to stdout", async () => {
  const { server, client } = await makePair();
  const served = await Deno.makeTempDir();
  // Several data messages, and a name that must not be created.
  const content = text(300_000);
  await Deno.writeTextFile(`${served}/notes.txt`, content);
  const listener = await startListen(server.home, ["--serve", served]);
  const work = await Deno.makeTempDir();
  try {
    const got = await ovtp(["getfile", listener.target, "notes.txt", "-o", "-"], {
      home: client.home,
      cwd: work,
    });
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, content);
    assert.match(got.stderr, /got notes\.txt: .* verified and written to stdout/);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(work)), []);

    const quiet = await ovtp(["getfile", listener.target, "notes.txt", "-o", "-", "--quiet"], {
      home: client.home,
      cwd: work,
    });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stdout, content);
    assert.equal(quiet.stderr, "");

    const json = await ovtp(["getfile", listener.target, "notes.txt", "-o", "-", "--json"], {
      home: client.home,
      cwd: work,
    });
    assert.equal(json.code, 2);
    assert.equal(json.stdout, "");
    assertOneError(json, /--json prints on stdout: it cannot go with -o -/);

    const missing = await ovtp(["getfile", listener.target, "nothing.txt", "-o", "-"], {
      home: client.home,
      cwd: work,
    });
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "");
    assertOneError(missing, /The server refused/);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(work)), []);

    // The server still serves a normal download afterwards.
    const file = await ovtp(["getfile", listener.target, "notes.txt"], {
      home: client.home,
      cwd: work,
    });
    assert.equal(file.code, 0, file.stderr);
    assert.equal(await Deno.readTextFile(`${work}/notes.txt`), content);
  } finally {
    await listener.stop();
  }
});

Deno.test("open -o refuses to replace an existing file unless --force", async () => {
  const { home } = await homeWithIdentity("me");
  const work = await Deno.makeTempDir();
  await Deno.writeTextFile(`${work}/plain.txt`, "new content\n");
  const sealed = await ovtp(["seal", "-r", "self", `${work}/plain.txt`, "-o", `${work}/s.ovtp`], {
    home,
  });
  assert.equal(sealed.code, 0, sealed.stderr);
  await Deno.writeTextFile(`${work}/out.txt`, "precious\n");

  const refused = await ovtp(["open", `${work}/s.ovtp`, "-o", `${work}/out.txt`], { home });
  assert.equal(refused.code, 1);
  assert.equal(refused.stdout, "");
  assertOneError(refused, /Cannot write ".*out\.txt": it already exists/);
  assert.match(refused.stderr, /^ovtp: hint: .*--force/m);
  assert.equal(await Deno.readTextFile(`${work}/out.txt`), "precious\n");
  // Nothing left behind: no temporary file.
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(work))).map((e) => e.name).sort(),
    ["out.txt", "plain.txt", "s.ovtp"],
  );

  const forced = await ovtp(["open", `${work}/s.ovtp`, "-o", `${work}/out.txt`, "--force"], {
    home,
  });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(await Deno.readTextFile(`${work}/out.txt`), "new content\n");

  // A new name needs no --force; --force without -o is a usage error.
  const fresh = await ovtp(["open", `${work}/s.ovtp`, "-o", `${work}/new.txt`], { home });
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.equal(await Deno.readTextFile(`${work}/new.txt`), "new content\n");
  const stray = await ovtp(["open", `${work}/s.ovtp`, "--force"], { home });
  assert.equal(stray.code, 2);
  assertOneError(stray, /--force applies to -o OUT/);
});
