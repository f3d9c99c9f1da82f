const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/**
 * Compares keys the way people number files: `2.pt` before `10.pt`, `part-9` before `part-10`.
 * @example ['10.pt', '2.pt'].sort(naturalCompare) // ['2.pt', '10.pt']
 */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}
