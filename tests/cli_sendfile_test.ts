import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Keystore, OvtpClient, streamSource } from "../mod.ts";
import {
  assertOneError,
  assertStoppedCleanly,
  makePair,
  ovtp,
  type Pair,
  startListen,
  SYMLINKS,
} from "./_cli.ts";

// Windows has no file modes: files arrive with the default permissions.
const MODES = Deno.build.os !== "windows";
if (!MODES) {
  console.log(
    "cli_sendfile_test: Windows has no file modes: modes are not checked, and the " +
      "unreadable (mode 000) source test is skipped",
  );
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

async function inboxFiles(inbox: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: string, prefix: string) {
    for await (const entry of Deno.readDir(dir)) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(`${dir}/${entry.name}`, rel);
      else found.push(rel);
    }
  }
  await walk(inbox, "").catch(() => {});
  // The inbox's secret (it names unfinished uploads) is not a file received.
  return found.filter((f) => f !== ".ovtp-internal/secret").sort();
}

async function withServer(
  args: string[],
  body: (ctx: Pair & { inbox: string; target: string; port: number }) => Promise<void>,
) {
  const pair = await makePair();
  const inbox = `${pair.server.home}/inbox`;
  const listener = await startListen(pair.server.home, args);
  try {
    await body({ ...pair, inbox, target: listener.target, port: listener.port });
  } finally {
    assertStoppedCleanly(await listener.stop());
  }
}

Deno.test("sendfile sends a small file and an empty file; bytes, modes and hashes match", async () => {
  await withServer([], async ({ client, inbox, target }) => {
    const dir = await tempDir();
    const data = randomBytes(100_000);
    await Deno.writeFile(`${dir}/small.bin`, data, { mode: 0o640 });
    if (MODES) await Deno.chmod(`${dir}/small.bin`, 0o640);
    await Deno.writeFile(`${dir}/empty`, new Uint8Array(0));
    const sent = await ovtp(["sendfile", target, `${dir}/small.bin`, `${dir}/empty`], {
      home: client.home,
    });
    assert.equal(sent.code, 0, sent.stderr);
    const lines = sent.stdout.trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(
      lines[0],
      new RegExp(
        `^sent small\\.bin: 97\\.7 KiB in \\d+\\.\\d\\d s \\((\\d+ B|\\d+\\.\\d [KMG]iB)/s\\), sha256 ${
          sha256(data)
        }, verified and stored as alice/small\\.bin$`,
      ),
    );
    assert.match(lines[1], /^sent empty: 0 B in .* sha256 e3b0c442[0-9a-f]{56}, .*alice\/empty$/);
    assert.deepEqual(await Deno.readFile(`${inbox}/alice/small.bin`), data);
    if (MODES) assert.equal((await Deno.stat(`${inbox}/alice/small.bin`)).mode! & 0o777, 0o640);
    assert.equal((await Deno.stat(`${inbox}/alice/empty`)).size, 0);
    assert.deepEqual(await inboxFiles(`${inbox}/.ovtp-internal/partial`), []);
  });
});

