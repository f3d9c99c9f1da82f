import { performance } from 'node:perf_hooks';
import { CaiError, ErrorCodes } from '../errors.js';
import { encodePredictions } from '../formats/predictions/writers.js';
import type { PredictionTable } from '../formats/predictions/table.js';
import type { CarriedValue, PartitionStream, SourceBatch } from '../formats/source.js';
import { sourceByName } from '../formats/sources.js';
import { bindInputs, feedsFor, resolveColumn, type InputBinding } from '../model/binding.js';
import type { PlannedPartition } from '../formats/planned-partition.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ModelValueInfo } from '../model/model-session.js';
import { diffStats, isCountingStore, measureTraffic, type StoreStats } from '../storage/s3-stats.js';
import type { Store } from '../storage/store.js';
import { outputKeys } from '../storage/output-layout.js';
import type { WorkerContext } from './context.js';
import { LabelCollector, nonFiniteRows, OutputCollector } from './outputs.js';
import { rebatch } from './rebatch.js';
import type { PartitionRecord } from './record.js';
import { SpanCollector } from './spans.js';

/** Batch sizes `--batch-size auto` tries, each twice, on the first batches of a worker's first partition. */
export const AUTO_BATCH_CANDIDATES = Object.freeze([32, 64, 128, 256, 512]);

/** One attempt at one partition, as engines hand it to a worker. */
export interface PartitionTask {
  readonly partition: PlannedPartition;
  /** 1 for the first try. */
  readonly attempt: number;
}

// Where a partition's outputs go is the output's schema (src/storage/output-layout.ts).
export { outputKeys };

const seconds = (fromMs: number) => (performance.now() - fromMs) / 1000;

/**
 * Refuses a batch size a model with a fixed batch dimension cannot take (the worker checks each partition;
 * the preflight checks the first one before any work).
 *
 * @example checkBatchDimension(model.inputs, Math.min(128, items), 'data/1.pt') // throws E_BINDING
 */
export function checkBatchDimension(
  inputs: readonly ModelValueInfo[],
  batchSize: number,
  source: string,
): void {
  for (const input of inputs) {
    const first = input.shape[0];
    if (typeof first === 'number' && first > 0 && first !== batchSize) {
      throw new CaiError(
        ErrorCodes.binding,
        source,
        `input "${input.name}" has a fixed batch dimension of ${first}; run with --batch-size ${first} or export the model with a dynamic batch axis`,
      );
    }
  }
}

/**
 * Refuses a `--carry` column named like a column the predictions already have (an output of the model,
 * `partition`, `index`, `id`, `label`, `error`).
 *
 * @example checkCarried(['ra'], model.outputs, 'data/1.h5') // passes
 */
export function checkCarried(
  carries: readonly string[],
  outputs: readonly ModelValueInfo[],
  source: string,
): void {
  const taken = ['partition', 'index', 'id', 'label', 'error', ...outputs.map((o) => o.name)];
  const clash = carries.find((name) => taken.includes(name));
  if (clash !== undefined) {
    throw new CaiError(
      ErrorCodes.option,
      source,
      `--carry "${clash}" would write a second predictions column of that name (the predictions already have ${taken.join(', ')}); leave it out of --carry`,
    );
  }
}

/** Where a Slurm array task runs (its environment), so that a record says which job, task and node. */
function slurmPlace(): { slurm?: { job_id: string; array_task_id: number; node: string } } {
  const env = process.env;
  const job = env.SLURM_ARRAY_JOB_ID ?? env.SLURM_JOB_ID;
  if (!job || env.SLURM_ARRAY_TASK_ID === undefined) return {};
  return {
    slurm: {
      job_id: job,
      array_task_id: Number(env.SLURM_ARRAY_TASK_ID),
      node: env.SLURMD_NODENAME ?? '',
    },
  };
}

/**
 * Opens the partition with the source kind that planned it. Engines call this early for the next
 * partition (prefetch) so its reading overlaps the current partition's inference.
 *
 * @example const next = openPartition(ctx, partition); next.catch(() => {}); ... runPartition(ctx, task, next)
 */
