// Which int8 variant of the AstroMAE-shaped model is within the accuracy goal on the demo's galaxies, and
// at what speed: everything quantized, the Convs reading the raw image kept fp32 (the default), also the
// ViT MatMuls, and Conv alone; error against fp32 on held-out galaxies (of other seeds), and the model's
// time round-robin (interleaved) with fp32 at one batch, as a median of per-round ratios [min-max].
//
// --trained: the same layers trained briefly with PyTorch (bench/trained-astromae.ts) instead of the
// zoo's random weights.
//
//   node dist/bench/int8-astromae.js [--rounds 7] [--threads 1] [--trained] [--dir /tmp/cai-bench-trained-astromae]
import { parseArgs } from 'node:util';
import { encodeModel } from '../src/model/quantize/onnx-graph.js';
import { inputConvs } from '../src/model/quantize/quantize.js';
import { loadModel, type ModelSession } from '../src/model/session.js';
import { buildAstroMAE } from '../src/model/zoo/astromae.js';
import { galaxyFeeds, predictAll } from './galaxy-feeds.js';
import { readFile } from 'node:fs/promises';
import { trainedAstroMAE } from './trained-astromae.js';
import {
  collectChannelMax,
  collectRanges,
  finalModel,
  heavyOrFail,
  int8Graph,
  prepareModel,
  type Int8Options,
} from '../src/optimize/int8.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    threads: { type: 'string', default: '1' },
    trained: { type: 'boolean', default: false },
    dir: { type: 'string', default: '/tmp/cai-bench-trained-astromae' },
  },
});
const rounds = Number(values.rounds);
const threads = Number(values.threads);

const source = values.trained
  ? new Uint8Array(await readFile((await trainedAstroMAE(values.dir as string)).model))
  : buildAstroMAE();
const model = await prepareModel(source, 'astromae');
const heavy = heavyOrFail(model, 'astromae').filter((h) => h.weights >= 4096);
const calibration = [galaxyFeeds(64, 11), galaxyFeeds(64, 12)];
const heldOut = [galaxyFeeds(64, 21), galaxyFeeds(64, 22)];
const convs = new Set(heavy.filter((h) => h.kind === 'static').map((h) => h.name));
const ranges = await collectRanges(model, convs, calibration, 1);
const raw = inputConvs(model);
const matmuls = heavy.filter((h) => h.kind === 'dynamic').map((h) => h.name);
// The ViT's: all but the magnitude MLP's and the head's (named mag/, head/ by the zoo, fc1/fc2 Gemm by PyTorch).
const vit = matmuls.filter((n) => !/^(mag|head)\//.test(n) && !/Gemm/.test(n));
const channelMax = await collectChannelMax(model, new Set(matmuls), calibration, 1);
const base: Int8Options = {
  matmul: true,
  conv: true,
  weightType: 'int8',
  perChannel: true,
  method: 'minmax',
  keepFp32: new Set(),
};
const variants: Record<string, Partial<Int8Options>> = {
  'everything quantized': {},
  'input-reading Convs fp32': { keepFp32: new Set(raw) },
  '... and the ViT MatMuls fp32': { keepFp32: new Set([...raw, ...vit]) },
  'input Convs fp32, SmoothQuant 0.5': { keepFp32: new Set(raw), smooth: { alpha: 0.5, channelMax } },
  'input Convs fp32, SmoothQuant 0.8': { keepFp32: new Set(raw), smooth: { alpha: 0.8, channelMax } },
  'Conv alone': { matmul: false, keepFp32: new Set(raw) },
};

const fp32 = await loadModel(encodeModel(model), { threads, thread: 'main' });
const ref = await predictAll(fp32, heldOut);
const mean = ref.reduce((a, v) => a + v, 0) / ref.length;
const sd = Math.sqrt(ref.reduce((a, v) => a + (v - mean) ** 2, 0) / ref.length);
const span = Math.max(...ref) - Math.min(...ref);
process.stdout.write(
  `AstroMAE-shaped (${values.trained ? 'trained' : 'random weights'}; ViT MatMuls ${vit.length}), ${ref.length} held-out galaxies: fp32 predictions ${Math.min(...ref).toFixed(3)}-${Math.max(...ref).toFixed(3)}, std ${sd.toFixed(4)}; calibrated image range ${JSON.stringify(ranges.range('image', 'minmax'))}\n`,
);
const sessions: Record<string, ModelSession> = { fp32 };
for (const [name, o] of Object.entries(variants)) {
  const s = await loadModel(await finalModel(int8Graph(model, heavy, ranges, { ...base, ...o }), {}), {
    threads,
    thread: 'main',
  });
  sessions[name] = s;
  const out = await predictAll(s, heldOut);
  let sq = 0;
  let max = 0;
  for (let i = 0; i < ref.length; i++) {
    sq += (out[i] - ref[i]) ** 2 / ref.length;
    max = Math.max(max, Math.abs(out[i] - ref[i]));
  }
  process.stdout.write(
    `  ${name.padEnd(32)} error ${((Math.sqrt(sq) / sd) * 100).toFixed(2)}% of std, ${((Math.sqrt(sq) / span) * 100).toFixed(2)}% of range, max |diff| ${max.toPrecision(3)}\n`,
  );
}
const big = galaxyFeeds(128, 31);
const times: Record<string, number[]> = {};
for (const s of Object.values(sessions)) await s.run(big);
for (let r = 0; r < rounds; r++)
  for (const [name, s] of Object.entries(sessions)) {
    const t0 = performance.now();
    await s.run(big);
    (times[name] ??= []).push(performance.now() - t0);
  }
if (rounds > 0) process.stdout.write(`speed vs fp32, batch 128, ${threads} thread(s), ${rounds} rounds:\n`);
for (const name of rounds > 0 ? Object.keys(variants) : []) {
  const r = times[name].map((t, i) => times.fp32[i] / t).sort((a, b) => a - b);
  process.stdout.write(
    `  ${name.padEnd(32)} ${r[Math.floor(r.length / 2)].toFixed(2)}x [${r[0].toFixed(2)}-${r[r.length - 1].toFixed(2)}]\n`,
  );
}
for (const s of Object.values(sessions)) await s.release();
