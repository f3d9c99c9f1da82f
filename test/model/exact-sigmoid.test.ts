// A model whose outputs come out of torch.sigmoid must give CAI the answers PyTorch gives, also deep in
// the sigmoid's tail, where onnxruntime's Sigmoid op is off by up to 100% (docs/performance.md). The
// models are exported by torch.onnx.export and the references computed by PyTorch in float32 and
// float64 (test/fixtures/sigmoid, scripts/fixtures/make_sigmoid_fixtures.py).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { exactOutputs, mentionsSigmoid, outputSigmoids } from '../../src/model/exact-outputs.js';
import { decodeModel } from '../../src/model/quantize/onnx-graph.js';
import { loadModel, saveOptimizedModel } from '../../src/model/session.js';
import type { SessionOptions } from '../../src/model/model-session.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/sigmoid/', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Refs {
  readonly inputs: { readonly shape: number[]; readonly data: number[] };
  readonly prob: { readonly torch32: number[]; readonly ref64: number[] };
  readonly redshift: { readonly torch32: number[]; readonly ref64: number[] };
}
const refs = JSON.parse(readFileSync(`${FIXTURES}head.json`, 'utf8')) as Refs;
const x: Tensor = {
  dtype: 'float32',
  shape: refs.inputs.shape,
  data: Float32Array.from(refs.inputs.data),
} as Tensor;

let dir: string | undefined;
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The largest relative distance of `a` from `ref`. */
function maxRel(a: ArrayLike<number>, ref: readonly number[]): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(a[i] - ref[i]) / Math.abs(ref[i]));
  return worst;
}

/** How many times PyTorch float32's distance from float64 the model's answers are, worst output. */
async function ratio(model: string, options: Partial<SessionOptions> = {}): Promise<number> {
  const session = await loadModel(model, { threads: 1, thread: 'main', ...options });
  try {
    const out = await session.run({ x });
    return Math.max(
      ...(['prob', 'redshift'] as const).map(
        (name) =>
          maxRel(out[name].data as Float32Array, refs[name].ref64) /
          maxRel(refs[name].torch32, refs[name].ref64),
      ),
    );
  } finally {
    await session.release();
  }
}

test('torch.sigmoid at the outputs gives PyTorch float32 precision, deep in the tail too', async () => {
  // The yardstick is PyTorch's own float32: its logits' rounding shows in the tail as ~2e-6 relative.
  assert.ok(maxRel(refs.prob.torch32, refs.prob.ref64) < 1e-5);
  assert.ok(Math.min(...refs.prob.ref64) < 1e-12, 'the inputs reach deep into the tail');
  // onnxruntime's Sigmoid op, as exported: far off in the tail (0 below x = -18).
  const op = await ratio(`${FIXTURES}head.onnx`, { exactSigmoidOutputs: false });
  assert.ok(op > 1e4, `onnxruntime's Sigmoid op is ${op.toFixed(0)}x PyTorch float32's error`);
  for (const file of ['head.onnx', 'head.opset11.onnx', 'head.external.onnx']) {
    for (const level of ['disabled', 'all'] as const) {
      const r = await ratio(`${FIXTURES}${file}`, { graphOptimization: level });
      assert.ok(r < 3, `${file} at ${level}: ${r.toFixed(2)}x PyTorch float32's distance from float64`);
    }
  }
  // On a worker thread (what CAI's workers use) and from bytes too.
  assert.ok((await ratio(`${FIXTURES}head.onnx`, { thread: 'separate' })) < 3);
  const bytes = new Uint8Array(readFileSync(`${FIXTURES}head.onnx`));
  assert.ok((await ratio(bytes as unknown as string)) < 3);
});

test('the session names the rewrite; a model whose Sigmoid is interior is loaded as it is', async () => {
  const head = await loadModel(`${FIXTURES}head.onnx`, { threads: 1, thread: 'separate' });
  assert.deepEqual(head.rewrites, [
    'sigmoid outputs computed as 1/(1+exp(-x)) (2 nodes: /Sigmoid, /Sigmoid_1)',
  ]);
  await head.release();
  const off = await loadModel(`${FIXTURES}head.onnx`, { threads: 1, exactSigmoidOutputs: false });
  assert.deepEqual(off.rewrites, []);
  await off.release();

  // SiLU: x * sigmoid(x) mixes the sigmoid with x; onnxruntime fuses it, and its absolute error is what counts.
  const silu = new Uint8Array(readFileSync(`${FIXTURES}silu.onnx`));
  assert.equal(outputSigmoids(decodeModel(silu, 'silu.onnx')).length, 0);
  assert.equal(exactOutputs(silu), undefined);
  const a = await loadModel(`${FIXTURES}silu.onnx`, { threads: 1 });
  const b = await loadModel(`${FIXTURES}silu.onnx`, { threads: 1, exactSigmoidOutputs: false });
  assert.deepEqual(a.rewrites, []);
  assert.deepEqual((await a.run({ x })).y.data, (await b.run({ x })).y.data);
  await Promise.all([a.release(), b.release()]);

  // The rewritten graph: each output Sigmoid became Neg, Exp, Add, Reciprocal under its output's name.
  const rewrite = exactOutputs(new Uint8Array(readFileSync(`${FIXTURES}head.onnx`)));
  assert.ok(rewrite?.bytes);
  const ops = (decodeModel(rewrite.bytes, 'rewritten').graph?.node ?? []).map((n) => n.opType);
  assert.equal(ops.filter((o) => o === 'Sigmoid').length, 0);
  assert.equal(ops.filter((o) => o === 'Reciprocal').length, 2);
  // Idempotent: a rewritten model has nothing left to rewrite, and still names what was.
  assert.deepEqual(exactOutputs(rewrite.bytes), {
    kinds: [{ note: 'sigmoid outputs computed as 1/(1+exp(-x))', nodes: ['/Sigmoid', '/Sigmoid_1'] }],
    externalData: false,
  });
});

