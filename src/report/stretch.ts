import type { Tensor } from '../tensor/tensor.js';

/** One item's pixels made viewable: 8-bit RGB, and a sentence saying how. */
export interface Rgb {
  readonly width: number;
  readonly height: number;
  /** `width * height * 3` bytes, row by row. */
  readonly data: Uint8Array;
  readonly how: string;
}

/** Planes of one item: `bands` images of `height x width`, as numbers. */
interface Planes {
  readonly bands: number;
  readonly height: number;
  readonly width: number;
  at(band: number, y: number, x: number): number;
}

/**
 * How an item's array lays out as images: [H, W], [H, W, C] with C of 1, 3 or 4 (pixels), or [C, H, W]
 * with up to 16 bands (cutouts); undefined for anything that is not image-like (H and W at least 8).
 */
function planes(
  shape: readonly number[],
  data: ArrayLike<number | bigint>,
  offset: number,
): Planes | undefined {
  const v = (i: number) => Number(data[offset + i]);
  if (shape.length === 2 && shape[0] >= 8 && shape[1] >= 8)
    return { bands: 1, height: shape[0], width: shape[1], at: (_b, y, x) => v(y * shape[1] + x) };
  if (shape.length !== 3) return undefined;
  const [a, b, c] = shape;
  if ([1, 3, 4].includes(c) && a >= 8 && b >= 8 && !(a <= 16 && c > a))
    return { bands: c, height: a, width: b, at: (band, y, x) => v((y * b + x) * c + band) };
  if (a <= 16 && b >= 8 && c >= 8)
    return { bands: a, height: b, width: c, at: (band, y, x) => v((band * b + y) * c + x) };
  return undefined;
}

/** Whether one item of a column (a tensor of `[items, ...]`) can be drawn as an image. */
export function isImageLike(column: Tensor): boolean {
  return planes(column.shape.slice(1), [], 0) !== undefined;
}

function band(p: Planes, b: number): Float64Array {
  const out = new Float64Array(p.height * p.width);
  for (let y = 0; y < p.height; y++) for (let x = 0; x < p.width; x++) out[y * p.width + x] = p.at(b, y, x);
  return out;
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]
    : 0;
}

const finiteSorted = (a: Float64Array) => Float64Array.from(a.filter((v) => Number.isFinite(v))).sort();

/**
 * IRAF's zscale limits (as astropy's ZScaleInterval): a line fitted to the sorted pixel values with
 * iterative 2.5-sigma rejection, its slope divided by the contrast (0.25) around the median.
 */
export function zscale(values: Float64Array, contrast = 0.25): [number, number] {
  const step = Math.max(1, Math.floor(values.length / 1000));
  const s = finiteSorted(values.filter((_, i) => i % step === 0));
  const n = s.length;
  if (n === 0) return [0, 1];
  const median = percentile(s, 0.5);
  let keep = new Uint8Array(n).fill(1);
  let slope = 0;
  for (let iter = 0; iter < 5; iter++) {
    let sx = 0,
      sy = 0,
      sxx = 0,
      sxy = 0,
      m = 0;
    for (let i = 0; i < n; i++) {
      if (!keep[i]) continue;
      const x = i - n / 2;
      sx += x;
      sy += s[i];
      sxx += x * x;
      sxy += x * s[i];
      m++;
    }
    if (m < Math.max(5, n / 2)) break;
    const denom = m * sxx - sx * sx;
    slope = denom ? (m * sxy - sx * sy) / denom : 0;
    const icept = (sy - slope * sx) / m;
    let ss = 0;
    for (let i = 0; i < n; i++) if (keep[i]) ss += (s[i] - (icept + slope * (i - n / 2))) ** 2;
    const sigma = Math.sqrt(ss / m);
    const next = new Uint8Array(n);
    let changed = false;
    for (let i = 0; i < n; i++) {
      next[i] = Math.abs(s[i] - (icept + slope * (i - n / 2))) <= 2.5 * sigma ? 1 : 0;
      if (next[i] !== keep[i]) changed = true;
    }
    keep = next;
    if (!changed) break;
  }
  const z1 = Math.max(s[0], median - ((n / 2) * slope) / contrast);
  const z2 = Math.min(s[n - 1], median + ((n / 2) * slope) / contrast);
  return z2 > z1 ? [z1, z2] : [s[0], s[n - 1] > s[0] ? s[n - 1] : s[0] + 1];
}

