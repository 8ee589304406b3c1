import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  assertOneError,
  CLI_ENV,
  GRACEFUL_STOP,
  MAIN,
  makePair,
  ovtp,
  startListen,
} from "./_cli.ts";
import { stallingProxy } from "./_stalling_proxy.ts";

const SIZE = 24 * 1024 * 1024;

function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

async function partialBytes(inbox: string): Promise<number> {
  let total = 0;
  try {
    for await (const entry of Deno.readDir(`${inbox}/.ovtp-internal/partial`)) {
      total += (await Deno.stat(`${inbox}/.ovtp-internal/partial/${entry.name}`)).size;
    }
  } catch {
    return 0;
  }
  return total;
}

async function waitForPartial(inbox: string, atLeast: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (await partialBytes(inbox) < atLeast) {
    if (Date.now() > deadline) throw new Error("The transfer never reached the server");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts `ovtp sendfile` in the background, to be killed (stdout and stderr piped if `piped`). */
function spawnSend(home: string, target: string, path: string, piped = false) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, "sendfile", target, path, "--quiet"],
    env: { ...CLI_ENV, OVTP_HOME: home, HOME: `${home}.user` },
    stdin: "null",
    stdout: piped ? "piped" : "null",
    stderr: piped ? "piped" : "null",
  }).spawn();
}

Deno.test("a sender killed halfway leaves no finished file, and the next send resumes", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const dir = await tempDir();
  const data = randomBytes(SIZE);
  await Deno.writeFile(`${dir}/video.bin`, data);
  const listener = await startListen(server.home);
  const proxy = stallingProxy(listener.port, 8 * 1024 * 1024);
  try {
    const sender = spawnSend(client.home, `127.0.0.1:${proxy.port}`, `${dir}/video.bin`);
    await waitForPartial(inbox, 4 * 1024 * 1024);
    sender.kill("SIGKILL");
    await sender.status;
    await proxy.close();
    await listener.waitFor(/connection closed|client disconnected/);
    await assert.rejects(Deno.stat(`${inbox}/alice/video.bin`), Deno.errors.NotFound);

    const again = await ovtp(["sendfile", listener.target, `${dir}/video.bin`], {
      home: client.home,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stderr,
      /resuming "video\.bin" after \d+\.\d MiB already on the server \(verified\)/,
    );
    assert.match(again.stdout, /resumed after \d+\.\d MiB/);
    const hash = createHash("sha256").update(data).digest("hex");
    assert.match(again.stdout, new RegExp(`sha256 ${hash}`));
    assert.deepEqual(await Deno.readFile(`${inbox}/alice/video.bin`), data);
    assert.equal(await partialBytes(inbox), 0);
  } finally {
    await proxy.close();
    await listener.stop();
  }
});

/** Sends through a stalling proxy and kills the sender once the server holds data. */
async function interruptedSend(home: string, port: number, path: string, inbox: string) {
  const proxy = stallingProxy(port, 8 * 1024 * 1024);
  const sender = spawnSend(home, `127.0.0.1:${proxy.port}`, path);
  try {
    await waitForPartial(inbox, 4 * 1024 * 1024);
  } finally {
    sender.kill("SIGKILL");
    await sender.status;
    await proxy.close();
  }
}

