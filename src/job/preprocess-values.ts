// The names a `preprocess` object may use, apart from both the schema (zod, for the job) and the code
// that applies them (workers), which each import them.

/** Channel orders an image row can have. */
export const CHANNEL_ORDERS = ['rgb', 'bgr', 'gray'] as const;
/** Memory layouts of an image batch. */
export const IMAGE_LAYOUTS = ['nchw', 'nhwc'] as const;
/** Element types an image row can be written in. */
export const IMAGE_DTYPES = ['float32', 'uint8'] as const;

/** Resize filters, as torchvision's `interpolation` on PIL images (Pillow's filters). */
export const INTERPOLATIONS = ['bilinear', 'bicubic', 'lanczos', 'nearest', 'box', 'hamming'] as const;
/** `exact`: full-size decode then Pillow's resampling in JS; `fast`: libvips shrinks while decoding. */
export const RESIZE_METHODS = ['exact', 'fast'] as const;
/** What to do with an embedded ICC profile: `ignore` it as PIL does, or `apply` it (convert to sRGB). */
export const ICC_POLICIES = ['ignore', 'apply'] as const;
/** What to do with EXIF orientation: `ignore` it as PIL does, or `apply` it (rotate / flip upright). */
export const ORIENTATION_POLICIES = ['ignore', 'apply'] as const;
/**
 * 16-bit images to 8 bits: `pil` as Pillow 9-10 does (gray clipped to 0-255, colour keeps the high byte),
 * `scale` maps 0-65535 linearly to 0-255.
 */
export const SIXTEEN_BIT_RULES = ['pil', 'scale'] as const;

const PRESETS = ['imagenet', 'none'] as const;
/** A preset name. */
export type PresetName = (typeof PRESETS)[number];
/** Names of the preprocessing presets, whose recipes are `PREPROCESS_PRESETS` (src/formats/image/preprocess.ts). */
export const PRESET_NAMES: readonly string[] = Object.freeze([...PRESETS]);
