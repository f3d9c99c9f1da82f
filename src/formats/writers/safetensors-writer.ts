import { bytesOf, type Tensor } from '../../tensor/tensor.js';
import { SAFETENSORS_CODES } from '../safetensors/safetensors-format.js';

/** One tensor of a `.safetensors` file, given as the consecutive byte pieces its data is made of. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: Tensor['dtype'];
  readonly shape: readonly number[];
  readonly pieces: readonly Uint8Array[];
}

/**
 * Serializes tensors given in pieces as one `.safetensors` file (8-byte header length, JSON header
 * padded with spaces so the data starts at a multiple of `align`, raw little-endian data): one
 * allocation, not zero-filled (every byte is written), and one copy of each piece.
 *
 * @example encodeSafetensorsEntries([{ name: 'x', dtype: 'float32', shape: [2], pieces: [bytes] }], undefined, 64)
 */
export function encodeSafetensorsEntries(
  entries: readonly SafetensorsEntry[],
  metadata: Readonly<Record<string, string>> | undefined,
  align: number,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    const size = e.pieces.reduce((s, p) => s + p.byteLength, 0);
    header[e.name] = {
      dtype: SAFETENSORS_CODES[e.dtype],
      shape: [...e.shape],
      data_offsets: [offset, offset + size],
    };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (align - ((8 + json.length) % align)) % align;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = Buffer.allocUnsafeSlow(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const e of entries) {
    for (const p of e.pieces) {
      out.set(p, at);
      at += p.byteLength;
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Serializes named tensors as a `.safetensors` file, the zero-copy shard format CAI partitions into;
 * readable from Python with `safetensors.numpy.load_file`. The header is padded so the data starts
 * 8-byte aligned: zero-copy views for every dtype.
 *
 * @example await store.put('1.safetensors', encodeSafetensors({ image, magnitude }, { source: 'big.npy' }));
 */
export function encodeSafetensors(
  columns: Readonly<Record<string, Tensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const entries = Object.entries(columns).map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    pieces: [bytesOf(t.data)],
  }));
  return encodeSafetensorsEntries(entries, metadata, 8);
}
