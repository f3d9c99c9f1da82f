// Where the chunks of a plain row-chunked array are and how they are stored, from its metadata, so
// zarr-dataset.ts can fetch a chunk and decode it straight into the batch it belongs to instead of going
// through zarrita's pipeline (which allocates the decoded chunk, then CAI copied it into the batch).
// Only the simplest layouts qualify: C order, little-endian (or one-byte) numbers, no filters and at most
// one compressor CAI decodes, regular chunks with v2 or v3 default keys, no sharding. Anything else, and
// any metadata this cannot find or that disagrees with zarrita's reading of it, is read through zarrita.
import type { AbsolutePath } from 'zarrita';
import { CODEC_IDS, type CodecId } from '../codecs/index.js';

/** How a row-chunked array's chunks are fetched and decoded without zarrita. */
export interface DirectChunks {
  /** The key of the chunk holding rows `[c * rows, (c + 1) * rows)`. */
  key(c: number): AbsolutePath;
  /** Its one byte codec, or `undefined` when chunks are stored uncompressed. */
  readonly codec: CodecId | undefined;
}

/** What zarrita made of the array (its metadata read a second time here must agree). */
export interface ArrayShape {
  readonly path: AbsolutePath;
  readonly shape: readonly number[];
  readonly chunks: readonly number[];
  readonly dtype: string;
}

/** Metadata objects the store adapter has read, by key (`/images/.zarray`). */
export type MetadataLookup = (key: AbsolutePath) => Uint8Array | undefined;

const V2_TYPES: Readonly<Record<string, string>> = {
  i1: 'int8',
  u1: 'uint8',
  i2: 'int16',
  u2: 'uint16',
  i4: 'int32',
  u4: 'uint32',
  i8: 'int64',
  u8: 'uint64',
  f4: 'float32',
  f8: 'float64',
};
const V3_TYPES = new Set(Object.values(V2_TYPES));

// Codec names as v2 compressor ids and v3 codec names (CAI's decoders are registered under both).
const codecOf = (name: unknown): CodecId | undefined => {
  const id = typeof name === 'string' ? name.replace(/^numcodecs\./, '') : undefined;
  return CODEC_IDS.find((c) => c === id);
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function parse(bytes: Uint8Array | undefined): Json | undefined {
  if (!bytes) return undefined;
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

const sameList = (a: unknown, b: readonly number[]) =>
  Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);

/** The array's own metadata: its `.zarray` or `zarr.json`, or its entry in consolidated metadata. */
function metadataOf(path: AbsolutePath, lookup: MetadataLookup): Json | undefined {
  const dir = path === '/' ? '' : path;
  const rel = dir.slice(1);
  const own =
    parse(lookup(`${dir}/.zarray` as AbsolutePath)) ?? parse(lookup(`${dir}/zarr.json` as AbsolutePath));
  if (own) return own;
  const v2 = parse(lookup('/.zmetadata'))?.metadata;
  if (isObject(v2) && isObject(v2[`${rel ? `${rel}/` : ''}.zarray`]))
    return v2[`${rel ? `${rel}/` : ''}.zarray`] as Json;
  const v3 = parse(lookup('/zarr.json'))?.consolidated_metadata;
  const inner = isObject(v3) && isObject(v3.metadata) ? v3.metadata[rel] : undefined;
  return isObject(inner) ? inner : undefined;
}

function v2Chunks(m: Json, a: ArrayShape, dir: string): DirectChunks | undefined {
  // Little-endian, or one byte ('|'); NumPy's big-endian '>' is left to zarrita.
  const dtype = typeof m.dtype === 'string' ? /^([<|])([iuf][1248])$/.exec(m.dtype) : null;
  if (!dtype || V2_TYPES[dtype[2]] !== a.dtype || (dtype[1] === '|' && !dtype[2].endsWith('1')))
    return undefined;
  if (m.order !== 'C' || (m.filters != null && !(Array.isArray(m.filters) && m.filters.length === 0)))
    return undefined;
  const sep = m.dimension_separator ?? '.';
  if (sep !== '.' && sep !== '/') return undefined;
  let codec: CodecId | undefined;
  if (m.compressor != null) {
    codec = isObject(m.compressor) ? codecOf(m.compressor.id) : undefined;
    if (!codec) return undefined;
  }
  const zeros = a.shape.slice(1).map(() => 0);
  return { codec, key: (c) => `${dir}/${[c, ...zeros].join(sep)}` as AbsolutePath };
}

function v3Chunks(m: Json, a: ArrayShape, dir: string): DirectChunks | undefined {
  if (m.node_type !== 'array' || typeof m.data_type !== 'string' || !V3_TYPES.has(m.data_type))
    return undefined;
  if (m.data_type !== a.dtype) return undefined;
  if (Array.isArray(m.storage_transformers) && m.storage_transformers.length) return undefined;
  const grid = m.chunk_grid;
  if (!isObject(grid) || grid.name !== 'regular' || !isObject(grid.configuration)) return undefined;
  if (!sameList(grid.configuration.chunk_shape, a.chunks)) return undefined;
  const codecs = Array.isArray(m.codecs) ? (m.codecs as unknown[]).filter(isObject) : [];
  const [bytes, ...rest] = codecs;
  if (codecs.length !== (m.codecs as unknown[]).length || !bytes || bytes.name !== 'bytes' || rest.length > 1)
    return undefined;
  const endian = isObject(bytes.configuration) ? bytes.configuration.endian : undefined;
  const oneByte = a.dtype === 'int8' || a.dtype === 'uint8';
  if (!(endian === 'little' || (oneByte && endian === undefined))) return undefined;
  let codec: CodecId | undefined;
  if (rest.length) {
    codec = codecOf(rest[0].name);
    if (!codec) return undefined;
  }
  const enc = isObject(m.chunk_key_encoding) ? m.chunk_key_encoding : { name: 'default' };
  const conf = isObject(enc.configuration) ? enc.configuration : {};
  const zeros = a.shape.slice(1).map(() => 0);
  if (enc.name === 'default') {
    const sep = conf.separator ?? '/';
    if (sep !== '/' && sep !== '.') return undefined;
    return { codec, key: (c) => `${dir}/${['c', c, ...zeros].join(sep)}` as AbsolutePath };
  }
  if (enc.name === 'v2') {
    const sep = conf.separator ?? '.';
    if (sep !== '/' && sep !== '.') return undefined;
    return { codec, key: (c) => `${dir}/${[c, ...zeros].join(sep)}` as AbsolutePath };
  }
  return undefined;
}

/**
 * How to read `a`'s chunks directly, or `undefined` when its layout is not one this covers (or its
 * metadata was not among the objects read) and zarrita must read it.
 *
 * @example const direct = directChunks(arr, z.metadata); direct?.key(3) // '/images/3.0.0.0'
 */
export function directChunks(a: ArrayShape, lookup: MetadataLookup): DirectChunks | undefined {
  const m = metadataOf(a.path, lookup);
  if (!m || !sameList(m.shape, a.shape)) return undefined;
  const dir = a.path === '/' ? '' : a.path;
  if (m.zarr_format === 2) return sameList(m.chunks, a.chunks) ? v2Chunks(m, a, dir) : undefined;
  if (m.zarr_format === 3) return v3Chunks(m, a, dir);
  return undefined;
}
