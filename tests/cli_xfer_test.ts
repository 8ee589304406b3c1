import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { drawBar, formatBytes, formatRate, ProgressBar } from "../commands/_progress.ts";
import { checkOffer } from "../lib/services/transfer/engine.ts";
import {
  assertOneError,
  homeWithIdentity,
  makePair,
  ovtp,
  ovtpOnTerminal,
  startListen,
  SYMLINKS,
} from "./_cli.ts";
import { stallingProxy } from "./_stalling_proxy.ts";

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
  const served = await tempDir();
  // Several data messages, and a name that must not be created.
  const content = text(300_000);
  await Deno.writeTextFile(`${served}/notes.txt`, content);
  const listener = await startListen(server.home, ["--serve", served]);
  const work = await tempDir();
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
    // The usage failure itself is reported as --json asks; no data was sent.
    assert.equal(JSON.parse(json.stdout).kind, "usage");
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
  const work = await tempDir();
  await Deno.writeTextFile(`${work}/plain.txt`, "new content\n");
  const sealed = await ovtp(["seal", "-r", "self", `${work}/plain.txt`, "-o", `${work}/s.ovtp`], {
    home,
  });
  assert.equal(sealed.code, 0, sealed.stderr);
  await Deno.writeTextFile(`${work}/out.txt`, "precious\n");

  const refused = await ovtp(["open", `${work}/s.ovtp`, "-o", `${work}/out.txt`], { home });
  // A local file that cannot be written: the io code, as getfile's refusal.
  assert.equal(refused.code, 6);
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

Deno.test("a download cut halfway says that the same command resumes, and it does", async () => {
  const { server, client } = await makePair();
  const served = await tempDir();
  const data = new Uint8Array(8 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  await Deno.writeFile(`${served}/big.bin`, data);
  const listener = await startListen(server.home, ["--serve", served]);
  const proxy = stallingProxy(listener.port, 2 * 1024 * 1024, "down");
  const work = await tempDir();
  try {
    const cutting = ovtp(["getfile", `127.0.0.1:${proxy.port}`, "big.bin"], {
      home: client.home,
      cwd: work,
    });
    // Wait until data has reached the partial file, then cut the connection.
    const deadline = Date.now() + 20_000;
    while (
      (await Deno.stat(`${work}/big.bin.ovtp-partial`).catch(() => ({ size: 0 }))).size === 0
    ) {
      if (Date.now() > deadline) throw new Error("The download never started");
      await new Promise((r) => setTimeout(r, 20));
    }
    await proxy.close();
    const cut = await cutting;
    assert.equal(cut.code, 3, cut.stderr);
    assert.equal(cut.stdout, "");
    // Cut inside a record or between two: either way a network error.
    assertOneError(cut, /Cannot receive|connection/);
    assert.match(cut.stderr, /^ovtp: hint: run the same command again to resume$/m);
    await assert.rejects(Deno.stat(`${work}/big.bin`), Deno.errors.NotFound);

    const again = await ovtp(["getfile", listener.target, "big.bin"], {
      home: client.home,
      cwd: work,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /resuming "big\.bin" after .* already here \(verified\)/);
    assert.deepEqual(await Deno.readFile(`${work}/big.bin`), data);
  } finally {
    await proxy.close().catch(() => {});
    await listener.stop();
  }
});

/** Every file under `dir`, relative and sorted. */
async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) out.push(...await filesUnder(`${dir}/${entry.name}`, rel));
    else out.push(entry.isSymlink ? `${rel}@` : rel);
  }
  return out.sort();
}

