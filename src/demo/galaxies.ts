import type { Tensor } from '../tensor/tensor.js';
import { Random } from '../tensor/random.js';

/** SDSS bands, in the order of the image channels and magnitudes. */
export const BANDS = ['u', 'g', 'r', 'i', 'z'] as const;
/** Cutout side in pixels (CAI center-crops SDSS's 64x64 cutouts to 32x32). */
export const CUTOUT = 32;

/** A batch of synthetic galaxies in CAI's layout (before labels are known). */
export interface GalaxyBatch {
  /** float32 [n, 5, 32, 32]: per-band surface brightness with sky noise. */
  readonly images: Tensor<'float32'>;
  /** float64 [n, 5]: ugriz magnitudes, as CAI stores them. */
  readonly magnitudes: Tensor<'float64'>;
  /** float32 [n]: the hidden redshift each galaxy was drawn at (for training a model on them). */
  readonly redshifts: Tensor<'float32'>;
}

/**
 * Synthetic SDSS-like cutouts: an elliptical exponential-profile galaxy near the centre, whose colour
 * and size follow a hidden redshift, with sky noise; magnitudes from the same fluxes with photometric
 * scatter. Deterministic for a seed.
 *
 * @example const batch = makeGalaxies(512, 7);
 */
export function makeGalaxies(n: number, seed: number): GalaxyBatch {
  const rng = new Random(seed);
  const px = CUTOUT * CUTOUT;
  const images = new Float32Array(n * BANDS.length * px);
  const mags = new Float64Array(n * BANDS.length);
  const redshifts = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const z = Math.max(0.01, Math.min(0.8, 0.12 + 0.12 * rng.normal() ** 2 + 0.05 * rng.uniform()));
    redshifts[k] = z;
    const brightness = rng.between(16, 19) + 2.5 * Math.log10(1 + 8 * z);
    const radius = Math.max(1.2, rng.between(2, 5) / (1 + 2 * z));
    const q = rng.between(0.4, 1);
    const angle = rng.between(0, Math.PI);
    const cx = CUTOUT / 2 + rng.normal() * 0.7;
    const cy = CUTOUT / 2 + rng.normal() * 0.7;
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    for (let b = 0; b < BANDS.length; b++) {
      // Redder at higher redshift: the 4000 A break moves from g towards r and i.
      const colour = [1.6, 0.7, 0, -0.3, -0.45][b] * (1 + 3 * z);
      const mag = brightness + colour + 0.03 * rng.normal();
      mags[k * BANDS.length + b] = mag;
      const flux = 10 ** (-0.4 * (mag - 22.5));
      const norm = flux / (2 * Math.PI * radius * radius * q);
      const sky = 0.02 * (1 + 0.5 * (b === 0 ? 1 : 0));
      const base = (k * BANDS.length + b) * px;
      for (let y = 0; y < CUTOUT; y++) {
        for (let x = 0; x < CUTOUT; x++) {
          const dx = x - cx;
          const dy = y - cy;
          const u = (dx * cos + dy * sin) / radius;
          const v = (-dx * sin + dy * cos) / (radius * q);
          images[base + y * CUTOUT + x] = norm * Math.exp(-Math.sqrt(u * u + v * v)) + sky * rng.normal();
        }
      }
    }
  }
  return {
    images: { dtype: 'float32', shape: [n, BANDS.length, CUTOUT, CUTOUT], data: images },
    magnitudes: { dtype: 'float64', shape: [n, BANDS.length], data: mags },
    redshifts: { dtype: 'float32', shape: [n], data: redshifts },
  };
}
