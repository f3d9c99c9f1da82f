// The Slurm engine against a real one-node Slurm cluster started for this file (test/helpers/slurm-cluster.ts).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { makeDemo, type Demo } from '../../src/demo/demo.js';
import type { EngineEvent } from '../../src/engines/events.js';
import { registerEngine } from '../../src/engines/registry.js';
import { arrayStates } from '../../src/engines/slurm/commands.js';
import { slurmEngine } from '../../src/engines/slurm/engine.js';
import { resolveSlurmOptions, type SlurmOptionsInput } from '../../src/job/slurm-options.js';
import { requeueNotices } from '../../src/engines/slurm/requeue.js';
import { taskLog, type Round, type SlurmState } from '../../src/engines/slurm/rounds.js';
import { runJob } from '../../src/run/run.js';
import type { JobSpec } from '../../src/job/spec.js';
import type { JobSummary } from '../../src/summarize/summarize.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { assertSamePredictions, engineContract, referencePredictions } from '../engine/contract.js';
import { allPredictions, freshJob } from '../helpers/demo-fixture.js';
import { slurmUnavailable, startSlurmCluster, type SlurmCluster } from '../helpers/slurm-cluster.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli/main.js');
const skip = await slurmUnavailable();
let cluster: SlurmCluster | undefined;
let scratch = '';
const temps: string[] = [];

before(async () => {
  if (skip) return;
  scratch = await mkdtemp(path.join(os.tmpdir(), 'cai-slurm-test-'));
  cluster = await startSlurmCluster();
});
after(async () => {
  await cluster?.stop();
  for (const t of [scratch, ...temps]) if (t) await rm(t, { recursive: true, force: true });
});

// 4 partitions of 8 galaxies: the tests measure the scheduler's behaviour, not inference.
let tiny: Promise<Demo> | undefined;
const tinyDemo = () => {
  tiny ??= mkdtemp(path.join(os.tmpdir(), 'cai-demo-')).then((dir) => {
    temps.push(dir);
    return makeDemo({ dir, partitions: 4, itemsPerPartition: 8 });
  });
  return tiny;
};

// One partition per task unless a test says otherwise (the cluster's own sizing has its own test). The
// demo job's worker count and threads are the local engine's: Slurm refuses them (--throttle and
// --cpus-per-task say how many tasks of how many CPUs), so they are left out.
const slurm = (o: SlurmOptionsInput = {}) => ({
  engine: 'slurm' as const,
  concurrency: undefined,
  threads: undefined,
  slurm: resolveSlurmOptions({ pollSeconds: 0.2, partitionsPerTask: 1, ...o }),
});

async function job(overrides: Partial<JobSpec> = {}): Promise<JobSpec> {
  const spec = await freshJob(await tinyDemo(), { ...slurm(), ...overrides });
  temps.push(spec.output);
  return spec;
}

async function state(output: string): Promise<SlurmState> {
  return JSON.parse(await readFile(path.join(output, 'slurm', 'state.json'), 'utf8')) as SlurmState;
}

async function record(output: string, id: string): Promise<PartitionRecord> {
  return JSON.parse(await readFile(path.join(output, 'results', `${id}.json`), 'utf8')) as PartitionRecord;
}

// The first array task to reach its setup lines with `task` index does `action` once (mkdir is atomic).
const once = (marker: string, task: number, action: string) =>
  `if [ "$SLURM_ARRAY_TASK_ID" = ${task} ] && mkdir ${marker} 2>/dev/null; then ${action}; fi`;

if (!skip)
  engineContract({
    name: 'slurm',
    spec: slurm(),
    demo: tinyDemo,
    crashOnce(partition) {
      // One partition per task: partition N runs in task N-1; its first task exits with an error.
      const marker = path.join(scratch, `crash-${partition}-${Math.random().toString(36).slice(2)}`);
      return { spec: slurm({ setup: [once(marker, Number(partition) - 1, 'exit 3')] }) };
    },
    run: runJob,
  });

test(
  'a user’s scancel of an array element ends the run as cancelled: no resubmission, exit 4',
  { skip },
  async () => {
    // Every task waits 2 s in its setup, so element 1 is surely still running when it is cancelled.
    const spec = await job();
    const child = startCli([
      'slurm',
      'run',
      ...(await jobArgs(spec)),
      '--partitions-per-task',
      '1',
      '--setup',
      'sleep 2',
      '--poll-seconds',
      '0.2',
      '--json',
    ]);
    const jobId = await firstArray(spec.output);
    await untilRunning(jobId, 1);
    await cluster?.command('scancel', [`${jobId}_1`]);
    const { code, stdout, stderr } = await child.done;
    assert.equal(code, 4, stderr);
    const summary = JSON.parse(stdout) as JobSummary;
    assert.equal(summary.status, 'cancelled');
    assert.match(summary.cancelled ?? '', new RegExp(`array task ${jobId}_1 was cancelled outside this run`));
    assert.equal(summary.run.retries, 0);
    assert.equal(summary.partitions.failed, 0);
    assert.ok(summary.partitions.not_started >= 1, JSON.stringify(summary.partitions));
    assert.equal((await state(spec.output)).rounds.length, 1, 'nothing resubmitted');
    await assert.rejects(
      stat(path.join(spec.output, 'results', '2.json')),
      'the cancelled partition never ran',
    );
    // Running the same command again resumes what the cancel left.
    const again = await cli(['slurm', 'run', ...(await jobArgs(spec)), '--partitions-per-task', '1', '-q']);
    assert.equal(again.code, 0, again.stderr);
    assertSamePredictions(await allPredictions(spec.output), await referencePredictions(await tinyDemo()));
  },
);

