// Decoding and preprocessing one image the way torchvision does on a PIL image, by default: libvips
// (sharp) only decodes, at full size and without colour management or rotation; the rest is PIL's
// arithmetic in JS: convert('RGB') (alpha dropped, gray replicated, CMYK by PIL's formula), Resize with
// Pillow's resampling, CenterCrop, then scale / normalize / reorder into a model row with one lookup table
// per channel. `preprocess.resizeMethod: 'fast'` hands the whole image to libvips instead (decode-fast.ts).
import type { Sharp, Metadata } from 'sharp';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { ItemRow } from '../partition/object-items.js';
import { decodeFast } from './decode-fast.js';
import { centerCropBox, resizeTarget, shapeFor, type ResolvedPreprocess } from './preprocess.js';
import { jpegSize } from './jpeg-size.js';
import { resample } from './resample.js';
import { decodeFailure, loadSharp, type DecodedImage, type DecodeNotes, type RawPixels } from './sharp.js';

export type { DecodedImage, DecodeNotes, RawPixels };

/**
 * Pixels an image may have when it is decoded at full size and not resized: 4096 x 4096, 48 MiB of RGB
 * and 192 MiB as a float32 row. A small PNG can declare 16000 x 16000; it must not make a worker allocate
 * gigabytes.
 */
export const MAX_PIXELS_FULL_SIZE = 4096 * 4096;
/**
 * Pixels an image may have when it is decoded at full size to be resized exactly as PIL does: 40 million
 * (a 7300 x 5500 photo, 120 MB as RGB; 4 images decode at once). Bigger images fail with an error naming
 * `--resize-method fast`, which shrinks while decoding.
 */
export const MAX_PIXELS_EXACT_RESIZE = 40_000_000;

/**
 * Decodes an encoded image (JPEG, PNG, WebP, TIFF, GIF's first frame...) or raw HWC pixels and applies
 * the pixel steps of preprocessing, as torchvision on `Image.open(f).convert('RGB')` does: resize with
 * the job's interpolation, then center crop. Counts 16-bit images in `notes`. Throws naming `source`
 * when the bytes are not an image, or when it has more pixels than the limit.
 *
 * @example const img = await decodeImage(await store.get('cat.jpg'), resolvePreprocess({ preset: 'imagenet' }), 'cat.jpg');
 */
export async function decodeImage(
  input: Uint8Array | RawPixels,
  p: ResolvedPreprocess,
  source: string,
  notes?: DecodeNotes,
): Promise<DecodedImage> {
  if (p.resizeMethod === 'fast' && (p.resize !== undefined || p.centerCrop))
    return decodeFast(input, p, source, notes);
  const full =
    input instanceof Uint8Array ? await decodeFullSize(input, p, source, notes) : rawToRgb(input, source);
  let { data, width, height } = full;
  if (p.resize !== undefined) {
    const [w, h] = resizeTarget(width, height, p.resize);
    if (p.centerCrop && w >= p.centerCrop[0] && h >= p.centerCrop[1]) {
      // Only the crop's pixels are computed: the same values as resizing all, then cropping.
      const box = centerCropBox(w, h, p.centerCrop);
      data = resample(data, width, height, 3, w, h, p.interpolation, box);
      return { data, width: box.width, height: box.height, channels: 3 };
    }
    data = resample(data, width, height, 3, w, h, p.interpolation);
    [width, height] = [w, h];
  }
  if (p.centerCrop) {
    if (width < p.centerCrop[0] || height < p.centerCrop[1]) {
      throw new CaiError(
        ErrorCodes.unsupported,
        source,
        `is ${width}x${height}${p.resize !== undefined ? ' after resizing' : ''}, smaller than the ${p.centerCrop[0]}x${p.centerCrop[1]} center crop; resize it to at least the crop size`,
      );
    }
    const box = centerCropBox(width, height, p.centerCrop);
    data = crop(data, width, box);
    [width, height] = [box.width, box.height];
  }
  return { data, width, height, channels: 3 };
}

