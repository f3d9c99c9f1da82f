import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { registerCostCommand } from '../../src/cli/commands/cost.js';
import { registerEstimateCommand } from '../../src/cli/commands/estimate.js';
import { registerReportCommand } from '../../src/cli/commands/report.js';
import { CaiError } from '../../src/errors.js';
import { runOutput, sweepOutput } from './outputs.js';

/** Runs `cai <args>` with the three commands registered, returning what they printed. */
async function cai(...args: string[]): Promise<string> {
  let printed = '';
  const out = (t: string) => {
    printed += t;
  };
  const program = new Command('cai').exitOverride();
  registerCostCommand(program, out);
  registerEstimateCommand(program, out);
  registerReportCommand(program, out);
  await program.parseAsync(['node', 'cai', ...args]);
  return printed;
}

test("cai cost prints the seeds' table and the honest one side by side", async () => {
  const text = await cai('cost', '--seeds');
  const rows = text.split('\n').filter((l) => /^\d+MB /.test(l));
  assert.equal(rows.length, 4);
  // Published and recomputed cents, in columns 5 and 6.
  assert.deepEqual(
    rows.map((l) => l.trim().split(/\s+/).slice(4, 6)),
    [
      ['0.16', '0.16'],
      ['0.20', '0.20'],
      ['0.30', '0.30'],
      ['0.38', '0.38'],
    ],
  );
  assert.match(text, /us-east-1/);
  const json = JSON.parse(await cai('cost', '--seeds', '--json', '--arch', 'arm64')) as {
    seeds: { seedsUSD: number; honest: { totalUSD: number } }[];
  };
  assert.deepEqual(
    json.seeds.map((s) => s.seedsUSD),
    [0.16, 0.2, 0.3, 0.38],
  );
  const x86 = JSON.parse(await cai('cost', '--seeds', '--json')) as typeof json;
  assert.ok(json.seeds[0].honest.totalUSD < x86.seeds[0].honest.totalUSD, 'arm64 is cheaper');
});

test('cai cost bills a finished run and a sweep', async () => {
  const { dir, records } = await runOutput();
  const text = await cai('cost', dir, '--memory', '2048');
  assert.match(text, new RegExp(`Honest bill of .* \\(${records.length} partitions\\)`));
  assert.match(text, /note: .*billed as if on Lambda at 2048 MB/);
  assert.doesNotMatch(text, /Seeds' formula \(requests/, 'no seeds table unless asked');
  const json = JSON.parse(await cai('cost', dir, '--json')) as {
    run: { bill: { totalUSD: number; invocations: number } };
  };
  assert.equal(json.run.bill.invocations, records.length);
  assert.ok(json.run.bill.totalUSD > 0);
  const { dir: sweepDir, rows } = await sweepOutput();
  const sweep = JSON.parse(await cai('cost', sweepDir, '--json')) as { run: { runs: unknown[] } };
  assert.equal(sweep.run.runs.length, rows.length);
  await assert.rejects(
    cai('cost', '--arch', 'sparc'),
    (e: unknown) => e instanceof CaiError && /x86_64 or arm64/.test(e.message),
  );
});

test('cai estimate calibrates from a real local run and names the cheapest and fastest pair', async () => {
  const { dir } = await runOutput();
  const json = JSON.parse(await cai('estimate', '--calibration', dir, '--data', '1GB,1TB', '--json')) as {
    calibration: { secondsPerItem: number; threads: number };
    projections: { dataGB: number; totalS: number; costUSD: number; feasible: boolean }[];
    choices: { dataGB: number; cheapest: { costUSD: number }; fastest: { totalS: number } }[];
  };
  assert.ok(json.calibration.secondsPerItem > 0 && json.calibration.threads === 1);
  assert.equal(json.projections.length, 2 * 6 * 6);
  assert.deepEqual(
    json.choices.map((c) => c.dataGB),
    [1, 1024],
  );
  for (const c of json.choices) {
    const here = json.projections.filter((p) => p.dataGB === c.dataGB && p.feasible);
    assert.equal(c.cheapest.costUSD, Math.min(...here.map((p) => p.costUSD)));
  }
  const text = await cai(
    'estimate',
    '--items-per-second',
    '109',
    '--threads',
    '2',
    '--bytes-per-item',
    '20512',
    '--data',
    '12.6GB',
  );
  assert.match(text, /Cheapest and fastest/);
  assert.match(text, /^\s+12\.6\s+25\s+10240\s+517\s/m);
  await assert.rejects(
    cai('estimate'),
    (e: unknown) => e instanceof CaiError && /--calibration/.test(e.object),
  );
});

test('cai report of a run opens with how good and how fast, as the page does', async () => {
  const { dir } = await runOutput();
  const summary = JSON.parse(await readFile(path.join(dir, 'summary.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const text = await cai('report', dir);
  const lines = text.split('\n');
  assert.equal(lines[0], 'How good (every labelled item)');
  const header = lines[1].trim().split(/\s{2,}/);
  const values = lines[3].trim().split(/\s{2,}/);
  const nmad = values[header.indexOf('NMAD')];
  const metrics = summary.metrics as { nmad: number; n: number };
  assert.equal(Number(nmad), Number(metrics.nmad.toFixed(5)));
  assert.equal(values[0], metrics.n.toLocaleString('en-US'));
  assert.ok(text.indexOf('How fast (this run)') > text.indexOf('How good'));
  assert.ok(text.indexOf('wrote ') > text.indexOf('How fast'), 'the figures list comes after');
});

test('cai report writes report.html and lists the figures', async () => {
  const { dir } = await sweepOutput();
  const text = await cai('report', dir);
  assert.match(text, /wrote .*report\.html/);
  assert.equal(text.split('\n').filter((l) => / points, /.test(l)).length, 5);
});
