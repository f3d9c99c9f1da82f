// Resume reads a record only when its predictions were written after it: a finished job resumes from
// two listings, and a predictions file replaced since is still caught and redone.
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pendingPartitions } from '../../src/plan/resume.js';
import { DelegatingStore } from '../../src/storage/delegating-store.js';
import { FileStore } from '../../src/storage/file-store.js';
import type { GetOptions } from '../../src/storage/store.js';
import { outputKeys } from '../../src/worker/run-partition.js';
import { syntheticOutputs, syntheticPlan } from '../helpers/synthetic-records.js';

class CountingStore extends DelegatingStore {
  reads: string[] = [];
  override get(key: string, options?: GetOptions): Promise<Uint8Array> {
    this.reads.push(key);
    return super.get(key, options);
  }
}

let dir = '';
const plan = syntheticPlan(6);
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-resume-'));
  const out = new FileStore(dir);
  for (const p of plan) {
    const [[recordKey, record], [predictionsKey, predictions]] = syntheticOutputs(p);
    const stamped = { ...JSON.parse(record), predictions_bytes: Buffer.byteLength(predictions) };
    await out.put(predictionsKey, predictions);
    await out.put(recordKey, JSON.stringify(stamped));
    // Written in the worker's order, a second apart, whatever the file system's clock resolution.
    await utimes(path.join(dir, predictionsKey), at(0), at(0));
    await utimes(path.join(dir, recordKey), at(1), at(1));
  }
});
after(() => rm(dir, { recursive: true, force: true }));

test('a finished job resumes without reading a record, then a replaced predictions file is read and redone', async () => {
  const out = new CountingStore(new FileStore(dir));
  assert.deepEqual(await pendingPartitions(out, plan, 'jsonl'), []);
  assert.deepEqual(out.reads, [], 'predictions older than their records: nothing to read');

  // Partition 2's predictions cut short after its record, partition 3's rewritten whole, 5's record gone.
  const k = (id: string) => outputKeys(id, 'jsonl');
  const p2 = path.join(dir, k('2').predictions);
  await new FileStore(dir).put(k('2').predictions, '{"partition":"2"}\n');
  await utimes(p2, at(5), at(5));
  const [, [, again]] = syntheticOutputs(plan[2]);
  await new FileStore(dir).put(k('3').predictions, again);
  await utimes(path.join(dir, k('3').predictions), at(5), at(5));
  await new FileStore(dir).delete(k('5').record);

  const reread = new CountingStore(new FileStore(dir));
  const todo = await pendingPartitions(reread, plan, 'jsonl');
  assert.deepEqual(
    todo.map((p) => p.id),
    ['2', '5'],
  );
  assert.deepEqual(reread.reads.sort(), [k('2').record, k('3').record], 'only the two suspects are read');
});
