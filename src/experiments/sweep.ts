import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../errors.js';
import { runJob, type JobRunner } from '../run/run.js';
import type { JobSpec } from '../job/spec.js';
import { planPartitions } from '../plan/plan.js';
import { awsJobRunner } from './aws-runner.js';
import { resultStatsCsv, sweepRowFromRecords, type SweepRow } from './sweep-rows.js';
import { joinUri, openStore } from '../storage/open.js';
import { OUTPUT_KEYS } from '../storage/output-layout.js';
import {
  planSweep,
  sweepSchedule,
  type DataSize,
  type PlannedConfig,
  type SweepInput,
} from './sweep-plan.js';
import type { PartitionRecord } from '../worker/record.js';
import { readJson } from '../storage/json.js';

export type { JobRunner };

/**
 * Defaults of `runSweep`: three repeats as the seeds ran, no warm-up run.
 * @example SWEEP_DEFAULTS.runs // 3
 */
export const SWEEP_DEFAULTS = Object.freeze({ runs: 3, warmup: false });

/**
 * What a sweep reports while it runs.
 * @example onProgress: (e) => { if (e.type === 'row') console.log(e.row.itemsPerSecond); }
 */
export type SweepEvent =
  | {
      readonly type: 'plan';
      readonly configs: readonly PlannedConfig[];
      readonly runs: number;
      readonly total: number;
      readonly warnings: readonly string[];
    }
  | {
      readonly type: 'start';
      readonly planned: PlannedConfig;
      readonly run: number;
      readonly index: number;
      readonly total: number;
      readonly dir: string;
    }
  | {
      readonly type: 'row';
      readonly planned: PlannedConfig;
      readonly row: SweepRow;
      readonly index: number;
      readonly total: number;
      readonly dir: string;
    }
  | { readonly type: 'failed'; readonly failure: FailedRun; readonly index: number; readonly total: number }
  | { readonly type: 'warmup'; readonly planned: PlannedConfig; readonly dir: string };

/**
 * A run whose job failed (its error budget was spent): left out of `sweep.json`, whose means would
 * otherwise mix partial runs with whole ones.
 * @example result.failed.map((f) => `${f.label} run ${f.run}: ${f.message}`)
 */
export interface FailedRun {
  readonly label: string;
  readonly run: number;
  readonly dir: string;
  readonly message: string;
}

/**
 * Options of `runSweep`. The job gives the model, the input mapping and every other job field; the sweep
 * varies input, partition count and batch size around it.
 * @example await runSweep({ job, output: 'bench-out', dataSizes: [{ partitions: 1 }, { gb: 1 }], batchSizes: [32, 512] });
 */
export interface SweepOptions {
  readonly job: JobSpec;
  /** Local folder for `bench.json`, `sweep.json` and `result_stats.csv` (and the report, `runSweepWithReport`). */
  readonly output: string;
  /** Folders or prefixes holding the same data at different partition sizes; default `[job.input]`. */
  readonly inputs?: readonly string[];
  /** Default: all partitions (after the job's `fileLimit`). */
  readonly dataSizes?: readonly DataSize[];
  /** Default: the job's batch size. */
  readonly batchSizes?: readonly number[];
  readonly runs?: number;
  /** Where the runs' job outputs go, e.g. an s3:// prefix for the aws engine; default `<output>/runs`. */
  readonly runsOutput?: string;
  /** Run the first configuration once, unrecorded, before the timed runs (page cache, first model load). */
  readonly warmup?: boolean;
  /** Runs each job; default chosen by `runnerFor(job.engine)`. */
  readonly runner?: JobRunner;
  readonly onProgress?: (event: SweepEvent) => void;
  /** Passed to the runner (tests make retries fast). */
  readonly retryBaseMs?: number;
}

/**
 * What `runSweep` did and wrote.
 * @example const { rows, files } = await runSweep(options); console.log(files.resultStats);
 */
