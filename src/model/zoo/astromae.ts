import { CaiError, ErrorCodes } from '../../errors.js';
import { GraphBuilder } from '../builder/graph-builder.js';
import { inceptionModule, inceptionOutChannels, type InceptionChannels } from '../builder/inception.js';
import {
  avgPool,
  batchNorm,
  concat,
  conv2d,
  gelu,
  globalAvgPool,
  layerNorm,
  linear,
  reduceMean,
  relu,
  sigmoid,
} from '../builder/layers.js';
import {
  addPositionEmbedding,
  patchEmbed,
  prependClassToken,
  transformerBlock,
} from '../builder/transformer.js';
import type { ModelDescription } from './description.js';

/** Options of {@link buildAstroMAE}; every field has a default in {@link ASTROMAE_DEFAULTS}. */
export interface AstroMAEOptions {
  readonly seed?: number;
  /** Image channels (SDSS ugriz: 5) and magnitudes per item. */
  readonly bands?: number;
  readonly imageSize?: number;
  readonly patch?: number;
  /** ViT width, depth, heads and MLP ratio. */
  readonly dim?: number;
  readonly depth?: number;
  readonly heads?: number;
  readonly mlpRatio?: number;
  /** How the ViT branch summarizes its tokens: sky-subtracted mean of the patch tokens, or a class token. */
  readonly pooling?: 'mean' | 'cls';
  /** Channel multiplier of the Inception CNN branch (1 = 96 stem, then 304/544/640 channels). */
  readonly cnnWidth?: number;
  /** Width of the magnitude MLP and of the head's hidden layer. */
  readonly magHidden?: number;
  readonly headHidden?: number;
  /** Predictions lie in (0, maxRedshift). */
  readonly maxRedshift?: number;
}

/** The full-size AstroMAE-shaped model: ViT 192 x 6 blocks x 3 heads on 4x4 patches of 5x32x32 images. */
export const ASTROMAE_DEFAULTS = Object.freeze({
  seed: 2501,
  bands: 5,
  imageSize: 32,
  patch: 4,
  dim: 192,
  depth: 6,
  heads: 3,
  mlpRatio: 4,
  pooling: 'mean',
  cnnWidth: 1,
  magHidden: 64,
  headHidden: 128,
  maxRedshift: 0.8,
} as const satisfies Required<AstroMAEOptions>);

/**
 * The tiny configuration of the parity fixture (`test/fixtures/parity/model.onnx`): same ops and
 * inputs as the full model, about 54 k weights.
 */
export const ASTROMAE_TINY = Object.freeze({
  seed: 1,
  dim: 32,
  depth: 2,
  heads: 2,
  mlpRatio: 2,
  cnnWidth: 0.125,
  magHidden: 16,
  headHidden: 32,
} as const satisfies AstroMAEOptions);

/** Magnitudes are centred and scaled inside the model so that raw float64 CAI magnitudes can be fed. */
const MAG_CENTER = 18;
const MAG_SCALE = 0.5;

/**
 * Builds an AstroMAE-shaped photometric redshift regressor with deterministic weights, as ONNX bytes
 * (opset 17). Inputs: `image` float32 [N, bands, size, size] and `magnitude` float32 [N, bands]; one
 * output `redshift` float32 [N, 1]. Three branches (a ViT on patches, an Inception-style CNN, an MLP on
 * the magnitudes) are concatenated into an MLP head; a sigmoid maps it into (0, maxRedshift). The weights
 * are random, so the predictions are not physics, but they differ clearly between items and grow with
 * magnitude (fainter galaxies are farther) so that a demo's output looks like redshifts.
 *
 * @example
 * writeFileSync('astromae.onnx', buildAstroMAE());
 * const tiny = buildAstroMAE(ASTROMAE_TINY);
 */
export function buildAstroMAE(options: AstroMAEOptions = {}): Uint8Array {
  return buildAstroMAEGraph(options).toModelBytes({
    producer: 'cai',
    docString: 'AstroMAE-shaped redshift regressor, deterministic weights',
  });
}

/**
 * The graph behind {@link buildAstroMAE}, before serialization: for counting parameters or adding to it.
 *
 * @example buildAstroMAEGraph().parameterCount()
 */
