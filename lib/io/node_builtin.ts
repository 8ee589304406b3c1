/**
 * Node's built-in modules, loaded when first used rather than when a
 * module that may need them is imported. The first `node:` module a Deno
 * process loads starts Node compatibility, and node:crypto or node:fs
 * cost about 15-25 ms and 5-10 MB each on the project's 2-core machine
 * (an empty program: about 1 ms and 29 MB; with node:crypto, 22 ms and
 * 39 MB): most of a short command's start-up (`ovtp send`), and memory
 * that a long transfer holds for nothing when the native backend does its
 * crypto. `process.getBuiltinModule` (Node 22, which Deno implements)
 * loads one synchronously, so callers stay synchronous.
 *
 * @module
 */

import type * as NodeCrypto from "node:crypto";
import type * as NodeFs from "node:fs";

interface BuiltinLoader {
  getBuiltinModule(id: string): unknown;
}

const loaded = new Map<string, unknown>();

function builtin<T>(id: string): T {
  let module = loaded.get(id);
  if (module === undefined) {
    const { process } = globalThis as unknown as { process: BuiltinLoader };
    module = process.getBuiltinModule(id);
    loaded.set(id, module);
  }
  return module as T;
}

/** node:crypto, loaded on first use. */
export function nodeCrypto(): typeof NodeCrypto {
  return builtin("node:crypto");
}

/** node:fs, loaded on first use. */
export function nodeFs(): typeof NodeFs {
  return builtin("node:fs");
}
