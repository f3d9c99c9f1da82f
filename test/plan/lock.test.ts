// The output lock is created atomically: of two runs that both checked and saw no lock, exactly one
// holds it. On a local disk (a hard link) and on an S3 endpoint that honours `If-None-Match: *` (S3
// itself; here the in-memory test endpoint, because s3rver 3.7, the only S3 server these tests can run,
// ignores the header on PUT), the later run is refused however late its write; on s3rver the store
// finds out that conditional writes are ignored and the lock falls back to write, settle, read back.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import '../../src/storage/register.js';
import { registerAwsCommand } from '../../src/cli/commands/aws.js';
import type { AwsApi, Deployment } from '../../src/engines/aws/cloud.js';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { acquireLock, LOCK_KEY } from '../../src/run/lock.js';
import { DelegatingStore } from '../../src/storage/delegating-store.js';
import { FileStore } from '../../src/storage/file-store.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { CreateResult, Store } from '../../src/storage/store.js';
import { startMemoryS3, type MemoryS3 } from '../helpers/memory-s3.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

let memory: MemoryS3;
let s3rver: S3TestServer;
const stores: S3Store[] = [];
const temps: string[] = [];

before(async () => {
  memory = await startMemoryS3(['locks']);
  s3rver = await startS3Server(['locks']);
});
after(async () => {
  for (const s of stores) s.close();
  await memory?.stop();
  await s3rver?.stop();
  await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
});

function s3(endpoint: string, prefix: string): S3Store {
  const store = new S3Store(`s3://locks/${prefix}`, { s3Endpoint: endpoint });
  stores.push(store);
  return store;
}

/** A store whose writes of the lock wait until `open` is called; `reached` resolves when one waits. */
class Gated extends DelegatingStore {
  private release = () => {};
  private readonly gate = new Promise<void>((r) => (this.release = r));
  private arrived = () => {};
  readonly reached = new Promise<void>((r) => (this.arrived = r));
  open(): void {
    this.release();
  }
  override async put(key: string, body: Uint8Array | string): Promise<void> {
    if (key === LOCK_KEY) {
      this.arrived();
      await this.gate;
    }
    return super.put(key, body);
  }
  override async putIfAbsent(key: string, body: Uint8Array | string): Promise<CreateResult> {
    this.arrived();
    await this.gate;
    return super.putIfAbsent(key, body);
  }
}

/** Run B checks first and finds no lock; run A then takes it; only then does B write. */
async function staggered(a: Store, b: Store): Promise<void> {
  const gated = new Gated(b);
  const late = acquireLock(gated).then(
    (lock) => ({ lock }),
    (error: unknown) => ({ error }),
  );
  await gated.reached;
  const first = await acquireLock(a);
  gated.open();
  const second = await late;
  try {
    assert.ok('error' in second, 'the later run must not hold the lock too');
    assert.ok(second.error instanceof CaiError, String(second.error));
    assert.equal(second.error.code, ErrorCodes.locked);
    assert.equal(
      JSON.parse(new TextDecoder().decode(await a.get(LOCK_KEY))).token,
      first.holder.token,
      'the first run still holds its lock',
    );
  } finally {
    await first.release();
    if ('lock' in second) await second.lock.release();
  }
}

test('local disk: a run that checked before another took the lock is refused when it writes', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-lock-'));
  temps.push(dir);
  await staggered(new FileStore(dir), new FileStore(dir));
  assert.equal((await new FileStore(dir).head(LOCK_KEY)) === undefined, true, 'released');
});

test('S3 with conditional writes: the late run is refused; of 8 started together exactly one holds it', async () => {
  const store = s3(memory.endpoint, 'staggered');
  assert.equal(await store.putIfAbsent('probe', 'x'), 'created');
  assert.equal(await store.putIfAbsent('probe', 'y'), 'exists');
  await staggered(store, s3(memory.endpoint, 'staggered'));
  const racers = Array.from({ length: 8 }, () => s3(memory.endpoint, 'together'));
  const results = await Promise.allSettled(racers.map((r) => acquireLock(r)));
  const held = results.filter((r) => r.status === 'fulfilled');
  assert.equal(held.length, 1, JSON.stringify(results.map((r) => r.status)));
  for (const r of results)
    if (r.status === 'rejected') assert.equal((r.reason as CaiError).code, ErrorCodes.locked);
  await (held[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
});

test('s3rver ignores If-None-Match on PUT: found out, and two runs started together still get one lock', async () => {
  const store = s3(s3rver.endpoint, 'fallback');
  assert.equal(await store.putIfAbsent('probe', 'x'), 'unconditional');
  const results = await Promise.allSettled([
    acquireLock(s3(s3rver.endpoint, 'fallback')),
    acquireLock(s3(s3rver.endpoint, 'fallback')),
  ]);
  const held = results.filter((r) => r.status === 'fulfilled');
  assert.equal(held.length, 1, JSON.stringify(results.map((r) => r.status)));
  await (held[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
});

test('`cai aws run` takes the same lock: with a live run holding the output, no execution starts', async () => {
  const previous = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = memory.endpoint;
  const held = await acquireLock(s3(memory.endpoint, 'aws-out'));
  const deployment: Deployment = {
    stackName: 'Cai',
    region: 'us-east-1',
    stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:Cai',
    data: 's3://locks/data',
    output: 's3://locks/aws-out',
    model: 's3://locks/model.onnx',
    memoryMb: 1024,
  };
  let started = 0;
  const api: AwsApi = {
    region: 'us-east-1',
    describeStack: () => Promise.resolve(deployment),
    startExecution: () => {
      started++;
      return Promise.reject(new Error('no execution may start while another run holds the output'));
    },
    describeExecution: () => Promise.reject(new Error('not started')),
    mapRun: () => Promise.resolve(undefined),
    deleteStack: () => Promise.resolve(),
  };
  const program = new Command().exitOverride();
  registerAwsCommand(program, { api: () => Promise.resolve(api), out: () => {}, err: () => {} });
  try {
    const err = await program
      .parseAsync(['node', 'cai', 'aws', 'run', '--output', 's3://locks/aws-out', '--quiet'])
      .catch((e: unknown) => e);
    assert.ok(err instanceof CaiError, String(err));
    assert.equal(err.code, ErrorCodes.locked, err.message);
    assert.equal(started, 0);
  } finally {
    await held.release();
    if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
    else process.env.AWS_ENDPOINT_URL_S3 = previous;
  }
});