test(
  'an array task past its time limit ends TIMEOUT; its partition is retried as E_TIMEOUT',
  { skip },
  async () => {
    const marker = path.join(scratch, 'timeout');
    // Slurm's time limits are whole minutes, checked about every 30 s: this test takes about 1.5 min.
    const spec = await job({
      fileLimit: 1,
      maxAttempts: 2,
      ...slurm({ time: '1', setup: [once(marker, 0, 'sleep 600')] }),
    });
    const events: EngineEvent[] = [];
    const summary = await runJob(spec, { retryBaseMs: 10, onEvent: (e) => events.push(e) });
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.failures));
    assert.equal(summary.run.retries, 1);
    const retry = events.find((e) => e.type === 'retry');
    assert.ok(retry?.type === 'retry');
    assert.equal(retry.error.code, 'E_TIMEOUT');
    assert.match(retry.error.message, /ended TIMEOUT/);
    const log = /see its log (\S+)/.exec(retry.error.message)?.[1] ?? '';
    assert.match(await readFile(log, 'utf8'), /TIME LIMIT/, 'the log the failure names is the task’s');
    assert.equal((await record(spec.output, '1')).attempt, 2);
  },
);

test('a job begun on the local engine finishes on Slurm with only what was left', { skip }, async () => {
  const spec = await job({ engine: 'local', slurm: undefined });
  assert.equal((await runJob(spec, { retryBaseMs: 10 })).status, 'succeeded');
  for (const id of ['2', '3']) await rm(path.join(spec.output, 'results', `${id}.json`));
  const before1 = (await stat(path.join(spec.output, 'results', '1.json'))).mtimeMs;
  const summary = await runJob({ ...spec, ...slurm() }, { retryBaseMs: 10 });
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.partitions.resumed, 2);
  assert.equal(summary.run.partitions, 2);
  assert.equal(summary.run.engine, 'slurm');
  assert.equal((await state(spec.output)).rounds[0].partitions, 2);
  assert.equal((await stat(path.join(spec.output, 'results', '1.json'))).mtimeMs, before1);
  assertSamePredictions(await allPredictions(spec.output), await referencePredictions(await tinyDemo()));
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: process.env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A CLI run in the background: `done` resolves with its exit code and output; `pid` to kill it. */
function startCli(args: string[]): {
  pid: number;
  done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { pid: child.pid ?? 0, done };
}

/** The job id of round 1's array, once the run has submitted it. */
async function firstArray(output: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const id = await state(output).then(
      (s) => s.rounds[0]?.jobId,
      () => undefined,
    );
    if (id) return id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no array was submitted into ${output}`);
}

/** Waits until array task `task` of `jobId` runs. */
async function untilRunning(jobId: string, task: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const out = (await cluster?.command('squeue', ['-h', '-r', '-j', jobId, '-o', '%K %T'])) ?? '';
    if (new RegExp(`^${task} RUNNING$`, 'm').test(out)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`task ${jobId}_${task} never ran`);
}

// The job as a file for the CLI, without the test's engine fields (the command sets them).
async function jobFile(spec: JobSpec): Promise<string> {
  const { engine, slurm: _slurm, ...rest } = spec;
  void engine;
  void _slurm;
  const file = path.join(scratch, `job-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(rest));
  return file;
}
const jobArgs = async (spec: JobSpec) => [await jobFile(spec)];

