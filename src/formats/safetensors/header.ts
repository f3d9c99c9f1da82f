// The safetensors header, read in bounded memory: its top-level members are found by scanning the bytes,
// `__metadata__` is stepped over without being parsed (any depth, any size: CAI does not need it), and
// only the tensor entries are parsed, each checked for nesting first. Trailing spaces (the format pads
// the header to align the data) cost a scan, never a string.
import { CaiError, ErrorCodes } from '../../errors.js';

/** A tensor entry of the header, as written: `{ dtype, shape, data_offsets }`. */
export interface RawEntry {
  readonly dtype?: unknown;
  readonly shape?: unknown;
  readonly data_offsets?: unknown;
}

/** An entry is an object holding arrays: depth 2. Anything far deeper is not safetensors. */
const MAX_ENTRY_DEPTH = 16;

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * The tensor entries of a safetensors header (the bytes between the length and the data), by name, in
 * the header's order; `__metadata__` is skipped unparsed. Throws `E_CORRUPT` naming `source` for a
 * header that is not one JSON object (trailing whitespace allowed) or an entry nested past 16 levels.
 *
 * @example parseSafetensorsHeader(bytes.subarray(8, 8 + n), 'x.safetensors') // [['weight', { dtype: 'F32', ... }]]
 */
export function parseSafetensorsHeader(header: Uint8Array, source: string): [string, RawEntry][] {
  const fail = (what: string) =>
    new CaiError(ErrorCodes.corrupt, source, `is not a valid safetensors file (${what}); write it again`);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let i = 0;
  const skipWs = () => {
    while (i < header.length && WS.has(header[i])) i++;
  };
  // The end (exclusive) of the JSON string starting at `at` (a quote).
  const stringEnd = (at: number): number => {
    for (let j = at + 1; j < header.length; j++) {
      if (header[j] === 0x5c) j++;
      else if (header[j] === 0x22) return j + 1;
    }
    throw fail('its header ends inside a string');
  };
  // The end (exclusive) of the JSON value starting at `at`, and its bracket depth (counted, not recursed).
  const valueEnd = (at: number): { end: number; depth: number } => {
    const b = header[at];
    if (b === 0x22) return { end: stringEnd(at), depth: 0 };
    if (b !== 0x7b && b !== 0x5b) {
      let j = at;
      while (j < header.length && header[j] !== 0x2c && header[j] !== 0x7d && !WS.has(header[j])) j++;
      return { end: j, depth: 0 };
    }
    let depth = 0;
    let deepest = 0;
    for (let j = at; j < header.length; j++) {
      const c = header[j];
      if (c === 0x22) j = stringEnd(j) - 1;
      else if (c === 0x7b || c === 0x5b) deepest = Math.max(deepest, ++depth);
      else if ((c === 0x7d || c === 0x5d) && --depth === 0) return { end: j + 1, depth: deepest };
    }
    throw fail('its header ends inside an object');
  };
  const parse = (from: number, to: number, what: string): unknown => {
    try {
      return JSON.parse(decoder.decode(header.subarray(from, to)));
    } catch (err) {
      throw fail(`its header is not JSON at ${what}: ${(err as Error).message}`);
    }
  };

  skipWs();
  if (header[i] !== 0x7b) throw fail('its header is not an object');
  i++;
  const entries: [string, RawEntry][] = [];
  for (;;) {
    skipWs();
    if (header[i] === 0x7d) {
      i++;
      break;
    }
    if (header[i] !== 0x22) throw fail(`its header has no member name at byte ${i}`);
    const keyEnd = stringEnd(i);
    const name = parse(i, keyEnd, `byte ${i}`) as string;
    i = keyEnd;
    skipWs();
    if (header[i] !== 0x3a) throw fail(`its header has no ':' after "${name}"`);
    i++;
    skipWs();
    if (i >= header.length) throw fail('its header ends early');
    const { end, depth } = valueEnd(i);
    if (name !== '__metadata__') {
      if (depth > MAX_ENTRY_DEPTH) throw fail(`its header nests JSON more than ${MAX_ENTRY_DEPTH} deep`);
      const value = parse(i, end, `"${name}"`);
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        throw fail(`tensor "${name}" lacks dtype, shape or data_offsets`);
      entries.push([name, value as RawEntry]);
    }
    i = end;
    skipWs();
    if (header[i] === 0x2c) {
      i++;
      continue;
    }
    if (header[i] === 0x7d) {
      i++;
      break;
    }
    throw fail(`its header has no ',' or '}' after "${name}"`);
  }
  skipWs();
  if (i < header.length) throw fail('its header has bytes after its closing brace');
  return entries;
}
