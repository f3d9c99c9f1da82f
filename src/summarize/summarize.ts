import { budgetExceeded } from '../job/budget.js';
import type { MapResult } from './map-result.js';
import type { PredictionFormat } from '../formats/predictions/writers.js';
import type { PlannedPartition } from '../plan/plan.js';
import type { Store } from '../storage/store.js';
import type { StorageStats } from '../storage/s3-stats.js';
import type { PartitionFailure, PartitionRecord } from '../worker/record.js';
import { OUTPUT_KEYS, outputKeys } from '../storage/output-layout.js';
import { classificationMetrics, quantile, regressionMetrics, type Metrics } from './metrics.js';
import { mapBounded, READ_CONCURRENCY } from '../storage/bounded.js';
import { outputColumn, readPredictions } from './read-predictions.js';
import { readJsonObject } from '../storage/json.js';
import { combinedJson, readRecords } from './records.js';
import { skippedSummary, type SkippedSummary } from '../plan/skipped.js';

/** The figures of one invocation of a job (a resumed job has several runs). */
export interface RunStats {
  readonly run: number;
  readonly started_at: string;
  readonly engine: string;
  readonly batch_size: number | 'auto';
  /** With `batch_size` auto: the size the workers measured and chose (the most common, if they differ). */
  readonly batch_size_chosen?: number;
  readonly concurrency: number;
  readonly threads: number;
  /** Partitions this run processed (resumed ones are not counted again). */
  readonly partitions: number;
  readonly items: number;
  readonly bytes: number;
  readonly wall_seconds: number;
  readonly map_seconds: number;
  readonly items_per_second: number;
  readonly mean_partition_seconds: number;
  readonly p50_partition_seconds: number;
  readonly p95_partition_seconds: number;
  readonly retries: number;
  readonly failures: number;
  /** On Slurm: this run's partitions by the node that ran them (from the records' `worker.slurm`). */
  readonly nodes?: Readonly<Record<string, number>>;
}

/** `summary.json`: the whole job across its runs. */
export interface JobSummary {
  /** `cancelled`: the user stopped the run's work outside it (a `scancel` of its Slurm array); see `cancelled`. */
  readonly status: 'succeeded' | 'failed' | 'cancelled';
  /** Who cancelled what, when the status is `cancelled`. */
  readonly cancelled?: string;
  readonly input: string;
  readonly model: string;
  /** The optimization `cai optimize` recorded in the model (its metadata), when it carries one. */
  readonly model_optimization?: string;
  /**
   * What the workers changed in the model's graph when they loaded it (records' `model_rewrites`, each
   * line once), e.g. `sigmoid outputs computed as 1/(1+exp(-x)) (1 node: prob)`; absent when none.
   */
  readonly model_rewrites?: readonly string[];
  /**
   * Set when the partitions' records name different rewrites (an output resumed by a CAI whose
   * rewrites changed): how many partitions were computed each way, keyed by their rewrites joined by
   * `; ` (`none` for none). Their predictions differ in the last digits; `--overwrite` recomputes them alike.
   */
  readonly model_rewrites_mixed?: Readonly<Record<string, number>>;
  readonly output: string;
  readonly partitions: {
    readonly planned: number;
    readonly completed: number;
    readonly failed: number;
    /** Completed by an earlier run and skipped by this one. */
    readonly resumed: number;
    readonly not_started: number;
  };
  readonly items: number;
  readonly failed_items: number;
  /** Images with 16 bits per sample reduced to 8 (see `sixteen_bit_rule`); absent when none. */
  readonly sixteen_bit_images?: number;
  /** The rule they were reduced by: `pil` or `scale` (`preprocess.sixteenBit`). */
  readonly sixteen_bit_rule?: string;
  readonly bytes: number;
  /**
   * Sums over the completed partitions, seconds; `read_wait` is the part of reading workers stood
   * waiting for (see StageTimings).
   */
  readonly stage_seconds: {
    read: number;
    read_wait: number;
    decode: number;
    inference: number;
    write: number;
    total: number;
  };
  readonly peak_rss_mb: number;
  /** Object-storage traffic of the workers, summed over completed partitions by stage (remote stores only). */
  readonly storage?: Readonly<Record<string, StorageStats>>;
  readonly cold_start: {
    workers: number;
    mean_model_load_s: number;
    mean_time_to_first_prediction_s: number;
  };
  readonly failures: readonly PartitionFailure[];
  /** Input objects planning left out, and why (all of them in `skipped.json`). */
  readonly skipped?: SkippedSummary;
  readonly metrics?: Metrics;
  /** This run's figures, also the last entry of `runs`. */
  readonly run: RunStats;
  readonly runs: readonly RunStats[];
}

