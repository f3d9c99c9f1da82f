import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { billRecords, type BillOptions } from '../experiments/cost.js';
import { PRICES } from '../experiments/prices.js';
import type { PartitionRecord } from '../worker/record.js';
import type { PlannedPartition } from '../formats/planned-partition.js';
import type { JobSpec } from '../job/spec.js';
import { readJson, readJsonIfPresent } from '../storage/json.js';
import { openInput, uriScheme } from '../storage/open.js';
import { OUTPUT_FOLDERS, OUTPUT_KEYS, readJobDocument } from '../storage/output-layout.js';
import { listKeys, type Store } from '../storage/store.js';
import { accuracyFigures, qualityTable, speedTable } from './accuracy.js';
import { confusionSection, mostConfusedTable } from './confusion.js';
import { digestPredictions, type PredictionDigest } from './digest.js';
import { GALLERY_MAX_CLASSES, galleryGroups, writeGallery } from './gallery.js';
import { predictionViews } from './prediction-figures.js';
import { runInfoSection } from './run-info.js';
import { stageFigure, timelineFigure, type TimelineFailure } from './timeline.js';
import { runFigures, sweepFigures, type Figure } from './figures.js';
import { loadOutput, type LoadedOutput } from './load.js';
import { pngFont, renderSvg, svgToPng } from './render.js';
import {
  configKey,
  resultStatsCsv,
  resultStatsRows,
  sweepRowFromRecords,
  type SweepRow,
} from '../experiments/sweep-rows.js';
import { escapeHtml, htmlTable, num, usd, type Table } from './table.js';
import { billTable, resultStatsTable, seedsStyleCost, sweepCostTable } from './tables.js';

/**
 * What `writeReport` wrote.
 * @example const { html, figures } = await writeReport('cai-out');
 */
export interface ReportResult {
  readonly html: string;
  readonly figures: readonly {
    readonly id: string;
    readonly svg: string;
    readonly png: string;
    readonly marks: number;
  }[];
  /** Problems worth telling the user (e.g. no font for PNG text). */
  readonly warnings: readonly string[];
  /**
   * What the page opens with, for the terminal too: how good (the metrics, and the commonest mistakes
   * of a classifier) and how fast. Empty for a sweep.
   */
  readonly headline: readonly Table[];
}

/** Mistakes a terminal shows of a classifier: the page shows the matrix or ten. */
const TERMINAL_MISTAKES = 5;

/** Makes the ids of one inline SVG unique in the page, so clip paths of two charts cannot collide. */
function scopeSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

function flatten(value: unknown, prefix = '', out: [string, string][] = []): [string, string][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(value)) {
    const simple = value.every((v) => v === null || typeof v !== 'object');
    const n = value.length;
    out.push([prefix, simple && n <= 12 ? value.join(', ') : `[${n} ${n === 1 ? 'entry' : 'entries'}]`]);
  } else {
    out.push([prefix, typeof value === 'number' ? num(value, 6) : String(value)]);
  }
  return out;
}

/** Splits one CSV line, honouring double-quoted cells (column names such as `"a, b"`). */
function csvCells(line: string): string[] {
  const cells: string[] = [];
  for (const m of line.matchAll(/(?:^|,)(?:"((?:[^"]|"")*)"|([^,]*))/g))
    cells.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]);
  return cells;
}

/**
 * A table of many columns and few rows turned on its side (one row per column), so that it fits the
 * page instead of scrolling sideways.
 */
function fitTable(t: Table, maxColumns = 10): Table {
  if (t.columns.length <= maxColumns || t.rows.length > 4) return t;
  const heads = t.rows.length === 1 ? ['Field', 'Value'] : ['Field', ...t.rows.map((_, i) => `Row ${i + 1}`)];
  return {
    title: t.title,
    columns: heads,
    rows: t.columns.map((c, i) => [c, ...t.rows.map((r) => r[i] ?? '')]),
    leftAlign: [0],
  };
}

function csvTable(csv: string, title: string): Table {
  const [head, ...rows] = csv.trim().split(/\r?\n/).map(csvCells);
  return { title, columns: head, rows, leftAlign: [] };
}

