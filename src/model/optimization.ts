// What `cai optimize` records in a model's metadata (metadata_props "cai.optimization"), and reading it
// back: `cai run` names the optimization a model carries in its summary.
import { readFile } from 'node:fs/promises';
import { decodeModel, metadataOf } from './quantize/onnx-graph.js';

/** The metadata key `cai optimize` writes. */
export const OPTIMIZATION_KEY = 'cai.optimization';

/** The record `cai optimize` leaves in a model it saved. */
export interface OptimizationRecord {
  readonly tool: string;
  /** onnxruntime's graph-optimization level the graph was saved at. */
  readonly level: string;
  readonly onnxruntime: string;
  /** What a worker must know to load it. */
  readonly restriction: string;
  readonly int8?: {
    readonly dynamic_matmul: number;
    readonly static_conv: number;
    readonly weights: string;
    readonly activations: string;
    readonly calibration?: { readonly method: string; readonly items: number };
    readonly kept_fp32: readonly string[];
  };
}

/**
 * The optimization recorded in a model file, or undefined for a model `cai optimize` did not save (or
 * a file that is not ONNX: loading it is where that error belongs).
 *
 * @example (await readOptimization('m.int8.onnx'))?.int8?.static_conv
 */
export async function readOptimization(modelPath: string): Promise<OptimizationRecord | undefined> {
  try {
    const text = metadataOf(decodeModel(await readFile(modelPath), modelPath))[OPTIMIZATION_KEY];
    return text ? (JSON.parse(text) as OptimizationRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One line naming an optimization. @example describeOptimization(r) // 'int8: 24 MatMul dynamic, ...'
 */
export function describeOptimization(r: OptimizationRecord): string {
  const graph = `onnxruntime graph optimizations saved at level ${r.level} (onnxruntime ${r.onnxruntime})`;
  if (!r.int8) return graph;
  const q = r.int8;
  const cal = q.calibration ? `, Conv ranges ${q.calibration.method} on ${q.calibration.items} items` : '';
  const kept = q.kept_fp32.length ? `, ${q.kept_fp32.length} kept fp32` : '';
  return `int8: ${q.dynamic_matmul} MatMul/Gemm dynamic, ${q.static_conv} Conv static QDQ (${q.weights} weights${cal}${kept}); ${graph}`;
}
