// CAI's partitions: torch.save zip archives (`<name>/data.pkl` plus raw storages in `<name>/data/<key>`).
import { CaiError, ErrorCodes } from '../../errors.js';
import { columnSet, type ColumnSet } from '../columns.js';
import type { TensorFormat } from '../format.js';
import type { Tensor } from '../../tensor/tensor.js';
import { unpickle } from './pickle.js';
import { PyDict, pyTypeName, type PyValue } from './py-value.js';
import { TensorDatasetValue, TensorValue, torchHooks } from './torch-globals.js';
import { inflateBudget, isZip, listZip, readZipEntry, type ZipEntry } from '../zip.js';

const SUPPORTED =
  'CAI reads a TensorDataset, a tensor, a tuple or list of tensors, or a dict of tensors saved with torch.save';

function tensorAt(source: string, value: PyValue, where: string): Tensor {
  if (value instanceof TensorValue) return value.tensor;
  throw new CaiError(
    ErrorCodes.unsupported,
    source,
    `${where} is a ${pyTypeName(value)}, not a tensor; ${SUPPORTED}`,
  );
}

/** Names the columns of the pickle's top-level object. */
function toColumns(source: string, root: PyValue): ColumnSet {
  if (root instanceof TensorValue) return columnSet(source, ['0'], [root.tensor]);
  const items = root instanceof TensorDatasetValue ? root.tensors : root;
  if (Array.isArray(items)) {
    const columns = items.map((v, i) => tensorAt(source, v, `item ${i}`));
    return columnSet(
      source,
      columns.map((_, i) => String(i)),
      columns,
    );
  }
  if (root instanceof PyDict) {
    const names: string[] = [];
    const columns: Tensor[] = [];
    for (const [key, value] of root.entries) {
      // A checkpoint-style dict may carry an epoch or a note beside its tensors: those are not columns.
      if (!(value instanceof TensorValue)) continue;
      if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'bigint') {
        throw new CaiError(
          ErrorCodes.unsupported,
          source,
          `has a dict key of type ${pyTypeName(key)}; use string keys`,
        );
      }
      names.push(String(key));
      columns.push(value.tensor);
    }
    if (columns.length === 0) {
      throw new CaiError(ErrorCodes.unsupported, source, `holds a dict without tensors; ${SUPPORTED}`);
    }
    return columnSet(source, names, columns);
  }
  throw new CaiError(ErrorCodes.unsupported, source, `holds a ${pyTypeName(root)}; ${SUPPORTED}`);
}

/**
 * Decodes a torch.save zip archive into columns: a TensorDataset gives `"0"`, `"1"`, ... in order, a tensor
 * `"0"`, a tuple or list columns by position, a dict columns by key (non-tensor values skipped). Dense
 * little-endian tensors are views into `bytes`; strided views are copied into row-major order. Only an
 * allow-list of globals is honoured: anything else (`posix.system`, `builtins.eval`, ...) throws
 * `E_PICKLE_GLOBAL` and nothing from the file is ever executed.
 *
 * @example
 * const set = decodePt(await readFile('1.pt'), '1.pt'); // names ['0', '1', '2'] for a CAI partition
 */
export function decodePt(bytes: Uint8Array, key: string): ColumnSet {
  if (!isZip(bytes)) {
    if (bytes.length > 0 && bytes[0] === 0x80) {
      throw new CaiError(
        ErrorCodes.unsupported,
        key,
        'uses the legacy (pre-1.6, non-zip) torch.save format, which CAI does not read; ' +
          'load it in Python and save it again with a current torch.save (the default zip format)',
      );
    }
    throw new CaiError(
      ErrorCodes.corrupt,
      key,
      'is not a torch.save zip archive; the file is damaged or not a .pt file',
    );
  }
  const entries = listZip(bytes, key);
  const budget = inflateBudget(bytes.length);
  const byName = new Map<string, ZipEntry>(entries.map((e) => [e.name, e]));
  const pkl =
    entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name)) ?? entries.find((e) => e.name === 'data.pkl');
  if (pkl === undefined) {
    throw new CaiError(
      ErrorCodes.corrupt,
      key,
      'is a zip archive without a data.pkl; it was not written by torch.save',
    );
  }
  const prefix = pkl.name.slice(0, -'data.pkl'.length);
  if (byName.has(`${prefix}constants.pkl`)) {
    throw new CaiError(
      ErrorCodes.unsupported,
      key,
      'is a TorchScript module (torch.jit.save), not data; export the model to ONNX and save the data with torch.save',
    );
  }
  const order = byName.get(`${prefix}byteorder`);
  const byteorder = order
    ? new TextDecoder().decode(readZipEntry(bytes, order, key, budget)).trim()
    : 'little';
  if (byteorder !== 'little' && byteorder !== 'big') {
    throw new CaiError(
      ErrorCodes.corrupt,
      key,
      `declares byte order "${byteorder}"; expected "little" or "big"`,
    );
  }
  const hooks = torchHooks(
    key,
    byteorder === 'big',
    (storageKey) => {
      const entry = byName.get(`${prefix}data/${storageKey}`);
      return entry && readZipEntry(bytes, entry, key, budget);
    },
    bytes.length,
  );
  return toColumns(key, unpickle(readZipEntry(bytes, pkl, key, budget), key, hooks));
}

/**
 * The `.pt` / `.pth` reader (torch.save archives, CAI's partition format).
 *
 * @example ptFormat.decode(bytes, 'data/1.pt').names // ['0', '1', '2']
 */
export const ptFormat: TensorFormat = Object.freeze({
  name: 'pt',
  extensions: Object.freeze(['.pt', '.pth']),
  decode: decodePt,
});
