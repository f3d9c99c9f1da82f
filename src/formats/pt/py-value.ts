// The values a restricted unpickler produces, and the stand-in objects an allow-list hands it for globals.
import { CaiError, ErrorCodes } from '../../errors.js';

/**
 * A Python value as rebuilt from a pickle. Tuples and lists are both arrays; dicts keep insertion order;
 * ints beyond 2^53 are bigints.
 * @example const args: PyValue = ['storage', 0, [2, 3]];
 */
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyDict | PyObject;

/**
 * A Python `dict` (or `OrderedDict`, set items in order).
 *
 * @example new PyDict().entries.set('tensors', [])
 */
export class PyDict {
  readonly entries = new Map<PyValue, PyValue>();
}

/**
 * Base of the stand-ins an allow-list returns for globals and of the objects they build. By default a
 * stand-in can be neither called, constructed nor given state; subclasses opt in to exactly what they need.
 *
 * @example
 * class Marker extends PyObject { readonly pyName = 'pkg.Marker'; }
 */
export abstract class PyObject {
  /** The Python name shown in errors, e.g. `torch.FloatStorage`. */
  abstract readonly pyName: string;

  /** The REDUCE opcode: `self(*args)`. */
  call(_args: PyValue[], source: string): PyValue {
    throw refuse(source, `calls ${this.pyName}, which is not a function CAI rebuilds`);
  }

  /** NEWOBJ, NEWOBJ_EX, INST and OBJ: `self.__new__(self, *args)`. */
  construct(_args: PyValue[], source: string): PyValue {
    throw refuse(source, `creates a ${this.pyName}, which is not a class CAI rebuilds`);
  }

  /** The BUILD opcode: `self.__setstate__(state)`. */
  setState(_state: PyValue, source: string): void {
    throw refuse(source, `sets the state of a ${this.pyName}, which CAI does not support`);
  }
}

/**
 * What the unpickler asks of its caller: stand-ins for globals (throw to refuse one) and the objects
 * behind persistent ids (torch's storages).
 *
 * @example
 * const hooks: UnpickleHooks = { findGlobal: (m, n) => { throw new Error(`${m}.${n}`); }, persistentLoad: () => null };
 */
export interface UnpickleHooks {
  findGlobal(module: string, name: string): PyValue;
  persistentLoad(pid: PyValue): PyValue;
}

/**
 * An `E_UNSUPPORTED` error for a pickle that does something CAI does not rebuild.
 * @example throw refuse('1.pt', 'calls builtins.len');
 */
export function refuse(source: string, what: string): CaiError {
  return new CaiError(
    ErrorCodes.unsupported,
    source,
    `its pickle ${what}; save only tensors (a TensorDataset, a tensor, or a tuple, list or dict of tensors)`,
  );
}

/** A short Python-style type name for messages. @example pyTypeName([]) // 'tuple/list' */
export function pyTypeName(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'tuple/list';
  if (v instanceof PyDict) return 'dict';
  return v.pyName;
}
