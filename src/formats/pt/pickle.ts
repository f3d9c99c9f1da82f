// A restricted unpickler. It interprets the opcodes Python's pickle protocols 0-5 use to describe data,
// but it cannot run code: every global the stream names goes through `findGlobal`, which returns an inert
// stand-in object from an allow-list or throws, and "calling" a stand-in only runs the TypeScript method
// CAI wrote for it.
import { CaiError, ErrorCodes } from '../../errors.js';
import { PyDict, PyObject, pyTypeName, refuse, type PyValue, type UnpickleHooks } from './py-value.js';

function corrupt(source: string, what: string): CaiError {
  return new CaiError(ErrorCodes.corrupt, source, `has a damaged pickle (${what}); write the file again`);
}

// Not TextDecoder('latin1'): WHATWG maps that label to windows-1252, which differs from Python's latin-1
// for bytes 0x80-0x9f.
const latin1 = {
  decode(bytes: Uint8Array): string {
    let out = '';
    for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
    return out;
  },
};
const utf8 = new TextDecoder('utf-8');

/** Open MARKs allowed at once. */
const MAX_MARKS = 1000;

/**
 * Rebuilds the value a pickle describes, never executing anything from it. Throws `E_CORRUPT` for a
 * stream that is malformed or ends early and `E_UNSUPPORTED` for opcodes CAI does not read (extension
 * registry, out-of-band buffers, protocol 0 quoted strings); `hooks.findGlobal` decides every global.
 *
 * @example
 * const value = unpickle(pklBytes, '1.pt', torchHooks);
 */
