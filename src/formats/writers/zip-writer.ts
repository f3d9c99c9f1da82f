// A stored (uncompressed) zip writer laid out the way torch.save lays out its archives: every member's
// data starts on a 64-byte boundary (padding in an extra field, as PyTorch's own writer does), so a
// reader can view tensors in place with the same alignment whatever wrote them, and onnxruntime sums a
// batch in the same order as over a .npy or safetensors copy of it. CRCs come from zlib.crc32 (native).
// fflate's zipSync computes CRC-32 in JavaScript and copies every member twice; for 100 MB partitions
// that was most of the time `cai partition --format pt` took.
import { crc32 } from 'node:zlib';
import { CaiError, ErrorCodes } from '../../errors.js';

/** Where each member's data starts, a multiple of this. */
export const ZIP_ALIGNMENT = 64;

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const EOCD = 0x06054b50;
// The extra field id PyTorch pads with ("FB").
const PAD_ID = 0x4246;
// 1980-01-01 00:00, the earliest DOS date: fixed, so equal inputs give equal bytes.
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const U32_MAX = 0xffffffff;

// The fields a local header and its central directory entry share, from "version needed" to the name's
// length (26 bytes), for a stored member with a UTF-8 name.
function memberFields(view: DataView, at: number, crc: number, size: number, nameLength: number): void {
  view.setUint16(at, 20, true); // version needed: 2.0
  view.setUint16(at + 2, 0x0800, true); // UTF-8 names
  view.setUint16(at + 4, 0, true); // stored
  view.setUint16(at + 6, 0, true); // time 00:00
  view.setUint16(at + 8, DOS_DATE, true);
  view.setUint32(at + 10, crc, true);
  view.setUint32(at + 14, size, true); // compressed = uncompressed: stored
  view.setUint32(at + 18, size, true);
  view.setUint16(at + 22, nameLength, true);
}

/**
 * Writes members (name, bytes) in order into one zip archive, stored, each member's data 64-byte
 * aligned. Archives past 4 GiB would need zip64, which this writer refuses with a way out.
 *
 * @example writeStoredZip([['archive/version', new TextEncoder().encode('3\n')]], '1.pt')
 */
export function writeStoredZip(
  members: readonly (readonly [string, Uint8Array])[],
  source: string,
): Uint8Array {
  const utf8 = new TextEncoder();
  const names = members.map(([name]) => utf8.encode(name));
  const layout: { offset: number; pad: number }[] = [];
  let at = 0;
  for (const [i, [, data]] of members.entries()) {
    const header = 30 + names[i].length + 4;
    const pad = (ZIP_ALIGNMENT - ((at + header) % ZIP_ALIGNMENT)) % ZIP_ALIGNMENT;
    layout.push({ offset: at, pad });
    at += header + pad + data.byteLength;
  }
  const centralStart = at;
  const centralSize = names.reduce((s, n) => s + 46 + n.length, 0);
  const total = centralStart + centralSize + 22;
  if (total > U32_MAX || members.length > 0xffff) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `would be a ${(total / 2 ** 30).toFixed(2)} GiB .pt archive of ${members.length} members; this writer stops at 4 GiB (no zip64): write smaller partitions (--size) or --format safetensors`,
    );
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const crcs = members.map(([, data]) => crc32(data));
  for (const [i, [, data]] of members.entries()) {
    const { offset, pad } = layout[i];
    const name = names[i];
    view.setUint32(offset, LOCAL, true);
    memberFields(view, offset + 4, crcs[i], data.byteLength, name.length);
    view.setUint16(offset + 28, 4 + pad, true);
    out.set(name, offset + 30);
    view.setUint16(offset + 30 + name.length, PAD_ID, true);
    view.setUint16(offset + 32 + name.length, pad, true);
    out.set(data, offset + 34 + name.length + pad);
  }
  let c = centralStart;
  for (const [i, [, data]] of members.entries()) {
    const name = names[i];
    view.setUint32(c, CENTRAL, true);
    view.setUint16(c + 4, (3 << 8) | 20, true); // made by: Unix, 2.0
    memberFields(view, c + 6, crcs[i], data.byteLength, name.length);
    // extra (30), comment (32), disk (34), internal attributes (36): 0
    view.setUint32(c + 38, (0o100644 << 16) >>> 0, true); // a regular file, rw-r--r--
    view.setUint32(c + 42, layout[i].offset, true);
    out.set(name, c + 46);
    c += 46 + name.length;
  }
  view.setUint32(c, EOCD, true);
  view.setUint16(c + 8, members.length, true);
  view.setUint16(c + 10, members.length, true);
  view.setUint32(c + 12, centralSize, true);
  view.setUint32(c + 16, centralStart, true);
  return out;
}
