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

// Sources whose batches are decoded off the JS thread (sharp's thread pool) or not at all (tensor files
// are views of the file's bytes): a worker reading only these loses little while inference blocks it.
const OFF_THREAD_DECODE = new Set(['image', 'tensor']);

/**
 * Where a worker runs inference. onnxruntime-node's `run` blocks the JS thread that calls it, so on the
 * worker's own thread the next batch is read and decoded only after this one. On a thread of its own,
 * decoding overlaps inference, which pays when cores would idle (a worker with several intra-op threads,
 * fewer workers than cores) or when decoding is JavaScript (Parquet, FITS). When single-threaded workers
 * already fill every core and decoding happens in sharp's threads anyway, the extra runnable thread only
 * preempts inference. Measured for ResNet-50 (docs/performance.md), own thread vs JS thread: JPEGs 1.09x
 * at 1 worker x 2 threads but 0.79x at 2 x 1; Ray-layout Parquet 1.24x at 1 x 2 and 1.17x at 2 x 1.
 * `CAI_INFERENCE_THREAD=main|separate` overrides the choice, for benchmarks.
 *
 * @example inferenceThread({ concurrency: 2, threads: 1 }, 2, ['parquet']) // 'separate'
 */
export function inferenceThread(
  job: Pick<ResolvedJob, 'concurrency' | 'threads'>,
  cores = os.availableParallelism(),
  sources: readonly string[] = [],
): 'main' | 'separate' {
  const forced = process.env.CAI_INFERENCE_THREAD;
  if (forced === 'main' || forced === 'separate') return forced;
  const idleCores = job.threads > 1 || job.concurrency * job.threads < cores;
  const jsDecode = sources.some((s) => !OFF_THREAD_DECODE.has(s));
  return idleCores || jsDecode ? 'separate' : 'main';
}

/**
 * Opens the job's stores and loads its model once for this process. `hints.sources` (the source kinds
 * of the job's partitions) decides where inference runs; without it, as for tensor files and images.
 * @example const ctx = await createWorkerContext(job); const rec = await runPartition(ctx, task);
 */
export async function createWorkerContext(
  job: ResolvedJob,
  hints: { readonly sources?: readonly string[] } = {},
): Promise<WorkerContext> {
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
  const model = await loadModel(modelPath, {
    threads: job.threads,
    device: job.device,
    thread: inferenceThread(job, os.availableParallelism(), hints.sources),
    // The worker drops each batch's feeds after the run, so they are moved to the thread, not copied.
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
