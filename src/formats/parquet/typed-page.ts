// A data page of a numeric list column decoded into typed arrays. hyparquet's page readers decode
// repetition and definition levels and dictionary indices into `new Array(n)` (one slot per value:
// 196,608 a Ray-layout row), which is most of a pixel row's decoding time. The same decoding steps
// from hyparquet (its RLE/bit-packed reader, plain reader and decompression) write into typed arrays
// here; any other page (booleans, strings, delta encodings) goes to hyparquet's own readers.
import type { DataPageHeader, DecodedArray, PageHeader, SchemaElement } from 'hyparquet';
import type { ColumnDecoder, DataPageHeaderV2, Encoding } from 'hyparquet/src/types.js';
import { convert, convertWithDictionary } from 'hyparquet/src/convert.js';
import { decompressPage, readDataPage, readDataPageV2 } from 'hyparquet/src/datapage.js';
import { readRleBitPackedHybrid } from 'hyparquet/src/encoding.js';
import { readPlain } from 'hyparquet/src/plain.js';
import { getMaxDefinitionLevel, getMaxRepetitionLevel } from 'hyparquet/src/schema.js';

/** A decoded page: levels (empty when the column has none, or no nulls) and the non-null values. */
export interface TypedPage {
  readonly rep: ArrayLike<number>;
  readonly def: ArrayLike<number>;
  readonly values: ArrayLike<number>;
  readonly count: number;
}

type Reader = { view: DataView; offset: number };

const NUMERIC = new Set(['INT32', 'FLOAT', 'DOUBLE']);
const bitWidth = (max: number) => 32 - Math.clz32(max);

/**
 * Decodes one data page (v1 or v2) of a list column, `compressed` as stored in the file.
 *
 * @example const page = readTypedPage(bytes, header, decoder, dictionary);
 */
export function readTypedPage(
  compressed: Uint8Array,
  header: PageHeader,
  decoder: ColumnDecoder,
  dictionary: DecodedArray | undefined,
): TypedPage | undefined {
  const v1 = header.type === 'DATA_PAGE' ? header.data_page_header : undefined;
  const v2 = header.type === 'DATA_PAGE_V2' ? header.data_page_header_v2 : undefined;
  const encoding = v1?.encoding ?? v2?.encoding;
  if (!encoding) return undefined;
  const fast =
    NUMERIC.has(decoder.type) &&
    (encoding === 'PLAIN' ||
      ((encoding === 'PLAIN_DICTIONARY' || encoding === 'RLE_DICTIONARY') && dictionary !== undefined));
  if (!fast) return fallback(compressed, header, decoder, dictionary, encoding);
  const { codec, compressors } = decoder;
  const maxRep = getMaxRepetitionLevel(decoder.schemaPath);
  const maxDef = getMaxDefinitionLevel(decoder.schemaPath);
  let rep: Uint8Array;
  let def: Uint8Array;
  let reader: Reader;
  let count: number;
  let nulls: number;
  if (v1) {
    const bytes = decompressPage(compressed, header.uncompressed_page_size, codec, compressors);
    reader = { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: 0 };
    count = v1.num_values;
    // v1 levels carry their byte length in front.
    rep = levels(reader, maxRep, count);
    def = levels(reader, maxDef, count);
    nulls = countBelow(def, maxDef);
  } else {
    const h = v2 as DataPageHeaderV2;
    count = h.num_values;
    const view = new DataView(compressed.buffer, compressed.byteOffset, compressed.byteLength);
    const levelsReader = { view, offset: 0 };
    rep = levels(levelsReader, maxRep, count, h.repetition_levels_byte_length);
    levelsReader.offset = h.repetition_levels_byte_length;
    def = levels(levelsReader, maxDef, count, h.definition_levels_byte_length);
    const start = h.repetition_levels_byte_length + h.definition_levels_byte_length;
    let body = compressed.subarray(start);
    if (h.is_compressed !== false) {
      body = decompressPage(body, header.uncompressed_page_size - start, codec, compressors);
    }
    reader = { view: new DataView(body.buffer, body.byteOffset, body.byteLength), offset: 0 };
    nulls = h.num_nulls;
  }
  const n = count - nulls;
  let values: ArrayLike<number>;
  if (encoding === 'PLAIN') {
    values = typedValues(
      convert(readPlain(reader, decoder.type, n, decoder.element.type_length), decoder) as ArrayLike<number>,
      decoder.element,
    );
  } else {
    const width = reader.view.getUint8(reader.offset++);
    const indices = new Int32Array(n); // width 0: every index is 0
    if (width) readRleBitPackedHybrid(reader, width, indices, reader.view.byteLength - reader.offset);
    values = dereference(indices, dictionary as DecodedArray, decoder, encoding);
  }
  return { rep, def: nulls ? def : new Uint8Array(0), values, count };
}

