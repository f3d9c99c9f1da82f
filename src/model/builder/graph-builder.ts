import onnxProto from 'onnx-proto';
import { CaiError, ErrorCodes } from '../../errors.js';
import { Rng } from './random.js';

// onnx-proto is CommonJS: under ESM only its default export (module.exports) is reliable.
const { onnx } = onnxProto;

/** Element types the builder can declare for inputs, outputs and initializers. */
export type BuilderDType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'bool';

/** A dimension: a fixed size, or a symbolic name such as `'N'` for the batch. */
export type Dim = number | string;

const ONNX_DTYPE: Record<BuilderDType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** The ONNX `TensorProto.DataType` number of a dtype. @example onnxDataType('float32') // 1 */
export function onnxDataType(dtype: BuilderDType): number {
  return ONNX_DTYPE[dtype];
}

/**
 * A float attribute. Plain numbers are always INT attributes, so that `1` can never silently become a
 * float (or `1e-5` an int); floats say so.
 *
 * @example b.node('LayerNormalization', [x, s, c], { axis: -1, epsilon: floatAttr(1e-5) })
 */
export interface FloatAttr {
  readonly float: number;
}

/** Wraps a number as a FLOAT attribute. @example floatAttr(1e-5) */
export function floatAttr(value: number): FloatAttr {
  return { float: value };
}

/** An attribute value: INT, INTS, STRING or FLOAT (see {@link floatAttr}). */
export type AttrValue = number | readonly number[] | string | FloatAttr;

/** Initializer payloads: raw little-endian data of one of these arrays. */
export type InitializerData =
  Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

/** Options for {@link GraphBuilder.toModelBytes}. */
export interface ModelBytesOptions {
  /** Default-domain opset; 17 is the first with LayerNormalization. */
  readonly opset?: number;
  readonly producer?: string;
  readonly producerVersion?: string;
  readonly docString?: string;
}

interface ValueInfo {
  readonly name: string;
  readonly dtype: BuilderDType;
  readonly shape: readonly Dim[] | undefined;
}

interface Initializer {
  readonly name: string;
  readonly dtype: BuilderDType;
  readonly dims: readonly number[];
  readonly data: InitializerData;
}

interface NodeSpec {
  readonly name: string;
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, AttrValue>>;
}

/**
 * Builds an ONNX graph node by node, with deterministic initial weights from a seeded {@link Rng}, and
 * serializes it to `ModelProto` bytes. Values are referred to by name; every node input must already
 * exist, so wiring mistakes fail at build time rather than inside onnxruntime.
 *
 * @example
 * const b = new GraphBuilder({ seed: 1 });
 * const x = b.input('x', 'float32', ['N', 4]);
 * const y = b.node('Relu', [x], {}, { output: 'y' });
 * b.output(y, 'float32', ['N', 4]);
 * const bytes = b.toModelBytes({ producer: 'cai' });
 */
export class GraphBuilder {
  /** The weight source; layer helpers draw from it in build order. */
  readonly rng: Rng;
  readonly graphName: string;
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly nodes: NodeSpec[] = [];
  private readonly values = new Set<string>();
  private readonly nodeNames = new Set<string>();
  private readonly constants = new Map<string, string>();
  private readonly opCounts = new Map<string, number>();
  private readonly scopes: string[] = [];

  constructor(options: { name?: string; seed?: number } = {}) {
    this.graphName = options.name ?? 'main';
    this.rng = new Rng(options.seed ?? 0);
  }

  /** Declares a graph input; `shape` undefined means any rank. @example b.input('image', 'float32', ['N', 5, 32, 32]) */
  input(name: string, dtype: BuilderDType, shape?: readonly Dim[]): string {
    this.define(name);
    this.inputs.push({ name, dtype, shape: shape && [...shape] });
    return name;
  }

  /** Declares an existing value as a graph output. @example b.output('redshift', 'float32', ['N', 1]) */
  output(name: string, dtype: BuilderDType, shape?: readonly Dim[]): void {
    if (!this.values.has(name)) throw this.missing(name, 'output');
    this.outputs.push({ name, dtype, shape: shape && [...shape] });
  }

