import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { ResolvedJob } from '../job/spec.js';
import { loadModel, type ModelSession } from '../model/session.js';
import { openParent, openStore } from '../storage/open.js';
import { diffStats, isCountingStore } from '../storage/s3-stats.js';
import type { Store } from '../storage/store.js';
import type { StorageStats } from './record.js';

/**
 * What a worker process keeps between partitions, like a warm Lambda container: the stores and the
 * model session, created once.
 */
export interface WorkerContext {
  readonly job: ResolvedJob;
  readonly input: Store;
  readonly output: Store;
  readonly model: ModelSession;
  /** Seconds spent downloading the model and creating the session. */
  readonly modelLoadSeconds: number;
  /** Object-storage traffic of downloading the model, when it came from a remote store. */
  readonly modelTraffic?: StorageStats;
  /** Partitions this process has finished; 0 means the next one is cold. */
  partitionsDone: number;
  /** The batch size `--batch-size auto` chose on this process's first partition, with its timings. */
  autoBatch?: { chosen: number; seconds_per_item: Record<string, number> };
  readonly host: string;
}

/**
 * Opens the job's stores and loads its model once for this process.
 * @example const ctx = await createWorkerContext(job); const rec = await runPartition(ctx, task);
 */
export async function createWorkerContext(job: ResolvedJob): Promise<WorkerContext> {
  const started = performance.now();
  const storeOptions = { s3Endpoint: job.s3Endpoint };
  const [input, output, [modelStore, modelKey]] = await Promise.all([
    openStore(job.input, storeOptions),
    openStore(job.output, storeOptions),
    openParent(job.model, storeOptions),
  ]);
  const before = isCountingStore(modelStore) ? modelStore.stats() : undefined;
  const modelPath = await modelStore.localPath(modelKey);
  const modelTraffic =
    before && isCountingStore(modelStore) ? diffStats(modelStore.stats(), before) : undefined;
  // Inference on a thread of its own, so the next batch is read and decoded while this one runs; the
  // worker drops each batch's feeds after the run, so they are moved there, not copied.
  // CAI_INFERENCE_THREAD=main is a diagnostic switch back to inference on the worker's JS thread, for
  // benchmarks that measure what the separate thread buys.
  const model = await loadModel(modelPath, {
    threads: job.threads,
    device: job.device,
    thread: process.env.CAI_INFERENCE_THREAD === 'main' ? 'main' : 'separate',
    moveFeeds: true,
  });
  return {
    job,
    input,
    output,
    model,
    modelLoadSeconds: (performance.now() - started) / 1000,
    modelTraffic,
    partitionsDone: 0,
    host: os.hostname(),
  };
}
