/**
 * A bounded map that forgets its least recently used entry: the imported
 * keys the backends keep (./ed25519.ts, ./native.ts).
 *
 * @module
 */

/** Up to `limit` entries; `evict` is called for each one dropped. */
export class LruCache<V> {
  // A Map iterates in insertion order: a hit is moved to the end, so the
  // first entry is always the least recently used.
  #entries = new Map<string, V>();
  #limit: number;
  #evict: (value: V) => void;

  /** Keeps at most `limit` entries; `evict` releases what one held. */
  constructor(limit: number, evict: (value: V) => void = () => {}) {
    this.#limit = limit;
    this.#evict = evict;
  }

  /** The entry for `id`, now the most recently used; undefined when absent. */
  get(id: string): V | undefined {
    const value = this.#entries.get(id);
    if (value !== undefined) {
      this.#entries.delete(id);
      this.#entries.set(id, value);
    }
    return value;
  }

  /** Adds an entry for an `id` not present, dropping the oldest when full. */
  add(id: string, value: V): void {
    if (this.#entries.size >= this.#limit) {
      const [oldId, oldValue] = this.#entries.entries().next().value!;
      this.#entries.delete(oldId);
      this.#evict(oldValue);
    }
    this.#entries.set(id, value);
  }

  /** How many entries are kept. */
  get size(): number {
    return this.#entries.size;
  }
}
