import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeGalaxies } from '../../src/demo/galaxies.js';
import { encodePtDataset } from '../../src/formats/writers/pt-writer.js';
import { parseJobSpec, type JobSpec } from '../../src/job/spec.js';
import { ASTROMAE_TINY, buildAstroMAE } from '../../src/model/zoo/astromae.js';

/** Tiny sweep data: the same kind of galaxies partitioned at two sizes, and a tiny AstroMAE-shaped model. */
export interface SweepData {
  readonly dir: string;
  /** 4 partitions x 16 galaxies. */
  readonly small: string;
  /** 2 partitions x 32 galaxies. */
  readonly large: string;
  readonly model: string;
  /** A job on `small` with one worker of one thread (the machine has 2 shared cores). */
  readonly job: JobSpec;
}

async function writePartitions(dir: string, partitions: number, items: number, seed: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let p = 1; p <= partitions; p++) {
    const g = makeGalaxies(items, seed + p);
    const redshift = { dtype: 'float32' as const, shape: [items], data: new Float32Array(items).fill(0.1) };
    await writeFile(
      path.join(dir, `${p}.pt`),
      encodePtDataset([g.images, g.magnitudes, redshift], String(p)),
    );
  }
}

let shared: Promise<SweepData> | undefined;

/**
 * Makes the sweep data once per test process, with the real writers: `.pt` partitions from
 * `encodePtDataset` and an ONNX model from `buildAstroMAE(ASTROMAE_TINY)` (about 54 k weights, so a run
 * is dominated by process start-up, not inference).
 */
export function sweepData(): Promise<SweepData> {
  shared ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-sweep-run-'));
    const small = path.join(dir, 'small');
    const large = path.join(dir, 'large');
    await writePartitions(small, 4, 16, 100);
    await writePartitions(large, 2, 32, 200);
    const model = path.join(dir, 'astromae-tiny.onnx');
    await writeFile(model, buildAstroMAE(ASTROMAE_TINY));
    const job = parseJobSpec({
      input: small,
      model,
      output: path.join(dir, 'bench'),
      inputs: { image: 0, magnitude: 1 },
      label: 2,
      concurrency: 1,
      threads: 1,
      predictionsFormat: 'jsonl',
    });
    return { dir, small, large, model, job };
  })();
  return shared;
}
