import type { Store } from '../storage/store.js';
import { isClassIndex } from '../summarize/metrics.js';
import type { PredictionRows } from '../summarize/read-predictions.js';
import { Random } from '../tensor/random.js';
import { outputStore, readPredictionFile, reportPredictionFiles } from './prediction-files.js';
import type { Confusion } from './confusion.js';
import { StreamingHistogram } from './histogram.js';

/** Columns CAI writes itself beside the model's outputs. */
const OWN_COLUMNS = new Set(['partition', 'index', 'id', 'label', 'error']);

/** Names that say an output of several numbers per item holds class scores, not an embedding. */
const CLASS_NAME = /logit|prob|class|score|softmax/i;

/** One item the gallery may show: where it is, what the model said, and its label. */
export interface ItemRef {
  readonly partition: string;
  readonly index: number;
  readonly id?: string;
  /** The prediction (regression), or the top class's probability (classifier). */
  readonly value: number;
  /** Predicted class (classifier). */
  readonly cls?: number;
  /** The label, when the run had one. */
  readonly label?: number;
  /** |pred - true| / (1 + true) (regression with labels). */
  readonly dz?: number;
}

/** How many of each kind of item the gallery keeps. */
export interface GalleryCounts {
  /** Most and least confident items per predicted class. */
  readonly perClass: number;
  /** Confusion pairs shown, and items per pair. */
  readonly pairs: number;
  readonly perPair: number;
  /** Lowest and highest predictions, and largest errors, of a regression. */
  readonly extremes: number;
}

/** The gallery's defaults: small enough that the page stays light for a thousand classes' worth. */
export const GALLERY_COUNTS: GalleryCounts = Object.freeze({
  perClass: 3,
  pairs: 5,
  perPair: 3,
  extremes: 6,
});

/** What one model output's predictions look like over the whole run. */
export type OutputDigest =
  | {
      readonly kind: 'regression';
      readonly name: string;
      readonly values: StreamingHistogram;
      /** With labels: dz = (pred - true) / (1 + true). */
      readonly dz?: StreamingHistogram;
      readonly lowest: ItemRef[];
      readonly highest: ItemRef[];
      readonly worst: ItemRef[];
    }
  | {
      readonly kind: 'classifier';
      readonly name: string;
      readonly classes: number;
      /** Why these numbers were read as class scores. */
      readonly why: string;
      /** Whether the scores were probabilities already (else softmax of logits). */
      readonly probabilities: boolean;
      readonly predicted: number[];
      /** Top-class probability of every item, 20 bins over [0, 1]. */
      readonly confidence: number[];
      readonly items: number;
      readonly mostConfident: ItemRef[][];
      readonly leastConfident: ItemRef[][];
      /** Per `true,pred` pair of a mistake: its most confident items. */
      readonly mistakes: Map<string, ItemRef[]>;
    }
  | {
      readonly kind: 'vector';
      readonly name: string;
      readonly dims: number;
      readonly items: number;
      /** Per dimension: mean and M2 (Welford), for dimensions up to {@link MAX_VECTOR_DIMS}. */
      readonly dimMean: Float64Array;
      readonly dimM2: Float64Array;
      readonly norm: StreamingHistogram;
    };

/** Vector outputs wider than this get no per-dimension statistics (norms only). */
export const MAX_VECTOR_DIMS = 4096;
/** Classes above which mistakes are not kept per pair (a K x K table of examples). */
const MAX_PAIR_CLASSES = 200;

/** A run's predictions, digested in one pass. */
export interface PredictionDigest {
  readonly items: number;
  readonly failedItems: number;
  readonly files: number;
  readonly labelled: boolean;
  readonly outputs: OutputDigest[];
  /** True against predicted class of the first classifier output, with labels. */
  readonly confusion?: Confusion;
  /** Predicted and true values of a uniform random sample (reservoir) of the first scalar output. */
  readonly sample?: { output: string; pred: number[]; label: number[]; items: number };
  /** Other columns than the outputs the predictions carry (ids, joined columns). */
  readonly carried: string[];
}

/** Keeps the `k` items with the highest `score` seen so far (ties: first seen), in order. */
class TopK {
  readonly items: { score: number; ref: ItemRef }[] = [];
  constructor(private readonly k: number) {}
  /** Whether an item of this score would be kept (so that its reference need not be built otherwise). */
  wants(score: number): boolean {
    return this.items.length < this.k || score > this.items[this.items.length - 1].score;
  }
  add(score: number, ref: ItemRef): void {
    if (!this.wants(score)) return;
    let i = this.items.length;
    while (i > 0 && this.items[i - 1].score < score) i--;
    this.items.splice(i, 0, { score, ref });
    if (this.items.length > this.k) this.items.pop();
  }
  refs(): ItemRef[] {
    return this.items.map((e) => e.ref);
  }
}

