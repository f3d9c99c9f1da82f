// Partition records and predictions of a finished job without running inference: what Summarize and
// the scale benchmark read, in the shapes the worker writes. Exports only.
import type { PlannedPartition } from '../../src/plan/plan.js';
import type { Store } from '../../src/storage/store.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { outputKeys } from '../../src/worker/run-partition.js';

/** A plan of `n` partitions `1.pt` ... `n.pt` of `bytes` each. */
export function syntheticPlan(n: number, bytes = 1000): PlannedPartition[] {
  return Array.from({ length: n }, (_, i) => ({ id: String(i + 1), key: `${i + 1}.pt`, bytes }));
}

/** The record a worker would write for partition `p` of `items` items. */
export function syntheticRecord(p: PlannedPartition, items = 4, startedAt = new Date()): PartitionRecord {
  const total = 0.05 + (Number(p.id) % 7) * 0.01;
  return {
    status: 'ok',
    partition: p.id,
    data_path: p.key,
    result_path: `predictions/${p.id}.jsonl`,
    attempt: 1,
    items,
    failed_items: 0,
    bytes: p.bytes ?? 0,
    batch_size: items,
    num_batches: 1,
    device: 'cpu',
    threads: 1,
    timings: { read: 0.01, read_wait: 0.005, decode: 0.01, inference: total - 0.03, write: 0.01, total },
    'execution_time (seconds/batch)': total,
    'total_cpu_time (seconds)': total,
    'total_cpu_memory (MB)': 180 + (Number(p.id) % 13),
    sample_persec: items / total,
    throughput_bps: (p.bytes ?? 0) / total,
    model_load_s: 0,
    cold: false,
    worker: { pid: 1, host: 'synthetic' },
    started_at: startedAt.toISOString(),
    finished_at: new Date(startedAt.getTime() + total * 1000).toISOString(),
  };
}

/** JSON Lines predictions of a synthetic partition: a regression output and a label per item. */
export function syntheticPredictions(p: PlannedPartition, items = 4): string {
  return Array.from(
    { length: items },
    (_, i) =>
      `${JSON.stringify({ partition: p.id, index: i, redshift: 0.1 + i / 100, label: 0.1 + i / 90 })}\n`,
  ).join('');
}

/** What a worker writes for partition `p` (JSON Lines predictions): [output key, body] pairs. */
export function syntheticOutputs(p: PlannedPartition): Array<[key: string, body: string]> {
  const keys = outputKeys(p.id, 'jsonl');
  return [
    [keys.record, `${JSON.stringify(syntheticRecord(p), null, 2)}\n`],
    [keys.predictions, syntheticPredictions(p)],
  ];
}

/** Writes the records and predictions of `plan` into `output`, `concurrency` puts at a time. */
export async function writeSyntheticOutputs(
  output: Store,
  plan: readonly PlannedPartition[],
  concurrency = 64,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < plan.length) {
      for (const [key, body] of syntheticOutputs(plan[next++])) await output.put(key, body);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}