test(
  '--detach submits the array and a dependent step that summarizes; status follows it to the summary',
  { skip },
  async () => {
    const spec = await job();
    const submitted = await cli([
      'slurm',
      'run',
      ...(await jobArgs(spec)),
      '--detach',
      '--json',
      '--cpus-per-task',
      '1',
    ]);
    assert.equal(submitted.code, 0, submitted.stderr);
    const ids = JSON.parse(submitted.stdout) as { arrayJobId: string; stepJobId: string; tasks: number };
    // No --throttle or --partitions-per-task: one task per slot of the two one-CPU nodes.
    assert.equal(ids.tasks, 2);
    assert.match(
      submitted.stderr,
      /sized to the cluster: partition debug has 2 node\(s\), 2 CPU\(s\), room for 2 task\(s\) of 1 CPU\(s\) at once: 2 task\(s\) of up to 2 partition\(s\)/,
    );
    const dependency = await cluster?.command('scontrol', ['-o', 'show', 'job', ids.stepJobId]);
    assert.match(dependency ?? '', new RegExp(`Dependency=afterany:${ids.arrayJobId}`));
    let status = '';
    for (let i = 0; i < 600 && !status.includes('summary.json written'); i++) {
      status = (await cli(['slurm', 'status', spec.output])).stdout;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(status, /partitions: 4\/4 have a record/);
    assert.match(status, new RegExp(`array ${ids.arrayJobId}: 2 COMPLETED`));
    // Each record says where it ran: the array, its task and the node (both nodes took one task).
    const where = await Promise.all(
      ['1', '2', '3', '4'].map(async (id) => (await record(spec.output, id)).worker.slurm),
    );
    assert.deepEqual(
      where.map((w) => [w?.job_id, w?.array_task_id]),
      [
        [ids.arrayJobId, 0],
        [ids.arrayJobId, 0],
        [ids.arrayJobId, 1],
        [ids.arrayJobId, 1],
      ],
    );
    assert.deepEqual(new Set(where.map((w) => w?.node)), new Set(cluster?.nodes));
    assert.match(status, new RegExp(`step after round 1: job ${ids.stepJobId}: (COMPLETED|COMPLETING)`));
    assert.doesNotMatch(status, /round 2/, 'nothing to retry: one round');
    const summary = JSON.parse(await readFile(path.join(spec.output, 'summary.json'), 'utf8')) as JobSummary;
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.run.engine, 'slurm');
    assert.equal(summary.partitions.completed, 4);
    assert.ok(summary.metrics, 'the label gave metrics');
    // The summary counts array tasks, and says which node ran how many partitions.
    assert.equal(summary.run.concurrency, 2);
    assert.deepEqual(summary.run.nodes, Object.fromEntries((cluster?.nodes ?? []).map((n) => [n, 2])));
    assertSamePredictions(await allPredictions(spec.output), await referencePredictions(await tinyDemo()));
    const byId = await cli(['slurm', 'status', ids.arrayJobId]);
    assert.match(byId.stdout, /2 COMPLETED/);
  },
);

test('--dry-run prints the batch script and submits and writes nothing', { skip }, async () => {
  const spec = await job();
  const out = await cli([
    'slurm',
    'run',
    ...(await jobArgs(spec)),
    '--dry-run',
    '--partition',
    'debug',
    '--time',
    '10:00',
    '--mem',
    '3G',
    '--cpus-per-task',
    '2',
    '--throttle',
    '2',
    '--setup',
    'module load nodejs/20',
    '--sbatch-arg=--constraint=fast',
  ]);
  assert.equal(out.code, 0, out.stderr);
  const script = out.stdout;
  assert.match(script, /^# PREVIEW printed by `cai slurm run --dry-run`/m, 'says it is a preview');
  for (const line of [
    '#!/bin/bash',
    '#SBATCH --array=0-1%2',
    '#SBATCH --partition=debug',
    '#SBATCH --time=10:00',
    '#SBATCH --mem=3G',
    '#SBATCH --cpus-per-task=2',
    '#SBATCH --constraint=fast',
    `#SBATCH --output=${spec.output}/slurm/logs/%A_%a.out`,
    'module load nodejs/20',
  ])
    assert.ok(script.split('\n').includes(line), `${line} in\n${script}`);
  assert.match(
    script,
    new RegExp(`slurm task ${spec.output}/slurm/round-1/tasks.json "\\$SLURM_ARRAY_TASK_ID"`),
  );
  await run('bash', ['-n', '-c', script]);
  await assert.rejects(stat(path.join(spec.output, 'job.json')), 'nothing written');
  assert.equal((await cluster?.command('squeue', ['-h']))?.trim(), '', 'nothing submitted');
});

test(
  'clear errors before anything is submitted: a partition the cluster rejects, no sbatch on PATH',
  { skip },
  async () => {
    const spec = await job();
    const rejected = await cli(['slurm', 'run', ...(await jobArgs(spec)), '--partition', 'nosuch', '-q']);
    assert.equal(rejected.code, 2, 'a setup error, before any work: exit 2');
    assert.match(rejected.stderr, /refused the job array/);
    assert.match(rejected.stderr, /invalid partition/i, 'sbatch’s own message');
    assert.equal((await cluster?.command('squeue', ['-h']))?.trim(), '');
    // A PATH with node and nothing else, like a machine without Slurm.
    const bin = path.join(scratch, 'bin-without-slurm');
    await mkdir(bin);
    await symlink(process.execPath, path.join(bin, 'node'));
    const noSlurm = await run(
      process.execPath,
      [CLI, 'slurm', 'run', ...(await jobArgs(await job())), '-q'],
      {
        env: { ...process.env, PATH: bin },
      },
    ).catch((err: { stderr: string }) => err);
    assert.match((noSlurm as { stderr: string }).stderr, /not on PATH: run this on a login node/);
  },
);

// Every file of a folder with its size and contents' mtime: what "left as it was" compares.
async function filesOf(folder: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    const st = await stat(p);
    out.push(`${path.relative(folder, p)} ${st.size} ${st.mtimeMs}`);
  }
  return out.sort();
}

