/**
 * A worker that seals or opens batches of chunks for _chunk_runner.ts, so
 * that the chunk crypto of a large file runs on every core. It holds no
 * state: each message carries its key and batch, and each answer carries
 * the batch's buffers back (transferred, not copied).
 *
 * @module
 */

import { backend, selectCryptoBackend } from "../crypto/mod.ts";
import { runJob, type WorkerAnswer, type WorkerJob } from "./_chunk_runner.ts";

interface Scope {
  onmessage: ((event: MessageEvent<WorkerJob>) => void) | null;
  postMessage(message: WorkerAnswer | "ready", transfer?: Transferable[]): void;
}

const scope = self as unknown as Scope;

scope.onmessage = ({ data: job }) => {
  const input = new Uint8Array(job.input, job.inputOffset, job.inputLength);
  const output = new Uint8Array(job.output, job.outputOffset, job.outputLength);
  let answer: WorkerAnswer;
  try {
    if (backend().name !== job.backend) selectCryptoBackend(job.backend);
    const done = runJob(job.key, job.op, { first: job.first, last: job.last, input, output });
    answer = {
      id: job.id,
      input: job.input,
      output: job.output,
      written: done.output.length,
      digests: done.digests,
      verified: done.verified,
    };
  } catch (error) {
    answer = {
      id: job.id,
      input: job.input,
      output: job.output,
      written: 0,
      digests: new Uint8Array(0),
      verified: 0,
      error: String(error),
    };
  }
  scope.postMessage(answer, [job.input, job.output]);
};

// Loaded: the runner gives this worker jobs only from now on.
scope.postMessage("ready");
