/**
 * The Noise Protocol Framework (revision 34) as ovtp uses it: a HandshakeState runs a pattern (patterns.ts) token by token
 * over a SymmetricState (symmetric_state.ts), which splits into the two
 * CipherStates (cipher_state.ts) of the transport. The hybrid `hfs` tokens
 * add ML-KEM-768 to X25519. Checked against the public Noise vectors.
 *
 * @module
 */
import { concat } from "../../bytes.ts";
import {
  generateMlKem768,
  generateX25519,
  MLKEM768_CIPHERTEXT_SIZE,
  MLKEM768_PUBLIC_KEY_SIZE,
  mlKem768Decapsulate,
  mlKem768Encapsulate,
  type MlKemKeyPair,
  x25519,
  x25519PublicOf,
  x25519Static,
} from "../../crypto/mod.ts";
import { aeadByName, type CipherName, TAG_LENGTH } from "./aead.ts";
import type { CipherState } from "./cipher_state.ts";
import type { HandshakePattern, Token } from "./patterns.ts";
import { SymmetricState } from "./symmetric_state.ts";

/** Noise's maximum message length. */
export const MAX_MESSAGE_LENGTH = 65535;
/** X25519 public key length, Noise's DHLEN. */
export const DH_LENGTH = 32;

/** A raw X25519 key pair. */
export interface KeyPair {
  /** The 32-byte private key. */
  privateKey: Uint8Array;
  /** The 32-byte public key. */
  publicKey: Uint8Array;
}

/** Thrown for a handshake message that is malformed or used out of turn. */
export class HandshakeError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "HandshakeError";
  }
}

/** Options of {@linkcode HandshakeState.create}. */
export interface HandshakeOptions {
  /** The pattern, e.g. XX or XX_HFS. */
  pattern: HandshakePattern;
  /** Whether this side sends the first message. */
  initiator: boolean;
  /** The AEAD cipher. */
  cipher: CipherName;
  /** This side's static X25519 key pair. */
  staticKey: KeyPair;
  /** Data both sides must agree on, hashed first. @default empty */
  prologue?: Uint8Array;
  /**
   * A fixed ephemeral key, only for reproducing test vectors: reusing an
   * ephemeral key across handshakes destroys forward secrecy.
   */
  ephemeralKey?: KeyPair;
  /** A fixed KEM key pair, only for tests. */
  kemKeyPair?: MlKemKeyPair;
}

/** The result of a completed handshake. */
export interface HandshakeResult {
  /** The CipherState for messages this side sends. */
  send: CipherState;
  /** The CipherState for messages this side receives. */
  receive: CipherState;
  /** The final handshake hash, unique to this session. */
  handshakeHash: Uint8Array;
  /** The peer's static public key. */
  remoteStaticKey: Uint8Array;
}

/**
 * A Noise HandshakeState (spec section 5.3) driven by a token table. Any
 * failure leaves the state unusable: a handshake is never retried in place.
 */
export class HandshakeState {
  #options: HandshakeOptions;
  #symmetric: SymmetricState;
  #messageIndex = 0;
  #failed = false;
  #ephemeral: KeyPair | undefined;
  #kem: MlKemKeyPair | undefined;
  #remoteEphemeral: Uint8Array | undefined;
  #remoteStatic: Uint8Array | undefined;
  #remoteKemPublic: Uint8Array | undefined;

  private constructor(options: HandshakeOptions, symmetric: SymmetricState) {
    this.#options = options;
    this.#symmetric = symmetric;
  }

  /** Initialize(): hashes the protocol name and the prologue. */
  static create(options: HandshakeOptions): Promise<HandshakeState> {
    const symmetric = SymmetricState.initialize(
      aeadByName(options.cipher),
      protocolName(options.pattern, options.cipher),
    );
    symmetric.mixHash(options.prologue ?? new Uint8Array(0));
    return Promise.resolve(new HandshakeState(options, symmetric));
  }

  /** Whether every handshake message has been processed. */
  get isComplete(): boolean {
    return this.#messageIndex === this.#options.pattern.messages.length;
  }

