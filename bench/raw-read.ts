// Reading files raw, whole, one after another: the ceiling of any pipeline over them. Prints
// {items: files, bytes, seconds, peakRssMb}.
//
//   node dist/bench/raw-read.js data/1.pt data/2.pt ...
import { readFile } from 'node:fs/promises';

const files = process.argv.slice(2);
let bytes = 0;
const t0 = performance.now();
for (const f of files) bytes += (await readFile(f)).byteLength;
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(
  JSON.stringify({ items: files.length, bytes, seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 }),
);