export async function openPartition(
  ctx: WorkerContext,
  partition: PlannedPartition,
): Promise<PartitionStream> {
  // Measured per call, not by diffing the store's counters: a prefetch may be reading meanwhile.
  const { result: stream, traffic } = await measureTraffic(() =>
    sourceByName(partition.source ?? 'tensor').open(ctx.input, partition, ctx.job, { buffers: ctx.buffers }),
  );
  if (isCountingStore(ctx.input)) openTraffic.set(stream, traffic);
  return stream;
}

// Object-storage traffic spent opening each stream (for a whole-object source, its whole read).
const openTraffic = new WeakMap<PartitionStream, StoreStats>();

function storeStats(store: Store): StoreStats | undefined {
  return isCountingStore(store) ? store.stats() : undefined;
}

/**
 * Chooses the batch size by measurement: hands out each candidate twice (the first call at a new shape
 * pays onnxruntime's allocations), then the size with the least time per item. Sizes are handed out
 * one batch ahead of their timings, since the worker reads batch i+1 while batch i runs.
 */
class BatchSizer {
  private readonly schedule: number[];
  private handed = 0;
  readonly timings = new Map<number, number>();

  constructor(items: number) {
    const sizes = AUTO_BATCH_CANDIDATES.filter((c) => c <= Math.max(AUTO_BATCH_CANDIDATES[0], items));
    this.schedule = [...sizes, ...sizes];
  }

  next(): number {
    return this.handed < this.schedule.length ? this.schedule[this.handed++] : this.best();
  }

  record(size: number, secondsTaken: number): void {
    if (!AUTO_BATCH_CANDIDATES.includes(size)) return;
    this.timings.set(size, Math.min(this.timings.get(size) ?? Infinity, secondsTaken / size));
  }

  best(): number {
    let best = 128;
    let bestTime = Infinity;
    for (const [size, t] of this.timings) if (t < bestTime) [best, bestTime] = [size, t];
    return best;
  }
}

/**
 * Runs one partition: open it with its source, bind its columns to the model's inputs (checked on the
 * first batch, before any inference), run batch after batch (the next batch is read and cast while the
 * model runs the current one), then write the predictions and, last, the execution record. Both are
 * written atomically and the record's presence is what marks the partition complete, so a crash at any
 * point leaves either nothing or everything.
 *
 * @example const record = await runPartition(ctx, { partition: { id: '1', key: '1.pt', bytes }, attempt: 1 });
 */
export async function runPartition(
  ctx: WorkerContext,
  task: PartitionTask,
  opened?: Promise<PartitionStream>,
  onBatch?: BatchListener,
): Promise<PartitionRecord> {
  const started: Started = { at: new Date(), t0: performance.now(), cpu0: process.cpuUsage() };
  const waitStart = performance.now();
  const stream = await (opened ?? openPartition(ctx, task.partition));
  const waitEnd = performance.now();
  const readWait = (waitEnd - waitStart) / 1000;
  try {
    return await runStream(ctx, task, stream, readWait, started, onBatch, [waitStart, waitEnd]);
  } finally {
    // Every prediction has been copied out of the batches: the partition's memory can go to the next.
    stream.release?.();
  }
}

/**
 * Told after every batch of a partition: items done so far (predicted or failed) of the partition's
 * items. Live progress displays use it; it must return quickly.
 */
export type BatchListener = (itemsDone: number, items: number) => void;

/** When an attempt started: wall clock, monotonic clock, CPU time. */
interface Started {
  readonly at: Date;
  readonly t0: number;
  readonly cpu0: NodeJS.CpuUsage;
}

