// The shared map driver with engines that run in this process: the policy's decisions (retry order,
// permanent errors, budget, circuit breaker) observed exactly, with no worker processes in the way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMap, type Attempt, type AttemptResult, type MapEngine } from '../../src/engines/map.js';
import { budgetExceeded, toleratedFailures } from '../../src/job/budget.js';
import { CircuitBreaker } from '../../src/engines/policy.js';
import { parseJobSpec, resolveJob, type ResolvedJob } from '../../src/job/spec.js';
import type { PlannedPartition } from '../../src/plan/plan.js';
import type { PartitionRecord } from '../../src/worker/record.js';

function plan(n: number): PlannedPartition[] {
  return Array.from({ length: n }, (_, i) => ({ id: String(i + 1), key: `${i + 1}.pt`, bytes: 1 }));
}

function job(fields: Record<string, unknown> = {}): ResolvedJob {
  const spec = parseJobSpec({ input: 'in', model: 'm.onnx', output: 'out', ...fields });
  return resolveJob(spec, { partitions: 1, cores: 1 });
}

const record = (a: Attempt) =>
  ({ status: 'ok', partition: a.partition.id, attempt: a.attempt }) as PartitionRecord;

/** An engine of one slot that answers each attempt with `outcome` after 2 ms of "work" and logs what it ran. */
function inline(outcome: (a: Attempt) => AttemptResult, ran: string[] = []): MapEngine {
  return {
    name: 'inline',
    async run(control) {
      for (let a = await control.next(); a; a = await control.next()) {
        ran.push(`${a.partition.id}#${a.attempt}`);
        await new Promise((resolve) => setTimeout(resolve, 2));
        control.settle(a, outcome(a));
      }
    },
  };
}

const crash = { ok: false, error: { code: 'E_WORKER_CRASH', message: 'worker exited' } } as const;

test('a retried partition runs again before partitions not yet tried', async () => {
  const ran: string[] = [];
  const engine = inline(
    (a) => (a.partition.id === '1' && a.attempt === 1 ? crash : { ok: true, record: record(a) }),
    ran,
  );
  const result = await runMap(job({ maxAttempts: 3 }), plan(5), engine, { retryBaseMs: 0 });
  assert.equal(result.records.length, 5);
  assert.equal(result.retries, 1);
  // The backoff timer fires while partition 2 runs at the earliest; the retry must not wait for 3-5.
  assert.ok(ran.indexOf('1#2') <= 2, ran.join(' '));
});

test('a permanent error fails its partition at once; crashes are retried up to maxAttempts', async () => {
  const ran: string[] = [];
  const engine = inline((a) => {
    if (a.partition.id === '1') return { ok: false, error: { code: 'E_CORRUPT', message: 'bad bytes' } };
    if (a.partition.id === '2') return crash;
    return { ok: true, record: record(a) };
  }, ran);
  const result = await runMap(job({ maxAttempts: 3, toleratedFailurePercentage: 50 }), plan(4), engine, {
    retryBaseMs: 0,
  });
  assert.deepEqual(
    result.failures.map((f) => [f.partition, f.attempts, f.error.code]),
    [
      ['1', 1, 'E_CORRUPT'],
      ['2', 3, 'E_WORKER_CRASH'],
    ],
  );
  assert.equal(result.retries, 2);
  assert.equal(ran.filter((r) => r.startsWith('2#')).length, 3);
  assert.equal(result.records.length, 2);
});

test('once failures exceed the budget nothing new starts, and the rest is counted as skipped', async () => {
  const ran: string[] = [];
  const engine = inline(
    (a) =>
      a.partition.id === '2' || a.partition.id === '3'
        ? { ok: false, error: { code: 'E_CORRUPT', message: 'x' } }
        : { ok: true, record: record(a) },
    ran,
  );
  // 10 partitions at 10%: one failure tolerated, the second ends the map.
  const result = await runMap(job({ toleratedFailurePercentage: 10 }), plan(10), engine, { retryBaseMs: 0 });
  assert.equal(result.failures.length, 2);
  assert.deepEqual(ran, ['1#1', '2#1', '3#1']);
  assert.equal(result.skipped, 7);
});

