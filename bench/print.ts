// Interleaved repetitions and how the benchmarks print them: medians with their ranges, and ratios
// taken pair by pair.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { CaiRunResult, Throughput } from './runs.js';

/** The median of some numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs each named measurement once per repetition, in turn (A B A B ...), so a machine whose speed
 * drifts (other jobs on shared cores) affects every contender alike. Returns each one's samples.
 */
export async function interleave<T>(
  repetitions: number,
  contenders: Readonly<Record<string, () => Promise<T>>>,
  onSample?: (name: string, rep: number, value: T) => void,
): Promise<Record<string, T[]>> {
  const samples: Record<string, T[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  for (let rep = 0; rep < repetitions; rep++) {
    for (const [name, run] of Object.entries(contenders)) {
      const t0 = performance.now();
      const value = await run();
      // Progress on stderr, so a long benchmark shows it is alive; the results go to stdout.
      process.stderr.write(
        `  [${rep + 1}/${repetitions}] ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
      );
      samples[name].push(value);
      onSample?.(name, rep, value);
    }
  }
  return samples;
}

/** Pairwise ratios a[i] / b[i] of two interleaved series: their median is the ratio to quote. */
export function ratios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => x / b[i]);
}

/** `median [min-max]` of a series. */
export function spread(xs: readonly number[], digits = 1): string {
  return `${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]`;
}

/** A line of a results table: label, the median (with its range) and, optionally, the median ratio. */
export function line(
  label: string,
  xs: readonly number[],
  unit: string,
  ratio?: readonly number[],
  to = '',
): void {
  const r = ratio ? `   ratio ${spread(ratio, 2)}x ${to}` : '';
  process.stdout.write(`  ${label.padEnd(50)} ${spread(xs).padStart(22)} ${unit}${r}\n`);
}

/** A line of a results table for a single number. */
export function row(label: string, value: number, unit: string, ratio?: { to: string; value: number }): void {
  const r = ratio ? `   ${(value / ratio.value).toFixed(2)}x ${ratio.to}` : '';
  process.stdout.write(`  ${label.padEnd(50)} ${value.toFixed(1).padStart(22)} ${unit}${r}\n`);
}

/** Prints a heading with the machine, so every output says where it was measured. */
export function heading(title: string): void {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(
    `${title}\n  machine: ${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
}

/** Prints what the summaries of some `cai run`s say: whole-process and map time, cold start, memory. */
export function describeRuns(
  label: string,
  runs: readonly CaiRunResult[],
  bare?: readonly Throughput[],
): void {
  const m = (f: (r: CaiRunResult) => number, digits = 2) => median(runs.map(f)).toFixed(digits);
  const bareRss = bare ? ` (bare loop ${median(bare.map((b) => b.peakRssMb)).toFixed(0)} MB)` : '';
  process.stdout.write(
    `  cai ${label}: whole process ${m((r) => r.wall)} s, map ${m((r) => r.summary.run.map_seconds)} s, ` +
      `cold start: first worker up ${m((r) => r.firstWorkerS)} s after launch, model load ${m((r) => r.summary.cold_start.mean_model_load_s)} s, ` +
      `first prediction ${m((r) => r.summary.cold_start.mean_time_to_first_prediction_s)} s after worker start = ${m((r) => r.firstPredictionS)} s after launch, ` +
      `stages read ${m((r) => r.summary.stage_seconds.read)} decode ${m((r) => r.summary.stage_seconds.decode)} inference ${m((r) => r.summary.stage_seconds.inference)} write ${m((r) => r.summary.stage_seconds.write)} s, ` +
      `peak RSS/worker ${m((r) => r.summary.peak_rss_mb, 0)} MB${bareRss}\n`,
  );
}