async function runStream(
  ctx: WorkerContext,
  task: PartitionTask,
  stream: PartitionStream,
  readWait: number,
  { at: startedAt, t0, cpu0 }: Started,
  onBatch: BatchListener | undefined,
  waited: readonly [number, number],
): Promise<PartitionRecord> {
  const spans = {
    open: new SpanCollector(t0),
    load: new SpanCollector(t0),
    inference: new SpanCollector(t0),
    write: new SpanCollector(t0),
  };
  spans.open.add(waited[0], waited[1]);
  const { job } = ctx;
  const { partition } = task;
  const cold = ctx.partitionsDone === 0;
  const source = ctx.input.describe(partition.key);
  const items = stream.items;
  const sizer = job.batchSize === 'auto' && !ctx.autoBatch ? new BatchSizer(items) : undefined;
  const batchSize =
    job.batchSize === 'auto' ? (ctx.autoBatch?.chosen ?? AUTO_BATCH_CANDIDATES[0]) : job.batchSize;
  const outputs = new OutputCollector(items, source);
  const labels = job.label === undefined ? undefined : new LabelCollector(items);
  const ids = stream.hasIds ? new Array<string>(items).fill('') : undefined;
  checkCarried(stream.carries ?? [], ctx.model.outputs, source);
  const carried = (stream.carries ?? []).map((name) => ({
    name,
    values: new Array<CarriedValue>(items).fill(null),
  }));
  const errors = new Array<string | null>(items).fill(null);
  let failedItems = 0;
  let bindings: InputBinding[] | undefined;
  let labelIndex: number | undefined;
  let inference = 0;
  let numBatches = 0;
  let firstPrediction: number | undefined;
  // Items settled so far (run through the model, or failed while decoding), for progress.
  let settled = 0;

  const prepare = (batch: SourceBatch): { batch: SourceBatch; feeds?: Record<string, Tensor> } => {
    for (const f of batch.failed ?? []) {
      errors[f.index] = f.reason;
      if (ids && f.id !== undefined) ids[f.index] = f.id;
      failedItems++;
      settled++;
    }
    if (batch.rows.items === 0) return { batch };
    if (!bindings) {
      bindings = bindInputs(batch.rows, ctx.model.inputs, job.inputs, source);
      labelIndex =
        job.label === undefined ? undefined : resolveColumn(batch.rows, job.label, source, 'label');
      if (job.batchSize !== 'auto') checkBatchDimension(ctx.model.inputs, Math.min(batchSize, items), source);
    }
    if (ids && batch.ids) for (let i = 0; i < batch.ids.length; i++) ids[batch.indices[i]] = batch.ids[i];
    for (const c of carried) {
      const values = batch.carried?.[c.name] ?? [];
      for (let i = 0; i < values.length; i++) c.values[batch.indices[i]] = values[i];
    }
    if (labels && labelIndex !== undefined) labels.add(batch.rows.columns[labelIndex], batch.indices);
    return { batch, feeds: feedsFor(batch.rows, bindings) };
  };

  const batches = sizer ? rebatch(stream.batches(batchSize), () => sizer.next()) : stream.batches(batchSize);
  const iterator = batches[Symbol.asyncIterator]();
  const pull = async () => {
    const tp = performance.now();
    const r = await iterator.next();
    spans.load.add(tp, performance.now());
    return r.done ? undefined : prepare(r.value);
  };
  let current = await pull();
  while (current) {
    if (!current.feeds) {
      current = await pull();
      continue;
    }
    const tb = performance.now();
    const pending = ctx.model.run(current.feeds);
    // Read and cast the next batch while onnxruntime works on this one in the model's own thread.
    const upcoming = pull();
    const { indices } = current.batch;
    const result = await pending.catch((err: unknown) => {
      throw new CaiError(
        ErrorCodes.model,
        source,
        `inference failed on items ${indices[0]}-${indices[indices.length - 1]}: ${(err as Error).message}`,
        { cause: err },
      );
    });
    const took = seconds(tb);
    spans.inference.add(tb, performance.now());
    inference += took;
    sizer?.record(indices.length, took);
    numBatches++;
    firstPrediction ??= performance.now() / 1000;
    outputs.add(result, indices);
    // Predictions, labels, ids and carried values are copied out: the source may reuse the batch's memory.
    current.batch.release?.();
    if (job.nan !== 'keep') {
      for (const [row, name] of nonFiniteRows(result, indices.length)) {
        if (errors[indices[row]] !== null) continue;
        errors[indices[row]] =
          `the model's output "${name}" is not finite (NaN or infinity): the item's inputs likely hold NaN or infinite values; fix them, or set nan to "keep" to write such predictions`;
        failedItems++;
      }
    }
    settled += indices.length;
    onBatch?.(settled, items);
    current = await upcoming;
  }
  const read = stream.stats();
  if (sizer && sizer.timings.size > 0) {
    ctx.autoBatch = { chosen: sizer.best(), seconds_per_item: Object.fromEntries(sizer.timings) };
  }
  const usedBatchSize = ctx.autoBatch?.chosen ?? batchSize;

  const t3 = performance.now();
  const outputBefore = storeStats(ctx.output);
  const keys = outputKeys(partition.id, job.predictionsFormat);
  const table: PredictionTable = {
    partition: partition.id,
    index: Int32Array.from({ length: items }, (_, i) => i),
    columns: outputs.columnsFor(ctx.model.outputs.map((o) => o.name)),
    label: labels?.column(),
    ids,
    ...(carried.length ? { carried } : {}),
    errors: failedItems > 0 ? errors : undefined,
  };
  const encoded = encodePredictions(table, job.predictionsFormat);
  const predictionsBytes = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.byteLength;
  await ctx.output.put(keys.predictions, encoded);
  const write = seconds(t3);
  spans.write.add(t3, performance.now());
  const storage: Record<string, StoreStats> = {};
  const readTraffic = openTraffic.get(stream);
  if (readTraffic) storage.read = readTraffic;
  if (outputBefore) storage.write = diffStats(storeStats(ctx.output) as StoreStats, outputBefore);
  if (cold && ctx.modelTraffic) storage.model = ctx.modelTraffic;

  const total = seconds(t0);
  const cpu = process.cpuUsage(cpu0);
  const record: PartitionRecord = {
    status: 'ok',
    partition: partition.id,
    data_path: source,
    result_path: ctx.output.describe(keys.predictions),
    predictions_bytes: predictionsBytes,
    attempt: task.attempt,
    items,
    failed_items: failedItems,
    ...(read.sixteen_bit_images ? { sixteen_bit_images: read.sixteen_bit_images } : {}),
    ...(ctx.model.rewrites.length ? { model_rewrites: ctx.model.rewrites } : {}),
    bytes: read.bytes,
    batch_size: usedBatchSize,
    num_batches: numBatches,
    device: job.device,
    threads: job.threads,
    timings: { read: read.read, read_wait: readWait, decode: read.decode, inference, write, total },
    spans: {
      open: spans.open.spans(),
      load: spans.load.spans(),
      inference: spans.inference.spans(),
      write: spans.write.spans(),
    },
    'execution_time (seconds/batch)': numBatches ? inference / numBatches : 0,
    'total_cpu_time (seconds)': (cpu.user + cpu.system) / 1e6,
    'total_cpu_memory (MB)': process.resourceUsage().maxRSS / 1024,
    sample_persec: total > 0 ? items / total : 0,
    throughput_bps: total > 0 ? read.bytes / total : 0,
    model_load_s: cold ? ctx.modelLoadSeconds : 0,
    cold,
    // performance.now() counts from the process's start (timeOrigin), so one reading gives both.
    ...(cold && firstPrediction !== undefined
      ? {
          time_to_first_prediction_s: firstPrediction,
          worker_started_at: new Date(performance.timeOrigin).toISOString(),
          first_prediction_at: new Date(performance.timeOrigin + firstPrediction * 1000).toISOString(),
        }
      : {}),
    ...(job.batchSize === 'auto' && ctx.autoBatch ? { batch_size_auto: ctx.autoBatch } : {}),
    ...(Object.keys(storage).length ? { storage } : {}),
    worker: { pid: process.pid, host: ctx.host, ...slurmPlace() },
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
  };
  await ctx.output.put(keys.record, `${JSON.stringify(record, null, 2)}\n`);
  ctx.partitionsDone++;
  return record;
}
