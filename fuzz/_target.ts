/**
 * A fuzz target: one fast-check property over one parser of outside input.
 * tests/fuzz_test.ts runs every target for a few hundred cases; `deno task
 * fuzz` (fuzz/main.ts) runs each for 100,000.
 */

import fc from "fast-check";

/** One parser's property, runnable for any number of cases. */
export interface FuzzTarget {
  /** "group/what": shown in reports and usable as a filter. */
  name: string;
  /** Runs `runs` cases; throws fast-check's report (with the seed and the shrunk counterexample) on failure. */
  run(runs: number, seed?: number): Promise<void>;
  /**
   * Cases for `deno task test`, when the default would be too slow for this
   * target (each case does public-key crypto, for example).
   */
  testRuns?: number;
}

/** Per-case limit for async properties: a case running longer counts as a hang. */
export const CASE_TIMEOUT_MS = 5_000;

/** Wraps a fast-check property as a target. */
export function fuzzTarget<Ts extends [unknown, ...unknown[]]>(
  name: string,
  property: fc.IRawProperty<Ts>,
  options: { testRuns?: number } = {},
): FuzzTarget {
  return {
    name,
    testRuns: options.testRuns,
    async run(runs, seed) {
      await fc.assert(property, {
        numRuns: runs,
        seed,
        timeout: CASE_TIMEOUT_MS,
        // The default (100) shrinking report is enough; a large `endOnFailure`
        // would hide which case failed first.
        endOnFailure: true,
      });
    },
  };
}

/** An error class the parser under test is allowed to throw. */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/**
 * Runs `parse` and returns its result, or undefined if it threw one of the
 * `allowed` errors. Any other exception (a TypeError, a RangeError, a bare
 * Error) is the kind of crash fuzzing looks for, so it is rethrown.
 */
export function parsesOrRejects<T>(
  parse: () => T,
  ...allowed: ErrorClass[]
): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (allowed.some((kind) => error instanceof kind)) return undefined;
    throw error;
  }
}

/** The async form of {@linkcode parsesOrRejects}. */
export async function parsesOrRejectsAsync<T>(
  parse: () => Promise<T>,
  ...allowed: ErrorClass[]
): Promise<T | undefined> {
  try {
    return await parse();
  } catch (error) {
    if (allowed.some((kind) => error instanceof kind)) return undefined;
    throw error;
  }
}