export interface SweepResult {
  readonly rows: readonly SweepRow[];
  readonly configs: readonly PlannedConfig[];
  readonly failed: readonly FailedRun[];
  readonly warnings: readonly string[];
  readonly files: {
    readonly bench: string;
    readonly sweep: string;
    readonly resultStats: string;
  };
}

/**
 * The job runner of an engine: `runJob` for local, `awsJobRunner` on the default stack (`Cai`, the SDK's
 * region and credentials) for aws; pass `runner` to `runSweep` for another stack.
 * @example const summary = await runnerFor('local')(spec, { overwrite: true });
 */
export function runnerFor(engine: string): JobRunner {
  if (engine === 'local') return runJob;
  if (engine === 'aws') return awsJobRunner({ session: { stackName: 'Cai' } });
  throw new CaiError(ErrorCodes.option, '--engine', `unknown engine "${engine}"; use local or aws`);
}

async function planInput(job: JobSpec, input: string): Promise<SweepInput> {
  const store = await openStore(input, { s3Endpoint: job.s3Endpoint });
  const plan = await planPartitions(store, { job: { ...job, input } });
  return { input, partitionBytes: plan.map((p) => p.bytes) };
}

/**
 * This run's records from its `combined_data.json`. A re-used run folder may hold records of an earlier
 * sweep for partitions that failed or were skipped this time; those started before this run did.
 */
async function runRecords(job: JobSpec, dir: string, startedMs: number): Promise<PartitionRecord[]> {
  const store = await openStore(dir, { s3Endpoint: job.s3Endpoint });
  const all = await readJson<unknown>(store, OUTPUT_KEYS.combined);
  if (!Array.isArray(all))
    throw new CaiError(
      ErrorCodes.corrupt,
      store.describe(OUTPUT_KEYS.combined),
      'should hold an array of partition records',
    );
  // A second of slack for clocks of other machines (Lambda) that run slightly behind this one.
  return (all as PartitionRecord[]).filter(
    (r) => r.status === 'ok' && Date.parse(r.started_at) >= startedMs - 1000,
  );
}

/**
 * Checks a sweep's options (runs, batch sizes, a local output folder) without running anything, so that
 * work done before the sweep (re-partitioning for `--partition-sizes`) is not wasted on a sweep that
 * would be refused. `runSweep` checks the same.
 *
 * @example checkSweepOptions({ job, output: 's3://b/x', dataSizes: [{ all: true }] }) // throws E_OPTION
 */
export function checkSweepOptions(o: SweepOptions): void {
  const runs = o.runs ?? SWEEP_DEFAULTS.runs;
  const batchSizes = o.batchSizes ?? (typeof o.job.batchSize === 'number' ? [o.job.batchSize] : []);
  validate(o, batchSizes, runs);
}

function validate(o: SweepOptions, batchSizes: readonly number[], runs: number): void {
  if (!Number.isInteger(runs) || runs < 1)
    throw new CaiError(ErrorCodes.option, '--runs', `must be a positive integer, got ${runs}`);
  if (batchSizes.length === 0 || batchSizes.some((b) => !Number.isInteger(b) || b < 1))
    throw new CaiError(
      ErrorCodes.option,
      '--batch-sizes',
      `must be positive integers, e.g. 32,64,128,256,512 (a sweep measures batch sizes itself, so "auto" is not one), got ${JSON.stringify(o.batchSizes ?? o.job.batchSize)}`,
    );
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(o.output) && !o.output.startsWith('file://'))
    throw new CaiError(
      ErrorCodes.option,
      '--output',
      'the sweep writes its report into a local folder; send the runs elsewhere with --runs-output',
    );
}

/**
 * The local folder a sweep writes into, from its `output` (a path or a file:// URL).
 * @example sweepFolder('file:///tmp/bench-out') // '/tmp/bench-out'
 */
export function sweepFolder(output: string): string {
  return output.startsWith('file://') ? new URL(output).pathname : output;
}

