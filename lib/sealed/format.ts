/**
 * The constants of the sealed-file format "ovtp sealed v1": sizes, limits
 * and the labels that separate its keys and signatures from every other use
 * of the same keys. docs/protocol.md, section "Sealed files", is the specification.
 *
 * @module
 */

import { utf8 } from "../bytes.ts";

/** The first 4 bytes of a binary sealed file: the format and its version 1. */
export const SEALED_MAGIC: Uint8Array = utf8("OVS1");
/** Plaintext bytes per chunk; every chunk but the last is exactly this long. */
export const CHUNK_SIZE = 64 * 1024;
/** The Poly1305 tag each chunk carries. */
export const TAG_SIZE = 16;
/** Bytes of a full chunk on the wire. */
export const CHUNK_CIPHERTEXT_SIZE = CHUNK_SIZE + TAG_SIZE;
/** The most recipients a sealed file may have. */
export const MAX_SEALED_RECIPIENTS = 1024;
/** Length of the random nonce in the header, the salt of the key derivation. */
export const NONCE_SIZE = 16;
/** Length of the key commitment in the header. */
export const COMMITMENT_SIZE = 32;
/** Length of an Ed25519 signature. */
export const SIGNATURE_SIZE = 64;
/** A public key: X25519 then Ed25519. */
export const PUBLIC_KEY_SIZE = 64;
/** One recipient stanza: public key, HPKE `enc`, wrapped 32-byte file key. */
export const STANZA_SIZE = PUBLIC_KEY_SIZE + 32 + 32 + 16;
/** magic, sender, nonce, recipient count: the part before the stanzas. */
export const HEADER_PREFIX_SIZE = 4 + PUBLIC_KEY_SIZE + NONCE_SIZE + 2;
/**
 * The marker between the last chunk and the payload signature. It lets a
 * reader tell a truncated file (no marker at its end) and trailing data
 * (bytes after the signature) from a damaged chunk.
 */
export const END_MARK: Uint8Array = utf8("OVS1-END");
/** END_MARK and the payload signature. */
export const TRAILER_SIZE = 8 + SIGNATURE_SIZE;

/** HPKE `info` of the wrapped file key. */
export const FILE_KEY_INFO: Uint8Array = utf8("ovtp sealed v1 file key");
/** HKDF `info` of the payload key (the chunks' ChaCha20-Poly1305 key). */
export const PAYLOAD_KEY_INFO: Uint8Array = utf8("ovtp sealed v1 payload key");
/** HKDF `info` of the key commitment. */
export const COMMITMENT_INFO: Uint8Array = utf8("ovtp sealed v1 key commitment");
/** Prefix of the message the header signature covers. */
export const HEADER_SIGNATURE_CONTEXT: Uint8Array = utf8("ovtp sealed v1 header\0");
/** Prefix of the message the payload signature covers. */
export const PAYLOAD_SIGNATURE_CONTEXT: Uint8Array = utf8("ovtp sealed v1 payload\0");

/** The first line of the armored form. */
export const ARMOR_BEGIN = "-----BEGIN OVTP SEALED FILE-----";
/** The last line of the armored form. */
export const ARMOR_END = "-----END OVTP SEALED FILE-----";
/** Base64 characters per armored line (48 bytes); only the last may be shorter. */
export const ARMOR_LINE_LENGTH = 64;
