import type { PartitionRecord } from '../worker/record.js';

/**
 * The configuration one sweep row ran.
 * @example const c: SweepConfig = { dataGB: 1, partitionMB: 25, batchSize: 512, partitions: 41, engine: 'local' };
 */
export interface SweepConfig {
  /** Data size the run covered, GB (2^30 bytes, as the seeds' "12.6 GB"). */
  readonly dataGB: number;
  /** Partition size, MB (2^20 bytes). */
  readonly partitionMB: number;
  readonly batchSize: number;
  /** Partitions the run processed. */
  readonly partitions: number;
  /** Engine name, e.g. `local` or `aws`. */
  readonly engine: string;
}

/**
 * One run of one configuration of a sweep (`cai bench` writes an array of these to `sweep.json`).
 * @example const rows: SweepRow[] = JSON.parse(readFileSync('bench-out/sweep.json', 'utf8'));
 */
export interface SweepRow {
  readonly config: SweepConfig;
  /** 1 for the first repeat. */
  readonly run: number;
  /** Wall clock of the whole job: plan, map, summarize. */
  readonly wallSeconds: number;
  /** Wall clock of the map alone. */
  readonly mapSeconds: number;
  readonly items: number;
  readonly bytes: number;
  /** Items per wall-clock second of the map. */
  readonly itemsPerSecond: number;
  readonly meanPartitionSeconds: number;
  readonly p50PartitionSeconds: number;
  readonly p95PartitionSeconds: number;
  /** Mean over partitions of their summed inference seconds. */
  readonly meanInferenceSeconds: number;
  /** Largest peak resident set of any worker, MB. */
  readonly peakRssMB: number;
  readonly records: readonly PartitionRecord[];
}

/**
 * The value at quantile `q` (0..1) of `values`, linearly interpolated between order statistics (numpy's
 * default), NaN when empty.
 * @example quantile([1, 2, 3, 4], 0.5) // 2.5
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/**
 * Mean of `values`, NaN when empty.
 * @example mean([1, 2, 6]) // 3
 */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((s, v) => s + v, 0) / values.length;
}

/**
 * Columns of `result_stats.csv`. The seeds' columns come first, with the seeds' aggregation over a run's
 * partitions (mean CPU time; summed memory, bps and bits; summed and averaged S3 time), so the numbers
 * compare with theirs - except that our per-partition values are honest (peak RSS, wall clock). Our own
 * columns follow: wall-clock job and map time, items/s over the map, partition time quantiles, peak RSS.
 * @example RESULT_STATS_COLUMNS[0] // 'partition (MB)'
 */
export const RESULT_STATS_COLUMNS = Object.freeze([
  'partition (MB)',
  'data (GB)',
  'run',
  'total_cpu_time (seconds)',
  'total_cpu_memory (MB)',
  'throughput_bps',
  'total_bits',
  's3_total_time',
  's3_avg_time',
  's3_min_time',
  's3_max_time',
  'batch_size',
  'engine',
  'partitions',
  'items',
  'wall_clock_total (s)',
  'wall_clock_map (s)',
  'items_per_second',
  'mean_partition (s)',
  'p50_partition (s)',
  'p95_partition (s)',
  'mean_inference (s)',
  'peak_rss (MB)',
] as const);

/**
 * A column name of `result_stats.csv`.
 * @example const c: ResultStatsColumn = 'p95_partition (s)';
 */
export type ResultStatsColumn = (typeof RESULT_STATS_COLUMNS)[number];

/**
 * One row of `result_stats.csv` before formatting; `run` is a number or `mean`.
 * @example resultStatsRows(rows).filter((r: ResultStatsRow) => r.run === 'mean')
 */
export type ResultStatsRow = Record<ResultStatsColumn, number | string>;

function s3Seconds(r: PartitionRecord): number | undefined {
  if (!r.storage) return undefined;
  return Object.values(r.storage).reduce((s, st) => s + st.seconds, 0);
}

/**
 * The `result_stats.csv` row of one sweep run (see `RESULT_STATS_COLUMNS`).
 * @example const row = resultStatsRow(rows[0]); row['wall_clock_map (s)']
 */
export function resultStatsRow(row: SweepRow): ResultStatsRow {
  const recs = row.records;
  const s3 = recs.map(s3Seconds).filter((v): v is number => v !== undefined);
  return {
    'partition (MB)': row.config.partitionMB,
    'data (GB)': row.config.dataGB,
    run: row.run,
    'total_cpu_time (seconds)': mean(recs.map((r) => r['total_cpu_time (seconds)'])),
    'total_cpu_memory (MB)': recs.reduce((s, r) => s + r['total_cpu_memory (MB)'], 0),
    throughput_bps: recs.reduce((s, r) => s + r.throughput_bps, 0),
    total_bits: row.bytes * 8,
    s3_total_time: s3.reduce((s, v) => s + v, 0),
    s3_avg_time: mean(s3),
    s3_min_time: s3.length ? Math.min(...s3) : NaN,
    s3_max_time: s3.length ? Math.max(...s3) : NaN,
    batch_size: row.config.batchSize,
    engine: row.config.engine,
    partitions: row.config.partitions,
    items: row.items,
    'wall_clock_total (s)': row.wallSeconds,
    'wall_clock_map (s)': row.mapSeconds,
    items_per_second: row.itemsPerSecond,
    'mean_partition (s)': row.meanPartitionSeconds,
    'p50_partition (s)': row.p50PartitionSeconds,
    'p95_partition (s)': row.p95PartitionSeconds,
    'mean_inference (s)': row.meanInferenceSeconds,
    'peak_rss (MB)': row.peakRssMB,
  };
}

