// Session options A/B in one process: two sessions of the same model, batches alternated between them,
// so whatever else the machine does hits both alike. Prints seconds per batch of each.
//
//   node dist/bench/session-ab.js model.onnx threads batch 'json options A' 'json options B' [batches]
import * as ort from 'onnxruntime-node';

const [model, threads, batch, a, b, count] = process.argv.slice(2);
const base: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
};
const sa = await ort.InferenceSession.create(model, { ...base, ...(JSON.parse(a) as object) });
const sb = await ort.InferenceSession.create(model, { ...base, ...(JSON.parse(b) as object) });
const n = Number(batch);
const feeds = Object.fromEntries(
  sa.inputMetadata.map((m) => {
    if (!m.isTensor) throw new Error('non-tensor input');
    const shape = m.shape.map((d, i) => (i === 0 ? n : Number(d)));
    const size = shape.reduce((x, y) => x * y, 1);
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) data[i] = Math.sin(i) * 0.5;
    return [m.name, new ort.Tensor('float32', data, shape)];
  }),
);
await sa.run(feeds);
await sb.run(feeds);
const ta: number[] = [];
const tb: number[] = [];
for (let i = 0; i < Number(count ?? 10); i++) {
  let t = performance.now();
  await sa.run(feeds);
  ta.push(performance.now() - t);
  t = performance.now();
  await sb.run(feeds);
  tb.push(performance.now() - t);
}
const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
process.stdout.write(
  JSON.stringify({ a: med(ta) / 1000, b: med(tb) / 1000, ratio_b_over_a: med(tb.map((x, i) => x / ta[i])) }) +
    '\n',
);
