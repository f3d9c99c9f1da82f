import type { BuilderDType, Dim } from '../builder/graph-builder.js';

/** One input or output of a zoo model, for docs and for checking data against the model. */
export interface TensorDescription {
  readonly name: string;
  readonly dtype: BuilderDType;
  /** `'N'` is the batch dimension; `undefined` means any rank. */
  readonly shape: readonly Dim[] | undefined;
  readonly description: string;
}

/**
 * What a zoo model takes and returns.
 *
 * @example
 * for (const i of ASTROMAE_DESCRIPTION.inputs) console.log(i.name, i.shape);
 */
export interface ModelDescription {
  readonly name: string;
  readonly summary: string;
  readonly inputs: readonly TensorDescription[];
  readonly outputs: readonly TensorDescription[];
}
