import { generateIdentity, Inbox, OvtpClient, serve, streamSource, responseText } from "@ovtp/ovtp";
Deno.test("onFile throws", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({
    identity: await generateIdentity(), hostname: "127.0.0.1", port: 0,
    authorize: () => Promise.resolve({ name: "alice" }),
    handler: () => ({ response: "pong" }),
    inbox: new Inbox(dir),
    onFile: () => { throw new Error("hook failed"); },
  });
  const client = await OvtpClient.connect({ hostname: "127.0.0.1", port: server.addr.port, identity: await generateIdentity(), verifyHost: () => {} });
  const sent = await client.sendFile(streamSource(ReadableStream.from([new Uint8Array([1])]), "a"));
  console.log("sent", sent.path);
  await new Promise((r) => setTimeout(r, 200));
  try { console.log("after:", responseText(await client.request("ping"))); } catch (e) { console.log("request failed:", (e as Error).message); }
  client.close(); await server.close(); await Deno.remove(dir, { recursive: true });
});
