import { CaiError, ErrorCodes } from '../../errors.js';
import { buildAstroMAE, describeAstroMAE } from './astromae.js';
import type { ModelDescription } from './description.js';
import { buildResNet50, describeResNet50 } from './resnet50.js';
import { buildTrivial, describeTrivial } from './trivial.js';
import { buildViTB16, describeViTB16 } from './vit.js';

interface ZooEntry {
  /** Builds the model with its default architecture; only the seed can change. */
  readonly build: (seed?: number) => Uint8Array;
  readonly describe: () => ModelDescription;
  /** Rough size of the ONNX file, so callers can warn before making a 350 MB model. */
  readonly approxBytes: number;
}

/**
 * The models CAI can make offline, by name. Big ones (ResNet-50 ~100 MB, ViT-B/16 ~350 MB) are built on
 * demand in a few seconds and should be cached by the caller, never committed.
 *
 * @example Object.keys(ZOO_MODELS) // ['astromae', 'resnet50', 'vit-b16', 'trivial']
 */
export const ZOO_MODELS = Object.freeze({
  astromae: {
    build: (seed) => buildAstroMAE({ seed }),
    describe: () => describeAstroMAE(),
    approxBytes: 15e6,
  },
  resnet50: {
    build: (seed) => buildResNet50({ seed }),
    describe: () => describeResNet50(),
    approxBytes: 102e6,
  },
  'vit-b16': { build: (seed) => buildViTB16({ seed }), describe: () => describeViTB16(), approxBytes: 347e6 },
  trivial: { build: () => buildTrivial(), describe: () => describeTrivial(), approxBytes: 300 },
} satisfies Record<string, ZooEntry>);

/** A name in {@link ZOO_MODELS}. */
export type ZooModelName = keyof typeof ZOO_MODELS;

function entry(name: string): ZooEntry {
  if (!Object.hasOwn(ZOO_MODELS, name)) {
    const known = Object.keys(ZOO_MODELS).join(', ');
    throw new CaiError(ErrorCodes.option, name, `is not a zoo model; choose one of: ${known}`);
  }
  return ZOO_MODELS[name as ZooModelName];
}

/**
 * ONNX bytes of a zoo model by name, with its default architecture and an optional seed.
 *
 * @example writeFileSync('model.onnx', buildZooModel('astromae'));
 */
export function buildZooModel(name: string, options: { seed?: number } = {}): Uint8Array {
  return entry(name).build(options.seed);
}

/** Inputs and outputs of a zoo model by name. @example describeZooModel('resnet50').inputs[0].name // 'input' */
export function describeZooModel(name: string): ModelDescription {
  return entry(name).describe();
}
