import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeDemo, type Demo } from '../../src/demo/demo.js';
import type { JobSpec } from '../../src/job/spec.js';
import { readPredictions, type PredictionRows } from '../../src/summarize/read-predictions.js';
import type { Store } from '../../src/storage/store.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { uploadDir } from './s3-upload.js';

/** A demo dataset and model, on disk and uploaded to an S3 bucket. */
export interface S3Demo {
  /** The local demo (its `job` reads and writes local folders). */
  readonly local: Demo;
  /** `s3://<bucket>/data`: the partitions `1.pt` ... */
  readonly input: string;
  /** `s3://<bucket>/model/astromae.onnx`. */
  readonly model: string;
  /** Keys of the model and the partitions, relative to the bucket. */
  readonly modelKey: string;
  readonly partitions: number;
  readonly items: number;
  /** Deletes the local copy. */
  cleanup(): Promise<void>;
}

/**
 * Makes the embedded demo (distinct galaxies in every partition, labels that show whether each row
 * landed on its own item) in a temp folder and uploads it to the bucket a store is rooted at.
 *
 * @example const demo = await makeS3Demo(new S3Store('s3://cai', { s3Endpoint }), 'cai');
 */
export async function makeS3Demo(
  bucketRoot: Store,
  bucket: string,
  size: { partitions: number; itemsPerPartition: number } = { partitions: 8, itemsPerPartition: 30 },
): Promise<S3Demo> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-s3demo-'));
  const local = await makeDemo({ dir, ...size });
  await uploadDir(local.data, bucketRoot, 'data');
  await uploadDir(path.dirname(local.model), bucketRoot, 'model');
  return {
    local,
    input: `s3://${bucket}/data`,
    model: `s3://${bucket}/model/${path.basename(local.model)}`,
    modelKey: `model/${path.basename(local.model)}`,
    partitions: size.partitions,
    items: local.items,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * The demo's job flags for `cai run`: the same inputs, label and batch size as its `job`.
 * @example runCli(['run', ...demoJobFlags(demo.local.job), '--input', demo.input, ...]);
 */
export function demoJobFlags(job: JobSpec): string[] {
  const inputs = Object.entries(job.inputs ?? {})
    .map(([name, col]) => `${name}=${col}`)
    .join(',');
  return [
    '--inputs',
    inputs,
    '--label',
    String(job.label),
    '--batch-size',
    String(job.batchSize),
    '--predictions-format',
    job.predictionsFormat,
  ];
}

/**
 * Every prediction file under an output store, read back, by partition id.
 * @example const rows = await predictionsByPartition(out); rows.get('1')?.length // 30
 */
export async function predictionsByPartition(
  output: Store,
  format: JobSpec['predictionsFormat'] = 'parquet',
): Promise<Map<string, PredictionRows>> {
  const byId = new Map<string, PredictionRows>();
  for await (const o of output.list('predictions')) {
    const id = o.key.slice('predictions/'.length, o.key.lastIndexOf('.'));
    byId.set(id, await readPredictions(await output.get(o.key), format));
  }
  return byId;
}

/**
 * Every execution record under an output store, by partition id.
 * @example const records = await recordsByPartition(out); records.get('1')?.storage?.read
 */
export async function recordsByPartition(output: Store): Promise<Map<string, PartitionRecord>> {
  const byId = new Map<string, PartitionRecord>();
  for await (const o of output.list('results')) {
    const record = JSON.parse(new TextDecoder().decode(await output.get(o.key))) as PartitionRecord;
    byId.set(record.partition, record);
  }
  return byId;
}
