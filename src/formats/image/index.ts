// Images (JPEG, PNG, WebP, TIFF, GIF) decoded with sharp and preprocessed into model rows.
export {
  MAX_PIXELS_EXACT_RESIZE,
  MAX_PIXELS_FULL_SIZE,
  decodeImage,
  toRow,
  type DecodeNotes,
  type DecodedImage,
  type RawPixels,
} from './decode.js';
export { resample, resampleNearest, type Interpolation } from './resample.js';
export { IMAGE_EXTENSIONS, imageFiles, type ImageJobFields } from './image-source.js';
export {
  CHANNEL_ORDERS,
  ICC_POLICIES,
  INTERPOLATIONS,
  ORIENTATION_POLICIES,
  RESIZE_METHODS,
  SIXTEEN_BIT_RULES,
  IMAGE_DTYPES,
  IMAGE_LAYOUTS,
  PRESET_NAMES,
  PREPROCESS_PRESETS,
  centerCropBox,
  channelCount,
  resizeTarget,
  resolvePreprocess,
  rowShape,
  shapeFor,
  type ResolvedPreprocess,
} from './preprocess.js';
export { PreprocessSchema, type PreprocessOptions } from '../../job/preprocess-schema.js';