// Levels of one kind, or none when the column has no such level.
function levels(reader: Reader, max: number, count: number, length?: number): Uint8Array {
  if (!max) return new Uint8Array(0);
  const out = new Uint8Array(count);
  readRleBitPackedHybrid(reader, bitWidth(max), out, length);
  return out;
}

function countBelow(def: ArrayLike<number>, max: number): number {
  let n = 0;
  for (let i = 0; i < def.length; i++) if (def[i] !== max) n++;
  return n;
}

function dereference(
  indices: Int32Array,
  dictionary: DecodedArray,
  decoder: ColumnDecoder,
  encoding: Encoding,
): ArrayLike<number> {
  const dict = dictionary as ArrayLike<number>;
  const out = typedArrayFor(decoder.element, indices.length);
  if (!out)
    return convertWithDictionary(Array.from(indices), dictionary, encoding, decoder) as ArrayLike<number>;
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (k < 0 || k >= dict.length)
      throw new Error(`dictionary index ${k} out of range (${dict.length} entries): the page is corrupt`);
    out[i] = dict[k];
  }
  return out;
}

// The typed array that holds a column's values exactly, or undefined (keep hyparquet's values).
function typedArrayFor(
  element: SchemaElement,
  n: number,
): Uint8Array | Int32Array | Float32Array | Float64Array | undefined {
  const ctype = element.converted_type;
  const ltype = element.logical_type;
  const integer = ltype?.type === 'INTEGER' ? ltype : undefined;
  if (element.type === 'INT32') {
    if (ctype === 'UINT_8' || (integer?.bitWidth === 8 && !integer.isSigned)) return new Uint8Array(n);
    // Signed (or unannotated) 32-bit integers only: UINT_32 values above 2^31 or DATEs are not.
    const signed = ctype === undefined || ctype === 'INT_8' || ctype === 'INT_16' || ctype === 'INT_32';
    return signed && (ltype === undefined || integer?.isSigned) ? new Int32Array(n) : undefined;
  }
  if (ctype !== undefined || ltype !== undefined) return undefined;
  if (element.type === 'FLOAT') return new Float32Array(n);
  if (element.type === 'DOUBLE') return new Float64Array(n);
  return undefined;
}

/**
 * Values as hyparquet gave them, in a typed array when the column's type has one (so rows can be
 * views of the page), else unchanged.
 */
function typedValues(values: ArrayLike<number>, element: SchemaElement): ArrayLike<number> {
  if (ArrayBuffer.isView(values)) return values;
  const out = typedArrayFor(element, values.length);
  if (!out) return values;
  for (let i = 0; i < values.length; i++) out[i] = values[i];
  return out;
}

function fallback(
  compressed: Uint8Array,
  header: PageHeader,
  decoder: ColumnDecoder,
  dictionary: DecodedArray | undefined,
  encoding: Encoding,
): TypedPage {
  let page;
  let count: number;
  if (header.type === 'DATA_PAGE') {
    const h = header.data_page_header as DataPageHeader;
    const raw = decompressPage(compressed, header.uncompressed_page_size, decoder.codec, decoder.compressors);
    page = readDataPage(raw, h, decoder);
    count = h.num_values;
  } else {
    page = readDataPageV2(compressed, header, decoder);
    count = (header.data_page_header_v2 as DataPageHeaderV2).num_values;
  }
  const values = typedValues(
    convertWithDictionary(page.dataPage, dictionary, encoding, decoder) as ArrayLike<number>,
    decoder.element,
  );
  return { rep: page.repetitionLevels, def: page.definitionLevels ?? [], values, count };
}
