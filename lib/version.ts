/**
 * The version of ovtp, shown by `ovtp --version` and sent in Welcome.
 *
 * @example Check the library's version
 * ```ts
 * import { VERSION } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * // A plain semantic version, the same as in deno.json.
 * assert.match(VERSION, /^\d+\.\d+\.\d+$/);
 * ```
 */
export const VERSION = "0.1.0";
