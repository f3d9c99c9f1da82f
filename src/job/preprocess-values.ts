// The names a `preprocess` object may use, apart from both the schema (zod, for the job) and the code
// that applies them (workers), which each import them.

/** Channel orders an image row can have. */
export const CHANNEL_ORDERS = ['rgb', 'bgr', 'gray'] as const;
/** Memory layouts of an image batch. */
export const IMAGE_LAYOUTS = ['nchw', 'nhwc'] as const;
/** Element types an image row can be written in. */
export const IMAGE_DTYPES = ['float32', 'uint8'] as const;

const PRESETS = ['imagenet', 'none'] as const;
/** A preset name. */
export type PresetName = (typeof PRESETS)[number];
/** Names of the preprocessing presets, whose recipes are `PREPROCESS_PRESETS` (src/formats/image/preprocess.ts). */
export const PRESET_NAMES: readonly string[] = Object.freeze([...PRESETS]);
