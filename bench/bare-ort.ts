// The bare onnxruntime loop CAI is measured against: tensors already decoded in memory, one session,
// one batch after another. Prints {"items", "seconds"} as JSON.
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { decodeTensorFile } from '../src/formats/registry.js';
import { cast, sliceRows, type Tensor } from '../src/tensor/tensor.js';

const [model, threads, batch, ...files] = process.argv.slice(2);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
const inputs = session.inputNames;
const sets: Tensor[][] = [];
for (const f of files) {
  const set = decodeTensorFile(new Uint8Array(await readFile(f)), f);
  sets.push(inputs.map((_, i) => cast(set.columns[i], 'float32')));
}
const bs = Number(batch);
const warm = sets[0].map((t) => sliceRows(t, 0, Math.min(bs, t.shape[0])));
await session.run(
  Object.fromEntries(
    inputs.map((n, i) => [n, new ort.Tensor('float32', warm[i].data as Float32Array, [...warm[i].shape])]),
  ),
);
let items = 0;
const t0 = performance.now();
for (const cols of sets) {
  const n = cols[0].shape[0];
  for (let s = 0; s < n; s += bs) {
    const e = Math.min(n, s + bs);
    const feeds = Object.fromEntries(
      inputs.map((name, i) => {
        const t = sliceRows(cols[i], s, e);
        return [name, new ort.Tensor('float32', t.data as Float32Array, [...t.shape])];
      }),
    );
    await session.run(feeds);
  }
  items += n;
}
process.stdout.write(JSON.stringify({ items, seconds: (performance.now() - t0) / 1000 }));
