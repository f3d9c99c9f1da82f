import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { ResolvedJob } from '../job/spec.js';
import { loadModel, type ModelSession } from '../model/session.js';
import { BufferPool } from '../storage/buffer-pool.js';
import { openInput, openParent, openStore } from '../storage/open.js';
import { diffStats, isCountingStore, type StorageStats } from '../storage/s3-stats.js';
import type { Store } from '../storage/store.js';

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
  /** Memory whole-object partitions are read into, reused from one partition to the next. */
  readonly buffers: BufferPool;
  /** Partitions this process has finished; 0 means the next one is cold. */
  partitionsDone: number;
  /** The batch size `--batch-size auto` chose on this process's first partition, with its timings. */
  autoBatch?: { chosen: number; seconds_per_item: Record<string, number> };
  readonly host: string;
}

/**
 * Where a worker runs inference. onnxruntime-node's `run` blocks the JS thread that calls it, so on the
 * worker's own thread the next batch is read and decoded only after this one: cores sit idle when the
 * worker owns more than one (its intra-op threads leave gaps) or when fewer workers than cores run, and
 * there inference gets a thread of its own. When single-threaded workers already fill every core (the
 * default layout), another worker's inference fills the gaps and the extra runnable thread preempts
 * inference instead. Measured for ResNet-50, own thread vs JS thread (docs/performance.md): 1 worker x 2
 * threads 1.09x on JPEGs and 1.24x on Ray-layout Parquet; 2 x 1 0.79x on JPEGs, and on Parquet the JS
 * thread 1.02x its own thread (4 interleaved pairs). `CAI_INFERENCE_THREAD=main|separate` overrides
 * the choice, for benchmarks.
 *
 * @example inferenceThread({ concurrency: 1, threads: 2 }) // 'separate'
 */
export function inferenceThread(
  job: Pick<ResolvedJob, 'concurrency' | 'threads'>,
  cores = allottedCores(),
): 'main' | 'separate' {
  const forced = process.env.CAI_INFERENCE_THREAD;
  if (forced === 'main' || forced === 'separate') return forced;
  return job.threads > 1 || job.concurrency * job.threads < cores ? 'separate' : 'main';
}

/**
 * The cores this process may use: a Slurm array task's `--cpus-per-task` (clusters without CPU binding
 * let a task see every core of its node), else what the OS allows the process.
 * @example allottedCores() // 1 in a task submitted with --cpus-per-task=1
 */
export function allottedCores(env: NodeJS.ProcessEnv = process.env): number {
  const slurm = Number(env.SLURM_CPUS_PER_TASK);
  return Number.isInteger(slurm) && slurm > 0 ? slurm : os.availableParallelism();
}

/**
 * Opens the job's stores and loads its model once for this process.
 * @example const ctx = await createWorkerContext(job); const rec = await runPartition(ctx, task);
 */
export async function createWorkerContext(job: ResolvedJob): Promise<WorkerContext> {
  const started = performance.now();
  const storeOptions = { s3Endpoint: job.s3Endpoint };
  const [input, output, [modelStore, modelKey]] = await Promise.all([
    openInput(job.input, storeOptions),
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
    graphOptimization: job.graphOptimization,
    thread: inferenceThread(job),
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
    buffers: new BufferPool(),
    partitionsDone: 0,
    host: os.hostname(),
  };
}
