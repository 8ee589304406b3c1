/**
 * Noise handshake patterns as data: each message is a list of tokens that
 * one loop in handshake_state.ts reads or writes.
 *
 * @module
 */

/**
 * A handshake token. `e1` and `ekem1` come from the Noise HFS extension
 * (noise_hfs.md, revision 1): `e1` carries the initiator's ephemeral KEM
 * public key, `ekem1` the responder's KEM ciphertext to it.
 */
export type Token = "e" | "s" | "ee" | "es" | "se" | "ss" | "e1" | "ekem1";

/** A handshake pattern: a name and its messages, initiator first. */
export interface HandshakePattern {
  /** The pattern's name as it appears in the protocol name, e.g. "XX". */
  readonly name: string;
  /** Whether the pattern uses a KEM (the HFS extension). */
  readonly hybrid: boolean;
  /** Token lists; even indices are sent by the initiator. */
  readonly messages: readonly (readonly Token[])[];
}

/** Noise_XX: mutual authentication, static keys sent encrypted. */
export const XX: HandshakePattern = {
  name: "XX",
  hybrid: false,
  messages: [["e"], ["e", "ee", "s", "es"], ["s", "se"]],
};

/** Noise_XXhfs: XX with hybrid forward secrecy from a KEM. */
export const XX_HFS: HandshakePattern = {
  name: "XXhfs",
  hybrid: true,
  messages: [["e", "e1"], ["e", "ee", "ekem1", "s", "es"], ["s", "se"]],
};
