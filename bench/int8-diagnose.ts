// Diagnosis of the AstroMAE-shaped model's int8 error: each heavy MatMul quantized alone (its error on
// held-out galaxies as a share of the fp32 std), and the activation statistics of each MatMul's input
// (per-channel absolute max against the tensor's, the spread of per-token ranges).
//
//   node dist/bench/int8-diagnose.js
import { encodeModel } from '../src/model/quantize/onnx-graph.js';
import { withOutputs } from '../src/model/quantize/quantize.js';
import { loadModel } from '../src/model/session.js';
import { buildAstroMAE } from '../src/model/zoo/astromae.js';
import { galaxyFeeds, predictAll } from './galaxy-feeds.js';
import {
  collectRanges,
  heavyOrFail,
  int8Graph,
  prepareModel,
  type Int8Options,
} from '../src/optimize/int8.js';

const model = await prepareModel(buildAstroMAE(), 'astromae');
const heavy = heavyOrFail(model, 'astromae').filter((h) => h.weights >= 4096);
const heldOut = [galaxyFeeds(64, 21), galaxyFeeds(64, 22)];
const convs = new Set(heavy.filter((h) => h.kind === 'static').map((h) => h.name));
const ranges = await collectRanges(model, convs, [galaxyFeeds(64, 11)], 1);
const fp32 = await loadModel(encodeModel(model), { threads: 1, thread: 'main' });
const ref = await predictAll(fp32, heldOut);
const mean = ref.reduce((a, v) => a + v, 0) / ref.length;
const sd = Math.sqrt(ref.reduce((a, v) => a + (v - mean) ** 2, 0) / ref.length);
const err = (out: Float32Array) => {
  let sq = 0;
  for (let i = 0; i < ref.length; i++) sq += (out[i] - ref[i]) ** 2 / ref.length;
  return Math.sqrt(sq) / sd;
};
const base: Int8Options = {
  matmul: true,
  conv: false,
  weightType: 'int8',
  perChannel: true,
  method: 'minmax',
  keepFp32: new Set(),
};
const all = new Set(heavy.map((h) => h.name));
const only = process.argv[2];
for (const h of heavy.filter((x) => x.kind === 'dynamic' && (!only || x.name.includes(only)))) {
  const keep = new Set([...all].filter((n) => n !== h.name));
  const s = await loadModel(encodeModel(int8Graph(model, heavy, ranges, { ...base, keepFp32: keep })), {
    threads: 1,
    thread: 'main',
  });
  process.stdout.write(
    `${h.name.padEnd(40)} alone ${(err(await predictAll(s, heldOut)) * 100).toFixed(2)}% of std\n`,
  );
  await s.release();
}
// Activation statistics of the MatMul inputs.
const nodes = model.graph?.node ?? [];
const inputsOf = heavy
  .filter((h) => h.kind === 'dynamic')
  .map((h) => nodes.find((n) => n.name === h.name)?.input?.[0] ?? '');
const extra = [...new Set(inputsOf)];
const pooled = nodes
  .filter((n) => n.opType === 'Sub' && n.name?.startsWith('vit'))
  .map((n) => n.output?.[0] ?? '');
const probe = await loadModel(encodeModel(withOutputs(model, [...extra, ...pooled])), {
  threads: 1,
  thread: 'main',
});
const out = await probe.run(heldOut[0]);
for (const name of [...extra, ...pooled]) {
  const t = out[name];
  if (!t) continue;
  const d = t.data as Float32Array;
  const k = t.shape[t.shape.length - 1];
  const rows = d.length / k;
  const chMax = new Float64Array(k);
  let lo = Infinity,
    hi = -Infinity,
    sq = 0;
  const rowRange: number[] = [];
  for (let r = 0; r < rows; r++) {
    let rl = Infinity,
      rh = -Infinity;
    for (let c = 0; c < k; c++) {
      const v = d[r * k + c];
      chMax[c] = Math.max(chMax[c], Math.abs(v));
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      sq += v * v;
      rl = Math.min(rl, v);
      rh = Math.max(rh, v);
    }
    rowRange.push(rh - rl);
  }
  const sorted = [...chMax].sort((a, b) => a - b);
  rowRange.sort((a, b) => a - b);
  process.stdout.write(
    `${name.slice(0, 60).padEnd(60)} [${lo.toFixed(2)}, ${hi.toFixed(2)}] rms ${Math.sqrt(sq / d.length).toFixed(3)} ch absmax median ${sorted[k >> 1].toFixed(2)} max ${sorted[k - 1].toFixed(2)}; row range median ${rowRange[rowRange.length >> 1].toFixed(2)} max ${rowRange[rowRange.length - 1].toFixed(2)}\n`,
  );
}
await probe.release();
await fp32.release();