test(
  '--detach refused by sbatch or without Slurm writes nothing (exit 2), and leaves an earlier run as it was',
  { skip },
  async () => {
    // An output folder that does not exist yet (the test jobs' outputs are made empty beforehand).
    const fresh = await job({ output: path.join(scratch, `fresh-${Math.random().toString(36).slice(2)}`) });
    const refused = await cli([
      'slurm',
      'run',
      ...(await jobArgs(fresh)),
      '--detach',
      '--partition',
      'nosuch',
    ]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /refused the job array.*invalid partition/is);
    await assert.rejects(stat(fresh.output), 'no output folder: not even job.json, plan.json or slurm/');
    // An output holding an earlier (local) run with two partitions left: every byte stays.
    const earlier = await job({ engine: 'local', slurm: undefined });
    assert.equal((await runJob(earlier, { retryBaseMs: 10 })).status, 'succeeded');
    for (const id of ['2', '3']) await rm(path.join(earlier.output, 'results', `${id}.json`));
    const before = await filesOf(earlier.output);
    const again = await cli([
      'slurm',
      'run',
      ...(await jobArgs(earlier)),
      '--detach',
      '--partition',
      'nosuch',
    ]);
    assert.equal(again.code, 2, again.stderr);
    assert.deepEqual(await filesOf(earlier.output), before);
    assert.equal((await cluster?.command('squeue', ['-h']))?.trim(), '', 'nothing submitted');
    // No Slurm on PATH: refused before anything, and the folder the lock would have made is gone.
    const bin = path.join(scratch, 'bin-without-slurm-detach');
    await mkdir(bin);
    await symlink(process.execPath, path.join(bin, 'node'));
    const none = await job({ output: path.join(scratch, `none-${Math.random().toString(36).slice(2)}`) });
    const noSlurm = await run(process.execPath, [CLI, 'slurm', 'run', ...(await jobArgs(none)), '--detach'], {
      env: { ...process.env, PATH: bin },
    }).catch((err: { code: number; stderr: string }) => err);
    assert.equal((noSlurm as { code: number }).code, 2);
    assert.match((noSlurm as { stderr: string }).stderr, /not on PATH: run this on a login node/);
    await assert.rejects(stat(none.output), 'no output folder');
  },
);

test(
  'once the error budget is spent, array tasks not started are cancelled and their partitions skipped',
  { skip },
  async () => {
    const { data } = await tinyDemo();
    const input = await mkdtemp(path.join(os.tmpdir(), 'cai-bad-'));
    temps.push(input);
    for (const f of await readdir(data)) await copyFile(path.join(data, f), path.join(input, f));
    await truncate(path.join(input, '1.pt'), 5000);
    // One task at a time: partition 1's failure spends the budget while the other three wait.
    const spec = await job({ input, ...slurm({ throttle: 1, partitionsPerTask: 1, setup: ['sleep 1'] }) });
    const summary = await runJob(spec, { retryBaseMs: 10 });
    assert.equal(summary.status, 'failed');
    assert.equal(summary.failures.length, 1);
    assert.equal(summary.failures[0].error.code, 'E_CORRUPT');
    assert.ok(summary.partitions.not_started >= 2, JSON.stringify(summary.partitions));
    const { rounds } = await state(spec.output);
    assert.equal(rounds.length, 1, 'nothing resubmitted');
    const states = await arrayStates(rounds[0].jobId, rounds[0].tasks);
    assert.equal(states.get(0)?.state, 'COMPLETED');
    const cancelled = [1, 2, 3].filter((i) => states.get(i)?.state === 'CANCELLED');
    assert.ok(cancelled.length >= 2, JSON.stringify([...states]));
  },
);

