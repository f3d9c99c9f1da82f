// Which int8 variant is fastest on THIS CPU with the real onnxruntime-node: the AstroMAE-shaped model and
// ResNet-50, fp32 against dynamic MatMul (s8 or u8 weights, per column or per tensor), static QDQ Conv
// (per channel or per tensor) and both; each timed round-robin (interleaved) at 1 and 2 threads, as a
// ratio of the fp32 model's time in the same round, with the error against fp32 beside it.
//
//   node dist/bench/int8-variants.js [--model astromae|resnet50|both] [--rounds 5] [--threads 1,2]
import { parseArgs } from 'node:util';
import { encodeModel } from '../src/model/quantize/onnx-graph.js';
import { loadModel } from '../src/model/session.js';
import { buildAstroMAE } from '../src/model/zoo/astromae.js';
import { buildResNet50 } from '../src/model/zoo/resnet50.js';
import {
  collectRanges,
  finalModel,
  heavyOrFail,
  int8Graph,
  prepareModel,
  type Feeds,
  type Int8Options,
} from '../src/optimize/int8.js';
import { Rng } from '../src/model/builder/random.js';
import type { Tensor } from '../src/tensor/tensor.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'both' },
    rounds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '1,2' },
  },
});

function astroFeeds(rng: Rng, n: number): Feeds {
  const image = new Float32Array(n * 5 * 32 * 32);
  for (let i = 0; i < image.length; i++) image[i] = Math.max(0, rng.normal() * 0.3 + 0.2);
  const mag = new Float32Array(n * 5);
  for (let i = 0; i < mag.length; i++) mag[i] = 18 + 1.5 * rng.normal();
  return {
    image: { dtype: 'float32', shape: [n, 5, 32, 32], data: image } as Tensor,
    magnitude: { dtype: 'float32', shape: [n, 5], data: mag } as Tensor,
  };
}
function resnetFeeds(rng: Rng, n: number): Feeds {
  const x = new Float32Array(n * 3 * 224 * 224);
  rng.fillNormal(x, 1);
  return { input: { dtype: 'float32', shape: [n, 3, 224, 224], data: x } as Tensor };
}

const base: Int8Options = {
  matmul: true,
  conv: true,
  weightType: 'int8',
  perChannel: true,
  method: 'minmax',
  keepFp32: new Set(),
};
const VARIANTS: Record<string, Partial<Int8Options>> = {
  'matmul s8 per-column': { conv: false },
  'matmul u8 per-column': { conv: false, weightType: 'uint8' },
  'matmul s8 per-tensor': { conv: false, perChannel: false },
  'conv QDQ per-channel': { matmul: false },
  'conv QDQ per-tensor': { matmul: false, perChannel: false },
  'both, per-channel': {},
  'both, per-channel, percentile': { method: 'percentile' },
};

async function study(name: string, bytes: Uint8Array, make: (rng: Rng, n: number) => Feeds, batch: number) {
  const rng = new Rng(7);
  const model = await prepareModel(bytes, name);
  const heavy = heavyOrFail(model, name);
  const calib = Array.from({ length: 4 }, () => make(rng, batch));
  const evalFeeds = make(rng, batch);
  const convs = new Set(heavy.filter((h) => h.kind === 'static').map((h) => h.name));
  const ranges = await collectRanges(model, convs, calib, 2);
  const models: Record<string, Uint8Array> = { fp32: encodeModel(model) };
  for (const [v, o] of Object.entries(VARIANTS))
    models[v] = await finalModel(int8Graph(model, heavy, ranges, { ...base, ...o }), { v });
  for (const threads of (values.threads as string).split(',').map(Number)) {
    const sessions = Object.fromEntries(
      await Promise.all(
        Object.entries(models).map(
          async ([v, b]) => [v, await loadModel(b, { threads, thread: 'main' })] as const,
        ),
      ),
    );
    const ref = Object.values(await sessions.fp32.run(evalFeeds))[0].data as Float32Array;
    let mean = 0;
    for (const v of ref) mean += v / ref.length;
    let sd = 0;
    for (const v of ref) sd += (v - mean) ** 2 / ref.length;
    sd = Math.sqrt(sd);
    const times: Record<string, number[]> = {};
    const err: Record<string, number> = {};
    for (const [v, s] of Object.entries(sessions)) {
      const out = Object.values(await s.run(evalFeeds))[0].data as Float32Array;
      let sq = 0;
      for (let i = 0; i < out.length; i++) sq += (out[i] - ref[i]) ** 2 / out.length;
      err[v] = Math.sqrt(sq) / sd;
    }
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const [v, s] of Object.entries(sessions)) {
        const t0 = performance.now();
        await s.run(evalFeeds);
        (times[v] ??= []).push(performance.now() - t0);
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ratio = (v: string) => med(times[v].map((t, i) => times.fp32[i] / t));
    process.stdout.write(
      `\n${name}, batch ${batch}, ${threads} thread(s): speed-up vs fp32 (median of per-round ratios), RMS error / fp32 std\n`,
    );
    for (const v of Object.keys(sessions))
      process.stdout.write(
        `  ${v.padEnd(32)} ${ratio(v).toFixed(2)}x   ${(med(times[v]) / batch).toFixed(2)} ms/item   err ${(err[v] * 100).toFixed(2)}%\n`,
      );
    for (const s of Object.values(sessions)) await s.release();
  }
}

if (values.model !== 'resnet50') await study('AstroMAE-shaped', buildAstroMAE(), astroFeeds, 64);
if (values.model !== 'astromae') await study('ResNet-50', buildResNet50(), resnetFeeds, 8);
