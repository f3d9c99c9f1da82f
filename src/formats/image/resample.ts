// Pillow's resampling (libImaging/Resample.c, `ImagingResample`, and Geometry.c's nearest scaling), in
// JS, so that CAI's resized pixels are the ones torchvision's Resize gives on a PIL image: the filter's
// support widened by the reduction factor, coefficients normalized per output pixel then turned into
// 22-bit fixed point, a horizontal pass over the rows the vertical pass needs, rounded to 8 bits, then a
// vertical pass. Same arithmetic as Pillow, so the results are the same bytes, not merely close.

import type { INTERPOLATIONS } from '../../job/preprocess-values.js';

/** A resize filter (CAI's `preprocess.interpolation`, torchvision's `interpolation`). */
export type Interpolation = (typeof INTERPOLATIONS)[number];

interface Filter {
  readonly support: number;
  readonly f: (x: number) => number;
}

const sinc = (x: number): number => {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
};

// Pillow's filters, constant for constant (bicubic's a = -0.5).
const FILTERS: Readonly<Record<Exclude<Interpolation, 'nearest'>, Filter>> = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    f: (x) => {
      const a = x < 0 ? -x : x;
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    f: (x) => {
      const a = x < 0 ? -x : x;
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      return (Math.sin(px) / px) * (0.54 + 0.46 * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      const v = x < 0 ? -x : x;
      if (v < 1) return ((a + 2) * v - (a + 3)) * v * v + 1;
      if (v < 2) return (((v - 5) * v + 8) * v - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

/** Coefficients of one pass: per output position the first input, the count and `ksize` fixed-point weights. */
interface Coefficients {
  readonly ksize: number;
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly k: Int32Array;
}

/** Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = filter.f((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, first, count, k };
}

const clip8 = (ss: number): number => {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** A window of the resized image: only its pixels are computed (the same values as the whole image's). */
export interface Window {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/**
 * Resizes interleaved 8-bit pixels (1 to 4 channels) to `outWidth` x `outHeight` exactly as Pillow's
 * `Image.resize(size, filter)` does: same coefficients, same fixed-point sums, same rounding between
 * the passes. A pass whose size does not change is skipped, as in Pillow. With `window`, only that part
 * of the output is computed and returned (a center crop after the resize costs only its own pixels).
 *
 * @example const small = resample(rgb, 500, 375, 3, 341, 256, 'bilinear');
 */
export function resample(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  interpolation: Interpolation,
  window: Window = { left: 0, top: 0, width: outWidth, height: outHeight },
): Uint8Array {
  if (interpolation === 'nearest') {
    const all = resampleNearest(src, width, height, channels, outWidth, outHeight);
    return cropWindow(all, outWidth, channels, window);
  }
  const filter = FILTERS[interpolation];
  const needH = outWidth !== width;
  const needV = outHeight !== height;
  if (!needH && !needV) return cropWindow(src, width, channels, window);
  const vert = needV ? coefficients(height, outHeight, filter) : undefined;
  // Rows of the source the vertical pass reads for the window's rows (all of them without one).
  const firstRow = vert ? vert.first[window.top] : window.top;
  const lastRow = vert
    ? vert.first[window.top + window.height - 1] + vert.count[window.top + window.height - 1]
    : window.top + window.height;
  let img: Uint8Array;
  let cols: number;
  if (needH) {
    const horiz = coefficients(width, outWidth, filter);
    img = horizontal(src, width, channels, firstRow, lastRow - firstRow, horiz, window.left, window.width);
    cols = window.width;
  } else {
    img = src.subarray(firstRow * width * channels, lastRow * width * channels);
    cols = width;
  }
  if (!vert) return needH ? img : cropWindow(img, width, channels, { ...window, top: 0 });
  const out = vertical(img, cols, channels, vert, window.top, window.height, firstRow);
  return needH ? out : cropWindow(out, width, channels, { ...window, top: 0 });
}

function cropWindow(src: Uint8Array, width: number, channels: number, w: Window): Uint8Array {
  const out = new Uint8Array(w.width * w.height * channels);
  const rowBytes = w.width * channels;
  for (let y = 0; y < w.height; y++) {
    const from = ((w.top + y) * width + w.left) * channels;
    out.set(src.subarray(from, from + rowBytes), y * rowBytes);
  }
  return out;
}

// Sums are kept in int32 (Math.imul, | 0) as Pillow's INT32 are: the coefficients are 22-bit, so a
// sum stays under 2^31 even with lanczos' negative lobes.
function horizontal(
  src: Uint8Array,
  width: number,
  channels: number,
  firstRow: number,
  rows: number,
  c: Coefficients,
  firstCol: number,
  cols: number,
): Uint8Array {
  const out = new Uint8Array(rows * cols * channels);
  const { ksize, first, count, k } = c;
  const inStride = width * channels;
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const row = (y + firstRow) * inStride;
    for (let xx = firstCol; xx < firstCol + cols; xx++) {
      const n = count[xx];
      const kb = xx * ksize;
      const p0 = row + first[xx] * channels;
      if (channels === 3) {
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0, p = p0; x < n; x++, p += 3) {
          const w = k[kb + x];
          s0 = (s0 + Math.imul(src[p], w)) | 0;
          s1 = (s1 + Math.imul(src[p + 1], w)) | 0;
          s2 = (s2 + Math.imul(src[p + 2], w)) | 0;
        }
        out[o++] = clip8(s0);
        out[o++] = clip8(s1);
        out[o++] = clip8(s2);
      } else {
        for (let ch = 0; ch < channels; ch++) {
          let s = HALF;
          for (let x = 0, p = p0 + ch; x < n; x++, p += channels) s = (s + Math.imul(src[p], k[kb + x])) | 0;
          out[o++] = clip8(s);
        }
      }
    }
  }
  return out;
}

function vertical(
  src: Uint8Array,
  width: number,
  channels: number,
  c: Coefficients,
  firstOut: number,
  rowsOut: number,
  rowShift: number,
): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array(rowsOut * stride);
  const { ksize, first, count, k } = c;
  // A whole output row is summed at once, walking each input row in order.
  const acc = new Int32Array(stride);
  for (let yy = firstOut, o = 0; yy < firstOut + rowsOut; yy++, o += stride) {
    const n = count[yy];
    const kb = yy * ksize;
    const base = (first[yy] - rowShift) * stride;
    acc.fill(HALF);
    for (let y = 0; y < n; y++) {
      const w = k[kb + y];
      const row = src.subarray(base + y * stride, base + (y + 1) * stride);
      for (let i = 0; i < stride; i++) acc[i] = (acc[i] + Math.imul(row[i], w)) | 0;
    }
    for (let i = 0; i < stride; i++) out[o + i] = clip8(acc[i]);
  }
  return out;
}

/**
 * Pillow's NEAREST resize (an affine scale sampling pixel centres, positions accumulated as Pillow
 * accumulates them).
 *
 * @example const big = resampleNearest(rgb, 16, 16, 3, 64, 64);
 */
export function resampleNearest(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  if (outWidth === width && outHeight === height) return src.slice();
  const positions = (inSize: number, outSize: number): Int32Array => {
    const a = inSize / outSize;
    const tab = new Int32Array(outSize);
    let xo = a * 0.5;
    for (let x = 0; x < outSize; x++) {
      const xin = xo < 0 ? -1 : Math.trunc(xo);
      tab[x] = xin < 0 ? 0 : xin >= inSize ? inSize - 1 : xin;
      xo += a;
    }
    return tab;
  };
  const xs = positions(width, outWidth);
  const ys = positions(height, outHeight);
  const out = new Uint8Array(outWidth * outHeight * channels);
  let o = 0;
  for (let y = 0; y < outHeight; y++) {
    const row = ys[y] * width;
    for (let x = 0; x < outWidth; x++) {
      const p = (row + xs[x]) * channels;
      for (let ch = 0; ch < channels; ch++) out[o++] = src[p + ch];
    }
  }
  return out;
}

/**
 * The old name of {@link resample} with PIL's bilinear filter.
 *
 * @example const big = resampleBilinear(pixels, 16, 20, 3, 224, 280);
 */
export function resampleBilinear(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  return resample(src, width, height, channels, outWidth, outHeight, 'bilinear');
}
