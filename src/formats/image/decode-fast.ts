// The libvips path (`preprocess.resizeMethod: 'fast'`): libvips decodes, shrinking JPEGs while decoding
// (2x/4x/8x), converts to sRGB and resizes with its own kernel (box shrink, then filter) before the
// crop. Faster on big photos, but not PIL's pixels: see docs/sources.md for the measured gap.
import { CaiError, ErrorCodes } from '../../errors.js';
import { centerCropBox, resizeTarget, type ResolvedPreprocess } from './preprocess.js';
import { jpegSize } from './jpeg-size.js';
import { resample } from './resample.js';
import { decodeFailure, loadSharp, type DecodedImage, type DecodeNotes, type RawPixels } from './sharp.js';

/** Pixels an image may have when libvips resizes it: it shrinks while decoding, so far more fit. */
export const MAX_PIXELS_FAST_RESIZE = 10000 * 10000;

/**
 * The libvips path: decodes and, when asked, resizes (libvips' kernel when shrinking, Pillow's filter in
 * JS when enlarging) and center-crops. Alpha is dropped first, as PIL's `convert('RGB')` does.
 *
 * @example const img = await decodeFast(bytes, resolvePreprocess({ preset: 'imagenet', preprocess: { resizeMethod: 'fast' } }), 'cat.jpg');
 */
export async function decodeFast(
  input: Uint8Array | RawPixels,
  p: ResolvedPreprocess,
  source: string,
  notes?: DecodeNotes,
): Promise<DecodedImage> {
  const sharp = await loadSharp();
  const limit = MAX_PIXELS_FAST_RESIZE;
  try {
    const raw = input instanceof Uint8Array ? undefined : input;
    const open = () =>
      raw
        ? sharp(raw.data, {
            raw: { width: raw.width, height: raw.height, channels: raw.channels as 1 | 2 | 3 | 4 },
          })
        : sharp(input as Uint8Array, {
            pages: 1,
            limitInputPixels: limit,
            ignoreIcc: p.iccProfile === 'ignore',
            autoOrient: p.exifOrientation === 'apply',
          });
    let width = raw?.width;
    let height = raw?.height;
    let hasAlpha = raw ? raw.channels === 2 || raw.channels === 4 : false;
    // An oriented JPEG's header size is before rotation: ask libvips when orientation is applied.
    const jpeg = raw || p.exifOrientation === 'apply' ? undefined : jpegSize(input as Uint8Array);
    if (jpeg) {
      // JPEG has no alpha channel.
      ({ width, height } = jpeg);
    } else if (!raw) {
      const meta = await open().metadata();
      width = meta.autoOrient?.width ?? meta.width;
      height = meta.autoOrient?.height ?? meta.pageHeight ?? meta.height;
      hasAlpha = meta.hasAlpha;
      if (meta.depth === 'ushort' && notes) notes.sixteenBit++;
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
        const big = resample(flat.data, flat.info.width, flat.info.height, channels, w, h, p.interpolation);
        img = sharp(big, { raw: { width: w, height: h, channels: channels as 1 | 2 | 3 | 4 } });
      } else {
        img = img.resize(w, h, {
          fit: 'fill',
          kernel: FAST_KERNELS[p.interpolation],
          fastShrinkOnLoad: false,
        });
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
    throw decodeFailure(
      err,
      source,
      () =>
        `has more than ${limit} pixels, the limit for an image libvips shrinks while decoding (--resize-method fast); shrink it beforehand`,
    );
  }
}

// libvips' kernels nearest to Pillow's filters.
const FAST_KERNELS = {
  bilinear: 'linear',
  bicubic: 'cubic',
  lanczos: 'lanczos3',
  nearest: 'nearest',
  box: 'linear',
  hamming: 'linear',
} as const;