/**
 * Seconds from the first record's start to the last record's finish: the map's wall clock as the records
 * see it (it misses dispatch before the first partition starts).
 * @example recordsSpanSeconds(records) // 12.3
 */
export function recordsSpanSeconds(records: readonly PartitionRecord[]): number {
  if (records.length === 0) return 0;
  const starts = records.map((r) => Date.parse(r.started_at));
  const ends = records.map((r) => Date.parse(r.finished_at));
  return (Math.max(...ends) - Math.min(...starts)) / 1000;
}

/**
 * A sweep row computed from a run's records; `mapSeconds` defaults to the records' span and `wallSeconds`
 * to `mapSeconds` when the caller did not time them.
 * @example sweepRowFromRecords({ dataGB: 1, partitionMB: 25, batchSize: 512, partitions: 41, engine: 'local' }, 1, recs)
 */
export function sweepRowFromRecords(
  config: SweepConfig,
  run: number,
  records: readonly PartitionRecord[],
  timing: { readonly wallSeconds?: number; readonly mapSeconds?: number } = {},
): SweepRow {
  const mapSeconds = timing.mapSeconds ?? recordsSpanSeconds(records);
  const items = records.reduce((s, r) => s + r.items, 0);
  const totals = records.map((r) => r.timings.total);
  return {
    config,
    run,
    wallSeconds: timing.wallSeconds ?? mapSeconds,
    mapSeconds,
    items,
    bytes: records.reduce((s, r) => s + r.bytes, 0),
    itemsPerSecond: mapSeconds > 0 ? items / mapSeconds : NaN,
    meanPartitionSeconds: mean(totals),
    p50PartitionSeconds: quantile(totals, 0.5),
    p95PartitionSeconds: quantile(totals, 0.95),
    meanInferenceSeconds: mean(records.map((r) => r.timings.inference)),
    peakRssMB: records.reduce((m, r) => Math.max(m, r['total_cpu_memory (MB)']), 0),
    records,
  };
}

/**
 * The key of a configuration: runs with the same key are repeats and get one mean row.
 * @example configKey(row.config) // '25|1|512|local'
 */
export function configKey(c: SweepConfig): string {
  return `${c.partitionMB}|${c.dataGB}|${c.batchSize}|${c.engine}`;
}

const KEY_COLUMNS: readonly ResultStatsColumn[] = ['partition (MB)', 'data (GB)', 'batch_size', 'engine'];

/**
 * The rows of `result_stats.csv`: every run, then a `mean` row per configuration (mean over its runs of
 * every numeric column), sorted by partition size, data size, batch size, engine, then run.
 * @example resultStatsRows(rows).filter((r) => r.run === 'mean')
 */
export function resultStatsRows(rows: readonly SweepRow[]): ResultStatsRow[] {
  const runs = rows.map(resultStatsRow);
  const groups = new Map<string, ResultStatsRow[]>();
  rows.forEach((row, i) => {
    const key = configKey(row.config);
    groups.set(key, [...(groups.get(key) ?? []), runs[i]]);
  });
  const means: ResultStatsRow[] = [];
  for (const group of groups.values()) {
    const m = { ...group[0], run: 'mean' } as ResultStatsRow;
    for (const col of RESULT_STATS_COLUMNS) {
      if (col === 'run' || KEY_COLUMNS.includes(col)) continue;
      const values = group
        .map((g) => g[col])
        .filter((v): v is number => typeof v === 'number' && !Number.isNaN(v));
      m[col] = mean(values);
    }
    means.push(m);
  }
  const all = [...runs, ...means];
  const num = (v: number | string) => (typeof v === 'number' ? v : Number.POSITIVE_INFINITY);
  all.sort(
    (a, b) =>
      num(a['partition (MB)']) - num(b['partition (MB)']) ||
      num(a['data (GB)']) - num(b['data (GB)']) ||
      num(a.batch_size) - num(b.batch_size) ||
      String(a.engine).localeCompare(String(b.engine)) ||
      num(a.run) - num(b.run),
  );
  return all;
}

/**
 * Formats a number for the CSV: up to 4 decimals (the seeds round to 2, which hides sub-second local
 * timings), no trailing zeros, empty for NaN.
 * @example formatNumber(1.23456) // '1.2346'
 */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '';
  return String(Number(v.toFixed(4)));
}

function csvCell(v: number | string): string {
  if (typeof v === 'number') return formatNumber(v);
  return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/**
 * `result_stats.csv` of a sweep: the seeds' columns plus honest ones, a row per run and a mean row per
 * configuration (see `RESULT_STATS_COLUMNS` and `resultStatsRows`).
 * @example writeFileSync('bench-out/result_stats.csv', resultStatsCsv(rows));
 */
export function resultStatsCsv(rows: readonly SweepRow[]): string {
  const lines = [RESULT_STATS_COLUMNS.map(csvCell).join(',')];
  for (const r of resultStatsRows(rows)) lines.push(RESULT_STATS_COLUMNS.map((c) => csvCell(r[c])).join(','));
  return lines.join('\n') + '\n';
}
