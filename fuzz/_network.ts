/**
 * The network fuzzer: starts the real `ovtp listen` (a child process, with
 * temporary homes), makes hostile connections to it (fuzz/_network_attacks.ts),
 * and after each one checks that the server still serves: it is running, and
 * a new, valid client connection gets its request answered and printed. At
 * the end the server must stop with exit code 0, with no uncaught exception
 * or stack trace on stderr, holding no more open files than it started with.
 *
 * Used by fuzz/network.ts (the CLI) and tests/fuzz_network_test.ts.
 */

import fc from "fast-check";
import { OvtpClient } from "../lib/client.ts";
import { fingerprint, generateIdentity, type Identity, samePublicKey } from "../lib/keys.ts";
import { Keystore } from "../lib/keystore.ts";
import { type ListenProcess, startListenProcess } from "./_listen_process.ts";
import {
  type Attack,
  attack,
  type AttackContext,
  describeAttack,
  performAttack,
  type Shape,
  SHAPES,
} from "./_network_attacks.ts";

/** Options of {@linkcode runNetworkFuzz}. */
export interface NetworkFuzzOptions {
  /** Sees each line the server prints on stderr (its log). @default none */
  onServerLog?: (line: string) => void;
  /** How many hostile connections to make. */
  connections: number;
  /** fast-check's seed, to replay a run. @default random */
  seed?: number;
  /** Receives a progress line every `progressEvery` connections. @default none */
  log?: (line: string) => void;
  /** @default 1000 */
  progressEvery?: number;
}

/** What broke, and the attack that did it. */
export interface NetworkFuzzFailure {
  /** The 1-based number of the connection after which it broke (0: at the end). */
  connection: number;
  /** The attack, as one line of JSON (bytes in hex). */
  attack?: string;
  /** The attacks just before it, oldest first. */
  previous: string[];
  /** What went wrong. */
  message: string;
}

/** The outcome of a run. */
export interface NetworkFuzzResult {
  /** The connections made. */
  connections: number;
  /** How many of them had each shape. */
  counts: Record<Shape, number>;
  /** The seed, to replay the run with `--seed`. */
  seed: number;
  /** Wall-clock time of the whole run, in seconds. */
  seconds: number;
  /** Empty when the server survived everything. */
  failures: NetworkFuzzFailure[];
  /** The server's resident memory, in bytes (Linux), after the first check and at the end. */
  rss: { start?: number; max?: number; end?: number };
  /** The server's open file descriptors (Linux), after the first check and at the end. */
  openFiles: { start?: number; end?: number };
  /** The server's exit code after SIGTERM. */
  exitCode: number;
}

/** Time allowed for one attack; every wait inside it is far shorter. */
const ATTACK_TIMEOUT_MS = 15_000;
/** Time allowed for the valid client to connect, get its answer, and see it printed. */
const CHECK_TIMEOUT_MS = 5_000;
/** How many earlier attacks a failure report lists. */
const HISTORY = 5;
/** Open files the server may hold at the end beyond those it held at the start. */
const OPEN_FILES_SLACK = 8;
const CLIENT_NAME = "fuzz-client";

/**
 * Runs the network fuzzer against a fresh `ovtp listen`. Never throws for a
 * server failure: it stops at the first one and reports it in the result.
 */
