// What a loaded model is, apart from the one module that loads it with onnxruntime-node (session.ts),
// so that the inference thread's proxy can implement it without importing that module.
import type { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';

/** A model input or output as the session declares it. */
export interface ModelValueInfo {
  readonly name: string;
  /** The element type, or the raw ONNX type name when CAI cannot feed it (e.g. `string`). */
  readonly dtype: DType | string;
  /** Dimensions; symbolic or unknown ones are strings or -1. Empty when the model does not say. */
  readonly shape: readonly (number | string)[];
}

/** Options for creating a session. */
export interface SessionOptions {
  /** Intra-op threads. */
  readonly threads: number;
  /** `cpu` or `cuda`. */
  readonly device?: string;
  /** onnxruntime's graph optimization level; default `all`. */
  readonly graphOptimization?: OptimizationLevel;
  /**
   * Where inference computes. onnxruntime-node's `run` blocks the JS thread that calls it for the whole
   * batch; `separate` keeps the session in a worker thread so the caller can read and decode the next
   * batch meanwhile (what CAI's workers do). Default `main`.
   */
  readonly thread?: 'main' | 'separate';
  /**
   * With `thread: 'separate'`: feeds whose data spans a whole buffer are moved to the inference thread
   * instead of copied, and the caller's arrays are detached. Only for callers that drop their feeds.
   */
  readonly moveFeeds?: boolean;
  /**
   * Float32 Sigmoid, Log(Sigmoid) and HardSigmoid nodes whose values reach an output are computed as
   * PyTorch does (1 / (1 + exp(-x)), -softplus(-x), clip(x + 3, 0, 6) / 6) instead of by onnxruntime's
   * ops (see exact-outputs.ts). Default true; false loads the graph as it is (benchmarks and tests
   * compare the two).
   */
  readonly exactSigmoidOutputs?: boolean;
}

/**
 * onnxruntime's graph-optimization levels, as its session option names them: `all` includes layouts for
 * this CPU's vector width; `extended` and `basic` stop before them.
 */
export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/**
 * One loaded model, created once per worker process and reused for every batch.
 *
 * @example
 * const model = await loadModel('astromae.onnx', { threads: 2 });
 * const out = await model.run({ image, magnitude });
 */
export interface ModelSession {
  readonly inputs: readonly ModelValueInfo[];
  readonly outputs: readonly ModelValueInfo[];
  /**
   * What CAI changed in the graph when it loaded it, one line each (e.g. `sigmoid outputs computed as
   * 1/(1+exp(-x)) (1 node: prob)`); empty when it ran the graph as it is.
   */
  readonly rewrites: readonly string[];
  /** Runs one batch. Inputs must already have the model's dtypes. */
  run(feeds: Readonly<Record<string, Tensor>>): Promise<Record<string, Tensor>>;
  /** Frees the native session. */
  release(): Promise<void>;
}
