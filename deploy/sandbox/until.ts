// Waiting on a condition, for the demo and the tests: polls until `fn` gives a
// value, and fails with what it waited for once the time is up.
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, pollMs = 150): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
