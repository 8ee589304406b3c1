// The bounds a lone relay keeps on rooms (rooms per server, rooms per key)
// hold in a cluster too: counted over the shared room entries in NATS, so
// that a key cannot make NATS hold rooms without end through any relay.

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { fingerprint, formatPublicKey, generateIdentity } from "../mod.ts";
import type { StoredMember } from "../lib/services/chat/room_store.ts";
import { NatsCluster } from "../lib/cluster/nats_cluster.ts";
import { NatsRooms } from "../lib/cluster/nats_rooms.ts";
import { SILENT_LOGGER } from "../lib/logger.ts";
import { hasNats, startNats } from "./_nats.ts";

async function member(name: string): Promise<StoredMember> {
  const { publicKey } = await generateIdentity();
  return {
    name,
    display: name,
    fingerprint: await fingerprint(publicKey),
    key: formatPublicKey(publicKey),
  };
}

Deno.test({
  name: "a cluster refuses a new room past its room bound, and a key past its rooms per key",
  ignore: !hasNats,
  async fn() {
    const dir = await tempDir();
    const nats = await startNats(`${dir}/nats`);
    const cluster = await NatsCluster.start({ servers: [nats.url], logger: SILENT_LOGGER });
    // Two relays over one NATS: what one admitted counts for the other.
    const [a, b] = [1, 2].map(() =>
      new NatsRooms(cluster, SILENT_LOGGER, { maxRooms: 3, maxRoomsPerKey: 2 })
    );
    try {
      const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map(member));
      assert.equal(await a.addMember("one", alice), undefined);
      assert.equal(await b.addMember("two", alice), undefined);
      assert.equal(
        await b.addMember("three", alice),
        "Your key is a member of too many chat rooms (2)",
      );
      assert.deepEqual(await a.members("three"), [], "the refused join made no room");
      // Joining again where it is a member is no new membership.
      assert.equal(await a.addMember("two", alice), undefined);
      assert.equal(await a.addMember("three", bob), undefined);
      assert.equal(
        await b.addMember("four", carol),
        "This server has too many chat rooms (3)",
      );
      // An existing room still takes a newcomer.
      assert.equal(await b.addMember("one", carol), undefined);
      assert.deepEqual((await a.members("one")).map((m) => m.name), ["alice", "carol"]);
    } finally {
      a.close();
      b.close();
      await cluster.close();
      await nats.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
