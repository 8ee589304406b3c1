/**
 * What a client remembers of each invite-only room it joined: the newest
 * change of its log it verified, per relay (by the relay's fingerprint) and
 * room, one line each in `~/.ovtp/room_heads`:
 * `<relay fingerprint> <room> <version> <hash hex>`. A relay that later
 * sends a log without that change is caught.
 *
 * @module
 */

import { atomicWrite } from "../../io/files.ts";
import { withFileLock } from "../../io/file_lock.ts";
import { OvtpError } from "../../errors.ts";
import type { RoomHead } from "./membership.ts";

const LINE = /^(SHA256:[A-Za-z0-9+/]{43}) ([A-Za-z0-9._-]{1,64}) (\d{1,10}) ([0-9a-f]{64})$/;

/** @internal The `room_heads` file at `path`. */
export class RoomHeads {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  /** The head kept for `room` on the relay `relay` (a fingerprint), if any. */
  async get(relay: string, room: string): Promise<RoomHead | undefined> {
    for (const { fields } of await this.#read()) {
      if (fields[1] === relay && fields[2] === room) {
        return { version: Number(fields[3]), hash: fields[4] };
      }
    }
    return undefined;
  }

  /** Keeps `head` for `room` on `relay`, replacing the one kept before. */
  async set(relay: string, room: string, head: RoomHead): Promise<void> {
    await withFileLock(this.#path, async () => {
      const lines = (await this.#read())
        .filter(({ fields }) => !(fields[1] === relay && fields[2] === room))
        .map(({ line }) => line);
      lines.push(`${relay} ${room} ${head.version} ${head.hash}`);
      await atomicWrite(this.#path, lines.join("\n") + "\n", 0o600);
    });
  }

  async #read(): Promise<{ line: string; fields: RegExpMatchArray }[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw new OvtpError("io", `Cannot read "${this.#path}": ${(error as Error).message}`);
    }
    return text.split("\n").flatMap((line, i) => {
      if (line === "") return [];
      const fields = line.match(LINE);
      if (!fields) {
        throw new OvtpError("io", `Cannot read "${this.#path}": line ${i + 1} is malformed`);
      }
      return [{ line, fields }];
    });
  }
}
