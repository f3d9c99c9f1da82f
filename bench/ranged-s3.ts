// Issue 24's benchmark: HDF5 and Zarr read by byte range from a loopback S3 server with latency injected,
// against the same data read from local files, in the same run.
//   - bytes the server sent per row-range partition, against the stored bytes of the chunks its rows
//     need (h5py's get_chunk_info for HDF5, the chunk objects' sizes for Zarr), and GETs per partition;
//   - what planning fetched (metadata only) against the object's size;
//   - items/s of reading each partition from S3 against reading it from the local file.
// Data: Galaxy10-like images (N x S x S x 3 uint8, chunks of 16 rows; gzip level 1 + shuffle in HDF5,
// blosc lz4 in Zarr), written by h5py and zarr-python into a temporary folder, deleted at the end.
//
//   node dist/bench/ranged-s3.js [--items 2000] [--size 64] [--partitions 8] [--latency 20] [--batch 64]
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ArraySourceFields } from '../src/formats/arrays/index.js';
import { hdf5Files } from '../src/formats/hdf5/index.js';
import type { PlannedPartition } from '../src/formats/planned-partition.js';
import type { StoreSourceKind } from '../src/formats/source.js';
import { zarrStores } from '../src/formats/zarr/index.js';
import { FileStore } from '../src/storage/file-store.js';
import { S3Store } from '../src/storage/s3-store.js';
import type { ObjectInfo, Store } from '../src/storage/store.js';
import { startLoopbackProxy } from '../test/helpers/loopback-proxy.js';
import { startS3Server } from '../test/helpers/s3-server.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '2000' },
    size: { type: 'string', default: '64' },
    partitions: { type: 'string', default: '8' },
    latency: { type: 'string', default: '20' },
    batch: { type: 'string', default: '64' },
  },
});
const N = Number(values.items);
const S = Number(values.size);
const PARTS = Number(values.partitions);
const LATENCY = Number(values.latency);
const BATCH = Number(values.batch);
const KB = 1024;

const WRITE = `
import sys, os, json, h5py, zarr, numpy as np
from numcodecs import Blosc
d, n, s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
y, x = np.mgrid[0:s, 0:s]
imgs = np.empty((n, s, s, 3), np.uint8)
for i in range(n):
    for c in range(3):
        imgs[i, :, :, c] = np.clip(40 + (i % 90) + 30 * c + (x * (c + 1) + y * (3 - c)) * 60 / s + rng.integers(0, 8, (s, s)), 0, 255)
with h5py.File(os.path.join(d, 'galaxy.h5'), 'w') as f:
    f.create_dataset('images', data=imgs, chunks=(16, s, s, 3), compression='gzip', compression_opts=1, shuffle=True)
    f.create_dataset('ids', data=np.arange(n, dtype=np.int64))
with h5py.File(os.path.join(d, 'galaxy.h5'), 'r') as f:
    dd = f['images']
    chunks = sorted([[int(dd.id.get_chunk_info(i).chunk_offset[0]), int(dd.id.get_chunk_info(i).size)] for i in range(dd.id.get_num_chunks())])
root = zarr.open_group(os.path.join(d, 'galaxy.zarr'), mode='w')
root.create_dataset('images', data=imgs, chunks=(16, s, s, 3), compressor=Blosc(cname='lz4', clevel=5, shuffle=Blosc.SHUFFLE))
root.create_dataset('ids', data=np.arange(n, dtype=np.int64), chunks=(n,), compressor=None)
print(json.dumps(chunks))
`;

async function filesUnder(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(root, r)));
    else out.push(r);
  }
  return out;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-bench-ranged-'));
