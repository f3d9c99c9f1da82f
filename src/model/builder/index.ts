export { GraphBuilder, floatAttr, onnxDataType } from './graph-builder.js';
export type {
  AttrValue,
  BuilderDType,
  Dim,
  FloatAttr,
  InitializerData,
  ModelBytesOptions,
} from './graph-builder.js';
export { Rng } from './random.js';
export {
  add,
  avgPool,
  batchNorm,
  concat,
  conv2d,
  flatten,
  gelu,
  globalAvgPool,
  layerNorm,
  linear,
  maxPool,
  reduceMean,
  relu,
  reshape,
  sigmoid,
  transpose,
} from './layers.js';
export type { Conv2dOptions, InitScheme, WeightOptions } from './layers.js';
export {
  addPositionEmbedding,
  mlp,
  patchEmbed,
  prependClassToken,
  selfAttention,
  transformerBlock,
} from './transformer.js';
export type { BlockOptions, TokenShape } from './transformer.js';
export { inceptionModule, inceptionOutChannels } from './inception.js';
export type { InceptionChannels } from './inception.js';
