// The .npy header is a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
// It is parsed as data with a tiny literal grammar, never evaluated.
import { CaiError, ErrorCodes } from '../../errors.js';

type Literal = string | number | boolean | null | Literal[] | { [key: string]: Literal };

/**
 * The fields of a .npy header that CAI uses.
 *
 * @example parseNpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 'a.npy')
 */
export interface NpyHeader {
  /** The dtype string such as `<f4`, or a list for structured dtypes. */
  readonly descr: string | Literal[];
  readonly fortranOrder: boolean;
  readonly shape: readonly number[];
}

/** Nesting allowed in a header literal: numpy writes depth 2 (a dict holding a shape tuple). */
const MAX_DEPTH = 32;
const WORD = /[A-Za-z_]+|[-+]?\d+L?/y;

function parseLiteral(text: string, source: string): Literal {
  let i = 0;
  let depth = 0;
  const fail = (what: string): never => {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `has a malformed .npy header (${what} at character ${i}); write it again`,
    );
  };
  const skip = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const value = (): Literal => {
    skip();
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('an unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      if (++depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
      i++;
      const items: Literal[] = [];
      // No prototype: a key named __proto__ stays an ordinary key.
      const dict = Object.create(null) as { [key: string]: Literal };
      while (true) {
        skip();
        if (text[i] === close) {
          i++;
          depth--;
          return c === '{' ? dict : items;
        }
        const item = value();
        if (c === '{') {
          skip();
          if (text[i] !== ':' || typeof item !== 'string') fail('a bad dict entry');
          i++;
          dict[item as string] = value();
        } else {
          items.push(item);
        }
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail('a missing comma');
      }
    }
    // Sticky, not a slice per word: a long header of many numbers stays linear.
    WORD.lastIndex = i;
    const word = WORD.exec(text);
    if (!word) return fail('an unexpected character');
    i += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    const n = Number(word[0].replace(/L$/, ''));
    if (!Number.isSafeInteger(n)) fail(`an unexpected word "${word[0]}"`);
    return n;
  };
  const result = value();
  skip();
  if (i < text.length) fail('trailing text');
  return result;
}

/**
 * Parses the header dict of a .npy file and checks its three keys. Throws `E_CORRUPT` naming `source`.
 *
 * @example parseNpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 'x.npy').shape // [3, 4]
 */
export function parseNpyHeader(text: string, source: string): NpyHeader {
  const dict = parseLiteral(text.trim(), source);
  const bad = (what: string) =>
    new CaiError(
      ErrorCodes.corrupt,
      source,
      `has a .npy header with ${what}; write it again with numpy.save`,
    );
  if (dict === null || typeof dict !== 'object' || Array.isArray(dict)) throw bad('no dict');
  const { descr, fortran_order: fortranOrder, shape } = dict;
  if (typeof descr !== 'string' && !Array.isArray(descr)) throw bad('no descr');
  if (typeof fortranOrder !== 'boolean') throw bad('no fortran_order');
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && d >= 0))
    throw bad('no valid shape');
  return { descr, fortranOrder, shape: shape as number[] };
}
