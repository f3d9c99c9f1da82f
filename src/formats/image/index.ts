// Images (JPEG, PNG, WebP, TIFF, GIF) decoded with sharp and preprocessed into model rows.
export { decodeImage, toRow, type DecodedImage, type RawPixels } from './decode.js';
export { IMAGE_EXTENSIONS, imageFiles, type ImageJobFields } from './image-source.js';
export {
  CHANNEL_ORDERS,
  IMAGE_DTYPES,
  IMAGE_LAYOUTS,
  PRESET_NAMES,
  PREPROCESS_PRESETS,
  PreprocessSchema,
  centerCropBox,
  channelCount,
  resizeTarget,
  resolvePreprocess,
  rowShape,
  shapeFor,
  type PreprocessOptions,
  type ResolvedPreprocess,
} from './preprocess.js';
