// PyTorch's sigmoid at a model's outputs. onnxruntime's CPU Sigmoid op (MLAS: 0.5 plus a rational
// approximation, inputs clamped to [-18, 18]) is accurate to ~1e-7 in absolute terms only: where the
// sigmoid is small its relative error reaches 1e-2 at 1e-5 and 1 at 1e-7, and it is 0 below x = -18.
// PyTorch computes 1 / (1 + exp(-x)). A model whose predictions come out of a Sigmoid (probabilities,
// scores, a bounded regression head) would silently give other numbers than the user's PyTorch
// pipeline, so a float32 Sigmoid whose values reach a graph output is replaced, when the model is
// loaded, by Neg -> Exp -> Add(1) -> Reciprocal. Interior Sigmoids (SiLU/Swish, gates) are left to
// onnxruntime: it fuses them, and only their absolute error matters downstream.
import { open } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import {
  ELEM,
  decodeModel,
  encodeModel,
  num,
  type ModelProto,
  type NodeProto,
} from './quantize/onnx-graph.js';

const { onnx } = onnxProto;

/** The line a summary names the rewrite with. */
export const EXACT_SIGMOID_NOTE = 'sigmoid outputs computed as 1/(1+exp(-x))';

/** Ops that move or copy values without mixing them: data input(s) first (Concat: all inputs). */
const PASS_THROUGH = new Set([
  'Identity',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Slice',
  'Split',
  'Gather',
  'Expand',
  'Tile',
]);
/**
 * Ops that scale by a constant (an initializer or a Constant node): the sigmoid's relative error in its
 * tail survives a scaling (a redshift head is `z_max * sigmoid(x)`). An added constant is not followed:
 * after `sigmoid(x) + c` only the absolute error counts, and that of the op is fine.
 */
const SCALE = new Set(['Mul', 'Div']);

const SIGMOID = 'Sigmoid';
/** `Sigmoid` in a model's bytes: a model without it is passed to onnxruntime unread. */
const SIGMOID_BYTES = Buffer.from(SIGMOID);

/**
 * Whether a model file contains the bytes `Sigmoid`, read in 1 MB chunks: a model without them (most)
 * is never held in memory by CAI beside onnxruntime's own copy, whatever its size.
 *
 * @example if (await mentionsSigmoid('resnet50.onnx')) ...
 */
export async function mentionsSigmoid(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const keep = SIGMOID_BYTES.length - 1;
    const buf = Buffer.alloc(2 ** 20 + keep);
    let carried = 0;
    for (let pos = 0; ;) {
      const { bytesRead } = await handle.read(buf, carried, buf.length - carried, pos);
      if (bytesRead === 0) return false;
      const end = carried + bytesRead;
      if (buf.subarray(0, end).indexOf(SIGMOID_BYTES) >= 0) return true;
      pos += bytesRead;
      // The last bytes may hold the start of a match that continues in the next chunk.
      carried = Math.min(keep, end);
      buf.copy(buf, 0, end - carried, end);
    }
  } finally {
    await handle.close();
  }
}

/**
 * The doc_string of each Reciprocal the rewrite writes, followed by the replaced node's name: a graph
 * saved after the rewrite (`cai optimize`) still says what it computes, and the summary of a run of it.
 */
const MARK = 'cai exact Sigmoid: ';

/** The result of `exactSigmoidOutputs`: the rewritten model and the Sigmoid nodes replaced. */
export interface SigmoidRewrite {
  /** The rewritten model; undefined when every output Sigmoid was rewritten before (a saved graph). */
  readonly bytes?: Uint8Array;
  /** Names (or output names) of the replaced nodes, in this rewrite or an earlier one, sorted. */
  readonly nodes: readonly string[];
  /** True when some initializer lives in an external file (resolved next to the original model). */
  readonly externalData: boolean;
}

function defaultOpset(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  return entry ? num(entry.version) : 0;
}

/**
 * The float32 Sigmoid nodes of the main graph whose values reach a graph output through ops that do
 * not mix values (`PASS_THROUGH`, a constant scaling), in graph order.
 */
