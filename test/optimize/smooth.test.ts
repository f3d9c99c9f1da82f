// SmoothQuant in `cai optimize --int8`: per-channel scales calibrated on the items move a LayerNorm
// output's outlier channels (as trained transformers have) into the MatMul weights. The smoothed fp32
// graph computes the same function; the int8 model made from it is closer to fp32 than the one made
// without; the optimization record says so.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { GraphBuilder } from '../../src/model/builder/graph-builder.js';
import { gelu, linear } from '../../src/model/builder/layers.js';
import { Rng } from '../../src/model/builder/random.js';
import { encodeModel } from '../../src/model/quantize/onnx-graph.js';
import { smoothModel } from '../../src/model/quantize/smooth.js';
import { loadModel } from '../../src/model/session.js';
import { collectChannelMax, heavyOrFail, prepareModel, type Feeds } from '../../src/optimize/int8.js';
import { optimizeModel } from '../../src/optimize/optimize.js';
import type { Tensor } from '../../src/tensor/tensor.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-smooth-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** LayerNorm whose scale has three outlier channels (x30), then an MLP: fc1 -> GELU -> fc2. */
function outlierMlp(): Uint8Array {
  const b = new GraphBuilder({ name: 'outliers', seed: 8 });
  const x = b.input('x', 'float32', ['N', 8, 64]);
  const gamma = new Float32Array(64).fill(1);
  for (const c of [3, 17, 40]) gamma[c] = 30;
  const ln = b.node(
    'LayerNormalization',
    [x, b.initializer('ln_scale', gamma, [64]), b.randomNormal('ln_bias', [64], 0.02)],
    { axis: -1 },
    { name: 'ln' },
  );
  const h = gelu(b, linear(b, ln, 64, 128, { name: 'fc1' }));
  linear(b, h, 128, 64, { name: 'fc2', output: 'y' });
  b.output('y', 'float32', ['N', 8, 64]);
  return b.toModelBytes();
}

function batch(seed: number, n = 16): Feeds {
  const data = new Float32Array(n * 8 * 64);
  new Rng(seed).fillNormal(data, 1);
  return { x: { dtype: 'float32', shape: [n, 8, 64], data } };
}

async function run(bytes: Uint8Array, feeds: Feeds): Promise<Float32Array> {
  const s = await loadModel(bytes, { threads: 1, thread: 'main' });
  try {
    return Float32Array.from(Object.values(await s.run(feeds))[0].data as Float32Array);
  } finally {
    await s.release();
  }
}

test('the smoothed fp32 graph computes the same outputs; 1/s is folded into the LayerNorm, a Mul inserted elsewhere', async () => {
  const model = await prepareModel(outlierMlp(), 'outliers');
  const matmuls = new Set(
    heavyOrFail(model, 'outliers')
      .filter((h) => h.kind === 'dynamic')
      .map((h) => h.name),
  );
  assert.equal(matmuls.size, 2);
  const calibration = [batch(1), batch(2)];
  const channels = await collectChannelMax(model, matmuls, calibration, 1);
  const smoothed = smoothModel(model, matmuls, channels, 0.8);
  const nodes = smoothed.graph?.node ?? [];
  const ln = nodes.find((n) => n.opType === 'LayerNormalization');
  assert.match(ln?.input?.[1] ?? '', /_smooth_/, 'the LayerNorm reads a smoothed scale');
  assert.equal(
    nodes.filter((n) => n.opType === 'Mul').length,
    (model.graph?.node ?? []).filter((n) => n.opType === 'Mul').length + 1,
    "one Mul before fc2 (its input is GELU's, not a LayerNorm's)",
  );
  const feeds = batch(3);
  const [a, b] = [await run(encodeModel(model), feeds), await run(encodeModel(smoothed), feeds)];
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  assert.ok(worst < 1e-4 * scale, `max diff ${worst} against outputs up to ${scale}`);
  // The LayerNorm output the first MatMul reads is now flat across channels.
  const after = await collectChannelMax(smoothed, matmuls, calibration, 1);
  const spread = (m: Float32Array | undefined) => {
    const s = [...(m ?? [])].sort((p, q) => p - q);
    return s[s.length - 1] / s[s.length >> 1];
  };
  const lnOut = ln?.output?.[0] ?? '';
  assert.ok(
    spread(after.get(lnOut)) < spread(channels.get(lnOut)) / 4,
    `${spread(after.get(lnOut))} vs ${spread(channels.get(lnOut))}`,
  );
});

test('cai optimize --int8 smooths by default: closer to fp32 than without, and the record says so', async () => {
  const folder = path.join(dir, 'data');
  await mkdir(folder, { recursive: true });
  const items = 64;
  const x = new Float32Array(items * 8 * 64);
  new Rng(21).fillNormal(x, 1);
  await writeFile(
    path.join(folder, '1.safetensors'),
    encodeSafetensors({ x: { dtype: 'float32', shape: [items, 8, 64], data: x } as Tensor }),
  );
  const file = path.join(dir, 'outliers.onnx');
  await writeFile(file, outlierMlp());
  const optimize = (name: string, smoothAlpha?: number) =>
    optimizeModel({
      model: file,
      output: path.join(dir, `${name}.onnx`),
      int8: true,
      job: parseJobSpec({ input: folder, model: file, output: dir, inputs: { x: 'x' } }),
      calibrationItems: 32,
      heldOutItems: 32,
      threads: 1,
      tolerance: 1,
      smoothAlpha,
    });
  const smooth = await optimize('smooth');
  const plain = await optimize('plain', 0);
  assert.deepEqual(smooth.optimization.int8?.smoothing, { method: 'SmoothQuant', alpha: 0.8 });
  assert.equal(plain.optimization.int8?.smoothing, undefined);
  const err = (r: typeof smooth) => r.comparison?.outputs[0].relative_error ?? NaN;
  assert.ok(err(smooth) < err(plain) / 2, `smoothed ${err(smooth)} vs plain ${err(plain)}`);
  await assert.rejects(optimize('bad', 1.5), /--smooth-alpha/);
});
