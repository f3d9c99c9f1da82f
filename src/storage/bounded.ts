/** How many objects Summarize and resume read at once: enough to hide ~20-50 ms of S3 latency per request. */
export const READ_CONCURRENCY = 64;

/**
 * `fn` over every item with at most `limit` calls in flight, results in the items' order. The first
 * error stops new calls and is thrown once those in flight settle.
 *
 * @example const bodies = await mapBounded(keys, 64, (k) => store.get(k));
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const lane = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failed) throw failed.error;
  return out;
}
