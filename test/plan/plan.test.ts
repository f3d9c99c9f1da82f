import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CaiError } from '../../src/errors.js';
import { partitionId, planPartitions } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';

async function folder(files: Record<string, number>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-plan-'));
  for (const [name, size] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), Buffer.alloc(size));
  }
  return dir;
}

test('partitions come in natural order with their sizes, other files skipped', async () => {
  const dir = await folder({ '10.pt': 3, '2.pt': 5, '1.pt': 1, 'notes.txt': 2, '.hidden.pt': 1 });
  const plan = await planPartitions(new FileStore(dir));
  assert.deepEqual(
    plan.map((p) => [p.id, p.key, p.bytes]),
    [
      ['1', '1.pt', 1],
      ['2', '2.pt', 5],
      ['10', '10.pt', 3],
    ],
  );
});

test('fileLimit keeps the first K in natural order', async () => {
  const dir = await folder({ '10.pt': 1, '9.pt': 1, '100.pt': 1, '11.pt': 1 });
  const plan = await planPartitions(new FileStore(dir), { fileLimit: 2 });
  assert.deepEqual(
    plan.map((p) => p.key),
    ['9.pt', '10.pt'],
  );
});

test('nested keys get ids without slashes; clashing ids are refused', async () => {
  assert.equal(partitionId('sdss/run1/12.pt'), 'sdss__run1__12');
  const dir = await folder({ '1.pt': 1, '1.npy': 1 });
  await assert.rejects(
    planPartitions(new FileStore(dir)),
    (e: unknown) => e instanceof CaiError && /both be partition "1"/.test(e.message),
  );
});

test('an input with nothing readable says which formats are read', async () => {
  const dir = await folder({ 'a.txt': 1 });
  await assert.rejects(planPartitions(new FileStore(dir)), /\.pt, \.pth, \.npy, \.npz and \.safetensors/);
  await assert.rejects(
    planPartitions(new FileStore(path.join(dir, 'missing'))),
    (e: unknown) => e instanceof CaiError && e.code === 'E_NOT_FOUND',
  );
});
