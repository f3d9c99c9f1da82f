import type { TopLevelSpec } from 'vega-lite';
import type { PartitionRecord } from '../worker/record.js';
import { configKey, mean, type SweepRow } from '../experiments/sweep-rows.js';
import { shortNames } from './short-names.js';

/**
 * A figure before rendering: its file name, title, caption, the vega-lite spec and how many data points
 * (marks) it draws, so tests can count them in the SVG.
 * @example const figs = sweepFigures(rows); figs.map((f) => f.id) // ['inference_time', 'throughput', ...]
 */
export interface Figure {
  readonly id: string;
  readonly title: string;
  readonly caption: string;
  readonly spec: TopLevelSpec;
  /** Points (line charts) or bars (bar charts) drawn. */
  readonly marks: number;
  readonly markType: 'symbol' | 'rect';
}

/** Shared look: the seeds' figures are plain line plots; fonts fall back to DejaVu Sans, which resvg loads. */
const CONFIG = {
  font: 'DejaVu Sans, Verdana, sans-serif',
  background: 'white',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
} as const;

interface Point {
  readonly x: number;
  readonly y: number;
  readonly series: string;
}

/** Mean of each configuration's runs: one point per configuration, as the seeds plot means. */
interface ConfigMean {
  readonly row: SweepRow;
  readonly runs: number;
  readonly meanPartitionS: number;
  readonly mapS: number;
  readonly itemsPerSecond: number;
  /** Inference seconds per item, summed over every partition of every run. */
  readonly secondsPerItem: number;
}

function configMeans(rows: readonly SweepRow[]): ConfigMean[] {
  const groups = new Map<string, SweepRow[]>();
  for (const r of rows) groups.set(configKey(r.config), [...(groups.get(configKey(r.config)) ?? []), r]);
  return [...groups.values()].map((g) => {
    const inference = g.reduce((s, r) => s + inferenceSeconds(r), 0);
    const items = g.reduce((s, r) => s + r.items, 0);
    return {
      row: g[0],
      runs: g.length,
      meanPartitionS: mean(g.map((r) => r.meanPartitionSeconds)),
      mapS: mean(g.map((r) => r.mapSeconds)),
      itemsPerSecond: mean(g.map((r) => r.itemsPerSecond)),
      secondsPerItem: items > 0 ? inference / items : NaN,
    };
  });
}

function inferenceSeconds(r: SweepRow): number {
  if (r.records.length > 0) return r.records.reduce((s, rec) => s + rec.timings.inference, 0);
  return r.meanInferenceSeconds * r.config.partitions;
}

/** A series label naming only the configuration fields that vary besides the x axis. */
function seriesLabeller(means: readonly ConfigMean[], x: 'dataGB' | 'batchSize'): (m: ConfigMean) => string {
  const varies = (f: (m: ConfigMean) => unknown) => new Set(means.map(f)).size > 1;
  const parts: ((m: ConfigMean) => string)[] = [(m) => `${m.row.config.partitionMB} MB`];
  if (x !== 'dataGB' && varies((m) => m.row.config.dataGB)) parts.push((m) => `${m.row.config.dataGB} GB`);
  if (x !== 'batchSize' && varies((m) => m.row.config.batchSize))
    parts.push((m) => `batch ${m.row.config.batchSize}`);
  if (varies((m) => m.row.config.engine)) parts.push((m) => m.row.config.engine);
  return (m) => parts.map((p) => p(m)).join(', ');
}

function lineSpec(
  points: readonly Point[],
  xTitle: string,
  yTitle: string,
  seriesTitle: string,
  xLog: boolean,
): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 460,
    height: 260,
    config: CONFIG,
    data: { values: points.map((p) => ({ ...p })) },
    mark: { type: 'line', point: { size: 50 }, strokeWidth: 2 },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: xTitle,
        scale: xLog ? { type: 'log', base: 2 } : { zero: false },
        axis: xLog ? { values: [...new Set(points.map((p) => p.x))] } : {},
      },
      y: { field: 'y', type: 'quantitative', title: yTitle, scale: { zero: true } },
      color: {
        field: 'series',
        type: 'nominal',
        title: seriesTitle,
        sort: [...new Set(points.map((p) => p.series))],
      },
      tooltip: [
        { field: 'series', type: 'nominal' },
        { field: 'x', type: 'quantitative', title: xTitle },
        { field: 'y', type: 'quantitative', title: yTitle, format: '.4~g' },
      ],
    },
  };
}

function lineFigure(
  id: string,
  title: string,
  caption: string,
  points: Point[],
  xTitle: string,
  yTitle: string,
  xLog: boolean,
): Figure {
  const finite = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  finite.sort((a, b) => a.series.localeCompare(b.series, undefined, { numeric: true }) || a.x - b.x);
  return {
    id,
    title,
    caption,
    spec: lineSpec(finite, xTitle, yTitle, 'Configuration', xLog),
    marks: finite.length,
    markType: 'symbol',
  };
}