/**
 * Runs a sweep: every configuration (input x data size x batch size) `runs` times, interleaved (see
 * `sweepSchedule`), each run a whole job (`overwrite`) into `<runsOutput>/<label>-run<k>/`. Each run's
 * records become a `SweepRow`; `sweep.json` is rewritten after every run, so an interrupted sweep can still
 * be reported with `cai report`. At the end it writes `result_stats.csv` (`runSweepWithReport` in
 * src/report then draws the five figures and `report.html`). A run whose job fails is left out and
 * listed in `failed`; an error that is not a job failure (bad model, missing input) stops the sweep.
 * @example
 * const job = await loadJob(undefined, { input: 'parts', model: 'm.onnx', output: 'bench-out' });
 * const { rows } = await runSweep({ job, output: 'bench-out', dataSizes: [{ partitions: 2 }, { all: true }], batchSizes: [32, 512], runs: 3 });
 */
export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const job = o.job;
  const runs = o.runs ?? SWEEP_DEFAULTS.runs;
  const batchSizes = o.batchSizes ?? (typeof job.batchSize === 'number' ? [job.batchSize] : []);
  validate(o, batchSizes, runs);
  const runner = o.runner ?? runnerFor(job.engine);
  const out = sweepFolder(o.output);
  const runsOutput = o.runsOutput ?? path.join(out, 'runs');
  const emit = o.onProgress ?? (() => undefined);
  const inputs = await Promise.all((o.inputs ?? [job.input]).map((input) => planInput(job, input)));
  const { configs, warnings } = planSweep(inputs, o.dataSizes ?? [{ all: true }], batchSizes, job.engine);
  const schedule = sweepSchedule(configs, runs);
  await mkdir(out, { recursive: true });
  const files = {
    bench: path.join(out, 'bench.json'),
    sweep: path.join(out, 'sweep.json'),
    resultStats: path.join(out, 'result_stats.csv'),
  };
  const bench = {
    created_at: new Date().toISOString(),
    host: {
      cpus: os.availableParallelism(),
      platform: `${os.platform()} ${os.arch()}`,
      node: process.version,
    },
    job,
    inputs: inputs.map((i) => ({
      input: i.input,
      partitions: i.partitionBytes.length,
      bytes: i.partitionBytes.reduce((s, b) => s + b, 0),
    })),
    data_sizes: o.dataSizes ?? [{ all: true }],
    batch_sizes: batchSizes,
    runs,
    runs_output: runsOutput,
    schedule: schedule.map(([c, run]) => `${c.label}-run${run}`),
  };
  // A sweep.json left by an earlier sweep in this folder must not pass for this one's, even if all runs fail.
  await rm(files.sweep, { force: true });
  await writeFile(files.bench, `${JSON.stringify(bench, null, 2)}\n`);
  emit({ type: 'plan', configs, runs, total: schedule.length, warnings: [...warnings] });

  const runOne = async (planned: PlannedConfig, dir: string) => {
    const spec: JobSpec = {
      ...job,
      input: planned.input,
      output: dir,
      batchSize: planned.config.batchSize,
      fileLimit: planned.config.partitions,
    };
    const startedMs = Date.now();
    const summary = await runner(spec, { overwrite: true, retryBaseMs: o.retryBaseMs });
    return { summary, startedMs };
  };

  if ((o.warmup ?? SWEEP_DEFAULTS.warmup) && configs.length > 0) {
    const dir = joinUri(runsOutput, 'warmup');
    emit({ type: 'warmup', planned: configs[0], dir });
    await runOne(configs[0], dir);
  }

  const rows: SweepRow[] = [];
  const failed: FailedRun[] = [];
  for (const [index, [planned, run]] of schedule.entries()) {
    const dir = joinUri(runsOutput, `${planned.label}-run${run}`);
    emit({ type: 'start', planned, run, index, total: schedule.length, dir });
    const { summary, startedMs } = await runOne(planned, dir);
    if (summary.status !== 'succeeded') {
      const reasons = summary.failures.map((f) => `${f.partition}: ${f.error.message}`);
      const failure = {
        label: planned.label,
        run,
        dir,
        message: `job failed (${reasons.slice(0, 3).join('; ') || 'error budget spent'})`,
      };
      failed.push(failure);
      emit({ type: 'failed', failure, index, total: schedule.length });
      continue;
    }
    if (summary.run.failures > 0)
      warnings.push(
        `${planned.label} run ${run}: ${summary.run.failures} partition(s) failed within the error budget; its row covers the rest`,
      );
    const records = await runRecords(job, dir, startedMs);
    const row = sweepRowFromRecords(planned.config, run, records, {
      wallSeconds: summary.run.wall_seconds,
      mapSeconds: summary.run.map_seconds,
    });
    rows.push(row);
    await writeFile(files.sweep, JSON.stringify(rows));
    emit({ type: 'row', planned, row, index, total: schedule.length, dir });
  }
  if (rows.length === 0)
    throw new CaiError(
      ErrorCodes.budget,
      out,
      `every run of the sweep failed (${failed[0]?.message ?? 'nothing ran'}); see the runs' summary.json under ${runsOutput}`,
    );
  await writeFile(files.sweep, JSON.stringify(rows));
  await writeFile(files.resultStats, resultStatsCsv(rows));
  return { rows, configs, failed, warnings, files };
}

