import { performance } from 'node:perf_hooks';
import { CaiError, ErrorCodes } from '../errors.js';
import { sliceColumns, type ColumnSet } from '../formats/columns.js';
import { PREDICTION_EXTENSIONS } from '../formats/predictions/writers.js';
import { encodePredictions } from '../formats/predictions/writers.js';
import { decodeTensorFile } from '../formats/registry.js';
import { bindInputs, feedsFor, resolveColumn } from '../model/binding.js';
import type { PlannedPartition } from '../plan/plan.js';
import type { Tensor } from '../tensor/tensor.js';
import type { WorkerContext } from './context.js';
import { labelColumn, OutputCollector } from './outputs.js';
import type { PartitionRecord } from './record.js';

/** One attempt at one partition, as engines hand it to a worker. */
export interface PartitionTask {
  readonly partition: PlannedPartition;
  /** 1 for the first try. */
  readonly attempt: number;
}

/** Where a partition's outputs go, relative to the job's output root. */
export function outputKeys(
  id: string,
  format: keyof typeof PREDICTION_EXTENSIONS,
): { predictions: string; record: string } {
  return { predictions: `predictions/${id}.${PREDICTION_EXTENSIONS[format]}`, record: `results/${id}.json` };
}

const seconds = (fromMs: number) => (performance.now() - fromMs) / 1000;

function checkBatchDimension(ctx: WorkerContext, batchSize: number, source: string): void {
  for (const input of ctx.model.inputs) {
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
 * Runs one partition: read, decode, bind, batched inference (the next batch is prepared while the
 * model runs the current one), then writes the predictions and, last, the execution record. Both are
 * written atomically, and the record's presence is what marks the partition complete, so a crash at any
 * point leaves either nothing or everything.
 *
 * @example const record = await runPartition(ctx, { partition: { id: '1', key: '1.pt', bytes }, attempt: 1 });
 */
export async function runPartition(ctx: WorkerContext, task: PartitionTask): Promise<PartitionRecord> {
  const { job } = ctx;
  const { partition } = task;
  const startedAt = new Date();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const cold = ctx.partitionsDone === 0;
  const source = ctx.input.describe(partition.key);

  const bytes = await ctx.input.get(partition.key);
  const read = seconds(t0);

  const t1 = performance.now();
  const set: ColumnSet = decodeTensorFile(bytes, source);
  const bindings = bindInputs(set, ctx.model.inputs, job.inputs, source);
  const labelIndex = job.label === undefined ? undefined : resolveColumn(set, job.label, source, 'label');
  const batchSize = job.batchSize === 'auto' ? 128 : job.batchSize;
  if (set.items > 0) checkBatchDimension(ctx, Math.min(batchSize, set.items), source);
  const decode = seconds(t1);

  const collector = new OutputCollector(set.items, source);
  let inference = 0;
  let numBatches = 0;
  let firstPrediction: number | undefined;
  const feeds = (start: number): Record<string, Tensor> =>
    feedsFor(sliceColumns(set, start, Math.min(start + batchSize, set.items)), bindings);
  let next = set.items > 0 ? feeds(0) : undefined;
  for (let start = 0; start < set.items; start += batchSize) {
    const rows = Math.min(batchSize, set.items - start);
    const tb = performance.now();
    const pending = ctx.model.run(next as Record<string, Tensor>);
    // Cast the next batch while onnxruntime works on this one off the main thread.
    next = start + batchSize < set.items ? feeds(start + batchSize) : undefined;
    const outputs = await pending.catch((err: unknown) => {
      throw new CaiError(
        ErrorCodes.model,
        source,
        `inference failed on items ${start}-${start + rows - 1}: ${(err as Error).message}`,
        { cause: err },
      );
    });
    inference += seconds(tb);
    numBatches++;
    firstPrediction ??= performance.now() / 1000;
    collector.add(outputs, start, rows);
  }

  const t3 = performance.now();
  const keys = outputKeys(partition.id, job.predictionsFormat);
  const table = {
    partition: partition.id,
    index: Int32Array.from({ length: set.items }, (_, i) => i),
    columns: collector.columnsFor(ctx.model.outputs.map((o) => o.name)),
    label: labelIndex === undefined ? undefined : labelColumn(set.columns[labelIndex]),
  };
  await ctx.output.put(keys.predictions, encodePredictions(table, job.predictionsFormat));
  const write = seconds(t3);

  const total = seconds(t0);
  const cpu = process.cpuUsage(cpu0);
  const record: PartitionRecord = {
    status: 'ok',
    partition: partition.id,
    data_path: source,
    result_path: ctx.output.describe(keys.predictions),
    attempt: task.attempt,
    items: set.items,
    failed_items: 0,
    bytes: bytes.byteLength,
    batch_size: batchSize,
    num_batches: numBatches,
    device: job.device,
    threads: job.threads,
    timings: { read, decode, inference, write, total },
    'execution_time (seconds/batch)': numBatches ? inference / numBatches : 0,
    'total_cpu_time (seconds)': (cpu.user + cpu.system) / 1e6,
    'total_cpu_memory (MB)': process.resourceUsage().maxRSS / 1024,
    sample_persec: total > 0 ? set.items / total : 0,
    throughput_bps: total > 0 ? bytes.byteLength / total : 0,
    model_load_s: cold ? ctx.modelLoadSeconds : 0,
    cold,
    ...(cold && firstPrediction !== undefined ? { time_to_first_prediction_s: firstPrediction } : {}),
    worker: { pid: process.pid, host: ctx.host },
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
  };
  await ctx.output.put(keys.record, `${JSON.stringify(record, null, 2)}\n`);
  ctx.partitionsDone++;
  return record;
}
