// `cai optimize` on small models made with the project's builder (MatMul-, Conv- and attention-heavy):
// the saved graph loads, quantized operators are in it, its outputs are within the reported error of
// fp32, calibration is deterministic, and bad input gets a clear answer.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { CaiError } from '../../src/errors.js';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { GraphBuilder } from '../../src/model/builder/graph-builder.js';
import { conv2d, globalAvgPool, gelu, linear, relu } from '../../src/model/builder/layers.js';
import { transformerBlock } from '../../src/model/builder/transformer.js';
import { readOptimization } from '../../src/model/optimization.js';
import { decodeModel } from '../../src/model/quantize/onnx-graph.js';
import { inputConvs } from '../../src/model/quantize/quantize.js';
import { Rng } from '../../src/model/builder/random.js';
import { collectRanges, heavyOrFail, prepareModel } from '../../src/optimize/int8.js';
import { optimizeModel, rejectedPath, reportPath, type OptimizeReport } from '../../src/optimize/optimize.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-optimize-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function mlp(): Uint8Array {
  const b = new GraphBuilder({ name: 'mlp', seed: 3 });
  const x = b.input('x', 'float32', ['N', 64]);
  const h = gelu(b, linear(b, x, 64, 128, { name: 'fc1' }));
  const h2 = gelu(b, linear(b, h, 128, 64, { name: 'fc2' }));
  linear(b, h2, 64, 10, { name: 'head', output: 'logits' });
  b.output('logits', 'float32', ['N', 10]);
  return b.toModelBytes();
}

function cnn(): Uint8Array {
  const b = new GraphBuilder({ name: 'cnn', seed: 4 });
  const x = b.input('x', 'float32', ['N', 3, 16, 16]);
  let y = relu(b, conv2d(b, x, 3, 32, 3, { name: 'conv1' }));
  y = relu(b, conv2d(b, y, 32, 64, 3, { name: 'conv2' }));
  y = relu(b, conv2d(b, y, 64, 64, 3, { name: 'conv3' }));
  linear(b, globalAvgPool(b, y), 64, 1, { name: 'head', output: 'y' });
  b.output('y', 'float32', ['N', 1]);
  return b.toModelBytes();
}

/** A CNN whose first Conv (4,608 weights) reads the input after a scale: a Conv on raw data. */
function rawCnn(): Uint8Array {
  const b = new GraphBuilder({ name: 'raw-cnn', seed: 6 });
  const x = b.input('x', 'float32', ['N', 8, 16, 16]);
  const scaled = b.node('Mul', [x, b.constant(0.5)]);
  let y = relu(b, conv2d(b, scaled, 8, 64, 3, { name: 'conv1' }));
  y = relu(b, conv2d(b, y, 64, 64, 3, { name: 'conv2' }));
  const h = linear(b, globalAvgPool(b, y), 64, 64, { name: 'fc' });
  linear(b, h, 64, 1, { name: 'head', output: 'y' });
  b.output('y', 'float32', ['N', 1]);
  return b.toModelBytes();
}

function attention(): Uint8Array {
  const b = new GraphBuilder({ name: 'attn', seed: 5 });
  let x: string = b.input('x', 'float32', ['N', 16, 64]);
  for (let i = 0; i < 2; i++) {
    const input = x;
    x = b.withScope(`block${i}`, () =>
      transformerBlock(b, input, { tokens: 16, dim: 64, heads: 2, mlpRatio: 2, residualGain: 0.5 }),
    );
  }
  b.node('ReduceMean', [x], { axes: [1], keepdims: 0 }, { output: 'pooled' });
  b.output('pooled', 'float32', ['N', 64]);
  return b.toModelBytes();
}

function tinyNoHeavy(): Uint8Array {
  const b = new GraphBuilder({ name: 'relu', seed: 1 });
  const x = b.input('x', 'float32', ['N', 4]);
  b.node('Relu', [x], {}, { output: 'y' });
  b.output('y', 'float32', ['N', 4]);
  return b.toModelBytes();
}

