// 8-bit quantization of an ONNX graph, written over the ModelProto: dynamic quantization of MatMul/Gemm
// with constant weights (onnxruntime's com.microsoft DynamicQuantizeMatMul: activations quantized per
// batch, weights once, per column) and static QDQ quantization of Conv (QuantizeLinear/DequantizeLinear
// pairs on calibrated activations, int8 weights per output channel, int32 bias) that onnxruntime's
// graph optimizer fuses into QLinearConv. Reference behaviour: onnxruntime's Python quantize_dynamic and
// quantize_static (QDQ format).
import onnxProto from 'onnx-proto';
import { CaiError, ErrorCodes } from '../../errors.js';
import {
  attrNumber,
  dimsOf,
  ELEM,
  ensureOpset,
  floatOutput,
  floatsOf,
  nodeProto,
  tensorProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './onnx-graph.js';
import type { Range } from './ranges.js';
import { activationParams, quantizeBias, quantizeWeight, type WeightType } from './weights.js';

const { onnx } = onnxProto;

/** An operator worth quantizing: a MatMul or Gemm with a constant weight (dynamic) or a Conv (static). */
export interface HeavyNode {
  readonly name: string;
  readonly opType: string;
  readonly kind: 'dynamic' | 'static';
  /** Weight values, a measure of the operator's size. */
  readonly weights: number;
}

/** What to quantize and how. */
export interface QuantizePlan {
  /** MatMul/Gemm node names to quantize dynamically. */
  readonly dynamic: ReadonlySet<string>;
  /** Conv node names to quantize statically (their tensors need `ranges`). */
  readonly static: ReadonlySet<string>;
  /** Calibrated ranges of the tensors {@link calibrationTensors} names. */
  readonly ranges: ReadonlyMap<string, Range>;
  /** Element type of the dynamic MatMuls' weights. */
  readonly weightType: WeightType;
  /** One scale per output channel / column (else one per tensor). */
  readonly perChannel: boolean;
}

interface Graph {
  readonly nodes: NodeProto[];
  readonly inits: Map<string, TensorProto>;
  readonly outputs: Set<string>;
  readonly consumers: Map<string, NodeProto[]>;
}

function graphOf(model: ModelProto): Graph {
  const g = model.graph;
  if (!g) throw new CaiError(ErrorCodes.model, 'model', 'has no graph');
  const nodes = [...(g.node ?? [])];
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes)
    for (const i of n.input ?? []) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  return { nodes, inits, outputs: new Set((g.output ?? []).map((o) => o.name ?? '')), consumers };
}

function constFloats(g: Graph, name: string | undefined): { data: Float32Array; dims: number[] } | undefined {
  const t = name ? g.inits.get(name) : undefined;
  const data = t && floatsOf(t);
  return data && t ? { data, dims: dimsOf(t) } : undefined;
}

function dynamicWeight(g: Graph, n: NodeProto): { w: Float32Array; k: number; n: number } | undefined {
  const input = n.input ?? [];
  if (g.inits.has(input[0] ?? '')) return undefined;
  const w = constFloats(g, input[1]);
  if (!w || w.dims.length !== 2) return undefined;
  if (n.opType === 'MatMul') return { w: w.data, k: w.dims[0], n: w.dims[1] };
  if (n.opType !== 'Gemm' || attrNumber(n, 'transA', 0) !== 0) return undefined;
  const shape = attrNumber(n, 'transB', 0)
    ? { w: w.data, k: w.dims[1], n: w.dims[0] }
    : { w: w.data, k: w.dims[0], n: w.dims[1] };
  // A bias of one value per column folds into DynamicQuantizeMatMul; a broadcast one does not.
  if (input[2] && constFloats(g, input[2])?.data.length !== shape.n) return undefined;
  return shape;
}

function staticWeight(g: Graph, n: NodeProto): Float32Array | undefined {
  const input = n.input ?? [];
  if (n.opType !== 'Conv' || g.inits.has(input[0] ?? '')) return undefined;
  const w = constFloats(g, input[1]);
  if (!w || w.dims.length < 3) return undefined;
  if (input[2] && !constFloats(g, input[2])) return undefined;
  return w.data;
}

/**
 * The operators of a model that 8-bit quantization speeds up, in graph order: MatMul and Gemm whose
 * second input is a constant 2-D weight, and Conv with constant weights.
 *
 * @example heavyNodes(model).filter((n) => n.kind === 'static').length // Convs
 */
