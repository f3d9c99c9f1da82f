// Images (JPEG, PNG, WebP, TIFF, GIF) decoded with sharp and preprocessed into model rows.
export { decodeImage, toRow, type DecodedImage, type RawPixels } from './decode.js';
export { IMAGE_EXTENSIONS, imageFiles, type ImageJobFields } from './image-source.js';
export {
  CHANNEL_ORDERS,
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
