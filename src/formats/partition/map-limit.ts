/**
 * Maps `items` through an async function with at most `limit` calls in flight, keeping the order of
 * results. Each result is settled, so one failure does not lose the others (a bad image is one failed
 * item, not a failed batch).
 *
 * @example const out = await mapSettled(keys, 8, (k) => store.get(k)); // [{ ok: true, value }, ...]
 */
export async function mapSettled<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<({ ok: true; value: R } | { ok: false; error: unknown })[]> {
  const out = new Array<{ ok: true; value: R } | { ok: false; error: unknown }>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { ok: true, value: await fn(items[i], i) };
      } catch (error) {
        out[i] = { ok: false, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** The message of anything thrown, for a failed item's reason. @example reasonOf(new Error('bad')) // 'bad' */
export function reasonOf(err: unknown): string {
  // One line per failed item in predictions and logs, whatever the decoder's message looks like.
  return (err instanceof Error ? err.message : String(err)).replace(/\s*[\r\n]+\s*/g, '; ').trim();
}
