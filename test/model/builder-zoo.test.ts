import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { CaiError } from '../../src/errors.js';
import {
  ZOO_MODELS,
  buildResNet50,
  buildResNet50Graph,
  buildTrivial,
  buildViTB16,
  buildViTB16Graph,
  buildZooModel,
  describeZooModel,
} from '../../src/model/zoo/index.js';

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const out = await session.run(feeds);
    return out[session.outputNames[0]];
  } finally {
    await session.release();
  }
}

test('trivial: the mean of each item, for any rank and for integer inputs', async () => {
  const values = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const out = await run(buildTrivial(), { input: new ort.Tensor('float32', values, [2, 3, 4]) });
  assert.deepEqual(out.dims, [2, 1]);
  assert.deepEqual(Array.from(out.data as Float32Array), [5.5, 17.5]);

  const flat = await run(buildTrivial(), {
    input: new ort.Tensor('float32', Float32Array.of(1, -2, 3), [3]),
  });
  assert.deepEqual(Array.from(flat.data as Float32Array), [1, -2, 3]);

  const bytes = buildTrivial({ inputName: 'pixels', dtype: 'uint8', shape: ['N', 2, 2], outputName: 'avg' });
  const u8 = await run(bytes, {
    pixels: new ort.Tensor('uint8', Uint8Array.of(0, 255, 255, 0, 1, 2, 3, 4), [2, 2, 2]),
  });
  assert.deepEqual(Array.from(u8.data as Float32Array), [127.5, 2.5]);
});

test('ResNet-50: the exact architecture, by its parameter count', () => {
  // torchvision's resnet50 has 25,557,032 parameters; folding its 53 BatchNorms (26,560 channels, a
  // weight and a bias each) into conv biases leaves 25,557,032 - 26,560 = 25,530,472.
  assert.equal(buildResNet50Graph().parameterCount(), 25_530_472);
});

test('ViT-B/16: the exact architecture, by its parameter count', () => {
  // torchvision's vit_b_16 has 86,567,656 parameters.
  assert.equal(buildViTB16Graph().parameterCount(), 86_567_656);
});

test('ResNet and ViT (narrow test configs) run with input "input" and output "logits"', async () => {
  const resnet = buildResNet50({ imageSize: 64, baseWidth: 8, layers: [1, 1, 1, 1], numClasses: 10 });
  const vit = buildViTB16({ imageSize: 32, patch: 8, dim: 32, depth: 1, heads: 2, numClasses: 10 });
  for (const [bytes, size] of [
    [resnet, 64],
    [vit, 32],
  ] as const) {
    const n = 3;
    const x = Float32Array.from({ length: n * 3 * size * size }, (_, i) => Math.sin(i));
    const logits = await run(bytes, { input: new ort.Tensor('float32', x, [n, 3, size, size]) });
    assert.deepEqual(logits.dims, [n, 10]);
    assert.ok((logits.data as Float32Array).every(Number.isFinite));
  }
  assert.deepEqual(
    resnet,
    buildResNet50({ imageSize: 64, baseWidth: 8, layers: [1, 1, 1, 1], numClasses: 10 }),
  );
  assert.throws(
    () => buildResNet50({ layers: [] }),
    (e: unknown) => e instanceof CaiError && e.object === 'layers',
  );
  assert.throws(
    () => buildViTB16({ patch: 15 }),
    (e: unknown) => e instanceof CaiError && e.object === 'patch',
  );
});

test('zoo registry: models by name, descriptions that match the built models', async () => {
  assert.deepEqual(Object.keys(ZOO_MODELS), ['astromae', 'resnet50', 'vit-b16', 'trivial']);
  assert.throws(
    () => buildZooModel('resnet18'),
    (e: unknown) => e instanceof CaiError && /astromae, resnet50/.test(e.message),
  );
  for (const name of ['astromae', 'trivial']) {
    const session = await ort.InferenceSession.create(buildZooModel(name), { intraOpNumThreads: 1 });
    const d = describeZooModel(name);
    assert.deepEqual(
      d.inputs.map((i) => i.name),
      session.inputNames,
    );
    assert.deepEqual(
      d.outputs.map((o) => o.name),
      session.outputNames,
    );
    await session.release();
  }
  assert.deepEqual(describeZooModel('resnet50').inputs[0].shape, ['N', 3, 224, 224]);
  assert.deepEqual(describeZooModel('vit-b16').outputs[0].shape, ['N', 1000]);
});