function costSection(records: readonly PartitionRecord[], options: BillOptions): string {
  const x86 = billRecords(records, { ...options, arch: 'x86_64' });
  const arm = billRecords(records, { ...options, arch: 'arm64' });
  const memory = options.memoryMB ?? 10240;
  const compare: Table = {
    title: 'Side by side',
    columns: ['Model', 'Cost ($)'],
    rows: [
      [
        "Seeds' formula: requests x mean duration x peak memory used x $0.00001667",
        usd(seedsStyleCost(records)),
      ],
      [`Honest bill, ${memory} MB x86_64`, usd(x86.totalUSD)],
      [`Honest bill, ${memory} MB arm64`, usd(arm.totalUSD)],
    ],
  };
  const notes = x86.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('');
  return `${htmlTable(billTable(x86, `Honest bill (x86_64, prices ${PRICES.region}, published ${PRICES.publishedAsOf})`))}
${htmlTable(compare)}<ul class="notes">${notes}</ul>`;
}

const STYLE = `
body{font-family:"DejaVu Sans",Verdana,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem}h4{font-size:.9rem;margin:.8rem 0 .3rem}
nav{font-size:.9rem}nav a{margin-right:1rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.8rem;max-width:100%}
caption{text-align:left;font-weight:bold;padding:.3rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top}td{overflow-wrap:anywhere}th{background:#f4f4f4}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1.5rem 0;max-width:100%}figure svg{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#555;max-width:760px}
.notes{font-size:.85rem;color:#555}
.gallery{display:flex;flex-wrap:wrap;gap:.4rem 1.5rem}.gallery-group{max-width:100%}.gallery-group h4{max-width:330px}.thumbs{display:flex;flex-wrap:wrap;gap:.5rem}
figure.thumb{margin:0;width:104px;font-size:.7rem;color:#333}figure.thumb img{display:block;image-rendering:pixelated;border:1px solid #ccc;background:#000}
figure.thumb figcaption{font-size:.7rem;overflow-wrap:anywhere}
table.confusion{font-size:.75rem}table.confusion th,table.confusion td{padding:.15rem .3rem;min-width:1.5rem}
@media print{body{margin:0;max-width:none}nav{display:none}figure,table,.gallery-group{break-inside:avoid}h2{break-after:avoid}}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
${body}
</body></html>
`;
}

async function figureSection(
  dir: string,
  figures: readonly Figure[],
  written: { id: string; svg: string; png: string; marks: number }[],
): Promise<string> {
  const out = path.join(dir, 'figures');
  await mkdir(out, { recursive: true });
  const safe = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, '_');
  const parts: string[] = [];
  for (const figure of figures) {
    const f = { ...figure, id: safe(figure.id) };
    const svg = await renderSvg(f.spec);
    const svgFile = path.join(out, `${f.id}.svg`);
    const pngFile = path.join(out, `${f.id}.png`);
    await writeFile(svgFile, svg);
    await writeFile(pngFile, svgToPng(svg));
    written.push({ id: f.id, svg: svgFile, png: pngFile, marks: f.marks });
    parts.push(`<figure id="fig-${f.id}" data-marks="${f.marks}" data-mark-type="${f.markType}">
<h3>${escapeHtml(f.title)}</h3>
${scopeSvgIds(svg, f.id)}
<figcaption>${escapeHtml(f.caption)} <span class="file">(figures/${f.id}.png)</span></figcaption></figure>`);
  }
  return parts.join('\n');
}

/** The latest run's figures in `summary.json` (`run`), read defensively: the summary is another module's. */
function summaryRun(summary?: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const run = summary?.run;
  return run !== null && typeof run === 'object' ? (run as Record<string, unknown>) : {};
}

function inferConfig(
  records: readonly PartitionRecord[],
  summary?: Readonly<Record<string, unknown>>,
): SweepRow['config'] {
  const bytes = records.reduce((s, r) => s + r.bytes, 0);
  const run = summaryRun(summary);
  const engine =
    typeof run.engine === 'string' ? run.engine : records.some((r) => r.lambda) ? 'aws' : 'local';
  return {
    dataGB: Number((bytes / 2 ** 30).toFixed(4)),
    partitionMB: Number((bytes / Math.max(1, records.length) / 2 ** 20).toFixed(2)),
    batchSize: records[0]?.batch_size ?? 0,
    partitions: records.length,
    engine,
  };
}

