// A model whose outputs come out of F.logsigmoid, F.hardsigmoid, softmax, log_softmax, tanh or the erf
// GELU must give CAI the answers PyTorch gives, in the operators' tails too. onnxruntime's Softmax,
// LogSoftmax, Tanh, Erf and GELU are as precise as PyTorch's float32 and are left alone; its Sigmoid ->
// Log (PyTorch's export of F.logsigmoid) and HardSigmoid are not, and CAI rewrites them when a model is
// loaded (src/model/exact-outputs.ts; docs/performance.md, "Float precision against PyTorch"). Models
// exported by torch.onnx.export, references by PyTorch in float32 and float64 (test/fixtures/output-ops,
// scripts/fixtures/make_output_ops_fixtures.py).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeTensorFile } from '../../src/formats/registry.js';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { exactOutputs } from '../../src/model/exact-outputs.js';
import type { SessionOptions } from '../../src/model/model-session.js';
import { decodeModel } from '../../src/model/quantize/onnx-graph.js';
import { loadModel, saveOptimizedModel } from '../../src/model/session.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/output-ops/', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const REGENERATE = 'rerun /usr/bin/python3 scripts/fixtures/make_output_ops_fixtures.py';

const npy = (file: string): Tensor => decodeTensorFile(readFileSync(`${FIXTURES}${file}`), file).columns[0];
/** A float fixture's values. */
const values = (file: string): ArrayLike<number> => npy(file).data as Float32Array | Float64Array;
const x = npy('x.npy');
/** The smallest normal float32. */
const FLT_MIN = 1.1754943508222875e-38;
const LOG_SIGMOID = 'log-sigmoid outputs computed as -softplus(-x)';
const HARD_SIGMOID = 'hard-sigmoid outputs computed as clip(x + beta/alpha, 0, 1/alpha) / (1/alpha)';
const HEADS_REWRITES = [`${LOG_SIGMOID} (1 node: /Log)`, `${HARD_SIGMOID} (1 node: /HardSigmoid)`];

let dir: string | undefined;
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The largest relative distance of `a` from `ref` where `ref` is a normal float32 (or 0 and `a` is not). */
function maxRel(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(a.length, ref.length);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Math.abs(ref[i]) < FLT_MIN) continue;
    const e = Math.abs(a[i] - ref[i]) / Math.abs(ref[i]);
    worst = Math.max(worst, Number.isNaN(e) ? Infinity : e);
  }
  return worst;
}

/** The spacing of float32 values at `v` (the smallest subnormal below the normal range). */
function ulp32(v: number): number {
  const m = Math.abs(v);
  return m < FLT_MIN ? 2 ** -149 : 2 ** (Math.floor(Math.log2(m)) - 23);
}

/**
 * The largest, over the values, of CAI's distance from float64 in units of PyTorch float32's own
 * distance (at least one float32 ulp): "within N ulps of what PyTorch gives", value by value.
 */
function beyondTorch(a: ArrayLike<number>, torch32: ArrayLike<number>, ref: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(a[i] - ref[i]) / Math.max(Math.abs(torch32[i] - ref[i]), ulp32(ref[i]));
    worst = Math.max(worst, Number.isNaN(e) ? Infinity : e);
  }
  return worst;
}

/** Per output of a fixture model run by CAI on `x`: `rel`, its largest relative distance from float64 in
 * units of PyTorch float32's, and `ulps` (`beyondTorch`). */
async function ratios(
  model: string,
  names: readonly string[],
  options: Partial<SessionOptions> = {},
): Promise<{ rel: Record<string, number>; ulps: Record<string, number> }> {
  const prefix = path.basename(model).split('.')[0];
  const session = await loadModel(model, { threads: 1, thread: 'main', ...options });
  try {
    const out = await session.run({ x });
    const rel: Record<string, number> = {};
    const ulps: Record<string, number> = {};
    for (const name of names) {
      const ref = values(`${prefix}.${name}.ref64.npy`);
      const torch32 = values(`${prefix}.${name}.torch32.npy`);
      const got = out[name].data as Float32Array;
      rel[name] = maxRel(got, ref) / maxRel(torch32, ref);
      ulps[name] = beyondTorch(got, torch32, ref);
    }
    return { rel, ulps };
  } finally {
    await session.release();
  }
}