Deno.test("a server killed halfway resumes after its restart", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const dir = await tempDir();
  const data = randomBytes(SIZE);
  await Deno.writeFile(`${dir}/disk.img`, data);
  const first = await startListen(server.home);
  const proxy = stallingProxy(first.port, 8 * 1024 * 1024);
  const sender = spawnSend(client.home, `127.0.0.1:${proxy.port}`, `${dir}/disk.img`, true);
  await waitForPartial(inbox, 4 * 1024 * 1024);
  // SIGKILL: the server gets no chance to clean up or finish anything.
  await first.stop("SIGKILL");
  // The proxy holds the client's side open: closing it is the cut the client sees.
  await proxy.close();
  const cut = await sender.output();
  const cutErr = new TextDecoder().decode(cut.stderr);
  assert.equal(cut.code, 3, cutErr);
  assert.equal(new TextDecoder().decode(cut.stdout), "");
  assertOneError({ code: cut.code, stdout: "", stderr: cutErr }, /connection/);
  assert.match(cutErr, /^ovtp: hint: run the same command again to resume$/m, cutErr);
  await assert.rejects(Deno.stat(`${inbox}/alice/disk.img`), Deno.errors.NotFound);
  assert.ok(await partialBytes(inbox) > 0, "the interrupted transfer kept its data");

  const second = await startListen(server.home);
  try {
    const again = await ovtp(["sendfile", second.target, `${dir}/disk.img`], { home: client.home });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /resuming "disk\.img"/);
    assert.deepEqual(await Deno.readFile(`${inbox}/alice/disk.img`), data);
    assert.equal(await partialBytes(inbox), 0);
  } finally {
    await second.stop();
  }
});

Deno.test("a source changed since the interruption fails the prefix check and starts over", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const dir = await tempDir();
  await Deno.writeFile(`${dir}/log.bin`, randomBytes(SIZE));
  const listener = await startListen(server.home);
  try {
    await interruptedSend(client.home, listener.port, `${dir}/log.bin`, inbox);
    // Same name and size, other content.
    const changed = randomBytes(SIZE);
    await Deno.writeFile(`${dir}/log.bin`, changed);
    const sent = await ovtp(["sendfile", listener.target, `${dir}/log.bin`], { home: client.home });
    assert.equal(sent.code, 0, sent.stderr);
    assert.doesNotMatch(sent.stderr, /resuming/);
    assert.match(
      sent.stderr,
      /^ovtp: "log\.bin" changed since the interrupted transfer: starting over \(the \d+\.\d MiB on the server are discarded\)$/m,
    );
    // One line says so (besides the first-contact line about the new host).
    const said = sent.stderr.trimEnd().split("\n").filter((l) => !l.includes("new host"));
    assert.equal(said.length, 1, sent.stderr);
    assert.doesNotMatch(sent.stdout, /resumed/);
    assert.deepEqual(await Deno.readFile(`${inbox}/alice/log.bin`), changed);
  } finally {
    await listener.stop();
  }
});

Deno.test("stdin cut off halfway cannot resume, and says so", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const listener = await startListen(server.home);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MAIN, "sendfile", listener.target, "--name", "pipe.bin"],
    env: { ...CLI_ENV, OVTP_HOME: client.home, HOME: `${client.home}.user` },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const writer = child.stdin.getWriter();
    await writer.write(randomBytes(4 * 1024 * 1024));
    await waitForPartial(inbox, 1024 * 1024);
    // The server goes away while stdin is still open.
    await listener.stop("SIGKILL");
    const output = await child.output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 3, stderr);
    assert.match(stderr, /"pipe\.bin" came from a stream, which cannot resume: send it again/);
    await assert.rejects(Deno.stat(`${inbox}/alice/pipe.bin`), Deno.errors.NotFound);
  } finally {
    await listener.stop();
  }
});

Deno.test("a byte flipped in file data is refused and no file becomes visible", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const dir = await tempDir();
  await Deno.writeFile(`${dir}/a.bin`, randomBytes(500_000));
  const listener = await startListen(server.home);
  // A flipping proxy: the 300,000th byte from the client.
  const proxyListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const proxying = (async () => {
    for await (const inbound of proxyListener) {
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
      let seen = 0;
      const flip = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          const at = 300_000 - seen;
          if (at >= 0 && at < chunk.length) {
            chunk = chunk.slice();
            chunk[at] ^= 0x80;
          }
          seen += chunk.length;
          controller.enqueue(chunk);
        },
      });
      inbound.readable.pipeThrough(flip).pipeTo(outbound.writable).catch(() => {});
      outbound.readable.pipeTo(inbound.writable).catch(() => {});
    }
  })().catch(() => {});
  try {
    const sent = await ovtp([
      "sendfile",
      `127.0.0.1:${(proxyListener.addr as Deno.NetAddr).port}`,
      `${dir}/a.bin`,
    ], {
      home: client.home,
    });
    assert.equal(sent.code, 3);
    assertOneError(sent, /The server closed the connection before answering/);
    await listener.waitFor(/connection closed: .*failed authentication/);
    await assert.rejects(Deno.stat(`${inbox}/alice/a.bin`), Deno.errors.NotFound);
  } finally {
    proxyListener.close();
    await proxying;
    await listener.stop();
  }
});