export async function runNetworkFuzz(options: NetworkFuzzOptions): Promise<NetworkFuzzResult> {
  const started = performance.now();
  const root = await Deno.makeTempDir({ prefix: "ovtp-netfuzz-" });
  try {
    return await fuzzIn(root, options, started);
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

async function fuzzIn(
  root: string,
  options: NetworkFuzzOptions,
  started: number,
): Promise<NetworkFuzzResult> {
  const setup = await makeHomes(root);
  const server = await startListenProcess({
    ovtpHome: setup.serverHome,
    home: `${root}/server-user`,
    // Every service reachable: files (with a size limit to break), downloads,
    // chat (on by default), and a named function. Limits stay at their
    // defaults, so that leaked connections or handshakes would soon make the
    // server refuse the valid client.
    args: [
      "--inbox",
      `${root}/inbox`,
      "--rooms",
      `${root}/rooms`,
      "--serve",
      setup.servedDir,
      "--max-file-size",
      "64K",
      "--exec",
      "echo=cat",
    ],
    onStderrLine: options.onServerLog,
  });
  const context: AttackContext = { hostname: "127.0.0.1", port: server.port, ...setup.identities };
  const check = validClientCheck(server, setup);
  const counts = Object.fromEntries(SHAPES.map((s) => [s, 0])) as Record<Shape, number>;
  const failures: NetworkFuzzFailure[] = [];
  const history: string[] = [];
  const rss: NetworkFuzzResult["rss"] = {};
  const openFiles: NetworkFuzzResult["openFiles"] = {};
  let made = 0;
  let seed = options.seed ?? 0;
  let exitCode = -1;

  const fail = (message: string, current?: Attack) => {
    failures.push({
      connection: current ? made : 0,
      attack: current && describeAttack(current),
      previous: history.slice(-HISTORY - (current ? 1 : 0), current ? -1 : undefined),
      message,
    });
  };

  try {
    await check(0).catch((error) => {
      throw new Error(`Before any attack: ${error.message}`);
    });
    const before = await tree(root);
    rss.start = rss.max = await server.rssBytes();
    openFiles.start = await server.openFiles();
    const every = options.progressEvery ?? 1000;
    const details = await fc.check(
      fc.asyncProperty(attack, async (current) => {
        made++;
        counts[current.shape]++;
        history.push(describeAttack(current));
        if (history.length > HISTORY + 1) history.shift();
        try {
          const release = await withTimeout(
            performAttack(context, current),
            ATTACK_TIMEOUT_MS,
            "The attack",
          );
          try {
            const status = server.exitStatus();
            if (status) throw new Error(`The server exited with code ${status.code}`);
            await check(made);
          } finally {
            release();
          }
        } catch (error) {
          fail((error as Error).message, current);
          throw error;
        }
        if (made % every === 0) {
          const now = await server.rssBytes();
          if (now !== undefined) rss.max = Math.max(rss.max ?? 0, now);
          options.log?.(
            `network: ${made}/${options.connections} connections, ${
              seconds(started)
            } s, server RSS ${mib(now)}, ${await server.openFiles()} open files`,
          );
        }
      }),
      { numRuns: options.connections, seed: options.seed, endOnFailure: true },
    );
    seed = details.seed;
    // fast-check failing on its own (not in the property) is a failure too.
    if (details.failed && failures.length === 0) fail(String(details.errorInstance));
    if (failures.length === 0) {
      // Every attack's socket is closed: the server's must be too, soon.
      await settle(server, openFiles.start);
      openFiles.end = await server.openFiles();
      rss.end = await server.rssBytes();
      if (rss.end !== undefined) rss.max = Math.max(rss.max ?? 0, rss.end);
      if (
        openFiles.start !== undefined && openFiles.end !== undefined &&
        openFiles.end > openFiles.start + OPEN_FILES_SLACK
      ) {
        fail(`The server holds ${openFiles.end} open files, ${openFiles.start} at the start`);
      }
      const stray = await strayFiles(root, before);
      if (stray.length > 0) {
        fail(`The server wrote outside its inbox and rooms folders:\n${stray.join("\n")}`);
      }
    }
  } catch (error) {
    fail((error as Error).message);
  } finally {
    exitCode = await server.stop();
  }
  if (failures.length === 0 && exitCode !== 0) {
    fail(`The server exited with code ${exitCode} after SIGTERM`);
  }
  const crashes = server.crashLines();
  if (crashes.length > 0) {
    fail(`The server's stderr shows a crash or a stack trace:\n${crashes.slice(0, 20).join("\n")}`);
  }
  // Taken once the server has exited, so that its last words are in it.
  if (failures.length > 0) {
    failures[0].message += `\n--- last lines of the server's stderr:\n${server.stderrTail()}`;
  }
  return {
    connections: made,
    counts,
    seed,
    seconds: Number(seconds(started)),
    failures,
    rss,
    openFiles,
    exitCode,
  };
}

interface Setup {
  serverHome: string;
  servedDir: string;
  serverKey: Identity["publicKey"];
  clientFingerprint: string;
  identities: Pick<AttackContext, "authorized" | "stranger" | "expired">;
}

/**
 * A server home with an identity and an authorized_keys file (written
 * through the keystore, as `ovtp add-key` does): the valid client, and a
 * client whose key expired yesterday. The stranger is in no file. Beside
 * it, a folder to serve, holding hello.txt.
 */
async function makeHomes(root: string): Promise<Setup> {
  const serverHome = `${root}/server`;
  const serverStore = new Keystore(serverHome);
  const clientStore = new Keystore(`${root}/client`);
  await Deno.mkdir(`${root}/server-user`);
  const servedDir = `${root}/served`;
  await Deno.mkdir(servedDir);
  await Deno.writeTextFile(`${servedDir}/hello.txt`, "hello");
  const [{ identity: server }, { identity: authorized }, stranger, expired] = await Promise.all([
    serverStore.createIdentity({ comment: "fuzz-server" }),
    clientStore.createIdentity({ comment: CLIENT_NAME }),
    generateIdentity(),
    generateIdentity(),
  ]);
  await serverStore.addAuthorizedKey(authorized.publicKey, CLIENT_NAME);
  await serverStore.addAuthorizedKey(expired.publicKey, "fuzz-expired", {
    expires: new Date(Date.now() - 24 * 3600 * 1000),
  });
  return {
    serverHome,
    servedDir,
    serverKey: server.publicKey,
    clientFingerprint: await fingerprint(authorized.publicKey),
    identities: { authorized, stranger, expired },
  };
}

/**
 * The check made after each attack: a new connection as the authorized
 * client, which checks the server's key, sends a request with a unique
 * text, and must get status "ok" with an empty response, and see the
 * server print the text with the client's name and fingerprint (what
 * listen's default handler does).
 */
function validClientCheck(server: ListenProcess, setup: Setup): (n: number) => Promise<void> {
  return async (n) => {
    const client = await withTimeout(
      OvtpClient.connect({
        hostname: "127.0.0.1",
        port: server.port,
        identity: setup.identities.authorized,
        timeoutMs: CHECK_TIMEOUT_MS,
        verifyHost: (key) => {
          if (!samePublicKey(key, setup.serverKey)) throw new Error("Wrong server key");
        },
      }),
      CHECK_TIMEOUT_MS,
      "The valid client's connection",
    ).catch((error) => {
      throw new Error(`The valid client cannot connect: ${error.message}`);
    });
    try {
      const text = `fuzz check ${n} ${crypto.randomUUID()}`;
      const response = await withTimeout(
        client.request(text),
        CHECK_TIMEOUT_MS,
        "The valid client's request",
      );
      if (response.status !== "ok" || response.body.length !== 0) {
        throw new Error(
          `The valid client got status "${response.status}" and ${response.body.length} bytes`,
        );
      }
      const line = `${CLIENT_NAME} (${setup.clientFingerprint}): ${text}\n`;
      if (!await server.waitForStdout(line, CHECK_TIMEOUT_MS)) {
        throw new Error(`The server answered "ok" but did not print ${JSON.stringify(line)}`);
      }
    } finally {
      client.close();
    }
  };
}

/** Every file and folder under `root`, as paths relative to it. */
async function tree(root: string, under = ""): Promise<Set<string>> {
  const paths = new Set<string>();
  for await (const entry of Deno.readDir(under ? `${root}/${under}` : root)) {
    const path = under ? `${under}/${entry.name}` : entry.name;
    paths.add(path);
    if (entry.isDirectory) { for (const inner of await tree(root, path)) paths.add(inner); }
  }
  return paths;
}

/**
 * Paths that appeared under `root` since `before` outside inbox/ and rooms/
 * (where clients may make the server write), and a changed served file:
 * what a path traversal in a file name, a room or a download would leave.
 */
async function strayFiles(root: string, before: Set<string>): Promise<string[]> {
  const stray = [...await tree(root)].filter((path) =>
    !before.has(path) && !/^(inbox|rooms)(\/|$)/.test(path)
  );
  const served = await Deno.readTextFile(`${root}/served/hello.txt`).catch(() => "(missing)");
  if (served !== "hello") stray.push(`served/hello.txt now holds ${JSON.stringify(served)}`);
  return stray;
}

/** Waits (up to 2 s) for the server's open files to come back to `target`. */
async function settle(server: ListenProcess, target: number | undefined): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (Date.now() < deadline) {
    const now = await server.openFiles();
    if (now === undefined || target === undefined || now <= target) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Rejects with "WHAT timed out after MS ms" unless `promise` settles first. */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

/** Bytes in MiB, for reports. */
export function mib(bytes: number | undefined): string {
  return bytes === undefined ? "unknown" : `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}
