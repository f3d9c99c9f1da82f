// How Summarize's reads scale with the number in flight: n synthetic records and predictions written to
// the in-memory S3 endpoint (its own process, every request answered after --latency ms), then read
// back the way Summarize reads them (readRecords, then every predictions file) with each concurrency
// in turn, interleaved over --rounds rounds. Prints wall time, this process's CPU time and CPU per
// request for each, and the ratio of wall time against the first concurrency of the same round.
//
//   node dist/bench/summarize-reads.js [--n 10000] [--latency 20] [--concurrency 32,64,128,256] [--rounds 2]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import '../src/storage/register.js';
import { mapBounded } from '../src/storage/bounded.js';
import { openStore } from '../src/storage/open.js';
import { readRecords } from '../src/summarize/records.js';
import { outputKeys } from '../src/worker/run-partition.js';
import { startMemoryS3 } from '../test/helpers/memory-s3.js';
import { syntheticPlan, writeSyntheticOutputs } from '../test/helpers/synthetic-records.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    latency: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '32,64,128,256' },
    rounds: { type: 'string', default: '2' },
  },
});
const n = Number(values.n);
const levels = values.concurrency.split(',').map(Number);
const s3 = await startMemoryS3(['out'], Number(values.latency));
try {
  const output = await openStore('s3://out/job', { s3Endpoint: s3.endpoint });
  const plan = syntheticPlan(n, 64);
  await writeSyntheticOutputs(output, plan, 256);
  const cpu = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  };
  console.log(
    `# Summarize's reads of ${n.toLocaleString('en-US')} records and predictions, ${values.latency} ms a request`,
  );
  console.log(
    '| round | in flight | wall | CPU (this process) | CPU per request | requests/s | wall vs first |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (let round = 1; round <= Number(values.rounds); round++) {
    let first = NaN;
    for (const c of levels) {
      const before = await s3.requests();
      const t0 = performance.now();
      const c0 = cpu();
      const records = await readRecords(output, plan, 'jsonl', c);
      await mapBounded(
        records,
        c,
        async (r) => (await output.get(outputKeys(r.partition, 'jsonl').predictions)).byteLength,
      );
      const wall = (performance.now() - t0) / 1000;
      const used = cpu() - c0;
      const requests = (await s3.requests()) - before;
      if (Number.isNaN(first)) first = wall;
      console.log(
        `| ${round} | ${c} | ${wall.toFixed(1)} s | ${used.toFixed(1)} s | ${((used / requests) * 1000).toFixed(2)} ms | ${(requests / wall).toFixed(0)} | x${(wall / first).toFixed(2)} |`,
      );
    }
  }
} finally {
  await s3.stop();
}
