// What turns a decoded image into a model input row: the job's `preprocess` object over a named preset.
import { CaiError, ErrorCodes } from '../../errors.js';
import type { PreprocessOptions } from '../../job/preprocess-schema.js';
import {
  CHANNEL_ORDERS,
  ICC_POLICIES,
  IMAGE_DTYPES,
  IMAGE_LAYOUTS,
  INTERPOLATIONS,
  ORIENTATION_POLICIES,
  PRESET_NAMES,
  RESIZE_METHODS,
  SIXTEEN_BIT_RULES,
  type PresetName,
} from '../../job/preprocess-values.js';

export type { PreprocessOptions };
export {
  CHANNEL_ORDERS,
  ICC_POLICIES,
  IMAGE_DTYPES,
  IMAGE_LAYOUTS,
  INTERPOLATIONS,
  ORIENTATION_POLICIES,
  PRESET_NAMES,
  RESIZE_METHODS,
  SIXTEEN_BIT_RULES,
};

/** Every step of preprocessing decided. */
export interface ResolvedPreprocess {
  /** Shorter side, or exact `[width, height]`; undefined keeps the decoded size. */
  readonly resize?: number | readonly [number, number];
  readonly centerCrop?: readonly [number, number];
  readonly scale: boolean;
  readonly mean?: readonly number[];
  readonly std?: readonly number[];
  readonly channels: (typeof CHANNEL_ORDERS)[number];
  readonly layout: (typeof IMAGE_LAYOUTS)[number];
  readonly dtype: (typeof IMAGE_DTYPES)[number];
  /** Resize filter (Pillow's; torchvision's `interpolation`). */
  readonly interpolation: (typeof INTERPOLATIONS)[number];
  readonly resizeMethod: (typeof RESIZE_METHODS)[number];
  readonly iccProfile: (typeof ICC_POLICIES)[number];
  readonly exifOrientation: (typeof ORIENTATION_POLICIES)[number];
  readonly sixteenBit: (typeof SIXTEEN_BIT_RULES)[number];
}

// How every preset decodes: as PIL's Image.open(...).convert('RGB') and torchvision's Resize do.
const DECODE = {
  interpolation: 'bilinear',
  resizeMethod: 'exact',
  iccProfile: 'ignore',
  exifOrientation: 'ignore',
  sixteenBit: 'pil',
} as const;

const IMAGENET: ResolvedPreprocess = Object.freeze({
  resize: 256,
  centerCrop: Object.freeze([224, 224] as const),
  scale: true,
  mean: Object.freeze([0.485, 0.456, 0.406]),
  std: Object.freeze([0.229, 0.224, 0.225]),
  channels: 'rgb',
  layout: 'nchw',
  dtype: 'float32',
  ...DECODE,
});

/**
 * Named preprocessing recipes. `imagenet` is torchvision's evaluation transform for ResNet-50 and the
 * Ray batch-inference benchmark: Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet mean/std).
 * `none` decodes to RGB NCHW float32 in [0, 1] at the image's own size.
 */
export const PREPROCESS_PRESETS: Readonly<Record<string, ResolvedPreprocess>> = Object.freeze({
  imagenet: IMAGENET,
  none: Object.freeze({ scale: true, channels: 'rgb', layout: 'nchw', dtype: 'float32', ...DECODE } as const),
} satisfies Record<PresetName, ResolvedPreprocess>);

/**
 * The preprocessing a job asks for: the preset (default `none`) with the job's `preprocess` fields over
 * it. Checks that mean/std match the channel count and that uint8 output is not asked to be normalized.
 *
 * @example resolvePreprocess({ preset: 'imagenet', preprocess: { layout: 'nhwc' } }).centerCrop // [224, 224]
 */
