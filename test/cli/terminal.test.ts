// The terminal after `cai run`, drawn in a real terminal (tmux, 60 columns): Ctrl-C and SIGTERM during
// the live bar leave the cursor shown and line wrap on (the bar turns both off), and the stop message is
// whole; a reader that closes the pipe early (`cai run --help | head -2`) ends the command quietly.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { wrapText } from '../../src/cli/progress.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { tensor } from '../../src/tensor/tensor.js';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

let dir = '';
let data = '';
let model = '';
let socket = '';

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-terminal-'));
  socket = path.join(dir, 'tmux.sock');
  // Many tiny partitions and the trivial model: a run of some seconds, made in one.
  data = path.join(dir, 'data');
  await mkdir(data);
  for (let p = 1; p <= 3000; p++)
    await writeFile(
      path.join(data, `${p}.safetensors`),
      encodeSafetensors({ x: tensor('float32', [8, 4], new Float32Array(32).fill(p)) }),
    );
  model = path.join(dir, 'trivial.onnx');
  await writeFile(model, buildTrivial({ inputName: 'x', shape: ['N', 4] }));
});

after(async () => {
  spawnSync('tmux', ['-S', socket, 'kill-server']);
  await rm(dir, { recursive: true, force: true });
});

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function waitFor(what: string, check: () => boolean, seconds = 60): Promise<void> {
  const until = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}:\n${tmux('capture-pane', '-p', '-J', '-t', 'cai')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs `cai run` in a 60-column tmux pane, stops it with `stop` once the bar moves, returns what the pane shows. */
async function stoppedRun(name: string, stop: (pid: number) => void) {
  const output = path.join(dir, `out-${name}`);
  const jobFile = path.join(dir, `${name}.json`);
  await writeFile(
    jobFile,
    JSON.stringify({ input: data, model, output, batchSize: 8, concurrency: 2, threads: 1 }),
  );
  const script = path.join(dir, `${name}.sh`);
  // The job in the background of the pane's shell, its pid printed, so the test can signal it too. CI is
  // unset as at a person's terminal: CI=true (as CI runs the tests) turns the live bar into plain lines.
  await writeFile(
    script,
    `unset CI\nORT_DISABLE_TELEMETRY=1 '${process.execPath}' '${CLI}' run '${jobFile}' &\necho "PID=$!"\nwait $!\necho "EXIT=$?"\nsleep 600\n`,
  );
  tmux('new-session', '-d', '-s', 'cai', '-x', '60', '-y', '30', `sh '${script}'`);
  try {
    const pane = () => tmux('capture-pane', '-p', '-J', '-t', 'cai');
    await waitFor('the live bar', () => /items\/s/.test(pane()));
    // The bar has hidden the cursor and turned wrap off meanwhile.
    assert.equal(tmux('display', '-p', '-t', 'cai', '#{cursor_flag} #{wrap_flag}').trim(), '0 0');
    stop(Number(/PID=(\d+)/.exec(pane())?.[1]));
    await waitFor('the exit', () => /EXIT=\d+/.test(pane()));
    return {
      flags: tmux('display', '-p', '-t', 'cai', '#{cursor_flag} #{wrap_flag}').trim(),
      text: pane(),
      lines: tmux('capture-pane', '-p', '-t', 'cai').split('\n'),
    };
  } finally {
    tmux('kill-session', '-t', 'cai');
  }
}

test(
  'Ctrl-C during the live bar: cursor shown, line wrap on, the stop message whole',
  { skip: !hasTmux && 'no tmux' },
  async () => {
    const r = await stoppedRun('sigint', (pid) => process.kill(pid, 'SIGINT'));
    assert.match(r.text, /EXIT=130/, r.text);
    assert.equal(r.flags, '1 1', `cursor and wrap flags after the exit:\n${r.text}`);
    assert.match(r.text, /SIGINT: stopping the workers/);
    // The whole message, wrapped by the terminal (joined again by capture-pane -J), not cut at column 60.
    assert.match(
      r.text,
      /the job was stopped; partitions already complete in .* are kept: run the same command again to resume/,
    );
    assert.ok(
      r.lines.every((l) => l.length <= 60),
      r.lines.join('\n'),
    );
  },
);

test('SIGTERM during the live bar gives the terminal back too', { skip: !hasTmux && 'no tmux' }, async () => {
  const r = await stoppedRun('sigterm', (pid) => process.kill(pid, 'SIGTERM'));
  assert.match(r.text, /EXIT=143/, r.text);
  assert.equal(r.flags, '1 1', `cursor and wrap flags after the exit:\n${r.text}`);
  assert.match(r.text, /run the same command again to resume/);
});

test('messages written while the bar is live are wrapped to the width, not cut', () => {
  const text = 'partition 17: FAILED after 3 attempt(s): the worker process exited with code 134 (SIGABRT)';
  const wrapped = wrapText(text, 30).split('\n');
  assert.ok(
    wrapped.every((l) => l.length <= 30),
    wrapped.join('\n'),
  );
  assert.equal(wrapped.join(' '), text);
  assert.equal(wrapText('x'.repeat(25), 10), 'xxxxxxxxxx\nxxxxxxxxxx\nxxxxx');
});

test('a reader that closes the pipe early: `cai run --help | head -2` ends quietly, exit 0', async () => {
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'run', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Like a reader that is gone before the help is written: every write then fails with EPIPE.
    child.stdout.destroy();
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  // And through a shell, as users type it, with a reader that reads nothing, and with head.
  for (const reader of ['true', 'head -2']) {
    const sh = spawnSync('sh', ['-c', `'${process.execPath}' '${CLI}' run --help | ${reader}`], {
      encoding: 'utf8',
    });
    assert.equal(sh.stderr, '', reader);
    if (reader !== 'true') assert.match(sh.stdout, /^Usage: cai run/);
  }
});
