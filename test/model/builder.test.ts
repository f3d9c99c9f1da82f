import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { CaiError } from '../../src/errors.js';
import { GraphBuilder, Rng, floatAttr, linear } from '../../src/model/builder/index.js';
import {
  ASTROMAE_DESCRIPTION,
  ASTROMAE_TINY,
  buildAstroMAE,
  buildAstroMAEGraph,
  describeAstroMAE,
} from '../../src/model/zoo/index.js';

const FIXTURE = new URL('../../../test/fixtures/parity/model.onnx', import.meta.url);

/** Centred elliptical galaxies in 5 bands, peak about 1, with sky noise; magnitudes 14..22. */
function galaxies(n: number, seed: number): { image: ort.Tensor; magnitude: ort.Tensor } {
  const rng = new Rng(seed);
  const image = new Float32Array(n * 5 * 32 * 32);
  const magnitude = new Float32Array(n * 5);
  for (let i = 0; i < n; i++) {
    const cx = 14 + 4 * rng.uniform();
    const cy = 14 + 4 * rng.uniform();
    const radius = 1.5 + 4 * rng.uniform();
    const ratio = 0.4 + 0.6 * rng.uniform();
    for (let c = 0; c < 5; c++) {
      magnitude[i * 5 + c] = 14 + 8 * rng.uniform();
      const peak = 0.3 + 0.7 * rng.uniform();
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const r2 = ((x - cx) ** 2 + ((y - cy) / ratio) ** 2) / radius ** 2;
          image[((i * 5 + c) * 32 + y) * 32 + x] = peak * Math.exp(-0.5 * r2) + 0.02 + 0.015 * rng.normal();
        }
      }
    }
  }
  return {
    image: new ort.Tensor('float32', image, [n, 5, 32, 32]),
    magnitude: new ort.Tensor('float32', magnitude, [n, 5]),
  };
}

function std(values: ArrayLike<number>): number {
  const n = values.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i] / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (values[i] - mean) ** 2 / n;
  return Math.sqrt(v);
}

test('Rng: same seed, same sequence; normals have mean 0 and std 1', () => {
  const a = new Rng(3).fillNormal(new Float32Array(20001), 1);
  const b = new Rng(3).fillNormal(new Float32Array(20001), 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, new Rng(4).fillNormal(new Float32Array(20001), 1));
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(std(a) - 1) < 0.03, `std ${std(a)}`);
  const u = new Rng(5).fillUniform(new Float32Array(1000), 2, 3);
  assert.ok(u.every((v) => v >= 2 && v < 3));
});

test('GraphBuilder: wiring mistakes fail at build time with CaiError', () => {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', ['N', 4]);
  assert.throws(
    () => b.node('Add', [x, 'nope']),
    (e: unknown) => e instanceof CaiError && e.object === 'nope',
  );
  assert.throws(() => b.node('LayerNormalization', [x], { epsilon: 1e-5 }), /floatAttr/);
  assert.throws(() => b.input('x', 'float32', [1]), /already defined/);
  assert.throws(() => b.initializer('w', new Float32Array(3), [2, 2]), /dims \[2,2\]/);
  assert.throws(() => b.output('missing', 'float32'), CaiError);
  assert.throws(() => new GraphBuilder().toModelBytes(), /no outputs/);
});

test('GraphBuilder: a hand-built graph runs in onnxruntime with the declared names and attributes', async () => {
  const b = new GraphBuilder({ seed: 9 });
  const x = b.input('x', 'float32', ['N', 3]);
  const h = b.withScope('layer', () => linear(b, x, 3, 4, { name: 'fc', bias: 0 }));
  const y = b.node('Softmax', [h], { axis: -1 }, { output: 'probs' });
  b.output(y, 'float32', ['N', 4]);
  const session = await ort.InferenceSession.create(b.toModelBytes());
  assert.deepEqual(session.inputNames, ['x']);
  assert.deepEqual(session.outputNames, ['probs']);
  const out = await session.run({
    x: new ort.Tensor('float32', new Float32Array([1, 2, 3, -1, 0, 1]), [2, 3]),
  });
  const p = out.probs.data as Float32Array;
  assert.deepEqual(out.probs.dims, [2, 4]);
  assert.ok(Math.abs(p[0] + p[1] + p[2] + p[3] - 1) < 1e-6);
  assert.ok(Math.abs(p[4] + p[5] + p[6] + p[7] - 1) < 1e-6);
  assert.equal(floatAttr(0.5).float, 0.5);
});

