// Precision and speed of each onnxruntime graph optimization level (`--graph-optimization`), on an
// EfficientNet (torchvision's efficientnet_b0, random weights, exported by torch.onnx.export: SiLU =
// x * Sigmoid(x), squeeze-excitation, depthwise convolutions), on the AstroMAE-shaped model of CAI's
// zoo and on that model as torch.onnx.export writes it (a Sigmoid op at the output, which CAI computes as
// 1 / (1 + exp(-x)); also shown with onnxruntime's op, `exactSigmoidOutputs: false`). The reference is
// the same model evaluated in float64 by PyTorch (scripts/bench/numerics_reference.py, Debian's
// python3-torch); PyTorch's own float32 is printed beside as the distance users already accept.
// Sessions of every level are created up front and timed interleaved; speed ratios are to level `all`.
//
//   node dist/bench/graph-optimization.js [--reps 5] [--threads 1]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeNpyTensor } from '../src/formats/npy/index.js';
import { GRAPH_OPTIMIZATIONS } from '../src/job/spec.js';
import { loadModel } from '../src/model/session.js';
import type { ModelSession } from '../src/model/session.js';
import { buildZooModel } from '../src/model/zoo/registry.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { heading, interleave, line, median, ratios } from './print.js';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    threads: { type: 'string', default: '1' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-graph-optimization') },
  },
});
const dir = values.dir as string;
const reps = Number(values.reps);
const threads = Number(values.threads);
const script = fileURLToPath(new URL('../../scripts/bench/numerics_reference.py', import.meta.url));

function python(args: string[]): void {
  const r = spawnSync('/usr/bin/python3', [script, ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`numerics_reference.py ${args.join(' ')} failed (${r.status})`);
}

const npy = (file: string): Tensor => decodeNpyTensor(new Uint8Array(readFileSync(file)), file);

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface Case {
  readonly name: string;
  readonly model: string;
  readonly feeds: Record<string, Tensor>;
  readonly items: number;
  readonly ref64: Float64Array;
  readonly torch32: Float32Array;
  /** `SessionOptions.exactSigmoidOutputs`; default CAI's (true). */
  readonly exactSigmoidOutputs?: boolean;
}

async function efficientNet(): Promise<Case> {
  const model = path.join(dir, 'efficientnet_b0.onnx');
  if (!existsSync(path.join(dir, 'efficientnet_b0.ref64.npy'))) python(['efficientnet', dir]);
  const image = npy(path.join(dir, 'efficientnet_b0.inputs.npy'));
  return {
    name: 'efficientnet_b0 (torchvision, torch.onnx.export opset 13)',
    model,
    feeds: { image },
    items: image.shape[0],
    ref64: npy(path.join(dir, 'efficientnet_b0.ref64.npy')).data as Float64Array,
    torch32: npy(path.join(dir, 'efficientnet_b0.torch32.npy')).data as Float32Array,
  };
}

/**
 * The zoo's AstroMAE and the same model as a PyTorch user exports it (torch.onnx.export, `torch.sigmoid`
 * at the output where the builder writes 1 / (1 + exp(-x))). Standard-normal inputs: magnitudes far below
 * the model's 14..22, so every prediction sits in the output sigmoid's tail (~1e-5), where onnxruntime's
 * Sigmoid op is least precise. References are kept per model hash: a changed builder gets new ones.
 */
async function astroMAE(batch = 64): Promise<Case[]> {
  const bytes = buildZooModel('astromae');
  const prefix = path.join(dir, `astromae-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`);
  const model = `${prefix}.onnx`;
  const exported = `${prefix}.torch-export.onnx`;
  if (!existsSync(`${prefix}.ref64.npy`)) {
    await writeFile(model, bytes);
    python(['onnx', model, String(batch), prefix]);
  }
  if (!existsSync(exported)) python(['torch-export', model, String(batch), exported]);
  const feeds = {
    image: npy(`${prefix}.in.image.npy`),
    magnitude: npy(`${prefix}.in.magnitude.npy`),
  };
  const common = {
    feeds,
    items: feeds.image.shape[0],
    ref64: npy(`${prefix}.ref64.npy`).data as Float64Array,
    torch32: npy(`${prefix}.torch32.npy`).data as Float32Array,
  };
  return [
    { name: 'AstroMAE-shaped (CAI zoo: ViT 192 x 6 + Inception CNN + MLP)', model, ...common },
    {
      name: 'the same AstroMAE as PyTorch exports it (torch.onnx.export, torch.sigmoid output)',
      model: exported,
      ...common,
    },
    {
      name: "PyTorch's export with onnxruntime's Sigmoid op (exactSigmoidOutputs: false)",
      model: exported,
      ...common,
      exactSigmoidOutputs: false,
    },
  ];
}

await mkdir(dir, { recursive: true });
heading(`onnxruntime graph optimization levels: distance from float64 and speed (${threads} thread)`);
for (const c of [await efficientNet(), ...(await astroMAE())]) {
  const sessions: Record<string, ModelSession> = {};
  const errors: Record<string, number> = {};
  for (const level of GRAPH_OPTIMIZATIONS) {
    const s = await loadModel(c.model, {
      threads,
      graphOptimization: level,
      exactSigmoidOutputs: c.exactSigmoidOutputs,
    });
    sessions[level] = s;
    const out = Object.values(await s.run(c.feeds))[0];
    errors[level] = maxAbs(out.data as Float32Array, c.ref64);
  }
  const timed = await interleave(
    reps,
    Object.fromEntries(
      GRAPH_OPTIMIZATIONS.map((level) => [
        level,
        async () => {
          const t0 = performance.now();
          await sessions[level].run(c.feeds);
          return c.items / ((performance.now() - t0) / 1000);
        },
      ]),
    ),
  );
  const torchError = maxAbs(c.torch32, c.ref64);
  const scale = c.ref64.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  process.stdout.write(`${c.name}: batch ${c.items}, outputs up to ${scale.toPrecision(3)} in magnitude\n`);
  process.stdout.write(
    `  PyTorch float32 vs float64: max abs ${torchError.toExponential(2)} (relative ${(torchError / scale).toExponential(2)})\n`,
  );
  for (const level of GRAPH_OPTIMIZATIONS) {
    process.stdout.write(
      `  ${level.padEnd(9)} max abs vs float64 ${errors[level].toExponential(2)} (relative to the largest output ${(errors[level] / scale).toExponential(2)}; ${(errors[level] / torchError).toFixed(1)}x PyTorch's)\n`,
    );
    line(`    ${level}`, timed[level], 'items/s', ratios(timed[level], timed.all), 'of all');
  }
  process.stdout.write(`  (median items/s at all: ${median(timed.all).toFixed(1)})\n`);
  for (const s of Object.values(sessions)) await s.release();
}
