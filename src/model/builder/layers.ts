import { floatAttr, type GraphBuilder } from './graph-builder.js';

/**
 * How a weight is drawn: Xavier (Glorot) normal for linear maps, Kaiming (He) normal for layers followed
 * by ReLU, or an explicit standard deviation (ViT's 0.02).
 */
export type InitScheme = 'xavier' | 'kaiming' | { readonly std: number };

function initStd(init: InitScheme, fanIn: number, fanOut: number, gain: number): number {
  if (init === 'xavier') return gain * Math.sqrt(2 / (fanIn + fanOut));
  if (init === 'kaiming') return gain * Math.sqrt(2 / fanIn);
  return gain * init.std;
}

/** Options shared by {@link linear} and {@link conv2d}. */
export interface WeightOptions {
  /** Name of the layer inside the current scope. */
  readonly name?: string;
  readonly init?: InitScheme;
  /** Multiplies the init standard deviation; < 1 damps a residual branch or an output head. */
  readonly gain?: number;
  /** Standard deviation of the (normal) bias; 0 gives zeros; `false` leaves the bias out. */
  readonly bias?: number | false;
  /** Name of the layer's output value, e.g. a graph output such as `logits`. */
  readonly output?: string;
}

/**
 * A dense layer on the last axis, `x @ W + b` with `W` of shape [in, out]: MatMul then Add, which
 * onnxruntime fuses.
 *
 * @example const h = linear(b, x, 192, 768, { name: 'fc1' });
 */
export function linear(
  b: GraphBuilder,
  x: string,
  inFeatures: number,
  outFeatures: number,
  options: WeightOptions = {},
): string {
  const name = options.name ?? 'linear';
  const std = initStd(options.init ?? 'xavier', inFeatures, outFeatures, options.gain ?? 1);
  const w = b.randomNormal(`${name}_w`, [inFeatures, outFeatures], std);
  const noBias = options.bias === false;
  const y = b.node(
    'MatMul',
    [x, w],
    {},
    { name: `${name}_matmul`, output: noBias ? options.output : undefined },
  );
  if (noBias) return y;
  const bias = b.randomNormal(`${name}_b`, [outFeatures], options.bias ?? 0.02);
  return b.node('Add', [y, bias], {}, { name: `${name}_add`, output: options.output });
}

/** Options of {@link conv2d}. */
export interface Conv2dOptions extends WeightOptions {
  readonly stride?: number;
  /** Zero padding on every side; defaults to `floor(kernel / 2)` ("same" for odd kernels, stride 1). */
  readonly pad?: number;
  readonly groups?: number;
}

/**
 * A 2-D convolution (NCHW) with a square kernel and a bias; a BatchNorm folded into it is just a
 * different weight and bias, so it also stands for conv + frozen BN.
 *
 * @example const y = conv2d(b, x, 5, 32, 3, { name: 'stem' });
 */
export function conv2d(
  b: GraphBuilder,
  x: string,
  inChannels: number,
  outChannels: number,
  kernel: number,
  options: Conv2dOptions = {},
): string {
  const name = options.name ?? 'conv';
  const groups = options.groups ?? 1;
  const fanIn = (inChannels / groups) * kernel * kernel;
  const std = initStd(options.init ?? 'kaiming', fanIn, outChannels * kernel * kernel, options.gain ?? 1);
  const w = b.randomNormal(`${name}_w`, [outChannels, inChannels / groups, kernel, kernel], std);
  const inputs = [x, w];
  if (options.bias !== false) inputs.push(b.randomNormal(`${name}_b`, [outChannels], options.bias ?? 0.02));
  const pad = options.pad ?? Math.floor(kernel / 2);
  const stride = options.stride ?? 1;
  return b.node(
    'Conv',
    inputs,
    { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad], group: groups },
    { name, output: options.output },
  );
}

/**
 * Inference-mode BatchNormalization over channels (axis 1) with drawn running statistics, for models
 * that keep BN as its own op rather than folding it into the convolution.
 *
 * @example const y = batchNorm(b, conv, 32, { name: 'stem_bn' });
 */
export function batchNorm(
  b: GraphBuilder,
  x: string,
  channels: number,
  options: { name?: string; epsilon?: number } = {},
): string {
  const name = options.name ?? 'bn';
  const scale = b.randomUniform(`${name}_scale`, [channels], 0.8, 1.2);
  const bias = b.randomNormal(`${name}_bias`, [channels], 0.05);
  const mean = b.randomNormal(`${name}_mean`, [channels], 0.1);
  const variance = b.randomUniform(`${name}_var`, [channels], 0.5, 1.5);
  return b.node(
    'BatchNormalization',
    [x, scale, bias, mean, variance],
    { epsilon: floatAttr(options.epsilon ?? 1e-5) },
    { name },
  );
}

/**
 * LayerNormalization over the last axis (an opset 17 op), scale near 1 and shift near 0.
 *
 * @example const y = layerNorm(b, x, 192, { name: 'norm1', epsilon: 1e-6 });
 */