test('a partition whose retry never ran because the budget ran out is failed with its error, not skipped', async () => {
  const ran: string[] = [];
  // Partition 1 crashes (retryable); before its retry is due, 2 and 3 fail for good and spend the budget.
  const engine = inline((a) => {
    if (a.partition.id === '1') return crash;
    if (a.partition.id === '2' || a.partition.id === '3')
      return { ok: false, error: { code: 'E_CORRUPT', message: 'x' } };
    return { ok: true, record: record(a) };
  }, ran);
  const result = await runMap(job({ maxAttempts: 3, toleratedFailurePercentage: 10 }), plan(10), engine, {
    retryBaseMs: 60_000,
  });
  assert.deepEqual(ran, ['1#1', '2#1', '3#1']);
  assert.deepEqual(result.failures.map((f) => [f.partition, f.attempts, f.error.code]).sort(), [
    ['1', 1, 'E_WORKER_CRASH'],
    ['2', 1, 'E_CORRUPT'],
    ['3', 1, 'E_CORRUPT'],
  ]);
  assert.equal(result.retries, 0, 'the retry that never ran is not counted');
  assert.equal(result.skipped, 7);
});

test('a dead endpoint trips the breaker: the map stops with one error naming the cause and what to do', async () => {
  const ran: string[] = [];
  const refused = {
    ok: false,
    error: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9 (s3://b/in/1.pt)' },
  } as const;
  const engine = inline(() => refused, ran);
  await assert.rejects(
    runMap(job({ maxAttempts: 3, toleratedFailurePercentage: 100 }), plan(1000), engine, {
      retryBaseMs: 0,
      breakerThreshold: 6,
    }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_UNREACHABLE');
      assert.match(err.message, /6 attempts in a row failed with ECONNREFUSED/);
      assert.match(err.message, /s3:\/\/b\/in\/1\.pt/);
      assert.match(err.message, /run the same job again to resume/);
      return true;
    },
  );
  assert.equal(ran.length, 6, ran.join(' '));
});

test('a success between failures resets the breaker; other errors never trip it', () => {
  const breaker = new CircuitBreaker(3);
  const refused = { code: 'ECONNREFUSED', message: 'refused' };
  assert.equal(breaker.failed(refused), false);
  assert.equal(breaker.failed(refused), false);
  breaker.succeeded();
  assert.equal(breaker.failed(refused), false);
  assert.equal(breaker.failed({ code: 'E_CORRUPT', message: 'x' }), false);
  assert.equal(breaker.failed(refused), false);
  assert.equal(breaker.failed(refused), false);
  assert.equal(breaker.failed(refused), true);
});

test('the error budget is a count of partitions, the same on every engine', () => {
  assert.equal(toleratedFailures(40, 2.5), 1);
  assert.equal(toleratedFailures(39, 2.5), 0);
  assert.equal(toleratedFailures(1000, 0), 0);
  assert.equal(toleratedFailures(7, 100), 7);
  assert.equal(toleratedFailures(3, 33.34), 1);
  assert.equal(budgetExceeded(1, 40, 2.5), false);
  assert.equal(budgetExceeded(2, 40, 2.5), true);
  assert.equal(budgetExceeded(1, 10, 0), true);
});

test('an engine that aborts (a model that cannot load) makes the map throw that error', async () => {
  const engine: MapEngine = {
    name: 'broken',
    async run(control) {
      const a = await control.next();
      if (a) control.giveBack([a]);
      control.abort(Object.assign(new Error('model.onnx: cannot load'), { code: 'E_MODEL' }));
      assert.equal(await control.next(), undefined);
    },
  };
  await assert.rejects(runMap(job(), plan(3), engine), /cannot load/);
});
