// What `cai optimize` records in a model's metadata (metadata_props "cai.optimization"), and reading it
// back: `cai run` names the optimization a model carries in its summary.
import { open } from 'node:fs/promises';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
/** ModelProto's field number of metadata_props. */
const METADATA_FIELD = 14;

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
    /**
     * Per-channel scales moved from the MatMuls' inputs into their weights (SmoothQuant), calibrated on
     * the same items; absent when no MatMul is quantized or smoothing was off.
     */
    readonly smoothing?: { readonly method: 'SmoothQuant'; readonly alpha: number };
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
    const text = (await readMetadata(modelPath))[OPTIMIZATION_KEY];
    return text ? (JSON.parse(text) as OptimizationRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A model file's metadata_props, read by walking ModelProto's top-level fields with small reads and
 * skipping the rest (the graph holds the weights: hundreds of MB that `cai run` need not decode twice).
 */
async function readMetadata(modelPath: string): Promise<Record<string, string>> {
  const file = await open(modelPath, 'r');
  try {
    const size = (await file.stat()).size;
    const head = Buffer.alloc(20);
    const out: Record<string, string> = {};
    for (let pos = 0; pos < size;) {
      const { bytesRead } = await file.read(head, 0, head.length, pos);
      let at = 0;
      const varint = (): number => {
        let v = 0;
        for (let shift = 0; at < bytesRead; shift += 7) {
          const b = head[at++];
          v += (b & 0x7f) * 2 ** shift;
          if (b < 0x80) return v;
        }
        throw new RangeError('truncated varint');
      };
      const tag = varint();
      const wire = tag & 7;
      if (wire === 0) {
        varint();
        pos += at;
      } else if (wire === 2) {
        const length = varint();
        if (tag >>> 3 === METADATA_FIELD) {
          const entry = Buffer.alloc(length);
          await file.read(entry, 0, length, pos + at);
          const e = onnx.StringStringEntryProto.decode(entry);
          if (e.key) out[e.key] = e.value ?? '';
        }
        pos += at + length;
      } else if (wire === 1) pos += at + 8;
      else if (wire === 5) pos += at + 4;
      else throw new RangeError(`unexpected wire type ${wire}`);
    }
    return out;
  } finally {
    await file.close();
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