// Windows has no SIGTERM (listen stops on Ctrl-C only): see GRACEFUL_STOP.
Deno.test(
  "an upload cut by SIGTERM after the grace period resumes afterwards; nothing half-written is visible",
  {
    ignore: !GRACEFUL_STOP,
  },
  async () => {
    const { server, client } = await makePair();
    const inbox = `${server.home}/inbox`;
    const dir = await tempDir();
    const data = randomBytes(SIZE);
    await Deno.writeFile(`${dir}/backup.tar`, data);
    const first = await startListen(server.home, ["--grace", "0.2"]);
    const proxy = stallingProxy(first.port, 8 * 1024 * 1024);
    const sender = spawnSend(client.home, `127.0.0.1:${proxy.port}`, `${dir}/backup.tar`);
    try {
      await waitForPartial(inbox, 4 * 1024 * 1024);
      // The transfer cannot finish within the grace period: it is cut, cleanly.
      assert.equal(await first.stop("SIGTERM"), 0);
      await sender.status;
    } finally {
      await proxy.close();
    }
    await assert.rejects(Deno.stat(`${inbox}/alice/backup.tar`), Deno.errors.NotFound);
    assert.ok(await partialBytes(inbox) > 0);
    const second = await startListen(server.home);
    try {
      const again = await ovtp(["sendfile", second.target, `${dir}/backup.tar`], {
        home: client.home,
      });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /resuming "backup\.tar"/);
      assert.deepEqual(await Deno.readFile(`${inbox}/alice/backup.tar`), data);
    } finally {
      await second.stop();
    }
  },
);

Deno.test("a server that stops taking an upload is called gone, or stalled, in one line; the next send resumes", async () => {
  const { server, client } = await makePair();
  const inbox = `${server.home}/inbox`;
  const dir = await tempDir();
  const data = randomBytes(SIZE);
  await Deno.writeFile(`${dir}/stuck.bin`, data);
  // A short idle timeout: the client pings after 1 s of not sending.
  const listener = await startListen(server.home, ["--idle-timeout", "3"]);
  const proxy = stallingProxy(listener.port, 8 * 1024 * 1024);
  try {
    const sender = spawnSend(client.home, `127.0.0.1:${proxy.port}`, `${dir}/stuck.bin`, true);
    await waitForPartial(inbox, 4 * 1024 * 1024);
    // Stopped, the server neither reads nor closes the connection as idle:
    // to the client it is a server whose disk stopped taking the upload.
    Deno.kill(listener.pid, "SIGSTOP");
    let cut;
    try {
      cut = await sender.output();
    } finally {
      Deno.kill(listener.pid, "SIGCONT");
    }
    const stderr = new TextDecoder().decode(cut.stderr);
    assert.equal(cut.code, 3, stderr);
    assertOneError(
      { code: cut.code, stdout: new TextDecoder().decode(cut.stdout), stderr },
      /^ovtp: error: The server stopped reading and answering \(nothing for \d+ s\): it is gone, or its disk stalled$/,
    );
    assert.match(stderr, /^ovtp: hint: run the same command again to resume$/m);
    await proxy.close();
    await listener.waitFor(/connection closed|client disconnected/);
    const again = await ovtp(["sendfile", listener.target, `${dir}/stuck.bin`], {
      home: client.home,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /resuming "stuck\.bin"/);
    assert.deepEqual(await Deno.readFile(`${inbox}/alice/stuck.bin`), data);
  } finally {
    await proxy.close();
    await listener.stop();
  }
});
