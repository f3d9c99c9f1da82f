// A worker reads tensor partitions into a few reused buffers (src/storage/buffer-pool.ts). Reusing memory
// that a batch still views would give wrong predictions silently, so this runs partitions one after the
// other through one worker context, with the next one read ahead as the engine's worker does, and checks
// every prediction against its known value, with inference on the worker's thread and on its own.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { encodePtDataset } from '../../src/formats/writers/pt-writer.js';
import { parseJobSpec, resolveJob } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { planPartitions } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';
import { createWorkerContext } from '../../src/worker/context.js';
import { openPartition, runPartition } from '../../src/worker/run-partition.js';
import { allPredictions } from '../helpers/demo-fixture.js';

const PIXELS = 32 * 32;
// Item i of partition p is filled with p * 1000 + i, so its mean (the trivial model's output) is that.
const SIZES = [400, 400, 420, 300, 400];

for (const placement of ['main', 'separate'] as const) {
  test(`partitions read into reused buffers predict exactly, with inference on the ${placement} thread`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-reuse-'));
    const data = path.join(dir, 'data');
    await mkdir(data);
    for (const [k, items] of SIZES.entries()) {
      const p = k + 1;
      const values = new Float32Array(items * PIXELS);
      for (let i = 0; i < items; i++) values.fill(p * 1000 + i, i * PIXELS, (i + 1) * PIXELS);
      const tensor = { dtype: 'float32' as const, shape: [items, 1, 32, 32], data: values };
      await writeFile(path.join(data, `${p}.pt`), encodePtDataset([tensor], String(p)));
    }
    const model = path.join(dir, 'mean.onnx');
    await writeFile(model, buildTrivial({ inputName: 'x', shape: ['N', 1, 32, 32] }));
    const spec = parseJobSpec({
      input: data,
      model,
      output: path.join(dir, 'out'),
      batchSize: 128,
      concurrency: 1,
      threads: 1,
      predictionsFormat: 'jsonl',
    });
    const plan = await planPartitions(new FileStore(data), { job: spec });
    assert.equal(plan.length, SIZES.length);

    const before = process.env.CAI_INFERENCE_THREAD;
    process.env.CAI_INFERENCE_THREAD = placement;
    const ctx = await createWorkerContext(resolveJob(spec, { partitions: plan.length }));
    if (before === undefined) delete process.env.CAI_INFERENCE_THREAD;
    else process.env.CAI_INFERENCE_THREAD = before;
    const buffers: ArrayBufferLike[] = [];
    const acquire = ctx.buffers.acquire.bind(ctx.buffers);
    ctx.buffers.acquire = (size) => {
      const view = acquire(size);
      buffers.push(view.buffer);
      return view;
    };
    try {
      let next = openPartition(ctx, plan[0]);
      for (let k = 0; k < plan.length; k++) {
        const current = next;
        // Read the next partition while this one runs, as the local engine's worker does.
        if (k + 1 < plan.length) next = openPartition(ctx, plan[k + 1]);
        // Both open partitions hold their memory until they are done: nothing is free to hand out but
        // what finished partitions gave back (none is left over while two are open).
        await Promise.all([current, next]);
        assert.equal(ctx.buffers.held.buffers, k + 1 < plan.length ? 0 : 1, `before partition ${k + 1}`);
        await runPartition(ctx, { partition: plan[k], attempt: 1 }, current);
      }
    } finally {
      await ctx.model.release();
    }
    // Five partitions of 1.2-1.7 MB went through two buffers: the memory really was reused.
    assert.equal(buffers.length, SIZES.length);
    assert.equal(new Set(buffers).size, 2);

    const rows = await allPredictions(path.join(dir, 'out'), 'jsonl');
    assert.equal(
      rows.length,
      SIZES.reduce((a, b) => a + b, 0),
    );
    for (const row of rows) {
      const expected = Number(row.partition) * 1000 + Number(row.index);
      assert.equal(row.mean, expected, `partition ${row.partition} item ${row.index}`);
    }
  });
}
