import assert from "node:assert/strict";
import { firstReachable } from "../commands/_failover.ts";
import { OvtpError } from "../lib/errors.ts";

// Only an unreachable address is passed over: a host that answers with the
// wrong key must stop the command, not send it on to the next address.
Deno.test("firstReachable moves on only after a network failure", async () => {
  const tried: string[] = [];
  const warned: string[] = [];
  const connect = (address: string) => {
    tried.push(address);
    if (address === "down") throw new OvtpError("network", "Cannot connect to down");
    if (address === "liar") throw new OvtpError("trust", "The host key of liar changed");
    return Promise.resolve(`connected to ${address}`);
  };
  const warn = (line: string) => warned.push(line);
  assert.equal(await firstReachable(["down", "up"], connect, warn), "connected to up");
  assert.deepEqual(warned, ["Cannot connect to down; trying up"]);
  tried.length = 0;
  await assert.rejects(firstReachable(["down", "liar", "up"], connect, warn), /key of liar/);
  assert.deepEqual(tried, ["down", "liar"]);
  await assert.rejects(firstReachable(["down", "down"], connect, warn), /Cannot connect to down/);
});