Deno.test("a folder sent again arrives as a new folder; --name renames a folder", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const root = await tempDir();
  await Deno.mkdir(`${root}/proj/src`, { recursive: true });
  await Deno.writeTextFile(`${root}/proj/a.txt`, "first a\n");
  await Deno.writeTextFile(`${root}/proj/src/b.txt`, "first b\n");
  const listener = await startListen(server.home);
  try {
    const send = (...args: string[]) =>
      ovtp(["sendfile", listener.target, ...args, "--json"], { home: client.home });
    const first = await send(`${root}/proj`);
    assert.equal(first.code, 0, first.stderr);
    await Deno.writeTextFile(`${root}/proj/a.txt`, "second a\n");
    const second = await send(`${root}/proj`);
    assert.equal(second.code, 0, second.stderr);
    const paths = JSON.parse(second.stdout).files.map((f: { path: string }) => f.path);
    assert.deepEqual(paths, ["alice/proj (1)/a.txt", "alice/proj (1)/src/b.txt"]);
    assert.ok(JSON.parse(second.stdout).files.every((f: { renamed: boolean }) => f.renamed));
    // A folder in the way of the next name is skipped too, a plain file as well.
    await Deno.writeTextFile(`${inbox}/alice/proj (2)`, "not a folder");
    const third = await send(`${root}/proj`);
    assert.equal(third.code, 0, third.stderr);
    const renamed = await send(`${root}/proj`, "--name", "release");
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.deepEqual(await filesUnder(`${inbox}/alice`), [
      "proj (1)/a.txt",
      "proj (1)/src/b.txt",
      "proj (2)",
      "proj (3)/a.txt",
      "proj (3)/src/b.txt",
      "proj/a.txt",
      "proj/src/b.txt",
      "release/a.txt",
      "release/src/b.txt",
    ]);
    // The first folder is untouched; no "a (1).txt" was scattered into it.
    assert.equal(await Deno.readTextFile(`${inbox}/alice/proj/a.txt`), "first a\n");
    assert.equal(await Deno.readTextFile(`${inbox}/alice/proj (1)/a.txt`), "second a\n");

    // Two paths with --name stay a usage error; a lone file still renames as before.
    const two = await send(`${root}/proj`, `${root}/proj/a.txt`, "--name", "x");
    assert.equal(two.code, 2);
    assertOneError(two, /--name applies to a single file, folder or stdin/);
    const lone = await send(`${root}/proj/a.txt`, "--name", "proj");
    assert.equal(lone.code, 0, lone.stderr);
    // The next free name: folders and files share the names of one folder.
    assert.equal(JSON.parse(lone.stdout).files[0].path, "alice/proj (4)");

    // A link planted under the folder's name is passed over, never written through.
    if (SYMLINKS) {
      const outside = await tempDir();
      await Deno.symlink(outside, `${inbox}/alice/planted`);
      const planted = await send(`${root}/proj`, "--name", "planted");
      assert.equal(planted.code, 0, planted.stderr);
      assert.equal(JSON.parse(planted.stdout).files[0].path, "alice/planted (1)/a.txt");
      assert.deepEqual(await filesUnder(outside), []);
    }
  } finally {
    await listener.stop();
  }
});

Deno.test("sizes and rates share binary units; the bar fills with the fraction", () => {
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(100_000), "97.7 KiB");
  assert.equal(formatRate(12 * 1024 * 1024, 1), "12.0 MiB/s");
  assert.equal(formatRate(100, 1), "100 B/s");
  assert.equal(formatRate(3 * 1024, 2), "1.5 KiB/s");
  assert.equal(drawBar(0), `[${".".repeat(24)}]`);
  assert.equal(drawBar(0.5), `[${"#".repeat(12)}${".".repeat(12)}]`);
  assert.equal(drawBar(1), `[${"#".repeat(24)}]`);
  assert.equal(drawBar(7), `[${"#".repeat(24)}]`);
});

Deno.test("the bar draws a file's last bytes at once, whatever it drew just before", () => {
  const written: string[] = [];
  const original = Deno.stderr.writeSync;
  Deno.stderr.writeSync = (bytes: Uint8Array) => {
    written.push(new TextDecoder().decode(bytes));
    return bytes.length;
  };
  try {
    const bar = new ProgressBar(true);
    bar.update({ name: "a.bin", done: 970, total: 1000 });
    // Within the redraw interval: skipped, unless it completes the file.
    bar.update({ name: "a.bin", done: 980, total: 1000 });
    bar.update({ name: "a.bin", done: 1000, total: 1000 });
  } finally {
    Deno.stderr.writeSync = original;
  }
  assert.match(written[0], / 97%/);
  // While the other side stores the file, the bar shows it all sent.
  assert.match(written.at(-1)!, /100%/, JSON.stringify(written));
});

