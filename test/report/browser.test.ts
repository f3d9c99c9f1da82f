import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { runOutput, sweepOutput } from './outputs.js';

// Debian's chromium package; never a browser download. CI installs it (apt-get install chromium).
const CHROMIUM = process.env.CAI_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const skip = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CAI_CHROMIUM)`;

/** Screenshots land here so a person can look at them after the run. */
export const SCREENSHOT_DIR = path.join(os.tmpdir(), 'cai-report-screenshots');

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
  const figures = await page.$$eval('figure', (els) =>
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
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
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
        ['fig-pred_vs_true', run.records.reduce((s, rec) => s + rec.items, 0)],
        ['fig-dz_histogram', 40],
        ['fig-partition_time', run.records.length * 4],
        ['fig-partition_throughput', run.records.length],
      ],
    );
  } finally {
    await browser.close();
  }
});
