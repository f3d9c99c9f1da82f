// SmoothQuant (Xiao et al. 2023): a MatMul's activation X [.., K] and constant weight W [K, N] are
// rescaled per input channel, X / s and s * W, which leaves X W unchanged while moving the activation's
// channel-to-channel spread (a few channels far larger than the rest, as trained transformers' LayerNorm
// outputs have) into the weights, where per-column int8 scales absorb it. s_k = max|X_k|^alpha /
// max|W_k|^(1-alpha) from calibration. The 1/s is folded into the LayerNorm that produces X when X feeds
// only the smoothed MatMuls; otherwise a Mul by 1/s is inserted before them.
import onnxProto from 'onnx-proto';
import {
  dimsOf,
  ELEM,
  floatsOf,
  nodeProto,
  tensorProto,
  type ModelProto,
  type NodeProto,
} from './onnx-graph.js';

const { onnx } = onnxProto;

/** Per-channel absolute maxima of tensors over calibration batches (the last axis is the channel). */
export class ChannelMax {
  private readonly seen = new Map<string, Float32Array>();

  /** Adds one batch of a tensor whose last axis has `channels` entries. */
  add(name: string, values: ArrayLike<number>, channels: number): void {
    let m = this.seen.get(name);
    if (!m || m.length !== channels) {
      m = new Float32Array(channels);
      this.seen.set(name, m);
    }
    for (let i = 0; i < values.length; i++) {
      const v = Math.abs(values[i]);
      const c = i % channels;
      if (v > m[c]) m[c] = v;
    }
  }

  /** The maxima of a tensor, or undefined when none were collected. */
  get(name: string): Float32Array | undefined {
    return this.seen.get(name);
  }
}

/** The activation tensors SmoothQuant needs per-channel maxima of: the inputs of these MatMuls. */
export function smoothTensors(model: ModelProto, matmuls: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const n of model.graph?.node ?? [])
    if (n.opType === 'MatMul' && matmuls.has(n.name ?? '')) out.add(n.input?.[0] ?? '');
  out.delete('');
  return [...out];
}

/**
 * A copy of the model, equal in fp32 up to rounding, whose named MatMuls (with a constant 2-D weight)
 * read their input divided by per-channel scales and hold weights multiplied by them.
 *
 * @example const smoothed = smoothModel(model, new Set(['fc1']), channelMax, 0.5);
 */
export function smoothModel(
  model: ModelProto,
  matmuls: ReadonlySet<string>,
  channelMax: ChannelMax,
  alpha: number,
): ModelProto {
  const graph = model.graph;
  if (!graph) return model;
  const nodes = (graph.node ?? []).map((n) => onnx.NodeProto.create({ ...n, input: [...(n.input ?? [])] }));
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const added: ReturnType<typeof tensorProto>[] = [];
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) for (const i of n.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n);
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const inserted: { before: NodeProto; node: NodeProto }[] = [];
  // Initializers replaced by smoothed copies: dropped when nothing reads them any more.
  const swapped = new Set<string>();

  const weightOf = (n: NodeProto) => {
    const t = inits.get(n.input?.[1] ?? '');
    const w = t && floatsOf(t);
    return t && w && dimsOf(t).length === 2 ? { w, k: dimsOf(t)[0], n: dimsOf(t)[1] } : undefined;
  };
  const groups = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    if (n.opType !== 'MatMul' || !matmuls.has(n.name ?? '') || !weightOf(n)) continue;
    const x = n.input?.[0] ?? '';
    groups.set(x, [...(groups.get(x) ?? []), n]);
  }
  for (const [x, group] of groups) {
    const xMax = channelMax.get(x);
    const first = weightOf(group[0]);
    if (!xMax || !first || group.some((g) => weightOf(g)?.k !== xMax.length)) continue;
    const k = xMax.length;
    const wMax = new Float32Array(k);
    for (const g of group) {
      const { w, n } = weightOf(g) ?? first;
      for (let i = 0; i < k; i++)
        for (let j = 0; j < n; j++) wMax[i] = Math.max(wMax[i], Math.abs(w[i * n + j]));
    }
    const s = new Float32Array(k);
    for (let i = 0; i < k; i++) {
      const v = Math.max(xMax[i], 1e-5) ** alpha / Math.max(wMax[i], 1e-5) ** (1 - alpha);
      s[i] = Math.min(1e4, Math.max(1e-4, v));
    }
    for (const g of group) {
      const { w, n } = weightOf(g) ?? first;
      const scaled = new Float32Array(w.length);
      for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) scaled[i * n + j] = w[i * n + j] * s[i];
      swapped.add(g.input?.[1] ?? '');
      const name = `${g.input?.[1]}_smooth_${g.name}`;
      added.push(tensorProto(name, ELEM.float, [k, n], scaled));
      (g.input ?? [])[1] = name;
    }
    const users = consumers.get(x) ?? [];
    const ln = producer.get(x);
    const gamma = ln && inits.get(ln.input?.[1] ?? '');
    const beta = ln && inits.get(ln.input?.[2] ?? '');
    const foldable =
      ln?.opType === 'LayerNormalization' &&
      (ln.output ?? []).length === 1 &&
      !outputs.has(x) &&
      users.every((u) => group.includes(u)) &&
      gamma &&
      floatsOf(gamma)?.length === k &&
      (!ln.input?.[2] || (beta && floatsOf(beta)?.length === k));
    if (foldable && ln && gamma) {
      const gv = floatsOf(gamma) ?? new Float32Array(k);
      const gName = `${gamma.name}_smooth_${ln.name}`;
      added.push(
        tensorProto(
          gName,
          ELEM.float,
          [k],
          gv.map((v, i) => v / s[i]),
        ),
      );
      const ins = ln.input ?? [];
      swapped.add(ins[1] ?? '').add(ins[2] ?? '');
      ins[1] = gName;
      if (beta) {
        const bv = floatsOf(beta) ?? new Float32Array(k);
        const bName = `${beta.name}_smooth_${ln.name}`;
        added.push(
          tensorProto(
            bName,
            ELEM.float,
            [k],
            bv.map((v, i) => v / s[i]),
          ),
        );
        ins[2] = bName;
      }
    } else {
      const safe = x.replace(/[^A-Za-z0-9_./:-]/g, '_');
      const inv = `${safe}_smooth_inv`;
      added.push(
        tensorProto(
          inv,
          ELEM.float,
          [k],
          s.map((v) => 1 / v),
        ),
      );
      const scaledX = `${safe}_smoothed`;
      inserted.push({ before: group[0], node: nodeProto('Mul', [x, inv], [scaledX], `${safe}_smooth`) });
      for (const g of group) (g.input ?? [])[0] = scaledX;
    }
  }
  const ordered: NodeProto[] = [];
  for (const n of nodes) {
    for (const i of inserted) if (i.before === n) ordered.push(i.node);
    ordered.push(n);
  }
  const used = new Set(ordered.flatMap((n) => n.input ?? []));
  const replaced = new Set([...groups.values()].flat().map((g) => g.name));
  const stale = (name: string) => !used.has(name) && name.length > 0 && replaced.size > 0;
  return onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({
      ...graph,
      node: ordered,
      initializer: [
        ...(graph.initializer ?? []).filter((t) => !(swapped.has(t.name ?? '') && stale(t.name ?? ''))),
        ...added,
      ],
    }),
  });
}
