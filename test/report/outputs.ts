import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runJob } from '../../src/run/run.js';
import { writeReport, type ReportResult } from '../../src/report/report.js';
import type { SweepRow } from '../../src/experiments/sweep-rows.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { makeSweep } from '../experiments/records.js';
import { freshJob, smallDemo } from '../helpers/demo-fixture.js';

/** A real finished run of the demo job (4 partitions x 60 items, one worker) and its report. */
export interface RunOutput {
  readonly dir: string;
  readonly records: PartitionRecord[];
  readonly report: ReportResult;
}

let run: Promise<RunOutput> | undefined;

/** Runs the demo job once per test process with the local engine, then writes its report. */
export function runOutput(): Promise<RunOutput> {
  run ??= (async () => {
    const demo = await smallDemo();
    const job = await freshJob(demo, { concurrency: 1 });
    await runJob(job, { retryBaseMs: 10 });
    const records = JSON.parse(
      await readFile(path.join(job.output, 'combined_data.json'), 'utf8'),
    ) as PartitionRecord[];
    return { dir: job.output, records, report: await writeReport(job.output) };
  })();
  return run;
}

/** A synthetic sweep (see `makeSweep`) written as `sweep.json`, and its report. */
export interface SweepOutput {
  readonly dir: string;
  readonly rows: SweepRow[];
  readonly report: ReportResult;
}

let sweep: Promise<SweepOutput> | undefined;

/** Writes the synthetic sweep once per test process and reports on it. */
export function sweepOutput(): Promise<SweepOutput> {
  sweep ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-sweep-'));
    const rows = makeSweep();
    await writeFile(path.join(dir, 'sweep.json'), JSON.stringify(rows));
    return { dir, rows, report: await writeReport(dir) };
  })();
  return sweep;
}

/**
 * The data marks of a vega SVG: `aria-label`s of the points or bars in its `role-mark` group of `kind`.
 * @example markLabels(svg, 'symbol').length
 */
export function markLabels(svg: string, kind: 'symbol' | 'rect'): string[] {
  const labels: string[] = [];
  const group = new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>(.*?)</g>`, 'gs');
  for (const m of svg.matchAll(group))
    for (const p of m[1].matchAll(/<path aria-label="([^"]*)"/g)) labels.push(p[1]);
  return labels;
}

/**
 * The value a mark's aria-label gives for a field title, e.g. `Throughput (items/s): 192.59` -> 192.59.
 * @example labelValue('Items/s: 12.5; partition: 1', 'Items/s') // 12.5
 */
export function labelValue(label: string, title: string): number {
  const m = new RegExp(`${title.replace(/[()/]/g, '\\$&')}: ([-0-9.e]+)`).exec(label);
  if (!m) throw new Error(`no "${title}" in "${label}"`);
  return Number(m[1]);
}