test(
  'a task requeued mid-run (preemption) skips the partitions it already finished: no prediction twice',
  { skip },
  async () => {
    const rounds: Round[] = [];
    registerEngine('slurm', async () => slurmEngine({ onSubmit: (r) => rounds.push(r) }));
    // One task runs all four partitions; it is requeued once the first has its record.
    const spec = await job(slurm({ partitionsPerTask: 4, setup: ['sleep 1'] }));
    let requeued = false;
    const retries: string[] = [];
    const first = path.join(spec.output, 'results', '1.json');
    const watcher = setInterval(() => {
      if (requeued || !rounds[0]) return;
      void stat(first).then(
        async () => {
          if (requeued) return;
          requeued = true;
          const task = `${rounds[0].jobId}_0`;
          await cluster?.command('scontrol', ['requeue', task]);
          // Slurm holds a requeued job back (about two minutes) before it may start again: once it is
          // pending again, it is let go at once.
          for (let i = 0; i < 300; i++) {
            const st = await cluster?.command('squeue', ['-h', '-j', task, '-o', '%T']).catch(() => '');
            const moved =
              st?.trim() === 'PENDING' &&
              (await cluster?.command('scontrol', ['update', `JobId=${task}`, 'StartTime=now']).then(
                () => true,
                () => false,
              ));
            if (moved) break;
            await new Promise((r) => setTimeout(r, 100));
          }
        },
        () => undefined,
      );
    }, 50);
    let summary: JobSummary;
    try {
      summary = await runJob(spec, {
        retryBaseMs: 10,
        onEvent: (e) => e.type === 'retry' && retries.push(e.error.message),
      });
    } finally {
      clearInterval(watcher);
      registerEngine('slurm', async () => slurmEngine());
    }
    assert.ok(requeued);
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.failures));
    assert.deepEqual(retries, [], 'the requeue is not taken for an end');
    assert.equal(summary.run.retries, 0);
    assert.equal((await state(spec.output)).rounds.length, 1, 'nothing resubmitted');
    const logFile = taskLog(rounds[0], 0);
    const log = await readFile(logFile, 'utf8');
    assert.match(
      log,
      /partition 1: already has its record \(written by an earlier run of this task, requeued, or by another array\); skipped/,
    );
    // The engine's requeue signal, as this Slurm writes it: one notice, one restart.
    assert.equal(await requeueNotices(logFile), 1, log);
    assert.equal((await arrayStates(rounds[0].jobId, 1)).get(0)?.restarts, 1);
    assertSamePredictions(await allPredictions(spec.output), await referencePredictions(await tinyDemo()));
  },
);

test(
  'a task killed for a requeue the controller has not processed yet is not taken for ended: no retry',
  { skip },
  async () => {
    const rounds: Round[] = [];
    const events: EngineEvent[] = [];
    registerEngine('slurm', async () => slurmEngine({ onSubmit: (r) => rounds.push(r) }));
    // Task 0's first run is killed for a requeue: slurmstepd's notice lands in its log and the run ends,
    // but the controller (busy, as under load) requeues it only seconds later, longer than the
    // engine's grace for an end. The requeued run then does the partition.
    const marker = path.join(scratch, `requeue-late-${Math.random().toString(36).slice(2)}`);
    const notice =
      'echo "slurmstepd-$(hostname -s): error: *** JOB $SLURM_JOB_ID ON $(hostname -s) CANCELLED AT $(date +%FT%T) DUE TO JOB REQUEUE ***"';
    const spec = await job(slurm({ setup: [once(marker, 0, `${notice}; exit 1`)] }));
    let requeued = false;
    let busy = false;
    let endedAt = 0;
    const watcher = setInterval(() => {
      if (requeued || busy || !rounds[0] || !cluster) return;
      busy = true;
      const task = `${rounds[0].jobId}_0`;
      void (async () => {
        const st = await cluster?.command('scontrol', ['-o', 'show', 'job', task]).catch(() => '');
        if (!/JobState=FAILED/.test(st ?? '')) return;
        endedAt ||= Date.now();
        if (Date.now() - endedAt < 5000) return;
        requeued = true;
        await cluster?.command('scontrol', ['requeue', task]);
        // A requeued job is held back (about two minutes) before it may start again: let it go now.
        for (let i = 0; i < 100; i++) {
          const moved = await cluster?.command('scontrol', ['update', `JobId=${task}`, 'StartTime=now']).then(
            () => true,
            () => false,
          );
          if (moved) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      })().finally(() => (busy = false));
    }, 100);
    let summary: JobSummary;
    try {
      summary = await runJob(spec, { retryBaseMs: 10, onEvent: (e) => events.push(e) });
    } finally {
      clearInterval(watcher);
      registerEngine('slurm', async () => slurmEngine());
    }
    assert.ok(requeued, 'the test requeued the task');
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.failures));
    assert.deepEqual(
      events.filter((e) => e.type === 'retry'),
      [],
      'the requeued task’s partition is not retried',
    );
    assert.equal(summary.run.retries, 0);
    assert.equal(rounds.length, 1, 'nothing resubmitted');
    assert.equal((await record(spec.output, '1')).attempt, 1, 'settled by the requeued run');
    assertSamePredictions(await allPredictions(spec.output), await referencePredictions(await tinyDemo()));
  },
);

// Submits a detached run through the CLI; returns the ids it printed.
async function detach(
  spec: JobSpec,
  flags: string[] = [],
): Promise<{ arrayJobId: string; stepJobId: string }> {
  const submitted = await cli(['slurm', 'run', ...(await jobArgs(spec)), '--detach', '--json', ...flags]);
  assert.equal(submitted.code, 0, submitted.stderr);
  return JSON.parse(submitted.stdout) as { arrayJobId: string; stepJobId: string };
}

