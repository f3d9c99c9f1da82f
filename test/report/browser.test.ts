import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { classificationRun } from './classification.js';
import { runOutput, sweepOutput } from './outputs.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumSkip } from './chromium.js';

const skip = chromiumSkip;

/**
 * Screenshots land in `CAI_REPORT_SCREENSHOTS` when set, for a person to look at after the run; else in
 * a temporary folder the test removes.
 */
const KEEP_SCREENSHOTS = process.env.CAI_REPORT_SCREENSHOTS;
let SCREENSHOT_DIR = KEEP_SCREENSHOTS ?? '';

before(async () => {
  if (KEEP_SCREENSHOTS) await mkdir(KEEP_SCREENSHOTS, { recursive: true });
  else SCREENSHOT_DIR = await mkdtemp(path.join(os.tmpdir(), 'cai-report-screenshots-'));
});

after(async () => {
  if (!KEEP_SCREENSHOTS && SCREENSHOT_DIR) await rm(SCREENSHOT_DIR, { recursive: true, force: true });
});

async function openReport(browser: Browser, html: string, shot: string) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) problems.push(`request: ${r.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
  await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
  // Every figure draws as many marks as its data has points, and has a visible size.
  const figures = await page.$$eval('figure[data-marks]', (els) =>
    els.map((f) => {
      const kind = f.getAttribute('data-mark-type');
      const box = f.querySelector('svg')!.getBoundingClientRect();
      return {
        id: f.id,
        expected: Number(f.getAttribute('data-marks')),
        drawn: f.querySelectorAll(`g.mark-${kind}.role-mark > path`).length,
        width: box.width,
        height: box.height,
      };
    }),
  );
  const tables = await page.$$eval('table', (els) => els.map((t) => t.querySelectorAll('tbody tr').length));
  await page.screenshot({ path: shot, fullPage: true });
  await page.close();
  return { figures, tables, problems };
}

test('report.html renders in headless Chromium with every data point and no errors', { skip }, async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const sweep = await sweepOutput();
    const shot = path.join(SCREENSHOT_DIR, 'sweep.png');
    const s = await openReport(browser, sweep.report.html, shot);
    assert.deepEqual(s.problems, []);
    assert.equal(s.figures.length, 5);
    for (const f of s.figures) {
      assert.ok(f.expected > 0 && f.drawn === f.expected, `${f.id}: ${f.drawn} of ${f.expected}`);
      assert.ok(f.width > 300 && f.height > 200, `${f.id} is ${f.width}x${f.height}`);
    }
    assert.ok(s.tables.length >= 2 && s.tables.every((n) => n > 0));
    assert.ok((await stat(shot)).size > 20_000, 'a screenshot with content');

    const run = await runOutput();
    const r = await openReport(browser, run.report.html, path.join(SCREENSHOT_DIR, 'run.png'));
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.figures.map((f) => [f.id, f.drawn]),
      [
        ['fig-redshift_histogram', r.figures.find((f) => f.id === 'fig-redshift_histogram')?.expected],
        ['fig-pred_vs_true', run.records.reduce((s, rec) => s + rec.items, 0)],
        ['fig-dz_histogram', 40],
        ['fig-timeline', r.figures.find((f) => f.id === 'fig-timeline')?.expected],
        ['fig-partition_time', run.records.length * 5],
        ['fig-partition_throughput', run.records.length],
      ],
    );
  } finally {
    await browser.close();
  }
});

test(
  'the confusion summary renders legibly in headless Chromium: in its box, counts as read back',
  { skip },
  async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const removals: (() => Promise<void>)[] = [];
    try {
      for (const classes of [20, 40]) {
        const run = await classificationRun({
          classes,
          partitions: 2,
          itemsPerPartition: 400,
          format: 'parquet',
          seed: classes,
        });
        removals.push(run.remove);
        const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
        const problems: string[] = [];
        page.on('console', (m) => problems.push(`console ${m.type()}: ${m.text()}`));
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        await page.goto(pathToFileURL(run.report.html).href, { waitUntil: 'load' });
        const section = await page.$eval('#confusion', (el) => {
          const box = el.getBoundingClientRect();
          const tables = [...el.querySelectorAll('table')].map((t) => ({
            caption: t.caption?.textContent ?? '',
            // A table wider than its box scrolls sideways: the whole summary must show at once.
            fits: t.scrollWidth <= t.clientWidth + 1,
            right: t.getBoundingClientRect().right,
            rows: t.tBodies[0].rows.length,
          }));
          // Every cell shows its whole text, and the text stands out from the cell's shading.
          const clipped = [...el.querySelectorAll('td, th')]
            .filter((c) => c.scrollWidth > c.clientWidth + 1)
            .map((c) => c.textContent);
          // No DOM types in this project's TypeScript setup: the page's own window, typed for this use.
          const view = globalThis as unknown as {
            getComputedStyle(e: unknown): { backgroundColor: string; color: string };
          };
          const cells = [...el.querySelectorAll('td[data-true]')].map((c) => {
            const style = view.getComputedStyle(c);
            return {
              key: `${c.getAttribute('data-true')},${c.getAttribute('data-pred')}`,
              text: c.textContent,
              background: style.backgroundColor,
              color: style.color,
            };
          });
          return { width: box.width, right: box.right, tables, clipped, cells };
        });
        await page.screenshot({
          path: path.join(SCREENSHOT_DIR, `confusion-${classes}.png`),
          fullPage: true,
        });
        await page.close();
        assert.deepEqual(problems, []);
        assert.deepEqual(section.clipped, []);
        for (const t of section.tables) {
          assert.ok(t.fits, `${t.caption} is wider than its box`);
          assert.ok(t.right <= 1200, `${t.caption} ends at ${t.right}px`);
          assert.ok(t.rows > 0, t.caption);
        }
        const counts = new Map<string, number>();
        for (const [t, p] of run.pairs) counts.set(`${t},${p}`, (counts.get(`${t},${p}`) ?? 0) + 1);
        if (classes <= 20) {
          assert.equal(section.cells.length, classes * classes);
          for (const c of section.cells) {
            assert.equal(c.text, String(counts.get(c.key) ?? 0), c.key);
            // Dark shading carries white text; light shading dark text.
            // Chromium writes an opaque colour as rgb(), without the alpha.
            const shade = /^rgba?\(31, 119, 180(?:, ([0-9.]+))?\)$/.exec(c.background);
            assert.ok(shade, `${c.key}: background ${c.background}`);
            const alpha = Number(shade[1] ?? 1);
            assert.equal(c.color, alpha > 0.55 ? 'rgb(255, 255, 255)' : 'rgb(34, 34, 34)', c.key);
          }
        } else {
          assert.equal(section.cells.length, 0);
          assert.deepEqual(
            section.tables.map((t) => t.caption.split(' (')[0]),
            ['Most confused classes', 'Worst classes by F1'],
          );
        }
      }
    } finally {
      await browser.close();
      for (const remove of removals) await remove();
    }
  },
);