export function unpickle(bytes: Uint8Array, source: string, hooks: UnpickleHooks): PyValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const memo = new Map<number, PyValue>();
  const metastack: PyValue[][] = [];
  let stack: PyValue[] = [];
  let pos = 0;

  const need = (n: number): number => {
    if (n < 0 || pos + n > bytes.length) throw corrupt(source, `it ends early at byte ${bytes.length}`);
    const at = pos;
    pos += n;
    return at;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw corrupt(source, 'it ends early inside a text line');
    const text = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const size64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(bytes.length)) throw corrupt(source, `it ends early (a length of ${v} bytes)`);
    return Number(v);
  };
  const pop = (): PyValue => {
    if (stack.length === 0) throw corrupt(source, `its stack is empty at byte ${pos - 1}`);
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw corrupt(source, `its stack is empty at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const outer = metastack.pop();
    if (outer === undefined) throw corrupt(source, `a mark is missing at byte ${pos - 1}`);
    stack = outer;
    return items;
  };
  const get = (i: number): PyValue => {
    if (!memo.has(i)) throw corrupt(source, `memo entry ${i} is missing`);
    return memo.get(i) as PyValue;
  };
  const object = (v: PyValue, what: string): PyObject => {
    if (v instanceof PyObject) return v;
    throw refuse(source, `${what} a ${pyTypeName(v)}`);
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (!(target instanceof PyDict)) throw refuse(source, `sets items on a ${pyTypeName(target)}`);
    if (items.length % 2 !== 0) throw corrupt(source, 'a dict has a key without a value');
    for (let i = 0; i < items.length; i += 2) target.entries.set(items[i], items[i + 1]);
  };
  const extend = (target: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(target)) throw refuse(source, `appends to a ${pyTypeName(target)}`);
    for (const item of items) target.push(item);
  };
  const long = (n: number): number | bigint => {
    // Bounded so a hostile stream cannot make BigInt assembly quadratic; torch writes small ints only.
    if (n > 64) throw refuse(source, `holds a ${n}-byte integer`);
    const at = need(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
    if (bytes[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const text = (n: number): string => utf8.decode(bytes.subarray(need(n), pos));
  const int = (s: string): number | bigint => {
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (!/^[-+]?\d+$/.test(t)) throw corrupt(source, `"${s}" is not an integer`);
    const v = BigInt(t);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const codePoint = (cp: number): string => {
    if (cp > 0x10ffff) throw corrupt(source, `\\U${cp.toString(16)} is not a code point`);
    return String.fromCodePoint(cp);
  };
  const memoIndex = (s: string): number => {
    const v = int(s);
    if (typeof v !== 'number') throw corrupt(source, 'a memo index is out of range');
    return v;
  };

  while (true) {
    const opAt = pos;
    const op = bytes[need(1)];
    switch (op) {
      case 0x80: // PROTO
        if (bytes[need(1)] > 5)
          throw corrupt(source, `it uses pickle protocol ${bytes[pos - 1]}, newer than 5`);
        break;
      case 0x95: // FRAME: framing is only a hint for buffered readers
        need(8);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || metastack.length !== 0)
          throw corrupt(source, 'it stops with a malformed stack');
        return stack[0];
      case 0x28: // MARK
        // Nesting is bounded like Python's own recursion limit: torch.save never nests more than a few.
        if (metastack.length >= MAX_MARKS)
          throw corrupt(source, `it nests more than ${MAX_MARKS} marks deep`);
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(bytes[need(1)]);
        break;
      case 0x4d: // BININT2
        stack.push(view.getUint16(need(2), true));
        break;
      case 0x8a: // LONG1
        stack.push(long(bytes[need(1)]));
        break;
      case 0x8b: // LONG4
        stack.push(long(view.getInt32(need(4), true)));
        break;
      case 0x49: {
        // INT (protocol 0): "I01" and "I00" are True and False
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : int(s));
        break;
      }
      case 0x4c: // LONG (protocol 0)
        stack.push(int(line()));
        break;
      case 0x47: // BINFLOAT
        stack.push(view.getFloat64(need(8), false));
        break;
      case 0x46: {
        // FLOAT (protocol 0)
        const s = line().trim();
        const v = Number(s);
        if (s === '' || Number.isNaN(v)) throw corrupt(source, `"${s}" is not a float`);
        stack.push(v);
        break;
      }
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(bytes[need(1)]));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(view.getUint32(need(4), true)));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(size64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str)
        stack.push(latin1.decode(bytes.subarray(need(bytes[need(1)]), pos)));
        break;
      case 0x54: // BINSTRING
        stack.push(latin1.decode(bytes.subarray(need(view.getInt32(need(4), true)), pos)));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes.slice(need(bytes[need(1)]), pos));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes.slice(need(view.getUint32(need(4), true)), pos));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(bytes.slice(need(size64()), pos));
        break;
      case 0x29: // EMPTY_TUPLE
      case 0x5d: // EMPTY_LIST
      case 0x8f: // EMPTY_SET
        stack.push([]);
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x74: // TUPLE
      case 0x6c: // LIST
      case 0x91: {
        // FROZENSET. popMark() swaps `stack`, so it must run before `stack.push` is looked up.
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const dict = new PyDict();
        setItems(dict, popMark());
        stack.push(dict);
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop();
        extend(top(), [item]);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        extend(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x68: // BINGET
        stack.push(get(bytes[need(1)]));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(get(view.getUint32(need(4), true)));
        break;
      case 0x67: // GET
        stack.push(get(memoIndex(line())));
        break;
      case 0x71: // BINPUT
        memo.set(bytes[need(1)], top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(view.getUint32(need(4), true), top());
        break;
      case 0x70: // PUT
        memo.set(memoIndex(line()), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(hooks.findGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string')
          throw corrupt(source, 'a global is not named');
        stack.push(hooks.findGlobal(module, name));
        break;
      }
      case 0x69: {
        // INST
        const module = line();
        const cls = object(hooks.findGlobal(module, line()), 'creates');
        const args = popMark();
        stack.push(cls.construct(args, source));
        break;
      }
      case 0x6f: {
        // OBJ
        const [cls, ...args] = popMark();
        stack.push(object(cls ?? null, 'creates').construct(args, source));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = object(pop(), 'calls');
        if (!Array.isArray(args)) throw corrupt(source, 'a call has no argument tuple');
        stack.push(fn.call(args, source));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = object(pop(), 'creates');
        if (!Array.isArray(args)) throw corrupt(source, 'a constructor has no argument tuple');
        stack.push(cls.construct(args, source));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = object(pop(), 'creates');
        if (!Array.isArray(args)) throw corrupt(source, 'a constructor has no argument tuple');
        if (!(kwargs instanceof PyDict) || kwargs.entries.size > 0)
          throw refuse(source, `passes keyword arguments to ${cls.pyName}`);
        stack.push(cls.construct(args, source));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const target = top();
        if (target instanceof PyObject) target.setState(state, source);
        else if (state !== null) throw refuse(source, `sets state on a ${pyTypeName(target)}`);
        break;
      }
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()));
        break;
      case 0x56: // UNICODE (protocol 0): raw-unicode-escape, where pickle escapes every backslash too
        stack.push(
          line().replace(
            /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g,
            (_m, u: string | undefined, w: string | undefined) => codePoint(parseInt(u ?? w ?? '0', 16)),
          ),
        );
        break;
      case 0x50: // PERSID
      case 0x53: // STRING
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
        throw new CaiError(
          ErrorCodes.unsupported,
          source,
          `its pickle uses opcode 0x${op.toString(16)} at byte ${opAt}, which CAI does not read; re-save it with a current torch.save`,
        );
      default:
        throw corrupt(source, `unknown opcode 0x${op.toString(16)} at byte ${opAt}`);
    }
  }
}
