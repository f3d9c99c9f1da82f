// The accuracy report of `cai optimize`: the fp32 model and the optimized one on the same held-out
// items, per output (max, mean and RMS absolute difference; the RMS difference over the fp32
// predictions' standard deviation; argmax agreement for class scores), the job's metrics side by side
// when labels exist, and the time each took on those batches (interleaved, one batch each in turn).
import type { ModelSession } from '../model/session.js';
import { classificationMetrics, regressionMetrics, type Metrics } from '../summarize/metrics.js';
import type { ItemBatches } from './items.js';

/** How one output of the optimized model differs from fp32's. */
export interface OutputComparison {
  readonly name: string;
  /** Values per item (1 for a regression output, the class count for scores). */
  readonly width: number;
  readonly max_abs_diff: number;
  readonly mean_abs_diff: number;
  readonly rms_diff: number;
  /** Standard deviation of the fp32 predictions. */
  readonly fp32_std: number;
  /** rms_diff / fp32_std: the error as a share of the predictions' spread. */
  readonly relative_error: number;
  /** Share of items whose largest score is the same class (outputs with more than one value an item). */
  readonly argmax_agreement?: number;
}

/** The comparison over the held-out items. */
export interface Comparison {
  readonly items: number;
  readonly outputs: readonly OutputComparison[];
  /** The job's metrics for the first output, when the held-out items have labels. */
  readonly metrics?: { readonly fp32: Metrics; readonly optimized: Metrics };
  /** Milliseconds per item on the held-out batches, and the ratio (fp32 / optimized). */
  readonly ms_per_item: { readonly fp32: number; readonly optimized: number; readonly speedup: number };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

/**
 * Runs both models over the held-out batches and compares their outputs.
 *
 * @example const c = await compareModels(fp32, optimized, heldOut);
 */
export async function compareModels(
  fp32: ModelSession,
  optimized: ModelSession,
  heldOut: ItemBatches,
): Promise<Comparison> {
  const names = fp32.outputs.map((o) => o.name);
  const a: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const b: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  let tA = 0;
  let tB = 0;
  // One untimed batch each: first-call allocations are not the model's speed.
  if (heldOut.batches.length > 1) {
    await fp32.run(heldOut.batches[0]);
    await optimized.run(heldOut.batches[0]);
  }
  for (const feeds of heldOut.batches) {
    const [ra, ta] = await timed(() => fp32.run(feeds));
    const [rb, tb] = await timed(() => optimized.run(feeds));
    tA += ta;
    tB += tb;
    for (const n of names) {
      for (const v of Array.from(ra[n].data as ArrayLike<number>)) a[n].push(Number(v));
      for (const v of Array.from((rb[n]?.data ?? []) as ArrayLike<number>)) b[n].push(Number(v));
    }
  }
  const outputs = names.map((name) => compareOutput(name, a[name], b[name], heldOut.items));
  let metrics: Comparison['metrics'];
  if (heldOut.labels && outputs.length) {
    const { name, width } = outputs[0];
    const score = (v: number[]) =>
      width === 1
        ? regressionMetrics(v, heldOut.labels ?? [])
        : classificationMetrics(v, width, heldOut.labels ?? []);
    metrics = { fp32: score(a[name]), optimized: score(b[name]) };
  }
  return {
    items: heldOut.items,
    outputs,
    metrics,
    ms_per_item: { fp32: tA / heldOut.items, optimized: tB / heldOut.items, speedup: tA / tB },
  };
}

function compareOutput(name: string, a: number[], b: number[], items: number): OutputComparison {
  const width = Math.max(1, Math.round(a.length / Math.max(1, items)));
  let max = 0;
  let abs = 0;
  let sq = 0;
  let mean = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - (b[i] ?? NaN));
    if (!(d <= max)) max = d;
    abs += d;
    sq += d * d;
    mean += a[i];
  }
  const n = Math.max(1, a.length);
  mean /= n;
  let variance = 0;
  for (const v of a) variance += (v - mean) ** 2;
  const std = Math.sqrt(variance / n);
  const rms = Math.sqrt(sq / n);
  const out: OutputComparison = {
    name,
    width,
    max_abs_diff: max,
    mean_abs_diff: abs / n,
    rms_diff: rms,
    fp32_std: std,
    relative_error: std > 0 ? rms / std : rms === 0 ? 0 : Infinity,
  };
  if (width === 1) return out;
  let same = 0;
  for (let i = 0; i < items; i++) if (argmax(a, i * width, width) === argmax(b, i * width, width)) same++;
  return { ...out, argmax_agreement: same / items };
}

function argmax(v: readonly number[], start: number, width: number): number {
  let best = start;
  for (let j = start + 1; j < start + width; j++) if (v[j] > v[best]) best = j;
  return best - start;
}
