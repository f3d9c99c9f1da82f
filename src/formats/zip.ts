// A zip reader for torch.save archives and .npz files. The central directory is parsed here rather than
// by fflate's unzipSync because unzipSync copies every stored entry (a 100 MB partition would be copied
// once more before any tensor is made) and clamps entries that run past the end of a truncated file
// instead of failing. Stored entries become zero-copy views; deflated ones (np.savez_compressed) are
// inflated with fflate. CRCs are not checked: hashing 100 MB in JS would cost more than the whole decode,
// and every entry's bounds are still validated. Inflating is streamed into a buffer of the size the member
// declares, within a budget of decoded bytes derived from the archive's own size: a small archive cannot
// make the reader allocate gigabytes, whatever its members claim.
import { Inflate } from 'fflate';
import { CaiError, ErrorCodes } from '../errors.js';

/**
 * One member of a zip archive, located but not yet read.
 *
 * @example
 * const entries = listZip(bytes, 'data/1.pt'); // [{ name: '1/data.pkl', method: 0, ... }, ...]
 */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  /** Byte offset of the member's data in the archive. */
  readonly dataStart: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;

const utf8 = new TextDecoder('utf-8');

/** Whether the bytes start like a zip archive. @example isZip(bytes) // true for torch.save output */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
}

function corrupt(source: string, what: string): CaiError {
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `is not a readable zip archive (${what}); the file is truncated or damaged: copy or write it again`,
  );
}

function u64(view: DataView, at: number, source: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(source, 'a 64-bit size is out of range');
  return Number(v);
}

/**
 * The members of a zip archive in central-directory order, including zip64 archives (torch.save and
 * numpy use zip64 fields for large members). Throws `E_CORRUPT` naming `source` when the archive is
 * truncated or its directory points outside the file.
 *
 * @example
 * for (const e of listZip(bytes, 'x.npz')) console.log(e.name, e.size);
 */
export function listZip(bytes: Uint8Array, source: string): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  let eocd = -1;
  // The end record is 22 bytes plus a comment of at most 65535 bytes.
  for (let at = len - 22; at >= 0 && at >= len - 22 - 0xffff; at--) {
    if (view.getUint32(at, true) === EOCD && at + 22 + view.getUint16(at + 20, true) <= len) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw corrupt(source, 'no end-of-directory record');
  let count = view.getUint16(eocd + 10, true);
  let dirSize = view.getUint32(eocd + 12, true);
  let dirStart = view.getUint32(eocd + 16, true);
  if (count === 0xffff || dirSize === U32_MAX || dirStart === U32_MAX) {
    const loc = eocd - 20;
    if (loc < 0 || view.getUint32(loc, true) !== EOCD64_LOCATOR)
      throw corrupt(source, 'zip64 locator missing');
    const at = u64(view, loc + 8, source);
    if (at + 56 > len || view.getUint32(at, true) !== EOCD64)
      throw corrupt(source, 'zip64 end record missing');
    count = u64(view, at + 32, source);
    dirSize = u64(view, at + 40, source);
    dirStart = u64(view, at + 48, source);
  }
  if (dirStart + dirSize > len) throw corrupt(source, 'central directory runs past the end');
  const entries: ZipEntry[] = [];
  let p = dirStart;
  for (let i = 0; i < count; i++) {
    if (p + 46 > len || view.getUint32(p, true) !== CENTRAL)
      throw corrupt(source, `directory entry ${i} is damaged`);
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localOffset = view.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > len) throw corrupt(source, `directory entry ${i} runs past the end`);
    const name = utf8.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // Zip64 extra field: only the fields whose 32-bit value is saturated are present, in this order.
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {
      const id = view.getUint16(x, true);
      const xlen = view.getUint16(x + 2, true);
      if (id === 0x0001) {
        let q = x + 4;
        const xend = q + xlen;
        if (size === U32_MAX && q + 8 <= xend) {
          size = u64(view, q, source);
          q += 8;
        }
        if (compressedSize === U32_MAX && q + 8 <= xend) {
          compressedSize = u64(view, q, source);
          q += 8;
        }
        if (localOffset === U32_MAX && q + 8 <= xend) localOffset = u64(view, q, source);
      }
      x += 4 + xlen;
    }
    if (flags & 1) {
      throw new CaiError(
        ErrorCodes.unsupported,
        source,
        `member "${name}" is encrypted; store it unencrypted`,
      );
    }
    if (localOffset + 30 > len || view.getUint32(localOffset, true) !== LOCAL) {
      throw corrupt(source, `member "${name}" has no local header`);
    }
    const dataStart =
      localOffset + 30 + view.getUint16(localOffset + 26, true) + view.getUint16(localOffset + 28, true);
    if (dataStart + compressedSize > len) throw corrupt(source, `member "${name}" runs past the end`);
    entries.push({ name, method, compressedSize, size, dataStart });
    p = end;
  }
  return entries;
}

