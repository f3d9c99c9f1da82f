import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { naturalCompare } from '../storage/natural-sort.js';
import { OUTPUT_FOLDERS, PREDICTION_EXTENSIONS, type PredictionFormat } from '../storage/output-layout.js';
import { readPredictions, type PredictionRows } from '../summarize/read-predictions.js';

/**
 * The rows of each predictions file of a local output, one file at a time, every k-th partition first
 * and then the ones between: a figure that stops reading once its sample is full still spans the run.
 *
 * @example for await (const rows of spreadPredictionFiles('out')) if (rows.length) console.log(rows[0]);
 */
export async function* spreadPredictionFiles(dir: string): AsyncGenerator<PredictionRows> {
  const folder = path.join(dir, OUTPUT_FOLDERS.predictions);
  const files = (await readdir(folder).catch(() => [] as string[])).sort(naturalCompare);
  const step = Math.max(1, Math.floor(files.length / 8));
  const order = [...Array(step).keys()].flatMap((o) => files.filter((_, i) => i % step === o));
  for (const file of order) {
    const ext = file.slice(file.lastIndexOf('.') + 1);
    if (!Object.hasOwn(PREDICTION_EXTENSIONS, ext)) continue;
    yield await readPredictions(
      new Uint8Array(await readFile(path.join(folder, file))),
      ext as PredictionFormat,
    );
  }
}
