import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeDemo, type Demo } from '../../src/demo/demo.js';
import type { JobSpec } from '../../src/job/spec.js';
import { readPredictions, type PredictionRows } from '../../src/summarize/read-predictions.js';
import { FileStore } from '../../src/storage/file-store.js';
import type { Store } from '../../src/storage/store.js';

let shared: Promise<Demo> | undefined;

/** A small demo dataset (4 partitions x 60 galaxies), made once per test process. */
export function smallDemo(): Promise<Demo> {
  shared ??= mkdtemp(path.join(os.tmpdir(), 'cai-demo-')).then((dir) =>
    makeDemo({ dir, partitions: 4, itemsPerPartition: 60 }),
  );
  return shared;
}

/** The demo's job with a fresh output folder. */
export async function freshJob(demo: Demo, overrides: Partial<JobSpec> = {}): Promise<JobSpec> {
  const output = await mkdtemp(path.join(os.tmpdir(), 'cai-out-'));
  return { ...demo.job, output, concurrency: 2, threads: 1, ...overrides };
}

/** Every prediction row written under an output folder, partition by partition. */
export async function allPredictions(
  output: string,
  format: JobSpec['predictionsFormat'] = 'parquet',
): Promise<PredictionRows> {
  return storedPredictions(new FileStore(output), format);
}

/** Every prediction row written under an output store (local or S3), partition by partition. */
export async function storedPredictions(
  store: Store,
  format: JobSpec['predictionsFormat'] = 'parquet',
): Promise<PredictionRows> {
  const rows: PredictionRows = [];
  for await (const o of store.list('predictions'))
    rows.push(...(await readPredictions(await store.get(o.key), format)));
  return rows;
}
