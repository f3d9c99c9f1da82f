// Decoding and preprocessing one image with sharp (libvips): decode, to RGB or gray, resize, crop, then
// scale / normalize / reorder into a model row in JS with one lookup table per channel.
import type Sharp from 'sharp';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { ItemRow } from '../partition/object-items.js';
import { centerCropBox, resizeTarget, shapeFor, type ResolvedPreprocess } from './preprocess.js';
import { jpegSize } from './jpeg-size.js';
import { resampleBilinear } from './resample.js';

/** Pixels already decoded, interleaved (HWC) 8-bit: the Ray benchmark's Parquet layout. */
export interface RawPixels {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/** An image after the libvips steps: 8-bit interleaved sRGB pixels. */
export interface DecodedImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

// sharp loads libvips (a large native library) when imported: only processes that decode images pay
// for it, not every worker and CLI command that imports the sources. libvips keeps a cache of recent
// operations for interactive use; a batch job never repeats one. Images are decoded several at a time
// (one per libuv thread), so one libvips thread per image is enough: its default of one per core cost
// 8% more CPU per 500 x 375 JPEG here (4.8 against 4.4 ms), taken from inference on busy cores.
let loading: Promise<typeof Sharp> | undefined;
const loadSharp = (): Promise<typeof Sharp> =>
  (loading ??= import('sharp').then(({ default: sharp }) => {
    sharp.cache(false);
    sharp.concurrency(1);
    return sharp;
  }));

/**
 * Pixels an image may have when it is decoded at full size (no resize): 4096 x 4096, 48 MiB of RGB and
 * 192 MiB as a float32 row. A small PNG can declare 16000 x 16000; it must not make a worker allocate
 * gigabytes.
 */
export const MAX_PIXELS_FULL_SIZE = 4096 * 4096;
/** Pixels an image may have when it is resized: libvips shrinks while decoding, so far more fit. */
export const MAX_PIXELS_RESIZED = 10000 * 10000;

/**
 * Decodes an encoded image (JPEG, PNG, WebP, TIFF, GIF's first frame...) or raw HWC pixels and applies
 * the libvips part of preprocessing: alpha dropped (as PIL's `convert('RGB')` does), converted to sRGB
 * or gray, resized like torchvision's bilinear Resize of a PIL image (libvips' linear kernel when shrinking, PIL's
 * filter in JS when enlarging), center-cropped.
 * EXIF orientation is not applied, like PIL and torchvision. Throws naming `source` when the bytes are
 * not an image sharp can decode.
 *
 * @example const img = await decodeImage(await store.get('cat.jpg'), resolvePreprocess({ preset: 'imagenet' }), 'cat.jpg');
 */
export async function decodeImage(
  input: Uint8Array | RawPixels,
  p: ResolvedPreprocess,
  source: string,
): Promise<DecodedImage> {
  const sharp = await loadSharp();
  const limit = p.resize === undefined ? MAX_PIXELS_FULL_SIZE : MAX_PIXELS_RESIZED;
  try {
    const raw = input instanceof Uint8Array ? undefined : input;
    const open = () =>
      raw
        ? sharp(raw.data, {
            raw: { width: raw.width, height: raw.height, channels: raw.channels as 1 | 2 | 3 | 4 },
          })
        : sharp(input as Uint8Array, { pages: 1, limitInputPixels: limit });
    let width = raw?.width;
    let height = raw?.height;
    let hasAlpha = raw ? raw.channels === 2 || raw.channels === 4 : false;
    const jpeg = raw || (p.resize === undefined && !p.centerCrop) ? undefined : jpegSize(input as Uint8Array);
    if (jpeg) {
      // JPEG has no alpha channel.
      ({ width, height } = jpeg);
    } else if (!raw && (p.resize !== undefined || p.centerCrop)) {
      const meta = await open().metadata();
      width = meta.width;
      height = meta.pageHeight ?? meta.height;
      hasAlpha = meta.hasAlpha;
    }
    let img = open().removeAlpha().toColourspace('srgb');
    if (p.resize !== undefined && hasAlpha) {
      // sharp resizes before it drops alpha, and resizes premultiplied: colours under transparent pixels
      // would bleed. PIL's convert('RGB') drops alpha first, so drop it in a pass of its own.
      const flat = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      img = sharp(flat.data, { raw: { width: flat.info.width, height: flat.info.height, channels: 3 } });
    }
    if (p.resize !== undefined && width !== undefined && height !== undefined) {
      const [w, h] = resizeTarget(width, height, p.resize);
      if (w > width || h > height) {
        // Enlarging: libvips' interpolator is not PIL's bilinear filter, so enlarge in JS (exact).
        const flat = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
        const { channels } = flat.info;
        const big = resampleBilinear(flat.data, flat.info.width, flat.info.height, channels, w, h);
        img = sharp(big, { raw: { width: w, height: h, channels: channels as 1 | 2 | 3 | 4 } });
      } else {
        img = img.resize(w, h, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false });
      }
      [width, height] = [w, h];
    }
    if (p.centerCrop && width !== undefined && height !== undefined) {
      if (width < p.centerCrop[0] || height < p.centerCrop[1]) {
        throw new CaiError(
          ErrorCodes.unsupported,
          source,
          `is ${width}x${height}${p.resize !== undefined ? ' after resizing' : ''}, smaller than the ${p.centerCrop[0]}x${p.centerCrop[1]} center crop; resize it to at least the crop size`,
        );
      }
      img = img.extract(centerCropBox(width, height, p.centerCrop));
    }
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) {
      throw new CaiError(
        ErrorCodes.unsupported,
        source,
        `decodes to ${info.channels} channels where sRGB has 3; convert it to an RGB or grayscale image`,
      );
    }
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      channels: info.channels,
    };
  } catch (err) {
    if (err instanceof CaiError) throw err;
    if (/pixel limit/i.test((err as Error).message)) {
      throw new CaiError(
        ErrorCodes.unsupported,
        source,
        `has more than ${limit} pixels, the limit for an image decoded ${p.resize === undefined ? 'at full size' : 'and resized'}; ` +
          (p.resize === undefined
            ? 'give --resize (e.g. --resize 256) so it is shrunk while decoding, or shrink it beforehand'
            : 'shrink it beforehand'),
        { cause: err },
      );
    }
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `cannot be decoded as an image (${(err as Error).message}); it is damaged or not an image: remove or replace it`,
      { cause: err },
    );
  }
}

