// A stand-in worker for the hostile-input tests: opens every partition it is given with the source that
// reads it and reads every batch, then reports each outcome and the process's peak RSS. The tests judge
// memory from this report (never from timing) and detect hangs by the time the whole child may take.
//
//     node decode-child.js <dir>   (on stdin, a JSON array of { key, job })
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { CaiError } from '../../src/errors.js';
import { sourceForKey } from '../../src/formats/sources.js';
import type { JobSpec } from '../../src/job/spec.js';
import { FileStore } from '../../src/storage/file-store.js';

/** What happened to one file. */
export interface DecodeOutcome {
  readonly key: string;
  /** `ok` with the items read and failed, or the error's code (E_UNEXPECTED for a raw error). */
  readonly result: 'ok' | 'error';
  readonly code?: string;
  readonly message?: string;
  readonly caiError?: boolean;
  readonly items?: number;
  readonly failedItems?: number;
  /** Sum of every float value read, to compare an unchanged mutant with its original. */
  readonly checksum?: number;
}

/** The child's report. */
export interface DecodeReport {
  readonly outcomes: DecodeOutcome[];
  /** Peak resident set size of the child, in bytes. */
  readonly peakRss: number;
}

async function decodeOne(store: FileStore, key: string, job: JobSpec): Promise<DecodeOutcome> {
  try {
    const kind = sourceForKey(key);
    if (!kind) throw new Error(`no source reads ${key}`);
    const size = (await store.head(key))?.size ?? 0;
    const stream = await kind.open(store, { id: 'p', key, bytes: size }, job);
    let failed = 0;
    let read = 0;
    let checksum = 0;
    for await (const batch of stream.batches(16)) {
      failed += batch.failed?.length ?? 0;
      read += batch.indices.length;
      for (const col of batch.rows.columns) {
        const data = col.data as ArrayLike<number | bigint>;
        for (let i = 0; i < data.length; i++) {
          const v = Number(data[i]);
          if (Number.isFinite(v)) checksum += v;
        }
      }
      for (let i = 0; i < batch.indices.length; i++) {
        if (batch.indices[i] < 0 || batch.indices[i] >= stream.items) throw new Error('index out of range');
      }
    }
    stream.release?.();
    if (read + failed !== stream.items) throw new Error(`read ${read}+${failed} of ${stream.items} items`);
    return { key, result: 'ok', items: stream.items, failedItems: failed, checksum };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    return {
      key,
      result: 'error',
      caiError: err instanceof CaiError,
      code: typeof e.code === 'string' ? e.code : 'E_UNEXPECTED',
      message: String(e.message ?? err).slice(0, 500),
    };
  }
}

async function main(): Promise<void> {
  const [dir] = process.argv.slice(2);
  const items = JSON.parse(readFileSync(0, 'utf8')) as { key: string; job?: JobSpec }[];
  const store = new FileStore(dir);
  const outcomes: DecodeOutcome[] = [];
  for (const { key, job } of items) outcomes.push(await decodeOne(store, key, job ?? ({} as JobSpec)));
  const report: DecodeReport = { outcomes, peakRss: process.resourceUsage().maxRSS * 1024 };
  process.stdout.write(JSON.stringify(report));
}

// The test runner loads every file under test/: only a run with a folder argument reads anything.
if (process.argv[2] !== undefined) await main();