/**
 * The five figures of a sweep, drawn as the seeds draw them, each point the mean of a configuration's runs:
 * inference time and throughput against data size (a line per partition size), job time and throughput
 * against batch size, and inference time per item against batch size (seed 002).
 * @example for (const f of sweepFigures(rows)) writeFileSync(`${f.id}.svg`, await renderSvg(f.spec));
 */
export function sweepFigures(rows: readonly SweepRow[]): Figure[] {
  const means = configMeans(rows);
  const byData = seriesLabeller(means, 'dataGB');
  const byBatch = seriesLabeller(means, 'batchSize');
  const point = (m: ConfigMean, x: number, y: number, label: (m: ConfigMean) => string): Point => ({
    x,
    y,
    series: label(m),
  });
  const dataSpan = spread(means.map((m) => m.row.config.dataGB));
  const logData = dataSpan > 50;
  const logBatch = spread(means.map((m) => m.row.config.batchSize)) >= 4;
  const runs = Math.max(...means.map((m) => m.runs));
  const runsNote = runs > 1 ? ` Each point is the mean of up to ${runs} runs.` : '';
  return [
    lineFigure(
      'inference_time',
      'Data size vs inference time per partition',
      `Mean wall-clock seconds per partition (read, decode, inference, write), one line per partition size.${runsNote}`,
      means.map((m) => point(m, m.row.config.dataGB, m.meanPartitionS, byData)),
      'Data size (GB)',
      'Time per partition (s)',
      logData,
    ),
    lineFigure(
      'throughput',
      'Data size vs throughput',
      `Items per second over the wall-clock map time (not the seeds' sum of per-partition bits/s).${runsNote}`,
      means.map((m) => point(m, m.row.config.dataGB, m.itemsPerSecond, byData)),
      'Data size (GB)',
      'Throughput (items/s)',
      logData,
    ),
    lineFigure(
      'batch_varying_inference_time',
      'Batch size vs inference time',
      `Wall-clock seconds of the map for each batch size.${runsNote}`,
      means.map((m) => point(m, m.row.config.batchSize, m.mapS, byBatch)),
      'Batch size',
      'Map time (s)',
      logBatch,
    ),
    lineFigure(
      'batch_varying_throughput',
      'Batch size vs throughput',
      `Items per second over the wall-clock map time.${runsNote}`,
      means.map((m) => point(m, m.row.config.batchSize, m.itemsPerSecond, byBatch)),
      'Batch size',
      'Throughput (items/s)',
      logBatch,
    ),
    lineFigure(
      'time_per_item',
      'Batch size vs inference time per item',
      'Model inference seconds per item (summed over batches, divided by items), in milliseconds, as seed 002 normalizes it.',
      means.map((m) => point(m, m.row.config.batchSize, m.secondsPerItem * 1000, byBatch)),
      'Batch size',
      'Inference time per item (ms)',
      logBatch,
    ),
  ];
}

function spread(values: readonly number[]): number {
  const pos = values.filter((v) => v > 0);
  return pos.length ? Math.max(...pos) / Math.min(...pos) : 1;
}

/**
 * Figures of one finished run: each partition's items/s and, when the batch size was chosen by measurement, inference time per item
 * against batch size.
 * @example runFigures(JSON.parse(readFileSync('out/combined_data.json', 'utf8')))
 */
export function runFigures(records: readonly PartitionRecord[]): Figure[] {
  const order = [...records].sort((a, b) =>
    a.partition.localeCompare(b.partition, undefined, { numeric: true }),
  );
  const short = shortNames(order.map((r) => r.partition));
  const figures: Figure[] = [
    {
      id: 'partition_throughput',
      title: 'Throughput per partition',
      caption: 'Items per wall-clock second of each partition (sample_persec).',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        width: Math.min(860, Math.max(260, 18 * order.length)),
        height: 220,
        config: CONFIG,
        data: { values: order.map((r, i) => ({ partition: short.names[i], items_per_s: r.sample_persec })) },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'partition', type: 'ordinal', sort: short.names, title: 'Partition' },
          y: { field: 'items_per_s', type: 'quantitative', title: 'Items/s' },
        },
      },
      marks: order.length,
      markType: 'rect',
    },
  ];
  const auto = order.find((r) => r.batch_size_auto)?.batch_size_auto;
  if (auto) {
    const points = Object.entries(auto.seconds_per_item).map(([b, s]) => ({
      x: Number(b),
      y: s * 1000,
      series: `chosen ${auto.chosen}`,
    }));
    figures.push(
      lineFigure(
        'time_per_item',
        'Batch size vs inference time per item',
        'Measured by `--batch-size auto` before the run, as seed 002 measures it.',
        points,
        'Batch size',
        'Inference time per item (ms)',
        spread(points.map((p) => p.x)) >= 4,
      ),
    );
  }
  return figures;
}
