// How close onnxruntime's CPU kernels for the operators that commonly end a model (Softmax, LogSoftmax,
// Tanh, Erf, GELU, Exp, Log, Softplus, Sigmoid -> Log, HardSigmoid, Sigmoid) come to float64, beside
// PyTorch's own float32: in the bulk (|y| >= 1e-3) and in the tail (normal float32 values below 1e-3),
// as the op computes them (`exactSigmoidOutputs: false`) and as CAI runs them (src/model/exact-outputs.ts).
// One-operator models exported by torch.onnx.export at opsets 11, 13, 17 (and Gelu-20) with references by
// PyTorch (scripts/bench/output_ops_reference.py, Debian's python3-torch, run when --dir lacks them).
// `worst decade` is the largest ratio, over decades of |y|, of the max relative error to PyTorch's
// (at least 2^-24 where PyTorch is exact): the factor CAI's rewrite rule looks at (above ~10x).
// The table in docs/performance.md ("Float precision against PyTorch") comes from this.
//
//   node dist/bench/output-ops.js [--level all] [--dir /tmp/cai-bench-output-ops]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeNpyTensor } from '../src/formats/npy/index.js';
import type { OptimizationLevel } from '../src/model/session.js';
import { loadModel } from '../src/model/session.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { heading } from './print.js';

const { values } = parseArgs({
  options: {
    level: { type: 'string', default: 'all' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-output-ops') },
  },
});
const dir = values.dir as string;
const level = values.level as OptimizationLevel;
const script = fileURLToPath(new URL('../../scripts/bench/output_ops_reference.py', import.meta.url));
const FLT_MIN = 1.1754943508222875e-38;

interface Cases {
  readonly torch: string;
  readonly cases: Record<string, { readonly shape: number[]; readonly opsets: number[] }>;
}

const npy = (file: string): Tensor => decodeNpyTensor(readFileSync(path.join(dir, file)), file);
const floats = (t: Tensor): ArrayLike<number> => t.data as Float32Array | Float64Array;

/** The largest relative error of `a` against `ref` per decade of |ref| (index d: 10^-(d+1) <= |ref| < 10^-d; 0: >= 0.1). */
function decades(a: ArrayLike<number>, ref: ArrayLike<number>): number[] {
  const worst: number[] = new Array<number>(38).fill(-1);
  for (let i = 0; i < ref.length; i++) {
    const m = Math.abs(ref[i]);
    if (m < FLT_MIN) continue;
    const d = Math.min(37, Math.max(0, Math.floor(-Math.log10(m))));
    const e = Math.abs(a[i] - ref[i]) / m;
    worst[d] = Math.max(worst[d], Number.isNaN(e) ? Infinity : e);
  }
  return worst;
}

/**
 * Max abs and max relative error against `ref` in the bulk and the tail, and the worst decade: the largest
 * ratio, over decades of |ref|, of the decade's max relative error to PyTorch float32's (at least 2^-24,
 * half a float32 ulp, where PyTorch is exact), with the decade it is in.
 */
function errors(a: ArrayLike<number>, ref: ArrayLike<number>, torch32: ArrayLike<number>): string {
  const bins = [
    { name: 'bulk', lo: 1e-3, hi: Infinity, abs: 0, rel: 0, n: 0 },
    { name: 'tail', lo: FLT_MIN, hi: 1e-3, abs: 0, rel: 0, n: 0 },
  ];
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(a[i] - ref[i]);
    const m = Math.abs(ref[i]);
    for (const b of bins) {
      if (!(m >= b.lo && m < b.hi)) continue;
      b.n++;
      b.abs = Math.max(b.abs, Number.isNaN(e) ? Infinity : e);
      b.rel = Math.max(b.rel, Number.isNaN(e) ? Infinity : e / m);
    }
  }
  const mine = decades(a, ref);
  const theirs = decades(torch32, ref);
  let worst = 0;
  let at = 0;
  mine.forEach((e, d) => {
    if (e < 0) return;
    const r = e / Math.max(theirs[d], 2 ** -24);
    if (r > worst) [worst, at] = [r, d];
  });
  const cell = (b: (typeof bins)[number]) =>
    b.n ? `${b.abs.toExponential(1)} / ${b.rel.toExponential(1)}` : '-';
  return `${cell(bins[0])} | ${cell(bins[1])} | ${worst.toPrecision(2)}x (${at === 0 ? '>= 0.1' : `1e-${at + 1}..1e-${at}`})`;
}

async function main(): Promise<void> {
  if (!existsSync(path.join(dir, 'cases.json'))) {
    const r = spawnSync('/usr/bin/python3', [script, dir], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${script} failed (status ${r.status})`);
  }
  const { torch, cases } = JSON.parse(readFileSync(path.join(dir, 'cases.json'), 'utf8')) as Cases;
  heading(`Output operators against float64 (PyTorch ${torch} float32 beside), onnxruntime level ${level}`);
  process.stdout.write(
    '| case | computed by | bulk max abs / max rel | tail max abs / max rel | worst decade vs PyTorch |\n| --- | --- | --- | --- | --- |\n',
  );
  for (const [name, c] of Object.entries(cases)) {
    const x = npy(`${name}.x.npy`);
    const ref = floats(npy(`${name}.ref64.npy`));
    const torch32 = floats(npy(`${name}.torch32.npy`));
    process.stdout.write(`| ${name} | PyTorch float32 | ${errors(torch32, ref, torch32)} |\n`);
    for (const opset of c.opsets) {
      const model = path.join(dir, `${name}.op${opset}.onnx`);
      for (const exact of [false, true]) {
        const s = await loadModel(model, {
          threads: 1,
          graphOptimization: level,
          exactSigmoidOutputs: exact,
        });
        try {
          // Without a rewrite CAI runs the op as it is: one line says so.
          if (exact && s.rewrites.length === 0) continue;
          const y = floats((await s.run({ x })).y);
          const by = exact
            ? `CAI (${s.rewrites.map((r) => r.replace(/ \(\d+ nodes?: .*\)$/, '')).join('; ')})`
            : 'onnxruntime op';
          process.stdout.write(`| | opset ${opset}: ${by} | ${errors(y, ref, torch32)} |\n`);
        } finally {
          await s.release();
        }
      }
    }
  }
}

await main();