  /** Adds a weight tensor under a scoped, unique name and returns that name. @example b.initializer('w', data, [4, 4]) */
  initializer(name: string, data: InitializerData, dims: readonly number[], dtype?: BuilderDType): string {
    const count = dims.reduce((a, d) => a * d, 1);
    if (count !== data.length) {
      throw new CaiError(
        ErrorCodes.model,
        name,
        `initializer has ${data.length} values but dims [${dims}] need ${count}`,
      );
    }
    const unique = this.uniqueName(this.scoped(name));
    this.define(unique);
    this.initializers.push({ name: unique, dtype: dtype ?? dtypeOf(data), dims: [...dims], data });
    return unique;
  }

  /** A weight of normals with standard deviation `std`, drawn from {@link rng}. @example b.randomNormal('w', [64, 64], 0.02) */
  randomNormal(name: string, dims: readonly number[], std: number, mean = 0): string {
    const data = new Float32Array(dims.reduce((a, d) => a * d, 1));
    return this.initializer(name, this.rng.fillNormal(data, std, mean), dims);
  }

  /** A weight of uniforms in [lo, hi). @example b.randomUniform('var', [64], 0.5, 1.5) */
  randomUniform(name: string, dims: readonly number[], lo: number, hi: number): string {
    const data = new Float32Array(dims.reduce((a, d) => a * d, 1));
    return this.initializer(name, this.rng.fillUniform(data, lo, hi), dims);
  }

  /** A weight filled with one value, e.g. LayerNorm scales. @example b.filled('gamma', [192], 1) */
  filled(name: string, dims: readonly number[], value: number): string {
    return this.initializer(name, new Float32Array(dims.reduce((a, d) => a * d, 1)).fill(value), dims);
  }

  /**
   * A shared constant: the same values and dtype give the same initializer, outside any scope. A number
   * is a scalar (dims `[]`); an array is 1-D.
   *
   * @example b.constant(0.5) // scalar float32
   * @example b.constant([-1, 64, 192], 'int64') // a Reshape target
   */
  constant(values: number | readonly number[], dtype: 'float32' | 'int64' = 'float32'): string {
    const list = typeof values === 'number' ? [values] : [...values];
    const dims = typeof values === 'number' ? [] : [list.length];
    const key = `${dtype}:${dims.length}:${list.join(',')}`;
    const known = this.constants.get(key);
    if (known !== undefined) return known;
    const data = dtype === 'int64' ? BigInt64Array.from(list, (v) => BigInt(v)) : Float32Array.from(list);
    const saved = this.scopes.splice(0);
    const name = this.initializer(`const_${this.constants.size}`, data, dims, dtype);
    this.scopes.push(...saved);
    this.constants.set(key, name);
    return name;
  }

