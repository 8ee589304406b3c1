/**
 * Where batches of chunks are sealed and opened: in this thread, or in a
 * pool of workers (_chunk_worker.ts). ChaCha20-Poly1305 and SHA-256 on
 * node:crypto cost about 1.4 and 1.1 ns per byte on one core here, so one
 * thread alone cannot keep up with age; a pool spreads the batches over
 * the cores while this thread reads, writes and keeps the order. Results
 * come back in the order the batches were given, whoever computed them.
 * Buffers go to a worker and come back (transferred, not copied), so that
 * the caller can reuse them. Only the files in lib/sealed/ import it.
 *
 * @module
 */

import { CHUNK_CIPHERTEXT_SIZE, CHUNK_SIZE } from "./format.ts";
import { backend, type BackendName, sha256Pieces } from "../crypto/mod.ts";
import { chunkCount, DIGEST_SIZE, openChunks, sealChunks } from "./stream.ts";

/** A batch to seal: `input` holds full chunks, and a short last one only if `last`. */
export interface SealJob {
  /** The index of the first chunk. */
  first: number;
  /** The plaintext. */
  input: Uint8Array;
  /** Whether the batch ends with the file's last chunk. */
  last: boolean;
  /** Room for the sealed chunks (16 bytes more per chunk). */
  output: Uint8Array;
}

/** A batch to open: `input` holds whole chunks, none of them the last. */
export interface OpenJob {
  /** The index of the first chunk. */
  first: number;
  /** The sealed chunks. */
  input: Uint8Array;
  /** Room for the plaintext (64 KiB per chunk). */
  output: Uint8Array;
}

/** A finished batch; `input` and `output` are the job's buffers, given back. */
export interface Done {
  /** The job's input. */
  input: Uint8Array;
  /** The written part of the job's output. */
  output: Uint8Array;
  /** SHA-256 of each sealed chunk, for the transcript. */
  digests: Uint8Array;
  /** How many chunks were sealed, or opened before the first that failed. */
  verified: number;
}

/** Seals and opens batches. */
export interface ChunkRunner {
  /** Seals a batch; the job's buffers are given away until the result. */
  seal(key: Uint8Array, job: SealJob): Promise<Done>;
  /** Opens a batch, stopping at the first chunk that fails. */
  open(key: Uint8Array, job: OpenJob): Promise<Done>;
  /** Stops the workers, if any. */
  close(): void;
}

/** Runs a job in this thread (the worker runs the same function). */
export function runJob(
  key: Uint8Array,
  op: "seal" | "open",
  job: SealJob | OpenJob,
): Done {
  if (op === "seal") {
    const { first, input, last, output } = job as SealJob;
    const count = chunkCount(input.length);
    const digests = new Uint8Array(count * DIGEST_SIZE);
    const written = sealChunks(key, { first, plaintext: input, last }, output, digests);
    return { input, output: output.subarray(0, written), digests, verified: count };
  }
  const { first, input, output } = job;
  const count = input.length / CHUNK_CIPHERTEXT_SIZE;
  const digests = new Uint8Array(count * DIGEST_SIZE);
  const verified = openChunks(key, first, input, output, digests);
  return {
    input,
    output: output.subarray(0, verified * CHUNK_SIZE),
    digests: digests.subarray(0, verified * DIGEST_SIZE),
    verified,
  };
}

/**
 * Runs every batch's ciphers in this thread, and its chunk digests through
 * the crypto backend's sha256Pieces(): with the native backend they run on
 * other threads while this one reads, encrypts the next batch and writes,
 * which is how one process uses two cores without a worker's memory.
 */
export function inlineRunner(): ChunkRunner {
  return {
    async seal(key, { first, input, last, output }) {
      const count = chunkCount(input.length);
      const written = sealChunks(key, { first, plaintext: input, last }, output, null);
      const sealed = output.subarray(0, written);
      const digests = new Uint8Array(count * DIGEST_SIZE);
      await sha256Pieces(sealed, CHUNK_CIPHERTEXT_SIZE, digests);
      return { input, output: sealed, digests, verified: count };
    },
    async open(key, { first, input, output }) {
      const count = input.length / CHUNK_CIPHERTEXT_SIZE;
      const digests = new Uint8Array(count * DIGEST_SIZE);
      // Hashing reads the same ciphertext the decryption reads: both at once.
      const hashing = sha256Pieces(input, CHUNK_CIPHERTEXT_SIZE, digests);
      let verified: number;
      try {
        verified = openChunks(key, first, input, output, null);
      } finally {
        await hashing;
      }
      return {
        input,
        output: output.subarray(0, verified * CHUNK_SIZE),
        digests: digests.subarray(0, verified * DIGEST_SIZE),
        verified,
      };
    },
    close() {},
  };
}