/** One .safetensors partition of `items` items of `shape`, with an integer `label` column. */
async function data(name: string, shape: readonly number[], items: number, seed: number): Promise<string> {
  const folder = path.join(dir, name);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(folder, { recursive: true });
  const rng = new Rng(seed);
  const x = new Float32Array(items * shape.reduce((a, d) => a * d, 1));
  rng.fillNormal(x, 1);
  const label = Float32Array.from({ length: items }, (_, i) => i % 10);
  await writeFile(
    path.join(folder, '1.safetensors'),
    encodeSafetensors({
      x: { dtype: 'float32', shape: [items, ...shape], data: x } as Tensor,
      label: { dtype: 'float32', shape: [items], data: label } as Tensor,
    }),
  );
  return folder;
}

async function opsOf(file: string): Promise<Set<string>> {
  const m = decodeModel(await readFile(file), file);
  return new Set((m.graph?.node ?? []).map((n) => n.opType ?? ''));
}

async function outputs(file: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  try {
    return (await s.run(feeds))[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

async function optimize(
  name: string,
  model: Uint8Array,
  input: string,
  extra: Partial<Parameters<typeof optimizeModel>[0]> = {},
): Promise<{ report: OptimizeReport; file: string; out: string }> {
  const file = path.join(dir, `${name}.onnx`);
  await writeFile(file, model);
  const out = path.join(dir, `${name}.int8.onnx`);
  const job = parseJobSpec({ input, model: file, output: out, inputs: { x: 'x' }, label: 'label' });
  const report = await optimizeModel({
    model: file,
    output: out,
    int8: true,
    job,
    calibrationItems: 48,
    heldOutItems: 48,
    threads: 1,
    tolerance: 1,
    minAgreement: 0,
    ...extra,
  });
  return { report, file, out };
}

test('a MatMul-heavy classifier: DynamicQuantizeMatMul in the saved graph, argmax agreement and metrics reported', async () => {
  const input = await data('mlp-data', [64], 96, 11);
  const { report, file, out } = await optimize('mlp', mlp(), input);
  assert.equal(report.accepted, true);
  assert.equal(report.optimized, out);
  const ops = await opsOf(out);
  assert.ok(ops.has('DynamicQuantizeMatMul'), [...ops].join(','));
  const record = await readOptimization(out);
  assert.equal(record?.level, 'extended');
  assert.equal(record?.int8?.dynamic_matmul, 2, 'fc1 and fc2; the 640-weight head stays fp32');
  assert.deepEqual(record?.int8?.kept_fp32.length, 1);
  const c = report.comparison;
  assert.ok(c);
  assert.equal(c.items, 48);
  const o = c.outputs[0];
  assert.equal(o.width, 10);
  assert.ok(o.argmax_agreement !== undefined && o.argmax_agreement >= 0.8, String(o.argmax_agreement));
  assert.ok(o.relative_error > 0 && o.relative_error < 0.2, String(o.relative_error));
  assert.equal(c.metrics?.fp32.kind, 'classification');
  // The reported error is what the saved model really does on the held-out items (items 48-95).
  const json = JSON.parse(await readFile(reportPath(out), 'utf8')) as OptimizeReport;
  assert.equal(json.comparison?.outputs[0].max_abs_diff, o.max_abs_diff);
  // Items 48-95 in batches of 16 (activations are quantized per batch, so the batches matter).
  const x = new Float32Array(96 * 64);
  new Rng(11).fillNormal(x, 1);
  let max = 0;
  for (let start = 48; start < 96; start += 16) {
    const held = new ort.Tensor('float32', x.slice(start * 64, (start + 16) * 64), [16, 64]);
    const a = await outputs(file, { x: held });
    const b = await outputs(out, { x: held });
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  }
  assert.ok(Math.abs(max - o.max_abs_diff) < 1e-5, `${max} vs reported ${o.max_abs_diff}`);
});

test('a Conv-heavy model: QDQ fused into QLinearConv, calibration deterministic, small convs left fp32', async () => {
  const input = await data('cnn-data', [3, 16, 16], 96, 12);
  const { report, out, file } = await optimize('cnn', cnn(), input);
  const ops = await opsOf(out);
  assert.ok(ops.has('QLinearConv'), [...ops].join(','));
  assert.equal(report.optimization.int8?.static_conv, 2, 'conv2 and conv3; conv1 has 864 weights');
  assert.ok(report.comparison && report.comparison.outputs[0].relative_error < 0.2);
  // Calibration twice over the same items: the same ranges, bit for bit.
  const model = await prepareModel(new Uint8Array(await readFile(file)), file);
  const convs = new Set(
    heavyOrFail(model, file)
      .filter((h) => h.kind === 'static')
      .map((h) => h.name),
  );
  const rng = new Rng(1);
  const batch = () => {
    const d = new Float32Array(8 * 3 * 16 * 16);
    rng.fillNormal(d, 1);
    return { x: { dtype: 'float32', shape: [8, 3, 16, 16], data: d } as Tensor };
  };
  const batches = [batch(), batch()];
  const r1 = await collectRanges(model, convs, batches, 1);
  const r2 = await collectRanges(model, convs, batches, 1);
  assert.ok(r1.names().length >= 4);
  for (const n of r1.names()) {
    assert.deepEqual(r1.range(n, 'minmax'), r2.range(n, 'minmax'));
    assert.deepEqual(r1.range(n, 'percentile'), r2.range(n, 'percentile'));
  }
  // And the whole command, twice: byte-identical models.
  const again = await optimize('cnn-again', cnn(), input);
  assert.deepEqual(await readFile(again.out), await readFile(out));
});

test('Convs reading a model input (after elementwise ops only) stay fp32 unless asked; --no-matmul', async () => {
  const input = await data('raw-cnn-data', [8, 16, 16], 64, 14);
  const file = path.join(dir, 'raw-cnn.onnx');
  await writeFile(file, rawCnn());
  const model = await prepareModel(new Uint8Array(await readFile(file)), file);
  const conv1 = heavyOrFail(model, file).find((h) => h.kind === 'static' && h.name.includes('conv1'));
  assert.ok(conv1 && conv1.weights >= 4096, 'conv1 is heavy enough to be quantized by size');
  assert.deepEqual(inputConvs(model), [conv1.name]);
  const small = { calibrationItems: 16, heldOutItems: 16 };
  const byDefault = await optimize('raw-cnn', rawCnn(), input, small);
  assert.equal(byDefault.report.optimization.int8?.static_conv, 1, 'conv2 only');
  assert.ok(byDefault.report.optimization.int8?.kept_fp32.includes(conv1.name));
  assert.equal(byDefault.report.optimization.int8?.dynamic_matmul, 1, 'fc (64 x 64)');
  const asked = await optimize('raw-cnn-all', rawCnn(), input, { ...small, quantizeInputConvs: true });
  assert.equal(asked.report.optimization.int8?.static_conv, 2);
  assert.ok(!asked.report.optimization.int8?.kept_fp32.includes(conv1.name));
  const convOnly = await optimize('raw-cnn-conv', rawCnn(), input, { ...small, noMatmul: true });
  assert.equal(convOnly.report.optimization.int8?.dynamic_matmul, 0);
  assert.equal(convOnly.report.optimization.int8?.static_conv, 1);
  assert.ok(!(await opsOf(convOnly.out)).has('DynamicQuantizeMatMul'));
});

test('over the tolerance with MatMul/Gemm quantized, within it with Conv alone: the Conv-only model is kept', async () => {
  const input = await data('fallback-data', [8, 16, 16], 64, 15);
  const small = { calibrationItems: 16, heldOutItems: 16 };
  const both = await optimize('fb-both', rawCnn(), input, small);
  const conv = await optimize('fb-conv', rawCnn(), input, { ...small, noMatmul: true });
  const eBoth = both.report.comparison?.outputs[0].relative_error ?? NaN;
  const eConv = conv.report.comparison?.outputs[0].relative_error ?? NaN;
  assert.ok(eConv < eBoth, `Conv alone ${eConv} should be closer to fp32 than both ${eBoth}`);
  const tolerance = (eConv + eBoth) / 2;
  const r = await optimize('fb', rawCnn(), input, { ...small, tolerance });
  assert.equal(r.report.accepted, true);
  assert.equal(r.report.optimization.int8?.dynamic_matmul, 0);
  assert.equal(r.report.optimization.int8?.static_conv, 1);
  assert.equal(r.report.comparison?.outputs[0].relative_error, eConv);
  // --no-conv asks for MatMul only: no Conv-only model is tried, the model is refused.
  const refused = await optimize('fb-noconv', rawCnn(), input, { ...small, tolerance: 1e-9, noConv: true });
  assert.equal(refused.report.accepted, false);
});

test('an attention-heavy model: every projection quantized, within the reported error', async () => {
  const input = await data('attn-data', [16, 64], 64, 13);
  const { report, out } = await optimize('attn', attention(), input, {
    calibrationItems: 16,
    heldOutItems: 32,
  });
  const ops = await opsOf(out);
  assert.ok(ops.has('DynamicQuantizeMatMul'));
  assert.equal(report.optimization.int8?.dynamic_matmul, 8, 'qkv, proj, fc1, fc2 in each of 2 blocks');
  assert.ok(report.comparison && report.comparison.outputs[0].relative_error < 0.2);
});

test('over the tolerance: exit 1, the model written as .rejected.onnx with its report; --keep-fp32 measures each layer', async () => {
  const input = await data('strict-data', [64], 64, 14);
  const file = path.join(dir, 'strict.onnx');
  await writeFile(file, mlp());
  const out = path.join(dir, 'strict.int8.onnx');
  await writeFile(out, 'stale');
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      'optimize',
      file,
      '-o',
      out,
      '--int8',
      '--calibrate',
      input,
      '--inputs',
      'x=x',
      '--tolerance',
      '0.0001',
      '--calibration-items',
      '16',
      '--held-out-items',
      '16',
      '--keep-fp32',
      '1',
      '-t',
      '1',
    ],
    { encoding: 'utf8', env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /REFUSED: .*logits: error .* > 0\.01%/);
  assert.match(r.stdout, /\| logits \|/);
  const report = JSON.parse(await readFile(reportPath(out), 'utf8')) as OptimizeReport;
  assert.equal(report.accepted, false);
  assert.equal(report.optimized, rejectedPath(out));
  assert.equal(report.sensitivity?.length, 2);
  assert.deepEqual(report.optimization.int8?.kept_fp32.length, 2);
  await readFile(rejectedPath(out));
  await assert.rejects(readFile(out), /ENOENT/, 'no stale model under the accepted name');
});

test('bad input: no items, one item, a model without heavy operators, --int8 without --calibrate', async () => {
  const empty = path.join(dir, 'empty');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(empty);
  await assert.rejects(optimize('e', mlp(), empty), (e: CaiError) =>
    /no partition files to read/.test(e.message),
  );
  const none = await data('none', [64], 0, 1);
  await assert.rejects(optimize('z', mlp(), none), /has no items to calibrate on/);
  const one = await data('one', [64], 1, 1);
  await assert.rejects(optimize('o', mlp(), one), /has only 1 item/);
  const input = await data('plain', [4], 8, 2);
  await assert.rejects(optimize('n', tinyNoHeavy(), input), /has no operator int8 quantization speeds up/);
  const file = path.join(dir, 'n.onnx');
  await assert.rejects(
    optimizeModel({ model: file, output: path.join(dir, 'x.onnx'), int8: true }),
    /needs --calibrate <input>/,
  );
  // Without --int8: the graph optimizations alone, saved and recorded.
  const r = await optimizeModel({
    model: file,
    output: path.join(dir, 'n.opt.onnx'),
    int8: false,
    threads: 1,
  });
  assert.equal(r.accepted, true);
  assert.equal((await readOptimization(path.join(dir, 'n.opt.onnx')))?.level, 'extended');
});

test('cai run names the optimization in its summary and cai report in its page', async () => {
  const input = await data('run-data', [64], 32, 15);
  const { out } = await optimize('run', mlp(), input, { calibrationItems: 8, heldOutItems: 8 });
  const output = path.join(dir, 'run-out');
  const r = spawnSync(
    process.execPath,
    [CLI, 'run', '--input', input, '--model', out, '--output', output, '--inputs', 'x=x', '-c', '1', '-q'],
    { encoding: 'utf8', env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /model: {7}int8: 2 MatMul\/Gemm dynamic, 0 Conv static QDQ/);
  const summary = JSON.parse(await readFile(path.join(output, 'summary.json'), 'utf8')) as {
    model_optimization?: string;
  };
  assert.match(summary.model_optimization ?? '', /saved at level extended/);
  // And the report names it too.
  const rep = spawnSync(process.execPath, [CLI, 'report', output], { encoding: 'utf8' });
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(
    await readFile(path.join(output, 'report.html'), 'utf8'),
    /Model: int8: 2 MatMul\/Gemm dynamic/,
  );
});
