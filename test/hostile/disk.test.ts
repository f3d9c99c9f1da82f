// A full disk: a size-limited tmpfs (mounted by the test; skipped where it cannot be) holds the output.
// The job must end in one clear error naming the disk (no stack trace, no torn file), and a later run
// of the same job, once space is freed, must resume and complete.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CaiError } from '../../src/errors.js';
import { runJob } from '../../src/run/run.js';
import { allPredictions, smallDemo } from '../helpers/demo-fixture.js';

function tryMount(dir: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `cannot mount a 2 MB tmpfs here (${(err as Error).message.split('\n')[0]}): needs root`;
  }
}

test('a full disk is one clear error, and the job resumes once space is freed', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-disk-'));
  const why = tryMount(dir);
  if (why) {
    await rm(dir, { recursive: true, force: true });
    t.skip(why);
    return;
  }
  try {
    const demo = await smallDemo();
    const output = path.join(dir, 'out');
    const job = { ...demo.job, output, concurrency: 1, threads: 1, maxAttempts: 2 };
    // Leave room for job.json, plan.json and the lock, not for predictions.
    const fs = await statfs(dir);
    const filler = path.join(dir, 'filler');
    await writeFile(filler, new Uint8Array(fs.bavail * fs.bsize - 24 * 1024));
    let message = '';
    try {
      const summary = await runJob(job, { retryBaseMs: 10 });
      assert.equal(summary.status, 'failed');
      message = summary.failures.map((f) => f.error.message).join('\n');
    } catch (err) {
      assert.ok(err instanceof CaiError, `a CaiError, not ${String(err)}`);
      message = err.message;
    }
    assert.match(message, /disk is full.*run the same job again/);
    assert.doesNotMatch(message, /ENOSPC|\n\s+at /);
    const left = await readdir(output, { recursive: true });
    assert.equal(left.filter((n) => n.includes('.cai-tmp-')).length, 0, 'no temporary file left');

    await rm(filler);
    const summary = await runJob(job, { retryBaseMs: 10 });
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.failures));
    assert.equal((await allPredictions(output)).length, demo.items);
  } finally {
    execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  }
});
