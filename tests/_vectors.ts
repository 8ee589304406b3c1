/**
 * Locates the shared test vectors (`../shared/vectors` beside the repository)
 * and loads them. A missing file is not a pass: the caller registers its
 * tests as ignored, and the reason is printed.
 *
 * @module
 */

/** The vectors folder, relative to this file: tests/ → repo → ../shared/vectors. */
export const VECTORS_DIR: URL = new URL("../../shared/vectors/", import.meta.url);

/** The result of loading one vector file: its data, or why it is missing. */
export type VectorFile<T> =
  | { readonly data: T; readonly skipReason?: undefined }
  | { readonly data?: undefined; readonly skipReason: string };

/**
 * Reads and parses a JSON vector file below {@linkcode VECTORS_DIR}. A file
 * that does not exist gives a skip reason, which is also printed; any other
 * failure (unreadable, malformed JSON) throws, so it fails loudly.
 */
export function loadJsonVectors<T>(path: string): VectorFile<T> {
  const url = new URL(path, VECTORS_DIR);
  let text: string;
  try {
    text = Deno.readTextFileSync(url);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      const skipReason = `vector file ${url.pathname} does not exist`;
      console.log(`Skipping tests: ${skipReason}`);
      return { skipReason };
    }
    throw error;
  }
  return { data: JSON.parse(text) as T };
}

/** Decodes lowercase or uppercase hex. */
export function hex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new SyntaxError(`Invalid hex in a vector: "${text.slice(0, 16)}"`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Registers an ignored test that stands for tests skipped because vectors are missing. */
export function ignoredForMissingVectors(name: string, reason: string): void {
  Deno.test({ name: `${name} (skipped: ${reason})`, ignore: true, fn() {} });
}