const show = (r: Record<string, number>): string =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${v.toPrecision(3)}x`)
    .join(', ');

test('F.logsigmoid and F.hardsigmoid at the outputs give PyTorch float32 precision; onnxruntime ops do not', async () => {
  // The inputs reach the tails: log-sigmoid to 1e-36 (and below x = -88), hard-sigmoid to 1e-5.
  assert.ok(Math.min(...(x.data as Float32Array)) < -90, REGENERATE);
  // onnxruntime's own ops, as exported: Sigmoid -> Log is -inf below x = -18 (Sigmoid outputs 0 there);
  // HardSigmoid's alpha * x + beta is 2e-8 off in absolute terms, 4e-4 relative near 1e-4.
  const { rel: op } = await ratios(`${FIXTURES}heads.onnx`, ['logp', 'hard'], { exactSigmoidOutputs: false });
  assert.equal(op.logp, Infinity, show(op));
  assert.ok(op.hard > 1000, show(op));
  for (const file of ['heads.onnx', 'heads.opset10.onnx']) {
    for (const level of ['disabled', 'all'] as const) {
      const { rel, ulps } = await ratios(`${FIXTURES}${file}`, ['logp', 'hard'], {
        graphOptimization: level,
      });
      // Softplus is within 3 float32 ulps; PyTorch's (x + 3).clamp(0, 6) / 6 is computed as it does.
      assert.ok(rel.logp < 3 && rel.hard <= 1, `${file} at ${level}: ${show(rel)}`);
      assert.ok(ulps.logp < 5 && ulps.hard <= 1, `${file} at ${level}: ${show(ulps)}`);
    }
  }
  // Bit for bit PyTorch's hard-sigmoid.
  const session = await loadModel(`${FIXTURES}heads.onnx`, { threads: 1 });
  assert.deepEqual((await session.run({ x })).hard.data, npy('heads.hard.torch32.npy').data);
  assert.deepEqual(session.rewrites, HEADS_REWRITES);
  await session.release();
});

test('Softmax, LogSoftmax, Tanh and the erf GELU at the outputs are left to onnxruntime: as precise as PyTorch', async () => {
  // Softmax probabilities down to 1e-38 and their logs; tanh; GELU to 1e-16 (where both lose it to 1 + erf).
  const names = ['prob', 'logprob', 't', 'g'];
  for (const file of ['heads.onnx', 'heads.opset10.onnx']) {
    for (const level of ['disabled', 'all'] as const) {
      const { rel, ulps } = await ratios(`${FIXTURES}${file}`, names, { graphOptimization: level });
      // Tanh: 2-4 ulps against PyTorch's correctly rounded ones; the others as far as PyTorch's.
      assert.ok(rel.prob < 1.5 && rel.logprob < 1.5 && rel.g < 1.5 && rel.t < 6, `${level}: ${show(rel)}`);
      // Value by value, within 5x PyTorch's distance from float64 (or 5 ulps where PyTorch is exact).
      for (const name of names) assert.ok(ulps[name] < 5, `${file} at ${level}: ${show(ulps)}`);
    }
  }
  const rewrite = exactOutputs(new Uint8Array(readFileSync(`${FIXTURES}heads.onnx`)));
  assert.ok(rewrite?.bytes);
  const ops = (decodeModel(rewrite.bytes, 'rewritten').graph?.node ?? []).map((n) => n.opType);
  for (const kept of ['Softmax', 'LogSoftmax', 'Tanh', 'Erf']) assert.ok(ops.includes(kept), kept);
  // The log-sigmoid's Sigmoid is dropped with its Log; the HardSigmoid became Add, Clip, Div.
  for (const gone of ['Sigmoid', 'Log', 'HardSigmoid']) assert.ok(!ops.includes(gone), gone);
  assert.equal(ops.filter((o) => o === 'Softplus').length, 1);
});

test('a Sigmoid read by an output and by a Log is rewritten for both', async () => {
  const { ulps } = await ratios(`${FIXTURES}shared.onnx`, ['p', 'lp']);
  assert.ok(ulps.p < 3 && ulps.lp < 5, show(ulps));
  const session = await loadModel(`${FIXTURES}shared.onnx`, { threads: 1 });
  assert.deepEqual(session.rewrites, [
    'sigmoid outputs computed as 1/(1+exp(-x)) (1 node: /Sigmoid)',
    `${LOG_SIGMOID} (1 node: /Log)`,
  ]);
  await session.release();
  const rewrite = exactOutputs(new Uint8Array(readFileSync(`${FIXTURES}shared.onnx`)));
  const ops = (decodeModel(rewrite!.bytes!, 'rewritten').graph?.node ?? []).map((n) => n.opType);
  assert.deepEqual(ops, ['Neg', 'Exp', 'Add', 'Reciprocal', 'Neg', 'Softplus', 'Neg']);
});

test('the same operators inside a network are left to onnxruntime', async () => {
  const bytes = new Uint8Array(readFileSync(`${FIXTURES}interior.onnx`));
  const ops = new Set((decodeModel(bytes, 'interior').graph?.node ?? []).map((n) => n.opType));
  for (const op of ['Softmax', 'Sigmoid', 'Log', 'HardSigmoid', 'Tanh']) assert.ok(ops.has(op), op);
  assert.equal(exactOutputs(bytes), undefined);
  const a = await loadModel(`${FIXTURES}interior.onnx`, { threads: 1 });
  const b = await loadModel(`${FIXTURES}interior.onnx`, { threads: 1, exactSigmoidOutputs: false });
  assert.deepEqual(a.rewrites, []);
  assert.deepEqual((await a.run({ x })).y.data, (await b.run({ x })).y.data);
  await Promise.all([a.release(), b.release()]);
});

test('a graph saved optimized keeps the rewrites and names them; cai run records them', async () => {
  dir ??= await mkdtemp(path.join(os.tmpdir(), 'cai-output-ops-'));
  const saved = path.join(dir, 'heads.opt.onnx');
  await saveOptimizedModel(`${FIXTURES}heads.onnx`, saved, 'all');
  const ops = new Set((decodeModel(await readFile(saved), saved).graph?.node ?? []).map((n) => n.opType));
  assert.ok(!ops.has('HardSigmoid') && !ops.has('Log'), [...ops].join(','));
  const session = await loadModel(saved, { threads: 1, exactSigmoidOutputs: false });
  assert.deepEqual((await session.run({ x })).hard.data, npy('heads.hard.torch32.npy').data);
  await session.release();
  const again = await loadModel(saved, { threads: 1 });
  assert.deepEqual(again.rewrites, HEADS_REWRITES);
  await again.release();

  const input = path.join(dir, 'data');
  await mkdir(input, { recursive: true });
  await writeFile(path.join(input, 'part-0.safetensors'), encodeSafetensors({ x }));
  const output = path.join(dir, 'out');
  const run = spawnSync(
    process.execPath,
    [
      CLI,
      'run',
      '--input',
      input,
      '--model',
      `${FIXTURES}heads.onnx`,
      '--output',
      output,
      '--inputs',
      'x=x',
      '-c',
      '1',
      '-q',
    ],
    { encoding: 'utf8', env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } },
  );
  assert.equal(run.status, 0, run.stderr);
  const summary = JSON.parse(await readFile(path.join(output, 'summary.json'), 'utf8')) as {
    model_rewrites?: string[];
  };
  assert.deepEqual(summary.model_rewrites, HEADS_REWRITES);
});
