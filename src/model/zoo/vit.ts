import { CaiError, ErrorCodes } from '../../errors.js';
import { GraphBuilder } from '../builder/graph-builder.js';
import { layerNorm, linear } from '../builder/layers.js';
import {
  addPositionEmbedding,
  patchEmbed,
  prependClassToken,
  transformerBlock,
} from '../builder/transformer.js';
import type { ModelDescription } from './description.js';

/** Options of {@link buildViTB16}; the defaults are ViT-B/16 exactly. Smaller values make test models. */
export interface ViTOptions {
  readonly seed?: number;
  readonly imageSize?: number;
  readonly patch?: number;
  readonly dim?: number;
  readonly depth?: number;
  readonly heads?: number;
  readonly mlpRatio?: number;
  readonly numClasses?: number;
}

/** ViT-B/16 on 224x224 images: 196 patches + class token, width 768, 12 blocks of 12 heads. */
export const VIT_B16_DEFAULTS = Object.freeze({
  seed: 16,
  imageSize: 224,
  patch: 16,
  dim: 768,
  depth: 12,
  heads: 12,
  mlpRatio: 4,
  numClasses: 1000,
} as const satisfies Required<ViTOptions>);

/**
 * Builds ViT-B/16 with deterministic weights, as ONNX bytes: input `input` float32 [N, 3, 224, 224]
 * (NCHW), output `logits` float32 [N, 1000]; class-token head, pre-norm blocks, exact GELU, LayerNorm
 * epsilon 1e-6 as in timm/torchvision. About 86.6 M weights (~350 MB): made on demand, never committed.
 *
 * @example writeFileSync('vit-b16.onnx', buildViTB16());
 */
export function buildViTB16(options: ViTOptions = {}): Uint8Array {
  return buildViTB16Graph(options).toModelBytes({
    producer: 'cai',
    docString: 'ViT-B/16, deterministic weights',
  });
}

/**
 * The graph behind {@link buildViTB16}, before serialization: for counting parameters or adding to it.
 *
 * @example buildViTB16Graph().parameterCount()
 */
export function buildViTB16Graph(options: ViTOptions = {}): GraphBuilder {
  const o = resolve(options);
  const b = new GraphBuilder({ name: 'vit_b16', seed: o.seed });
  const input = b.input('input', 'float32', ['N', 3, o.imageSize, o.imageSize]);
  const grid = o.imageSize / o.patch;
  const tokens = grid * grid + 1;
  let x = patchEmbed(b, input, { channels: 3, imageSize: o.imageSize, patch: o.patch, dim: o.dim });
  x = addPositionEmbedding(b, prependClassToken(b, x, o.dim), tokens, o.dim);
  for (let i = 0; i < o.depth; i++) {
    const block = { tokens, dim: o.dim, heads: o.heads, mlpRatio: o.mlpRatio };
    const input = x;
    x = b.withScope(`blocks/${i}`, () => transformerBlock(b, input, block));
  }
  x = layerNorm(b, x, o.dim, { name: 'norm', epsilon: 1e-6 });
  const cls = b.node('Gather', [x, b.constant(0, 'int64')], { axis: 1 });
  linear(b, cls, o.dim, o.numClasses, { name: 'head', output: 'logits' });
  b.output('logits', 'float32', ['N', o.numClasses]);
  return b;
}

/**
 * Input and output of {@link buildViTB16}.
 *
 * @example describeViTB16().outputs[0].name // 'logits'
 */
export function describeViTB16(options: ViTOptions = {}): ModelDescription {
  const o = resolve(options);
  return {
    name: 'vit-b16',
    summary: `ViT (patch ${o.patch}, dim ${o.dim}, ${o.depth} blocks, ${o.heads} heads), ${o.numClasses} classes`,
    inputs: [
      {
        name: 'input',
        dtype: 'float32',
        shape: ['N', 3, o.imageSize, o.imageSize],
        description: 'RGB images, NCHW, normalized',
      },
    ],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['N', o.numClasses], description: 'class scores' }],
  };
}

function resolve(options: ViTOptions): Required<ViTOptions> {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o: Required<ViTOptions> = { ...VIT_B16_DEFAULTS, ...defined };
  for (const key of ['imageSize', 'patch', 'dim', 'depth', 'heads', 'numClasses'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) {
      throw new CaiError(ErrorCodes.option, key, `must be a positive integer, got ${o[key]}`);
    }
  }
  if (o.imageSize % o.patch !== 0) {
    throw new CaiError(
      ErrorCodes.option,
      'patch',
      `image size ${o.imageSize} is not a multiple of patch ${o.patch}`,
    );
  }
  if (o.dim % o.heads !== 0) {
    throw new CaiError(ErrorCodes.option, 'heads', `dim ${o.dim} is not divisible by ${o.heads} heads`);
  }
  if (!(o.mlpRatio > 0))
    throw new CaiError(ErrorCodes.option, 'mlpRatio', `must be positive, got ${o.mlpRatio}`);
  if (!Number.isInteger(o.seed))
    throw new CaiError(ErrorCodes.option, 'seed', `must be an integer, got ${o.seed}`);
  return o;
}
