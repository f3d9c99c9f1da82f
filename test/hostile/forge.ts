// Hostile files assembled byte by byte (pickles, zips, .npy headers, PNG headers, Parquet footers), and
// the runner of decode-child.js that reads them in a process of its own and reports its peak RSS.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { parquetMetadata, type FileMetaData } from 'hyparquet';
import { ByteWriter } from 'hyparquet-writer/src/bytewriter.js';
import { writeMetadata } from 'hyparquet-writer/src/metadata.js';
import type { DecodeReport } from './decode-child.js';

const CHILD = fileURLToPath(new URL('./decode-child.js', import.meta.url));

/** A file for {@link decodeInChild} and the job fields its source needs. */
export interface DecodeItem {
  readonly key: string;
  readonly job?: object;
}

/**
 * Reads `items` of `dir` in a child process (heap capped at 256 MB) and returns its report. Rejects
 * when the child runs longer than `timeoutMs` (a hang) or dies.
 */
export function decodeInChild(
  dir: string,
  items: readonly DecodeItem[],
  timeoutMs = 120_000,
): Promise<DecodeReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-old-space-size=256', CHILD, dir], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`decoding did not finish within ${timeoutMs} ms (a hang)`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`decode child exited ${code ?? signal}: ${err.slice(-2000)}`));
      else resolve(JSON.parse(out) as DecodeReport);
    });
    child.stdin.end(JSON.stringify(items));
  });
}

const enc = new TextEncoder();

/** Concatenates byte arrays. */
export function concat(parts: readonly (Uint8Array | number[])[]): Uint8Array {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function u16(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff];
}
function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** Pickle opcodes (protocol 2), enough to describe tensors as torch.save does. */
export const P = {
  proto: [0x80, 2],
  mark: [0x28],
  tuple: [0x74],
  tuple2: [0x86],
  reduce: [0x52],
  binpersid: [0x51],
  stop: [0x2e],
  false: [0x89],
  emptyTuple: [0x29],
  global: (module: string, name: string) => [0x63, ...enc.encode(`${module}\n${name}\n`)],
  str: (s: string) => [0x8c, s.length, ...enc.encode(s)],
  int: (v: number) => [0x4a, ...u32(v)],
} as const;

/** A pickle of `_rebuild_tensor_v2(storage "0", offset, shape, strides)`, one tensor. */
export function tensorOps(numel: number, offset: number, shape: number[], strides: number[]): number[] {
  return [
    ...P.global('torch._utils', '_rebuild_tensor_v2'),
    ...P.mark,
    ...P.mark,
    ...P.str('storage'),
    ...P.global('torch', 'FloatStorage'),
    ...P.str('0'),
    ...P.str('cpu'),
    ...P.int(numel),
    ...P.tuple,
    ...P.binpersid,
    ...P.int(offset),
    ...P.mark,
    ...shape.flatMap(P.int),
    ...P.tuple,
    ...P.mark,
    ...strides.flatMap(P.int),
    ...P.tuple,
    ...P.tuple,
    ...P.reduce,
  ];
}

/** One member of {@link zipArchive}: `data` is written as is; `size` is what the directory claims. */
export interface ZipMember {
  readonly name: string;
  readonly data: Uint8Array;
  /** 0 stored, 8 deflated. */
  readonly method?: number;
  /** The uncompressed size to declare (defaults to data.length). */
  readonly size?: number;
}