function runTiming(summary?: Readonly<Record<string, unknown>>): {
  wallSeconds?: number;
  mapSeconds?: number;
} {
  const run = summaryRun(summary);
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  return { wallSeconds: n(run.wall_seconds), mapSeconds: n(run.map_seconds) };
}

async function body(
  out: LoadedOutput,
  dest: string,
  options: BillOptions,
  written: ReportResult['figures'][number][],
  headline: Table[],
  warnings: string[],
): Promise<string> {
  const when = new Date().toISOString();
  const head = `<h1>CAI report</h1><p>Output folder <code>${escapeHtml(out.dir)}</code>, generated ${when}.</p>`;
  if (out.kind === 'sweep') {
    const rows = out.rows;
    const figures = await figureSection(dest, sweepFigures(rows), written);
    const items = rows.reduce((s, r) => s + r.items, 0);
    return `${head}<p>A sweep of ${rows.length} runs over ${new Set(rows.map((r) => configKey(r.config))).size} configurations, ${num(items)} items in all.</p>
<h2>Figures</h2>${figures}
<h2>Results</h2>${htmlTable(resultStatsTable(resultStatsRows(rows)))}
<h2>Cost</h2>${htmlTable(sweepCostTable(rows, options))}`;
  }
  const { records, summary } = out;
  const job = (await readJobDocument<JobSpec>(out.store, { read: true }))?.job;
  const plan =
    (await readJsonIfPresent<PlannedPartition[]>(out.store, OUTPUT_KEYS.plan, {
      remedy: 'run the job again',
    })) ?? [];
  // One pass over every prediction: distributions, confusion, sample and the gallery's items.
  const digest = await digestPredictions(out.store, undefined, undefined, job?.carry);
  const confusion = digest.confusion;
  const sample = digest.sample;
  const sampled =
    sample && sample.pred.length < sample.items
      ? `a uniform random sample of ${num(sample.pred.length)} of ${num(sample.items)} items`
      : 'every item';
  const quality = qualityTable(summary);
  const speed = speedTable(summary);
  const mistakes = confusion && mostConfusedTable(confusion, TERMINAL_MISTAKES);
  for (const t of [quality, mistakes?.rows.length ? mistakes : undefined, speed]) if (t) headline.push(t);
  const top = [
    quality && htmlTable(quality),
    confusion && confusionSection(confusion),
    speed && htmlTable(speed),
  ]
    .filter((t): t is string => t !== undefined)
    .join('\n');

  const predictionParts: string[] = [];
  for (const view of predictionViews(digest)) {
    predictionParts.push(`<h3>${view.intro}</h3>`, ...view.tables.map(htmlTable));
    predictionParts.push(await figureSection(dest, view.figures, written));
    if (confusion && confusion.output === view.output.name)
      predictionParts.push('<p class="notes">The confusion matrix is under "How good", above.</p>');
    if (sample && sample.output === view.output.name)
      predictionParts.push(await figureSection(dest, accuracyFigures(sample, sampled), written));
  }
  const failedNote = digest.failedItems
    ? `<p class="notes">${num(digest.failedItems)} items failed (no prediction; their rows hold the error) and are left out.</p>`
    : '';
  const predictions = digest.items
    ? `<p>${num(digest.items)} items in ${num(digest.files)} predictions files, every one read once${digest.labelled ? ', with labels' : ', without labels'}.</p>${failedNote}${predictionParts.join('\n')}`
    : '<p>No predictions files in this folder.</p>';

  let gallery = '<p>No gallery: the run has no items to show.</p>';
  const groups = galleryGroups(digest);
  if (job && groups.length) {
    try {
      const g = await writeGallery(
        dest,
        groups,
        job,
        plan,
        await openInput(job.input, { s3Endpoint: job.s3Endpoint }),
      );
      gallery = g.thumbs
        ? `${manyClasses(digest)}<p class="notes">Pixels as stored, not as the model saw them after preprocessing: ${escapeHtml(g.hows.join('; '))}. Thumbnails are files in <code>gallery/</code>.</p><div class="gallery">${g.html}</div>`
        : '<p>No gallery: the inputs are not images (no column holds an image, a cutout or bands of one per item).</p>';
    } catch (err) {
      warnings.push(`gallery: ${(err as Error).message}`);
      gallery = `<p>No gallery: the items could not be read back from ${escapeHtml(job.input)} (${escapeHtml((err as Error).message)}).</p>`;
    }
  } else if (!job) gallery = '<p>No gallery: no job.json says where the items are.</p>';

  const runStart =
    typeof summaryRun(summary).started_at === 'string'
      ? new Date(summaryRun(summary).started_at as string)
      : undefined;
  const thisRun = runStart ? records.filter((r) => Date.parse(r.started_at) >= runStart.getTime()) : records;
  const timeline = timelineFigure(
    thisRun.length ? thisRun : records,
    runStart,
    await failureTimes(out.store, summary),
  );
  const earlier = records.length - thisRun.length;
  const timeParts = [
    timeline ? await figureSection(dest, [timeline.figure], written) : '',
    timeline ? htmlTable(timeline.lanes) : '',
    earlier > 0 && thisRun.length
      ? `<p class="notes">${earlier} partitions done by earlier runs of this job are not on the timeline.</p>`
      : '',
    await figureSection(dest, [stageFigure(records), ...runFigures(records)], written),
  ].join('\n');

  // A local run has no Lambda bill: `cai cost` estimates one when asked.
  const onLambda = records.some((r) => r.lambda);
  const cost = onLambda
    ? `<h2 id="cost">Cost</h2>${costSection(records, options)}`
    : `<h2 id="cost">Cost</h2><p>A run on this machine: no Lambda bill. <code>cai cost ${escapeHtml(out.dir)}</code> estimates what it would cost on Lambda.</p>`;
  const summaryTable: Table = {
    title: 'summary.json',
    columns: ['Field', 'Value'],
    rows: flatten(summary ?? {}),
    leftAlign: [0, 1],
  };
  const row = sweepRowFromRecords(inferConfig(records, summary), 1, records, runTiming(summary));
  const seedsColumns = resultStatsTable(resultStatsRows([row]).filter((r) => r.run !== 'mean'));
  const stats = out.resultStatsCsv
    ? `${htmlTable(fitTable(csvTable(out.resultStatsCsv, 'result_stats.csv (as written by the run)')))}${htmlTable(fitTable({ ...seedsColumns, title: "In the seeds' columns" }))}`
    : htmlTable(fitTable(seedsColumns));
  const optimization =
    typeof summary?.model_optimization === 'string'
      ? ` Model: ${escapeHtml(summary.model_optimization)}.`
      : '';
  const rewrites = Array.isArray(summary?.model_rewrites)
    ? (summary.model_rewrites as unknown[]).map((line) => ` Model: ${escapeHtml(String(line))}.`).join('')
    : '';
  const mixed = summary?.model_rewrites_mixed;
  const mixedNote =
    mixed && typeof mixed === 'object'
      ? ` <strong>Warning: partitions were computed with different model rewrites (${Object.entries(mixed)
          .map(([how, n]) => `${num(Number(n))} with ${escapeHtml(how)}`)
          .join(
            ', ',
          )}); their predictions differ in the last digits. <code>--overwrite</code> recomputes them alike.</strong>`
      : '';
  const nav = `<nav><a href="#predictions">Predictions</a><a href="#gallery">Gallery</a><a href="#time">Where the time went</a><a href="#run">What was run</a><a href="#results">Results</a><a href="#cost">Cost</a><a href="#summary">Summary</a></nav>`;
  return `${head}<p>One run: ${records.length} partitions, ${num(records.reduce((s, r) => s + r.items, 0))} items.${optimization}${rewrites}${mixedNote}</p>
${nav}
${top}
<h2 id="predictions">Predictions</h2>${predictions}
<h2 id="gallery">Gallery</h2>${gallery}
<h2 id="time">Where the time went</h2>${timeParts}
<h2 id="run">What was run</h2>${await runInfoSection(job, plan, records)}
<h2 id="results">Results</h2>${stats}
${cost}
<h2 id="summary">Summary</h2>${summary ? htmlTable(summaryTable) : '<p>No summary.json in this folder.</p>'}`;
}

