import { DelegatingStore } from '../../storage/delegating-store.js';
import type { PartitionRecord } from '../../worker/record.js';

/**
 * A store that adds facts only the caller knows (the Lambda invocation's) to a partition record as it is
 * written, so that the record still appears in one atomic put with those facts in it. Other keys pass
 * through untouched.
 *
 * @example
 * const out = new RecordStampingStore(ctx.output);
 * out.stamp = (key, rec) => ({ ...rec, lambda: info });
 */
export class RecordStampingStore extends DelegatingStore {
  /** Called for every `results/*.json` put; returns the record to write instead. */
  stamp: ((key: string, record: PartitionRecord) => PartitionRecord) | undefined;
  /** Keys of records stamped since the last {@link RecordStampingStore.take}. */
  private readonly stamped = new Set<string>();

  /** Whether the record at `key` was written with a stamp, forgetting it. */
  take(key: string): boolean {
    return this.stamped.delete(key);
  }

  override async put(key: string, body: Uint8Array | string): Promise<void> {
    if (this.stamp && /^results\/[^/]+\.json$/.test(key)) {
      const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
      const record = this.stamp(key, JSON.parse(text) as PartitionRecord);
      await this.inner.put(key, `${JSON.stringify(record, null, 2)}\n`);
      this.stamped.add(key);
      return;
    }
    await this.inner.put(key, body);
  }
}
