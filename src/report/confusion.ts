import { isClassIndex } from '../summarize/metrics.js';
import { outputColumn } from '../summarize/read-predictions.js';
import { spreadPredictionFiles } from './prediction-files.js';
import { escapeHtml, htmlTable, num, type Table } from './table.js';

/** True class against predicted class (the highest score) over every labelled item of a run. */
export interface Confusion {
  /** The model output holding the class scores. */
  readonly output: string;
  /** Number of classes: the width of the score output. */
  readonly classes: number;
  /** `counts[t][p]`: items of true class `t` predicted as `p`. */
  readonly counts: readonly (readonly number[])[];
  /** Items counted (labelled, predicted, label a class of the model). */
  readonly items: number;
  /** Labelled items whose label is not an integer in 0..classes-1, left out of the counts. */
  readonly outside: number;
  /** True when counting stopped at the item limit: the counts are a sample of the run. */
  readonly sampled: boolean;
}

/** One class's precision and recall; NaN where nothing was predicted as it or no item had it. */
export interface ClassStats {
  readonly cls: number;
  /** Items whose true class this is. */
  readonly items: number;
  /** Items predicted as this class. */
  readonly predicted: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
}

/** Up to this many classes the report shows the whole matrix; above, the worst pairs and classes. */
export const MATRIX_MAX_CLASSES = 20;

/** Index of the highest score; the first one on ties. */
function argmax(scores: readonly unknown[]): number {
  let best = -1;
  let top = -Infinity;
  for (let j = 0; j < scores.length; j++) {
    const v = scores[j];
    if (typeof v === 'number' && v > top) {
      top = v;
      best = j;
    }
  }
  return best;
}

/**
 * Counts true against predicted class over the items of a finished classification run (an output of
 * several scores per item and an integer label), reading each predictions file once: every item, or up
 * to `limit` from partitions spread over the run (so that a huge run's report reads a part of it).
 * Undefined when the run has no label or its output is one number per item.
 *
 * @example const c = await confusionCounts('out'); c?.counts[3][5] // items of class 3 predicted as 5
 */
export async function confusionCounts(dir: string, limit = 1_000_000): Promise<Confusion | undefined> {
  let output: string | undefined;
  let counts: number[][] | undefined;
  let items = 0;
  let outside = 0;
  let sampled = false;
  // Spread over the run: a sample cut short still spans it.
  for await (const rows of spreadPredictionFiles(dir)) {
    if (items >= limit) {
      sampled = true;
      break;
    }
    if (rows.length === 0) continue;
    if (!('label' in rows[0])) return undefined;
    output ??= outputColumn(rows[0]);
    if (!output) return undefined;
    for (const r of rows) {
      if (items >= limit) {
        sampled = true;
        break;
      }
      const scores = r[output];
      // Failed items have no scores; unlabelled items have a null label.
      if (!Array.isArray(scores) || r.label === null || r.label === undefined) continue;
      if (!counts) {
        if (scores.length < 2) return undefined;
        counts = Array.from({ length: scores.length }, () => new Array<number>(scores.length).fill(0));
      }
      const label = Number(Array.isArray(r.label) ? r.label[0] : r.label);
      const predicted = argmax(scores as unknown[]);
      if (!isClassIndex(label, counts.length) || predicted < 0) {
        outside++;
        continue;
      }
      counts[label][predicted]++;
      items++;
    }
  }
  return output && counts ? { output, classes: counts.length, counts, items, outside, sampled } : undefined;
}

/**
 * Precision, recall and F1 of every class.
 * @example classStats(c).filter((s) => s.recall < 0.5)
 */
export function classStats(c: Confusion): ClassStats[] {
  return c.counts.map((row, cls) => {
    const items = row.reduce((s, v) => s + v, 0);
    const predicted = c.counts.reduce((s, r) => s + r[cls], 0);
    const hit = row[cls];
    const precision = predicted ? hit / predicted : NaN;
    const recall = items ? hit / items : NaN;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : hit === 0 ? 0 : NaN;
    return { cls, items, predicted, precision, recall, f1 };
  });
}

/**
 * The `limit` largest off-diagonal cells: which true class is most often taken for which other class.
 * Ties go to the lower true class, then the lower predicted class.
 * @example mostConfused(c, 10)[0] // { truth: 7, predicted: 1, count: 42 }
 */
export function mostConfused(
  c: Confusion,
  limit: number,
): { truth: number; predicted: number; count: number }[] {
  const pairs: { truth: number; predicted: number; count: number }[] = [];
  c.counts.forEach((row, truth) =>
    row.forEach((count, predicted) => {
      if (truth !== predicted && count > 0) pairs.push({ truth, predicted, count });
    }),
  );
  pairs.sort((a, b) => b.count - a.count || a.truth - b.truth || a.predicted - b.predicted);
  return pairs.slice(0, limit);
}