export function heavyNodes(model: ModelProto): HeavyNode[] {
  const g = graphOf(model);
  const out: HeavyNode[] = [];
  for (const n of g.nodes) {
    const d = dynamicWeight(g, n);
    if (d) out.push({ name: n.name ?? '', opType: n.opType ?? '', kind: 'dynamic', weights: d.w.length });
    const s = staticWeight(g, n);
    if (s) out.push({ name: n.name ?? '', opType: 'Conv', kind: 'static', weights: s.length });
  }
  return out;
}

/** Operators that map each value on its own (or with a broadcast constant): they keep an input's range. */
const ELEMENTWISE = new Set([
  'Abs',
  'Add',
  'Cast',
  'Clip',
  'Div',
  'Exp',
  'Identity',
  'Log',
  'Max',
  'Min',
  'Mul',
  'Neg',
  'Pow',
  'Relu',
  'Sigmoid',
  'Sqrt',
  'Sub',
  'Tanh',
]);

/**
 * The Convs that read a model input directly or after only elementwise operators: the raw data's range
 * (astronomical fluxes, for one, span orders of magnitude: bright cores over faint sky) squeezed into 256
 * levels loses most of the signal, and these Convs have few input channels, so int8 saves little there.
 * `cai optimize` leaves them in fp32 by default.
 *
 * @example inputConvs(model) // ['cnn/stem', 'vit/patch_embed']
 */
export function inputConvs(model: ModelProto): string[] {
  const g = graphOf(model);
  const raw = new Set((model.graph?.input ?? []).map((i) => i.name ?? '').filter((n) => !g.inits.has(n)));
  const out: string[] = [];
  for (const n of g.nodes) {
    const ins = n.input ?? [];
    if (n.opType === 'Conv' && raw.has(ins[0] ?? '')) out.push(n.name ?? '');
    else if (ELEMENTWISE.has(n.opType ?? '') && ins.some((i) => raw.has(i)))
      for (const o of n.output ?? []) raw.add(o);
  }
  return out;
}

/** The tensor after a Conv that carries its quantized output: the Conv's, or that of its only Relu. */
function convOutput(g: Graph, conv: NodeProto): string {
  const y = (conv.output ?? [])[0] ?? '';
  const users = g.consumers.get(y) ?? [];
  if (!g.outputs.has(y) && users.length === 1 && users[0].opType === 'Relu') return users[0].output?.[0] ?? y;
  return y;
}

/**
 * The activations static quantization of these Convs needs ranges for: each Conv's input and its
 * (ReLU'd) output, in graph order, without repeats.
 *
 * @example calibrationTensors(model, new Set(['conv1']))
 */
export function calibrationTensors(model: ModelProto, convs: ReadonlySet<string>): string[] {
  const g = graphOf(model);
  const out = new Set<string>();
  for (const n of g.nodes) {
    if (!convs.has(n.name ?? '')) continue;
    out.add(n.input?.[0] ?? '');
    out.add(convOutput(g, n));
  }
  out.delete('');
  return [...out];
}

/**
 * A copy of the model that also outputs the named tensors (graph inputs are left out: the caller has
 * their values), for gathering calibration ranges.
 *
 * @example withOutputs(model, calibrationTensors(model, convs))
 */
export function withOutputs(model: ModelProto, names: readonly string[]): ModelProto {
  const graph = model.graph;
  if (!graph) throw new CaiError(ErrorCodes.model, 'model', 'has no graph');
  const inputs = new Set((graph.input ?? []).map((i) => i.name));
  const present = new Set((graph.output ?? []).map((o) => o.name));
  const extra = names.filter((n) => !inputs.has(n) && !present.has(n)).map(floatOutput);
  return onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({ ...graph, output: [...(graph.output ?? []), ...extra] }),
  });
}

/** Orders nodes so each comes after the producers of its inputs (stable for an already ordered graph). */
function topoSort(nodes: readonly NodeProto[], ready: ReadonlySet<string>): NodeProto[] {
  const produced = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => produced.set(o, i)));
  const done = new Set<number>();
  const out: NodeProto[] = [];
  const visit = (i: number, depth: number) => {
    if (done.has(i)) return;
    if (depth > nodes.length) throw new CaiError(ErrorCodes.model, 'model', 'the graph has a cycle');
    for (const input of nodes[i].input ?? []) {
      const p = produced.get(input);
      if (p !== undefined && !ready.has(input)) visit(p, depth + 1);
    }
    done.add(i);
    out.push(nodes[i]);
  };
  for (let i = 0; i < nodes.length; i++) visit(i, 0);
  return out;
}

