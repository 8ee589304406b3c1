/**
 * The network fuzzer: starts the real `ovtp listen` (a child process, with
 * temporary homes), makes hostile connections to it (fuzz/_network_attacks.ts),
 * and after each one checks that the server still serves and keeps its word:
 * - it is running, and a new, valid client connection gets its request
 *   answered and printed;
 * - its peak resident memory (VmHWM) stays under PEAK_RSS_BOUND;
 * - every file it reported storing (its `--json` "file" lines) still holds
 *   exactly the bytes whose SHA-256 it reported, and no path is reported twice;
 * - no chat queue holds an envelope twice, or one the relay had to refuse;
 * - nothing appeared outside its inbox and rooms folders.
 * The file, queue and folder checks run after each attack of shapes g and
 * h, for the files reported lately after the others, and on everything every
 * FULL_CHECK_EVERY attacks and at the end. At the end the server must stop
 * with exit code 0, with no uncaught exception or stack trace on stderr,
 * holding no more open files than it started with.
 *
 * Used by fuzz/network.ts (the CLI) and tests/fuzz_network_test.ts.
 */

import fc from "fast-check";
import { createHash } from "node:crypto";
import { OvtpClient } from "../lib/client/client.ts";
import {
  fingerprint,
  generateIdentity,
  type Identity,
  samePublicKey,
} from "../lib/identity/keys.ts";
import { Keystore } from "../lib/identity/keystore.ts";
import { type ListenProcess, startListenProcess } from "../tests/_listen_process.ts";
import {
  type Attack,
  type AttackContext,
  attackOf,
  describeAttack,
  performAttack,
  type Shape,
  SHAPES,
} from "./_network_attacks.ts";
import { joinRoom, queuedEnvelopeIds, ROOM } from "./_attack_chat.ts";
import { SENDER_NAMES } from "./_attack_uploads.ts";

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
  /** Only these shapes. @default all */
  shapes?: readonly Shape[];
  /** Attacks made first, before the generated ones (they count in `connections`). */
  examples?: readonly Attack[];
}

/**
 * The most resident memory `ovtp listen` may ever have had (VmHWM) during a
 * run with default limits. Measured on the 2-core test machine (Linux
 * x86-64, Deno 2.9.6): about 67 MiB after the first check; over 10,000
 * attacks of shapes a to g, on a server that bounds parts per connection
 * and refuses repeated recipients, a plateau of 170-180 MiB and a peak of
 * 182 MiB (113 MiB after 400 attacks of shapes a to e). One flood of shape f
 * (300 records of empty parts) took ovtp 0.1.0 to 484 MiB in 3 s.
 */