test('AstroMAE: same seed gives identical bytes, another seed different bytes', () => {
  const a = buildAstroMAE(ASTROMAE_TINY);
  assert.deepEqual(a, buildAstroMAE(ASTROMAE_TINY));
  assert.notDeepEqual(a, buildAstroMAE({ ...ASTROMAE_TINY, seed: ASTROMAE_TINY.seed + 1 }));
});

test('AstroMAE: the tiny config is byte-identical to the committed parity fixture', () => {
  const fixture = new Uint8Array(readFileSync(FIXTURE));
  const built = buildAstroMAE(ASTROMAE_TINY);
  assert.equal(built.length, fixture.length);
  assert.ok(Buffer.from(built).equals(fixture), 'rerun scripts/fixtures/make_parity_fixtures.py');
});

test('AstroMAE: options are validated with the option named', () => {
  assert.throws(
    () => buildAstroMAE({ dim: 10, heads: 3 }),
    (e: unknown) => e instanceof CaiError && e.object === 'heads',
  );
  assert.throws(
    () => buildAstroMAE({ patch: 5 }),
    (e: unknown) => e instanceof CaiError && e.object === 'patch',
  );
  assert.throws(
    () => buildAstroMAE({ depth: 0 }),
    (e: unknown) => e instanceof CaiError && e.object === 'depth',
  );
});

test('AstroMAE full size: names, shapes, batch 1 and 7, and clearly spread redshift-like outputs', async () => {
  const graph = buildAstroMAEGraph();
  // About 2.7 M weights in the ViT (6 blocks of 192) and 1.7 M in the Inception branch.
  assert.ok(graph.parameterCount() > 4e6 && graph.parameterCount() < 5e6, `${graph.parameterCount()}`);
  const session = await ort.InferenceSession.create(buildAstroMAE(), { intraOpNumThreads: 2 });
  assert.deepEqual(session.inputNames, ['image', 'magnitude']);
  assert.deepEqual(session.outputNames, ['redshift']);
  const meta = session.inputMetadata.map((m) => (m.isTensor ? [m.name, m.type, m.shape] : [m.name]));
  assert.deepEqual(meta, [
    ['image', 'float32', ['N', 5, 32, 32]],
    ['magnitude', 'float32', ['N', 5]],
  ]);
  assert.deepEqual(
    ASTROMAE_DESCRIPTION.inputs.map((i) => [i.name, i.dtype, i.shape]),
    meta,
  );
  assert.deepEqual(
    describeAstroMAE().outputs.map((o) => o.name),
    session.outputNames,
  );

  const data = galaxies(100, 11);
  const all = await session.run(data);
  const z = all.redshift.data as Float32Array;
  assert.deepEqual(all.redshift.dims, [100, 1]);
  assert.ok(z.every((v) => v > 0 && v < 0.8));
  assert.ok(std(z) > 0.05, `std over 100 items is ${std(z)}`);

  for (const n of [1, 7]) {
    const image = new ort.Tensor('float32', (data.image.data as Float32Array).slice(0, n * 5120), [
      n,
      5,
      32,
      32,
    ]);
    const magnitude = new ort.Tensor('float32', (data.magnitude.data as Float32Array).slice(0, n * 5), [
      n,
      5,
    ]);
    const out = await session.run({ image, magnitude });
    assert.deepEqual(out.redshift.dims, [n, 1]);
    // The same items in a smaller batch give the same predictions.
    for (let i = 0; i < n; i++) assert.ok(Math.abs((out.redshift.data as Float32Array)[i] - z[i]) < 1e-5);
  }
  await session.release();
});

test('AstroMAE: images alone, with magnitudes fixed, still move the prediction', async () => {
  const session = await ort.InferenceSession.create(buildAstroMAE(), { intraOpNumThreads: 2 });
  const data = galaxies(50, 12);
  const magnitude = new ort.Tensor('float32', new Float32Array(50 * 5).fill(18), [50, 5]);
  const z = (await session.run({ image: data.image, magnitude })).redshift.data as Float32Array;
  assert.ok(std(z) > 0.01, `std from images alone is ${std(z)}`);
  await session.release();
});
