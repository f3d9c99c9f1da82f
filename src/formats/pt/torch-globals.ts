// The allow-list of Python globals a torch.save pickle may name, each mapped to an inert stand-in whose
// behaviour is written here in TypeScript. Anything else is refused before it is used.
import { CaiError, ErrorCodes } from '../../errors.js';
import { type DType, viewBytes } from '../../tensor/dtype.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';
import { PyDict, PyObject, pyTypeName, type PyValue, type UnpickleHooks } from './py-value.js';
import { denseBytes, extentOf, isRowMajor } from '../strided.js';

/**
 * A storage element type: CAI's dtypes plus bfloat16, which is widened to float32 when read.
 * @example const t: StorageDType = 'bfloat16';
 */
export type StorageDType = DType | 'bfloat16';

const STORAGE_CLASSES: Readonly<Record<string, StorageDType>> = Object.freeze({
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  // Newer torch names untyped (byte) storages; _rebuild_tensor_v3 then carries the real dtype.
  UntypedStorage: 'uint8',
});

const TORCH_DTYPES: Readonly<Record<string, StorageDType>> = Object.freeze({
  float32: 'float32',
  float: 'float32',
  float64: 'float64',
  double: 'float64',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  int64: 'int64',
  long: 'int64',
  int32: 'int32',
  int: 'int32',
  int16: 'int16',
  short: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
});

/** Largest materialized size for a view that repeats storage elements (only zero strides do that). */
const MAX_REPEATED_VIEW_BYTES = 64 * 1024 * 1024;

/**
 * Bytes one file's views may copy, all together: dense views share their storage, but strided ones
 * (transposes, broadcasts, byte-swapped files) must be gathered. Twice the file covers every tensor of an
 * honest file copied once, plus bfloat16 widening; many views of one storage cannot multiply it.
 */
const copyBudget = (fileBytes: number): number => Math.max(64 * 1024 * 1024, 2 * fileBytes);

/** What rebuilding tensors remembers across one file: the copy budget and views already made. */
interface ViewCache {
  readonly budget: number;
  copied: number;
  readonly views: Map<string, TensorValue>;
}

function elementSize(dtype: StorageDType): number {
  return (
    { float64: 8, int64: 8, float32: 4, int32: 4, float16: 2, bfloat16: 2, int16: 2 }[dtype as string] ?? 1
  );
}

/** A storage class or dtype named by the pickle (`torch.FloatStorage`, `torch.float32`). */
class DTypeMarker extends PyObject {
  constructor(
    readonly pyName: string,
    readonly dtype: StorageDType,
  ) {
    super();
  }
}

/** A class that is only ever passed around as a value (the `new_type` of `_rebuild_from_type_v2`). */
class ClassMarker extends PyObject {
  constructor(readonly pyName: string) {
    super();
  }
}

/** One storage of the archive: `<archive>/data/<key>`, raw bytes in the file's byte order. */
class Storage extends PyObject {
  readonly pyName = 'torch storage';
  constructor(
    readonly key: string,
    readonly dtype: StorageDType,
    readonly bytes: Uint8Array,
  ) {
    super();
  }
}

/**
 * A tensor rebuilt from the pickle: dense, row-major, little-endian.
 *
 * @example if (value instanceof TensorValue) columns.push(value.tensor);
 */
export class TensorValue extends PyObject {
  readonly pyName = 'torch.Tensor';
  constructor(readonly tensor: Tensor) {
    super();
  }
}

/**
 * A `torch.utils.data.TensorDataset`; its BUILD state holds `tensors`.
 *
 * @example if (value instanceof TensorDatasetValue) value.tensors // [images, magnitudes, redshift]
 */
export class TensorDatasetValue extends PyObject {
  readonly pyName = 'torch.utils.data.dataset.TensorDataset';
  tensors: PyValue = [];

  override setState(state: PyValue, source: string): void {
    const tensors = state instanceof PyDict ? state.entries.get('tensors') : undefined;
    if (!Array.isArray(tensors)) {
      throw new CaiError(
        ErrorCodes.corrupt,
        source,
        'holds a TensorDataset without its tensors; write the file again',
      );
    }
    this.tensors = tensors;
  }
}

class TensorDatasetClass extends PyObject {
  readonly pyName = 'torch.utils.data.dataset.TensorDataset';
  override construct(): PyValue {
    return new TensorDatasetValue();
  }
}

class OrderedDictClass extends PyObject {
  readonly pyName = 'collections.OrderedDict';
  override call(args: PyValue[], source: string): PyValue {
    const dict = new PyDict();
    const pairs = args[0] ?? [];
    if (args.length > 1 || !Array.isArray(pairs)) throw badArgs(source, this.pyName, args);
    for (const pair of pairs) {
      if (!Array.isArray(pair) || pair.length !== 2) throw badArgs(source, this.pyName, args);
      dict.entries.set(pair[0], pair[1]);
    }
    return dict;
  }
}