/** A zip archive with the sizes each member declares, true or not (CRCs are not written). */
export function zipArchive(members: readonly ZipMember[]): Uint8Array {
  const locals: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const name = enc.encode(m.name);
    const method = m.method ?? 0;
    const size = m.size ?? m.data.length;
    const local = concat([
      u32(0x04034b50),
      u16(20),
      u16(0),
      u16(method),
      u32(0),
      u32(0),
      u32(m.data.length),
      u32(size),
      u16(name.length),
      u16(0),
      name,
      m.data,
    ]);
    central.push(
      concat([
        u32(0x02014b50),
        u16(20),
        u16(20),
        u16(0),
        u16(method),
        u32(0),
        u32(0),
        u32(m.data.length),
        u32(size),
        u16(name.length),
        u16(0),
        u16(0),
        u16(0),
        u16(0),
        u32(0),
        u32(offset),
        name,
      ]),
    );
    locals.push(local);
    offset += local.length;
  }
  const dir = concat(central);
  const end = concat([
    u32(0x06054b50),
    u16(0),
    u16(0),
    u16(members.length),
    u16(members.length),
    u32(dir.length),
    u32(offset),
    u16(0),
  ]);
  return concat([...locals, dir, end]);
}

/** A .npy header (version 1) with the given header text, padded as numpy pads it. */
export function npyHeader(text: string): Uint8Array {
  const raw = enc.encode(text);
  const pad = (64 - ((10 + raw.length + 1) % 64)) % 64;
  const header = concat([raw, new Uint8Array(pad).fill(0x20), [0x0a]]);
  return concat([[0x93, ...enc.encode('NUMPY'), 1, 0], u16(header.length), header]);
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const typed = concat([enc.encode(type), data]);
  const crc = crc32(typed);
  return concat([u32be(data.length), typed, u32be(crc)]);
}
function u32be(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/** A PNG whose header declares `width` x `height` RGB pixels, with only a token of image data. */
export function hugePng(width: number, height: number): Uint8Array {
  const ihdr = Uint8Array.from([...u32be(width), ...u32be(height), 8, 2, 0, 0, 0]);
  // A zlib stream of a few zero rows: the decoder would need far more, but the header alone must stop it.
  const idat = Uint8Array.from([0x78, 0x01, 0x63, 0x60, 0x18, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
  return concat([
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** A Parquet file with its footer rewritten by `edit` (data pages unchanged). */
export function forgeParquet(bytes: Uint8Array, edit: (meta: FileMetaData) => FileMetaData): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const footerLength = view.getUint32(bytes.length - 8, true);
  const footerStart = bytes.length - 8 - footerLength;
  const meta = edit(parquetMetadata(bytes.slice().buffer as ArrayBuffer));
  const writer = new ByteWriter();
  writeMetadata(writer, meta);
  const footer = new Uint8Array(writer.getBuffer());
  return concat([bytes.subarray(0, footerStart), footer, u32(footer.length), enc.encode('PAR1')]);
}

/**
 * A raw deflate stream of `prefix` then `zeros` zero bytes, written by hand with fixed Huffman codes
 * (a 258-byte copy costs 13 bits): a compression bomb of any size in a few milliseconds.
 */
export function deflateZeros(prefix: Uint8Array, zeros: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(((zeros / 258) * 13 + (prefix.length + 258) * 9 + 64) / 8) + 16);
  let bit = 0;
  const put = (value: number, n: number) => {
    for (let i = 0; i < n; i++, bit++) if ((value >>> i) & 1) out[bit >>> 3] |= 1 << (bit & 7);
  };
  const code = (c: number, n: number) => {
    for (let i = n - 1; i >= 0; i--, bit++) if ((c >>> i) & 1) out[bit >>> 3] |= 1 << (bit & 7);
  };
  const literal = (v: number) => (v < 144 ? code(0x30 + v, 8) : code(0x190 + v - 144, 9));
  put(1, 1); // BFINAL
  put(1, 2); // fixed Huffman
  for (const b of prefix) literal(b);
  if (zeros > 0) {
    literal(0);
    let left = zeros - 1;
    for (; left >= 258; left -= 258) {
      code(0b11000101, 8); // length 258
      code(0, 5); // distance 1
    }
    for (; left > 0; left--) literal(0);
  }
  code(0, 7); // end of block
  return out.subarray(0, Math.ceil(bit / 8));
}
