/**
 * The crypto backend from the command line: OVTP_CRYPTO, `--version`, and
 * processes on different backends talking to each other (the wire and file
 * formats do not depend on the backend).
 */
import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { Keystore } from "../mod.ts";
import {
  assertOneError,
  assertStoppedCleanly,
  MAIN,
  makePair,
  ovtp,
  startListen,
  tempHome,
} from "./_cli.ts";

function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

Deno.test("--version names the backend OVTP_CRYPTO chose; a bad value is a usage error", async () => {
  const native = await ovtp(["--version"], { env: { OVTP_CRYPTO: "native" } });
  assert.equal(native.code, 0, native.stderr);
  assert.match(native.stdout, /^ovtp \d+\.\d+\.\d+\ncrypto: native \(OpenSSL 3\.\d+\.\d+, .+\)\n$/);
  const auto = await ovtp(["--version"]);
  assert.match(auto.stdout, /\ncrypto: native \(OpenSSL 3/);
  const portable = await ovtp(["--version"], { env: { OVTP_CRYPTO: "portable" } });
  assert.match(portable.stdout, /\ncrypto: portable \(node:crypto, as asked\)\n$/);
  const bad = await ovtp(["--version"], { env: { OVTP_CRYPTO: "openssl" } });
  assert.equal(bad.code, 2);
  assertOneError(bad, /^ovtp: error: Invalid OVTP_CRYPTO "openssl": use native, portable or auto$/);
  assert.equal(bad.stdout, "");
});

Deno.test("a bad OVTP_CRYPTO fails a command as a usage error, as --json asks; its --help needs no crypto", async () => {
  const env = { OVTP_CRYPTO: "openssl" };
  const bad = await ovtp(["id"], { env });
  assert.equal(bad.code, 2);
  assertOneError(bad, /^ovtp: error: Invalid OVTP_CRYPTO "openssl": use native, portable or auto$/);
  assert.equal(bad.stdout, "");
  const json = await ovtp(["id", "--json"], { env });
  assert.equal(json.code, 2);
  assert.deepEqual(
    { kind: JSON.parse(json.stdout).kind, exit_code: JSON.parse(json.stdout).exit_code },
    { kind: "usage", exit_code: 2 },
  );
  const help = await ovtp(["send", "--help"], { env });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: ovtp send /);
  assert.equal(help.stderr, "");
});

Deno.test("without --allow-ffi, auto falls back to portable and OVTP_CRYPTO=native fails", async () => {
  const run = async (env: Record<string, string>) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-env", MAIN, "--version"],
      env: { NO_COLOR: "1", ...env },
    }).output();
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: output.code, stdout: text(output.stdout), stderr: text(output.stderr) };
  };
  const auto = await run({});
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(
    auto.stdout,
    /\ncrypto: portable \(node:crypto; native unavailable: --allow-ffi is not granted\)\n$/,
  );
  const native = await run({ OVTP_CRYPTO: "native" });
  assert.equal(native.code, 2); // A setting this machine cannot honour.
  assertOneError(
    native,
    /^ovtp: error: Cannot use the native crypto backend: --allow-ffi is not granted$/,
  );
});

for (const [server, client] of [["portable", "native"], ["native", "portable"]]) {
  Deno.test(`a ${client} client sends a message and a 3 MiB file to a ${server} server`, async () => {
    const pair = await makePair();
    const listener = await startListen(pair.server.home, ["-v"], { env: { OVTP_CRYPTO: server } });
    try {
      await listener.waitFor(`crypto backend: ${server} (`);
      const env = { OVTP_CRYPTO: client };
      const sent = await ovtp(["send", listener.target, "ping"], { home: pair.client.home, env });
      assert.equal(sent.code, 0, sent.stderr);
      const dir = await tempDir();
      // Several bulk records, the last one short.
      const data = randomBytes(3 * 1024 * 1024 + 12345);
      await Deno.writeFile(`${dir}/data.bin`, data);
      const file = await ovtp(["sendfile", listener.target, `${dir}/data.bin`], {
        home: pair.client.home,
        env,
      });
      assert.equal(file.code, 0, file.stderr);
      assert.deepEqual(await Deno.readFile(`${pair.server.home}/inbox/alice/data.bin`), data);
    } finally {
      assertStoppedCleanly(await listener.stop());
    }
  });
}

Deno.test("a file sealed on one backend opens on the other, both ways", async () => {
  const [alice, bob] = [await tempHome(), await tempHome()];
  const a = await new Keystore(alice).createIdentity({ comment: "alice" });
  const b = await new Keystore(bob).createIdentity({ comment: "bob" });
  await new Keystore(alice).addAuthorizedKey(b.identity.publicKey, "bob");
  await new Keystore(bob).addAuthorizedKey(a.identity.publicKey, "alice");
  const dir = await tempDir();
  const data = randomBytes(5 * 65536 + 77);
  await Deno.writeFile(`${dir}/in`, data);
  for (const [sealer, opener] of [["native", "portable"], ["portable", "native"]]) {
    const out = `${dir}/${sealer}.ovtp`;
    const sealed = await ovtp(["seal", "-r", "bob", `${dir}/in`, "-o", out], {
      home: alice,
      env: { OVTP_CRYPTO: sealer },
    });
    assert.equal(sealed.code, 0, sealed.stderr);
    const opened = await ovtp(["open", out, "-o", `${out}.out`], {
      home: bob,
      env: { OVTP_CRYPTO: opener },
    });
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(await Deno.readFile(`${out}.out`), data);
  }
});