// Follows `cai slurm status` until the chain has written its summary.
async function untilSummarized(output: string): Promise<{ status: string; summary: JobSummary }> {
  let status = '';
  for (let i = 0; i < 600 && !status.includes('summary.json written'); i++) {
    status = (await cli(['slurm', 'status', output])).stdout;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(status, /summary\.json written/, status);
  const summary = JSON.parse(await readFile(path.join(output, 'summary.json'), 'utf8')) as JobSummary;
  return { status, summary };
}

test(
  '--detach: a user’s scancel of an array element ends the chain as cancelled, with no round 2',
  { skip },
  async () => {
    // Every task waits 2 s in its setup, so element 1 is surely still running when it is cancelled.
    const spec = await job();
    const ids = await detach(spec, ['--partitions-per-task', '1', '--setup', 'sleep 2']);
    await untilRunning(ids.arrayJobId, 1);
    await cluster?.command('scancel', [`${ids.arrayJobId}_1`]);
    const { status, summary } = await untilSummarized(spec.output);
    assert.equal(summary.status, 'cancelled', JSON.stringify(summary));
    assert.match(summary.cancelled ?? '', new RegExp(`array task ${ids.arrayJobId}_1 was cancelled`));
    assert.equal(summary.run.retries, 0);
    assert.equal(summary.partitions.failed, 0);
    assert.equal(summary.partitions.completed, 3);
    const { rounds, detached } = await state(spec.output);
    assert.equal(rounds.length, 1, 'nothing resubmitted');
    assert.deepEqual(
      detached?.steps.map((s) => s.round),
      [1],
    );
    assert.match(status, new RegExp(`round 1: array ${ids.arrayJobId}: 3 COMPLETED, 1 CANCELLED`));
    assert.doesNotMatch(status, /round 2/);
  },
);

test('--detach does not retry a corrupt partition; the budget decides the job', { skip }, async () => {
  const { data } = await tinyDemo();
  const input = await mkdtemp(path.join(os.tmpdir(), 'cai-bad-'));
  temps.push(input);
  for (const f of await readdir(data)) await copyFile(path.join(data, f), path.join(input, f));
  await truncate(path.join(input, '1.pt'), 5000);
  const spec = await job({ input, maxAttempts: 3 });
  await detach(spec);
  const { status, summary } = await untilSummarized(spec.output);
  assert.equal(summary.status, 'failed', 'no failure tolerated by default');
  assert.equal(summary.run.retries, 0);
  assert.equal(summary.failures.length, 1);
  assert.equal(summary.failures[0].partition, '1');
  // The full path, as records give theirs (docs/output-format.md).
  assert.equal(summary.failures[0].data_path, path.join(input, '1.pt'));
  assert.equal((await record(spec.output, '2')).data_path, path.join(input, '2.pt'));
  assert.equal(summary.failures[0].error.code, 'E_CORRUPT');
  assert.equal(summary.failures[0].attempts, 1);
  assert.equal(summary.partitions.completed, 3);
  assert.equal((await state(spec.output)).rounds.length, 1, 'nothing resubmitted');
  assert.doesNotMatch(status, /round 2/);
  // The step writes summary.json, then exits 1: the status may still see it RUNNING in between.
  let ended = status;
  for (let i = 0; i < 80 && /step after round 1: job \d+: RUNNING/.test(ended); i++) {
    await new Promise((r) => setTimeout(r, 250));
    ended = (await cli(['slurm', 'status', spec.output])).stdout;
  }
  assert.match(ended, /step after round 1: job \d+: (FAILED|COMPLETING)/, 'the step says the job failed');
});

// How many array tasks loaded the model (each task's log says so once per run), across an output's logs.
async function modelLoads(output: string): Promise<number> {
  const dir = path.join(output, 'slurm', 'logs');
  let n = 0;
  for (const f of await readdir(dir))
    n += ((await readFile(path.join(dir, f), 'utf8')).match(/model loaded in/g) ?? []).length;
  return n;
}

// A watched run killed (kill -9) while its array is queued and running.
async function killedWatcher(spec: JobSpec): Promise<string> {
  const child = startCli([
    'slurm',
    'run',
    ...(await jobArgs(spec)),
    '--partitions-per-task',
    '1',
    '--setup',
    'sleep 2',
    '--poll-seconds',
    '0.2',
    '-q',
  ]);
  const jobId = await firstArray(spec.output);
  await untilRunning(jobId, 0);
  // While it runs, a --detach into the same output is refused: the watched run holds the output.
  const detached = await cli(['slurm', 'run', ...(await jobArgs(spec)), '--detach']);
  assert.equal(detached.code, 2, detached.stderr);
  assert.match(detached.stderr, /another run \(pid \d+ on/);
  process.kill(child.pid, 'SIGKILL');
  assert.equal((await child.done).signal, 'SIGKILL');
  return jobId;
}

test(
  'a watcher killed mid-run: the rerun adopts its live array; no partition is computed twice',
  { skip },
  async () => {
    const spec = await job();
    const jobId = await killedWatcher(spec);
    // Another job (another identity: the predictions' format) into the same output is refused before
    // anything is written, naming the field; nothing of the output changes.
    const before = await filesOf(spec.output);
    const other = await cli(['slurm', 'run', ...(await jobArgs(spec)), '--predictions-format', 'csv', '-q']);
    assert.equal(other.code, 2, other.stderr);
    assert.match(
      other.stderr,
      new RegExp(
        `Slurm arrays of another job are still running into this output: ${jobId} \\(round 1: predictionsFormat: "parquet" -> "csv"\\)|this output holds another job: predictionsFormat: "parquet" -> "csv"`,
      ),
    );
    // The killed watcher's lock is taken over (its process is dead) and released: not compared.
    const kept = (files: string[]) =>
      files.filter((f) => !/^(cai\.lock|results\/|predictions\/|slurm\/logs\/)/.test(f));
    assert.deepEqual(kept(await filesOf(spec.output)), kept(before));
    // The same job with another batch size (a free field: src/job/identity.ts) adopts the live array.
    const rerun = await cli([
      'slurm',
      'run',
      ...(await jobArgs(spec)),
      '--batch-size',
      '4',
      '--poll-seconds',
      '0.2',
      '--json',
    ]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, new RegExp(`adopted array ${jobId} \\(round 1\\)`));
    assert.doesNotMatch(rerun.stderr, /submitted array/, 'nothing submitted again');
    const summary = JSON.parse(rerun.stdout) as JobSummary;
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.partitions.completed, 4);
    const { rounds } = await state(spec.output);
    assert.equal(rounds.length, 1, 'one array in all');
    for (const id of ['1', '2', '3', '4']) {
      const r = await record(spec.output, id);
      assert.equal(r.attempt, 1);
      assert.equal(r.worker.slurm?.job_id, jobId);
    }
    assert.equal(await modelLoads(spec.output), 4, 'each of the 4 array tasks ran once');
    assertSamePredictions(await allPredictions(spec.output), await referencePredictions(await tinyDemo()));
  },
);

test(
  '--detach after a killed watcher adopts its array; a watched run then follows that chain: nothing twice',
  { skip },
  async () => {
    const spec = await job();
    const jobId = await killedWatcher(spec);
    const submitted = await cli(['slurm', 'run', ...(await jobArgs(spec)), '--detach', '--json']);
    assert.equal(submitted.code, 0, submitted.stderr);
    const run = JSON.parse(submitted.stdout) as { arrayJobId?: string; stepJobId: string; adopted: string[] };
    assert.deepEqual(run.adopted, [jobId]);
    assert.equal(run.arrayJobId, undefined, 'every pending partition is in the live array: no new one');
    const step = (await cluster?.command('scontrol', ['-o', 'show', 'job', run.stepJobId])) ?? '';
    assert.match(step, new RegExp(`Dependency=afterany:${jobId}`));
    // A second --detach finds the chain live and submits nothing.
    const twice = await cli(['slurm', 'run', ...(await jobArgs(spec)), '--detach']);
    assert.equal(twice.code, 0, twice.stderr);
    assert.match(twice.stdout, /a detached run of this job is live already/);
    // A watched run follows the live chain instead of submitting.
    const watched = await cli(['slurm', 'run', ...(await jobArgs(spec)), '--poll-seconds', '0.2', '--json']);
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(
      watched.stderr,
      /a detached run of this job is live .*following it instead of submitting again/,
    );
    assert.doesNotMatch(watched.stderr, /submitted array/);
    assert.equal((JSON.parse(watched.stdout) as JobSummary).status, 'succeeded');
    const { rounds } = await state(spec.output);
    assert.equal(rounds.length, 1, 'one array in all');
    for (const id of ['1', '2', '3', '4']) assert.equal((await record(spec.output, id)).attempt, 1);
    assert.equal(await modelLoads(spec.output), 4);
    assertSamePredictions(await allPredictions(spec.output), await referencePredictions(await tinyDemo()));
  },
);

test(
  'a failed task’s partitions are retried together as the first round grouped them; each counts its own tries',
  { skip },
  async () => {
    const rounds: Round[] = [];
    registerEngine('slurm', async () => slurmEngine({ onSubmit: (r) => rounds.push(r) }));
    // Two partitions a task; task 0 (partitions 1 and 2) crashes before running anything, every time.
    const spec = await job({
      maxAttempts: 2,
      ...slurm({ partitionsPerTask: 2, setup: ['if [ "$SLURM_ARRAY_TASK_ID" = 0 ]; then exit 3; fi'] }),
    });
    let summary: JobSummary;
    try {
      summary = await runJob(spec, { retryBaseMs: 200 });
    } finally {
      registerEngine('slurm', async () => slurmEngine());
    }
    assert.equal(summary.status, 'failed');
    assert.equal(rounds.length, 2, 'one resubmission for both');
    // In either order: each retry's backoff is drawn at random (full jitter), and the later one is
    // queued first.
    assert.deepEqual(
      rounds[1].attempts.map((t) => t.map((a) => [a.partition.id, a.attempt]).sort()),
      [
        [
          ['1', 2],
          ['2', 2],
        ],
      ],
      'one task of two partitions, as in round 1',
    );
    assert.deepEqual(summary.failures.map((f) => [f.partition, f.attempts, f.error.code]).sort(), [
      ['1', 2, 'E_WORKER_CRASH'],
      ['2', 2, 'E_WORKER_CRASH'],
    ]);
    assert.match(
      summary.failures[0].error.message,
      new RegExp(`array task ${rounds[1].jobId}_0 ended FAILED`),
    );
    assert.equal(summary.partitions.completed, 2);
  },
);

test(
  'a controller outage: the watch keeps trying for its timeout, then leaves the array running (exit 3); the rerun adopts it',
  { skip },
  async () => {
    const notes: string[] = [];
    const rounds: Round[] = [];
    registerEngine('slurm', async () =>
      slurmEngine({ onSubmit: (r) => rounds.push(r), onNote: (t) => notes.push(t) }),
    );
    const spec = await job(slurm({ setup: ['sleep 3'], controllerTimeoutSeconds: 3 }));
    let stopped = false;
    const watcher = setInterval(() => {
      if (stopped || !rounds[0]) return;
      stopped = true;
      void untilRunning(rounds[0].jobId, 0).then(() => cluster?.stopController());
    }, 100);
    let summary: JobSummary;
    try {
      const t0 = Date.now();
      await assert.rejects(runJob(spec, { retryBaseMs: 10 }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_UNWATCHED');
        assert.match(err.message, new RegExp(`array\\(s\\) ${rounds[0].jobId} run on unwatched`));
        assert.match(err.message, /Run the same command again .*adopts them/);
        return true;
      });
      assert.ok(Date.now() - t0 >= 3000);
      assert.ok(
        notes.some((n) => /the Slurm controller does not answer .*still watching for up to 3 s/.test(n)),
        notes.join('\n'),
      );
      await cluster?.startController();
      notes.length = 0;
      summary = await runJob(spec, { retryBaseMs: 10 });
    } finally {
      clearInterval(watcher);
      registerEngine('slurm', async () => slurmEngine());
      await cluster?.startController();
    }
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.failures));
    assert.ok(
      notes.some((n) => n.startsWith(`adopted array ${rounds[0].jobId} (round 1)`)),
      notes.join('\n'),
    );
    assert.equal(rounds.length, 1, 'nothing submitted again');
    for (const id of ['1', '2', '3', '4']) assert.equal((await record(spec.output, id)).attempt, 1);
    assert.equal(await modelLoads(spec.output), 4);
    assertSamePredictions(await allPredictions(spec.output), await referencePredictions(await tinyDemo()));
  },
);

