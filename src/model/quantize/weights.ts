// The arithmetic of 8-bit quantization, as onnxruntime's Python quantizer does it: symmetric int8 weights
// (zero point 0, one scale per output channel or one per tensor), asymmetric uint8 activations whose range
// always holds 0 (so that zero padding and ReLU's zero are exact), int32 biases at scale x_scale * w_scale.

/** A weight quantized along one axis (or per tensor). */
export interface QuantizedWeight {
  readonly data: Int8Array | Uint8Array;
  readonly scales: Float32Array;
  readonly zeroPoints: Int8Array | Uint8Array;
}

/** Weight element type: `int8` symmetric or `uint8` asymmetric. */
export type WeightType = 'int8' | 'uint8';

/**
 * Quantizes `w` with one scale per slice along `axis` (`channels` slices of `inner` values each, laid out
 * as [outer, channels, inner]) or one for the whole tensor.
 *
 * @example quantizeWeight(w, { outer: 1, channels: 64, inner: 27, perChannel: true, type: 'int8' })
 */
export function quantizeWeight(
  w: Float32Array,
  o: { outer: number; channels: number; inner: number; perChannel: boolean; type: WeightType },
): QuantizedWeight {
  const groups = o.perChannel ? o.channels : 1;
  const lo = new Float64Array(groups).fill(0);
  const hi = new Float64Array(groups).fill(0);
  const group = (i: number) => (o.perChannel ? Math.floor(i / o.inner) % o.channels : 0);
  for (let i = 0; i < w.length; i++) {
    const g = group(i);
    if (w[i] < lo[g]) lo[g] = w[i];
    if (w[i] > hi[g]) hi[g] = w[i];
  }
  const scales = new Float32Array(groups);
  const zeroPoints = o.type === 'int8' ? new Int8Array(groups) : new Uint8Array(groups);
  for (let g = 0; g < groups; g++) {
    if (o.type === 'int8') {
      // Symmetric, [-127, 127]: u8 x s8 kernels never saturate on -128.
      scales[g] = Math.max(Math.abs(lo[g]), Math.abs(hi[g])) / 127 || 1;
    } else {
      scales[g] = (hi[g] - lo[g]) / 255 || 1;
      zeroPoints[g] = Math.min(255, Math.max(0, Math.round(-lo[g] / scales[g])));
    }
  }
  const data = o.type === 'int8' ? new Int8Array(w.length) : new Uint8Array(w.length);
  const [qmin, qmax] = o.type === 'int8' ? [-127, 127] : [0, 255];
  for (let i = 0; i < w.length; i++) {
    const g = group(i);
    data[i] = Math.min(qmax, Math.max(qmin, Math.round(w[i] / scales[g]) + zeroPoints[g]));
  }
  return { data, scales, zeroPoints };
}

/** uint8 scale and zero point of an activation range (widened to hold 0). @example activationParams(-1, 5) */
export function activationParams(min: number, max: number): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  const scale = (hi - lo) / 255 || 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

/** An int32 bias at scale `xScale * wScales[c]`. @example quantizeBias(b, 0.02, wq.scales) */
export function quantizeBias(
  bias: Float32Array,
  xScale: number,
  wScales: Float32Array,
): { data: Int32Array; scales: Float32Array } {
  const scales = new Float32Array(bias.length);
  const data = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    scales[c] = xScale * wScales[wScales.length === 1 ? 0 : c];
    data[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(bias[c] / scales[c])));
  }
  return { data, scales };
}
