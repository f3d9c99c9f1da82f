import type { DType } from '../../tensor/dtype.js';
import { bytesOf, type Tensor } from '../../tensor/tensor.js';
import { writeStoredZip } from './zip-writer.js';

// The storage class torch.load rebuilds each dtype with (torch 1.x and 2.x both accept these names).
const STORAGE: Readonly<Record<DType, string>> = Object.freeze({
  float16: 'HalfStorage',
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  int8: 'CharStorage',
  int16: 'ShortStorage',
  int32: 'IntStorage',
  int64: 'LongStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
});

/** Writes the pickle opcodes torch.save (protocol 2) uses; only what a tensor container needs. */
class PickleWriter {
  private readonly parts: number[] = [];

  op(code: string): this {
    this.parts.push(code.charCodeAt(0));
    return this;
  }

  bytes(b: Uint8Array | number[]): this {
    for (const x of b) this.parts.push(x);
    return this;
  }

  global(module: string, name: string): this {
    return this.op('c').bytes([...Buffer.from(`${module}\n${name}\n`, 'latin1')]);
  }

  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.op('X')
      .bytes([...len])
      .bytes([...b]);
  }

  int(n: number): this {
    if (n >= 0 && n < 256) return this.op('K').bytes([n]);
    if (n >= -0x80000000 && n <= 0x7fffffff) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(n);
      return this.op('J').bytes([...b]);
    }
    // LONG1: little-endian two's complement, 8 bytes is enough for any tensor size.
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return this.op('\x8a').bytes([8, ...b]);
  }

  tuple(items: readonly number[]): this {
    this.op('(');
    for (const i of items) this.int(i);
    return this.op('t');
  }

  done(): Uint8Array {
    this.op('.');
    return Uint8Array.from(this.parts);
  }
}

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

function writeTensor(p: PickleWriter, t: Tensor, key: string): void {
  p.global('torch._utils', '_rebuild_tensor_v2').op('(');
  p.op('(')
    .str('storage')
    .global('torch', STORAGE[t.dtype])
    .str(key)
    .str('cpu')
    .int(t.data.length)
    .op('t')
    .op('Q');
  p.int(0).tuple(t.shape).tuple(stridesOf(t.shape)).op('\x89');
  p.global('collections', 'OrderedDict').op(')').op('R');
  p.op('t').op('R');
}

/**
 * Serializes tensors as `torch.save(TensorDataset(*tensors))` does: a zip archive with the pickle and
 * one raw little-endian storage per tensor, loadable with `torch.load` (CAI's partition format).
 *
 * @example await store.put('1.pt', encodePtDataset([images, magnitudes, redshift], '1'));
 */
export function encodePtDataset(tensors: readonly Tensor[], archiveName = 'archive'): Uint8Array {
  const p = new PickleWriter();
  p.op('\x80').bytes([2]);
  p.global('torch.utils.data.dataset', 'TensorDataset').op(')').op('\x81');
  p.op('}').str('tensors').op('(');
  tensors.forEach((t, i) => writeTensor(p, t, String(i)));
  p.op('t').op('s').op('b');
  const text = new TextEncoder();
  return writeStoredZip(
    [
      [`${archiveName}/data.pkl`, p.done()],
      ...tensors.map((t, i) => [`${archiveName}/data/${i}`, bytesOf(t.data)] as const),
      [`${archiveName}/version`, text.encode('3\n')],
      [`${archiveName}/byteorder`, text.encode('little')],
    ],
    `${archiveName}.pt`,
  );
}
