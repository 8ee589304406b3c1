/**
 * An advisory lock beside a file, for the read-modify-write updates that
 * several ovtp processes may make at once: two `add-key`s from a script, or
 * two clients recording a host in known_hosts. Each update writes
 * atomically, so without the lock readers were safe but one of two writers
 * lost its line.
 *
 * The lock is the operating system's (`Deno.FsFile.lock`: flock on POSIX,
 * LockFileEx on Windows) on `<path>.lock`, so a holder that dies releases
 * it with its process: no guess about staleness. The lock file itself stays
 * (deleting it would let a waiter lock a removed file while a newcomer
 * locks a new one).
 *
 * @module
 */

import { OvtpError } from "../errors.ts";
import { openForAppend } from "./files.ts";

/** Options of {@linkcode withFileLock}. */
export interface FileLockOptions {
  /** How long to wait for another process's lock. @default 10000 */
  timeoutMs?: number;
}

/**
 * Runs `update` while holding an exclusive lock on `<path>.lock` (created
 * if missing, never through a planted link), waiting for another holder up
 * to `timeoutMs`. The folder holding `path` must exist.
 */
export async function withFileLock<T>(
  path: string,
  update: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const lock = `${path}.lock`;
  const file = await openForAppend(lock, 0o600);
  try {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    // tryLock, not lock: a holder that never lets go (a stopped process)
    // must end in an error naming the file, not a hang.
    while (!await file.tryLock(true)) {
      if (Date.now() > deadline) {
        throw new OvtpError("io", `"${path}" is being updated by another ovtp process`, {
          hint:
            `the process holding "${lock}" is still running (stopped?): let it finish or end it`,
        });
      }
      // Jittered, so that waiting processes do not retry in step.
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
    return await update();
  } finally {
    // Closing releases the lock.
    file.close();
  }
}