const s3 = await startS3Server(['data']);
// Every answer waits `LATENCY` ms before its first byte, and its body's bytes are counted.
let served = 0;
let gets = 0;
let lists = 0;
const proxy = await startLoopbackProxy(s3.endpoint, {
  response: (r, up) => {
    if (r.method === 'GET' && !r.url.search.includes('list-type')) {
      gets++;
      served += Number(up.headers['content-length'] ?? 0);
    } else if (r.method === 'GET') lists++;
    setTimeout(() => {
      r.res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(r.res);
    }, LATENCY);
    return 'handled';
  },
});
try {
  const w = spawnSync('/usr/bin/python3', ['-c', WRITE, dir, String(N), String(S)], { encoding: 'utf8' });
  if (w.status !== 0) throw new Error(w.stderr);
  const h5Chunks = JSON.parse(w.stdout) as [number, number][];
  const remote = new S3Store('s3://data/bench', { s3Endpoint: proxy.endpoint });
  const local = new FileStore(dir);
  const objects: ObjectInfo[] = [];
  for (const rel of await filesUnder(dir)) {
    const body = await readFile(path.join(dir, rel));
    await remote.put(rel, body);
    objects.push({ key: rel, size: body.byteLength });
  }
  const h5Size = (await stat(path.join(dir, 'galaxy.h5'))).size;
  const zarrSize = objects.filter((o) => o.key.startsWith('galaxy.zarr/')).reduce((s, o) => s + o.size, 0);
  const sizeOf = (k: string) => objects.find((o) => o.key === k)?.size ?? 0;
  const job: ArraySourceFields = {
    datasets: ['images'],
    idColumn: 'ids',
    partitionItems: Math.ceil(N / PARTS),
  };

  const cases: {
    name: string;
    kind: StoreSourceKind<ArraySourceFields>;
    objects: ObjectInfo[];
    size: number;
    chunkBytes: (a: number, b: number) => number;
  }[] = [
    {
      name: 'HDF5 (h5py, gzip 1 + shuffle)',
      kind: hdf5Files,
      objects: objects.filter((o) => o.key === 'galaxy.h5'),
      size: h5Size,
      chunkBytes: (a, b) =>
        h5Chunks.filter(([r]) => r >= a && r < b).reduce((s, [, n]) => s + n, 0) + 8 * (b - a),
    },
    {
      name: 'Zarr v2 (zarr-python, blosc lz4)',
      kind: zarrStores,
      objects: objects.filter(
        (o) => o.key.startsWith('galaxy.zarr/') && !path.posix.basename(o.key).startsWith('.'),
      ),
      size: zarrSize,
      chunkBytes: (a, b) => {
        let n = sizeOf('galaxy.zarr/ids/0');
        for (let c = Math.floor(a / 16); c < Math.ceil(b / 16); c++)
          n += sizeOf(`galaxy.zarr/images/${c}.0.0.0`);
        return n;
      },
    },
  ];
  const readPartition = async (
    kind: StoreSourceKind<ArraySourceFields>,
    store: Store,
    p: PlannedPartition,
  ) => {
    const t0 = performance.now();
    const stream = await kind.open(store, p, job as never);
    let items = 0;
    for await (const b of stream.batches(BATCH)) items += b.rows.items;
    return { items, seconds: (performance.now() - t0) / 1000 };
  };
  console.log(
    `Ranged reads from loopback S3 (${LATENCY} ms per request): ${N} images of ${S}x${S}x3 uint8, chunks of 16, ${PARTS} row-range partitions, batches of ${BATCH}`,
  );
  for (const c of cases) {
    const b0 = served;
    const g0 = gets;
    const planned = await c.kind.planWithStore(remote, c.objects, job);
    console.log(`\n${c.name}: ${(c.size / KB).toFixed(0)} KiB stored`);
    console.log(
      `  planning: ${((served - b0) / KB).toFixed(1)} KiB in ${gets - g0} GETs (${((100 * (served - b0)) / c.size).toFixed(2)}% of the object)`,
    );
    let moved = 0;
    let needed = 0;
    let sTime = 0;
    let lTime = 0;
    for (const p of planned) {
      const [a, b] = p.rows as [number, number];
      const lp = { ...p };
      // Local first and S3 second, then the other way, would be fairer still; the S3 cost is dominated by latency.
      const l = await readPartition(c.kind, local, lp);
      const before = served;
      const g = gets;
      const l0 = lists;
      const r = await readPartition(c.kind, remote, p);
      const bytes = served - before;
      const chunks = c.chunkBytes(a, b);
      moved += bytes;
      needed += chunks;
      sTime += r.seconds;
      lTime += l.seconds;
      console.log(
        `  rows [${a}, ${b}): ${(bytes / KB).toFixed(0)} KiB in ${gets - g} GETs and ${lists - l0} LISTs, chunks ${(chunks / KB).toFixed(0)} KiB: ${(bytes / chunks).toFixed(2)}x; ${(r.items / r.seconds).toFixed(0)} items/s from S3, ${(l.items / l.seconds).toFixed(0)} local`,
      );
    }
    console.log(
      `  all partitions: ${(moved / KB).toFixed(0)} KiB moved for ${(needed / KB).toFixed(0)} KiB of chunks = ${(moved / needed).toFixed(2)}x (${(moved / c.size).toFixed(2)}x the stored size); S3 reads at ${(lTime / sTime).toFixed(2)}x the local items/s`,
    );
  }
} finally {
  await proxy.stop();
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
}
