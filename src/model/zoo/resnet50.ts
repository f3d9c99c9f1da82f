import { CaiError, ErrorCodes } from '../../errors.js';
import { GraphBuilder } from '../builder/graph-builder.js';
import { add, conv2d, globalAvgPool, linear, maxPool, relu } from '../builder/layers.js';
import type { ModelDescription } from './description.js';

/** Options of {@link buildResNet50}; the defaults are ResNet-50 exactly. Smaller values make test models. */
export interface ResNetOptions {
  readonly seed?: number;
  readonly imageSize?: number;
  readonly numClasses?: number;
  /** Channels of the first stage's bottleneck (64); every stage doubles it. */
  readonly baseWidth?: number;
  /** Bottleneck blocks per stage: [3, 4, 6, 3] for ResNet-50. */
  readonly layers?: readonly number[];
}

/** ResNet-50 on 224x224 ImageNet images. */
export const RESNET50_DEFAULTS = Object.freeze({
  seed: 50,
  imageSize: 224,
  numClasses: 1000,
  baseWidth: 64,
  layers: Object.freeze([3, 4, 6, 3]),
} as const);

const EXPANSION = 4;

/**
 * Builds ResNet-50 (torchvision's v1.5: stride on the 3x3 conv) with deterministic weights, as ONNX
 * bytes: input `input` float32 [N, 3, 224, 224] (NCHW, ImageNet-normalized), output `logits` float32
 * [N, 1000]. BatchNorm is folded into the convolutions (a conv with bias), as an exporter's optimizer
 * leaves it. About 25.6 M weights (~100 MB): made on demand, never committed.
 *
 * @example writeFileSync('resnet50.onnx', buildResNet50());
 */
export function buildResNet50(options: ResNetOptions = {}): Uint8Array {
  return buildResNet50Graph(options).toModelBytes({
    producer: 'cai',
    docString: 'ResNet-50 (BN folded), deterministic weights',
  });
}

/**
 * The graph behind {@link buildResNet50}, before serialization: for counting parameters or adding to it.
 *
 * @example buildResNet50Graph().parameterCount()
 */
export function buildResNet50Graph(options: ResNetOptions = {}): GraphBuilder {
  const o = resolve(options);
  const b = new GraphBuilder({ name: 'resnet50', seed: o.seed });
  const input = b.input('input', 'float32', ['N', 3, o.imageSize, o.imageSize]);
  let x = relu(b, conv2d(b, input, 3, o.baseWidth, 7, { name: 'conv1', stride: 2, pad: 3 }));
  x = maxPool(b, x, 3, 2, 1);
  let channels = o.baseWidth;
  o.layers.forEach((blocks, stage) => {
    const width = o.baseWidth * 2 ** stage;
    for (let i = 0; i < blocks; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const inChannels = channels;
      const input = x;
      x = b.withScope(`layer${stage + 1}/${i}`, () => bottleneck(b, input, inChannels, width, stride));
      channels = width * EXPANSION;
    }
  });
  const pooled = globalAvgPool(b, x);
  linear(b, pooled, channels, o.numClasses, { name: 'fc', output: 'logits' });
  b.output('logits', 'float32', ['N', o.numClasses]);
  return b;
}

/**
 * Input and output of {@link buildResNet50}.
 *
 * @example describeResNet50().inputs[0].shape // ['N', 3, 224, 224]
 */
export function describeResNet50(options: ResNetOptions = {}): ModelDescription {
  const o = resolve(options);
  return {
    name: 'resnet50',
    summary: `ResNet-50 image classifier (${o.layers.join('/')} bottlenecks, BN folded), ${o.numClasses} classes`,
    inputs: [
      {
        name: 'input',
        dtype: 'float32',
        shape: ['N', 3, o.imageSize, o.imageSize],
        description: 'RGB images, NCHW, normalized with ImageNet mean and std',
      },
    ],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['N', o.numClasses], description: 'class scores' }],
  };
}

/** A bottleneck: 1x1 reduce, 3x3 (carrying the stride), 1x1 expand, plus a projected or identity shortcut. */
function bottleneck(b: GraphBuilder, x: string, inChannels: number, width: number, stride: number): string {
  const out = width * EXPANSION;
  let y = relu(b, conv2d(b, x, inChannels, width, 1, { name: 'conv1' }));
  y = relu(b, conv2d(b, y, width, width, 3, { name: 'conv2', stride }));
  // A small last-BN scale (as with zero-init residuals) keeps 16 random blocks from blowing up.
  y = conv2d(b, y, width, out, 1, { name: 'conv3', gain: 0.2 });
  const shortcut =
    stride !== 1 || inChannels !== out
      ? conv2d(b, x, inChannels, out, 1, { name: 'downsample', stride, pad: 0, init: 'xavier' })
      : x;
  return relu(b, add(b, y, shortcut));
}

function resolve(options: ResNetOptions): Required<ResNetOptions> {
  const o = {
    seed: options.seed ?? RESNET50_DEFAULTS.seed,
    imageSize: options.imageSize ?? RESNET50_DEFAULTS.imageSize,
    numClasses: options.numClasses ?? RESNET50_DEFAULTS.numClasses,
    baseWidth: options.baseWidth ?? RESNET50_DEFAULTS.baseWidth,
    layers: options.layers ?? RESNET50_DEFAULTS.layers,
  };
  for (const key of ['imageSize', 'numClasses', 'baseWidth'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) {
      throw new CaiError(ErrorCodes.option, key, `must be a positive integer, got ${o[key]}`);
    }
  }
  if (o.layers.length === 0 || !o.layers.every((n) => Number.isInteger(n) && n >= 1)) {
    throw new CaiError(
      ErrorCodes.option,
      'layers',
      `must be positive block counts such as [3, 4, 6, 3], got [${o.layers}]`,
    );
  }
  if (!Number.isInteger(o.seed))
    throw new CaiError(ErrorCodes.option, 'seed', `must be an integer, got ${o.seed}`);
  return o;
}