Deno.test("sendfile sends a directory tree with relative paths and modes, skipping symlinks", async () => {
  await withServer(["--json"], async ({ client, inbox, target }) => {
    const root = await tempDir();
    const tree = `${root}/project`;
    await Deno.mkdir(`${tree}/src/deep`, { recursive: true });
    await Deno.writeTextFile(`${tree}/README`, "read me\n");
    await Deno.writeTextFile(`${tree}/src/run.sh`, "#!/bin/sh\necho hi\n");
    if (MODES) await Deno.chmod(`${tree}/src/run.sh`, 0o755);
    await Deno.writeTextFile(`${tree}/src/deep/data.txt`, "x".repeat(70_000));
    if (SYMLINKS) {
      // Windows needs an existing target to know a file link from a folder link.
      const outside = Deno.build.os === "windows" ? Deno.execPath() : "/etc/passwd";
      await Deno.symlink(outside, `${tree}/src/passwd-link`, { type: "file" });
    }
    const sent = await ovtp(["sendfile", target, tree, "--json"], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
    if (SYMLINKS) {
      assert.match(sent.stderr, /warning: skipping ".*passwd-link": a symlink \(not followed\)/);
    }
    const outcome = JSON.parse(sent.stdout);
    assert.equal(outcome.status, "ok");
    assert.deepEqual(outcome.files.map((f: { path: string }) => f.path), [
      "alice/project/README",
      "alice/project/src/deep/data.txt",
      "alice/project/src/run.sh",
    ]);
    assert.deepEqual(await inboxFiles(`${inbox}/alice`), [
      "project/README",
      "project/src/deep/data.txt",
      "project/src/run.sh",
    ]);
    assert.equal(
      await Deno.readTextFile(`${inbox}/alice/project/src/run.sh`),
      "#!/bin/sh\necho hi\n",
    );
    if (MODES) {
      assert.equal((await Deno.stat(`${inbox}/alice/project/src/run.sh`)).mode! & 0o777, 0o755);
      assert.equal((await Deno.stat(`${inbox}/alice/project/README`)).mode! & 0o777, 0o644);
    }
  });
});

Deno.test("sendfile streams stdin under --name or a generated name", async () => {
  await withServer([], async ({ client, inbox, target }) => {
    const data = randomBytes(300_000);
    const named = await ovtp(["sendfile", target, "--name", "dump.tar"], {
      home: client.home,
      stdin: data,
    });
    assert.equal(named.code, 0, named.stderr);
    assert.match(
      named.stdout,
      new RegExp(`sha256 ${sha256(data)}, verified and stored as alice/dump\\.tar`),
    );
    assert.deepEqual(await Deno.readFile(`${inbox}/alice/dump.tar`), data);
    const generated = await ovtp(["sendfile", target, "-"], { home: client.home, stdin: "hello" });
    assert.equal(generated.code, 0, generated.stderr);
    const name = /sending stdin as "(stdin-[0-9TZ-]+)"/.exec(generated.stderr)?.[1];
    assert.ok(name, generated.stderr);
    assert.equal(await Deno.readTextFile(`${inbox}/alice/${name}`), "hello");
  });
});

Deno.test("sendfile never overwrites: a second file of the same name gets a new one", async () => {
  await withServer([], async ({ client, inbox, target }) => {
    const dir = await tempDir();
    await Deno.writeTextFile(`${dir}/notes.txt`, "first");
    assert.equal(
      (await ovtp(["sendfile", target, `${dir}/notes.txt`], { home: client.home })).code,
      0,
    );
    await Deno.writeTextFile(`${dir}/notes.txt`, "second");
    const again = await ovtp(["sendfile", target, `${dir}/notes.txt`], { home: client.home });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /stored as alice\/notes \(1\)\.txt \(the name was taken\)/);
    assert.equal(await Deno.readTextFile(`${inbox}/alice/notes.txt`), "first");
    assert.equal(await Deno.readTextFile(`${inbox}/alice/notes (1).txt`), "second");
  });
});

