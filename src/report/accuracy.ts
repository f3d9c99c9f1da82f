import type { TopLevelSpec } from 'vega-lite';
import { formatBytes } from '../formats/partition/size.js';
import { outputColumn } from '../summarize/read-predictions.js';
import type { Figure } from './figures.js';
import { spreadPredictionFiles } from './prediction-files.js';
import { num, type Table } from './table.js';

/** Predicted and true values of a sample of a regression run's items. */
export interface RegressionSample {
  readonly output: string;
  readonly pred: readonly number[];
  readonly label: readonly number[];
  /** Items in the run (the sample may hold fewer). */
  readonly items: number;
}

/**
 * Up to `limit` items with a label and a scalar prediction, from partitions spread evenly over the
 * run (reading stops once the sample is full, so a large run costs a few partitions' files).
 *
 * @example const s = await regressionSample('out'); s?.pred.length
 */
export async function regressionSample(dir: string, limit = 4000): Promise<RegressionSample | undefined> {
  const pred: number[] = [];
  const label: number[] = [];
  let output: string | undefined;
  // Spread over the run, until the sample is full.
  for await (const rows of spreadPredictionFiles(dir)) {
    output ??= outputColumn(rows[0] ?? {});
    if (!output || !rows.length || !('label' in rows[0])) return undefined;
    for (const r of rows) {
      const p = r[output];
      const t = r.label;
      if (typeof p === 'number' && typeof t === 'number' && Number.isFinite(p) && Number.isFinite(t)) {
        pred.push(p);
        label.push(t);
      }
      if (pred.length >= limit) break;
    }
    if (pred.length >= limit) break;
  }
  return output && pred.length ? { output, pred, label, items: pred.length } : undefined;
}

const CONFIG = {
  font: 'DejaVu Sans, Verdana, sans-serif',
  background: 'white',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
} as const;

/**
 * Predicted against true values (one point per sampled item, with the y = x line) and a histogram of
 * dz = (pred - true) / (1 + true) over fixed bins, for a regression run.
 *
 * @example accuracyFigures(sample).map((f) => f.id) // ['pred_vs_true', 'dz_histogram']
 */
export function accuracyFigures(s: RegressionSample, sampled: string): Figure[] {
  const points = s.pred.map((p, i) => ({ truth: s.label[i], pred: p }));
  const lo = Math.min(...s.label, ...s.pred);
  const hi = Math.max(...s.label, ...s.pred);
  const scatter: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 420,
    height: 420,
    config: CONFIG,
    layer: [
      {
        data: { values: [{ v: lo }, { v: hi }] },
        mark: { type: 'line', color: '#999', strokeDash: [4, 4] },
        encoding: { x: { field: 'v', type: 'quantitative' }, y: { field: 'v', type: 'quantitative' } },
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 12, opacity: 0.5 },
        encoding: {
          x: { field: 'truth', type: 'quantitative', title: 'True value (label)', scale: { zero: false } },
          y: {
            field: 'pred',
            type: 'quantitative',
            title: `Predicted (${s.output})`,
            scale: { zero: false },
          },
        },
      },
    ],
  };
  const dz = s.pred.map((p, i) => (p - s.label[i]) / (1 + s.label[i]));
  const sorted = [...dz].sort((a, b) => a - b);
  // Bins over the central 99% so that a few outliers do not squash the rest into one bar.
  const a = sorted[Math.floor(0.005 * (sorted.length - 1))];
  const b = sorted[Math.ceil(0.995 * (sorted.length - 1))];
  const bins = 40;
  const width = (b - a) / bins || 1e-6;
  const counts = new Array<number>(bins).fill(0);
  for (const v of dz) counts[Math.min(bins - 1, Math.max(0, Math.floor((v - a) / width)))]++;
  const bars = counts.map((count, i) => ({ from: a + i * width, to: a + (i + 1) * width, count }));
  const histogram: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 420,
    height: 260,
    config: CONFIG,
    data: { values: bars },
    mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 },
    encoding: {
      x: {
        field: 'from',
        type: 'quantitative',
        title: 'dz = (pred - true) / (1 + true)',
        scale: { zero: false },
      },
      x2: { field: 'to' },
      y: { field: 'count', type: 'quantitative', title: 'Items' },
    },
  };
  return [
    {
      id: 'pred_vs_true',
      title: 'Predicted vs true',
      caption: `Each point one item (${sampled}); the dashed line is a perfect prediction.`,
      spec: scatter,
      marks: points.length,
      markType: 'symbol',
    },
    {
      id: 'dz_histogram',
      title: 'Distribution of dz',
      caption: `Items per bin of dz (${sampled}; bins span the central 99%, the extremes are counted in the end bins).`,
      spec: histogram,
      marks: bars.length,
      markType: 'rect',
    },
  ];
}

const f = (v: unknown, digits: number) =>
  typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : 'n/a';

/**
 * "How good": the summary's metrics as a table, or undefined when the run had no label.
 * @example qualityTable(summary)?.rows
 */
export function qualityTable(summary?: Readonly<Record<string, unknown>>): Table | undefined {
  const m = summary?.metrics as Record<string, unknown> | undefined;
  if (!m) return undefined;
  if (m.kind === 'regression')
    return {
      title: 'How good (every labelled item)',
      columns: ['Items', 'MAE', 'MSE', 'Bias', 'NMAD', 'Outliers |dz| > 0.15', 'R²'],
      rows: [
        [
          num(m.n as number),
          f(m.mae, 5),
          f(m.mse, 6),
          f(m.bias, 5),
          f(m.nmad, 5),
          `${f((m.outlier_fraction as number) * 100, 2)}%`,
          f(m.r2, 4),
        ],
      ],
    };
  if (m.kind === 'classification') {
    // Labels that are no class of the model are left out of the scores: say how many, where the scores are.
    const outside = typeof m.not_a_class === 'number' && m.not_a_class > 0 ? m.not_a_class : 0;
    return {
      title: 'How good (every labelled item)',
      columns: ['Items', 'Accuracy', 'Top-5 accuracy', ...(outside ? ['Label not a class (left out)'] : [])],
      rows: [
        [
          num(m.n as number),
          `${f((m.accuracy as number) * 100, 2)}%`,
          `${f((m.top5 as number) * 100, 2)}%`,
          ...(outside ? [num(outside)] : []),
        ],
      ],
    };
  }
  return undefined;
}

/**
 * "How fast": items, data, wall time, items/s, workers, batch size, peak memory of the latest run.
 * @example speedTable(summary)
 */
export function speedTable(summary?: Readonly<Record<string, unknown>>): Table | undefined {
  const run = summary?.run as Record<string, unknown> | undefined;
  if (!run) return undefined;
  const bytes = typeof summary?.bytes === 'number' ? formatBytes(summary.bytes) : 'n/a';
  return {
    title: 'How fast (this run)',
    columns: ['Items', 'Data', 'Wall time', 'Items/s', 'Workers x threads', 'Batch', 'Peak memory / worker'],
    rows: [
      [
        num(run.items as number),
        bytes,
        `${f(run.wall_seconds, 1)} s`,
        f(run.items_per_second, 1),
        `${String(run.concurrency)} x ${String(run.threads)}`,
        String(run.batch_size),
        typeof summary?.peak_rss_mb === 'number' ? formatBytes(summary.peak_rss_mb * 2 ** 20) : 'n/a',
      ],
    ],
  };
}