function crop(
  src: Uint8Array,
  width: number,
  box: { left: number; top: number; width: number; height: number },
): Uint8Array {
  const out = new Uint8Array(box.width * box.height * 3);
  const rowBytes = box.width * 3;
  for (let y = 0; y < box.height; y++) {
    const from = ((box.top + y) * width + box.left) * 3;
    out.set(src.subarray(from, from + rowBytes), y * rowBytes);
  }
  return out;
}

interface Rgb {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** Raw pixels of 1-4 channels (gray, gray + alpha, RGB, RGBA) as RGB. */
function rawToRgb(raw: RawPixels, source: string): Rgb {
  if (raw.channels < 1 || raw.channels > 4) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `has ${raw.channels} channels; raw pixels must have 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)`,
    );
  }
  const bands = raw.channels === 3 || raw.channels === 4 ? 3 : 1;
  return {
    data: toRgb(raw.data, raw.width * raw.height, raw.channels, bands),
    width: raw.width,
    height: raw.height,
  };
}

/**
 * Interleaved samples of `channels` bands, of which the first `colour` (1: gray, 3: RGB) are colour and
 * the rest alpha, as RGB: alpha dropped without compositing and gray replicated, as convert('RGB').
 */
function toRgb(src: ArrayLike<number>, pixels: number, channels: number, colour: number): Uint8Array {
  if (channels === 3 && colour === 3 && src instanceof Uint8Array) return src;
  const out = new Uint8Array(pixels * 3);
  for (let i = 0, s = 0, o = 0; i < pixels; i++, s += channels, o += 3) {
    if (colour === 1) {
      const v = src[s];
      out[o] = v;
      out[o + 1] = v;
      out[o + 2] = v;
    } else {
      out[o] = src[s];
      out[o + 1] = src[s + 1];
      out[o + 2] = src[s + 2];
    }
  }
  return out;
}

