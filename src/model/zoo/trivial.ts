import { GraphBuilder, type BuilderDType, type Dim } from '../builder/graph-builder.js';
import { flatten } from '../builder/layers.js';
import type { ModelDescription } from './description.js';

/** Options of {@link buildTrivial}. */
export interface TrivialOptions {
  /** Name of the one input (default `input`). */
  readonly inputName?: string;
  /** Element type of the input (default float32); other types are cast to float32 first. */
  readonly dtype?: Exclude<BuilderDType, 'bool'>;
  /** Declared input shape, e.g. `['N', 5, 32, 32]`; left out, the input takes any rank. */
  readonly shape?: readonly Dim[];
  /** Name of the output (default `mean`). */
  readonly outputName?: string;
}

/**
 * A model with no weights that returns the mean of each item: input [N, ...] -> output float32 [N, 1].
 * Its cost is negligible, so it isolates CAI's own overhead (reading, binding, writing) in tests and
 * benchmarks, and any prediction can be checked by hand.
 *
 * @example
 * const bytes = buildTrivial({ inputName: 'image', shape: ['N', 5, 32, 32] });
 */
export function buildTrivial(options: TrivialOptions = {}): Uint8Array {
  const o = resolve(options);
  const b = new GraphBuilder({ name: 'trivial' });
  let x = b.input(o.inputName, o.dtype, o.shape);
  if (o.dtype !== 'float32') x = b.node('Cast', [x], { to: 1 });
  // Flatten(axis 1) turns [N] into [N, 1] and [N, a, b, ...] into [N, a*b*...]: one row per item.
  b.node('ReduceMean', [flatten(b, x, 1)], { axes: [1], keepdims: 1 }, { output: o.outputName });
  b.output(o.outputName, 'float32', ['N', 1]);
  return b.toModelBytes({ producer: 'cai', docString: 'mean of each item' });
}

/**
 * Input and output of {@link buildTrivial}.
 *
 * @example describeTrivial().outputs[0].shape // ['N', 1]
 */
export function describeTrivial(options: TrivialOptions = {}): ModelDescription {
  const o = resolve(options);
  return {
    name: 'trivial',
    summary: 'mean of every item of one input; no weights',
    inputs: [
      { name: o.inputName, dtype: o.dtype, shape: o.shape, description: 'any tensor with items first' },
    ],
    outputs: [{ name: o.outputName, dtype: 'float32', shape: ['N', 1], description: 'mean of the item' }],
  };
}

function resolve(options: TrivialOptions) {
  return {
    inputName: options.inputName ?? 'input',
    dtype: options.dtype ?? 'float32',
    shape: options.shape,
    outputName: options.outputName ?? 'mean',
  };
}
