// sharp (libvips), loaded once and only by the processes that decode images, and the types the decoders share.
import type Sharp from 'sharp';
import { CaiError, ErrorCodes } from '../../errors.js';

/** Pixels already decoded, interleaved (HWC) 8-bit: the Ray benchmark's Parquet layout. */
export interface RawPixels {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/** An image after decoding, resizing and cropping: 8-bit interleaved RGB pixels. */
export interface DecodedImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/**
 * What decoding noticed that the run must say (never silent): counts the caller keeps per partition.
 *
 * @example const notes = { sixteenBit: 0 }; await decodeImage(bytes, p, key, notes);
 */
export interface DecodeNotes {
  /** Images with 16 bits per sample, reduced to 8 by `preprocess.sixteenBit`'s rule. */
  sixteenBit: number;
}

// sharp loads libvips (a large native library) when imported: only processes that decode images pay
// for it, not every worker and CLI command that imports the sources. libvips keeps a cache of recent
// operations for interactive use; a batch job never repeats one. Images are decoded several at a time
// (one per libuv thread), so one libvips thread per image is enough: its default of one per core cost
// 8% more CPU per 500 x 375 JPEG here (4.8 against 4.4 ms), taken from inference on busy cores.
let loading: Promise<typeof Sharp> | undefined;

/** sharp, imported and set up on first use. @example const sharp = await loadSharp(); */
export const loadSharp = (): Promise<typeof Sharp> =>
  (loading ??= import('sharp').then(({ default: sharp }) => {
    sharp.cache(false);
    sharp.concurrency(1);
    return sharp;
  }));

/**
 * The error a failed decode ends with: a CAI error as it is; libvips' pixel limit as the image being too
 * large (`tooLarge()` says what to do, which depends on the decode path); anything else as a damaged file.
 *
 * @example try { ... } catch (err) { throw decodeFailure(err, source, () => 'has more than ... pixels'); }
 */
export function decodeFailure(err: unknown, source: string, tooLarge: () => string): CaiError {
  if (err instanceof CaiError) return err;
  if (/pixel limit/i.test((err as Error).message))
    return new CaiError(ErrorCodes.unsupported, source, tooLarge(), { cause: err });
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `cannot be decoded as an image (${(err as Error).message}); it is damaged or not an image: remove or replace it`,
    { cause: err },
  );
}
