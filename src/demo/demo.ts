import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodePtDataset } from '../formats/writers/pt-writer.js';
import { parseJobSpec, type JobSpec } from '../job/spec.js';
import { loadModel } from '../model/session.js';
import { buildAstroMAE } from '../model/zoo/astromae.js';
import { cast, sliceRows, type Tensor } from '../tensor/tensor.js';
import { makeGalaxies } from './galaxies.js';
import { Random } from '../tensor/random.js';

/** Size and place of the embedded demo. */
export interface DemoOptions {
  /** Folder for `data/`, `model/` and `out/`. */
  readonly dir: string;
  readonly partitions?: number;
  readonly itemsPerPartition?: number;
  readonly seed?: number;
  /** Label noise: sigma of dz, so the demo's NMAD should come out near 0.6745 x 1.4826 x this. */
  readonly labelNoise?: number;
  /** Told after each partition is written (labelling runs the model, so a big demo takes a while). */
  readonly onPartition?: (written: number, partitions: number) => void;
}

/** Defaults of {@link DemoOptions}: about 4,000 galaxies in 8 CAI partitions. */
export const DEMO_DEFAULTS = Object.freeze({
  partitions: 8,
  itemsPerPartition: 500,
  seed: 2501,
  labelNoise: 0.004,
});

/** What {@link makeDemo} made. */
export interface Demo {
  readonly data: string;
  readonly model: string;
  readonly output: string;
  readonly items: number;
  /** The job that runs the demo, ready for `runJob`. */
  readonly job: JobSpec;
}

/**
 * Makes the embedded demo with no network: an AstroMAE-shaped ONNX model with deterministic weights,
 * and synthetic SDSS-like galaxies in CAI's partition layout (`torch.save(TensorDataset(images f32
 * [n,5,32,32], magnitudes f64 [n,5], redshift f32 [n]))`, named `1.pt`...). The redshift labels are the
 * model's own predictions plus small noise in dz, so the demo's metrics show whether every prediction
 * landed on its own item: a shuffled or lost row shows up as a large NMAD and outlier fraction.
 *
 * @example const demo = await makeDemo({ dir: 'cai-demo' }); await runJob(demo.job);
 */
export async function makeDemo(options: DemoOptions): Promise<Demo> {
  const o = { ...DEMO_DEFAULTS, ...options };
  const dir = path.resolve(o.dir);
  const data = path.join(dir, 'data');
  const modelPath = path.join(dir, 'model', 'astromae.onnx');
  const output = path.join(dir, 'out');
  const items = o.partitions * o.itemsPerPartition;
  const stamp = JSON.stringify({
    v: 1,
    partitions: o.partitions,
    items: o.itemsPerPartition,
    seed: o.seed,
    noise: o.labelNoise,
  });
  const job = parseJobSpec({
    input: data,
    model: modelPath,
    output,
    inputs: { image: 0, magnitude: 1 },
    label: 2,
    batchSize: 128,
  });
  const existing = await readFile(path.join(dir, 'demo.json'), 'utf8').catch(() => '');
  if (existing === stamp) return { data, model: modelPath, output, items, job };

  await rm(data, { recursive: true, force: true });
  await mkdir(data, { recursive: true });
  await mkdir(path.dirname(modelPath), { recursive: true });
  await writeFile(modelPath, buildAstroMAE());
  const model = await loadModel(modelPath, { threads: os.availableParallelism() });
  const noise = new Random(o.seed ^ 0x5eed);
  try {
    for (let p = 1; p <= o.partitions; p++) {
      const g = makeGalaxies(o.itemsPerPartition, o.seed * 1000 + p);
      const mags32 = cast(g.magnitudes, 'float32');
      const redshift = new Float32Array(o.itemsPerPartition);
      for (let start = 0; start < o.itemsPerPartition; start += 256) {
        const end = Math.min(o.itemsPerPartition, start + 256);
        const out = await model.run({
          image: sliceRows(g.images, start, end),
          magnitude: sliceRows(mags32, start, end),
        });
        const pred = out.redshift.data as Float32Array;
        for (let i = 0; i < end - start; i++) {
          // pred = true + dz (1 + true)  =>  true = (pred - dz) / (1 + dz), with dz ~ N(0, labelNoise).
          const dz = o.labelNoise * noise.normal();
          redshift[start + i] = (pred[i] - dz) / (1 + dz);
        }
      }
      const label: Tensor<'float32'> = { dtype: 'float32', shape: [o.itemsPerPartition], data: redshift };
      await writeFile(
        path.join(data, `${p}.pt`),
        encodePtDataset([g.images, g.magnitudes, label], String(p)),
      );
      o.onPartition?.(p, o.partitions);
    }
  } finally {
    await model.release();
  }
  await writeFile(path.join(dir, 'demo.json'), stamp);
  return { data, model: modelPath, output, items, job };
}
