import type { GraphBuilder } from './graph-builder.js';
import { add, concat, conv2d, gelu, layerNorm, linear, reshape, transpose } from './layers.js';

/** Shape of a ViT token sequence: `tokens` x `dim`, split over `heads`. */
export interface TokenShape {
  readonly tokens: number;
  readonly dim: number;
  readonly heads: number;
}

/** Options of {@link transformerBlock}. */
export interface BlockOptions extends TokenShape {
  /** Hidden size of the MLP as a multiple of `dim` (4 in ViT). */
  readonly mlpRatio: number;
  readonly epsilon?: number;
  /** Init gain of the two projections that write into the residual stream. */
  readonly residualGain?: number;
}

/**
 * ViT patch embedding: a Conv with kernel = stride = `patch`, then [N, D, h, w] -> [N, h*w, D].
 *
 * @example const tokens = patchEmbed(b, 'image', { channels: 5, imageSize: 32, patch: 4, dim: 192 });
 */
export function patchEmbed(
  b: GraphBuilder,
  image: string,
  options: { channels: number; imageSize: number; patch: number; dim: number },
): string {
  const { channels, imageSize, patch, dim } = options;
  const grid = imageSize / patch;
  if (!Number.isInteger(grid))
    throw new RangeError(`image size ${imageSize} is not a multiple of patch ${patch}`);
  const conv = conv2d(b, image, channels, dim, patch, {
    name: 'patch_embed',
    stride: patch,
    pad: 0,
    init: 'xavier',
  });
  return transpose(b, reshape(b, conv, [-1, dim, grid * grid]), [0, 2, 1]);
}

/**
 * Prepends a learned class token to [N, T, D] tokens, giving [N, T + 1, D]. The batch size is only
 * known at run time, so the token is broadcast with Shape -> Slice -> Concat -> Expand.
 *
 * @example const withCls = prependClassToken(b, tokens, 768);
 */
export function prependClassToken(b: GraphBuilder, tokens: string, dim: number): string {
  const cls = b.randomNormal('cls_token', [1, 1, dim], 0.02);
  const shape = b.node('Shape', [tokens]);
  const batch = b.node('Slice', [shape, b.constant([0], 'int64'), b.constant([1], 'int64')]);
  const target = b.node('Concat', [batch, b.constant([1, dim], 'int64')], { axis: 0 });
  const clsBatch = b.node('Expand', [cls, target]);
  return concat(b, [clsBatch, tokens], 1);
}

/** Adds a learned position embedding [1, T, D]. @example x = addPositionEmbedding(b, x, 64, 192); */
export function addPositionEmbedding(b: GraphBuilder, x: string, tokens: number, dim: number): string {
  return add(b, x, b.randomNormal('pos_embed', [1, tokens, dim], 0.02));
}

/**
 * Multi-head self-attention as timm writes it: one qkv projection, Reshape to [N, T, 3, H, Dh],
 * Transpose to [3, N, H, T, Dh], Gather q/k/v, softmax(q k^T / sqrt(Dh)) v, merge heads, project.
 *
 * @example const y = selfAttention(b, x, { tokens: 64, dim: 192, heads: 3 });
 */
export function selfAttention(b: GraphBuilder, x: string, shape: TokenShape, outputGain = 1): string {
  const { tokens, dim, heads } = shape;
  const headDim = dim / heads;
  if (!Number.isInteger(headDim)) throw new RangeError(`dim ${dim} is not divisible by ${heads} heads`);
  return b.withScope('attn', () => {
    const qkv = linear(b, x, dim, 3 * dim, { name: 'qkv' });
    const split = transpose(b, reshape(b, qkv, [-1, tokens, 3, heads, headDim]), [2, 0, 3, 1, 4]);
    const pick = (i: number) => b.node('Gather', [split, b.constant(i, 'int64')], { axis: 0 });
    const [q, k, v] = [pick(0), pick(1), pick(2)];
    const scores = b.node('MatMul', [q, transpose(b, k, [0, 1, 3, 2])]);
    const scaled = b.node('Mul', [scores, b.constant(1 / Math.sqrt(headDim))]);
    const probs = b.node('Softmax', [scaled], { axis: -1 });
    const context = b.node('MatMul', [probs, v]);
    const merged = reshape(b, transpose(b, context, [0, 2, 1, 3]), [-1, tokens, dim]);
    return linear(b, merged, dim, dim, { name: 'proj', gain: outputGain });
  });
}

/**
 * Transformer MLP: Linear -> GELU -> Linear.
 *
 * @example const y = mlp(b, x, 192, 768);
 */
export function mlp(b: GraphBuilder, x: string, dim: number, hidden: number, outputGain = 1): string {
  return b.withScope('mlp', () => {
    const h = gelu(b, linear(b, x, dim, hidden, { name: 'fc1' }));
    return linear(b, h, hidden, dim, { name: 'fc2', gain: outputGain });
  });
}

/**
 * A pre-norm ViT block: `x + attn(LN(x))`, then `x + mlp(LN(x))`.
 *
 * @example x = b.withScope('block0', () => transformerBlock(b, x, { tokens: 64, dim: 192, heads: 3, mlpRatio: 4 }));
 */
export function transformerBlock(b: GraphBuilder, x: string, options: BlockOptions): string {
  const { dim, mlpRatio } = options;
  const epsilon = options.epsilon ?? 1e-6;
  const gain = options.residualGain ?? 1;
  const attended = add(
    b,
    x,
    selfAttention(b, layerNorm(b, x, dim, { name: 'norm1', epsilon }), options, gain),
  );
  const hidden = Math.round(dim * mlpRatio);
  return add(b, attended, mlp(b, layerNorm(b, attended, dim, { name: 'norm2', epsilon }), dim, hidden, gain));
}
