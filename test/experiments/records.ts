import type { PartitionRecord } from '../../src/worker/record.js';
import type { SweepRow } from '../../src/experiments/sweep-rows.js';
import { sweepRowFromRecords } from '../../src/experiments/sweep-rows.js';

/**
 * A synthetic partition record: `items` items of `bytesPerItem`, `secondsPerItem` of compute split into
 * stages, started `startS` seconds after a fixed epoch. Numbers are made up by the test, not measured.
 * @example makeRecord({ partition: '1', items: 100 })
 */
export function makeRecord(o: {
  partition: string;
  items?: number;
  bytesPerItem?: number;
  secondsPerItem?: number;
  readS?: number;
  startS?: number;
  cold?: boolean;
  modelLoadS?: number;
  threads?: number;
  pid?: number;
  rssMB?: number;
  batchSize?: number;
  attempt?: number;
  lambda?: PartitionRecord['lambda'];
  storage?: PartitionRecord['storage'];
}): PartitionRecord {
  const items = o.items ?? 100;
  const bytes = items * (o.bytesPerItem ?? 20_000);
  const compute = items * (o.secondsPerItem ?? 0.01);
  const read = o.readS ?? 0.1;
  const timings = {
    read,
    decode: compute * 0.1,
    inference: compute * 0.8,
    write: compute * 0.1,
    total: read + compute,
  };
  const start = Date.UTC(2026, 0, 1) + (o.startS ?? 0) * 1000;
  const batch = o.batchSize ?? 32;
  return {
    status: 'ok',
    partition: o.partition,
    data_path: `data/${o.partition}.pt`,
    result_path: `out/predictions/${o.partition}.parquet`,
    attempt: o.attempt ?? 1,
    items,
    failed_items: 0,
    bytes,
    batch_size: batch,
    num_batches: Math.ceil(items / batch),
    device: 'cpu',
    threads: o.threads ?? 2,
    timings,
    'execution_time (seconds/batch)': timings.inference / Math.ceil(items / batch),
    'total_cpu_time (seconds)': timings.total * 1.5,
    'total_cpu_memory (MB)': o.rssMB ?? 400,
    sample_persec: items / timings.total,
    throughput_bps: (bytes * 8) / timings.total,
    model_load_s: o.cold ? (o.modelLoadS ?? 0.5) : 0,
    cold: o.cold ?? false,
    worker: { pid: o.pid ?? 1000, host: 'test' },
    started_at: new Date(start).toISOString(),
    finished_at: new Date(start + timings.total * 1000).toISOString(),
    ...(o.storage ? { storage: o.storage } : {}),
    ...(o.lambda ? { lambda: o.lambda } : {}),
  };
}

/**
 * A small synthetic sweep: 2 partition sizes x 2 data sizes x 2 batch sizes x 2 runs, whose time per item
 * falls with the batch size, records run back to back on one worker.
 * @example const rows = makeSweep(); rows.length // 16
 */
export function makeSweep(): SweepRow[] {
  const rows: SweepRow[] = [];
  for (const partitionMB of [25, 50])
    for (const dataGB of [1, 2])
      for (const batchSize of [32, 128])
        for (const run of [1, 2]) {
          const partitions = Math.ceil((dataGB * 1024) / partitionMB / 20);
          const items = partitionMB * 4;
          const secondsPerItem = (batchSize === 32 ? 0.004 : 0.003) * (run === 1 ? 1 : 1.1);
          let t = 0;
          const records = Array.from({ length: partitions }, (_, i) => {
            const r = makeRecord({
              partition: String(i + 1),
              items,
              secondsPerItem,
              startS: t,
              cold: i === 0,
              batchSize,
              rssMB: 300 + partitionMB,
            });
            t += r.timings.total;
            return r;
          });
          const config = { dataGB, partitionMB, batchSize, partitions, engine: 'local' };
          rows.push(sweepRowFromRecords(config, run, records, { wallSeconds: t + 1 }));
        }
  return rows;
}