export function buildAstroMAEGraph(options: AstroMAEOptions = {}): GraphBuilder {
  const o = resolveAstroMAEOptions(options);
  const b = new GraphBuilder({ name: 'astromae', seed: o.seed });
  const image = b.input('image', 'float32', ['N', o.bands, o.imageSize, o.imageSize]);
  const magnitude = b.input('magnitude', 'float32', ['N', o.bands]);

  const vit = b.withScope('vit', () => vitBranch(b, image, o));
  const cnn = b.withScope('cnn', () => cnnBranch(b, image, o));
  const magNorm = b.node('Mul', [b.node('Sub', [magnitude, b.constant(MAG_CENTER)]), b.constant(MAG_SCALE)]);
  const mag = b.withScope('mag', () => {
    const h = gelu(b, linear(b, magNorm, o.bands, o.magHidden, { name: 'fc1' }));
    return gelu(b, linear(b, h, o.magHidden, o.magHidden, { name: 'fc2' }));
  });

  b.withScope('head', () => {
    const features = concat(b, [vit.out, cnn.out, mag], 1);
    const width = vit.channels + cnn.channels + o.magHidden;
    const h = gelu(b, linear(b, features, width, o.headHidden, { name: 'fc1' }));
    // Zero-mean weights: GELU outputs are mostly positive, and a weight sum away from zero would turn
    // that shared positive part into a large offset that pushes every item into the sigmoid's tail.
    const w2 = b.rng.fillNormal(new Float32Array(o.headHidden), 2 * Math.sqrt(2 / (o.headHidden + 1)));
    const w2Mean = w2.reduce((a, v) => a + v, 0) / w2.length;
    for (let i = 0; i < w2.length; i++) w2[i] -= w2Mean;
    const learned = b.node('MatMul', [h, b.initializer('fc2_w', w2, [o.headHidden, 1])]);
    // A fixed positive weight on the normalized magnitudes: brighter -> nearer, as in real photo-z.
    const trend = b.initializer('mag_trend_w', new Float32Array(o.bands).fill(1 / o.bands), [o.bands, 1]);
    // tanh bounds the learned part: random features share a large common component, and unbounded it
    // can push every item into the sigmoid's flat tail, where all predictions look the same.
    const bounded = b.node('Mul', [
      b.node('Tanh', [b.node('Mul', [learned, b.constant(1 / 3)])]),
      b.constant(1.5),
    ]);
    const logit = b.node('Add', [
      b.node('Add', [bounded, b.node('MatMul', [magNorm, trend])]),
      b.constant(-0.5),
    ]);
    // 1 / (1 + exp(-x)), not the Sigmoid op: onnxruntime's is ~1e-7 off in absolute terms, 0.1-1% of a
    // prediction of 1e-4..1e-5 (inputs far from the model's range), where PyTorch is off by 1e-7 of it.
    b.node(
      'Mul',
      [sigmoid(b, logit, { accurateTail: true }), b.constant(o.maxRedshift)],
      {},
      { output: 'redshift', name: 'redshift' },
    );
  });
  b.output('redshift', 'float32', ['N', 1]);
  return b;
}

type ResolvedAstroMAE = { -readonly [K in keyof AstroMAEOptions]-?: NonNullable<AstroMAEOptions[K]> };

/** Options merged over {@link ASTROMAE_DEFAULTS} and checked. @example resolveAstroMAEOptions({ depth: 2 }).dim // 192 */
export function resolveAstroMAEOptions(options: AstroMAEOptions = {}): ResolvedAstroMAE {
  const o: ResolvedAstroMAE = { ...ASTROMAE_DEFAULTS, ...stripUndefined(options) };
  const positiveInts = [
    'bands',
    'imageSize',
    'patch',
    'dim',
    'depth',
    'heads',
    'magHidden',
    'headHidden',
  ] as const;
  for (const key of positiveInts) {
    if (!Number.isInteger(o[key]) || o[key] < 1) {
      throw new CaiError(ErrorCodes.option, key, `must be a positive integer, got ${o[key]}`);
    }
  }
  if (!Number.isInteger(o.seed))
    throw new CaiError(ErrorCodes.option, 'seed', `must be an integer, got ${o.seed}`);
  if (o.imageSize % o.patch !== 0) {
    throw new CaiError(
      ErrorCodes.option,
      'patch',
      `image size ${o.imageSize} is not a multiple of patch ${o.patch}`,
    );
  }
  if (o.imageSize % 4 !== 0) {
    throw new CaiError(
      ErrorCodes.option,
      'imageSize',
      `must be a multiple of 4 (two 2x2 poolings), got ${o.imageSize}`,
    );
  }
  if (o.dim % o.heads !== 0) {
    throw new CaiError(ErrorCodes.option, 'heads', `dim ${o.dim} is not divisible by ${o.heads} heads`);
  }
  for (const key of ['mlpRatio', 'cnnWidth', 'maxRedshift'] as const) {
    if (!(o[key] > 0)) throw new CaiError(ErrorCodes.option, key, `must be a positive number, got ${o[key]}`);
  }
  if (o.pooling !== 'mean' && o.pooling !== 'cls') {
    throw new CaiError(ErrorCodes.option, 'pooling', `must be "mean" or "cls", got ${String(o.pooling)}`);
  }
  return o;
}

