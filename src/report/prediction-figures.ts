import type { TopLevelSpec } from 'vega-lite';
import { classStats, type Confusion } from './confusion.js';
import type { OutputDigest, PredictionDigest } from './digest.js';
import type { Figure } from './figures.js';
import type { StreamingHistogram } from './histogram.js';
import { num, type Table } from './table.js';

const CONFIG = {
  font: 'DejaVu Sans, Verdana, sans-serif',
  background: 'white',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
} as const;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Classes up to which counts and precision/recall are drawn one bar per class. */
const MAX_CLASS_BARS = 60;

function histogramSpec(bars: object[], xTitle: string, yTitle = 'Items'): TopLevelSpec {
  return {
    $schema: SCHEMA,
    width: 420,
    height: 220,
    config: CONFIG,
    data: { values: bars },
    mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5, tooltip: true },
    encoding: {
      x: { field: 'from', type: 'quantitative', title: xTitle, scale: { zero: false } },
      x2: { field: 'to' },
      y: { field: 'count', type: 'quantitative', title: yTitle },
    },
  };
}

function histogramFigure(
  id: string,
  title: string,
  caption: string,
  h: StreamingHistogram,
  xTitle: string,
): Figure {
  const bars = h.bars(40);
  const sampled = h.barsFromSample
    ? ` Counted over a uniform sample of ${num(bars.reduce((s, b) => s + b.count, 0))} of the ${num(h.count)} items: a few far outliers (min ${g(h.min)}, max ${g(h.max)}) would squash the rest into one bar.`
    : '';
  return {
    id,
    title,
    caption: caption + sampled,
    spec: histogramSpec(bars, xTitle, h.barsFromSample ? 'Items (in the sample)' : 'Items'),
    marks: bars.length,
    markType: 'rect',
  };
}

const g = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(5)).toString() : 'n/a');

/** Summary statistics of a histogram's values, as table cells. */
function statsRow(h: StreamingHistogram): string[] {
  return [
    num(h.count),
    g(h.mean),
    g(h.std),
    g(h.min),
    g(h.quantile(0.01)),
    g(h.quantile(0.5)),
    g(h.quantile(0.99)),
    g(h.max),
    num(h.nonFinite) || '0',
  ];
}

const STATS_COLUMNS = ['Items', 'Mean', 'Std', 'Min', 'p1', 'Median', 'p99', 'Max', 'Not finite'];

function classBars(c: Extract<OutputDigest, { kind: 'classifier' }>): Figure {
  const values = c.predicted.map((count, cls) => ({ cls: String(cls), count }));
  return {
    id: `${c.name}_class_counts`,
    title: `Predicted classes (${c.name})`,
    caption: `Items predicted as each class (the highest score), ${num(c.items)} items.`,
    spec: {
      $schema: SCHEMA,
      width: Math.min(860, Math.max(240, 22 * c.classes)),
      height: 200,
      config: CONFIG,
      data: { values },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'cls', type: 'ordinal', title: 'Predicted class', sort: values.map((v) => v.cls) },
        y: { field: 'count', type: 'quantitative', title: 'Items' },
      },
    },
    marks: values.length,
    markType: 'rect',
  };
}

function confidenceFigure(c: Extract<OutputDigest, { kind: 'classifier' }>): Figure {
  const bars = c.confidence.map((count, i) => ({ from: i / 20, to: (i + 1) / 20, count }));
  const how = c.probabilities ? 'the top class score' : 'the softmax of the scores at the top class';
  return {
    id: `${c.name}_confidence`,
    title: `Confidence (${c.name})`,
    caption: `Items per bin of confidence: ${how}, from 0 to 1 (1 = certain).`,
    spec: {
      ...histogramSpec(bars, 'Confidence (top-class probability)'),
      encoding: {
        x: {
          field: 'from',
          type: 'quantitative',
          title: 'Confidence (top-class probability)',
          scale: { domain: [0, 1] },
        },
        x2: { field: 'to' },
        y: { field: 'count', type: 'quantitative', title: 'Items' },
      },
    } as TopLevelSpec,
    marks: bars.length,
    markType: 'rect',
  };
}

function precisionRecallFigure(c: Confusion): Figure {
  const values = classStats(c).flatMap((s) => [
    { cls: String(s.cls), metric: 'precision', value: Number.isFinite(s.precision) ? s.precision : 0 },
    { cls: String(s.cls), metric: 'recall', value: Number.isFinite(s.recall) ? s.recall : 0 },
  ]);
  return {
    id: 'precision_recall',
    title: 'Precision and recall per class',
    caption: `Of the items predicted as a class, the share truly of it (precision); of the items of a class, the share found (recall). ${num(c.items)} labelled items; a class never predicted or never present shows 0.`,
    spec: {
      $schema: SCHEMA,
      width: Math.min(860, Math.max(240, 30 * c.classes)),
      height: 200,
      config: CONFIG,
      data: { values },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'cls', type: 'ordinal', title: 'Class', sort: [...Array(c.classes).keys()].map(String) },
        xOffset: { field: 'metric' },
        y: {
          field: 'value',
          type: 'quantitative',
          title: 'Share of items',
          scale: { domain: [0, 1] },
          axis: { format: '%' },
        },
        color: { field: 'metric', type: 'nominal', title: '' },
      },
    } as TopLevelSpec,
    marks: values.length,
    markType: 'rect',
  };
}

