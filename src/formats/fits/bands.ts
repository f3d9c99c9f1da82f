// One file per band (SDSS-style `{id}_{band}.fits`): a file-name pattern maps keys to (item id, band).
import { CaiError, ErrorCodes } from '../../errors.js';
import type { ObjectInfo } from '../../storage/store.js';
import type { KeyedItem } from '../partition/group-objects.js';

/** The default pattern when bands are given without one. */
export const DEFAULT_BAND_PATTERN = '{id}_{band}.fits';

/** A compiled band pattern. */
export interface BandPattern {
  readonly pattern: string;
  readonly bands: readonly string[];
  /** The item id and band of a key, or undefined when it does not match. */
  match(key: string): { id: string; band: string } | undefined;
  /** Whether a key follows the pattern with a band that is not asked for (skipped, not an error). */
  otherBand(key: string): boolean;
  /** The key a band of an item would have (for "missing band" messages). */
  keyFor(id: string, band: string): string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Compiles a pattern with `{id}` and `{band}` placeholders. Without a `/` it is matched against the
 * file name and the folder stays part of the id (so `a/1_g.fits` and `b/1_g.fits` are different items).
 *
 * @example bandPattern('{id}_{band}.fits', ['u', 'g']).match('sdss/587_g.fits') // { id: 'sdss/587', band: 'g' }
 */
export function bandPattern(pattern: string, bands: readonly string[]): BandPattern {
  const parts = pattern.split(/(\{id\}|\{band\})/);
  if (!parts.includes('{id}') || !parts.includes('{band}')) {
    throw new CaiError(
      ErrorCodes.option,
      'fitsPattern',
      `"${pattern}" needs both {id} and {band}, e.g. {id}_{band}.fits`,
    );
  }
  const bandAlt = [...bands]
    .sort((a, b) => b.length - a.length)
    .map(escape)
    .join('|');
  const source = parts
    .map((p) => (p === '{id}' ? '(?<id>.+?)' : p === '{band}' ? `(?<band>${bandAlt})` : escape(p)))
    .join('');
  const re = new RegExp(`^${source}$`, 'i');
  const loose = new RegExp(
    `^${parts.map((p) => (p === '{id}' ? '(.+)' : p === '{band}' ? '([^/]+?)' : escape(p))).join('')}$`,
    'i',
  );
  const wholeKey = pattern.includes('/');
  const nameOf = (key: string) => (wholeKey ? key : key.slice(key.lastIndexOf('/') + 1));
  return {
    pattern,
    bands,
    otherBand: (key) => loose.test(nameOf(key)),
    match(key) {
      const slash = key.lastIndexOf('/');
      const dir = wholeKey || slash < 0 ? '' : key.slice(0, slash + 1);
      const m = re.exec(nameOf(key));
      if (!m?.groups) return undefined;
      const band = bands.find((b) => b.toLowerCase() === m.groups?.band.toLowerCase()) ?? m.groups.band;
      return { id: dir + m.groups.id, band };
    },
    keyFor(id, band) {
      const slash = id.lastIndexOf('/');
      const dir = wholeKey || slash < 0 ? '' : id.slice(0, slash + 1);
      const bare = wholeKey ? id : id.slice(slash + 1);
      return dir + pattern.replace('{id}', bare).replace('{band}', band);
    },
  };
}

/** One band group: the item's id and its band keys in band order (absent bands missing). */
export interface BandGroup extends KeyedItem {
  readonly id: string;
}

/**
 * Groups objects into items by the pattern, in order of each id's first appearance, with keys in the
 * pattern's band order. Objects of bands not asked for are skipped; objects that match no pattern are
 * an error naming a few, since they usually mean a wrong pattern. Items missing a band are kept: they
 * fail when read, with the missing file named, instead of silently vanishing.
 *
 * @example groupBands(objects, bandPattern('{id}_{band}.fits', ['g', 'r'])).map((g) => g.id)
 */
export function groupBands(objects: readonly ObjectInfo[], pattern: BandPattern): BandGroup[] {
  const byId = new Map<string, Map<string, ObjectInfo>>();
  const unmatched: string[] = [];
  for (const o of objects) {
    const m = pattern.match(o.key);
    if (!m) {
      if (!pattern.otherBand(o.key)) unmatched.push(o.key);
      continue;
    }
    const bands = byId.get(m.id) ?? new Map<string, ObjectInfo>();
    bands.set(m.band, o);
    byId.set(m.id, bands);
  }
  if (unmatched.length) {
    throw new CaiError(
      ErrorCodes.option,
      'fitsPattern',
      `${unmatched.length} FITS file(s) do not match "${pattern.pattern}" with bands ${pattern.bands.join(',')} (e.g. ${unmatched.slice(0, 3).join(', ')}); fix the pattern or the band list, or move those files away`,
    );
  }
  return [...byId.entries()].map(([id, bands]) => {
    const keys = pattern.bands.map((b) => bands.get(b)?.key).filter((k): k is string => k !== undefined);
    return { id, keys, bytes: [...bands.values()].reduce((s, o) => s + o.size, 0) };
  });
}

/**
 * Rebuilds the items of a planned partition from its flat key list: consecutive keys of the same id.
 *
 * @example itemsFromKeys(['1_g.fits', '1_r.fits', '2_g.fits'], p) // [{ id: '1', keys: [...2] }, { id: '2', ... }]
 */
export function itemsFromKeys(
  keys: readonly string[],
  pattern: BandPattern,
): { id: string; keys: string[] }[] {
  const out: { id: string; keys: string[] }[] = [];
  for (const key of keys) {
    const m = pattern.match(key);
    const id = m?.id ?? key;
    const last = out[out.length - 1];
    if (last && last.id === id) last.keys.push(key);
    else out.push({ id, keys: [key] });
  }
  return out;
}
