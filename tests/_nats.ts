/**
 * A nats-server with JetStream for the cluster tests, on a free port of
 * 127.0.0.1; the tests skip, saying why, where it is not installed (CI
 * installs it).
 *
 * @module
 */

export const NATS_SERVER = "nats-server";
export const hasNats = await new Deno.Command(NATS_SERVER, { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success, () => false);
if (!hasNats) console.log(`cluster tests: skipped: ${NATS_SERVER} is not installed`);

/** A nats-server with JetStream on a free port of 127.0.0.1, its store in `dir`. */
export interface Nats {
  url: string;
  stop(): Promise<void>;
}

export async function startNats(dir: string, port?: number): Promise<Nats & { port: number }> {
  if (port === undefined) {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = probe.addr.port;
    probe.close();
  }
  const child = new Deno.Command(NATS_SERVER, {
    args: ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const pump = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) log += text;
  })();
  const deadline = Date.now() + 15_000;
  while (!log.includes("Server is ready")) {
    if (Date.now() > deadline) throw new Error(`nats-server did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Stopped already.
      }
      await child.status;
      await pump;
    },
  };
}