function dimensionFigure(v: Extract<OutputDigest, { kind: 'vector' }>): Figure | undefined {
  if (!v.dimMean.length || v.dims > 256) return undefined;
  const values = [...v.dimMean].map((m, d) => {
    const sd = v.items > 1 ? Math.sqrt(v.dimM2[d] / (v.items - 1)) : 0;
    return { dim: d, mean: m, lo: m - sd, hi: m + sd };
  });
  return {
    id: `${v.name}_dimensions`,
    title: `Mean and spread per dimension (${v.name})`,
    caption: `Each dimension's mean over ${num(v.items)} items, with a bar of one standard deviation either side.`,
    spec: {
      $schema: SCHEMA,
      width: Math.min(860, Math.max(300, 6 * v.dims)),
      height: 200,
      config: CONFIG,
      data: { values },
      layer: [
        {
          mark: { type: 'rule', color: '#9ecae1' },
          encoding: {
            x: { field: 'dim', type: 'quantitative', title: 'Dimension' },
            y: { field: 'lo', type: 'quantitative', title: 'Value' },
            y2: { field: 'hi' },
          },
        },
        {
          mark: { type: 'point', filled: true, size: 14, color: '#1f77b4' },
          encoding: { x: { field: 'dim', type: 'quantitative' }, y: { field: 'mean', type: 'quantitative' } },
        },
      ],
    } as TopLevelSpec,
    marks: values.length,
    markType: 'symbol',
  };
}

/** The figures and tables of one output, in the order the page shows them. */
export interface OutputView {
  readonly output: OutputDigest;
  readonly intro: string;
  readonly tables: Table[];
  readonly figures: Figure[];
}

/**
 * "Predictions at a glance" for every output of a run, with or without labels: a histogram and summary
 * statistics for a regression output (and of dz when labelled), class counts and confidence for class
 * scores (and precision/recall per class when labelled), statistics and norms for vectors.
 *
 * @example for (const v of predictionViews(await digestPredictions('out'))) console.log(v.intro);
 */
export function predictionViews(d: PredictionDigest): OutputView[] {
  return d.outputs.map((o): OutputView => {
    if (o.kind === 'regression') {
      const figures = [
        histogramFigure(
          `${o.name}_histogram`,
          `Distribution of ${o.name}`,
          `Items per bin of the predicted ${o.name} (every item; bins span the central 99%, the extremes are counted in the end bins).`,
          o.values,
          `Predicted ${o.name}`,
        ),
      ];
      const tables: Table[] = [
        { title: `Predicted ${o.name}`, columns: STATS_COLUMNS, rows: [statsRow(o.values)], leftAlign: [] },
      ];
      if (o.dz)
        tables.push({
          title: 'dz = (pred - true) / (1 + true)',
          columns: STATS_COLUMNS,
          rows: [statsRow(o.dz)],
          leftAlign: [],
        });
      return {
        output: o,
        intro: `<code>${o.name}</code>: one number per item, read as a regression output.`,
        tables,
        figures,
      };
    }
    if (o.kind === 'classifier') {
      const figures: Figure[] = [];
      const tables: Table[] = [];
      if (o.classes <= MAX_CLASS_BARS) figures.push(classBars(o));
      else {
        const top = o.predicted
          .map((count, cls) => ({ cls, count }))
          .sort((a, b) => b.count - a.count || a.cls - b.cls)
          .slice(0, 20);
        tables.push({
          title: `The 20 classes predicted most often (of ${o.classes})`,
          columns: ['Class', 'Items', 'Share'],
          rows: top.map((t) => [
            String(t.cls),
            num(t.count),
            `${((100 * t.count) / Math.max(1, o.items)).toFixed(1)}%`,
          ]),
          leftAlign: [],
        });
      }
      figures.push(confidenceFigure(o));
      if (d.confusion && d.confusion.output === o.name && o.classes <= MAX_CLASS_BARS)
        figures.push(precisionRecallFigure(d.confusion));
      return {
        output: o,
        intro: `<code>${o.name}</code>: ${o.classes} scores per item, read as class scores (${o.why}).`,
        tables,
        figures,
      };
    }
    const dim = dimensionFigure(o);
    const norms = histogramFigure(
      `${o.name}_norm`,
      `Length of each ${o.name} vector`,
      `Items per bin of the L2 norm of the ${o.dims}-number vector.`,
      o.norm,
      'L2 norm',
    );
    return {
      output: o,
      intro: `<code>${o.name}</code>: ${o.dims} numbers per item, read as a vector (an embedding, say): not class scores, since they are not probabilities, nothing names them classes and there is no class label.`,
      tables: [
        { title: `L2 norm of ${o.name}`, columns: STATS_COLUMNS, rows: [statsRow(o.norm)], leftAlign: [] },
      ],
      figures: dim ? [dim, norms] : [norms],
    };
  });
}