Deno.test("a file above --max-file-size is refused and leaves nothing behind", async () => {
  await withServer(["--max-file-size", "64K"], async ({ client, inbox, target }) => {
    const dir = await tempDir();
    await Deno.writeFile(`${dir}/big.bin`, randomBytes(70_000));
    const sent = await ovtp(["sendfile", target, `${dir}/big.bin`], { home: client.home });
    assert.equal(sent.code, 1);
    assertOneError(
      sent,
      /The server refused the file: The file is larger than the server's limit of 65536 bytes/,
    );
    assert.deepEqual(await inboxFiles(inbox), []);
    // A stream has no size up front: it is cut off when it crosses the limit.
    const piped = await ovtp(["sendfile", target, "--name", "s.bin"], {
      home: client.home,
      stdin: randomBytes(200_000),
    });
    assert.equal(piped.code, 1);
    assertOneError(piped, /larger than the server's limit/);
    assert.deepEqual(await inboxFiles(inbox), []);
  });
});

Deno.test("sendfile reports a missing source path before connecting", async () => {
  await withServer([], async ({ client, target }) => {
    const sent = await ovtp(["sendfile", target, "/nonexistent/file.bin"], { home: client.home });
    assert.equal(sent.code, 6); // A local file.
    assertOneError(
      sent,
      /^ovtp: error: Cannot read "\/nonexistent\/file\.bin": no such file or directory$/,
    );
    assert.equal(sent.stdout, "");
  });
});

Deno.test("sendfile reports an unreadable source path", { ignore: !MODES }, async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/secret`, "x");
  await Deno.chmod(`${dir}/secret`, 0o000);
  let readable = true;
  try {
    (await Deno.open(`${dir}/secret`)).close();
  } catch {
    readable = false;
  }
  if (readable) {
    console.log("skipped: this user (root?) can read a mode-000 file, so it cannot be unreadable");
    return;
  }
  await withServer([], async ({ client, target }) => {
    const sent = await ovtp(["sendfile", target, `${dir}/secret`], { home: client.home });
    assert.equal(sent.code, 6); // A local file.
    assertOneError(sent, /Cannot read ".*secret": permission denied/);
  });
});

Deno.test("hostile names stay inside the sender's inbox folder", async () => {
  await withServer([], async ({ client, inbox, port }) => {
    const identity = await new Keystore(client.home).loadIdentity(() => Promise.resolve(""));
    const connection = await OvtpClient.connect({ hostname: "127.0.0.1", port, identity });
    const cases: [string, string][] = [
      ["../x", "alice/x"],
      ["/etc/passwd-copy", "alice/etc/passwd-copy"],
      ["a/../../y", "alice/a/y"],
      ["nul\0byte", "alice/nul_byte"],
      ["new\nline", "alice/new_line"],
      ["..", "alice/unnamed"],
      ["C:\\Windows\\z", "alice/C_/Windows/z"],
    ];
    try {
      for (const [name, expected] of cases) {
        const text = new Blob([name]).stream();
        const result = await connection.sendFile(streamSource(text, name));
        assert.equal(result.path, expected, JSON.stringify(name));
      }
      const long = await connection.sendFile(
        streamSource(new Blob(["long"]).stream(), "a".repeat(5000) + ".txt"),
      ).catch((e) => e);
      assert.match(String(long.message ?? long), /Protocol error|closed/);
    } finally {
      connection.close();
    }
    const files = await inboxFiles(inbox);
    for (const file of files) assert.ok(file.startsWith("alice/"), file);
    const connection2 = await OvtpClient.connect({ hostname: "127.0.0.1", port, identity });
    try {
      const longName = "b".repeat(1000) + ".txt";
      const result = await connection2.sendFile(streamSource(new Blob(["b"]).stream(), longName));
      assert.ok(result.path.length < 220, result.path);
      assert.ok(result.path.endsWith(".txt"));
    } finally {
      connection2.close();
    }
  });
});

Deno.test("a symlink planted in the inbox is not followed", { ignore: !SYMLINKS }, async () => {
  await withServer([], async ({ client, inbox, port }) => {
    const outside = await tempDir();
    await Deno.mkdir(`${inbox}/alice`, { recursive: true });
    await Deno.symlink(outside, `${inbox}/alice/escape`);
    const identity = await new Keystore(client.home).loadIdentity(() => Promise.resolve(""));
    const connection = await OvtpClient.connect({ hostname: "127.0.0.1", port, identity });
    try {
      await assert.rejects(
        connection.sendFile(streamSource(new Blob(["pwned"]).stream(), "escape/owned.txt")),
        /The server refused the file: Refusing to write through "escape": it is a symlink/,
      );
    } finally {
      connection.close();
    }
    assert.deepEqual(await inboxFiles(outside), []);
  });
});
