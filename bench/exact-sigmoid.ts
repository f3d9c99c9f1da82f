// What computing a model's output sigmoids as 1 / (1 + exp(-x)) (src/model/exact-outputs.ts, CAI's
// default) costs against onnxruntime's Sigmoid op: inference speed on a classifier-like head with an
// [N, k] output, on a segmentation-like network whose output sigmoid covers every pixel (the worst
// case of a real model: the sigmoid is a large share of the work), on the op alone (an upper bound),
// and the model's load time (the rewrite decodes and
// re-encodes the ONNX file) for a model with 16 MB of weights. Sessions of both kinds are timed
// interleaved; ratios are exact over op, pair by pair.
//
//   node dist/bench/exact-sigmoid.js [--reps 7] [--threads 1]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { GraphBuilder, conv2d, linear, relu, sigmoid } from '../src/model/builder/index.js';
import { loadModel } from '../src/model/session.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { heading, interleave, line, ratios } from './print.js';

const { values } = parseArgs({
  options: { reps: { type: 'string', default: '7' }, threads: { type: 'string', default: '1' } },
});
const reps = Number(values.reps);
const threads = Number(values.threads);

interface Case {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly feeds: Record<string, Tensor>;
  readonly items: number;
  /** Runs per timed sample (small models are timed over several). */
  readonly runs: number;
}

const random = (n: number): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 3);

function head(width: number, k: number, batch: number): Case {
  const b = new GraphBuilder({ name: 'head', seed: 1 });
  const x = b.input('x', 'float32', ['N', width]);
  const h = relu(b, linear(b, x, width, width, { name: 'fc1' }));
  b.node('Identity', [sigmoid(b, linear(b, h, width, k, { name: 'fc2' }))], {}, { output: 'prob' });
  b.output('prob', 'float32', ['N', k]);
  const data = random(batch * width);
  return {
    name: `MLP ${width} -> ${width} -> ${k}, output [${batch}, ${k}]`,
    bytes: b.toModelBytes(),
    feeds: { x: { dtype: 'float32', shape: [batch, width], data } as Tensor },
    items: batch,
    runs: 50,
  };
}

function mask(size: number, batch: number): Case {
  const b = new GraphBuilder({ name: 'mask', seed: 2 });
  const x = b.input('image', 'float32', ['N', 3, size, size]);
  const c = relu(b, conv2d(b, x, 3, 16, 3, { name: 'c1' }));
  const m = conv2d(b, c, 16, 1, 3, { name: 'c2' });
  b.node('Identity', [sigmoid(b, m)], {}, { output: 'mask' });
  b.output('mask', 'float32', ['N', 1, size, size]);
  const data = random(batch * 3 * size * size);
  return {
    name: `2-conv segmentation, output mask [${batch}, 1, ${size}, ${size}]`,
    bytes: b.toModelBytes(),
    feeds: { image: { dtype: 'float32', shape: [batch, 3, size, size], data } as Tensor },
    items: batch,
    runs: 3,
  };
}

/** The op alone: what it costs where the model does nothing else (an upper bound, not a model). */
function alone(n: number, batch: number): Case {
  const b = new GraphBuilder({ name: 'alone', seed: 3 });
  const x = b.input('x', 'float32', ['N', n]);
  b.node('Identity', [sigmoid(b, x)], {}, { output: 'y' });
  b.output('y', 'float32', ['N', n]);
  return {
    name: `the sigmoid alone, output [${batch}, ${n}] (upper bound: a model that does nothing else)`,
    bytes: b.toModelBytes(),
    feeds: { x: { dtype: 'float32', shape: [batch, n], data: random(batch * n) } as Tensor },
    items: batch,
    runs: 20,
  };
}

heading(`output Sigmoid as 1/(1+exp(-x)) (exact) against onnxruntime's Sigmoid op (${threads} thread)`);
for (const c of [head(256, 10, 256), mask(256, 8), alone(65536, 8)]) {
  const exact = await loadModel(c.bytes, { threads, thread: 'main' });
  const op = await loadModel(c.bytes, { threads, thread: 'main', exactSigmoidOutputs: false });
  if (exact.rewrites.length !== 1 || op.rewrites.length !== 0) throw new Error('the rewrite did not happen');
  const timeOf = (s: typeof exact) => async () => {
    await s.run(c.feeds);
    const t0 = performance.now();
    for (let i = 0; i < c.runs; i++) await s.run(c.feeds);
    return (c.items * c.runs) / ((performance.now() - t0) / 1000);
  };
  const t = await interleave(reps, { op: timeOf(op), exact: timeOf(exact) });
  process.stdout.write(`${c.name}\n`);
  line('op (onnxruntime Sigmoid)', t.op, 'items/s');
  line('exact (Neg, Exp, Add, Reciprocal)', t.exact, 'items/s', ratios(t.exact, t.op), 'of op');
  await Promise.all([exact.release(), op.release()]);
}

// Load time: a 2048 x 2048 float32 layer (16 MB) before a sigmoid output.
const big = head(2048, 4, 1);
const load = (exact: boolean) => async () => {
  const t0 = performance.now();
  const s = await loadModel(big.bytes, { threads, thread: 'main', exactSigmoidOutputs: exact });
  const ms = performance.now() - t0;
  await s.release();
  return ms;
};
const l = await interleave(reps, { op: load(false), exact: load(true) });
process.stdout.write(`model load, ${(big.bytes.byteLength / 2 ** 20).toFixed(0)} MB model\n`);
line('op', l.op, 'ms');
line('exact (decode, rewrite, encode, load)', l.exact, 'ms', ratios(l.exact, l.op), 'of op');