Deno.test("on a terminal, sendfile draws a bar with percent, rate and ETA, then erases it", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const { server, client } = await makePair();
  const dir = await tempDir();
  const data = new Uint8Array(48 * 1024 * 1024);
  await Deno.writeFile(`${dir}/big.bin`, data);
  const listener = await startListen(server.home);
  try {
    // A terminal wide enough for the name and the figures (a narrow one cuts the name).
    const { code, screen } = await ovtpOnTerminal(
      ["sendfile", listener.target, `${dir}/big.bin`],
      { home: client.home },
    );
    assert.equal(code, 0, screen);
    assert.match(
      screen,
      /big\.bin {2}\[#*\.*\]\s+\d+% {2}\d+\.\d [KMG]iB \/ 48\.0 MiB {2}\d+(\.\d)? [KMG]?i?B\/s {2}ETA \d+:\d\d/,
    );
    // Each redraw fits the terminal's line (a wrapped one would leave copies).
    for (const drawn of screen.split("\r\x1b[K").slice(1, -1)) assert.ok(drawn.length < 160);
    // Erased before the summary line, which uses the same units.
    // deno-lint-ignore no-control-regex -- the erase sequence is what is checked
    assert.match(screen, /\r\x1b\[Ksent big\.bin: 48\.0 MiB in .* \(\d+\.\d [KMG]iB\/s\)/);
  } finally {
    await listener.stop();
  }
});

Deno.test("sendfile keeps modification times, of a file and of a folder's files", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const dir = await tempDir();
  await Deno.mkdir(`${dir}/tree`);
  await Deno.writeTextFile(`${dir}/old.txt`, "old\n");
  await Deno.writeTextFile(`${dir}/tree/inner.txt`, "inner\n");
  const then = new Date("2001-02-03T04:05:06.789Z");
  const other = new Date("1999-12-31T23:59:59.000Z");
  await Deno.utime(`${dir}/old.txt`, then, then);
  await Deno.utime(`${dir}/tree/inner.txt`, other, other);
  const listener = await startListen(server.home);
  try {
    const sent = await ovtp(["sendfile", listener.target, `${dir}/old.txt`, `${dir}/tree`], {
      home: client.home,
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal((await Deno.stat(`${inbox}/alice/old.txt`)).mtime?.getTime(), then.getTime());
    assert.equal(
      (await Deno.stat(`${inbox}/alice/tree/inner.txt`)).mtime?.getTime(),
      other.getTime(),
    );
    // Stdin has no time: the file gets the time it arrived.
    const before = Date.now() - 60_000;
    const piped = await ovtp(["sendfile", listener.target, "--name", "piped.txt"], {
      home: client.home,
      stdin: "x",
    });
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok((await Deno.stat(`${inbox}/alice/piped.txt`)).mtime!.getTime() > before);
  } finally {
    await listener.stop();
  }
});

Deno.test("an Offer's optional folder and mtime are checked; their neighbours are malformed", () => {
  const base = { name: "a/b.txt", size: 1, mode: 0o644, resumable: true };
  assert.deepEqual(checkOffer({ ...base }), base);
  assert.equal(checkOffer({ ...base, folder: "x".repeat(64) }).folder, "x".repeat(64));
  assert.equal(checkOffer({ ...base, mtime: 0 }).mtime, 0);
  assert.equal(checkOffer({ ...base, mtime: 8.64e15 }).mtime, 8.64e15);
  for (
    const bad of [
      { folder: "" },
      { folder: "x".repeat(65) },
      { folder: 7 },
      { folder: null },
      { mtime: -1 },
      { mtime: 1.5 },
      { mtime: 8.64e15 + 1 },
      { mtime: "1" },
      { mtime: null },
    ]
  ) {
    assert.throws(
      () => checkOffer({ ...base, ...bad }),
      /Malformed file offer/,
      JSON.stringify(bad),
    );
  }
});

Deno.test("getfile keeps the served file's modification time", async () => {
  const { server, client } = await makePair();
  const served = await tempDir();
  await Deno.writeTextFile(`${served}/dated.txt`, "dated\n");
  const then = new Date("2003-04-05T06:07:08.123Z");
  await Deno.utime(`${served}/dated.txt`, then, then);
  const listener = await startListen(server.home, ["--serve", served]);
  const work = await tempDir();
  try {
    const got = await ovtp(["getfile", listener.target, "dated.txt"], {
      home: client.home,
      cwd: work,
    });
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await Deno.readTextFile(`${work}/dated.txt`), "dated\n");
    assert.equal((await Deno.stat(`${work}/dated.txt`)).mtime?.getTime(), then.getTime());
  } finally {
    await listener.stop();
  }
});
