// PyTorch's answers at a model's outputs. A few of onnxruntime's CPU kernels are accurate only in absolute
// terms, so where their values are small (a rare class's probability, a log-probability, a score pushed
// into the tail) CAI's predictions would silently differ from the user's PyTorch pipeline by up to 100%.
// When a model is loaded, each float32 node of these kinds whose values reach a graph output is replaced
// by ops that compute PyTorch's formula (docs/performance.md, "Float precision against PyTorch", measures
// every op; Softmax, LogSoftmax, Tanh, Erf, GELU, Exp, Log and Softplus are as precise as PyTorch's and
// are left alone):
// - Sigmoid: onnxruntime's op (MLAS: 0.5 plus a rational approximation, inputs clamped to [-18, 18]) is
//   ~1e-7 off in absolute terms: 1e-2 relative at 1e-5, 1 at 1e-7, 0 below x = -18. PyTorch computes
//   1 / (1 + exp(-x)): Neg -> Exp -> Add(1) -> Reciprocal.
// - Log(Sigmoid(x)), what `torch.onnx.export` writes for F.logsigmoid: the Sigmoid's zeros make it -inf
//   below x = -18, and its rounding near 1 makes small log-probabilities 100% off. PyTorch computes
//   -softplus(-x): Neg -> Softplus -> Neg (the Sigmoid stays only if something else reads it).
// - HardSigmoid(alpha, beta): onnxruntime computes alpha * x + beta, which loses ~2e-8 absolute where the
//   result is near 0 (4e-4 relative at 1e-4). PyTorch computes min(max(x + 3, 0), 6) / 6, which is
//   Add(beta/alpha) -> Clip(0, 1/alpha) -> Div(1/alpha) for its export's alpha = 1/6, beta = 1/2.
// Interior nodes (SiLU/Swish, gates, attention) are left to onnxruntime: it fuses them, and only their
// absolute error matters downstream.
import { open } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import {
  ELEM,
  attrNumber,
  decodeModel,
  encodeModel,
  num,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './quantize/onnx-graph.js';

const { onnx } = onnxProto;

/** The line a summary names the sigmoid rewrite with. */
export const EXACT_SIGMOID_NOTE = 'sigmoid outputs computed as 1/(1+exp(-x))';
/** The line a summary names the log-sigmoid rewrite with. */
export const EXACT_LOG_SIGMOID_NOTE = 'log-sigmoid outputs computed as -softplus(-x)';
/** The line a summary names the hard-sigmoid rewrite with (PyTorch's export: clip(x + 3, 0, 6) / 6). */
export const EXACT_HARD_SIGMOID_NOTE =
  'hard-sigmoid outputs computed as clip(x + beta/alpha, 0, 1/alpha) / (1/alpha)';

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
 * Ops that scale by a constant (an initializer or a Constant node): the relative error in a tail survives
 * a scaling (a redshift head is `z_max * sigmoid(x)`). An added constant is not followed: after
 * `sigmoid(x) + c` only the absolute error counts, and that of the op is fine.
 */
const SCALE = new Set(['Mul', 'Div']);

/** `Sigmoid` in a model's bytes (also in `HardSigmoid` and in the marks below): without it, nothing to do. */
const SIGMOID_BYTES = Buffer.from('Sigmoid');

/**
 * Whether a model file contains the bytes `Sigmoid` (every op rewritten here is or reads one), read in
 * 1 MB chunks: a model without them (most) is never held in memory by CAI beside onnxruntime's own copy,
 * whatever its size.
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

/** One kind of rewrite and the nodes it replaced (now or in an earlier save of the graph), sorted. */
export interface RewriteKind {
  readonly note: string;
  readonly nodes: readonly string[];
}

/** The result of `exactOutputs`: the rewritten model and what was replaced. */
export interface OutputRewrite {
  /** The rewritten model; undefined when every target was rewritten before (a saved graph). */
  readonly bytes?: Uint8Array;
  /** Per kind (sigmoid, log-sigmoid, hard-sigmoid, in that order), only kinds with nodes. */
  readonly kinds: readonly RewriteKind[];
  /** True when some initializer lives in an external file (resolved next to the original model). */
  readonly externalData: boolean;
}

/**
 * The lines a run's `model_rewrites` holds for a rewrite, e.g.
 * `sigmoid outputs computed as 1/(1+exp(-x)) (2 nodes: /Sigmoid, /Sigmoid_1)`.
 */
export function rewriteNotes(rewrite: OutputRewrite): string[] {
  return rewrite.kinds.map(
    ({ note, nodes }) =>
      `${note} (${nodes.length} node${nodes.length === 1 ? '' : 's'}: ${nodes.join(', ')})`,
  );
}

function defaultOpset(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  return entry ? num(entry.version) : 0;
}

/**
 * The nodes of the main graph whose values reach a float32 graph output through ops that do not mix
 * values (`PASS_THROUGH`, a constant scaling): the first other node on each path back from an output,
 * in graph order.
 */
function outputNodes(model: ModelProto): NodeProto[] {
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
    if (n.opType === 'Concat') inputs.forEach(walk);
    else if (PASS_THROUGH.has(n.opType ?? '')) {
      if (inputs[0]) walk(inputs[0]);
    } else if (SCALE.has(n.opType ?? '') && inputs.length === 2) {
      // Mul: either side may be the constant; Div: only the divisor.
      if (constants.has(inputs[1])) walk(inputs[0]);
      else if (n.opType === 'Mul' && constants.has(inputs[0])) walk(inputs[1]);
      else found.add(n);
    } else found.add(n);
  };
  for (const o of graph.output ?? []) {
    if (o.type?.tensorType?.elemType !== ELEM.float) continue;
    walk(o.name ?? '');
  }
  return nodes.filter((n) => found.has(n));
}