/**
 * A quantized copy of the model (the input is not changed): the plan's MatMul/Gemm nodes become
 * DynamicQuantizeMatMul (a following bias Add folded in), the plan's Convs read dequantized int8
 * weights, int32 biases and QDQ'd activations.
 *
 * @example const q = quantizeModel(model, { dynamic, static: convs, ranges, weightType: 'int8', perChannel: true });
 */
export function quantizeModel(model: ModelProto, plan: QuantizePlan): ModelProto {
  const g = graphOf(model);
  const newInits: TensorProto[] = [];
  const dropped = new Set<NodeProto>();
  const replaced = new Map<NodeProto, NodeProto[]>();
  const usedInits = new Set<string>();
  const init = (t: TensorProto) => (newInits.push(t), t.name ?? '');

  // Dynamic MatMul / Gemm.
  for (const n of g.nodes) {
    if (!plan.dynamic.has(n.name ?? '')) continue;
    const d = dynamicWeight(g, n);
    if (!d) continue;
    const input = n.input ?? [];
    let w = d.w;
    if (n.opType === 'Gemm') {
      const alpha = attrNumber(n, 'alpha', 1);
      if (attrNumber(n, 'transB', 0)) {
        const t = new Float32Array(w.length);
        for (let i = 0; i < d.n; i++) for (let j = 0; j < d.k; j++) t[j * d.n + i] = w[i * d.k + j];
        w = t;
      }
      if (alpha !== 1) w = w.map((v) => v * alpha);
    }
    const q = quantizeWeight(w, {
      outer: d.k,
      channels: d.n,
      inner: 1,
      perChannel: plan.perChannel,
      type: plan.weightType,
    });
    const base = n.name ?? '';
    const elem = plan.weightType === 'int8' ? ELEM.int8 : ELEM.uint8;
    const wq = init(tensorProto(`${base}_Wq`, elem, [d.k, d.n], q.data));
    const scaleDims = plan.perChannel ? [d.n] : [];
    const scale = init(tensorProto(`${base}_Wscale`, ELEM.float, scaleDims, q.scales));
    const zp =
      plan.weightType === 'int8' ? '' : init(tensorProto(`${base}_Wzp`, elem, scaleDims, q.zeroPoints));
    let bias = '';
    let output = (n.output ?? [])[0] ?? '';
    if (n.opType === 'Gemm' && input[2]) {
      const c = constFloats(g, input[2]);
      const beta = attrNumber(n, 'beta', 1);
      if (c)
        bias = init(
          tensorProto(
            `${base}_bias`,
            ELEM.float,
            [d.n],
            c.data.map((v) => v * beta),
          ),
        );
      usedInits.add(input[2]);
    } else if (n.opType === 'MatMul' && !g.outputs.has(output)) {
      const users = g.consumers.get(output) ?? [];
      const add = users.length === 1 && users[0].opType === 'Add' ? users[0] : undefined;
      const other = add?.input?.find((i) => i !== output);
      const c = constFloats(g, other);
      if (add && c && c.data.length === d.n && c.dims[c.dims.length - 1] === d.n && c.dims.length === 1) {
        bias = other ?? '';
        usedInits.add(bias);
        output = add.output?.[0] ?? output;
        dropped.add(add);
      }
    }
    usedInits.add(input[1] ?? '');
    const inputs = [input[0] ?? '', wq, scale, zp, bias];
    while (inputs[inputs.length - 1] === '') inputs.pop();
    replaced.set(n, [
      nodeProto('DynamicQuantizeMatMul', inputs, [output], `${base}_quant`, { domain: 'com.microsoft' }),
    ]);
  }

  // Static QDQ Conv: every tensor a quantized Conv reads or writes gets one QuantizeLinear and one
  // DequantizeLinear per consumer (onnxruntime fuses a DQ -> op -> Q group only when it owns its DQs).
  const qdq = new Map<string, { scale: number; zeroPoint: number }>();
  const convs = g.nodes.filter((n) => plan.static.has(n.name ?? '') && staticWeight(g, n));
  for (const n of convs) {
    for (const t of [n.input?.[0] ?? '', convOutput(g, n)]) {
      const r = plan.ranges.get(t);
      if (!r)
        throw new CaiError(ErrorCodes.model, t, 'has no calibrated range; calibrate before quantizing Conv');
      qdq.set(t, activationParams(r.min, r.max));
    }
  }
  for (const n of convs) {
    const input = n.input ?? [];
    const base = n.name ?? '';
    const w = constFloats(g, input[1]);
    if (!w) continue;
    const channels = w.dims[0];
    const q = quantizeWeight(w.data, {
      outer: 1,
      channels,
      inner: w.data.length / channels,
      perChannel: plan.perChannel,
      type: 'int8',
    });
    const axis: Record<string, number> = plan.perChannel ? { axis: 0 } : {};
    const scaleDims = plan.perChannel ? [channels] : [];
    const wq = init(tensorProto(`${base}_Wq`, ELEM.int8, w.dims, q.data));
    const ws = init(tensorProto(`${base}_Wscale`, ELEM.float, scaleDims, q.scales));
    const wz = init(tensorProto(`${base}_Wzp`, ELEM.int8, scaleDims, new Int8Array(q.scales.length)));
    const nodes: NodeProto[] = [
      nodeProto('DequantizeLinear', [wq, ws, wz], [`${base}_Wdq`], `${base}_Wdq`, { attrs: axis }),
    ];
    const newInputs = [input[0] ?? '', `${base}_Wdq`];
    usedInits.add(input[1] ?? '');
    const b = constFloats(g, input[2]);
    if (b) {
      const xScale = qdq.get(input[0] ?? '')?.scale ?? 1;
      const bq = quantizeBias(b.data, xScale, q.scales);
      const bScales = plan.perChannel ? bq.scales : bq.scales.subarray(0, 1);
      const bqName = init(tensorProto(`${base}_Bq`, ELEM.int32, [b.data.length], bq.data));
      const bs = init(tensorProto(`${base}_Bscale`, ELEM.float, scaleDims, bScales));
      const bz = init(tensorProto(`${base}_Bzp`, ELEM.int32, scaleDims, new Int32Array(bScales.length)));
      nodes.push(
        nodeProto('DequantizeLinear', [bqName, bs, bz], [`${base}_Bdq`], `${base}_Bdq`, { attrs: axis }),
      );
      newInputs.push(`${base}_Bdq`);
      usedInits.add(input[2] ?? '');
    }
    const conv = onnx.NodeProto.create({ ...n, input: newInputs });
    replaced.set(n, [...nodes, conv]);
  }

  let nodes: NodeProto[] = [];
  for (const n of g.nodes) if (!dropped.has(n)) nodes.push(...(replaced.get(n) ?? [n]));
  // Inputs are rewired below: copies, so the caller's model keeps its own nodes.
  nodes = nodes.map((n) => onnx.NodeProto.create({ ...n, input: [...(n.input ?? [])] }));

  const ready = new Set<string>([
    ...(model.graph?.input ?? []).map((i) => i.name ?? ''),
    ...g.inits.keys(),
    ...newInits.map((t) => t.name ?? ''),
  ]);
  for (const [t, p] of qdq) {
    const safe = t.replace(/[^A-Za-z0-9_./:-]/g, '_');
    const s = init(tensorProto(`${safe}_scale`, ELEM.float, [], Float32Array.of(p.scale)));
    const z = init(tensorProto(`${safe}_zp`, ELEM.uint8, [], Uint8Array.of(p.zeroPoint)));
    const quantized = `${safe}_q`;
    const extra: NodeProto[] = [nodeProto('QuantizeLinear', [t, s, z], [quantized], `${safe}_Q`)];
    let k = 0;
    for (const user of nodes) {
      const ins = user.input ?? [];
      ins.forEach((name, i) => {
        if (name !== t || user.opType === 'QuantizeLinear') return;
        const dq = `${safe}_dq${k++}`;
        extra.push(nodeProto('DequantizeLinear', [quantized, s, z], [dq], `${dq}_DQ`));
        ins[i] = dq;
      });
    }
    nodes = [...nodes, ...extra];
  }
  nodes = topoSort(nodes, ready);

  const initializers = [
    ...(model.graph?.initializer ?? []).filter((t) => {
      const name = t.name ?? '';
      // A replaced weight stays only if something else still reads it.
      return !usedInits.has(name) || nodes.some((n) => (n.input ?? []).includes(name));
    }),
    ...newInits,
  ];
  const out = onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({ ...model.graph, node: nodes, initializer: initializers }),
  });
  ensureOpset(out, 'com.microsoft', 1);
  return out;
}
