/**
 * A TCP proxy for tests that forwards the first `limit` bytes of one
 * direction and then holds the rest, so that a transfer is reliably caught
 * halfway: "up" stalls what the client sends (an upload), "down" what the
 * server sends (a download).
 */

/** A running proxy: its port, and a close that ends every connection. */
export interface StallingProxy {
  port: number;
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:target` that stalls `direction` after `limit` bytes. */
export function stallingProxy(
  target: number,
  limit: number,
  direction: "up" | "down" = "up",
): StallingProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let closed = false;
  const done = (async () => {
    for await (const inbound of listener) {
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port: target });
      conns.push(inbound, outbound);
      let forwarded = 0;
      const stall = () =>
        new TransformStream<Uint8Array, Uint8Array>({
          async transform(chunk, controller) {
            if (forwarded >= limit) return await new Promise(() => {});
            const take = Math.min(chunk.length, limit - forwarded);
            forwarded += take;
            controller.enqueue(chunk.subarray(0, take));
          },
        });
      const pass = () => new TransformStream<Uint8Array, Uint8Array>();
      inbound.readable.pipeThrough(direction === "up" ? stall() : pass())
        .pipeTo(outbound.writable).catch(() => {});
      outbound.readable.pipeThrough(direction === "down" ? stall() : pass())
        .pipeTo(inbound.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      if (closed) return;
      closed = true;
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed by a pipe.
        }
      }
      await done;
    },
  };
}