const pct = (v: number, digits = 1) => (Number.isFinite(v) ? `${(v * 100).toFixed(digits)}%` : 'n/a');

const sampleNote = (c: Confusion) =>
  c.sampled ? `; counted over a sample of ${num(c.items)} items from partitions spread over the run` : '';

/**
 * The full matrix as a table: counts, each cell shaded by its share of the true class's items, with each
 * class's recall (right) and precision (bottom) in whole percent so that 20 classes fit the page.
 */
function matrixTable(c: Confusion, stats: readonly ClassStats[]): string {
  const classes = [...Array(c.classes).keys()];
  const head = `<thead><tr><th>True \\ pred.</th>${classes.map((p) => `<th class="num">${p}</th>`).join('')}<th class="num">Items</th><th class="num">Recall</th></tr></thead>`;
  const rows = c.counts.map((row, t) => {
    const total = stats[t].items;
    const cells = row.map((count, p) => {
      const share = total ? count / total : 0;
      // Row-normalised shading, so that a small class's errors show as plainly as a large one's.
      const ink = share > 0.55 ? '#fff' : '#222';
      return `<td class="num cell" data-true="${t}" data-pred="${p}" style="background:rgba(31,119,180,${share.toFixed(3)});color:${ink}" title="true ${t}, predicted ${p}: ${count} (${pct(share)} of class ${t})">${num(count)}</td>`;
    });
    return `<tr><th class="num">${t}</th>${cells.join('')}<td class="num">${num(total)}</td><td class="num">${pct(stats[t].recall, 0)}</td></tr>`;
  });
  const precision = `<tr><th>Precision</th>${stats.map((s) => `<td class="num">${pct(s.precision, 0)}</td>`).join('')}<td></td><td></td></tr>`;
  const caption = `<caption>Confusion matrix: rows are true classes, columns predicted classes (highest ${escapeHtml(c.output)} score); shading is the share of the row${sampleNote(c)}</caption>`;
  return `<table class="confusion">${caption}${head}<tbody>${rows.join('\n')}\n${precision}</tbody></table>`;
}

/**
 * The `top` commonest mistakes as a table (true class, predicted class, items, share of the true class),
 * for the report and for the terminal.
 *
 * @example console.log(textTable(mostConfusedTable(await confusionCounts('out'), 5)));
 */
export function mostConfusedTable(
  c: Confusion,
  top: number,
  stats: readonly ClassStats[] = classStats(c),
): Table {
  const pairs = mostConfused(c, top);
  return {
    title: `Most confused classes (the ${pairs.length} commonest mistakes; ${num(c.items)} items, ${c.classes} classes)${sampleNote(c)}`,
    columns: ['True class', 'Predicted as', 'Items', 'Share of true class'],
    rows: pairs.map((p) => [
      String(p.truth),
      String(p.predicted),
      num(p.count),
      pct(p.count / stats[p.truth].items),
    ]),
    leftAlign: [],
  };
}

/**
 * "How good" for classes: the confusion matrix up to {@link MATRIX_MAX_CLASSES} classes, above that the
 * most confused pairs and the classes with the lowest F1 (precision and recall).
 *
 * @example const html = confusionSection(await confusionCounts('out'));
 */
export function confusionSection(c: Confusion, top = 10): string {
  const stats = classStats(c);
  const note =
    c.outside > 0
      ? `<p class="notes">${num(c.outside)} labelled items have a label that is not a class of the model (an integer 0 to ${c.classes - 1}) and are not counted.</p>`
      : '';
  if (c.classes <= MATRIX_MAX_CLASSES)
    return `<div class="confusion-summary" id="confusion">${matrixTable(c, stats)}${note}</div>`;
  const pairTable = htmlTable(mostConfusedTable(c, top, stats));
  const worst = stats
    .filter((s) => s.items > 0)
    .sort((a, b) => a.f1 - b.f1 || b.items - a.items || a.cls - b.cls)
    .slice(0, top);
  const worstTable = htmlTable({
    title: `Worst classes by F1 (${worst.length} of ${c.classes})`,
    columns: ['Class', 'Items', 'Predicted as it', 'Precision', 'Recall', 'F1'],
    rows: worst.map((s) => [
      String(s.cls),
      num(s.items),
      num(s.predicted),
      pct(s.precision),
      pct(s.recall),
      Number.isFinite(s.f1) ? s.f1.toFixed(3) : 'n/a',
    ]),
    leftAlign: [],
  });
  return `<div class="confusion-summary" id="confusion">${pairTable}${worstTable}${note}</div>`;
}