/** The float32 Sigmoid nodes whose values reach a graph output (see `outputNodes`), in graph order. */
export function outputSigmoids(model: ModelProto): NodeProto[] {
  return outputNodes(model).filter((n) => n.opType === 'Sigmoid');
}

/** A rewrite rule: its note, its mark and which output nodes it takes (`exactOutputs` writes the ops). */
interface Rule {
  readonly note: string;
  /** Prefix of the doc_string of the last node written, followed by the replaced node's name. */
  readonly mark: string;
  readonly takes: (n: NodeProto, producer: ReadonlyMap<string, NodeProto>) => boolean;
}

const RULES = {
  sigmoid: { note: EXACT_SIGMOID_NOTE, mark: 'cai exact Sigmoid: ', takes: (n) => n.opType === 'Sigmoid' },
  logSigmoid: {
    note: EXACT_LOG_SIGMOID_NOTE,
    mark: 'cai exact LogSigmoid: ',
    takes: (n, producer) => {
      const p = n.opType === 'Log' ? producer.get(n.input?.[0] ?? '') : undefined;
      return p?.opType === 'Sigmoid' && (p.domain ?? '') === '';
    },
  },
  hardSigmoid: {
    note: EXACT_HARD_SIGMOID_NOTE,
    mark: 'cai exact HardSigmoid: ',
    // alpha <= 0 (a decreasing hard sigmoid) is nothing PyTorch writes: left as it is.
    takes: (n) => n.opType === 'HardSigmoid' && attrNumber(n, 'alpha', 0.2) > 0,
  },
} satisfies Record<string, Rule>;

/**
 * The model with every float32 Sigmoid, Log(Sigmoid) and HardSigmoid whose values reach an output (see
 * `outputNodes`) computed as PyTorch computes it, under the same output names (the last node written for
 * each marked in its doc_string); only the notes when a saved graph carries the rewrites already;
 * undefined when there is neither (then the model is loaded as it is). Models of opset < 7 (no
 * broadcasting Add) are left alone.
 *
 * @example const r = exactOutputs(readFileSync('m.onnx')); if (r?.bytes) load(r.bytes);
 */