test('a graph saved optimized keeps the exact sigmoid', async () => {
  dir ??= await mkdtemp(path.join(os.tmpdir(), 'cai-sigmoid-'));
  const saved = path.join(dir, 'head.opt.onnx');
  await saveOptimizedModel(`${FIXTURES}head.onnx`, saved, 'extended');
  const ops = new Set((decodeModel(await readFile(saved), saved).graph?.node ?? []).map((n) => n.opType));
  assert.ok(!ops.has('Sigmoid'), [...ops].join(','));
  assert.ok((await ratio(saved, { exactSigmoidOutputs: false })) < 3);
  // A run of the saved graph names the rewrite it carries.
  const session = await loadModel(saved, { threads: 1 });
  assert.deepEqual(session.rewrites, [
    'sigmoid outputs computed as 1/(1+exp(-x)) (2 nodes: /Sigmoid, /Sigmoid_1)',
  ]);
  await session.release();
});

/** `cai run` of the sigmoid head over the safetensors in `input`, one worker. */
function runHead(input: string, output: string, ...more: string[]) {
  return spawnSync(
    process.execPath,
    [
      CLI,
      'run',
      '--input',
      input,
      '--model',
      `${FIXTURES}head.onnx`,
      '--output',
      output,
      '--inputs',
      'x=x',
      '-c',
      '1',
      ...more,
    ],
    { encoding: 'utf8', env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } },
  );
}

test('cai run names the rewrite in its summary and cai report in its page', async () => {
  dir ??= await mkdtemp(path.join(os.tmpdir(), 'cai-sigmoid-'));
  const input = path.join(dir, 'data');
  await mkdir(input, { recursive: true });
  await writeFile(path.join(input, 'part-0.safetensors'), encodeSafetensors({ x }));
  const output = path.join(dir, 'out');
  const r = runHead(input, output, '-q');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /model: {7}sigmoid outputs computed as 1\/\(1\+exp\(-x\)\) \(2 nodes/);
  const summary = JSON.parse(await readFile(path.join(output, 'summary.json'), 'utf8')) as {
    model_rewrites?: string[];
  };
  assert.deepEqual(summary.model_rewrites, [
    'sigmoid outputs computed as 1/(1+exp(-x)) (2 nodes: /Sigmoid, /Sigmoid_1)',
  ]);
  const rep = spawnSync(process.execPath, [CLI, 'report', output], { encoding: 'utf8' });
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(
    await readFile(path.join(output, 'report.html'), 'utf8'),
    /Model: sigmoid outputs computed as 1\/\(1\+exp\(-x\)\) \(2 nodes/,
  );
});

test('an output resumed with other rewrites than its records name says so, with the count of each', async () => {
  dir ??= await mkdtemp(path.join(os.tmpdir(), 'cai-sigmoid-'));
  const input = path.join(dir, 'two');
  await mkdir(input, { recursive: true });
  await writeFile(path.join(input, 'a.safetensors'), encodeSafetensors({ x }));
  await writeFile(path.join(input, 'b.safetensors'), encodeSafetensors({ x }));
  const output = path.join(dir, 'mixed');
  const run = () => runHead(input, output);
  const first = run();
  assert.equal(first.status, 0, first.stderr);
  assert.doesNotMatch(first.stdout, /different model rewrites/);
  // One partition as an earlier CAI (before the rewrite) recorded it: no model_rewrites in its record.
  const plan = JSON.parse(await readFile(path.join(output, 'plan.json'), 'utf8')) as { id: string }[];
  const recordFile = path.join(output, 'results', `${plan[0].id}.json`);
  const record = JSON.parse(await readFile(recordFile, 'utf8')) as { model_rewrites?: string[] };
  delete record.model_rewrites;
  await writeFile(recordFile, JSON.stringify(record));
  const again = run();
  assert.equal(again.status, 0, again.stderr);
  assert.match(
    again.stdout,
    /warning: +partitions were computed with different model rewrites \(1 with none, 1 with sigmoid outputs/,
  );
  const summary = JSON.parse(await readFile(path.join(output, 'summary.json'), 'utf8')) as {
    model_rewrites_mixed?: Record<string, number>;
  };
  assert.deepEqual(summary.model_rewrites_mixed, {
    none: 1,
    'sigmoid outputs computed as 1/(1+exp(-x)) (2 nodes: /Sigmoid, /Sigmoid_1)': 1,
  });
  const rep = spawnSync(process.execPath, [CLI, 'report', output], { encoding: 'utf8' });
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(
    await readFile(path.join(output, 'report.html'), 'utf8'),
    /Warning: partitions were computed with different model rewrites \(1 with none, 1 with sigmoid outputs/,
  );
});

test('a model file is searched for Sigmoid in chunks, across their boundaries', async () => {
  dir ??= await mkdtemp(path.join(os.tmpdir(), 'cai-sigmoid-'));
  const file = path.join(dir, 'bytes.onnx');
  for (const at of [0, 2 ** 20 - 3, 2 ** 20, 2 ** 21 + 5]) {
    const bytes = Buffer.alloc(2 ** 21 + 64);
    bytes.write('Sigmoid', at);
    await writeFile(file, bytes);
    assert.equal(await mentionsSigmoid(file), true, `at ${at}`);
  }
  const partial = Buffer.alloc(2 ** 21);
  partial.write('Sigmoi', 2 ** 20 - 3);
  await writeFile(file, partial);
  assert.equal(await mentionsSigmoid(file), false);
  assert.equal(await mentionsSigmoid(`${FIXTURES}head.onnx`), true);
});
