// Reading rows [a, b) of a big tensor file without reading the whole file: a C-order .npy array and every
// tensor of a .safetensors file keep each row's bytes contiguous at an offset the header gives, so a row
// range is one ranged request per column. Other files (.pt, .npz, Fortran-order .npy) are read whole.
import { CaiError, ErrorCodes } from '../../errors.js';
import type { Store } from '../../storage/store.js';
import { bytesPerElement, type DType, viewBytes } from '../../tensor/dtype.js';
import { byteswapInPlace, numel, type Tensor } from '../../tensor/tensor.js';
import { sliceColumns, type ColumnSet } from '../columns.js';
import { NPY_DTYPES } from '../npy/npy-format.js';
import { parseNpyHeader } from '../npy/npy-header.js';
import { SAFETENSORS_DTYPES } from '../safetensors/safetensors-format.js';
import { parseSafetensorsHeader } from '../safetensors/header.js';
import { decodeTensorFile, extensionOf } from '../registry.js';

/** One column of a tensor file: its name, dtype and the shape of one row. */
export interface ColumnInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly rowShape: readonly number[];
}

/** A tensor file opened for reading rows. */
export interface TensorRows {
  readonly key: string;
  readonly columns: readonly ColumnInfo[];
  readonly items: number;
  /** True when rows are fetched by range; false when the file had to be read whole. */
  readonly ranged: boolean;
  /** Rows `[start, end)` of every column. */
  read(start: number, end: number): Promise<ColumnSet>;
}

interface Span {
  readonly info: ColumnInfo;
  /** Byte offset of row 0. */
  readonly offset: number;
  readonly bigEndian: boolean;
}

function rowsOf(store: Store, key: string, items: number, spans: readonly Span[]): TensorRows {
  return {
    key,
    columns: spans.map((s) => s.info),
    items,
    ranged: true,
    async read(start, end) {
      const columns = await Promise.all(
        spans.map(async (s): Promise<Tensor> => {
          const size = bytesPerElement(s.info.dtype);
          const rowBytes = numel(s.info.rowShape) * size;
          const from = s.offset + start * rowBytes;
          const bytes = await store.getRange(key, from, from + (end - start) * rowBytes);
          if (bytes.length !== (end - start) * rowBytes) {
            throw new CaiError(
              ErrorCodes.corrupt,
              store.describe(key),
              `ends before rows ${start}-${end} of "${s.info.name}" (byte ${from + bytes.length} of ${from + (end - start) * rowBytes}); it is truncated`,
            );
          }
          if (s.bigEndian) byteswapInPlace(bytes, size);
          return {
            dtype: s.info.dtype,
            shape: [end - start, ...s.info.rowShape],
            data: viewBytes(s.info.dtype, bytes),
          };
        }),
      );
      return { names: spans.map((s) => s.info.name), columns, items: end - start };
    },
  };
}

async function openNpy(store: Store, key: string, size: number): Promise<TensorRows | undefined> {
  const source = store.describe(key);
  const lead = await store.getRange(key, 0, Math.min(size, 12));
  if (lead.length < 10 || lead[0] !== 0x93 || String.fromCharCode(...lead.subarray(1, 6)) !== 'NUMPY') {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      'does not start with the .npy magic string; it is not a .npy file',
    );
  }
  const major = lead[6];
  const view = new DataView(lead.buffer, lead.byteOffset, lead.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const dataStart = headerStart + headerLength;
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    await store.getRange(key, headerStart, dataStart),
  );
  const header = parseNpyHeader(text, source);
  const descr = typeof header.descr === 'string' ? header.descr : '';
  const dtype = NPY_DTYPES[descr.slice(1)];
  if (!dtype || header.fortranOrder || header.shape.length === 0) return undefined;
  const [items, ...rowShape] = header.shape;
  const need = dataStart + numel(header.shape) * bytesPerElement(dtype);
  if (need > size) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `holds ${size - dataStart} data bytes, fewer than its shape [${header.shape.join(', ')}] of ${dtype} needs (${need - dataStart}); it is truncated`,
    );
  }
  return rowsOf(store, key, items, [
    {
      info: { name: '0', dtype, rowShape },
      offset: dataStart,
      bigEndian: descr[0] === '>' && bytesPerElement(dtype) > 1,
    },
  ]);
}

async function openSafetensors(store: Store, key: string, size: number): Promise<TensorRows | undefined> {
  const source = store.describe(key);
  const lead = await store.getRange(key, 0, Math.min(size, 8));
  if (lead.length < 8) throw new CaiError(ErrorCodes.corrupt, source, 'is shorter than a safetensors header');
  const headerLength = Number(new DataView(lead.buffer, lead.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > size - 8) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `its ${headerLength}-byte safetensors header runs past the end`,
    );
  }
  const header = parseSafetensorsHeader(await store.getRange(key, 8, 8 + headerLength), source) as [
    string,
    { dtype?: string; shape?: number[]; data_offsets?: number[] },
  ][];
  const dataStart = 8 + headerLength;
  const spans: Span[] = [];
  let items: number | undefined;
  const entries = header;
  entries.sort((a, b) => (a[1].data_offsets?.[0] ?? 0) - (b[1].data_offsets?.[0] ?? 0));
  for (const [name, e] of entries) {
    const dtype = SAFETENSORS_DTYPES[e.dtype ?? ''];
    if (!dtype || !e.shape?.length || !e.data_offsets) return undefined; // BF16, scalars: read whole
    const [n, ...rowShape] = e.shape;
    if (items !== undefined && n !== items) return undefined; // let the whole-file reader explain
    items = n;
    if (dataStart + e.data_offsets[1] > size) {
      throw new CaiError(
        ErrorCodes.corrupt,
        source,
        `tensor "${name}" runs past the end of the file; it is truncated`,
      );
    }
    spans.push({ info: { name, dtype, rowShape }, offset: dataStart + e.data_offsets[0], bigEndian: false });
  }
  return items === undefined ? undefined : rowsOf(store, key, items, spans);
}

/**
 * Opens a tensor file for reading row ranges: `.npy` (C order) and `.safetensors` by ranged requests,
 * with memory bounded by the range asked for; anything else (`.pt`, `.npz`, Fortran-order `.npy`, BF16)
 * is read and decoded whole, once.
 *
 * @example const t = await openTensorRows(store, 'big.npy', size); const first = await t.read(0, 1278);
 */
export async function openTensorRows(store: Store, key: string, size: number): Promise<TensorRows> {
  const ext = extensionOf(key);
  const ranged =
    ext === '.npy'
      ? await openNpy(store, key, size)
      : ext === '.safetensors'
        ? await openSafetensors(store, key, size)
        : undefined;
  if (ranged) return ranged;
  const set = decodeTensorFile(await store.get(key), store.describe(key));
  return {
    key,
    columns: set.columns.map((c, i) => ({ name: set.names[i], dtype: c.dtype, rowShape: c.shape.slice(1) })),
    items: set.items,
    ranged: false,
    read: async (start, end) => sliceColumns(set, start, end),
  };
}
