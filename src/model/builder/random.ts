import { Random } from '../../tensor/random.js';

/**
 * A seeded pseudo-random source for model weights: mulberry32 for uniforms and Box-Muller for normals.
 * The same seed always gives the same sequence, so the same seed gives a byte-identical model. Fills
 * write straight into typed arrays because ViT-B has 86 M weights and per-weight objects would be slow.
 *
 * @example
 * const rng = new Rng(42);
 * const w = new Float32Array(192 * 576);
 * rng.fillNormal(w, 0.02);
 */
export class Rng {
  /** The same mulberry32 stream as the demo data's; this class only draws its normals differently (1 - u, in pairs). */
  private readonly uniforms: Random;
  /** Box-Muller makes normals in pairs; the second one waits here. */
  private spare: number | undefined;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.uniforms = new Random(seed);
  }

  /** A uniform number in [0, 1). @example new Rng(1).uniform() */
  uniform(): number {
    return this.uniforms.uniform();
  }

  /** A standard normal number. @example new Rng(1).normal() */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const [a, b] = this.pair();
    this.spare = b;
    return a;
  }

  /** Fills `out` with normals of the given mean and standard deviation. @example rng.fillNormal(w, 0.02) */
  fillNormal(out: Float32Array, std: number, mean = 0): Float32Array {
    let i = 0;
    if (this.spare !== undefined && out.length > 0) out[i++] = mean + std * this.normal();
    for (; i + 1 < out.length; i += 2) {
      // Inlined Box-Muller: no array per pair, since ViT-B draws 86 M of these.
      const r = std * Math.sqrt(-2 * Math.log(1 - this.uniform()));
      const theta = 2 * Math.PI * this.uniform();
      out[i] = mean + r * Math.cos(theta);
      out[i + 1] = mean + r * Math.sin(theta);
    }
    if (i < out.length) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fills `out` with uniforms in [lo, hi). @example rng.fillUniform(var, 0.5, 1.5) */
  fillUniform(out: Float32Array, lo: number, hi: number): Float32Array {
    const span = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + span * this.uniform();
    return out;
  }

  private pair(): [number, number] {
    // 1 - u keeps the logarithm's argument in (0, 1].
    const r = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    return [r * Math.cos(theta), r * Math.sin(theta)];
  }
}
