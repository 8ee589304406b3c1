/**
 * A bare library server for requests.ts (`BENCH_SERVER=lib`): `serve()` from
 * ../mod.ts on 127.0.0.1, a handler that answers "ok" without printing, no
 * logging. Run as a child process so that it has its own core, like
 * `ovtp listen`, but without the CLI's per-message output.
 *
 * Usage: deno run -A bench/_serve.ts HOME
 *
 * @module
 */

import { authorizedKeysAuthorizer, Keystore, serve } from "../mod.ts";

if (import.meta.main) {
  const home = Deno.args[0];
  if (!home) {
    console.error("Usage: deno run -A bench/_serve.ts HOME");
    Deno.exit(2);
  }
  const keystore = new Keystore(home);
  const identity = await keystore.loadIdentity(() => Promise.resolve(""));
  const server = serve({
    identity,
    hostname: "127.0.0.1",
    port: 0,
    authorize: authorizedKeysAuthorizer(keystore),
    handler: () => ({ status: "ok" }),
  });
  console.error(`bench server: listening on 127.0.0.1:${server.addr.port}`);
  const stop = async () => {
    await server.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