export function layerNorm(
  b: GraphBuilder,
  x: string,
  dim: number,
  options: { name?: string; epsilon?: number } = {},
): string {
  const name = options.name ?? 'ln';
  const scale = b.randomNormal(`${name}_scale`, [dim], 0.05, 1);
  const bias = b.randomNormal(`${name}_bias`, [dim], 0.02);
  return b.node(
    'LayerNormalization',
    [x, scale, bias],
    { axis: -1, epsilon: floatAttr(options.epsilon ?? 1e-5) },
    { name },
  );
}

/**
 * Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`, spelled in the pattern onnxruntime fuses into one Gelu op.
 *
 * @example const y = gelu(b, linear(b, x, 192, 768));
 */
export function gelu(b: GraphBuilder, x: string): string {
  const scaled = b.node('Div', [x, b.constant(Math.SQRT2)]);
  const erf = b.node('Erf', [scaled]);
  const onePlus = b.node('Add', [erf, b.constant(1)]);
  const times = b.node('Mul', [x, onePlus]);
  return b.node('Mul', [times, b.constant(0.5)]);
}

/** ReLU. @example const y = relu(b, conv2d(b, x, 3, 64, 3)); */
export function relu(b: GraphBuilder, x: string): string {
  return b.node('Relu', [x]);
}

/**
 * Logistic sigmoid: the Sigmoid op (what `torch.onnx.export` writes for `torch.sigmoid`), or with
 * `accurateTail` the ops `1 / (1 + exp(-x))` (Neg, Exp, Add, Reciprocal: PyTorch's own CPU formula).
 * onnxruntime's CPU Sigmoid kernel (0.5 + a rational approximation) is accurate to ~1e-7 absolute but
 * not relative: small outputs lie on a 3e-8 grid (float32's spacing next to 0.5), 0.1% off at 1e-4, 1%
 * at 1e-5, 12% at 1e-6, all of it at 1e-7, and 0 for x <= -18.
 * Inside a network (SiLU, gates) that is float32 rounding; where the sigmoid is the model's output,
 * take `accurateTail` so small outputs match PyTorch (docs/performance.md, "Float precision against
 * PyTorch").
 *
 * @example const gate = sigmoid(b, x); const p = sigmoid(b, logit, { accurateTail: true });
 */
export function sigmoid(b: GraphBuilder, x: string, options: { accurateTail?: boolean } = {}): string {
  if (!options.accurateTail) return b.node('Sigmoid', [x]);
  const exp = b.node('Exp', [b.node('Neg', [x])]);
  return b.node('Reciprocal', [b.node('Add', [exp, b.constant(1)])]);
}

/** Elementwise sum, e.g. a residual connection. @example x = add(b, x, branch); */
export function add(b: GraphBuilder, x: string, y: string): string {
  return b.node('Add', [x, y]);
}

/** Square max pooling (NCHW); padded cells never win the max. @example maxPool(b, x, 3, 2, 1) */
export function maxPool(b: GraphBuilder, x: string, kernel: number, stride: number, pad = 0): string {
  return b.node('MaxPool', [x], {
    kernel_shape: [kernel, kernel],
    strides: [stride, stride],
    pads: [pad, pad, pad, pad],
  });
}

/** Square average pooling; padded cells are left out of the average. @example avgPool(b, x, 3, 1, 1) */
export function avgPool(b: GraphBuilder, x: string, kernel: number, stride: number, pad = 0): string {
  return b.node('AveragePool', [x], {
    kernel_shape: [kernel, kernel],
    strides: [stride, stride],
    pads: [pad, pad, pad, pad],
    count_include_pad: 0,
  });
}

/** Global average pooling to [N, C]: GlobalAveragePool then Flatten. @example const f = globalAvgPool(b, x); */
export function globalAvgPool(b: GraphBuilder, x: string): string {
  return flatten(b, b.node('GlobalAveragePool', [x]));
}

/** Flattens every axis from `axis` on into one. @example flatten(b, x) // [N, C, 1, 1] -> [N, C] */
export function flatten(b: GraphBuilder, x: string, axis = 1): string {
  return b.node('Flatten', [x], { axis });
}

/** Concatenates along `axis`. @example concat(b, [vit, cnn, mag], 1) */
export function concat(b: GraphBuilder, xs: readonly string[], axis: number): string {
  return b.node('Concat', xs, { axis });
}

/** Mean over the given axes. @example reduceMean(b, tokens, [1], false) // [N, T, D] -> [N, D] */
export function reduceMean(b: GraphBuilder, x: string, axes: readonly number[], keepDims: boolean): string {
  return b.node('ReduceMean', [x], { axes, keepdims: keepDims ? 1 : 0 });
}

/** Reshape to a fixed target (`-1` once, for the batch). @example reshape(b, x, [-1, 64, 192]) */
export function reshape(b: GraphBuilder, x: string, shape: readonly number[]): string {
  return b.node('Reshape', [x, b.constant(shape, 'int64')]);
}

/** Axis permutation. @example transpose(b, x, [0, 2, 1]) */
export function transpose(b: GraphBuilder, x: string, perm: readonly number[]): string {
  return b.node('Transpose', [x], { perm });
}
