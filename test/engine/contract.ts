// The engine contract, written once and run against every engine that runs a map (design rule 9): the
// same predictions as a reference made without any engine, a corrupt partition failing once with
// E_CORRUPT, a crashing attempt retried and accounted, the error budget, and resume. Engines whose jobs
// read and write a Store other than local folders (S3 for the aws engine) say how through `storage`.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { resolveJob, type JobSpec } from '../../src/job/spec.js';
import type { RunOptions } from '../../src/run/run.js';
import { planPartitions } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';
import type { Store } from '../../src/storage/store.js';
import type { JobSummary } from '../../src/summarize/summarize.js';
import { createWorkerContext } from '../../src/worker/context.js';
import { runPartition } from '../../src/worker/run-partition.js';
import type { Demo } from '../../src/demo/demo.js';
import { allPredictions, freshJob, smallDemo, storedPredictions } from '../helpers/demo-fixture.js';

/** Where an engine's jobs read their partitions and write their output. */
export interface EngineStorage {
  /** The demo's job with a fresh output location (`fields` override its fields). */
  job(demo: Demo, fields: Partial<JobSpec>): Promise<JobSpec>;
  /** The job `input` for the partitions in local folder `dir`, copied where the engine reads if needed. */
  stage(dir: string): Promise<string>;
  /** A job's output location as a Store (the suite reads predictions and deletes records through it). */
  open(location: string): Store;
  /** Deletes an input or output location the suite made. */
  remove(location: string): Promise<void>;
}

/** Local folders: the demo's own input, a fresh temp folder for each output. */
export const LOCAL_STORAGE: EngineStorage = Object.freeze({
  job: freshJob,
  stage: async (dir: string) => dir,
  open: (location: string) => new FileStore(location),
  remove: (location: string) => rm(location, { recursive: true, force: true }),
});

/** An engine as the contract drives it. */
export interface EngineUnderTest {
  readonly name: string;
  /** Runs a whole job on this engine (plan or resume, map, summarize). */
  run(spec: JobSpec, options: RunOptions): Promise<JobSummary>;
  /**
   * How to make the first attempt at `partition` die mid-run (a killed worker process, a failed array
   * task, a Lambda runtime that exits): job fields to add and run options to pass.
   */
  crashOnce(partition: string): { spec?: Partial<JobSpec>; options?: RunOptions };
  /** Fields every job of this engine needs (e.g. `engine: 'slurm'` and fast polling). */
  readonly spec?: Partial<JobSpec>;
  /** The dataset (default: the 4 x 60 galaxies demo). */
  readonly demo?: () => Promise<Demo>;
  /** Where jobs read and write (default: {@link LOCAL_STORAGE}). */
  readonly storage?: EngineStorage;
}

type Rows = Awaited<ReturnType<typeof allPredictions>>;