/** A note when a classifier has more classes than the gallery shows. */
function manyClasses(d: PredictionDigest): string {
  const c = d.outputs.find(
    (o) => o.kind === 'classifier' && o.predicted.filter((n) => n > 0).length > GALLERY_MAX_CLASSES,
  );
  return c && c.kind === 'classifier'
    ? `<p class="notes">${c.predicted.filter((n) => n > 0).length} classes were predicted; the gallery shows the ${GALLERY_MAX_CLASSES} predicted most often.</p>`
    : '';
}

/** The failed partitions of the summary, with when their last try ended where `failures/` says. */
async function failureTimes(
  store: Store,
  summary?: Readonly<Record<string, unknown>>,
): Promise<TimelineFailure[]> {
  const failures = Array.isArray(summary?.failures)
    ? (summary.failures as { partition: string; attempts: number; error?: { code?: string } }[])
    : [];
  const files = failures.length ? await listKeys(store, OUTPUT_FOLDERS.failures) : new Set<string>();
  return Promise.all(
    failures.map(async (f) => {
      const key = `${OUTPUT_FOLDERS.failures}/${f.partition}.json`;
      const file = files.has(key)
        ? await readJson<{ finished_at?: string }>(store, key).catch(() => undefined)
        : undefined;
      return {
        partition: f.partition,
        attempts: f.attempts,
        code: f.error?.code ?? 'failed',
        finished_at: file?.finished_at,
      };
    }),
  );
}