  /** Adds a node with one output and returns that output's name. @example b.node('Add', [x, y]) */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, AttrValue>> = {},
    options: { output?: string; name?: string } = {},
  ): string {
    const outputs = options.output === undefined ? undefined : [options.output];
    return this.nodeMulti(opType, inputs, 1, attributes, { ...options, outputs })[0];
  }

  /** Adds a node with `count` outputs and returns their names. @example b.nodeMulti('Split', [x], 2, { axis: 1 }) */
  nodeMulti(
    opType: string,
    inputs: readonly string[],
    count: number,
    attributes: Readonly<Record<string, AttrValue>> = {},
    options: { outputs?: readonly string[]; name?: string } = {},
  ): string[] {
    for (const input of inputs) {
      // '' is ONNX's "optional input left out".
      if (input !== '' && !this.values.has(input)) throw this.missing(input, opType);
    }
    for (const [key, value] of Object.entries(attributes)) {
      if (typeof value === 'number' && !Number.isInteger(value)) {
        throw new CaiError(
          ErrorCodes.model,
          `${opType}.${key}`,
          `plain numbers are INT attributes; wrap ${value} in floatAttr()`,
        );
      }
    }
    const index = this.opCounts.get(opType) ?? 0;
    this.opCounts.set(opType, index + 1);
    const name = this.uniqueName(this.scoped(options.name ?? `${opType}_${index}`));
    this.nodeNames.add(name);
    const outputs =
      options.outputs ?? Array.from({ length: count }, (_, i) => (count === 1 ? name : `${name}:${i}`));
    for (const out of outputs) this.define(out);
    this.nodes.push({
      name,
      opType,
      inputs: [...inputs],
      outputs: [...outputs],
      attributes: { ...attributes },
    });
    return [...outputs];
  }

  /**
   * Runs `fn` with `scope` prefixed to the names it creates, so weights read like `vit/block0/attn/qkv_w`.
   *
   * @example b.withScope('block0', () => transformerBlock(b, x, opts))
   */
  withScope<T>(scope: string, fn: () => T): T {
    this.scopes.push(scope);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  /** Number of weight values (parameters) added so far, leaving out {@link constant}s. @example b.parameterCount() */
  parameterCount(): number {
    const constants = new Set(this.constants.values());
    return this.initializers.reduce((n, t) => (constants.has(t.name) ? n : n + t.data.length), 0);
  }

  /** Serializes the graph as an ONNX `ModelProto` (IR version 8). @example writeFileSync('m.onnx', b.toModelBytes()) */
  toModelBytes(options: ModelBytesOptions = {}): Uint8Array {
    if (this.outputs.length === 0)
      throw new CaiError(ErrorCodes.model, this.graphName, 'the graph has no outputs');
    const graph = onnx.GraphProto.create({
      name: this.graphName,
      node: this.nodes.map((n) =>
        onnx.NodeProto.create({
          name: n.name,
          opType: n.opType,
          domain: '',
          input: [...n.inputs],
          output: [...n.outputs],
          attribute: Object.entries(n.attributes).map(([key, value]) => attributeProto(key, value)),
        }),
      ),
      initializer: this.initializers.map((t) =>
        onnx.TensorProto.create({
          name: t.name,
          dims: [...t.dims],
          dataType: ONNX_DTYPE[t.dtype],
          // raw_data is little-endian; the typed arrays here are too on every platform Node supports.
          rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        }),
      ),
      input: this.inputs.map(valueInfoProto),
      output: this.outputs.map(valueInfoProto),
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: options.opset ?? 17 })],
      producerName: options.producer ?? 'cai',
      producerVersion: options.producerVersion ?? '',
      docString: options.docString ?? '',
      graph,
    });
    const buf = onnx.ModelProto.encode(model).finish();
    // Small Buffers are slices of Node's shared pool: copy those so the caller owns its whole buffer;
    // a big model has its own allocation and is handed over without a copy.
    if (buf.byteOffset !== 0 || buf.byteLength !== buf.buffer.byteLength) return new Uint8Array(buf);
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }

  private scoped(name: string): string {
    return this.scopes.length === 0 ? name : `${this.scopes.join('/')}/${name}`;
  }

  private uniqueName(base: string): string {
    const taken = (n: string) => this.values.has(n) || this.nodeNames.has(n);
    if (!taken(base)) return base;
    for (let k = 1; ; k++) if (!taken(`${base}_${k}`)) return `${base}_${k}`;
  }

  private define(name: string): void {
    if (name === '' || this.values.has(name)) {
      throw new CaiError(
        ErrorCodes.model,
        name,
        'this value name is empty or already defined; pick another name',
      );
    }
    this.values.add(name);
  }

  private missing(name: string, user: string): CaiError {
    return new CaiError(
      ErrorCodes.model,
      name,
      `${user} uses a value that no input, initializer or node defines`,
    );
  }
}

function dtypeOf(data: InitializerData): BuilderDType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

function valueInfoProto(v: ValueInfo): InstanceType<typeof onnx.ValueInfoProto> {
  const tensorType = onnx.TypeProto.Tensor.create({
    elemType: ONNX_DTYPE[v.dtype],
    ...(v.shape && {
      shape: onnx.TensorShapeProto.create({
        dim: v.shape.map((d) =>
          typeof d === 'number'
            ? onnx.TensorShapeProto.Dimension.create({ dimValue: d })
            : onnx.TensorShapeProto.Dimension.create({ dimParam: d }),
        ),
      }),
    }),
  });
  return onnx.ValueInfoProto.create({ name: v.name, type: onnx.TypeProto.create({ tensorType }) });
}

function attributeProto(name: string, value: AttrValue): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return onnx.AttributeProto.create({ name, type: T.INT, i: value });
  if (typeof value === 'string') {
    return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(value) });
  }
  if (isFloatAttr(value)) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: value.float });
  return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...value] });
}

function isFloatAttr(value: AttrValue): value is FloatAttr {
  return typeof value === 'object' && !Array.isArray(value) && 'float' in value;
}
