// The Slurm engine's decisions that need no cluster: how a round is sized, what counts as the same job,
// which live tasks a rerun adopts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ResolvedJob } from '../../src/job/spec.js';
import { resolveSlurmOptions } from '../../src/job/slurm-options.js';
import {
  adoptable,
  assertSameJob,
  E_SLURM_BUSY,
  jobChanges,
  type LiveRuns,
} from '../../src/engines/slurm/owner.js';
import { CaiError, ExitCodes, exitCodeFor } from '../../src/errors.js';
import { FileStore } from '../../src/storage/file-store.js';
import { chooseSizing, slurmTimeSeconds } from '../../src/engines/slurm/sizing.js';
import type { TaskManifest } from '../../src/engines/slurm/script.js';

const cluster = { partition: 'debug', nodes: 2, cpus: 2, slots: 2 };

test('with no --throttle/--partitions-per-task a round has one task per slot; flags win', () => {
  const options = resolveSlurmOptions({});
  const sized = chooseSizing(93, options, cluster);
  assert.deepEqual([sized.throttle, sized.partitionsPerTask], [2, 47]);
  assert.match(
    sized.why,
    /sized to the cluster: partition debug has 2 node\(s\), 2 CPU\(s\), room for 2 task\(s\)/,
  );
  // The old default made 93 one-partition tasks (throttle 100): 93 model loads instead of 2.
  assert.equal(chooseSizing(93, resolveSlurmOptions({ throttle: 100 }), cluster).partitionsPerTask, 1);
  assert.equal(chooseSizing(93, resolveSlurmOptions({ partitionsPerTask: 10 }), cluster).throttle, 2);
  // Two CPUs a task on nodes of one CPU: no slot, and the fallback says so.
  const none = chooseSizing(4, resolveSlurmOptions({ cpusPerTask: 2 }), { ...cluster, slots: 0 });
  assert.equal(none.throttle, 100);
  assert.match(none.why, /no node that fits --cpus-per-task 2/);
});

test('a task’s share is capped at half its --time at the measured seconds per partition', () => {
  const sized = chooseSizing(100, resolveSlurmOptions({ time: '10:00' }), cluster, 30);
  // 600 s limit, half of it at 30 s a partition: 10 partitions a task, 10 tasks.
  assert.equal(sized.partitionsPerTask, 10);
  assert.match(sized.why, /capped so a task takes at most half its --time 10:00/);
  assert.deepEqual(['30', '10:00', '1:00:00', '1-12', '1-0:30', 'UNLIMITED'].map(slurmTimeSeconds), [
    1800,
    600,
    3600,
    129600,
    88200,
    undefined,
  ]);
});

const job = (over: Partial<ResolvedJob> = {}): ResolvedJob =>
  ({
    input: '/d',
    model: '/m.onnx',
    output: '/o',
    batchSize: 128,
    predictionsFormat: 'parquet',
    maxAttempts: 3,
    toleratedFailurePercentage: 0,
    partitionTimeoutSeconds: 900,
    engine: 'slurm',
    device: 'cpu',
    concurrency: 1,
    threads: 1,
    ...over,
  }) as ResolvedJob;

const liveOf = (running: ResolvedJob): LiveRuns => ({
  state: { rounds: [] },
  steps: [],
  rounds: [
    {
      round: { round: 1, jobId: '41', tasks: 1, partitions: 1, logDir: '/l', submittedAt: '' },
      manifest: { version: 1, round: 1, job: running, tasks: [[]] } as unknown as TaskManifest,
      queued: new Set([0]),
    },
  ],
});
const output = new FileStore('/o');

test('the same job is the job identity: live arrays differing only in free fields are adopted', () => {
  // Every free field of src/job/identity.ts, changed at once: batch size, workers, device, retry
  // policy, scheduler options. The old sameJob refused another batch size as another job.
  const free = job({
    batchSize: 64,
    maxAttempts: 5,
    threads: 4,
    concurrency: 2,
    device: 'cuda',
    partitionTimeoutSeconds: 60,
    toleratedFailurePercentage: 10,
    slurm: resolveSlurmOptions({ throttle: 3, partition: 'gpu' }),
  });
  assert.deepEqual(jobChanges(job(), free), []);
  assert.doesNotThrow(() => assertSameJob(liveOf(job()), output, free));
});

test('live arrays of another identity refuse the run (exit 2), naming each differing field', () => {
  const other = job({ model: '/other.onnx', preprocess: { channels: 'bgr' } } as Partial<ResolvedJob>);
  assert.throws(
    () => assertSameJob(liveOf(job()), output, other),
    (err: unknown) => {
      assert.ok(err instanceof CaiError);
      assert.equal(err.code, E_SLURM_BUSY);
      assert.equal(exitCodeFor(err), ExitCodes.usage);
      assert.match(
        err.message,
        /another job are still running into this output: 41 \(round 1: model: "\/m.onnx" -> "\/other.onnx"; preprocess.channels: \(not set\) -> "bgr"\)/,
      );
      assert.match(err.message, /cai slurm cancel \/o/);
      return true;
    },
  );
  // fileLimit decides what is planned: part of the identity (the old sameJob let it differ).
  assert.deepEqual(
    jobChanges(job(), job({ fileLimit: 2 })).map((c) => c.field),
    ['fileLimit'],
  );
});

test('a rerun adopts each pending partition from its latest live round, only while its task is queued', () => {
  const p = (id: string) => ({ partition: { id, key: `${id}.pt`, bytes: 1 }, attempt: 1 });
  const manifest = (round: number, tasks: string[][]): TaskManifest =>
    ({ version: 1, round, job: job(), tasks: tasks.map((t) => t.map(p)) }) as unknown as TaskManifest;
  const round = (n: number) => ({
    round: n,
    jobId: `${10 + n}`,
    tasks: 2,
    partitions: 2,
    logDir: '/l',
    submittedAt: '',
  });
  const live: LiveRuns = {
    state: { rounds: [] },
    steps: [],
    rounds: [
      { round: round(1), manifest: manifest(1, [['1', '2'], ['3']]), queued: new Set([0, 1]) },
      // Round 2 holds partition 2's retry, in a task that has ended: not adopted from round 1 either.
      { round: round(2), manifest: manifest(2, [['2'], ['4']]), queued: new Set([1]) },
    ],
  };
  const got = adoptable(live, new Set(['1', '2', '3', '4']));
  assert.deepEqual(
    got.map((g) => [g.round.round.round, [...g.attempts.keys()].sort()]),
    [
      [1, ['1', '3']],
      [2, ['4']],
    ],
  );
});