function softmaxTop(scores: readonly number[], probabilities: boolean): { cls: number; p: number } {
  let cls = 0;
  for (let j = 1; j < scores.length; j++) if (scores[j] > scores[cls]) cls = j;
  if (probabilities) return { cls, p: scores[cls] };
  let sum = 0;
  for (const s of scores) sum += Math.exp(s - scores[cls]);
  return { cls, p: 1 / sum };
}

const isProbabilities = (v: readonly number[]) =>
  v.every((x) => x >= 0 && x <= 1) && Math.abs(v.reduce((s, x) => s + x, 0) - 1) < 1e-3;

const numeric = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

interface ClassState {
  kind: 'classifier';
  name: string;
  classes: number;
  why: string;
  probabilities: boolean;
  predicted: number[];
  confidence: number[];
  items: number;
  most: TopK[];
  least: TopK[];
  mistakes: Map<string, TopK>;
}

interface RegressionState {
  kind: 'regression';
  name: string;
  values: StreamingHistogram;
  dz?: StreamingHistogram;
  low: TopK;
  high: TopK;
  worst: TopK;
}

type State =
  | ClassState
  | RegressionState
  | {
      kind: 'vector';
      name: string;
      dims: number;
      items: number;
      dimMean: Float64Array;
      dimM2: Float64Array;
      norm: StreamingHistogram;
    };

function newState(
  name: string,
  value: unknown,
  labelColumn: boolean,
  first: boolean,
  counts: GalleryCounts,
): State {
  const width = Array.isArray(value) ? value.length : 1;
  if (width === 1)
    return {
      kind: 'regression',
      name,
      values: new StreamingHistogram(),
      dz: labelColumn ? new StreamingHistogram() : undefined,
      low: new TopK(counts.extremes),
      high: new TopK(counts.extremes),
      worst: new TopK(counts.extremes),
    };
  const v = (value as unknown[]).map(numeric);
  const probabilities = isProbabilities(v);
  const why = probabilities
    ? 'each row is non-negative and sums to 1'
    : CLASS_NAME.test(name)
      ? `its name "${name}" says so`
      : first && labelColumn
        ? 'the run has a class label'
        : undefined;
  if (why)
    return {
      kind: 'classifier',
      name,
      classes: width,
      why,
      probabilities,
      predicted: new Array<number>(width).fill(0),
      confidence: new Array<number>(20).fill(0),
      items: 0,
      most: Array.from({ length: width }, () => new TopK(counts.perClass)),
      least: Array.from({ length: width }, () => new TopK(counts.perClass)),
      mistakes: new Map(),
    };
  return {
    kind: 'vector',
    name,
    dims: width,
    items: 0,
    dimMean: new Float64Array(width <= MAX_VECTOR_DIMS ? width : 0),
    dimM2: new Float64Array(width <= MAX_VECTOR_DIMS ? width : 0),
    norm: new StreamingHistogram(),
  };
}

/**
 * Reads every predictions file of a local output once, in natural order, one file in memory at a time,
 * and folds each row into per-output statistics: a histogram (regression), class counts and a confidence
 * histogram (classifier: several scores per item that are probabilities, carry a class-like name, or
 * come with a class label), or per-dimension statistics and norms (vectors such as embeddings); the
 * confusion counts and a reservoir sample of (prediction, label) pairs when the run has labels; and the
 * items the gallery shows (most and least confident per class, most confident of each mistake, lowest and
 * highest predictions, largest errors). Memory is bounded by one file plus fixed-size state.
 *
 * @example const d = await digestPredictions('out'); d.outputs[0].kind // 'classifier'
 */
