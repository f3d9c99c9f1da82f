// The live progress bar under a real pseudo-terminal (util-linux `script`), and the plain lines a pipe gets.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeDemo, type Demo } from '../../src/demo/demo.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const SCRIPT = spawnSync('script', ['--version']).status === 0;

let dir = '';
let demo: Demo;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-progress-'));
  demo = await makeDemo({ dir: path.join(dir, 'demo'), partitions: 2, itemsPerPartition: 160 });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

const runArgs = (output: string) => [
  'run',
  '--input',
  demo.data,
  '--model',
  demo.model,
  '--output',
  output,
  '--inputs',
  'image=0,magnitude=1',
  '--concurrency',
  '1',
  '--threads',
  '1',
  '--batch-size',
  '8',
];

test(
  'on a terminal a bar moves with batches: items of the total, items/s, elapsed, ETA',
  { skip: !SCRIPT && 'no util-linux script' },
  () => {
    // A wide terminal, so that no frame is cut at its edge.
    const run = [process.execPath, CLI, ...runArgs(path.join(dir, 'out-tty'))].map(quote).join(' ');
    const command = `stty cols 200; ${run}`;
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.CI;
    const r = spawnSync('script', ['-qefc', command, '/dev/null'], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // Frames are redrawn in place: split on the cursor moves, drop the colour and cursor codes.
    // eslint-disable-next-line no-control-regex
    const frames = r.stdout.split(/\r|\x1b\[1G/).map((f) => f.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''));
    const seen = frames
      .map((f) =>
        /(\d+)\/(~?\d+|\?) items \| (\d+) items\/s \| (\S+) ETA (\S+) \| (\d+)\/2 partitions/.exec(f),
      )
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ items: Number(m[1]), total: m[2], partitionsDone: Number(m[6]) }));
    assert.ok(seen.length > 0, r.stdout);
    // Before the first partition ended, the bar already counted items of it: progress by batch.
    assert.ok(
      seen.some((s) => s.partitionsDone === 0 && s.items > 0 && s.items < 160),
      JSON.stringify(seen),
    );
    const last = seen.at(-1);
    assert.deepEqual(last, { items: 320, total: '320', partitionsDone: 2 });
    // Items only go forward.
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].items >= seen[i - 1].items);
    assert.match(r.stdout, /status: +succeeded/);
  },
);

test('through a pipe: plain lines, one per partition, and no bar', () => {
  const r = spawnSync(process.execPath, [CLI, ...runArgs(path.join(dir, 'out-pipe'))], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^planned 2 partitions; running 2$/m);
  assert.match(r.stderr, /^partition 1: 160 items in [\d.]+ s$/m);
  assert.match(r.stderr, /^partition 2: 160 items in [\d.]+ s$/m);
  assert.ok(!r.stderr.includes('\u001b[') && !/[░█]/.test(r.stderr), r.stderr);
});

test('Ctrl-C mid-run: exit 130, no worker "failed" or "retrying" lines for the workers it stopped, and the rerun resumes', async () => {
  const out = path.join(dir, 'out-int');
  const child = spawn(process.execPath, [CLI, ...runArgs(out), '--batch-size', '4'], {
    env: { ...process.env, CI: 'true' },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    // Stopped while a worker is inside a partition (its first progress line, or a second after planning).
    if (!stderr.includes('planned') && d.includes('planned')) setTimeout(() => child.kill('SIGINT'), 1500);
    stderr += d;
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /^SIGINT: stopping the workers\.\.\.$/m);
  assert.match(stderr, /^error: SIGINT: the job was stopped; .* run the same command again to resume$/m);
  assert.doesNotMatch(stderr, /FAILED|retrying|E_WORKER_CRASH/, stderr);
  const again = spawnSync(process.execPath, [CLI, ...runArgs(out), '--batch-size', '4'], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
  assert.equal(again.status, 0, again.stderr);
});

test('cai demo says how far it got while making the data, then runs with the same progress', () => {
  const r = spawnSync(
    process.execPath,
    [CLI, 'demo', '--dir', path.join(dir, 'cli-demo'), '--partitions', '2', '--items', '12', '-c', '1'],
    { encoding: 'utf8', env: { ...process.env, CI: 'true' } },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /made partition 1 of 2\n {2}made partition 2 of 2\n/);
  assert.match(r.stderr, /^partition 2: 12 items in/m);
  assert.match(r.stdout, /status: +succeeded/);
});
