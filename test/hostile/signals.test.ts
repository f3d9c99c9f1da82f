// Signals and concurrency with the real CLI: Ctrl-C (SIGINT) and SIGTERM stop the workers, leave no
// temporary file, say how to resume and exit 130 / 143; a second run into an output a live run holds is
// refused (E_LOCKED); a lock left by a dead process is taken over; the job then resumes to completion.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeDemo } from '../../src/demo/demo.js';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { acquireLock, LOCK_KEY } from '../../src/run/lock.js';
import { runJob } from '../../src/run/run.js';
import { FileStore } from '../../src/storage/file-store.js';
import { allPredictions } from '../helpers/demo-fixture.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => e.name);
}

/** Runs the CLI on a job file; `onStarted` is called once it wrote a record; resolves the exit. */
function runCli(
  jobFile: string,
  output: string,
  onStarted?: (pid: number) => Promise<void>,
  recordsBefore = 0,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'run', jobFile, '-q'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    let poll: NodeJS.Timeout | undefined;
    if (onStarted) {
      poll = setInterval(() => {
        void readdir(path.join(output, 'results'))
          .catch(() => [])
          .then(async (names) => {
            if (names.length <= recordsBefore || poll === undefined) return;
            clearInterval(poll);
            poll = undefined;
            await onStarted(child.pid ?? -1);
          });
      }, 50);
    }
    child.on('exit', (code) => {
      if (poll) clearInterval(poll);
      resolve({ code, stderr });
    });
  });
}

test('SIGINT and SIGTERM stop cleanly (130, 143), a live run locks its output, and the job resumes', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-signals-'));
  try {
    const demo = await makeDemo({ dir, partitions: 16, itemsPerPartition: 100 });
    const output = path.join(dir, 'out-signals');
    const job = { ...demo.job, output, concurrency: 2, threads: 1 };
    const jobFile = path.join(dir, 'job.json');
    await writeFile(jobFile, JSON.stringify(job));

    let lockedError: unknown;
    const first = await runCli(jobFile, output, async (pid) => {
      // While it runs, a second run of the same job into the same output is refused.
      lockedError = await runJob(job).catch((e: unknown) => e);
      process.kill(pid, 'SIGINT');
    });
    assert.ok(lockedError instanceof CaiError, String(lockedError));
    assert.equal(lockedError.code, ErrorCodes.locked);
    assert.match(lockedError.message, /another run \(pid \d+ on /);
    assert.equal(first.code, 130, first.stderr);
    assert.match(first.stderr, /run the same command again to resume/);
    let files = await allFiles(output);
    assert.deepEqual(
      files.filter((n) => n.startsWith('.cai-tmp-') || n === LOCK_KEY),
      [],
      'no temporary file and no lock left',
    );
    const doneAfterFirst = (await readdir(path.join(output, 'results'))).length;
    assert.ok(doneAfterFirst < 16, `stopped early (${doneAfterFirst} of 16 done)`);

    const second = await runCli(
      jobFile,
      output,
      async (pid) => {
        process.kill(pid, 'SIGTERM');
      },
      doneAfterFirst,
    );
    assert.equal(second.code, 143, second.stderr);
    files = await allFiles(output);
    assert.equal(files.filter((n) => n.startsWith('.cai-tmp-')).length, 0);

    const third = await runCli(jobFile, output);
    assert.equal(third.code, 0, third.stderr);
    const rows = await allPredictions(output);
    assert.equal(rows.length, demo.items, 'every item predicted exactly once');
    assert.equal(new Set(rows.map((r) => `${r.partition}:${r.index}`)).size, demo.items);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the output lock: refused while held, taken over from a dead process, hint for another host', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-lock-'));
  try {
    const store = new FileStore(dir);
    const lock = await acquireLock(store);
    const refused = await acquireLock(store).catch((e: unknown) => e);
    assert.ok(refused instanceof CaiError && refused.code === ErrorCodes.locked, String(refused));
    await lock.release();
    assert.equal(await store.head(LOCK_KEY), undefined);

    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(dead.stdout.toString());
    const stale = { host: os.hostname(), pid: deadPid, started_at: '2026-01-01T00:00:00Z', token: 'x' };
    await store.put(LOCK_KEY, JSON.stringify(stale));
    const taken = await acquireLock(store);
    assert.equal(taken.holder.pid, process.pid);
    await taken.release();

    await store.put(LOCK_KEY, JSON.stringify({ ...stale, host: 'elsewhere.example' }));
    const remote = await acquireLock(store).catch((e: unknown) => e);
    assert.ok(remote instanceof CaiError && remote.code === ErrorCodes.locked, String(remote));
    assert.match(remote.message, /elsewhere\.example.*delete/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
