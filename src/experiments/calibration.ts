import { CaiError, ErrorCodes } from '../errors.js';
import type { PartitionRecord } from '../worker/record.js';

const MiB = 2 ** 20;

/**
 * What a short local run says about the job: compute seconds per item with some threads, bytes per item,
 * model load time, how much partitions vary, and memory.
 * @example const cal = calibrationFromRecords(JSON.parse(readFileSync('out/combined_data.json', 'utf8')));
 */
export interface Calibration {
  /** Wall seconds per item spent on everything but reading (decode, inference, write), one worker. */
  readonly secondsPerItem: number;
  /** Threads the worker ran the model with (cores it had). */
  readonly threads: number;
  readonly bytesPerItem: number;
  /** Seconds to load the model and create the session (paid once per cold Lambda). */
  readonly modelLoadS: number;
  /** Coefficient of variation of seconds per item across partitions: drives the straggler allowance. */
  readonly partitionCv: number;
  /** Peak resident set of a worker, MB, and the mean partition size it ran, MB. */
  readonly peakRssMB: number;
  readonly partitionMB: number;
  /** Where these numbers came from, and what to be careful about. */
  readonly source: string;
  readonly warnings: readonly string[];
}

/**
 * A calibration from records of a local run (`combined_data.json`). Read time is left out: on Lambda the
 * partition comes from S3 at `s3MBps` instead.
 * @example calibrationFromRecords(records, 'out/combined_data.json').secondsPerItem
 */
export function calibrationFromRecords(records: readonly PartitionRecord[], source = 'records'): Calibration {
  const ok = records.filter((r) => r.items > 0);
  if (ok.length === 0)
    throw new CaiError(
      ErrorCodes.option,
      source,
      'no records with items to calibrate from; run `cai run` on a few partitions first',
    );
  const compute = ok.map((r) => Math.max(r.timings.total - r.timings.read, r.timings.inference));
  const items = ok.reduce((s, r) => s + r.items, 0);
  const perItem = ok.map((r, i) => compute[i] / r.items);
  const m = perItem.reduce((s, v) => s + v, 0) / perItem.length;
  const sd = Math.sqrt(perItem.reduce((s, v) => s + (v - m) ** 2, 0) / Math.max(1, perItem.length - 1));
  const cold = ok.filter((r) => r.cold && r.model_load_s > 0);
  const warnings: string[] = [];
  const pids = new Set(ok.map((r) => `${r.worker.host}:${r.worker.pid}`));
  if (pids.size > 1 && overlaps(ok))
    warnings.push(
      `${pids.size} workers ran at once: their partition times include contention for this machine's cores; calibrate with one worker for a cleaner number.`,
    );
  if (cold.length === 0)
    warnings.push('no cold partition with a model load time: cold starts assume 0 s of model load.');
  if (ok.length < 3)
    warnings.push(`only ${ok.length} partitions: the straggler allowance assumes 10% variation.`);
  const threadCounts = ok.map((r) => r.threads);
  return {
    secondsPerItem: compute.reduce((s, v) => s + v, 0) / items,
    threads: Math.max(1, mode(threadCounts)),
    bytesPerItem: ok.reduce((s, r) => s + r.bytes, 0) / items,
    modelLoadS: cold.length ? cold.reduce((s, r) => s + r.model_load_s, 0) / cold.length : 0,
    partitionCv: ok.length >= 3 && m > 0 ? sd / m : 0.1,
    peakRssMB: Math.max(...ok.map((r) => r['total_cpu_memory (MB)'])),
    partitionMB: ok.reduce((s, r) => s + r.bytes, 0) / ok.length / MiB,
    source,
    warnings,
  };
}

/**
 * A calibration from numbers measured elsewhere: items per second of one worker with `threads` threads.
 * Unknown memory defaults to 512 MB at the partition size given; unknown variation to 10%.
 * @example calibrationFromRate({ itemsPerSecond: 109, threads: 2, bytesPerItem: 20512 })
 */
export function calibrationFromRate(c: {
  readonly itemsPerSecond: number;
  readonly threads: number;
  readonly bytesPerItem: number;
  readonly modelLoadS?: number;
  readonly partitionCv?: number;
  readonly peakRssMB?: number;
  readonly partitionMB?: number;
  readonly source?: string;
}): Calibration {
  for (const k of ['itemsPerSecond', 'threads', 'bytesPerItem'] as const)
    if (!(c[k] > 0)) throw new CaiError(ErrorCodes.option, k, `must be a positive number, got ${c[k]}`);
  return {
    secondsPerItem: 1 / c.itemsPerSecond,
    threads: c.threads,
    bytesPerItem: c.bytesPerItem,
    modelLoadS: c.modelLoadS ?? 0,
    partitionCv: c.partitionCv ?? 0.1,
    peakRssMB: c.peakRssMB ?? 512,
    partitionMB: c.partitionMB ?? 25,
    source: c.source ?? `${c.itemsPerSecond} items/s with ${c.threads} threads`,
    warnings: [],
  };
}

function mode(values: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
}

function overlaps(records: readonly PartitionRecord[]): boolean {
  const spans = records
    .map((r) => [Date.parse(r.started_at), Date.parse(r.finished_at)])
    .sort((a, b) => a[0] - b[0]);
  return spans.some((s, i) => i > 0 && s[0] < spans[i - 1][1]);
}
