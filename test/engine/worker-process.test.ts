import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkerProcess } from '../../src/engines/local/worker-process.js';
import { ErrorCodes } from '../../src/errors.js';
import { resolveJob } from '../../src/job/spec.js';
import { planPartitions } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';
import { freshJob, smallDemo } from '../helpers/demo-fixture.js';

/** Blocks this thread for `ms` without an event loop turn, so a child's death is not yet observed. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

test('a worker that died before its exit was seen fails the attempt as a crash, never an unhandled EPIPE', async () => {
  const spec = await freshJob(await smallDemo());
  const partitions = await planPartitions(new FileStore(spec.input));
  const job = resolveJob(spec, { partitions: partitions.length, cores: 2 });
  const worker = new WorkerProcess(job);
  await worker.ready;
  // The worker dies and this process does not yet know: its IPC channel still looks open, and the
  // task's write meets a closed pipe. Ctrl-C landing while a slot replaced its worker did this, and
  // the CLI died on an unhandled 'error' event (EPIPE) instead of exiting 130.
  process.kill(worker.pid, 'SIGKILL');
  blockFor(300);
  const result = await worker.attempt({ partition: partitions[0]!, attempt: 1 }, 60_000);
  assert.equal(result.ok, false);
  assert.ok(!result.ok && result.error.code === ErrorCodes.workerCrash, JSON.stringify(result));
  assert.match(!result.ok ? result.error.message : '', /was killed by SIGKILL/);
  assert.ok(worker.dead);
});
