import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { Random } from '../../src/tensor/random.js';
import { encodePtDataset } from '../../src/formats/writers/pt-writer.js';
import { runJob } from '../../src/run/run.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { GraphBuilder } from '../../src/model/builder/index.js';
import { writeReport, type ReportResult } from '../../src/report/report.js';
import { tensor } from '../../src/tensor/tensor.js';

/** What a classification fixture looks like: classes, partitions, items, which labels are wrong. */
export interface ClassificationOptions {
  readonly classes: number;
  readonly partitions: number;
  readonly itemsPerPartition: number;
  readonly format: 'parquet' | 'jsonl';
  /** Every this-many-th item gets the label `classes` (no class of the model). */
  readonly badLabelEvery?: number;
  readonly seed: number;
}

/** A finished classification run, its report, and each item's true and predicted class read back here. */
export interface ClassificationRun {
  readonly dir: string;
  readonly report: ReportResult;
  readonly html: string;
  /** One entry per labelled, predicted item: [true class, argmax of the logits]. */
  readonly pairs: readonly [number, number][];
  /** Removes the data, model and output. */
  remove(): Promise<void>;
}

/**
 * A real classification job: a linear model (logits = x W, W the identity) in onnxruntime over `.pt`
 * partitions of class features `x = 2.5 onehot(label) + noise`. Class c's noise grows with c, and an
 * even class also leans towards the next class, so some classes and pairs are clearly worse than others.
 */
export async function classificationRun(o: ClassificationOptions): Promise<ClassificationRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-classes-'));
  const data = path.join(dir, 'data');
  await mkdir(data);
  const k = o.classes;
  const b = new GraphBuilder({ name: 'classes', seed: o.seed });
  const x = b.input('x', 'float32', ['N', k]);
  const identity = new Float32Array(k * k);
  for (let i = 0; i < k; i++) identity[i * k + i] = 1;
  const w = b.initializer('w', identity, [k, k]);
  b.node('MatMul', [x, w], {}, { output: 'logits' });
  b.output('logits', 'float32', ['N', k]);
  const model = path.join(dir, 'classes.onnx');
  await writeFile(model, b.toModelBytes());

  const rng = new Random(o.seed);
  let item = 0;
  for (let p = 1; p <= o.partitions; p++) {
    const n = o.itemsPerPartition;
    const features = new Float32Array(n * k);
    const labels = new BigInt64Array(n);
    for (let i = 0; i < n; i++, item++) {
      const bad = o.badLabelEvery !== undefined && item % o.badLabelEvery === 0;
      const c = Math.floor(rng.uniform() * k);
      const sigma = 0.4 + (1.2 * c) / k;
      for (let j = 0; j < k; j++) features[i * k + j] = sigma * rng.normal();
      features[i * k + c] += 2.5;
      if (c % 2 === 0) features[i * k + ((c + 1) % k)] += 1.2;
      labels[i] = BigInt(bad ? k : c);
    }
    await writeFile(
      path.join(data, `${p}.pt`),
      encodePtDataset([tensor('float32', [n, k], features), tensor('int64', [n], labels)], String(p)),
    );
  }
  const job = parseJobSpec({
    input: data,
    model,
    output: path.join(dir, 'out'),
    inputs: { x: 0 },
    label: 1,
    batchSize: 64,
    concurrency: 1,
    threads: 1,
    predictionsFormat: o.format,
  });
  await runJob(job, { retryBaseMs: 10 });
  const report = await writeReport(job.output);
  return {
    dir: job.output,
    report,
    html: await readFile(report.html, 'utf8'),
    pairs: await readPairs(job.output, o.format),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

const argmax = (v: readonly number[]) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

/** Reads every predictions file with the format's own reader (hyparquet, JSON.parse), not CAI's. */
async function readPairs(dir: string, format: 'parquet' | 'jsonl'): Promise<[number, number][]> {
  const folder = path.join(dir, 'predictions');
  const pairs: [number, number][] = [];
  for (const file of await readdir(folder)) {
    const bytes = await readFile(path.join(folder, file));
    const rows =
      format === 'parquet'
        ? ((await parquetReadObjects({
            file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
          })) as Record<string, unknown>[])
        : bytes
            .toString('utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of rows) pairs.push([Number(r.label), argmax(r.logits as number[])]);
  }
  return pairs;
}

/**
 * The confusion matrix's cells as the page shows them: `cells.get('3,5')` is the text of true 3, predicted 5.
 * @example matrixCells(html).get('0,0')
 */
export function matrixCells(html: string): Map<string, string> {
  const cells = new Map<string, string>();
  for (const m of html.matchAll(/<td [^>]*data-true="(\d+)" data-pred="(\d+)"[^>]*>([^<]*)<\/td>/g))
    cells.set(`${m[1]},${m[2]}`, m[3]);
  return cells;
}

/** The body rows of the table whose caption starts with `caption`, as cell texts. */
export function tableRows(html: string, caption: string): string[][] {
  const start = html.indexOf(`<caption>${caption}`);
  if (start < 0) throw new Error(`no table "${caption}"`);
  const table = html.slice(start, html.indexOf('</table>', start));
  const body = table.slice(table.indexOf('<tbody>'));
  return [...body.matchAll(/<tr>(.*?)<\/tr>/gs)].map((r) =>
    [...r[1].matchAll(/<t[dh][^>]*>([^<]*)<\/t[dh]>/g)].map((c) => c[1]),
  );
}