/** Rows keyed and sorted by (partition, index), for item-by-item comparison. */
export function byItem(rows: Rows): [string, Record<string, unknown>][] {
  return rows
    .map(
      (r) =>
        [`${String(r.partition)}:${String(r.index).padStart(6, '0')}`, r] as [
          string,
          Record<string, unknown>,
        ],
    )
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const references = new Map<Demo, Promise<Rows>>();

/** Predictions of a demo made in this process, partition by partition, with no engine at all. */
export async function referencePredictions(demo?: Demo): Promise<Rows> {
  const d = demo ?? (await smallDemo());
  if (!references.has(d)) references.set(d, makeReference(d));
  return references.get(d) as Promise<Rows>;
}

async function makeReference(demo: Demo): Promise<Rows> {
  const spec = await freshJob(demo, { concurrency: 1, threads: 1 });
  const job = resolveJob(spec, { partitions: 1 });
  const ctx = await createWorkerContext(job);
  try {
    for (const partition of await planPartitions(new FileStore(job.input), { job }))
      await runPartition(ctx, { partition, attempt: 1 });
    return await allPredictions(job.output);
  } finally {
    await ctx.model.release?.();
    await rm(spec.output, { recursive: true, force: true });
  }
}

/** Asserts two prediction sets hold the same items with the same values. */
export function assertSamePredictions(actual: Rows, expected: Rows): void {
  assert.equal(actual.length, expected.length, 'as many predictions');
  const a = byItem(actual);
  const e = byItem(expected);
  assert.equal(new Set(a.map(([k]) => k)).size, a.length, 'no item predicted twice');
  for (let i = 0; i < e.length; i++) {
    assert.equal(a[i][0], e[i][0]);
    assert.deepEqual(a[i][1], e[i][1], `item ${e[i][0]}`);
  }
}

/**
 * Registers the contract's tests for one engine.
 * @example engineContract({ name: 'local', run: runJob, crashOnce: ... });
 */
export function engineContract(engine: EngineUnderTest): void {
  const opts: RunOptions = { retryBaseMs: 10 };
  const demo = engine.demo ?? smallDemo;
  const storage = engine.storage ?? LOCAL_STORAGE;
  const reference = async () => referencePredictions(await demo());
  const folders: string[] = [];
  const locations: string[] = [];
  const tracked = async (overrides: Partial<JobSpec> = {}) => {
    const spec = await storage.job(await demo(), { ...engine.spec, ...overrides });
    locations.push(spec.output);
    return spec;
  };
  const predictions = async (spec: JobSpec) =>
    storedPredictions(storage.open(spec.output), spec.predictionsFormat);

  test(`${engine.name}: the predictions are item for item those made without an engine`, async () => {
    const spec = await tracked();
    const summary = await engine.run(spec, opts);
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.run.retries, 0);
    assertSamePredictions(await predictions(spec), await reference());
  });

  test(`${engine.name}: a corrupt partition fails once with E_CORRUPT; the error budget decides the job`, async () => {
    const { data } = await demo();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-bad-'));
    folders.push(dir);
    for (const f of await readdir(data)) await copyFile(path.join(data, f), path.join(dir, f));
    await truncate(path.join(dir, '3.pt'), 5000);
    const input = await storage.stage(dir);
    if (input !== dir) locations.push(input);

    const strict = await engine.run(await tracked({ input }), opts);
    assert.equal(strict.status, 'failed');
    assert.equal(strict.failures.length, 1);
    assert.equal(strict.failures[0].partition, '3');
    assert.equal(strict.failures[0].error.code, 'E_CORRUPT');
    assert.equal(strict.failures[0].attempts, 1, 'a corrupt file is not retried');
    assert.equal(strict.run.retries, 0);

    const tolerant = await engine.run(await tracked({ input, toleratedFailurePercentage: 25 }), opts);
    assert.equal(tolerant.status, 'succeeded');
    assert.equal(tolerant.partitions.completed, 3);
    assert.equal(tolerant.partitions.failed, 1);
  });

  test(`${engine.name}: a crashing attempt is retried, counted once, and loses or doubles nothing`, async () => {
    const crash = engine.crashOnce('2');
    const spec = await tracked({ maxAttempts: 3, ...crash.spec });
    const summary = await engine.run(spec, { ...opts, ...crash.options });
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.run.retries, 1);
    assert.equal(summary.partitions.completed, 4);
    assertSamePredictions(await predictions(spec), await reference());
  });

  test(`${engine.name}: resume runs only the partitions without a record`, async () => {
    const spec = await tracked();
    assert.equal((await engine.run(spec, opts)).status, 'succeeded');
    await storage.open(spec.output).delete('results/4.json');
    const again = await engine.run(spec, opts);
    assert.equal(again.status, 'succeeded');
    assert.equal(again.partitions.resumed, 3);
    assert.equal(again.run.partitions, 1);
    assertSamePredictions(await predictions(spec), await reference());
  });

  test(`${engine.name}: cleanup`, async () => {
    for (const l of locations) await storage.remove(l);
    for (const f of folders) await rm(f, { recursive: true, force: true });
  });
}