/**
 * Inputs and output of {@link buildAstroMAE} for the given options, for docs and checks.
 *
 * @example describeAstroMAE().inputs.map((i) => i.name) // ['image', 'magnitude']
 */
export function describeAstroMAE(options: AstroMAEOptions = {}): ModelDescription {
  const o = resolveAstroMAEOptions(options);
  return {
    name: 'astromae',
    summary:
      `AstroMAE-shaped redshift regressor: ViT (dim ${o.dim}, ${o.depth} blocks, ${o.heads} heads, ` +
      `patch ${o.patch}) + Inception CNN + magnitude MLP -> linear head -> sigmoid x ${o.maxRedshift}`,
    inputs: [
      {
        name: 'image',
        dtype: 'float32',
        shape: ['N', o.bands, o.imageSize, o.imageSize],
        description: `${o.bands}-band galaxy cutouts, normalized to about 0..1`,
      },
      {
        name: 'magnitude',
        dtype: 'float32',
        shape: ['N', o.bands],
        description: 'photometric magnitudes (about 14..22); CAI partitions store them as float64',
      },
    ],
    outputs: [
      {
        name: 'redshift',
        dtype: 'float32',
        shape: ['N', 1],
        description: `predicted redshift in (0, ${o.maxRedshift})`,
      },
    ],
  };
}

/** Inputs and output of the full-size model. */
export const ASTROMAE_DESCRIPTION: ModelDescription = describeAstroMAE();

function vitBranch(b: GraphBuilder, image: string, o: ResolvedAstroMAE): { out: string; channels: number } {
  const grid = o.imageSize / o.patch;
  let x = patchEmbed(b, image, { channels: o.bands, imageSize: o.imageSize, patch: o.patch, dim: o.dim });
  let tokens = grid * grid;
  if (o.pooling === 'cls') {
    x = prependClassToken(b, x, o.dim);
    tokens += 1;
  }
  x = addPositionEmbedding(b, x, tokens, o.dim);
  for (let i = 0; i < o.depth; i++) {
    const block = { tokens, dim: o.dim, heads: o.heads, mlpRatio: o.mlpRatio, residualGain: 0.5 };
    x = b.withScope(`block${i}`, () => transformerBlock(b, x, block));
  }
  x = layerNorm(b, x, o.dim, { name: 'norm', epsilon: 1e-6 });
  const first = b.node('Gather', [x, b.constant(0, 'int64')], { axis: 1 });
  if (o.pooling === 'cls') return { out: first, channels: o.dim };
  // Sky-subtracted mean: the corner patch of a centred cutout is sky. With random weights every galaxy's
  // pooled tokens share a large common part; removing the sky token's share lets the image, not the
  // architecture, decide the features.
  const skySubtracted = b.node('Sub', [reduceMean(b, x, [1], false), first]);
  return { out: layerNorm(b, skySubtracted, o.dim, { name: 'pool_norm' }), channels: o.dim };
}

/**
 * Inception stages at 32x32, 16x16 and 8x8 (for a 32x32 input), after the style of photometric-redshift
 * CNNs (Pasquet et al. 2019): the branch costs about as much as the ViT, as in AstroMAE.
 */
const CNN_STEM = 96;
const CNN_STAGES: readonly InceptionChannels[] = [
  { b1: 64, b3Reduce: 96, b3: 128, b5Reduce: 48, b5: 64, pool: 48 },
  { b1: 128, b3Reduce: 128, b3: 224, b5Reduce: 64, b5: 96, pool: 96 },
  { b1: 192, b3Reduce: 192, b3: 256, b5Reduce: 64, b5: 96, pool: 96 },
];

function cnnBranch(b: GraphBuilder, image: string, o: ResolvedAstroMAE): { out: string; channels: number } {
  const ch = (c: number) => Math.max(1, Math.round(c * o.cnnWidth));
  const stem = ch(CNN_STEM);
  const conv = conv2d(b, image, o.bands, stem, 5, { name: 'stem', bias: false });
  let x = relu(b, batchNorm(b, conv, stem, { name: 'stem_bn' }));
  let channels = stem;
  CNN_STAGES.forEach((base, i) => {
    const c: InceptionChannels = {
      b1: ch(base.b1),
      b3Reduce: ch(base.b3Reduce),
      b3: ch(base.b3),
      b5Reduce: ch(base.b5Reduce),
      b5: ch(base.b5),
      pool: ch(base.pool),
    };
    if (i > 0) x = avgPool(b, x, 2, 2);
    const input = x;
    x = b.withScope(`inception${i + 1}`, () => inceptionModule(b, input, channels, c));
    channels = inceptionOutChannels(c);
  });
  return { out: globalAvgPool(b, x), channels };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
