/**
 * A byte stream over parts that are lent, not given: each part's bytes are
 * copied into the reader's buffer (BYOB, or one Deno allocates for a
 * default reader) and the part is then released to its pool. Copying costs
 * less than allocating a buffer per part. Only the files in lib/sealed/
 * import it.
 *
 * @module
 */

/** Bytes lent by a producer until `release()`. */
export interface Lease {
  /** The bytes; valid until released. */
  bytes: Uint8Array;
  /** Gives the bytes back to the producer. */
  release(): void;
}

/** Size of the buffers Deno allocates for a default reader. */
const AUTO_ALLOCATE = 1024 * 1024;

/**
 * A readable byte stream of `parts`. An error from `parts` errors the
 * stream; cancelling the stream ends `parts` (its `finally` blocks run).
 */
export function leaseStream(parts: AsyncGenerator<Lease>): ReadableStream<Uint8Array> {
  let current: Lease | undefined;
  let offset = 0;
  const drop = () => {
    current?.release();
    current = undefined;
    offset = 0;
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: AUTO_ALLOCATE,
    async pull(controller) {
      while (!current || offset >= current.bytes.length) {
        drop();
        let next: IteratorResult<Lease>;
        try {
          next = await parts.next();
        } catch (error) {
          controller.error(error);
          return;
        }
        if (next.done) {
          controller.close();
          controller.byobRequest?.respond(0);
          return;
        }
        current = next.value;
      }
      // autoAllocateChunkSize guarantees a request, for default readers too.
      const request = controller.byobRequest!;
      const view = request.view!;
      const count = Math.min(view.byteLength, current.bytes.length - offset);
      new Uint8Array(view.buffer, view.byteOffset, count)
        .set(current.bytes.subarray(offset, offset + count));
      offset += count;
      request.respond(count);
    },
    async cancel() {
      drop();
      await parts.return(undefined);
    },
  });
}