/**
 * An asinh RGB of three bands after Lupton et al. (2004, PASP 116, 133), as astronomers view multi-band
 * cutouts: each band's sky (its median) subtracted, one asinh stretch of the mean intensity I applied to
 * all three (each band scaled by asinh(I / soft) / I), so colours are kept; normalised so the 99.5th
 * percentile of I is white, with saturated pixels scaled down as a whole rather than clipped per band.
 */
function lupton(
  r: Float64Array,
  g: Float64Array,
  b: Float64Array,
  width: number,
  height: number,
): Uint8Array {
  const sub = (a: Float64Array) => {
    const m = percentile(finiteSorted(a), 0.5);
    return a.map((v) => (Number.isFinite(v) ? v - m : 0));
  };
  const [R, G, B] = [sub(r), sub(g), sub(b)];
  const I = R.map((v, i) => (v + G[i] + B[i]) / 3);
  const ref = Math.max(percentile(finiteSorted(I), 0.995), 1e-12);
  const soft = 0.05 * ref;
  const norm = Math.asinh(ref / soft);
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < I.length; i++) {
    const f = I[i] > 0 ? Math.asinh(I[i] / soft) / norm / I[i] : 0;
    let rgb = [R[i] * f, G[i] * f, B[i] * f].map((v) => Math.max(0, v));
    const top = Math.max(...rgb);
    if (top > 1) rgb = rgb.map((v) => v / top);
    out[i * 3] = Math.round(rgb[0] * 255);
    out[i * 3 + 1] = Math.round(rgb[1] * 255);
    out[i * 3 + 2] = Math.round(rgb[2] * 255);
  }
  return out;
}

/**
 * One item of an image-like column (`column` holds `[items, ...]`; `row` picks the item) as 8-bit RGB:
 * 8-bit pixels as they are (RGB, or grey); three or more bands of numbers (FITS, HDF5 or tensor cutouts)
 * as a Lupton asinh RGB of three of them (the reddest three but one for five-band ugriz: i, r, g); one or
 * two bands as grey, the first band with IRAF's zscale limits. Undefined when the item is not image-like.
 *
 * @example const rgb = itemRgb(batch.rows.columns[0], 0); await sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } }).png().toFile('x.png');
 */
export function itemRgb(column: Tensor, row: number): Rgb | undefined {
  const shape = column.shape.slice(1);
  const size = shape.reduce((a, b) => a * b, 1);
  const p = planes(shape, column.data as ArrayLike<number | bigint>, row * size);
  if (!p) return undefined;
  const { width, height } = p;
  const out = new Uint8Array(width * height * 3);
  if (column.dtype === 'uint8') {
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++)
        for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = p.at(p.bands >= 3 ? c : 0, y, x);
    return { width, height, data: out, how: p.bands >= 3 ? '8-bit RGB as stored' : '8-bit grey as stored' };
  }
  if (p.bands >= 3) {
    const pick = p.bands === 3 ? [2, 1, 0] : [p.bands - 2, p.bands - 3, p.bands - 4];
    const names = p.bands === 5 ? 'i, r, g (bands 3, 2, 1 of ugriz)' : `bands ${pick.join(', ')}`;
    return {
      width,
      height,
      data: lupton(band(p, pick[0]), band(p, pick[1]), band(p, pick[2]), width, height),
      how: `Lupton asinh RGB of ${names} as red, green, blue`,
    };
  }
  const values = band(p, 0);
  const [z1, z2] = zscale(values);
  for (let i = 0; i < values.length; i++) {
    const v = Number.isFinite(values[i]) ? Math.round((255 * (values[i] - z1)) / (z2 - z1)) : 0;
    out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = Math.max(0, Math.min(255, v));
  }
  return {
    width,
    height,
    data: out,
    how: `band 0 in grey, IRAF zscale limits${p.bands > 1 ? ` (of ${p.bands} bands)` : ''}`,
  };
}
