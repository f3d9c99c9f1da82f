import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import {
  forkSpareWorkers,
  spareWorkerCount,
  stopSpareWorkers,
  takeWorkerProcess,
} from '../../src/engines/local/spare-workers.js';

test('spare workers are handed out before new ones are forked, and the ones left are stopped', async () => {
  forkSpareWorkers(2);
  assert.equal(spareWorkerCount(), 2);
  forkSpareWorkers(2); // already there: no more
  assert.equal(spareWorkerCount(), 2);
  const taken = takeWorkerProcess();
  assert.equal(spareWorkerCount(), 1);
  assert.ok(taken.connected, 'a taken spare is alive, its IPC channel open');
  stopSpareWorkers();
  assert.equal(spareWorkerCount(), 0);
  // A taken worker is the engine's to stop: stopping the spares leaves it alone.
  assert.equal(taken.exitCode, null);
  const exited = once(taken, 'exit');
  taken.disconnect(); // as the engine closes a worker: it exits on its own
  await exited;
});
