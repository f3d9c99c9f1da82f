// CAI's answers must match the user's PyTorch pipeline to float precision. The full-size zoo AstroMAE,
// run by onnxruntime in float32 at the levels CAI offers, is compared with the same graph evaluated by
// PyTorch in float64, and must be about as close to it as PyTorch's own float32 is
// (test/fixtures/numerics, made by scripts/fixtures/make_numerics_fixtures.py). Two input sets: the
// parity galaxies (predictions 0.1..0.6) and magnitudes far from the model's range, whose predictions sit
// deep in the output sigmoid's tail (~1e-5), where onnxruntime's Sigmoid op loses its relative precision.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeTensorFile } from '../../src/formats/registry.js';
import { loadModel } from '../../src/model/session.js';
import { buildZooModel } from '../../src/model/zoo/registry.js';
import { cast, type Tensor } from '../../src/tensor/tensor.js';

const NUMERICS = fileURLToPath(new URL('../../../test/fixtures/numerics/', import.meta.url));
const PARITY = fileURLToPath(new URL('../../../test/fixtures/parity/', import.meta.url));
const REGENERATE = 'rerun /usr/bin/python3 scripts/fixtures/make_numerics_fixtures.py';

interface Meta {
  readonly modelSha256: string;
  readonly partitions: readonly string[];
  readonly sets: Record<string, { readonly items: number; readonly torch32MaxAbsError: number }>;
}

const tensor = (dir: string, file: string): Tensor =>
  decodeTensorFile(readFileSync(`${dir}${file}`), file).columns[0];

/** The parity galaxies' images and float32 magnitudes, concatenated over the fixture's partitions. */
function galaxies(meta: Meta): { image: Tensor; magnitude: Tensor } {
  const parts = meta.partitions.map((id) => decodeTensorFile(readFileSync(`${PARITY}${id}.pt`), `${id}.pt`));
  const concat = (column: number, dtype: 'float32'): Tensor => {
    const cols = parts.map((p) => cast(p.columns[column], dtype));
    const data = new Float32Array(cols.reduce((n, c) => n + c.data.length, 0));
    let at = 0;
    for (const c of cols) {
      data.set(c.data as Float32Array, at);
      at += c.data.length;
    }
    const items = cols.reduce((n, c) => n + c.shape[0], 0);
    return { dtype, shape: [items, ...cols[0].shape.slice(1)], data };
  };
  return { image: concat(0, 'float32'), magnitude: concat(1, 'float32') };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('zoo AstroMAE in onnxruntime float32 is as close to float64 as PyTorch float32, in the sigmoid tail too', async () => {
  const meta = JSON.parse(readFileSync(`${NUMERICS}astromae.json`, 'utf8')) as Meta;
  const model = buildZooModel('astromae');
  const sha = createHash('sha256').update(model).digest('hex');
  assert.equal(
    sha,
    meta.modelSha256,
    `the zoo AstroMAE changed since the float64 references were made: ${REGENERATE}`,
  );
  const { image, magnitude } = galaxies(meta);
  const sets = { galaxies: magnitude, tail: tensor(NUMERICS, 'tail.magnitude.npy') };
  for (const level of ['disabled', 'all'] as const) {
    const session = await loadModel(model, { threads: 1, graphOptimization: level });
    for (const [name, mags] of Object.entries(sets)) {
      const ref64 = tensor(NUMERICS, `${name}.ref64.npy`).data as Float64Array;
      const torch32 = tensor(NUMERICS, `${name}.torch32.npy`).data as Float32Array;
      const got = (await session.run({ image, magnitude: mags })).redshift.data as Float32Array;
      const ours = maxAbsDiff(got, ref64);
      const torchs = maxAbsDiff(torch32, ref64);
      assert.equal(torchs, meta.sets[name].torch32MaxAbsError);
      assert.ok(
        ours <= 3 * torchs,
        `${name}, level ${level}: onnxruntime is ${ours.toExponential(2)} from float64, ` +
          `${(ours / torchs).toFixed(1)}x PyTorch float32's ${torchs.toExponential(2)}`,
      );
    }
    await session.release();
  }
});