/** Pillow's CMYK to RGB: R = 255 - K - C * (255 - K) / 255, rounded as its MULDIV255 does. */
function cmykToRgb(src: Uint8Array, pixels: number, channels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let i = 0, s = 0, o = 0; i < pixels; i++, s += channels, o += 3) {
    const nk = 255 - src[s + 3];
    for (let c = 0; c < 3; c++) {
      const t = src[s + c] * nk + 128;
      out[o + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return out;
}

/**
 * 16-bit samples to 8 bits. `pil`: as Pillow's convert('RGB') on what Image.open gives: a gray image is
 * mode I and clipped to 0-255, a colour one is read as its high bytes. `scale`: round(v * 255 / 65535).
 */
function reduce16(src: Uint16Array, colour: number, rule: ResolvedPreprocess['sixteenBit']): Uint8Array {
  const out = new Uint8Array(src.length);
  if (rule === 'scale') for (let i = 0; i < src.length; i++) out[i] = Math.round(src[i] / 257);
  else if (colour === 1) for (let i = 0; i < src.length; i++) out[i] = src[i] > 255 ? 255 : src[i];
  else for (let i = 0; i < src.length; i++) out[i] = src[i] >> 8;
  return out;
}

const isGif = (b: Uint8Array): boolean => b.length > 6 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46;

/**
 * A GIF's first frame as PIL's convert('RGB') gives it: every pixel its palette colour, the transparent
 * index included (libvips makes those pixels transparent black, so it cannot tell). omggif decodes it.
 */
async function decodeGif(bytes: Uint8Array, limit: number): Promise<Rgb> {
  const { GifReader } = await import('omggif');
  const gif = new GifReader(bytes);
  const { width, height } = gif;
  if (width * height > limit) throw new Error(`Input image exceeds pixel limit (${width}x${height})`);
  const frame = gif.frameInfo(0);
  const rgba = new Uint8Array(width * height * 4);
  const t = frame.transparent_index;
  if (t !== null && frame.palette_offset !== null) {
    // Pixels the frame leaves transparent keep the transparent index's colour, as PIL shows them.
    const at = frame.palette_offset + t * 3;
    for (let i = 0; i < rgba.length; i += 4) {
      rgba[i] = bytes[at];
      rgba[i + 1] = bytes[at + 1];
      rgba[i + 2] = bytes[at + 2];
    }
  }
  gif.decodeAndBlitFrameRGBA(0, rgba);
  return { data: toRgb(rgba, width * height, 4, 3), width, height };
}

/**
 * What the decode needs to know (colour space, depth, alpha): for an 8-bit JPEG from its frame header
 * (1 component gray, 3 colour, 4 CMYK; no alpha), which saves libvips a second open; else sharp's metadata.
 */
async function metadataOf(
  bytes: Uint8Array,
  open: () => Sharp,
): Promise<Pick<Metadata, 'space' | 'depth' | 'hasAlpha'>> {
  const jpeg = jpegSize(bytes);
  if (jpeg && jpeg.precision === 8 && [1, 3, 4].includes(jpeg.components)) {
    const space = jpeg.components === 1 ? 'b-w' : jpeg.components === 3 ? 'srgb' : 'cmyk';
    return { space, depth: 'uchar', hasAlpha: false };
  }
  return open().metadata();
}

async function decodeFullSize(
  bytes: Uint8Array,
  p: ResolvedPreprocess,
  source: string,
  notes: DecodeNotes | undefined,
): Promise<Rgb> {
  const limit = p.resize === undefined ? MAX_PIXELS_FULL_SIZE : MAX_PIXELS_EXACT_RESIZE;
  const applyIcc = p.iccProfile === 'apply';
  try {
    if (isGif(bytes)) return await decodeGif(bytes, limit);
    const sharp = await loadSharp();
    const open = (): Sharp =>
      sharp(bytes, {
        pages: 1,
        limitInputPixels: limit,
        ignoreIcc: !applyIcc,
        autoOrient: p.exifOrientation === 'apply',
      });
    const meta = await metadataOf(bytes, open);
    const alpha = meta.hasAlpha ? 1 : 0;
    if (meta.space === 'cmyk' && !applyIcc) {
      // The inks as stored (libvips un-inverts Adobe CMYK JPEGs as Pillow does), then PIL's formula.
      const { data, info } = await open()
        .pipelineColourspace('cmyk')
        .toColourspace('cmyk')
        .raw()
        .toBuffer({ resolveWithObject: true });
      return {
        data: cmykToRgb(data, info.width * info.height, info.channels),
        width: info.width,
        height: info.height,
      };
    }
    const gray = meta.space === 'b-w' || meta.space === 'grey16';
    if (meta.depth === 'ushort') {
      if (notes) notes.sixteenBit++;
      const { data, info } = await open()
        .toColourspace(gray ? 'grey16' : 'rgb16')
        .raw({ depth: 'ushort' })
        .toBuffer({ resolveWithObject: true });
      const samples = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
      const colour = gray ? 1 : 3;
      return {
        data: toRgb(reduce16(samples, colour, p.sixteenBit), info.width * info.height, info.channels, colour),
        width: info.width,
        height: info.height,
      };
    }
    const { data, info } = await open()
      .toColourspace(gray ? 'b-w' : 'srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const colour = gray ? 1 : 3;
    if (info.channels !== colour + alpha && info.channels !== colour) {
      throw new CaiError(
        ErrorCodes.unsupported,
        source,
        `decodes to ${info.channels} channels where RGB has 3; convert it to an RGB or grayscale image`,
      );
    }
    const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return {
      data: toRgb(pixels, info.width * info.height, info.channels, colour),
      width: info.width,
      height: info.height,
    };
  } catch (err) {
    throw decodeFailure(err, source, () =>
      p.resize === undefined
        ? `has more than ${limit} pixels, the limit for an image decoded at full size; give --resize (e.g. --resize 256), or shrink it beforehand`
        : `has more than ${limit} pixels, the limit for an image decoded at full size to be resized exactly as PIL does; use --resize-method fast (libvips shrinks it while decoding, up to 100000000 pixels, with pixels a few levels from PIL's), or shrink it beforehand`,
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
