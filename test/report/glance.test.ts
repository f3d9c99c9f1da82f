import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { naturalCompare } from '../../src/storage/natural-sort.js';
import { classifierRun, cutoutRun, imageFolderRun, regressionRun, type GlanceRun } from './glance-runs.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumSkip } from './chromium.js';

const skip = chromiumSkip;

/** Screenshots land in `CAI_REPORT_SCREENSHOTS` when set (kept for a person), else in a temporary folder. */
const KEEP = process.env.CAI_REPORT_SCREENSHOTS;
let SHOTS = KEEP ?? '';
let browser: Browser | undefined;

before(async () => {
  if (KEEP) await mkdir(KEEP, { recursive: true });
  else SHOTS = await mkdtemp(path.join(os.tmpdir(), 'cai-glance-shots-'));
  if (!skip) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  if (!KEEP && SHOTS) await rm(SHOTS, { recursive: true, force: true });
});

/** What the page shows, read in Chromium. */
interface Page {
  problems: string[];
  figures: { id: string; expected: number; drawn: number; width: number }[];
  groups: Map<string, string[]>;
  images: { src: string; width: number }[];
  bars: string[];
  sections: string[];
  overflow: number;
}

async function open(run: GlanceRun, shot: string): Promise<Page> {
  const page = await (browser as Browser).newPage({ viewport: { width: 1100, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => problems.push(`console ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) problems.push(`request: ${r.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
  await page.goto(pathToFileURL(run.report.html).href, { waitUntil: 'load' });
  const figures = await page.$$eval('figure[data-marks]', (els) =>
    els.map((f) => ({
      id: f.id,
      expected: Number(f.getAttribute('data-marks')),
      drawn: f.querySelectorAll(`g.mark-${f.getAttribute('data-mark-type')}.role-mark > path`).length,
      width: f.querySelector('svg')!.getBoundingClientRect().width,
    })),
  );
  const groups = new Map(
    await page.$$eval('.gallery-group', (els) =>
      els.map(
        (g) =>
          [
            `${g.getAttribute('data-output')}:${g.getAttribute('data-group')}`,
            [...g.querySelectorAll('figure.thumb')].map(
              (t) => `${t.getAttribute('data-partition')}#${t.getAttribute('data-index')}`,
            ),
          ] as [string, string[]],
      ),
    ),
  );
  const images = await page.$$eval('img', (els) =>
    els.map((i) => ({
      src: i.getAttribute('src') ?? '',
      width: (i as unknown as { naturalWidth: number }).naturalWidth,
    })),
  );
  const bars = await page.$$eval('#fig-timeline g.layer_0_marks > path', (els) =>
    els.map((p) => p.getAttribute('aria-label') ?? ''),
  );
  const sections = await page.$$eval('h2', (els) => els.map((h) => h.textContent ?? ''));
  // No table or figure wider than the page: nothing scrolls sideways.
  const overflow = await page.evaluate(
    () =>
      (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document
        .documentElement.scrollWidth,
  );
  await page.screenshot({ path: shot, fullPage: true });
  await page.close();
  return { problems, figures, groups, images, bars, sections, overflow };
}

/** The checks every run's page passes: no errors, every mark drawn, images loaded, the timeline as recorded. */
function common(run: GlanceRun, p: Page): void {
  assert.deepEqual(p.problems, []);
  assert.deepEqual(p.sections, [
    'Predictions',
    'Gallery',
    'Where the time went',
    'What was run',
    'Results',
    'Cost',
    'Summary',
  ]);
  assert.ok(p.overflow <= 1100, `the page is ${p.overflow}px wide`);
  for (const f of p.figures)
    assert.ok(f.expected > 0 && f.drawn === f.expected, `${f.id}: ${f.drawn} of ${f.expected}`);
  for (const i of p.images) assert.ok(i.width > 0 && i.src.startsWith('gallery/'), `${i.src} did not load`);
  // One bar per record, from its start to its end, in seconds from the run's start.
  const t0 = Math.min(
    Date.parse(run.summary.run.started_at),
    ...run.records.map((r) => Date.parse(r.started_at)),
  );
  const bars = p.bars.map((label) => {
    const field = (name: string) =>
      /: (.*)$/.exec(label.split('; ').find((x) => x.startsWith(`${name}: `)) ?? '')?.[1];
    return {
      partition: field('partition id'),
      start: Number(field('start (s)')),
      end: Number(field('end (s)')),
    };
  });
  assert.equal(bars.length, run.records.length);
  for (const r of run.records) {
    const bar = bars.find((b) => b.partition === r.partition);
    assert.ok(bar, `no bar for ${r.partition}`);
    assert.ok(Math.abs(bar.start - (Date.parse(r.started_at) - t0) / 1000) < 0.002, `${r.partition} start`);
    assert.ok(Math.abs(bar.end - (Date.parse(r.finished_at) - t0) / 1000) < 0.002, `${r.partition} end`);
    // The record's stage intervals lie inside the partition and cover each stage's measured time.
    const covered = (k: 'load' | 'inference' | 'write') =>
      (r.spans?.[k] ?? []).reduce((t, [a, b]) => t + b - a, 0);
    assert.ok(covered('inference') >= r.timings.inference - 0.002, `${r.partition} inference spans`);
    assert.ok(covered('write') >= r.timings.write - 0.002, `${r.partition} write spans`);
    for (const list of Object.values(r.spans ?? {}))
      for (const [a, b] of list)
        assert.ok(a >= 0 && b >= a && b <= r.timings.total + 0.002, `${r.partition} span ${a}-${b}`);
  }
}

interface Scored {
  key: string;
  order: number;
  cls: number;
  p: number;
  label?: number;
  value: number;
}

/** Each row's place, predicted class and confidence (softmax unless already probabilities), computed here. */
function scored(run: GlanceRun, output: string, probabilities: boolean): Scored[] {
  const rows = [...run.rows].sort(
    (a, b) => naturalCompare(String(a.partition), String(b.partition)) || Number(a.index) - Number(b.index),
  );
  return rows.map((r, order) => {
    const v = r[output] as number[] | number;
    const scores = Array.isArray(v) ? v.map(Number) : [Number(v)];
    const top = scores.indexOf(Math.max(...scores));
    const sum = scores.reduce((s, x) => s + Math.exp(x - scores[top]), 0);
    return {
      key: `${String(r.partition)}#${String(r.index)}`,
      order,
      cls: top,
      p: probabilities ? scores[top] : 1 / sum,
      label: r.label === undefined || r.label === null ? undefined : Number(r.label),
      value: scores[0],
    };
  });
}

/** The `k` items with the highest score, first seen first on ties. */
const topK = (items: Scored[], score: (s: Scored) => number, k: number) =>
  [...items]
    .sort((a, b) => score(b) - score(a) || a.order - b.order)
    .slice(0, k)
    .map((s) => s.key);

function expectClassGallery(p: Page, items: Scored[], output: string): void {
  const classes = [...new Set(items.map((s) => s.cls))].sort((a, b) => a - b);
  for (const c of classes) {
    const mine = items.filter((s) => s.cls === c);
    assert.deepEqual(
      p.groups.get(`${output}:most-${c}`),
      topK(mine, (s) => s.p, 3),
      `class ${c} most confident`,
    );
    assert.deepEqual(
      p.groups.get(`${output}:least-${c}`),
      topK(mine, (s) => -s.p, 3),
      `class ${c} least confident`,
    );
  }
  assert.equal([...p.groups.keys()].filter((k) => /:most-/.test(k)).length, classes.length);
}

function expectRegressionGallery(p: Page, items: Scored[], output: string): void {
  assert.deepEqual(
    p.groups.get(`${output}:highest`),
    topK(items, (s) => s.value, 6),
  );
  assert.deepEqual(
    p.groups.get(`${output}:lowest`),
    topK(items, (s) => -s.value, 6),
  );
}

test(
  'a classifier with labels: class counts, confidence, precision/recall, the right gallery and timeline',
  { skip },
  async () => {
    const run = await classifierRun();
    try {
      const p = await open(run, path.join(SHOTS, 'classifier-labels.png'));
      common(run, p);
      const ids = p.figures.map((f) => f.id);
      for (const id of [
        'fig-logits_class_counts',
        'fig-logits_confidence',
        'fig-precision_recall',
        'fig-timeline',
        'fig-partition_time',
      ])
        assert.ok(ids.includes(id), `${id} in ${ids.join(', ')}`);
      const items = scored(run, 'logits', false);
      expectClassGallery(p, items, 'logits');
      // The commonest mistakes, each with its most confident items.
      const pairs = new Map<string, Scored[]>();
      for (const s of items)
        if (s.label !== s.cls)
          pairs.set(`${s.label}-${s.cls}`, [...(pairs.get(`${s.label}-${s.cls}`) ?? []), s]);
      const commonest = [...pairs.entries()]
        .sort(([ka, a], [kb, b]) => {
          const [ta, pa] = ka.split('-').map(Number);
          const [tb, pb] = kb.split('-').map(Number);
          return b.length - a.length || ta - tb || pa - pb;
        })
        .slice(0, 5);
      const shown = [...p.groups.keys()].filter((k) => k.startsWith('logits:mistake-'));
      assert.deepEqual(
        shown,
        commonest.map(([k]) => `logits:mistake-${k}`),
      );
      for (const [k, list] of commonest)
        assert.deepEqual(
          p.groups.get(`logits:mistake-${k}`),
          topK(list, (s) => s.p, 3),
        );
      assert.equal(
        new Set(p.images.map((i) => i.src)).size,
        (await readdir(path.join(run.dir, 'gallery'))).length,
      );
    } finally {
      await run.remove();
    }
  },
);

test(
  'a regression without labels: the histogram and the extremes as Lupton RGB cutouts',
  { skip },
  async () => {
    const run = await regressionRun();
    try {
      const p = await open(run, path.join(SHOTS, 'regression-no-labels.png'));
      common(run, p);
      const hist = p.figures.find((f) => f.id === 'fig-redshift_histogram');
      assert.ok(hist && hist.drawn > 5, 'a histogram of the predictions');
      assert.ok(!p.figures.some((f) => f.id === 'fig-pred_vs_true'), 'no pred-vs-true without labels');
      expectRegressionGallery(p, scored(run, 'redshift', false), 'redshift');
      assert.ok(!p.groups.has('redshift:worst'), 'no errors without labels');
    } finally {
      await run.remove();
    }
  },
);

test(
  'an image folder: probabilities read as classes, the gallery from the image files',
  { skip },
  async () => {
    const run = await imageFolderRun();
    try {
      const p = await open(run, path.join(SHOTS, 'image-folder.png'));
      common(run, p);
      const items = scored(run, 'probs', true);
      expectClassGallery(p, items, 'probs');
      assert.ok(p.images.length > 0);
    } finally {
      await run.remove();
    }
  },
);

test('five-band HDF5 cutouts with a redshift label: extremes and the largest |dz|', { skip }, async () => {
  const run = await cutoutRun();
  try {
    const p = await open(run, path.join(SHOTS, 'cutouts-hdf5.png'));
    common(run, p);
    const items = scored(run, 'redshift', false);
    expectRegressionGallery(p, items, 'redshift');
    const dz = (s: Scored) => Math.abs((s.value - (s.label as number)) / (1 + (s.label as number)));
    assert.deepEqual(p.groups.get('redshift:worst'), topK(items, dz, 6));
    for (const id of ['fig-pred_vs_true', 'fig-dz_histogram', 'fig-redshift_histogram'])
      assert.ok(
        p.figures.some((f) => f.id === id),
        id,
      );
  } finally {
    await run.remove();
  }
});