/** A message to a worker: the job, its buffers as whole ArrayBuffers. */
export interface WorkerJob {
  id: number;
  /** The crypto backend of the thread that started the worker: the worker uses the same. */
  backend: BackendName;
  op: "seal" | "open";
  key: Uint8Array;
  first: number;
  last: boolean;
  input: ArrayBuffer;
  inputOffset: number;
  inputLength: number;
  output: ArrayBuffer;
  outputOffset: number;
  outputLength: number;
}

/** A worker's answer. */
export interface WorkerAnswer {
  id: number;
  input: ArrayBuffer;
  output: ArrayBuffer;
  written: number;
  digests: Uint8Array;
  verified: number;
  error?: string;
}

/** A pool of workers being started. */
export interface WorkerPool {
  /** Runs batches on the workers, round robin. */
  runner: ChunkRunner;
  /**
   * True once every worker has loaded; false if one could not (a compiled
   * binary built without `--include lib/sealed/_chunk_worker.ts`, a
   * sandbox): then the pool is closed and the caller stays in its thread.
   */
  ready: Promise<boolean>;
}

/**
 * Starts `size` workers. Nothing should be given to the runner before
 * `ready` says true: a job given to a worker that fails to load is lost.
 */
export function startWorkers(size: number): WorkerPool {
  type Waiter = { resolve(answer: WorkerAnswer): void; reject(error: Error): void };
  const pending = new Map<number, Waiter>();
  const fail = (error: Error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  let loaded = 0;
  let settle: (ok: boolean) => void = () => {};
  const ready = new Promise<boolean>((resolve) => settle = resolve);
  const workers: Worker[] = [];
  const start = () => {
    const worker = new Worker(new URL("./_chunk_worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }: MessageEvent<WorkerAnswer | "ready">) => {
      if (data === "ready") {
        if (++loaded === size) settle(true);
        return;
      }
      const waiter = pending.get(data.id);
      pending.delete(data.id);
      if (data.error !== undefined) waiter?.reject(new Error(`Chunk worker failed: ${data.error}`));
      else waiter?.resolve(data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      settle(false);
      close();
      fail(new Error(`Chunk worker failed: ${event.message}`));
    };
    return worker;
  };
  try {
    for (let i = 0; i < size; i++) workers.push(start());
  } catch (error) {
    for (const worker of workers) worker.terminate();
    throw error;
  }
  const close = () => {
    for (const worker of workers) worker.terminate();
    settle(false);
  };
  let next = 0;
  const run = async (
    key: Uint8Array,
    op: "seal" | "open",
    job: SealJob | OpenJob,
  ): Promise<Done> => {
    const id = next++;
    const answer = new Promise<WorkerAnswer>((resolve, reject) => {
      pending.set(id, { resolve, reject });
    });
    const message = workerJob(id, key, op, job);
    workers[id % size].postMessage(message, [message.input, message.output]);
    return doneOf(message, await answer);
  };
  const runner: ChunkRunner = {
    seal: (key, job) => run(key, "seal", job),
    open: (key, job) => run(key, "open", job),
    close() {
      close();
      fail(new Error("The chunk workers were stopped"));
    },
  };
  return { runner, ready };
}

// A job as sent to a worker: its buffers go whole (transferred).
function workerJob(
  id: number,
  key: Uint8Array,
  op: "seal" | "open",
  job: SealJob | OpenJob,
): WorkerJob {
  const { input, output } = job;
  return {
    id,
    backend: backend().name,
    op,
    key,
    first: job.first,
    last: "last" in job ? job.last : false,
    input: input.buffer as ArrayBuffer,
    inputOffset: input.byteOffset,
    inputLength: input.length,
    output: output.buffer as ArrayBuffer,
    outputOffset: output.byteOffset,
    outputLength: output.length,
  };
}

// The finished batch, over the buffers the worker gave back.
function doneOf(message: WorkerJob, answer: WorkerAnswer): Done {
  return {
    input: new Uint8Array(answer.input, message.inputOffset, message.inputLength),
    output: new Uint8Array(answer.output, message.outputOffset, answer.written),
    digests: answer.digests,
    verified: answer.verified,
  };
}