/** A function stand-in whose body is the given TypeScript. */
class Rebuild extends PyObject {
  constructor(
    readonly pyName: string,
    private readonly body: (args: PyValue[], source: string) => PyValue,
  ) {
    super();
  }
  override call(args: PyValue[], source: string): PyValue {
    return this.body(args, source);
  }
}

function badArgs(source: string, fn: string, args: PyValue[]): CaiError {
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `calls ${fn} with unexpected arguments (${args.map(pyTypeName).join(', ')}); write the file again with torch.save`,
  );
}

function intList(v: PyValue): number[] | undefined {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) return undefined;
  return v as number[];
}

function rebuildTensor(
  source: string,
  bigEndian: boolean,
  cache: ViewCache,
  fn: string,
  args: PyValue[],
  dtypeArg?: PyValue,
): TensorValue {
  const [storage, offset, size, stride] = args;
  const shape = intList(size);
  const strides = intList(stride);
  if (!(storage instanceof Storage) || typeof offset !== 'number' || !shape || !strides) {
    throw badArgs(source, fn, args);
  }
  let dtype = storage.dtype;
  if (dtypeArg !== undefined) {
    if (!(dtypeArg instanceof DTypeMarker)) throw badArgs(source, fn, args);
    dtype = dtypeArg.dtype;
  }
  const size1 = elementSize(dtype);
  const layout = { offset, shape, strides };
  const what = `the tensor on storage "${storage.key}"`;
  const extent = extentOf(layout, source, what);
  const available = Math.floor(storage.bytes.length / size1);
  if (extent > available) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `${what} needs ${extent} elements but the storage holds ${available}; the file is truncated or damaged: write it again`,
    );
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count > extent && count * size1 > MAX_REPEATED_VIEW_BYTES) {
    // Zero strides (torch's expand) repeat elements: a few bytes of storage could demand gigabytes.
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `${what} is a broadcast view of ${count} elements over ${extent} stored ones; save it with .contiguous() if it is meant`,
    );
  }
  // The same view named twice (a pickle may repeat a rebuild call) is one tensor, not two copies.
  const id = `${storage.key}|${dtype}|${offset}|${shape.join(',')}|${strides.join(',')}`;
  const seen = cache.views.get(id);
  if (seen) return seen;
  const copies = bigEndian || dtype === 'bfloat16' || !isRowMajor(layout);
  if (copies) {
    cache.copied += count * (dtype === 'bfloat16' ? 6 : size1);
    if (cache.copied > cache.budget) {
      throw new CaiError(
        ErrorCodes.unsupported,
        source,
        `its tensors are strided or converted views that need ${cache.copied} bytes of copies, past the ` +
          `${cache.budget}-byte budget for this file (twice its size); save each tensor with .contiguous() ` +
          '(or .clone()) so it owns its storage',
      );
    }
  }
  const bytes = denseBytes(storage.bytes, size1, layout, bigEndian);
  let value: TensorValue;
  if (dtype === 'bfloat16') {
    // bfloat16 is the top half of a float32, so widening is a 16-bit shift.
    const bits = viewBytes('float16', bytes);
    const wide = new Uint32Array(bits.length);
    for (let i = 0; i < bits.length; i++) wide[i] = bits[i] << 16;
    value = new TensorValue(tensor('float32', shape, new Float32Array(wide.buffer)));
  } else {
    value = new TensorValue(tensor(dtype, shape, viewBytes(dtype, bytes)));
  }
  cache.views.set(id, value);
  return value;
}

function tensorArg(source: string, fn: string, args: PyValue[]): TensorValue {
  if (!(args[0] instanceof TensorValue)) throw badArgs(source, fn, args);
  return args[0];
}

/**
 * Where a torch.save archive keeps its storages: looks up `data/<key>` members by key.
 *
 * @example
 * const hooks = torchHooks('1.pt', false, (key) => readZipEntry(bytes, byName.get(`1/data/${key}`)!, '1.pt'), bytes.length);
 */
export type StorageLookup = (key: string) => Uint8Array | undefined;

/**
 * The unpickler hooks for a torch.save archive: the allow-list of globals (refusing every other one with
 * `E_PICKLE_GLOBAL`) and the persistent-id loader for `('storage', type, key, location, numel)`.
 * Views that must be copied are charged to a budget of twice `fileBytes` (the archive's size).
 *
 * @example
 * const value = unpickle(pkl, '1.pt', torchHooks('1.pt', false, lookup, bytes.length));
 */
