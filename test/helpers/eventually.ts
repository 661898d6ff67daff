/** Polls `predicate` until it holds; bounded, so a test that waits for the wrong thing fails. */
export async function eventually(predicate: () => Promise<boolean>, what = 'condition', timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what} not met within ${timeoutMs / 1000} s`);
}
