/**
 * A guard against a hang: a test that waits for something that should come
 * fails with a message saying what did not, rather than running until the
 * test runner's own limit. Not a timing assertion: the limit is generous.
 */

/** `work`, or a failure saying `failure` if it has not settled within `ms`. */
export async function within<T>(work: Promise<T>, failure: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(failure)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
