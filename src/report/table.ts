/**
 * A table both the terminal and the HTML report print: column titles and rows of cells already formatted.
 * @example const t: Table = { columns: ['Partition', 'Cost ($)'], rows: [['25 MB', '0.16']] };
 */
export interface Table {
  readonly title?: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Columns (by index) to align left; the rest are numbers and align right. */
  readonly leftAlign?: readonly number[];
}

/**
 * Renders a table as fixed-width text for a terminal, numbers right-aligned.
 * @example console.log(textTable({ columns: ['a', 'b'], rows: [['1', '2']] }));
 */
export function textTable(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const left = new Set(t.leftAlign ?? [0]);
  const fmt = (cells: readonly string[]) =>
    cells
      .map((c, i) => (left.has(i) ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const lines = [fmt(t.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(fmt)];
  return (t.title ? `${t.title}\n` : '') + lines.join('\n');
}

/**
 * Escapes text for HTML element content and attribute values.
 * @example escapeHtml('<a & b>') // '&lt;a &amp; b&gt;'
 */
export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * Renders a table as an HTML `<table>`, cells escaped.
 * @example htmlTable({ columns: ['a'], rows: [['<1>']] }) // '<table>...&lt;1&gt;...</table>'
 */
export function htmlTable(t: Table): string {
  const left = new Set(t.leftAlign ?? [0]);
  const cell = (tag: 'td' | 'th', c: string, i: number) =>
    `<${tag}${left.has(i) ? '' : ' class="num"'}>${escapeHtml(c)}</${tag}>`;
  const head = `<thead><tr>${t.columns.map((c, i) => cell('th', c, i)).join('')}</tr></thead>`;
  const body = `<tbody>${t.rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n')}</tbody>`;
  const caption = t.title ? `<caption>${escapeHtml(t.title)}</caption>` : '';
  return `<table>${caption}${head}${body}</table>`;
}

/**
 * Formats dollars with enough digits to show sub-cent amounts.
 * @example usd(0.000103) // '0.000103'
 */
export function usd(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1) return v.toFixed(2);
  if (Math.abs(v) >= 0.01) return v.toFixed(4);
  return v.toPrecision(3);
}

/**
 * Formats a count or measurement compactly: up to `digits` significant digits, thousands separated.
 * @example num(33863.5) // '33,864'
 */
export function num(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return '';
  if (Math.abs(v) >= 10 ** digits) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}
