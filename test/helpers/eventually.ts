/**
 * Polls `predicate` (every `everyMs`) until it holds; bounded, so a test that waits for the wrong thing fails, with
 * `explain()`'s account of the state then if given.
 */
export async function eventually(
  predicate: () => Promise<boolean>,
  what = 'condition',
  timeoutMs = 30_000,
  explain?: () => Promise<string>,
  everyMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  const state = explain
    ? await explain().catch((error: unknown) => `(the state could not be read: ${String(error)})`)
    : '';
  throw new Error(`${what} not met within ${timeoutMs / 1000} s${state ? `\n${state}` : ''}`);
}

/**
 * `promise`'s value, or an error naming `what` once `timeoutMs` has passed, with `explain()`'s
 * account of the state then (so a wait that cannot end fails with the reason, not at the file's bound).
 */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  timeoutMs: number,
  explain: () => Promise<string> = async () => '',
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void explain()
        .catch((error: unknown) => `(the state could not be read: ${String(error)})`)
        .then((state) => reject(new Error(`${what} not met within ${timeoutMs / 1000} s${state ? `\n${state}` : ''}`)));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
