/**
 * A bounded cursor over bytes already in memory: every read checks the
 * length against the end before it takes anything, so a parser built on it
 * never reads past its input, whatever a length field claims. Envelopes
 * (lib/envelope/envelope.ts) and sealed-file headers (lib/sealed/_header.ts) parse
 * with it; each format says how a short read is reported. Only lib/
 * imports it.
 *
 * @module
 */

/** Reads fields in order from `bytes`, as views (nothing is copied). */
export class FieldReader {
  #bytes: Uint8Array;
  #view: DataView;
  #offset: number;
  #short: (what: string) => Error;

  /**
   * Reads `bytes` from `offset`; a read past the end throws `short(what)`,
   * `what` naming the field.
   */
  constructor(bytes: Uint8Array, short: (what: string) => Error, offset = 0) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = offset;
    this.#short = short;
  }

  /** How many bytes have been read (or skipped) so far. */
  get offset(): number {
    return this.#offset;
  }

  /** The next `length` bytes, as a view. */
  take(length: number, what: string): Uint8Array {
    const start = this.#advance(length, what);
    return this.#bytes.subarray(start, start + length);
  }

  /** A big-endian u16. */
  u16(what: string): number {
    return this.#view.getUint16(this.#advance(2, what));
  }

  /** A big-endian u32. */
  u32(what: string): number {
    return this.#view.getUint32(this.#advance(4, what));
  }

  /** A big-endian u64, as a number (exact up to 2^53). */
  u64(what: string): number {
    return Number(this.#view.getBigUint64(this.#advance(8, what)));
  }

  /** Throws `trailing()` unless every byte has been read. */
  end(trailing: () => Error): void {
    if (this.#offset !== this.#bytes.length) throw trailing();
  }

  #advance(length: number, what: string): number {
    const start = this.#offset;
    if (length > this.#bytes.length - start) throw this.#short(what);
    this.#offset = start + length;
    return start;
  }
}