export async function digestPredictions(
  output: string | Store,
  counts: GalleryCounts = GALLERY_COUNTS,
  sampleSize = 4000,
  /** The job's `carry` columns: input columns, not outputs, whatever their type. */
  carry: readonly string[] = [],
): Promise<PredictionDigest> {
  const own = new Set([...OWN_COLUMNS, ...carry]);
  const store = await outputStore(output);
  const files = await reportPredictionFiles(store);
  const states = new Map<string, State>();
  const carried = new Set<string>();
  const rng = new Random(25);
  const sample = { pred: [] as number[], label: [] as number[], seen: 0, output: '' };
  let confusion: { output: string; counts: number[][]; items: number; outside: number } | undefined;
  let items = 0;
  let failedItems = 0;
  let labelled = false;
  for (const file of files) {
    const rows: PredictionRows = await readPredictionFile(store, file);
    for (const row of rows) {
      items++;
      if (row.error !== null && row.error !== undefined) {
        failedItems++;
        continue;
      }
      const hasLabel = 'label' in row && row.label !== null && row.label !== undefined;
      labelled ||= 'label' in row;
      const label = hasLabel ? numeric(Array.isArray(row.label) ? row.label[0] : row.label) : undefined;
      const partition = String(row.partition);
      const index = Number(row.index);
      const id = row.id === null || row.id === undefined ? undefined : String(row.id);
      let first = true;
      for (const [name, value] of Object.entries(row)) {
        if (OWN_COLUMNS.has(name)) continue;
        if (own.has(name) || (typeof value !== 'number' && !Array.isArray(value))) {
          carried.add(name);
          continue;
        }
        let st = states.get(name);
        if (!st) {
          st = newState(name, value, 'label' in row, states.size === 0, counts);
          states.set(name, st);
        }
        const isFirst = first;
        first = false;
        if (st.kind === 'regression') {
          const p = numeric(Array.isArray(value) ? value[0] : value);
          st.values.add(p);
          if (!Number.isFinite(p)) continue;
          const ref = (extra: Partial<ItemRef> = {}): ItemRef => ({
            partition,
            index,
            id,
            value: p,
            label,
            ...extra,
          });
          if (st.high.wants(p)) st.high.add(p, ref());
          if (st.low.wants(-p)) st.low.add(-p, ref());
          if (label !== undefined && Number.isFinite(label)) {
            const dz = (p - label) / (1 + label);
            st.dz?.add(dz);
            if (st.worst.wants(Math.abs(dz))) st.worst.add(Math.abs(dz), ref({ dz: Math.abs(dz) }));
            if (isFirst || sample.output === name) {
              sample.output = name;
              // Reservoir sampling (algorithm R): every labelled item equally likely to be drawn.
              sample.seen++;
              if (sample.pred.length < sampleSize) {
                sample.pred.push(p);
                sample.label.push(label);
              } else {
                const j = Math.floor(rng.uniform() * sample.seen);
                if (j < sampleSize) {
                  sample.pred[j] = p;
                  sample.label[j] = label;
                }
              }
            }
          }
        } else if (st.kind === 'classifier') {
          const scores = (value as unknown[]).map(numeric);
          if (scores.length !== st.classes || scores.some((s) => !Number.isFinite(s))) continue;
          const { cls, p } = softmaxTop(scores, st.probabilities);
          st.items++;
          st.predicted[cls]++;
          st.confidence[Math.min(19, Math.floor(p * 20))]++;
          const ref = (): ItemRef => ({ partition, index, id, value: p, cls, label });
          if (st.most[cls].wants(p)) st.most[cls].add(p, ref());
          if (st.least[cls].wants(-p)) st.least[cls].add(-p, ref());
          if (label !== undefined && isFirst) {
            confusion ??= {
              output: name,
              counts: Array.from({ length: st.classes }, () => new Array<number>(st.classes).fill(0)),
              items: 0,
              outside: 0,
            };
            if (!isClassIndex(label, st.classes)) {
              confusion.outside++;
            } else {
              confusion.counts[label][cls]++;
              confusion.items++;
              if (label !== cls && st.classes <= MAX_PAIR_CLASSES) {
                const key = `${label},${cls}`;
                let top = st.mistakes.get(key);
                if (!top) st.mistakes.set(key, (top = new TopK(counts.perPair)));
                if (top.wants(p)) top.add(p, ref());
              }
            }
          }
        } else {
          const v = (value as unknown[]).map(numeric);
          if (v.length !== st.dims) continue;
          st.items++;
          let sq = 0;
          for (let j = 0; j < v.length; j++) {
            sq += v[j] * v[j];
            if (st.dimMean.length) {
              const d = v[j] - st.dimMean[j];
              st.dimMean[j] += d / st.items;
              st.dimM2[j] += d * (v[j] - st.dimMean[j]);
            }
          }
          st.norm.add(Math.sqrt(sq));
        }
      }
    }
  }
  const outputs: OutputDigest[] = [...states.values()].map((st) => {
    if (st.kind === 'regression')
      return {
        kind: 'regression',
        name: st.name,
        values: st.values,
        dz: st.dz && st.dz.count ? st.dz : undefined,
        lowest: st.low.refs(),
        highest: st.high.refs(),
        worst: st.worst.refs(),
      };
    if (st.kind === 'classifier')
      return {
        kind: 'classifier',
        name: st.name,
        classes: st.classes,
        why: st.why,
        probabilities: st.probabilities,
        predicted: st.predicted,
        confidence: st.confidence,
        items: st.items,
        mostConfident: st.most.map((t) => t.refs()),
        leastConfident: st.least.map((t) => t.refs()),
        mistakes: new Map([...st.mistakes].map(([k, t]) => [k, t.refs()])),
      };
    return st;
  });
  return {
    items,
    failedItems,
    files: files.length,
    labelled,
    outputs,
    confusion: confusion && {
      output: confusion.output,
      classes: confusion.counts.length,
      counts: confusion.counts,
      items: confusion.items,
      outside: confusion.outside,
      sampled: false,
    },
    sample: sample.pred.length
      ? { output: sample.output, pred: sample.pred, label: sample.label, items: sample.seen }
      : undefined,
    carried: [...carried],
  };
}
