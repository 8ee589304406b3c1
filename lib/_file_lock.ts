/**
 * An advisory lock beside a file, for the read-modify-write updates that
 * several ovtp processes may make at once: two `add-key`s from a script, or
 * two clients recording a host in known_hosts. Each update writes
 * atomically, so without the lock readers were safe but one of two writers
 * lost its line.
 *
 * @module
 */

import { OvtpError } from "./errors.ts";

/** Options of {@linkcode withFileLock}. */
export interface FileLockOptions {
  /** How long to wait for another process's lock. @default 10000 */
  timeoutMs?: number;
}

// A lock older than this was left by a process that died mid-update (an
// update takes milliseconds). Two waiters may both take over the same stale
// lock at once; that needs a crash and a race together, and costs at worst
// the lost update the lock exists to prevent.
const STALE_MS = 30_000;

/**
 * Runs `update` while holding `<path>.lock` (created exclusively, removed
 * afterwards), waiting for another holder up to `timeoutMs`. The folder
 * holding `path` must exist.
 */
export async function withFileLock<T>(
  path: string,
  update: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  while (true) {
    try {
      (await Deno.open(lock, { write: true, createNew: true, mode: 0o600 })).close();
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const since = (await Deno.stat(lock).catch(() => undefined))?.mtime?.getTime();
    if (since !== undefined && Date.now() - since > STALE_MS) {
      await Deno.remove(lock).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) {
      throw new OvtpError("io", `"${path}" is being updated by another ovtp process`, {
        hint: `if none is running, delete "${lock}"`,
      });
    }
    // Jittered, so that waiting processes do not retry in step.
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
  }
  try {
    return await update();
  } finally {
    await Deno.remove(lock).catch(() => {});
  }
}