export function exactOutputs(bytes: Uint8Array, source = 'model'): OutputRewrite | undefined {
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(SIGMOID_BYTES) < 0)
    return undefined;
  const model = decodeModel(bytes, source);
  const opset = defaultOpset(model);
  if (opset < 7) return undefined;
  const graph = model.graph;
  if (!graph) return undefined;
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) producer.set(o, n);
  const rules = Object.values(RULES) as Rule[];
  const targets = new Map<NodeProto, Rule>();
  for (const n of outputNodes(model)) {
    const rule = rules.find((r) => r.takes(n, producer));
    if (rule) targets.set(n, rule);
  }
  const earlier = new Map<Rule, string[]>(rules.map((r) => [r, []]));
  for (const n of graph.node ?? [])
    for (const r of rules)
      if (n.docString?.startsWith(r.mark)) earlier.get(r)!.push(n.docString.slice(r.mark.length));
  const replaced = new Map<Rule, string[]>(rules.map((r) => [r, []]));
  const kinds = (): RewriteKind[] =>
    rules.flatMap((r) => {
      // Sorted: a saved graph lists its nodes in the order onnxruntime left them.
      const nodes = [...earlier.get(r)!, ...replaced.get(r)!].sort();
      return nodes.length ? [{ note: r.note, nodes }] : [];
    });
  if (targets.size === 0) {
    const found = kinds();
    return found.length ? { kinds: found, externalData: false } : undefined;
  }

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
  const added: TensorProto[] = [];
  const scalar = (base: string, value: number): string => {
    const name = fresh(base);
    added.push(onnx.TensorProto.create({ name, dims: [], dataType: ELEM.float, floatData: [value] }));
    return name;
  };
  let one: string | undefined;

  // A Sigmoid read only by Log(Sigmoid) nodes that are rewritten is dropped with them.
  const readers = new Map<string, number>();
  for (const n of graph.node ?? []) for (const v of n.input ?? []) readers.set(v, (readers.get(v) ?? 0) + 1);
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const dropped = new Set<NodeProto>();
  for (const [n, rule] of targets) {
    if (rule !== RULES.logSigmoid) continue;
    const s = producer.get(n.input![0])!;
    const y = s.output![0];
    const left = readers.get(y)! - 1;
    readers.set(y, left);
    if (left === 0 && !graphOutputs.has(y) && !targets.has(s)) dropped.add(s);
  }

  const rewritten: NodeProto[] = [];
  for (const n of graph.node ?? []) {
    if (dropped.has(n)) continue;
    const rule = targets.get(n);
    if (!rule) {
      rewritten.push(n);
      continue;
    }
    const y = n.output![0];
    const label = n.name || y;
    replaced.get(rule)!.push(label);
    const node = (op: string, inputs: string[], output: string, attribute: NodeProto['attribute'] = []) =>
      onnx.NodeProto.create({
        name: fresh(`${label}_cai_${op.toLowerCase()}`),
        opType: op,
        input: inputs,
        output: [output],
        attribute,
      });
    const last = (op: string, inputs: string[], attribute: NodeProto['attribute'] = []) => ({
      ...node(op, inputs, y, attribute),
      docString: `${rule.mark}${label}`,
    });
    if (rule === RULES.sigmoid) {
      // 1 / (1 + exp(-x))
      const x = n.input![0];
      one ??= scalar('cai_exact_sigmoid_one', 1);
      const neg = fresh(`${y}_cai_neg`);
      const exp = fresh(`${y}_cai_exp`);
      const den = fresh(`${y}_cai_den`);
      rewritten.push(
        node('Neg', [x], neg),
        node('Exp', [neg], exp),
        node('Add', [exp, one], den),
        last('Reciprocal', [den]),
      );
    } else if (rule === RULES.logSigmoid) {
      // log(sigmoid(x)) = -softplus(-x)
      const x = producer.get(n.input![0])!.input![0];
      const neg = fresh(`${y}_cai_neg`);
      const sp = fresh(`${y}_cai_softplus`);
      rewritten.push(node('Neg', [x], neg), node('Softplus', [neg], sp), last('Neg', [sp]));
    } else {
      // min(max(x + beta/alpha, 0), 1/alpha) / (1/alpha): PyTorch's (x + 3).clamp(0, 6) / 6 for
      // alpha = 1/6 and beta = 1/2 in float32 (beta/alpha and 1/alpha round to 3 and 6).
      const alpha = attrNumber(n, 'alpha', 0.2);
      const beta = attrNumber(n, 'beta', 0.5);
      const shift = scalar(`${y}_cai_shift`, Math.fround(beta / alpha));
      const top = Math.fround(1 / alpha);
      const zero = opset >= 11 ? scalar(`${y}_cai_zero`, 0) : '';
      const span = scalar(`${y}_cai_span`, top);
      const sum = fresh(`${y}_cai_sum`);
      const clipped = fresh(`${y}_cai_clip`);
      const float = (name: string, f: number) =>
        onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f });
      rewritten.push(
        node('Add', [n.input![0], shift], sum),
        // Clip takes its bounds as inputs from opset 11 on, as attributes before.
        opset >= 11
          ? node('Clip', [sum, zero, span], clipped)
          : node('Clip', [sum], clipped, [float('min', 0), float('max', top)]),
        last('Div', [clipped, span]),
      );
    }
  }
  graph.node = rewritten;
  graph.initializer = [...(graph.initializer ?? []), ...added];
  const externalData = (graph.initializer ?? []).some(
    (t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL,
  );
  return { bytes: encodeModel(model), kinds: kinds(), externalData };
}