function storageTotals(records: readonly PartitionRecord[]): Record<string, StorageStats> | undefined {
  const totals: Record<string, { requests: number; retries: number; bytes: number; seconds: number }> = {};
  for (const r of records) {
    for (const [stage, s] of Object.entries(r.storage ?? {})) {
      const t = (totals[stage] ??= { requests: 0, retries: 0, bytes: 0, seconds: 0 });
      t.requests += s.requests;
      t.retries += s.retries ?? 0;
      t.bytes += s.bytes;
      t.seconds += s.seconds;
    }
  }
  return Object.keys(totals).length ? totals : undefined;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Columns of `result_stats.csv`, one row per run. */
export const RESULT_STATS_COLUMNS = [
  'run',
  'started_at',
  'engine',
  'batch_size',
  'concurrency',
  'threads',
  'partitions',
  'items',
  'bytes',
  'data (GB)',
  'wall_seconds',
  'map_seconds',
  'items_per_second',
  'mean_partition_seconds',
  'p50_partition_seconds',
  'p95_partition_seconds',
  'retries',
  'failures',
] as const;

/** `result_stats.csv` text for the runs. @example resultStatsCsv(summary.runs) */
export function resultStatsCsv(runs: readonly RunStats[]): string {
  const rows = runs.map((r) =>
    RESULT_STATS_COLUMNS.map((c) => {
      if (c === 'data (GB)') return (r.bytes / 1e9).toFixed(6);
      const v = r[c];
      return typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(6) : String(v);
    }).join(','),
  );
  return `${RESULT_STATS_COLUMNS.map((c) => (c.includes(',') ? `"${c}"` : c)).join(',')}\n${rows.join('\n')}\n`;
}

async function computeMetrics(
  output: Store,
  records: readonly PartitionRecord[],
  format: PredictionFormat,
): Promise<Metrics | undefined> {
  const preds: number[] = [];
  const labels: number[] = [];
  let width = 0;
  let outputName: string | undefined;
  // Read a window of prediction files at a time (concurrently), folded in record order.
  const window = READ_CONCURRENCY * 4;
  for (let start = 0; start < records.length; start += window) {
    const slice = records.slice(start, start + window);
    const files = await mapBounded(slice, READ_CONCURRENCY, async (r) =>
      readPredictions(await output.get(outputKeys(r.partition, format).predictions), format),
    );
    for (const rows of files) {
      for (const row of rows) {
        if (!('label' in row)) return undefined;
        outputName ??= outputColumn(row);
        if (!outputName) return undefined;
        const value = row[outputName];
        const label = row.label;
        const values = Array.isArray(value) ? (value as number[]) : [value as number];
        width ||= values.length;
        for (const v of values) preds.push(v ?? NaN);
        labels.push(Array.isArray(label) ? Number(label[0]) : label === null ? NaN : Number(label));
      }
    }
  }
  if (!outputName || labels.length === 0) return undefined;
  return width === 1 ? regressionMetrics(preds, labels) : classificationMetrics(preds, width, labels);
}

/** What Summarize needs to know about this invocation. */
export interface SummarizeInput {
  readonly output: Store;
  readonly plan: readonly PlannedPartition[];
  readonly format: PredictionFormat;
  /**
   * This run's outcome, or how to make it from every record of the job (read once by Summarize): the
   * AWS engine picks its run's records out of them instead of reading them twice.
   */
  readonly map: MapResult | ((records: readonly PartitionRecord[]) => MapResult | Promise<MapResult>);
  /**
   * Records the engine was told of without reading them (the AWS Map's exported results), by partition:
   * each stands for its object when the listing shows that object with the record's size.
   */
  readonly reportedRecords?: ReadonlyMap<string, PartitionRecord>;
  readonly resumed: number;
  readonly startedAt: Date;
  /** The run's wall time, seconds; a function is asked as late as possible, so Summarize counts too. */
  readonly wallSeconds: number | (() => number);
  readonly mapSeconds: number;
  readonly job: {
    input: string;
    model: string;
    output: string;
    engine: string;
    batchSize: number | 'auto';
    concurrency: number;
    threads: number;
    toleratedFailurePercentage: number;
    /** `preprocess.sixteenBit`, named beside the count of 16-bit images. */
    sixteenBit?: string;
    /** The optimization the model's metadata records (see `describeOptimization`). */
    optimization?: string;
  };
}

function chosenBatch(records: readonly PartitionRecord[]): { batch_size_chosen?: number } {
  const counts = new Map<number, number>();
  for (const r of records) counts.set(r.batch_size, (counts.get(r.batch_size) ?? 0) + 1);
  const best = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
  return best ? { batch_size_chosen: best[0] } : {};
}

/**
 * Summarize, for every engine: combines every record of the job (this run's and earlier runs'; `results/`
 * listed once and the records read concurrently), computes the run's figures and, with a label, the
 * metrics from the predictions as written, then writes
 * `combined_data.json`, `result_stats.csv` and `summary.json`.
 *
 * @example const summary = await summarize({ output, plan, format: 'parquet', map, ... });
 */
export async function summarize(input: SummarizeInput): Promise<JobSummary> {
  const { output, plan } = input;
  // What the map holds (the local engine's records of this run) is used as it is, not read back.
  const held =
    typeof input.map === 'function'
      ? undefined
      : new Map(input.map.records.map((r) => [r.partition, r] as const));
  const records = await readRecords(output, plan, input.format, undefined, {
    held,
    reported: input.reportedRecords,
  });
  const map = typeof input.map === 'function' ? await input.map(records) : input.map;
  const metrics = await computeMetrics(output, records, input.format);
  const runRecords = map.records;
  const partitionSeconds = runRecords.map((r) => r.timings.total);
  const items = runRecords.reduce((a, r) => a + r.items, 0);
  const previous = await output.head(OUTPUT_KEYS.summary).then(async (h) =>
    h
      ? readJsonObject<Partial<JobSummary>>(output, OUTPUT_KEYS.summary, {
          remedy: 'delete it (losing the figures of earlier runs) and summarize again',
        })
      : undefined,
  );
  const runs = [...(previous?.runs ?? [])];
  const run: RunStats = {
    run: runs.length + 1,
    started_at: input.startedAt.toISOString(),
    engine: input.job.engine,
    batch_size: input.job.batchSize,
    ...(input.job.batchSize === 'auto' ? chosenBatch(runRecords) : {}),
    // On Slurm the workers are the array tasks that wrote this run's records (one process each).
    concurrency: slurmTasks(runRecords) ?? input.job.concurrency,
    threads: input.job.threads,
    partitions: runRecords.length,
    items,
    bytes: runRecords.reduce((a, r) => a + r.bytes, 0),
    wall_seconds: typeof input.wallSeconds === 'function' ? input.wallSeconds() : input.wallSeconds,
    map_seconds: input.mapSeconds,
    items_per_second: input.mapSeconds > 0 ? items / input.mapSeconds : 0,
    mean_partition_seconds: mean(partitionSeconds),
    p50_partition_seconds: partitionSeconds.length ? quantile(partitionSeconds, 0.5) : 0,
    p95_partition_seconds: partitionSeconds.length ? quantile(partitionSeconds, 0.95) : 0,
    retries: map.retries,
    failures: map.failures.length,
    ...slurmNodes(runRecords),
  };
  runs.push(run);
  const done = new Set(records.map((r) => r.partition));
  const failures = map.failures.filter((f) => !done.has(f.partition));
  const cold = records.filter((r) => r.cold);
  const stage = (k: 'read' | 'read_wait' | 'decode' | 'inference' | 'write' | 'total') =>
    records.reduce((a, r) => a + (r.timings[k] ?? 0), 0);
  const summary: JobSummary = {
    status: map.cancelled
      ? 'cancelled'
      : !budgetExceeded(plan.length - records.length, plan.length, input.job.toleratedFailurePercentage) &&
          map.skipped === 0
        ? 'succeeded'
        : 'failed',
    ...(map.cancelled ? { cancelled: map.cancelled } : {}),
    input: input.job.input,
    model: input.job.model,
    ...(input.job.optimization ? { model_optimization: input.job.optimization } : {}),
    ...modelRewrites(records),
    output: input.job.output,
    partitions: {
      planned: plan.length,
      completed: records.length,
      failed: failures.length,
      resumed: input.resumed,
      not_started: plan.length - records.length - failures.length,
    },
    items: records.reduce((a, r) => a + r.items, 0),
    failed_items: records.reduce((a, r) => a + r.failed_items, 0),
    ...sixteenBit(records, input.job.sixteenBit),
    bytes: records.reduce((a, r) => a + r.bytes, 0),
    stage_seconds: {
      read: stage('read'),
      read_wait: stage('read_wait'),
      decode: stage('decode'),
      inference: stage('inference'),
      write: stage('write'),
      total: stage('total'),
    },
    peak_rss_mb: Math.max(0, ...records.map((r) => r['total_cpu_memory (MB)'])),
    storage: storageTotals(records),
    cold_start: {
      workers: cold.length,
      mean_model_load_s: mean(cold.map((r) => r.model_load_s)),
      mean_time_to_first_prediction_s: mean(cold.map((r) => r.time_to_first_prediction_s ?? 0)),
    },
    failures,
    skipped: await skippedSummary(output),
    metrics,
    run,
    runs,
  };
  await output.put(OUTPUT_KEYS.combined, combinedJson(records));
  await output.put(OUTPUT_KEYS.resultStats, resultStatsCsv(runs));
  await output.put(OUTPUT_KEYS.summary, `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

/**
 * The graph rewrites the workers named in their records, each once, in the order first seen; with the
 * count of partitions per set of rewrites when the records do not all name the same ones.
 */
function modelRewrites(records: readonly PartitionRecord[]): {
  model_rewrites?: string[];
  model_rewrites_mixed?: Record<string, number>;
} {
  const lines = [...new Set(records.flatMap((r) => r.model_rewrites ?? []))];
  const ways: Record<string, number> = {};
  for (const r of records) {
    const key = r.model_rewrites?.length ? r.model_rewrites.join('; ') : 'none';
    ways[key] = (ways[key] ?? 0) + 1;
  }
  return {
    ...(lines.length ? { model_rewrites: lines } : {}),
    ...(Object.keys(ways).length > 1 ? { model_rewrites_mixed: ways } : {}),
  };
}

/** How many Slurm array tasks wrote these records, or undefined when none ran on Slurm. */
function slurmTasks(records: readonly PartitionRecord[]): number | undefined {
  const tasks = new Set(
    records.flatMap((r) =>
      r.worker?.slurm ? [`${r.worker.slurm.job_id}_${r.worker.slurm.array_task_id}`] : [],
    ),
  );
  return tasks.size || undefined;
}

/** This run's partitions by Slurm node, when its records ran on Slurm. */
function slurmNodes(records: readonly PartitionRecord[]): { nodes?: Record<string, number> } {
  const nodes: Record<string, number> = {};
  for (const r of records)
    if (r.worker?.slurm) nodes[r.worker.slurm.node] = (nodes[r.worker.slurm.node] ?? 0) + 1;
  return Object.keys(nodes).length ? { nodes } : {};
}

/** The 16-bit images of the completed partitions and the rule that reduced them; nothing when none. */
function sixteenBit(
  records: readonly PartitionRecord[],
  rule: string | undefined,
): { sixteen_bit_images?: number; sixteen_bit_rule?: string } {
  const n = records.reduce((a, r) => a + (r.sixteen_bit_images ?? 0), 0);
  return n ? { sixteen_bit_images: n, sixteen_bit_rule: rule ?? 'pil' } : {};
}
