// What the int8 benchmarks of the AstroMAE-shaped model feed it and read back: the demo's synthetic
// galaxies as the model's two inputs, and the first output of every batch in one array.
import { makeGalaxies } from '../src/demo/galaxies.js';
import type { ModelSession } from '../src/model/session.js';
import type { Feeds } from '../src/optimize/int8.js';

/** `n` synthetic galaxies drawn with `seed`, as the AstroMAE-shaped model's image and magnitude inputs. */
export function galaxyFeeds(n: number, seed: number): Feeds {
  const g = makeGalaxies(n, seed);
  const mags = Float32Array.from(g.magnitudes.data as ArrayLike<number>);
  return { image: g.images, magnitude: { dtype: 'float32', shape: g.magnitudes.shape, data: mags } };
}

/** The session's first output over every batch, in order. */
export async function predictAll(s: ModelSession, batches: readonly Feeds[]): Promise<Float32Array> {
  const out: number[] = [];
  for (const f of batches) out.push(...(Object.values(await s.run(f))[0].data as Float32Array));
  return Float32Array.from(out);
}
