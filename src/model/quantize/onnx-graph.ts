// Reading and rewriting an ONNX ModelProto in place: the few helpers the quantizer needs over onnx-proto's
// generated classes (initializers as typed arrays, consumers of a value, new tensors and nodes).
import onnxProto from 'onnx-proto';
import { CaiError, ErrorCodes } from '../../errors.js';

// onnx-proto is CommonJS: under ESM only its default export (module.exports) is reliable.
const { onnx } = onnxProto;

/** A decoded ONNX model. */
export type ModelProto = InstanceType<typeof onnx.ModelProto>;
/** One node of a graph. */
export type NodeProto = onnxProto.onnx.INodeProto;
/** One tensor (initializer). */
export type TensorProto = onnxProto.onnx.ITensorProto;

/** ONNX element type numbers the quantizer writes. */
export const ELEM = Object.freeze({
  float: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
} as const);

/** A protobuf int64 as a number (protobufjs gives a Long when the `long` package is installed). */
export function num(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Decodes ONNX bytes, naming the file in the error. @example decodeModel(bytes, 'm.onnx') */
export function decodeModel(bytes: Uint8Array, source: string): ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new CaiError(
      ErrorCodes.model,
      source,
      `is not an ONNX model (${(err as Error).message}); check the path`,
      { cause: err },
    );
  }
}

/** Encodes a model to bytes the caller owns. @example writeFileSync('q.onnx', encodeModel(m)) */
export function encodeModel(model: ModelProto): Uint8Array {
  const buf = onnx.ModelProto.encode(model).finish();
  return buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength ? buf : new Uint8Array(buf);
}

/** The model's metadata_props as a plain object. @example metadataOf(model)['cai.optimization'] */
export function metadataOf(model: ModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) out[p.key] = p.value ?? '';
  return out;
}

/** Sets (or replaces) one metadata_props entry. @example setMetadata(model, 'cai.optimization', '{}') */
export function setMetadata(model: ModelProto, key: string, value: string): void {
  const props = (model.metadataProps ?? []).filter((p) => p.key !== key);
  props.push(onnx.StringStringEntryProto.create({ key, value }));
  model.metadataProps = props;
}

/** Float values of a float32 initializer (a copy), or undefined for other element types. */
export function floatsOf(t: TensorProto): Float32Array | undefined {
  if (t.dataType !== ELEM.float) return undefined;
  const count = (t.dims ?? []).reduce((a: number, d) => a * num(d), 1);
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData.length);
    copy.set(t.rawData);
    return new Float32Array(copy.buffer, 0, count);
  }
  if (t.floatData && t.floatData.length === count) return Float32Array.from(t.floatData);
  return undefined;
}

/** Dimensions of an initializer as numbers. */
export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => num(d));
}

/** A new initializer holding `data` (raw little-endian). */
export function tensorProto(
  name: string,
  elemType: number,
  dims: readonly number[],
  data: Float32Array | Int8Array | Uint8Array | Int32Array,
): TensorProto {
  return onnx.TensorProto.create({
    name,
    dims: [...dims],
    dataType: elemType,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

/** A new node. `attrs` numbers are INT attributes. */
export function nodeProto(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  name: string,
  options: { domain?: string; attrs?: Readonly<Record<string, number>> } = {},
): NodeProto {
  return onnx.NodeProto.create({
    name,
    opType,
    domain: options.domain ?? '',
    input: [...inputs],
    output: [...outputs],
    attribute: Object.entries(options.attrs ?? {}).map(([key, i]) =>
      onnx.AttributeProto.create({ name: key, type: onnx.AttributeProto.AttributeType.INT, i }),
    ),
  });
}

/** An INT or FLOAT attribute of a node, or `fallback`. */
export function attrNumber(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  if (!a) return fallback;
  if (a.type === onnx.AttributeProto.AttributeType.FLOAT) return a.f ?? fallback;
  return num(a.i);
}

/** Adds an opset import for `domain` unless the model has one. */
export function ensureOpset(model: ModelProto, domain: string, version: number): void {
  const imports = model.opsetImport ?? [];
  if (imports.some((o) => (o.domain ?? '') === domain)) return;
  imports.push(onnx.OperatorSetIdProto.create({ domain, version }));
  model.opsetImport = imports;
}

/** A graph output of element type float32 and unknown shape, for calibration. */
export function floatOutput(name: string): InstanceType<typeof onnx.ValueInfoProto> {
  const tensorType = onnx.TypeProto.Tensor.create({ elemType: ELEM.float });
  return onnx.ValueInfoProto.create({ name, type: onnx.TypeProto.create({ tensorType }) });
}

/** Gives every unnamed node a unique name (`<op>_<i>`) so layers can be named in reports and flags. */
export function nameNodes(model: ModelProto): void {
  const nodes = model.graph?.node ?? [];
  const taken = new Set(nodes.map((n) => n.name).filter(Boolean));
  nodes.forEach((n, i) => {
    if (n.name) return;
    let name = `${n.opType}_${i}`;
    for (let k = 1; taken.has(name); k++) name = `${n.opType}_${i}_${k}`;
    taken.add(name);
    n.name = name;
  });
}