test(
  'once the budget is spent, a retry still running is waited for and counted as its own try',
  { skip },
  async () => {
    const { data } = await tinyDemo();
    const input = await mkdtemp(path.join(os.tmpdir(), 'cai-bad-'));
    temps.push(input);
    for (const f of ['1.pt', '2.pt']) await copyFile(path.join(data, f), path.join(input, f));
    await truncate(path.join(input, '1.pt'), 5000);
    const rounds: Round[] = [];
    registerEngine('slurm', async () => slurmEngine({ onSubmit: (r) => rounds.push(r) }));
    // Round 1 (2 tasks): partition 2's task crashes at once; partition 1's, corrupt, fails 8 s later and
    // spends the budget while partition 2's retry (round 2, one task, submitted ~4 s in) is still
    // running; that try then crashes too.
    const spec = await job({
      input,
      maxAttempts: 3,
      ...slurm({
        setup: [
          'if [ "$SLURM_ARRAY_TASK_COUNT" = 1 ]; then sleep 10; exit 3; fi',
          'if [ "$SLURM_ARRAY_TASK_ID" = 1 ]; then exit 3; fi',
          'sleep 8',
        ],
      }),
    });
    let summary: JobSummary;
    try {
      summary = await runJob(spec, { retryBaseMs: 10 });
    } finally {
      registerEngine('slurm', async () => slurmEngine());
    }
    assert.equal(summary.status, 'failed');
    assert.equal(rounds.length, 2, 'no third try once the budget is spent');
    const byId = Object.fromEntries(summary.failures.map((f) => [f.partition, f]));
    assert.equal(byId['1']?.error.code, 'E_CORRUPT');
    assert.equal(byId['1']?.attempts, 1);
    assert.equal(byId['2']?.attempts, 2, 'its second try ran to its end and is counted');
    assert.match(byId['2']?.error.message ?? '', new RegExp(`array task ${rounds[1].jobId}_0 ended FAILED`));
    assert.equal(summary.run.retries, 1);
  },
);
