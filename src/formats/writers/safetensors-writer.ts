import { bytesOf, type Tensor } from '../../tensor/tensor.js';
import { SAFETENSORS_CODES } from '../safetensors/safetensors-format.js';

/**
 * Serializes named tensors as a `.safetensors` file (8-byte header length, JSON header, raw
 * little-endian data), the zero-copy shard format CAI partitions into; readable from Python with
 * `safetensors.numpy.load_file`.
 *
 * @example await store.put('1.safetensors', encodeSafetensors({ image, magnitude }, { source: 'big.npy' }));
 */
export function encodeSafetensors(
  columns: Readonly<Record<string, Tensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(columns)) {
    const size = t.data.byteLength;
    header[name] = {
      dtype: SAFETENSORS_CODES[t.dtype],
      shape: [...t.shape],
      data_offsets: [offset, offset + size],
    };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces so the data starts 8-byte aligned: zero-copy views for every dtype.
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of Object.values(columns)) {
    out.set(bytesOf(t.data), at);
    at += t.data.byteLength;
  }
  return out;
}
