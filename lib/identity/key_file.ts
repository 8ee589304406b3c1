/**
 * The private key file's text form, optionally sealed with a passphrase:
 *
 * ```
 * ovtp1-private <base64url of X25519 private || Ed25519 seed>
 * ovtp1-private-argon2id m=<KiB>,t=<passes>,p=<lanes> <salt> <sealed keys>
 * ```
 *
 * The sealed form encrypts the 64 key bytes with ChaCha20-Poly1305 under a
 * key derived from the passphrase with Argon2id, the header as associated
 * data, so that the parameters cannot be weakened unnoticed.
 *
 * @module
 */

import { concat, fromBase64Url, toBase64Url, utf8 } from "../bytes.ts";
import { argon2id, type Argon2idParams, sha256 } from "../crypto/mod.ts";
import { CHACHA_POLY, DecryptError } from "../channel/noise/aead.ts";
import { type Identity, identityFromPrivateKeys, KEY_LENGTH } from "./keys.ts";

const PLAIN_LABEL = "ovtp1-private";
const SEALED_LABEL = "ovtp1-private-argon2id";
const SALT_LENGTH = 16;

/**
 * Argon2id cost for new files: 64 MiB and 3 passes (RFC 9106's second
 * recommended option, with one lane), about 0.3 s here.
 */
export const DEFAULT_ARGON2ID: Argon2idParams = {
  memory: 65536,
  passes: 3,
  parallelism: 1,
};

// Bounds for parameters read from a file: a planted file must not make
// `ovtp` allocate gigabytes or spin for minutes. Argon2id costs about 2 ms
// per MiB-pass here, so 1 GiB and 4 GiB-passes in all stay under ~10 s.
const MAX_MEMORY_KIB = 1024 * 1024;
const MAX_PASSES = 16;
const MAX_MEMORY_PASSES_KIB = 4 * 1024 * 1024;

/** Thrown when a passphrase does not open a sealed key file. */
export class WrongPassphraseError extends Error {
  /** Creates the error. */
  constructor() {
    super("Wrong passphrase");
    this.name = "WrongPassphraseError";
  }
}

/** Whether a key file's text needs a passphrase. */
export function isSealedKeyFile(text: string): boolean {
  // Any white space after the label, as decodeKeyFile splits on /\s+/: a
  // tab there must not make a sealed file look plain.
  const start = text.trimStart();
  return start.startsWith(SEALED_LABEL) && /^\s/.test(start.slice(SEALED_LABEL.length));
}

/**
 * Names one key file's content for the agent: base64url of SHA-256 over the
 * text without its surrounding white space. A sealed file's random salt
 * makes it unique, and a rewritten file (a new passphrase) gets a new one.
 */
export function keyFileDigest(text: string): string {
  return toBase64Url(sha256(utf8(text.trim())));
}

/** The 64 private bytes of an identity: X25519 private key, then Ed25519 seed. */
export function privateBytes(identity: Identity): Uint8Array {
  return concat(identity.x25519Private, identity.ed25519Private);
}

/**
 * Encodes an identity's private keys, sealed when a passphrase is given.
 */
export async function encodeKeyFile(
  identity: Identity,
  passphrase?: string,
  params: Argon2idParams = DEFAULT_ARGON2ID,
): Promise<string> {
  const keys = privateBytes(identity);
  if (passphrase === undefined) {
    return `${PLAIN_LABEL} ${toBase64Url(keys)}\n`;
  }
  const salt = crypto.getRandomValues(new Uint8Array(SALT_LENGTH));
  const header = `${SEALED_LABEL} m=${params.memory},t=${params.passes},p=${params.parallelism} ${
    toBase64Url(salt)
  }`;
  const key = await argon2id(utf8(passphrase), salt, params);
  // A fresh random salt gives a fresh key for every file written, so the
  // fixed nonce 0 is never used twice with one key.
  const sealed = CHACHA_POLY.seal(key, 0, utf8(header), keys);
  return `${header} ${toBase64Url(sealed)}\n`;
}

/**
 * Decodes a key file. `passphrase` is asked only when the file is sealed.
 * Throws SyntaxError for a malformed file, WrongPassphraseError for a
 * passphrase that does not open it.
 */
export async function decodeKeyFile(
  text: string,
  passphrase: () => Promise<string>,
): Promise<Identity> {
  const fields = text.trim().split(/\s+/);
  let keys: Uint8Array;
  if (fields[0] === PLAIN_LABEL && fields.length === 2) {
    keys = decodeField(fields[1], "key");
  } else if (fields[0] === SEALED_LABEL && fields.length === 4) {
    const params = parseParams(fields[1]);
    const salt = decodeField(fields[2], "salt");
    if (salt.length !== SALT_LENGTH) {
      throw new SyntaxError(`The salt has ${salt.length} bytes, not ${SALT_LENGTH}`);
    }
    const sealed = decodeField(fields[3], "sealed key");
    const key = await argon2id(utf8(await passphrase()), salt, params);
    const header = fields.slice(0, 3).join(" ");
    try {
      keys = CHACHA_POLY.open(key, 0, utf8(header), sealed);
    } catch (error) {
      if (error instanceof DecryptError) throw new WrongPassphraseError();
      throw error;
    }
  } else {
    throw new SyntaxError(
      `Expected "${PLAIN_LABEL}" or "${SEALED_LABEL}" with its fields`,
    );
  }
  if (keys.length !== 2 * KEY_LENGTH) {
    throw new SyntaxError(`The private keys have ${keys.length} bytes, not 64`);
  }
  return await identityFromPrivateKeys(
    keys.slice(0, KEY_LENGTH),
    keys.slice(KEY_LENGTH),
  );
}

function decodeField(field: string, what: string): Uint8Array {
  try {
    return fromBase64Url(field);
  } catch {
    throw new SyntaxError(`The ${what} is not valid base64url`);
  }
}

function parseParams(field: string): Argon2idParams {
  const match = /^m=(\d{1,8}),t=(\d{1,3}),p=(\d{1,2})$/.exec(field);
  if (!match) throw new SyntaxError(`Invalid Argon2id parameters "${field}"`);
  const [memory, passes, parallelism] = match.slice(1).map(Number);
  if (
    memory < 8 * parallelism || memory > MAX_MEMORY_KIB || passes < 1 ||
    passes > MAX_PASSES || parallelism < 1 || memory * passes > MAX_MEMORY_PASSES_KIB
  ) {
    throw new SyntaxError(`Argon2id parameters out of range "${field}"`);
  }
  return { memory, passes, parallelism };
}
