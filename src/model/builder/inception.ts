import type { GraphBuilder } from './graph-builder.js';
import { avgPool, concat, conv2d, maxPool, relu } from './layers.js';

/** Output channels of each branch of an {@link inceptionModule}; `reduce` is the 1x1 before a wide conv. */
export interface InceptionChannels {
  readonly b1: number;
  readonly b3Reduce: number;
  readonly b3: number;
  readonly b5Reduce: number;
  readonly b5: number;
  readonly pool: number;
}

/** Total output channels of an {@link inceptionModule}. @example inceptionOutChannels(c) // c.b1 + c.b3 + c.b5 + c.pool */
export function inceptionOutChannels(c: InceptionChannels): number {
  return c.b1 + c.b3 + c.b5 + c.pool;
}

/**
 * An Inception module: parallel 1x1, 1x1 -> 3x3, 1x1 -> 5x5 and 3x3 pool -> 1x1 branches (each conv
 * with folded BN and ReLU), concatenated on channels. Spatial size is kept. The pool branch averages,
 * as in Inception-v3, unless `pool` is `'max'` (GoogLeNet).
 *
 * @example
 * const y = b.withScope('inc1', () =>
 *   inceptionModule(b, x, 32, { b1: 16, b3Reduce: 16, b3: 24, b5Reduce: 8, b5: 8, pool: 8 }));
 */
export function inceptionModule(
  b: GraphBuilder,
  x: string,
  inChannels: number,
  c: InceptionChannels,
  pool: 'avg' | 'max' = 'avg',
): string {
  const convRelu = (input: string, cin: number, cout: number, k: number, name: string) =>
    relu(b, conv2d(b, input, cin, cout, k, { name }));
  const branch1 = convRelu(x, inChannels, c.b1, 1, 'b1');
  const branch3 = convRelu(convRelu(x, inChannels, c.b3Reduce, 1, 'b3_reduce'), c.b3Reduce, c.b3, 3, 'b3');
  const branch5 = convRelu(convRelu(x, inChannels, c.b5Reduce, 1, 'b5_reduce'), c.b5Reduce, c.b5, 5, 'b5');
  const window = pool === 'max' ? maxPool(b, x, 3, 1, 1) : avgPool(b, x, 3, 1, 1);
  const pooled = convRelu(window, inChannels, c.pool, 1, 'pool_proj');
  return concat(b, [branch1, branch3, branch5, pooled], 1);
}
