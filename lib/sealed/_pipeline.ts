/**
 * Tuning shared by sealing and opening: when workers start, how many, and
 * how many batches may be in flight. Only the files in lib/sealed/ import
 * it.
 *
 * @module
 */

import { backend } from "../crypto/mod.ts";
import { type ChunkRunner, inlineRunner, startWorkers, type WorkerPool } from "./_chunk_runner.ts";
import { BufferPool } from "../io/buffer_pool.ts";

/**
 * Chunks per batch: the unit handed to a worker and written at once (1 MiB).
 * Measured sealing 1 GiB with two workers (portable backend): 16 chunks
 * 318 MB/s, 32 chunks 368 MB/s, 64 chunks 366 MB/s (fewer messages; more
 * memory). In one thread with the native backend the batch size hardly
 * matters for speed, and 16 keeps the peak RSS of seal and open about
 * 10 MB lower (256 MiB sealed: 79 MB against 87 MB).
 */
export const BATCH_CHUNKS = 16;

/**
 * Batches processed in this thread before the workers are started: a
 * worker takes tens of milliseconds to start, more than sealing a few MiB.
 * Batches keep being processed here until every worker is ready.
 */
export const WORKERS_AFTER_BATCHES = 2;

/**
 * Batches in flight per worker: enough to keep every worker busy while
 * this thread reads and writes, few enough to keep memory flat (about
 * 2 MiB per batch in flight, input and output).
 */
export const IN_FLIGHT_PER_WORKER = 3;

/**
 * A pool for batch buffers of `size` bytes: fewer batches than this are
 * ever in flight, so every one in use can go back to it.
 */
export function keptPool(size: number): BufferPool {
  return new BufferPool(size, 16 * size);
}

/**
 * Batches in flight for `workers` workers; without workers, two: one being
 * hashed on other threads while the next is sealed or opened here.
 */
export function batchesInFlight(workers: number): number {
  return workers === 0 ? 2 : IN_FLIGHT_PER_WORKER * workers;
}

/**
 * No workers with the native backend: OpenSSL seals and opens in this
 * thread faster than the batches can be read and written, and the chunk
 * digests run on other threads anyway (inlineRunner). Measured here, 256
 * MiB, native: one thread 1.0 s CPU and 88 MB peak RSS to seal, two
 * workers 1.45 s CPU and 132 MB, no faster. With the portable backend the
 * ciphers are slower: the number of cores, at most 4.
 */
export function defaultWorkers(): number {
  if (backend().name === "native") return 0;
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
}

/**
 * The runner for the next batch: this thread's until the workers, started
 * after a few batches, are all ready; then theirs.
 */
export class RunnerSwitch {
  #workers: number;
  #batches = 0;
  #pool: WorkerPool | undefined;
  #ready = false;
  #inline = inlineRunner();

  /** Switches to `workers` workers (0: never). */
  constructor(workers: number) {
    this.#workers = workers;
  }

  /** The runner for the next batch. */
  next(): ChunkRunner {
    if (this.#batches++ === WORKERS_AFTER_BATCHES && this.#workers > 0) {
      try {
        const pool = this.#pool = startWorkers(this.#workers);
        pool.ready.then((ok) => this.#ready = ok);
      } catch {
        // No workers here (a sandbox, a binary without the worker module):
        // everything stays in this thread, only slower.
        this.#pool?.runner.close();
        this.#pool = undefined;
      }
    }
    return this.#ready ? this.#pool!.runner : this.#inline;
  }

  /** Stops the workers, if any. */
  close(): void {
    this.#pool?.runner.close();
  }
}
