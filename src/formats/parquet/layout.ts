// Which Parquet columns play which role: the image (encoded bytes, a {bytes, path} struct as Hugging
// Face datasets write, or a raw pixel list as the Ray benchmark writes), the item id, a per-row shape,
// and numeric features.
import type { FileMetaData, SchemaTree } from 'hyparquet';
import { parquetSchema } from 'hyparquet';
import { isListLike } from 'hyparquet/src/schema.js';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { DType } from '../../tensor/dtype.js';

/** How a column's values are stored. */
export type ColumnKind = 'number' | 'list' | 'binary' | 'string' | 'struct-bytes' | 'other';

/** One top-level column as CAI sees it. */
export interface ParquetColumn {
  readonly name: string;
  readonly kind: ColumnKind;
  /** Element dtype of number and list columns. */
  readonly dtype?: DType;
  readonly tree: SchemaTree;
}

/** The roles chosen for a file's columns. */
export interface ParquetLayout {
  readonly columns: readonly ParquetColumn[];
  readonly image?: ParquetColumn;
  readonly id?: ParquetColumn;
  readonly shape?: ParquetColumn;
  readonly features: readonly ParquetColumn[];
  /** Columns copied into the predictions (`carry`), one value per row. */
  readonly carry?: readonly ParquetColumn[];
}

/** The job fields Parquet reading uses. */
export interface ParquetJobFields {
  readonly idColumn?: string;
  readonly carry?: readonly string[];
  readonly imageColumn?: string;
  readonly shapeColumn?: string;
  readonly imageShape?: readonly number[];
  readonly featureColumns?: readonly string[];
}

function leafDType(tree: SchemaTree): DType | undefined {
  const e = tree.element;
  const logical = e.logical_type?.type === 'INTEGER' ? e.logical_type : undefined;
  const bits = logical?.bitWidth;
  const signed = logical
    ? logical.isSigned
    : !['UINT_8', 'UINT_16', 'UINT_32'].includes(e.converted_type ?? '');
  switch (e.type) {
    case 'BOOLEAN':
      return 'bool';
    case 'FLOAT':
      return 'float32';
    case 'DOUBLE':
      return 'float64';
    case 'INT64':
      return 'int64';
    case 'INT32':
      if (bits === 8 || e.converted_type === 'INT_8' || e.converted_type === 'UINT_8')
        return signed ? 'int8' : 'uint8';
      if (bits === 16 || e.converted_type === 'INT_16' || e.converted_type === 'UINT_16')
        return signed ? 'int16' : 'int32';
      if (e.converted_type === 'DATE' || e.converted_type === 'DECIMAL') return undefined;
      return signed ? 'int32' : 'int64';
    default:
      return undefined;
  }
}

function classify(tree: SchemaTree): ParquetColumn {
  const name = tree.element.name;
  const e = tree.element;
  if (tree.children.length === 0) {
    if (e.type === 'BYTE_ARRAY' || e.type === 'FIXED_LEN_BYTE_ARRAY') {
      const text = e.converted_type === 'UTF8' || e.logical_type?.type === 'STRING';
      return { name, kind: text ? 'string' : 'binary', tree };
    }
    const dtype = leafDType(tree);
    return dtype ? { name, kind: 'number', dtype, tree } : { name, kind: 'other', tree };
  }
  if (isListLike(tree)) {
    const leaf = tree.children[0].children[0] ?? tree.children[0];
    const dtype = leaf.children.length === 0 ? leafDType(leaf) : undefined;
    return dtype ? { name, kind: 'list', dtype, tree } : { name, kind: 'other', tree };
  }
  const bytes = tree.children.find((c) => c.element.name === 'bytes' && c.element.type === 'BYTE_ARRAY');
  return bytes ? { name, kind: 'struct-bytes', tree } : { name, kind: 'other', tree };
}

function pick(
  columns: readonly ParquetColumn[],
  name: string | undefined,
  field: string,
  kinds: readonly ColumnKind[],
  source: string,
): ParquetColumn | undefined {
  if (name === undefined) return undefined;
  const c = columns.find((x) => x.name === name);
  if (!c || !kinds.includes(c.kind)) {
    const fitting = columns.filter((x) => kinds.includes(x.kind)).map((x) => x.name);
    throw new CaiError(
      ErrorCodes.option,
      source,
      `${c ? `column "${name}" is ${c.kind}, not` : `has no column "${name}" for`} ${field}; ${fitting.length ? `columns that fit: ${fitting.join(', ')}` : `no column fits (columns: ${columns.map((x) => `${x.name} (${x.kind})`).join(', ')})`}`,
    );
  }
  return c;
}

/**
 * Decides the columns' roles from the schema and the job. The image column is `imageColumn`, else a
 * binary or {bytes} column, else a list column named `image` when a shape is given. Features are
 * `featureColumns`, else every numeric column (and numeric list) not used as id, image or shape.
 *
 * @example parquetLayout(metadata, { imageShape: [256, 256, 3] }, 'part-0.parquet').image?.name // 'image'
 */
export function parquetLayout(metadata: FileMetaData, job: ParquetJobFields, source: string): ParquetLayout {
  const columns = parquetSchema(metadata).children.map(classify);
  const id = pick(columns, job.idColumn, 'idColumn', ['string', 'number'], source);
  const shape = pick(columns, job.shapeColumn, 'shapeColumn', ['list'], source);
  const raw = job.imageShape !== undefined || shape !== undefined;
  let image = pick(columns, job.imageColumn, 'imageColumn', ['binary', 'struct-bytes', 'list'], source);
  if (!image) {
    const named = columns.find((c) => ['image', 'img', 'images'].includes(c.name.toLowerCase()));
    if (
      named &&
      (named.kind === 'binary' || named.kind === 'struct-bytes' || (named.kind === 'list' && raw))
    ) {
      image = named;
    } else {
      image = columns.find((c) => c.kind === 'binary' || c.kind === 'struct-bytes');
    }
  }
  // A list column named like an image is pixels, not features: without a shape it cannot be read as
  // either, unless the job names it a feature on purpose.
  const pixels = columns.find(
    (c) => c.kind === 'list' && ['image', 'img', 'images'].includes(c.name.toLowerCase()),
  );
  if (!image && pixels && !raw && !job.featureColumns?.includes(pixels.name)) image = pixels;
  if (image?.kind === 'list' && !raw) {
    throw new CaiError(
      ErrorCodes.option,
      source,
      `image column "${image.name}" holds raw pixel arrays; give their shape with imageShape (e.g. --image-shape 256,256,3) or shapeColumn, or list it in featureColumns to read it as a flat vector`,
    );
  }
  const used = new Set([id?.name, shape?.name, image?.name]);
  const features = job.featureColumns
    ? job.featureColumns.map(
        (n) => pick(columns, n, 'featureColumns', ['number', 'list'], source) as ParquetColumn,
      )
    : columns.filter((c) => (c.kind === 'number' || c.kind === 'list') && !used.has(c.name));
  if (!image && features.length === 0) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `has no image or numeric column to feed a model (columns: ${columns.map((c) => `${c.name} (${c.kind})`).join(', ')}); name one with imageColumn or featureColumns`,
    );
  }
  const carry = job.carry?.map(
    (n) => pick(columns, n, '--carry', ['string', 'number'], source) as ParquetColumn,
  );
  return { columns, image, id, shape, features, ...(carry ? { carry } : {}) };
}