  /** Whether it is this side's turn to write. */
  get isMyTurn(): boolean {
    return (this.#messageIndex % 2 === 0) === this.#options.initiator;
  }

  /** The peer's static key, once received. */
  get remoteStaticKey(): Uint8Array | undefined {
    return this.#remoteStatic;
  }

  /** The current handshake hash. */
  get handshakeHash(): Uint8Array {
    return this.#symmetric.handshakeHash;
  }

  /** WriteMessage(payload): returns the next handshake message. */
  async writeMessage(payload: Uint8Array): Promise<Uint8Array> {
    const tokens = this.#nextTokens(true);
    try {
      const parts: Uint8Array[] = [];
      for (const token of tokens) parts.push(await this.#writeToken(token));
      parts.push(this.#symmetric.encryptAndHash(payload));
      const message = concat(...parts);
      if (message.length > MAX_MESSAGE_LENGTH) {
        throw new HandshakeError(
          `Cannot write handshake message: ${message.length} bytes exceeds the Noise limit`,
        );
      }
      this.#messageIndex++;
      return message;
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }

  /** ReadMessage(message): processes a handshake message, returns its payload. */
  async readMessage(message: Uint8Array): Promise<Uint8Array> {
    const tokens = this.#nextTokens(false);
    try {
      if (message.length > MAX_MESSAGE_LENGTH) {
        throw new HandshakeError("Handshake message exceeds the Noise limit");
      }
      const reader = new MessageReader(message);
      for (const token of tokens) await this.#readToken(token, reader);
      const payload = this.#symmetric.decryptAndHash(reader.rest());
      this.#messageIndex++;
      return payload;
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }

  /** Split(): the transport CipherStates, once the handshake is complete. */
  split(): HandshakeResult {
    if (!this.isComplete || this.#failed) {
      throw new HandshakeError("Cannot split: the handshake is not complete");
    }
    const [c1, c2] = this.#symmetric.split();
    const initiator = this.#options.initiator;
    return {
      send: initiator ? c1 : c2,
      receive: initiator ? c2 : c1,
      handshakeHash: this.#symmetric.handshakeHash,
      remoteStaticKey: this.#remoteStatic!,
    };
  }

  #nextTokens(writing: boolean): readonly Token[] {
    if (this.#failed) throw new HandshakeError("The handshake has failed");
    if (this.isComplete) {
      throw new HandshakeError("The handshake is already complete");
    }
    if (this.isMyTurn !== writing) {
      throw new HandshakeError(
        writing ? "Cannot write: it is the peer's turn" : "Cannot read: it is our turn",
      );
    }
    return this.#options.pattern.messages[this.#messageIndex];
  }

  async #writeToken(token: Token): Promise<Uint8Array> {
    const s = this.#symmetric;
    switch (token) {
      case "e": {
        this.#ephemeral = this.#options.ephemeralKey ?? generateX25519();
        s.mixHash(this.#ephemeral.publicKey);
        return this.#ephemeral.publicKey;
      }
      case "s":
        return s.encryptAndHash(this.#options.staticKey.publicKey);
      case "e1": {
        this.#kem = this.#options.kemKeyPair ?? await generateMlKem768();
        return s.encryptAndHash(this.#kem.publicKey);
      }
      case "ekem1": {
        const { ciphertext, sharedSecret } = await mlKem768Encapsulate(
          this.#need(this.#remoteKemPublic, "remote KEM key"),
        );
        const out = s.encryptAndHash(ciphertext);
        s.mixKey(sharedSecret);
        return out;
      }
      default:
        this.#mixDh(token);
        return new Uint8Array(0);
    }
  }

  async #readToken(token: Token, reader: MessageReader): Promise<void> {
    const s = this.#symmetric;
    const tag = s.hasKey ? TAG_LENGTH : 0;
    switch (token) {
      case "e": {
        this.#remoteEphemeral = reader.take(DH_LENGTH, "ephemeral key");
        s.mixHash(this.#remoteEphemeral);
        return;
      }
      case "s":
        this.#remoteStatic = s.decryptAndHash(
          reader.take(DH_LENGTH + tag, "static key"),
        );
        return;
      case "e1":
        this.#remoteKemPublic = s.decryptAndHash(
          reader.take(MLKEM768_PUBLIC_KEY_SIZE + tag, "KEM public key"),
        );
        return;
      case "ekem1": {
        const ciphertext = s.decryptAndHash(
          reader.take(MLKEM768_CIPHERTEXT_SIZE + tag, "KEM ciphertext"),
        );
        const kem = this.#need(this.#kem, "KEM key pair");
        s.mixKey(await mlKem768Decapsulate(kem.privateKey, ciphertext));
        return;
      }
      default:
        this.#mixDh(token);
    }
  }

  #mixDh(token: "ee" | "es" | "se" | "ss"): void {
    // For es and se the initiator's half comes first in the token name.
    const initiator = this.#options.initiator;
    const local = (t: string) =>
      t === "e" ? this.#need(this.#ephemeral, "ephemeral key") : this.#options.staticKey;
    const remote = (t: string) =>
      t === "e"
        ? this.#need(this.#remoteEphemeral, "remote ephemeral key")
        : this.#need(this.#remoteStatic, "remote static key");
    const [mine, theirs] = initiator ? [token[0], token[1]] : [token[1], token[0]];
    // The static key is kept imported across handshakes; an ephemeral
    // key never is.
    const dh = mine === "s" ? x25519Static : x25519;
    const shared = dh(local(mine).privateKey, remote(theirs));
    this.#symmetric.mixKey(shared);
  }

  #need<T>(value: T | undefined, what: string): T {
    if (value === undefined) {
      throw new HandshakeError(`The pattern uses a ${what} before it is known`);
    }
    return value;
  }
}

/** The Noise protocol name for a pattern and cipher, always over SHA-256. */
export function protocolName(
  pattern: HandshakePattern,
  cipher: CipherName,
): string {
  const dh = pattern.hybrid ? "25519+MLKEM768" : "25519";
  return `Noise_${pattern.name}_${dh}_${cipher}_SHA256`;
}

/** Builds a key pair from a raw X25519 private key. */
export function keyPairFromPrivate(
  privateKey: Uint8Array,
): Promise<KeyPair> {
  return Promise.resolve({ privateKey, publicKey: x25519PublicOf(privateKey) });
}

class MessageReader {
  #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  take(length: number, what: string): Uint8Array {
    if (this.#offset + length > this.#bytes.length) {
      throw new HandshakeError(`Handshake message too short for the ${what}`);
    }
    const out = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }

  rest(): Uint8Array {
    const out = this.#bytes.subarray(this.#offset);
    this.#offset = this.#bytes.length;
    return out;
  }
}