export function torchHooks(
  source: string,
  bigEndian: boolean,
  lookup: StorageLookup,
  fileBytes = 0,
): UnpickleHooks {
  const cache: ViewCache = { budget: copyBudget(fileBytes), copied: 0, views: new Map() };
  const v2 = (name: string) =>
    new Rebuild(name, (args) => rebuildTensor(source, bigEndian, cache, name, args.slice(0, 4)));
  const globals = new Map<string, PyValue>([
    ['torch._utils._rebuild_tensor', v2('torch._utils._rebuild_tensor')],
    ['torch._utils._rebuild_tensor_v2', v2('torch._utils._rebuild_tensor_v2')],
    [
      'torch._utils._rebuild_tensor_v3',
      new Rebuild('torch._utils._rebuild_tensor_v3', (args) =>
        rebuildTensor(
          source,
          bigEndian,
          cache,
          'torch._utils._rebuild_tensor_v3',
          args.slice(0, 4),
          args[6] ?? null,
        ),
      ),
    ],
    [
      'torch._utils._rebuild_parameter',
      new Rebuild('torch._utils._rebuild_parameter', (a) => tensorArg(source, 'Parameter', a)),
    ],
    [
      'torch._utils._rebuild_parameter_with_state',
      new Rebuild('torch._utils._rebuild_parameter_with_state', (a) => tensorArg(source, 'Parameter', a)),
    ],
    [
      'torch._tensor._rebuild_from_type_v2',
      new Rebuild('torch._tensor._rebuild_from_type_v2', (args, src) => {
        const [fn, , fnArgs] = args;
        if (!(fn instanceof Rebuild) || !Array.isArray(fnArgs))
          throw badArgs(src, '_rebuild_from_type_v2', args);
        return fn.call(fnArgs, src);
      }),
    ],
    ['torch.Tensor', new ClassMarker('torch.Tensor')],
    ['torch._tensor.Tensor', new ClassMarker('torch.Tensor')],
    ['torch.nn.parameter.Parameter', new ClassMarker('torch.nn.parameter.Parameter')],
    ['collections.OrderedDict', new OrderedDictClass()],
    ['torch.utils.data.dataset.TensorDataset', new TensorDatasetClass()],
  ]);
  for (const [name, dtype] of Object.entries(STORAGE_CLASSES)) {
    globals.set(`torch.${name}`, new DTypeMarker(`torch.${name}`, dtype));
  }
  globals.set('torch.storage.UntypedStorage', new DTypeMarker('torch.storage.UntypedStorage', 'uint8'));
  for (const [name, dtype] of Object.entries(TORCH_DTYPES)) {
    globals.set(`torch.${name}`, new DTypeMarker(`torch.${name}`, dtype));
  }

  const storages = new Map<string, Storage>();
  // Aligned copies of records whose bytes start off an element boundary (a re-zipped or forged archive;
  // torch.save aligns to 64), one per record however many storages and views name it: every view is
  // then a zero-copy subarray of it, where each would otherwise be copied on its own.
  const aligned = new Map<string, Uint8Array>();
  const alignedBytes = (bytes: Uint8Array): Uint8Array => {
    if (bytes.byteOffset % 8 === 0) return bytes;
    const id = `${bytes.byteOffset}:${bytes.byteLength}`;
    let copy = aligned.get(id);
    if (!copy) {
      copy = new Uint8Array(bytes.byteLength);
      copy.set(bytes);
      aligned.set(id, copy);
    }
    return copy;
  };
  return {
    findGlobal(module, name) {
      const qualified = `${module}.${name}`;
      const found = globals.get(qualified);
      if (found !== undefined) return found;
      if (module === 'torch' && /Storage$/.test(name)) {
        throw new CaiError(
          ErrorCodes.unsupported,
          source,
          `holds a ${qualified} tensor, a dtype CAI does not read; convert it (e.g. .float()) and save it again`,
        );
      }
      throw new CaiError(
        ErrorCodes.pickleGlobal,
        source,
        `asks for the Python global "${qualified}", code CAI will not run (CAI rebuilds tensors and never ` +
          'executes anything from a file). Re-save it with tensors only, e.g. ' +
          'torch.save(TensorDataset(images, magnitudes, redshift), path), a tensor, or a tuple or dict of tensors',
      );
    },
    persistentLoad(pid) {
      const [tag, type, key, , numel] = Array.isArray(pid) ? pid : [];
      if (
        tag !== 'storage' ||
        !(type instanceof DTypeMarker) ||
        typeof key !== 'string' ||
        typeof numel !== 'number'
      ) {
        throw new CaiError(
          ErrorCodes.corrupt,
          source,
          'has a persistent id that is not a torch storage; write it again',
        );
      }
      const known = storages.get(key);
      if (known) return known;
      const bytes = lookup(key);
      if (bytes === undefined) {
        throw new CaiError(
          ErrorCodes.corrupt,
          source,
          `lacks the data of storage "${key}"; the file is damaged`,
        );
      }
      if (bytes.length < numel * elementSize(type.dtype)) {
        throw new CaiError(
          ErrorCodes.corrupt,
          source,
          `storage "${key}" holds ${bytes.length} bytes, fewer than its ${numel} ${type.dtype} elements need; the file is truncated`,
        );
      }
      const storage = new Storage(key, type.dtype, alignedBytes(bytes));
      storages.set(key, storage);
      return storage;
    },
  };
}
