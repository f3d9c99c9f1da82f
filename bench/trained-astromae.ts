// The AstroMAE-shaped model with trained weights: scripts/bench/train_astromae.py (PyTorch, CPU) trains
// the same layers briefly on the demo's synthetic galaxies (makeGalaxies, seeds other than those the
// benches calibrate and measure on) and exports it to ONNX. Cached in the given folder: the first call
// takes the training time (~4 min), later ones reuse the file.
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeGalaxies, type GalaxyBatch } from '../src/demo/galaxies.js';

const SCRIPT = path.join(import.meta.dirname, '..', '..', 'scripts', 'bench', 'train_astromae.py');

/** What the training run reports (train.json). */
export interface TrainInfo {
  readonly steps: number;
  readonly seconds: number;
  readonly items: number;
  readonly val_rmse_before: number;
  readonly val_rmse_after: number;
  readonly val_z_std: number;
}

/**
 * The path of the trained model in `dir`, training it first when it is not there.
 *
 * @example const { model, info } = await trainedAstroMAE('/tmp/cai-bench/trained');
 */
export async function trainedAstroMAE(
  dir: string,
  o: { items?: number; seconds?: number } = {},
): Promise<{ model: string; info: TrainInfo }> {
  const model = path.join(dir, 'astromae-trained.onnx');
  const have = await stat(model).then(
    (s) => s.size > 0,
    () => false,
  );
  if (!have) {
    await mkdir(dir, { recursive: true });
    const items = o.items ?? 4096;
    const parts: GalaxyBatch[] = [];
    for (let i = 0; i < items; i += 512) parts.push(makeGalaxies(Math.min(512, items - i), 9000 + i / 512));
    const cat = (get: (p: (typeof parts)[number]) => ArrayLike<number>, name: string) =>
      writeFile(
        path.join(dir, name),
        new Uint8Array(Float32Array.from(parts.flatMap((p) => Array.from(get(p)))).buffer),
      );
    await cat((p) => p.images.data as Float32Array, 'images.f32');
    await cat((p) => p.magnitudes.data as Float64Array, 'magnitudes.f32');
    await cat((p) => p.redshifts.data as Float32Array, 'redshifts.f32');
    await promisify(execFile)('/usr/bin/python3', [SCRIPT, dir, '--seconds', String(o.seconds ?? 240)], {
      maxBuffer: 1 << 24,
    });
  }
  const info = JSON.parse(await readFile(path.join(dir, 'train.json'), 'utf8')) as TrainInfo;
  return { model, info };
}

if (process.argv[1] === import.meta.filename) {
  const dir = process.argv[2] ?? '/tmp/cai-bench-trained-astromae';
  process.stdout.write(
    `${JSON.stringify(await trainedAstroMAE(dir, { seconds: Number(process.argv[3] ?? 240) }))}\n`,
  );
}