export function outputSigmoids(model: ModelProto): NodeProto[] {
  const graph = model.graph;
  if (!graph) return [];
  const nodes = graph.node ?? [];
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) if (o) producer.set(o, n);
  const constants = new Set<string>((graph.initializer ?? []).map((t) => t.name ?? ''));
  for (const n of nodes)
    if (n.opType === 'Constant' && (n.domain ?? '') === '') constants.add(n.output?.[0] ?? '');
  const found = new Set<NodeProto>();
  const seen = new Set<string>();
  const walk = (value: string): void => {
    if (seen.has(value)) return;
    seen.add(value);
    const n = producer.get(value);
    if (!n || (n.domain ?? '') !== '') return;
    const inputs = (n.input ?? []).filter(Boolean);
    if (n.opType === SIGMOID) found.add(n);
    else if (n.opType === 'Concat') inputs.forEach(walk);
    else if (PASS_THROUGH.has(n.opType ?? '') && inputs[0]) walk(inputs[0]);
    else if (SCALE.has(n.opType ?? '') && inputs.length === 2) {
      // Mul: either side may be the constant; Div: only the divisor.
      if (constants.has(inputs[1])) walk(inputs[0]);
      else if (n.opType === 'Mul' && constants.has(inputs[0])) walk(inputs[1]);
    }
  };
  for (const o of graph.output ?? []) {
    if (o.type?.tensorType?.elemType !== ELEM.float) continue;
    walk(o.name ?? '');
  }
  return nodes.filter((n) => found.has(n));
}

/**
 * The model with every float32 Sigmoid that feeds an output (see `outputSigmoids`) replaced by
 * Neg -> Exp -> Add(1) -> Reciprocal under the same output name (the Reciprocal marked in its
 * doc_string); only the names when a saved graph carries the rewrite already; undefined when there is
 * neither (then the model is loaded as it is). Models of opset < 7 (no broadcasting Add)
 * are left alone.
 *
 * @example const r = exactSigmoidOutputs(readFileSync('m.onnx')); if (r) load(r.bytes);
 */
export function exactSigmoidOutputs(bytes: Uint8Array, source = 'model'): SigmoidRewrite | undefined {
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(SIGMOID_BYTES) < 0)
    return undefined;
  const model = decodeModel(bytes, source);
  if (defaultOpset(model) < 7) return undefined;
  const targets = outputSigmoids(model);
  const earlier = (model.graph?.node ?? []).flatMap((n) =>
    n.opType === 'Reciprocal' && n.docString?.startsWith(MARK) ? [n.docString.slice(MARK.length)] : [],
  );
  // Sorted: a saved graph lists its nodes in the order onnxruntime left them.
  if (targets.length === 0)
    return earlier.length ? { nodes: earlier.sort(), externalData: false } : undefined;
  const graph = model.graph!;
  const taken = new Set<string>();
  for (const n of graph.node ?? []) for (const v of [...(n.input ?? []), ...(n.output ?? [])]) taken.add(v);
  for (const t of graph.initializer ?? []) taken.add(t.name ?? '');
  for (const v of graph.input ?? []) taken.add(v.name ?? '');
  const fresh = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  const one = fresh('cai_exact_sigmoid_one');
  graph.initializer = [
    ...(graph.initializer ?? []),
    onnx.TensorProto.create({ name: one, dims: [], dataType: ELEM.float, floatData: [1] }),
  ];
  const replaced: string[] = [];
  const rewritten: NodeProto[] = [];
  for (const n of graph.node ?? []) {
    if (!targets.includes(n)) {
      rewritten.push(n);
      continue;
    }
    const x = n.input![0];
    const y = n.output![0];
    const label = n.name || y;
    replaced.push(label);
    const neg = fresh(`${y}_cai_neg`);
    const exp = fresh(`${y}_cai_exp`);
    const den = fresh(`${y}_cai_den`);
    const node = (op: string, inputs: string[], output: string) =>
      onnx.NodeProto.create({
        name: fresh(`${label}_cai_${op.toLowerCase()}`),
        opType: op,
        input: inputs,
        output: [output],
      });
    rewritten.push(node('Neg', [x], neg), node('Exp', [neg], exp), node('Add', [exp, one], den), {
      ...node('Reciprocal', [den], y),
      docString: `${MARK}${label}`,
    });
  }
  graph.node = rewritten;
  const externalData = (graph.initializer ?? []).some(
    (t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL,
  );
  return { bytes: encodeModel(model), nodes: [...earlier, ...replaced].sort(), externalData };
}
