// `graphOptimization` reaches onnxruntime: on a small EfficientNet-like block (conv + BatchNorm + SiLU as
// x * Sigmoid(x), then a squeeze-excitation gate), level `disabled` runs the ops as written and `all`
// folds the BatchNorm into the convolution and fuses the activations, which changes float32 rounding
// (the precision and speed of each level on real models: bench/graph-optimization.ts).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { addJobOptions, jobOverrides } from '../../src/cli/run-command.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { GraphBuilder, batchNorm, conv2d, sigmoid } from '../../src/model/builder/index.js';
import { loadModel } from '../../src/model/session.js';
import type { Tensor } from '../../src/tensor/tensor.js';

function efficientBlock(): Uint8Array {
  const b = new GraphBuilder({ name: 'efficient-block', seed: 22 });
  const x = b.input('image', 'float32', ['N', 8, 16, 16]);
  const c = batchNorm(b, conv2d(b, x, 8, 16, 3, { name: 'conv', bias: false }), 16, { name: 'bn' });
  const silu = b.node('Mul', [c, sigmoid(b, c)]);
  const gate = sigmoid(b, conv2d(b, b.node('GlobalAveragePool', [silu]), 16, 16, 1, { name: 'se', pad: 0 }));
  b.node('Mul', [silu, gate], {}, { output: 'out' });
  b.output('out', 'float32', ['N', 16, 16, 16]);
  return b.toModelBytes();
}

test('graphOptimization is a job field with the four onnxruntime levels, default left to onnxruntime (all)', () => {
  const base = { input: 'in', model: 'm.onnx', output: 'out' };
  assert.equal(parseJobSpec(base).graphOptimization, undefined);
  for (const level of ['disabled', 'basic', 'extended', 'all'] as const)
    assert.equal(parseJobSpec({ ...base, graphOptimization: level }).graphOptimization, level);
  assert.throws(() => parseJobSpec({ ...base, graphOptimization: 'none' }), /graphOptimization/);
});

test('the level reaches the session: disabled and all give different float32 bits on a fused block', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-graph-opt-'));
  const file = path.join(dir, 'block.onnx');
  await writeFile(file, efficientBlock());
  const data = new Float32Array(2 * 8 * 16 * 16);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 2;
  const image: Tensor = { dtype: 'float32', shape: [2, 8, 16, 16], data };
  const outputs: Record<string, Float32Array> = {};
  for (const level of ['disabled', 'all'] as const) {
    const s = await loadModel(file, { threads: 1, graphOptimization: level });
    outputs[level] = (await s.run({ image })).out.data as Float32Array;
    await s.release();
  }
  let differ = 0;
  let max = 0;
  for (let i = 0; i < outputs.all.length; i++) {
    if (outputs.all[i] !== outputs.disabled[i]) differ++;
    max = Math.max(max, Math.abs(outputs.all[i] - outputs.disabled[i]));
  }
  assert.ok(differ > 0, 'the two levels gave the same bits: the level did not reach onnxruntime');
  assert.ok(max < 1e-4, `the levels differ by ${max}, more than float32 rounding`);
  await rm(dir, { recursive: true, force: true });
});

test('the flags set the job fields: --graph-optimization and the image decoding flags', () => {
  const cmd = addJobOptions(new Command('run').exitOverride());
  cmd.parse(
    [
      '--graph-optimization',
      'basic',
      '--interpolation',
      'bicubic',
      '--resize-method',
      'fast',
      '--icc-profile',
      'apply',
      '--exif-orientation',
      'apply',
      '--sixteen-bit',
      'scale',
    ],
    { from: 'user' },
  );
  const job = jobOverrides(cmd.opts());
  assert.equal(job.graphOptimization, 'basic');
  assert.deepEqual(job.preprocess, {
    interpolation: 'bicubic',
    resizeMethod: 'fast',
    iccProfile: 'apply',
    exifOrientation: 'apply',
    sixteenBit: 'scale',
  });
  const bad = addJobOptions(new Command('run').exitOverride().configureOutput({ writeErr: () => {} }));
  assert.throws(
    () => bad.parse(['--interpolation', 'cubic'], { from: 'user' }),
    /Allowed choices are bilinear/,
  );
});
