/** Longest a name on an axis gets before its middle is elided. */
const MAX_LENGTH = 22;

const isSeparator = (ch: string) => !/[\p{L}\p{N}]/u.test(ch);

/**
 * Short, still distinct names for axis labels: the prefix and suffix every name shares are dropped (cut
 * at a separator such as `_`, `-`, `/`, `.`, never inside a word or number), and a name still longer than
 * 22 characters keeps its start and end around an ellipsis, as long as the result stays distinct.
 *
 * @example shortNames(['Galaxy10_DECals_rows_0-499', 'Galaxy10_DECals_rows_500-999']) // { prefix: 'Galaxy10_DECals_rows_', names: ['0-499', '500-999'] }
 */
export function shortNames(names: readonly string[]): { prefix: string; suffix: string; names: string[] } {
  if (names.length < 2) return { prefix: '', suffix: '', names: [...names] };
  let p = names.reduce((acc, n) => {
    let i = 0;
    while (i < acc.length && i < n.length && acc[i] === n[i]) i++;
    return acc.slice(0, i);
  });
  // Back to the last separator, so `part10`, `part11` keep their numbers whole.
  while (p.length && !isSeparator(p[p.length - 1])) p = p.slice(0, -1);
  let s = names.reduce((acc, n) => {
    let i = 0;
    while (i < acc.length && i < n.length && acc[acc.length - 1 - i] === n[n.length - 1 - i]) i++;
    return acc.slice(acc.length - i);
  });
  while (s.length && !isSeparator(s[0])) s = s.slice(1);
  // Never eat into a name from both ends.
  if (names.some((n) => n.length - p.length - s.length < 1)) s = '';
  if (names.some((n) => n.length - p.length < 1)) p = '';
  const trimmed = names.map((n) => n.slice(p.length, n.length - s.length));
  const elided = trimmed.map((n) =>
    n.length > MAX_LENGTH ? `${n.slice(0, 9)}…${n.slice(-(MAX_LENGTH - 10))}` : n,
  );
  const out = new Set(elided).size === names.length ? elided : trimmed;
  return { prefix: p, suffix: s, names: new Set(out).size === names.length ? out : [...names] };
}
