// Reading a job's outputs back from S3, in forms two runs can be compared by. Exports only.
import type { JobSpecInput } from '../../src/job/spec.js';
import type { S3Store } from '../../src/storage/s3-store.js';
import { readPredictions, type PredictionRows } from '../../src/summarize/read-predictions.js';
import type { JobSummary } from '../../src/summarize/summarize.js';
import type { PartitionRecord } from '../../src/worker/record.js';

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** Every prediction row under an output, sorted by partition and index. */
export async function predictionsOf(
  out: S3Store,
  format: NonNullable<JobSpecInput['predictionsFormat']> = 'jsonl',
): Promise<PredictionRows> {
  const rows: PredictionRows = [];
  for await (const o of out.list('predictions'))
    rows.push(...(await readPredictions(await out.get(o.key), format)));
  const key = (r: Record<string, unknown>) =>
    `${String(r.partition).padStart(8, '0')}:${String(r.index).padStart(8, '0')}`;
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The summary an output holds. */
export async function summaryOf(out: S3Store): Promise<JobSummary> {
  return JSON.parse(decode(await out.get('summary.json'))) as JobSummary;
}

/** The combined records an output holds, by partition. */
export async function recordsOf(out: S3Store): Promise<PartitionRecord[]> {
  const records = JSON.parse(decode(await out.get('combined_data.json'))) as PartitionRecord[];
  return records.sort((a, b) => Number(a.partition) - Number(b.partition));
}

/** The fields of a summary that do not depend on timing, engine or machine. */
export function comparableSummary(s: JobSummary) {
  return {
    status: s.status,
    partitions: s.partitions,
    items: s.items,
    failed_items: s.failed_items,
    bytes: s.bytes,
    metrics: s.metrics,
    failures: s.failures.map((f) => ({
      partition: f.partition,
      data_path: f.data_path,
      attempts: f.attempts,
      code: f.error.code,
      message: f.error.message,
    })),
  };
}

/** The fields of records that two correct runs share. */
export function comparableRecords(records: readonly PartitionRecord[]) {
  return records.map((r) => ({
    partition: r.partition,
    items: r.items,
    bytes: r.bytes,
    batch_size: r.batch_size,
    num_batches: r.num_batches,
    failed_items: r.failed_items,
    threads: r.threads,
  }));
}
