// FITS headers: 2880-byte blocks of 80-character ASCII cards, ending with the END card (FITS 4.0, sec. 4).
import { CaiError, ErrorCodes } from '../../errors.js';

/** Bytes in a FITS block; headers and data units are padded to a multiple of it. */
export const BLOCK = 2880;
const CARD = 80;

/** A header card's value: strings, logicals, integers and reals (complex values are kept as text). */
export type CardValue = string | number | boolean;

/** A parsed header: keyword -> value (the first occurrence), and where the header ends. */
export interface FitsHeader {
  readonly cards: ReadonlyMap<string, CardValue>;
  /** Byte offset just past the header's last block (where its data unit starts). */
  readonly end: number;
}

const ascii = new TextDecoder('latin1');

function parseValue(text: string): CardValue | undefined {
  const t = text.trimStart();
  if (t.startsWith("'")) {
    // A string: quotes inside are doubled; trailing spaces are not significant.
    let out = '';
    for (let i = 1; i < t.length; i++) {
      if (t[i] === "'") {
        if (t[i + 1] === "'") {
          out += "'";
          i++;
        } else return out.trimEnd();
      } else out += t[i];
    }
    return undefined;
  }
  const slash = t.indexOf('/');
  const v = (slash >= 0 ? t.slice(0, slash) : t).trim();
  if (v === 'T') return true;
  if (v === 'F') return false;
  if (v === '') return undefined;
  if (/^[+-]?\d+$/.test(v)) return Number(v);
  const n = Number(v.replace(/[dD]/, 'E'));
  return Number.isNaN(n) ? v : n;
}

/**
 * Parses the header that starts at `offset` of `bytes`. Returns `undefined` when `bytes` ends before
 * the END card (read more and try again); throws `E_CORRUPT` naming `source` when the cards are not
 * FITS (a non-ASCII byte, or a first keyword that is neither SIMPLE nor XTENSION).
 *
 * @example parseHeader(bytes, 0, 'cutout.fits')?.cards.get('NAXIS1') // 64
 */
export function parseHeader(bytes: Uint8Array, offset: number, source: string): FitsHeader | undefined {
  const cards = new Map<string, CardValue>();
  for (let block = offset; block + BLOCK <= bytes.length; block += BLOCK) {
    for (let at = block; at < block + BLOCK; at += CARD) {
      const card = bytes.subarray(at, at + CARD);
      for (const b of card) {
        if (b < 0x20 || b > 0x7e) {
          throw new CaiError(
            ErrorCodes.corrupt,
            source,
            `has a non-ASCII byte in the header card at byte ${at}; it is not a FITS file or is damaged`,
          );
        }
      }
      const text = ascii.decode(card);
      const keyword = text.slice(0, 8).trimEnd();
      if (at === offset && keyword !== 'SIMPLE' && keyword !== 'XTENSION') {
        throw new CaiError(
          ErrorCodes.corrupt,
          source,
          `has no SIMPLE or XTENSION card at byte ${offset} (found "${keyword}"); it is not a FITS file or its header sizes are wrong`,
        );
      }
      if (keyword === 'END') return { cards, end: block + BLOCK };
      if (text.slice(8, 10) !== '= ' || cards.has(keyword)) continue;
      const value = parseValue(text.slice(10));
      if (value !== undefined) cards.set(keyword, value);
    }
  }
  return undefined;
}

/** An integer card, or a clear error when it is missing or not an integer. */
export function intCard(h: FitsHeader, keyword: string, source: string, fallback?: number): number {
  const v = h.cards.get(keyword);
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `has ${v === undefined ? 'no' : `a non-integer (${String(v)})`} ${keyword} card; it is not a valid FITS header`,
    );
  }
  return v;
}

/** A real card (BSCALE, BZERO...), or the fallback when absent. */
export function realCard(h: FitsHeader, keyword: string, fallback: number): number {
  const v = h.cards.get(keyword);
  return typeof v === 'number' ? v : fallback;
}