export function resolvePreprocess(job: {
  preset?: string;
  preprocess?: PreprocessOptions;
}): ResolvedPreprocess {
  const name = job.preset ?? 'none';
  const base = PREPROCESS_PRESETS[name];
  if (!base) {
    throw new CaiError(
      ErrorCodes.option,
      'preset',
      `unknown preset "${name}"; valid presets are ${PRESET_NAMES.join(', ')}`,
    );
  }
  const o = job.preprocess ?? {};
  const crop = o.centerCrop ?? base.centerCrop;
  const out: ResolvedPreprocess = {
    resize: o.resize ?? base.resize,
    centerCrop: crop === undefined ? undefined : typeof crop === 'number' ? [crop, crop] : [crop[0], crop[1]],
    scale: o.scale ?? base.scale,
    mean: o.mean ?? base.mean,
    std: o.std ?? base.std,
    channels: o.channels ?? base.channels,
    layout: o.layout ?? base.layout,
    dtype: o.dtype ?? base.dtype,
    interpolation: o.interpolation ?? base.interpolation,
    resizeMethod: o.resizeMethod ?? base.resizeMethod,
    iccProfile: o.iccProfile ?? base.iccProfile,
    exifOrientation: o.exifOrientation ?? base.exifOrientation,
    sixteenBit: o.sixteenBit ?? base.sixteenBit,
  };
  const bands = out.channels === 'gray' ? 1 : 3;
  for (const [field, values] of [
    ['mean', out.mean],
    ['std', out.std],
  ] as const) {
    if (values && values.length !== 1 && values.length !== bands) {
      throw new CaiError(
        ErrorCodes.option,
        `preprocess.${field}`,
        `has ${values.length} values for ${bands} channel${bands > 1 ? 's' : ''} (${out.channels}); give one value per channel or one for all`,
      );
    }
  }
  if (out.dtype === 'uint8' && (out.mean || out.std || job.preprocess?.scale === true)) {
    throw new CaiError(
      ErrorCodes.option,
      'preprocess.dtype',
      'uint8 rows hold raw 0-255 values; drop mean/std/scale, or use dtype float32',
    );
  }
  return out;
}

/** Channels a row has. @example channelCount(resolvePreprocess({})) // 3 */
export function channelCount(p: ResolvedPreprocess): number {
  return p.channels === 'gray' ? 1 : 3;
}

/**
 * The target size of the resize step for an image of `width` x `height`: torchvision's rule for a
 * single size (the shorter side becomes `n`, the longer one `floor(n * long / short)`), or the exact size.
 *
 * @example resizeTarget(500, 375, 256) // [341, 256]
 */
export function resizeTarget(
  width: number,
  height: number,
  resize: number | readonly [number, number],
): [number, number] {
  if (typeof resize !== 'number') return [resize[0], resize[1]];
  if (width <= height) return [resize, Math.floor((resize * height) / width)];
  return [Math.floor((resize * width) / height), resize];
}

/** Python's round(): halves go to the even neighbour (round(6.5) is 6), as torchvision's CenterCrop uses. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The crop window of torchvision's CenterCrop: `round((size - crop) / 2)` from each edge, with Python's
 * rounding of halves to even.
 *
 * @example centerCropBox(341, 256, [224, 224]) // { left: 58, top: 16, width: 224, height: 224 }
 */
export function centerCropBox(
  width: number,
  height: number,
  crop: readonly [number, number],
): { left: number; top: number; width: number; height: number } {
  return {
    left: roundHalfEven((width - crop[0]) / 2),
    top: roundHalfEven((height - crop[1]) / 2),
    width: crop[0],
    height: crop[1],
  };
}

/**
 * The shape of one row of a preprocessed image, when it is known before decoding (a crop, or an exact
 * resize); `undefined` when it depends on the image.
 *
 * @example rowShape(resolvePreprocess({ preset: 'imagenet' })) // [3, 224, 224]
 */
export function rowShape(p: ResolvedPreprocess): number[] | undefined {
  const wh = p.centerCrop ?? (typeof p.resize === 'object' ? p.resize : undefined);
  if (!wh) return undefined;
  return shapeFor(p, wh[0], wh[1]);
}

/** The row shape for an image of this size. @example shapeFor(p, 224, 224) // [3, 224, 224] */
export function shapeFor(p: ResolvedPreprocess, width: number, height: number): number[] {
  const c = channelCount(p);
  return p.layout === 'nchw' ? [c, height, width] : [height, width, c];
}