/** PIL's convert('L'): ITU-R 601-2 luma in 16-bit fixed point, rounded. */
function luma(rgb: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels);
  for (let i = 0, j = 0; i < pixels; i++, j += 3) {
    out[i] = (rgb[j] * 19595 + rgb[j + 1] * 38470 + rgb[j + 2] * 7471 + 0x8000) >>> 16;
  }
  return out;
}

/** Per-channel tables mapping a 0-255 value to its normalized float. */
function lookupTables(p: ResolvedPreprocess, channels: number): Float32Array[] {
  return Array.from({ length: channels }, (_, c) => {
    const mean = p.mean ? (p.mean.length === 1 ? p.mean[0] : p.mean[c]) : 0;
    const std = p.std ? (p.std.length === 1 ? p.std[0] : p.std[c]) : 1;
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = ((p.scale ? v / 255 : v) - mean) / std;
    return lut;
  });
}

const tableCache = new WeakMap<ResolvedPreprocess, Float32Array[]>();

/**
 * Turns decoded pixels into a model row: float32 `((v / 255) - mean) / std` (or uint8 values), channels
 * in RGB or BGR order, NCHW or NHWC.
 *
 * @example const row = toRow(await decodeImage(bytes, p, key), p); // { dtype: 'float32', shape: [3, 224, 224], ... }
 */
export function toRow(img: DecodedImage, p: ResolvedPreprocess): ItemRow {
  const { width, height } = img;
  const shape = shapeFor(p, width, height);
  const plane = width * height;
  const gray = p.channels === 'gray';
  const src = gray ? luma(img.data, plane) : img.data;
  const channels = gray ? 1 : img.channels;
  // Source channel for each output channel: BGR reads the interleaved RGB backwards.
  const order = p.channels === 'bgr' ? [2, 1, 0] : [0, 1, 2].slice(0, channels);
  if (p.dtype === 'uint8') {
    if ((p.layout === 'nhwc' || channels === 1) && p.channels !== 'bgr')
      return { dtype: 'uint8', shape, data: src };
    const out = new Uint8Array(plane * channels);
    for (let c = 0; c < channels; c++) {
      const s = order[c];
      if (p.layout === 'nchw') for (let i = 0; i < plane; i++) out[c * plane + i] = src[i * channels + s];
      else for (let i = 0; i < plane; i++) out[i * channels + c] = src[i * channels + s];
    }
    return { dtype: 'uint8', shape, data: out };
  }
  let luts = tableCache.get(p);
  if (!luts) {
    luts = lookupTables(p, channels);
    tableCache.set(p, luts);
  }
  const out = new Float32Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    const lut = luts[c];
    const s = order[c];
    if (p.layout === 'nchw') {
      const base = c * plane;
      for (let i = 0; i < plane; i++) out[base + i] = lut[src[i * channels + s]];
    } else {
      for (let i = 0; i < plane; i++) out[i * channels + c] = lut[src[i * channels + s]];
    }
  }
  return { dtype: 'float32', shape, data: out };
}