/** Where to write the report, and how to reach the output. */
export interface ReportOptions extends BillOptions {
  /**
   * The folder to write `report.html`, `figures/` and `gallery/` into: the output folder itself by
   * default; for an output on an object store (`s3://...`), `<last part of its path>-report` in the
   * current folder.
   */
  readonly to?: string;
  /** S3-compatible endpoint for `s3://` outputs and inputs. */
  readonly s3Endpoint?: string;
}

/**
 * The local folder a report of `output` goes to when none is named: the output folder, or for an
 * output on an object store a folder named after it in the current folder.
 * @example defaultReportFolder('s3://bucket/runs/galaxy10') // 'galaxy10-report'
 */
export function defaultReportFolder(output: string): string {
  if (uriScheme(output) === 'file') return output;
  const parts = output
    .replace(/^[a-z0-9+.-]+:\/\//i, '')
    .split('/')
    .filter(Boolean);
  return `${parts.at(-1) ?? 'cai'}-report`;
}

/**
 * Writes `report.html` for a finished run or sweep: every figure inline as SVG (also saved as
 * `figures/<id>.svg` and `.png`), the result and cost tables, and the summary. The output is read where
 * it is (a local folder or `s3://...`); the report goes into the output folder, or `options.to`. The
 * page needs no network: no scripts, no external styles, a CSP that forbids fetching. A sweep folder
 * also gets its `result_stats.csv`.
 * @example const { html } = await writeReport('cai-out'); console.log(`open ${html}`);
 */
export async function writeReport(output: string, options: ReportOptions = {}): Promise<ReportResult> {
  const out = await loadOutput(output, { s3Endpoint: options.s3Endpoint });
  const dest = options.to ?? defaultReportFolder(output);
  await mkdir(dest, { recursive: true });
  // Figures of an earlier report never pass for this one's.
  await rm(path.join(dest, 'figures'), { recursive: true, force: true });
  const figures: ReportResult['figures'][number][] = [];
  const warnings: string[] = [];
  const headline: Table[] = [];
  if (!pngFont())
    warnings.push('no DejaVu font found: PNG text may be missing (apt-get install fonts-dejavu-core)');
  const name = uriScheme(output) === 'file' ? path.basename(path.resolve(output)) : output;
  const html = page(`CAI report: ${name}`, await body(out, dest, options, figures, headline, warnings));
  const file = path.join(dest, 'report.html');
  await writeFile(file, html);
  if (out.kind === 'sweep') await writeFile(path.join(dest, 'result_stats.csv'), resultStatsCsv(out.rows));
  return { html: file, figures, warnings, headline };
}