/** Smallest budget of inflated bytes any archive gets (a few MB of zeros may legitimately inflate to this). */
const MIN_INFLATE_BUDGET = 256 * 1024 * 1024;
/** Inflated bytes allowed per archive byte beyond the minimum. */
const INFLATE_RATIO = 16;
/** Compressed bytes handed to the inflater at a time, so one step emits at most ~1032x this. */
const INFLATE_STEP = 16 * 1024;

/**
 * How many bytes the deflated members of one archive may inflate to, all together: derived from the
 * archive's size so that memory stays proportional to the input.
 *
 * @example const budget = inflateBudget(bytes.length); readZipEntry(bytes, entry, 'x.npz', budget);
 */
export interface InflateBudget {
  remaining: number;
  readonly total: number;
}

/**
 * A fresh {@link InflateBudget} for an archive of `archiveBytes` bytes: 16 times its size, at least 256 MiB.
 *
 * @example inflateBudget(1024).total // 268435456
 */
export function inflateBudget(archiveBytes: number): InflateBudget {
  const total = Math.max(MIN_INFLATE_BUDGET, INFLATE_RATIO * archiveBytes);
  return { remaining: total, total };
}

/**
 * The uncompressed bytes of one member: a view into `bytes` for stored members (no copy), a new array
 * for deflated ones. Deflated members are inflated step by step into a buffer of their declared size,
 * charged to `budget` (one per archive; a fresh one when omitted): a member that declares more than the
 * budget left, or inflates past what it declares, is `E_CORRUPT` before the memory is used.
 *
 * @example
 * const pkl = readZipEntry(bytes, entries.find((e) => e.name.endsWith('/data.pkl'))!, '1.pt');
 */
export function readZipEntry(
  bytes: Uint8Array,
  entry: ZipEntry,
  source: string,
  budget: InflateBudget = inflateBudget(bytes.length),
): Uint8Array {
  const raw = bytes.subarray(entry.dataStart, entry.dataStart + entry.compressedSize);
  if (entry.method === 0) {
    if (entry.size !== entry.compressedSize)
      throw corrupt(source, `stored member "${entry.name}" has two sizes`);
    return raw;
  }
  if (entry.method !== 8) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `member "${entry.name}" uses zip compression method ${entry.method}; only stored and deflated members are read`,
    );
  }
  // Deflate cannot expand more than ~1032:1; a larger claimed size is damage, and allocating it could
  // exhaust memory before inflating fails.
  if (entry.size > entry.compressedSize * 1032 + 1024) {
    throw corrupt(source, `member "${entry.name}" claims ${entry.size} bytes from ${entry.compressedSize}`);
  }
  if (entry.size > budget.remaining) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `member "${entry.name}" inflates to ${entry.size} bytes, past the ${budget.remaining} bytes left of the ${budget.total}-byte budget for a ` +
        `${bytes.length}-byte archive (${INFLATE_RATIO}x its size, at least ${MIN_INFLATE_BUDGET}); ` +
        'a compression bomb or a damaged file: store the arrays uncompressed (np.savez, torch.save) or split the file',
    );
  }
  budget.remaining -= entry.size;
  const out = new Uint8Array(entry.size);
  let at = 0;
  let done = false;
  const overrun = () =>
    corrupt(source, `member "${entry.name}" inflates past its declared ${entry.size} bytes`);
  try {
    const inflater = new Inflate((chunk, final) => {
      if (at + chunk.length > out.length) throw overrun();
      out.set(chunk, at);
      at += chunk.length;
      if (final) done = true;
    });
    for (let i = 0; i < raw.length || i === 0; i += INFLATE_STEP) {
      inflater.push(raw.subarray(i, i + INFLATE_STEP), i + INFLATE_STEP >= raw.length);
    }
  } catch (err) {
    if (err instanceof CaiError) throw err;
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `member "${entry.name}" does not inflate (${(err as Error).message}); the file is damaged: write it again`,
      { cause: err },
    );
  }
  if (!done || at !== entry.size) throw corrupt(source, `member "${entry.name}" inflates to the wrong size`);
  return out;
}
