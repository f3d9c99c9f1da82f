import { DelegatingStore } from '../../storage/delegating-store.js';
import { recordText } from '../../summarize/records.js';
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
  /** Records stamped since the last {@link RecordStampingStore.take}, by key, with their size as written. */
  private readonly stamped = new Map<string, { record: PartitionRecord; bytes: number }>();

  /**
   * The record written at `key` with a stamp (and its size in bytes as written), forgetting it; undefined
   * when none was.
   */
  take(key: string): { record: PartitionRecord; bytes: number } | undefined {
    const written = this.stamped.get(key);
    this.stamped.delete(key);
    return written;
  }

  override async put(key: string, body: Uint8Array | string): Promise<void> {
    if (this.stamp && /^results\/[^/]+\.json$/.test(key)) {
      const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
      const record = this.stamp(key, JSON.parse(text) as PartitionRecord);
      const written = recordText(record);
      await this.inner.put(key, written);
      this.stamped.set(key, { record, bytes: Buffer.byteLength(written) });
      return;
    }
    await this.inner.put(key, body);
  }
}