/**
 * The batch sizes of one (partition size, data size, engine) in a sweep, with mean figures over runs.
 * @example fastestBatchSizes(rows)[0].fastest // 256
 */
export interface BatchComparison {
  readonly partitionMB: number;
  readonly dataGB: number;
  readonly partitions: number;
  readonly engine: string;
  readonly batches: readonly {
    readonly batchSize: number;
    readonly runs: number;
    readonly itemsPerSecond: number;
    readonly mapSeconds: number;
    /** Model inference milliseconds per item (seed 002's normalization). */
    readonly msPerItem: number;
  }[];
  /** The batch size with the most items per second of map wall clock. */
  readonly fastest: number;
  /** The batch size with the least model time per item, which can differ (seed 002). */
  readonly lowestMsPerItem: number;
}

/**
 * For each data size (and partition size), the batch sizes compared on their mean over runs, and the
 * fastest one: what a user runs a batch-size sweep to learn.
 * @example for (const c of fastestBatchSizes(rows)) console.log(c.dataGB, c.fastest);
 */
export function fastestBatchSizes(rows: readonly SweepRow[]): BatchComparison[] {
  const groups = new Map<string, SweepRow[]>();
  for (const r of rows) {
    const k = `${r.config.partitionMB}|${r.config.dataGB}|${r.config.engine}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const out: BatchComparison[] = [];
  for (const g of groups.values()) {
    const sizes = [...new Set(g.map((r) => r.config.batchSize))].sort((a, b) => a - b);
    const batches = sizes.map((batchSize) => {
      const runs = g.filter((r) => r.config.batchSize === batchSize);
      const items = runs.reduce((s, r) => s + r.items, 0);
      const inference = runs.reduce(
        (s, r) => s + r.records.reduce((t, rec) => t + rec.timings.inference, 0),
        0,
      );
      return {
        batchSize,
        runs: runs.length,
        itemsPerSecond: avg(runs.map((r) => r.itemsPerSecond)),
        mapSeconds: avg(runs.map((r) => r.mapSeconds)),
        msPerItem: items > 0 ? (inference / items) * 1000 : NaN,
      };
    });
    const best = (f: (b: (typeof batches)[number]) => number) =>
      batches.reduce((a, b) => (f(b) > f(a) ? b : a)).batchSize;
    const c = g[0].config;
    out.push({
      partitionMB: c.partitionMB,
      dataGB: c.dataGB,
      partitions: c.partitions,
      engine: c.engine,
      batches,
      fastest: best((b) => b.itemsPerSecond),
      lowestMsPerItem: best((b) => -b.msPerItem),
    });
  }
  return out.sort(
    (a, b) => a.partitionMB - b.partitionMB || a.dataGB - b.dataGB || a.engine.localeCompare(b.engine),
  );
}