export const PEAK_RSS_BOUND = 256 * 1024 * 1024;
/** Every this many attacks, every reported file, queue and folder is checked. */
const FULL_CHECK_EVERY = 100;
/** Files reported during the last this many attacks are checked after each one. */
const RECENT_ATTACKS = 3;

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
  /**
   * The server's resident memory, in bytes (Linux): after the first check,
   * the most seen at a progress line, at the end, and its peak (VmHWM).
   */
  rss: { start?: number; max?: number; end?: number; peak?: number };
  /** How many files the server reported storing, all checked. */
  files: number;
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
  const output = new ServerOutput();
  const server = await startListenProcess({
    ovtpHome: setup.serverHome,
    home: `${root}/server-user`,
    // Every service reachable: files (with a size limit to break), downloads,
    // chat (on by default), and a named function. Limits stay at their
    // defaults, so that leaked connections or handshakes would soon make the
    // server refuse the valid client.
    args: [
      // Exact values on stdout: the files it stored, with their hashes.
      "--json",
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
    onStdoutLine: (line) => output.take(line),
  });
  const context: AttackContext = {
    hostname: "127.0.0.1",
    port: server.port,
    ...setup.identities,
    ledger: { delivered: new Set(), refusedPosts: new Set() },
  };
  const check = validClientCheck(server, setup, output);
  const arbitrary = attackOf(options.shapes);
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
    // The member of the room the chat attacks post to, offline from now on.
    const joined = await joinRoom(context, setup.identities.member, ROOM, "member");
    if (!joined) throw new Error(`The chat member's Join of room ${ROOM} was refused`);
    await joined.close();
    const before = await tree(root);
    const promises = (recentOnly: boolean) =>
      checkPromises(root, before, output, context, recentOnly ? made - RECENT_ATTACKS : 0);
    rss.start = rss.max = await server.rssBytes();
    openFiles.start = await server.openFiles();
    const every = options.progressEvery ?? 1000;
    const details = await fc.check(
      fc.asyncProperty(arbitrary, async (current) => {
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
            rss.peak = await server.peakRssBytes();
            if (rss.peak !== undefined && rss.peak > PEAK_RSS_BOUND) {
              throw new Error(
                `The server's resident memory reached ${mib(rss.peak)}, over the bound of ${
                  mib(PEAK_RSS_BOUND)
                }`,
              );
            }
            output.attack = made;
            const full = made % FULL_CHECK_EVERY === 0 || current.shape === "g" ||
              current.shape === "h";
            await promises(!full);
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
      {
        numRuns: options.connections,
        seed: options.seed,
        endOnFailure: true,
        examples: (options.examples ?? []).map((example) => [example]),
      },
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
      await promises(false);
      rss.peak = await server.peakRssBytes();
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
    files: output.files.size,
    openFiles,
    exitCode,
  };
}

/** What `ovtp listen --json` printed: the messages and the files it stored. */
class ServerOutput {
  /** Each message text, with who sent it. */
  readonly messages = new Map<string, { from: string; fingerprint: string }>();
  /** Each stored file by its path in the inbox, and the attack after which it was reported. */
  readonly files = new Map<string, { size: number; sha256: string; attack: number }>();
  /** Lines that broke a rule of the output itself. */
  readonly problems: string[] = [];
  /** The number of the attack under way. */
  attack = 0;

  take(line: string): void {
    let value;
    try {
      value = JSON.parse(line);
    } catch {
      this.problems.push(`stdout line is not JSON: ${line.slice(0, 200)}`);
      return;
    }
    if (value.event === "file") {
      if (this.files.has(value.path)) {
        this.problems.push(`the server reported storing ${JSON.stringify(value.path)} twice`);
      }
      this.files.set(value.path, { size: value.size, sha256: value.sha256, attack: this.attack });
    } else if (typeof value.message === "string") {
      this.messages.set(value.message, { from: value.from, fingerprint: value.fingerprint });
    }
  }
}

/**
 * Checks the server's promises about its disk; throws the first broken one.
 * Files reported after attack `since` (all, for 0), then, for a full check,
 * the chat queues and the folders outside the inbox and rooms.
 */
async function checkPromises(
  root: string,
  before: Set<string>,
  output: ServerOutput,
  context: AttackContext,
  since: number,
): Promise<void> {
  if (output.problems.length > 0) throw new Error(output.problems.join("\n"));
  for (const [path, reported] of output.files) {
    if (reported.attack < since) continue;
    let bytes;
    try {
      bytes = await Deno.readFile(`${root}/inbox/${path}`);
    } catch (error) {
      throw new Error(`The stored file ${JSON.stringify(path)} is gone or unreadable: ${error}`);
    }
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (bytes.length !== reported.size || sha256 !== reported.sha256) {
      throw new Error(
        `The stored file ${
          JSON.stringify(path)
        } holds ${bytes.length} bytes with SHA-256 ${sha256}` +
          `, but the server reported ${reported.size} bytes with ${reported.sha256}`,
      );
    }
  }
  if (since > 0) return;
  for (const queue of await queueFiles(`${root}/rooms`)) {
    const ids = queuedEnvelopeIds(await Deno.readFile(queue));
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) throw new Error(`The chat queue ${queue} holds envelope ${id} twice`);
      if (context.ledger.refusedPosts.has(id)) {
        throw new Error(`The chat queue ${queue} holds envelope ${id}, which had to be refused`);
      }
      seen.add(id);
    }
  }
  const stray = await strayFiles(root, before);
  if (stray.length > 0) {
    throw new Error(`The server wrote outside its inbox and rooms folders:\n${stray.join("\n")}`);
  }
}

/** The `.queue` files under `dir`. */
async function queueFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const entries = [];
  try {
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...await queueFiles(path));
    else if (entry.isFile && entry.name.endsWith(".queue")) found.push(path);
  }
  return found;
}

interface Setup {
  serverHome: string;
  servedDir: string;
  serverKey: Identity["publicKey"];
  clientFingerprint: string;
  identities: Pick<
    AttackContext,
    "authorized" | "stranger" | "expired" | "member" | "senders" | "authorizedFingerprint"
  >;
}

/**
 * A server home with an identity and an authorized_keys file (written
 * through the keystore, as `ovtp add-key` does): the valid client, and a
 * client whose key expired yesterday, a chat member, and one key for each
 * hostile sender name. The stranger is in no file. Beside it, a folder to
 * serve, holding hello.txt.
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
  const member = await generateIdentity();
  await serverStore.addAuthorizedKey(member.publicKey, "fuzz-member");
  const senders = [];
  for (const name of SENDER_NAMES) {
    const identity = await generateIdentity();
    await serverStore.addAuthorizedKey(identity.publicKey, name);
    senders.push({ name, identity });
  }
  const clientFingerprint = await fingerprint(authorized.publicKey);
  return {
    serverHome,
    servedDir,
    serverKey: server.publicKey,
    clientFingerprint,
    identities: {
      authorized,
      stranger,
      expired,
      member,
      senders,
      authorizedFingerprint: clientFingerprint,
    },
  };
}

/**
 * The check made after each attack: a new connection as the authorized
 * client, which checks the server's key, sends a request with a unique
 * text, and must get status "ok" with an empty response, and see the
 * server print the text with the client's name and fingerprint (what
 * listen's default handler does, here as JSON).
 */
function validClientCheck(
  server: ListenProcess,
  setup: Setup,
  output: ServerOutput,
): (n: number) => Promise<void> {
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
      const printed = await server.waitForStdout(JSON.stringify(text), CHECK_TIMEOUT_MS) &&
        output.messages.get(text);
      if (
        !printed || printed.from !== CLIENT_NAME ||
        printed.fingerprint !== setup.clientFingerprint
      ) {
        throw new Error(
          `The server answered "ok" but did not print ${
            JSON.stringify(text)
          } from ${CLIENT_NAME} ` +
            `(${setup.clientFingerprint}): ${JSON.stringify(printed)}`,
        );
      }
      output.messages.delete(text);
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
