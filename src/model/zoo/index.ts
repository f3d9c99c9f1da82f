export {
  ASTROMAE_DEFAULTS,
  ASTROMAE_DESCRIPTION,
  ASTROMAE_TINY,
  buildAstroMAE,
  buildAstroMAEGraph,
  describeAstroMAE,
} from './astromae.js';
export type { AstroMAEOptions } from './astromae.js';
export type { ModelDescription, TensorDescription } from './description.js';
export { RESNET50_DEFAULTS, buildResNet50, buildResNet50Graph, describeResNet50 } from './resnet50.js';
export type { ResNetOptions } from './resnet50.js';
export { buildTrivial, describeTrivial } from './trivial.js';
export type { TrivialOptions } from './trivial.js';
export { VIT_B16_DEFAULTS, buildViTB16, buildViTB16Graph, describeViTB16 } from './vit.js';
export type { ViTOptions } from './vit.js';
export { ZOO_MODELS, buildZooModel, describeZooModel } from './registry.js';
export type { ZooModelName } from './registry.js';
