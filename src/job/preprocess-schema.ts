// The job's `preprocess` object as a zod schema, with the job spec and apart from the code that applies it
// (src/formats/image/preprocess.ts), so that a worker decoding images does not load zod: ~0.1 s of every
// worker's start-up.
import { z } from 'zod';
import {
  CHANNEL_ORDERS,
  ICC_POLICIES,
  IMAGE_DTYPES,
  IMAGE_LAYOUTS,
  INTERPOLATIONS,
  ORIENTATION_POLICIES,
  RESIZE_METHODS,
  SIXTEEN_BIT_RULES,
} from './preprocess-values.js';

/** A size: one number (square, or the shorter side for resize) or `[width, height]`. */
const size = z.union([
  z.number().int().positive(),
  z.tuple([z.number().int().positive(), z.number().int().positive()]),
]);

/**
 * The job's `preprocess` field: every key is optional and overrides the preset's value.
 *
 * @example PreprocessSchema.parse({ resize: 256, centerCrop: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] })
 */
export const PreprocessSchema = z.strictObject({
  /** One number: the shorter side becomes this long (aspect kept, like torchvision's Resize(n)); `[w, h]`: exactly. */
  resize: size.optional(),
  /** Crop of this size from the center, after resizing (torchvision's CenterCrop). */
  centerCrop: size.optional(),
  /** Divide 0-255 values by 255 (true) or keep 0-255 (false). */
  scale: z.boolean().optional(),
  /** Per-channel mean subtracted after scaling. */
  mean: z.array(z.number()).min(1).max(3).optional(),
  /** Per-channel standard deviation divided by after the mean. */
  std: z.array(z.number().positive()).min(1).max(3).optional(),
  /** Channel order of the row: `rgb`, `bgr` (OpenCV / Caffe models) or `gray` (one channel). */
  channels: z.enum(CHANNEL_ORDERS).optional(),
  /** `nchw` (PyTorch, the default) or `nhwc` (TensorFlow). */
  layout: z.enum(IMAGE_LAYOUTS).optional(),
  /** `float32` (default) or `uint8` (raw 0-255 values; mean/std and scaling are then not allowed). */
  dtype: z.enum(IMAGE_DTYPES).optional(),
  /** Resize filter, as torchvision's `interpolation` (default `bilinear`, torchvision's default). */
  interpolation: z.enum(INTERPOLATIONS).optional(),
  /** `exact` (default): Pillow's resampling of the full-size image; `fast`: libvips, shrinking while decoding. */
  resizeMethod: z.enum(RESIZE_METHODS).optional(),
  /** Embedded ICC colour profile: `ignore` (default, as PIL) or `apply` (converted to sRGB). */
  iccProfile: z.enum(ICC_POLICIES).optional(),
  /** EXIF orientation: `ignore` (default, as PIL) or `apply` (rotated upright before resizing). */
  exifOrientation: z.enum(ORIENTATION_POLICIES).optional(),
  /** 16-bit images to 8 bits: `pil` (default, PIL's convert('RGB')) or `scale` (0-65535 to 0-255). */
  sixteenBit: z.enum(SIXTEEN_BIT_RULES).optional(),
});

/** The job's `preprocess` object as written. */
export type PreprocessOptions = z.infer<typeof PreprocessSchema>;
