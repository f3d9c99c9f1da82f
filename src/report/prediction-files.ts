import { naturalCompare } from '../storage/natural-sort.js';
import { openStore } from '../storage/open.js';
import { OUTPUT_FOLDERS, PREDICTION_EXTENSIONS, type PredictionFormat } from '../storage/output-layout.js';
import type { Store } from '../storage/store.js';
import { readPredictions, type PredictionRows } from '../summarize/read-predictions.js';

/** The output as a store: a folder or URI is opened, a store is used as it is. */
export async function outputStore(output: string | Store): Promise<Store> {
  return typeof output === 'string' ? openStore(output) : output;
}

/** One predictions file of an output. */
export interface PredictionFile {
  readonly key: string;
  readonly format: PredictionFormat;
  readonly size: number;
}

/**
 * The predictions files of an output (`predictions/<id>.parquet|csv|jsonl`) in natural order, each with
 * its format from its extension; other files there are not predictions.
 *
 * @example for (const f of await reportPredictionFiles(await openStore('out'))) console.log(f.key);
 */
export async function reportPredictionFiles(store: Store): Promise<PredictionFile[]> {
  const files: PredictionFile[] = [];
  const folder = `${OUTPUT_FOLDERS.predictions}/`;
  for await (const o of store.list(OUTPUT_FOLDERS.predictions)) {
    const name = o.key.slice(folder.length);
    const ext = name.slice(name.lastIndexOf('.') + 1);
    if (o.key.startsWith(folder) && !name.includes('/') && Object.hasOwn(PREDICTION_EXTENSIONS, ext))
      files.push({ key: o.key, format: ext as PredictionFormat, size: o.size });
  }
  return files.sort((a, b) => naturalCompare(a.key, b.key));
}

/** The rows of one predictions file, its size checked against the listing. */
export async function readPredictionFile(store: Store, file: PredictionFile): Promise<PredictionRows> {
  return readPredictions(await store.get(file.key, { expectedSize: file.size }), file.format);
}

/**
 * The rows of each predictions file of an output, one file at a time, every k-th partition first
 * and then the ones between: a figure that stops reading once its sample is full still spans the run.
 *
 * @example for await (const rows of spreadPredictionFiles('out')) if (rows.length) console.log(rows[0]);
 */
export async function* spreadPredictionFiles(output: string | Store): AsyncGenerator<PredictionRows> {
  const store = await outputStore(output);
  const files = await reportPredictionFiles(store);
  const step = Math.max(1, Math.floor(files.length / 8));
  const order = [...Array(step).keys()].flatMap((o) => files.filter((_, i) => i % step === o));
  for (const file of order) yield await readPredictionFile(store, file);
}
