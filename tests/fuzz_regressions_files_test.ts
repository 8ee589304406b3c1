/**
 * Inputs the fuzz targets over on-disk files and key lines found
 * (fuzz/targets/key_lines.ts, config.ts), each kept as found, with the bug
 * it showed.
 */

import { tempDir } from "./_tmp.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readConfig } from "../commands/_listen_config.ts";
import { RoomStore } from "../lib/services/chat/room_store.ts";
import { OvtpError } from "../lib/errors.ts";
import { decodeKeyFile, isSealedKeyFile } from "../lib/identity/key_file.ts";
import { parseExpiry, splitOptions } from "../lib/trust/key_options.ts";
import { Keystore } from "../lib/identity/keystore.ts";

async function inTempDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  try {
    await work(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// Bug: Date rolled a day that does not exist over into the next month, so
// an authorized_keys line saying February 30 expired on March 2.
Deno.test("parseExpiry() refuses a day that is not in the calendar", () => {
  assert.throws(() => parseExpiry("9999-02-30T18:00"), SyntaxError);
  assert.throws(() => parseExpiry("2026-02-30"), SyntaxError);
  assert.equal(parseExpiry("2028-02-29").toISOString(), "2028-02-29T00:00:00.000Z");
});

// Bug: a time zone offset could carry the instant past year 9999, which
// toISOString() writes as "+010000-...": formatOptions then wrote an
// authorized_keys line that parseExpiry refused to read back.
Deno.test("parseExpiry() refuses an instant whose ISO form has no 4-digit year", () => {
  assert.throws(() => parseExpiry("9999-12-31T23:00:00-05:00"), SyntaxError);
  assert.throws(() => parseExpiry("0000-01-01T00:00:00+01:00"), SyntaxError);
  const last = parseExpiry("9999-12-31T23:59:59.999Z");
  assert.equal(parseExpiry(last.toISOString()).getTime(), last.getTime());
});

// Bug: readConfig looked settings up on a plain object, so "constructor"
// (found on Object.prototype) was accepted as a setting instead of refused
// as unknown.
Deno.test("readConfig() refuses names inherited from Object.prototype", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "listen.json");
    await Deno.writeTextFile(path, '{\n  "constructor": -1.804372316065849e+78\n}');
    await assert.rejects(readConfig(path, true), (error: unknown) => {
      assert.ok(error instanceof OvtpError, String(error));
      assert.match(error.message, /line 2: unknown setting "constructor"/);
      return true;
    });
  });
});

// Bug: a damaged members.json (here an empty one) came out of the chat
// relay's store as a bare SyntaxError from JSON.parse, and entries that were
// not members went through to the relay, which failed on them with a TypeError.
Deno.test("RoomStore.members() refuses a damaged members.json with an OvtpError", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "ops"));
    const store = new RoomStore(dir);
    for (
      const text of [
        "",
        '[{"name": "alice"}]',
        '[{"name":"a","display":"a","fingerprint":"f","key":"x"}]',
      ]
    ) {
      await Deno.writeTextFile(join(dir, "ops", "members.json"), text);
      await assert.rejects(store.members("ops"), (error: unknown) => {
        assert.ok(error instanceof OvtpError, String(error));
        assert.match(error.message, /Cannot read room members ".*members\.json"/);
        return true;
      });
    }
  });
});

// Bug: encodeURIComponent throws a URIError on half a surrogate pair, which
// a display name sent by another chat member can hold: such a name was
// never pinned, so its key could change without a warning.
Deno.test("Keystore.pinChatName() pins a display name holding a lone surrogate", async () => {
  await inTempDir(async (dir) => {
    const keystore = new Keystore(dir);
    await Deno.writeTextFile(keystore.path("chatNames"), "4e SHA256:aaaa");
    assert.equal(await keystore.pinChatName("\udfff", "SHA256:aaaa"), undefined);
    assert.equal(await keystore.pinChatName("\udfff", "SHA256:aaaa"), undefined);
    assert.deepEqual(await keystore.pinChatName("\udfff", "SHA256:bbbb"), {
      fingerprint: "SHA256:aaaa",
      line: 2,
    });
  });
});

// Bug: isSealedKeyFile() wanted a space after the label, while
// decodeKeyFile() splits on any white space: a file with a BOM (or a tab)
// there asked for a passphrase yet was said not to need one.
Deno.test("isSealedKeyFile() agrees with decodeKeyFile() on white space after the label", async () => {
  const text =
    "ovtp1-private-argon2id\ufeffm=8,t=1,p=1 098VzF61ezNP2rvQrih1ug EiDakfJF4PvQB157m_YPJvuPLyNGabMx6kWoPL_Of27IumOYQN8uWMvIcAhvPlTDR_ghMHMx1DdDEGANMNMWoTaMoKeJpSi9wPpwVmIMlV4";
  assert.equal(isSealedKeyFile(text), true);
  assert.equal(isSealedKeyFile("ovtp1-private-argon2id\tm=8,t=1,p=1 a b"), true);
  assert.equal(isSealedKeyFile("ovtp1-private-argon2idx m=8,t=1,p=1 a b"), false);
  let asked = 0;
  await decodeKeyFile(text, () => {
    asked++;
    return Promise.resolve("correct horse");
  });
  assert.equal(asked, 1);
});

// splitOptions() let a repeated option silently replace the first one, so
// `allow="chat",allow="message,file"` granted what the second said while a
// reader may stop at the first. Found reviewing the key_lines target's inputs.
Deno.test("splitOptions() refuses an option given twice", () => {
  for (const line of ['allow="chat",allow="message" ovtp1 x', "rate=1/s,rate=100/s ovtp1 x"]) {
    assert.throws(() => splitOptions(line), (error: unknown) => {
      assert.ok(error instanceof SyntaxError);
      assert.match(error.message, /given twice/);
      return true;
    });
  }
  assert.deepEqual(splitOptions('allow="chat",rate=1/s ovtp1 x').rest, "ovtp1 x");
});

// parseExpiry() checked only that the text began with a date, so Date's own
// lenient parser took "2026-12-31 (note)", and "T24:00" became the next day.
Deno.test("parseExpiry() takes only whole ISO dates and times", () => {
  for (const text of ["2026-12-31 (note)", "2026-12-31T24:00", "2026-12-31T18:60", "2026-12-31x"]) {
    assert.throws(() => parseExpiry(text), SyntaxError, text);
  }
  assert.equal(parseExpiry("2026-12-31").toISOString(), "2026-12-31T00:00:00.000Z");
  assert.equal(parseExpiry("2026-12-31T18:00:00Z").toISOString(), "2026-12-31T18:00:00.000Z");
  assert.equal(
    parseExpiry("2026-12-31T18:00:00.5+02:00").toISOString(),
    "2026-12-31T16:00:00.500Z",
  );
});
