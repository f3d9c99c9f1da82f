// An S3 endpoint that dies after planning: a 1,000-partition job must stop in bounded time with one
// error naming the cause after a bounded number of attempts, not try every partition with its own
// retries (minutes).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runJob } from '../../src/run/run.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { makeDemo } from '../../src/demo/demo.js';
import type { JobSpec } from '../../src/job/spec.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { putAll } from '../helpers/s3-upload.js';
import { runCli } from '../helpers/s3-cli.js';
import { demoJobFlags } from '../helpers/s3-demo.js';
import { access } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

const PARTITIONS = 1000;
let s3: S3TestServer;
let out: string;
let demoDir: string;
let demoJob: JobSpec;

/** A TCP forwarder to the S3 server that can be cut at once: after `cut()` connections are refused. */
async function cuttable(target: number): Promise<{ endpoint: string; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const cut = () => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cut,
    close: () =>
      new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
  };
}

before(async () => {
  demoDir = await mkdtemp(path.join(os.tmpdir(), 'cai-dead-demo-'));
  s3 = await startS3Server(['dead']);
  const store = new S3Store('s3://dead/parts', { s3Endpoint: s3.endpoint });
  // Real partitions of two galaxies each: preflight reads the first one before the plan is written,
  // and the endpoint is cut only after that.
  const tiny = await makeDemo({ dir: demoDir, partitions: 1, itemsPerPartition: 2 });
  const pt = await readFile(path.join(tiny.data, '1.pt'));
  await putAll(
    store,
    Array.from({ length: PARTITIONS }, (_, i) => [`${i + 1}.pt`, pt] as const),
    16,
  );
  store.close();
  out = await mkdtemp(path.join(os.tmpdir(), 'cai-dead-'));
  demoJob = tiny.job;
});

after(async () => {
  await s3?.stop();
  if (out) await rm(out, { recursive: true, force: true });
  if (demoDir) await rm(demoDir, { recursive: true, force: true });
});

test(`a dead S3 endpoint stops a ${PARTITIONS}-partition job after a few attempts with one clear error`, async (t) => {
  const proxy = await cuttable(s3.port);
  const t0 = Date.now();
  let started = 0;
  try {
    await assert.rejects(
      runJob(
        {
          ...demoJob,
          input: 's3://dead/parts',
          s3Endpoint: proxy.endpoint,
          output: out,
          concurrency: 2,
          threads: 1,
          maxAttempts: 3,
          toleratedFailurePercentage: 100,
        },
        {
          retryBaseMs: 10,
          onPlan: () => proxy.cut(),
          onEvent: (e) => {
            if (e.type === 'start') started++;
          },
        },
      ),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_UNREACHABLE', err.message);
        assert.match(err.message, /in a row failed with/);
        assert.match(err.message, /run the same job again to resume/);
        return true;
      },
    );
  } finally {
    await proxy.close();
  }
  // Bounded by attempts, not by a clock: the breaker trips after 6 failures in a row, and the two
  // workers hold at most one more partition each.
  assert.ok(started <= 8, `${started} attempts started before the job stopped`);
  t.diagnostic(`stopped after ${started} attempts, ${(Date.now() - t0) / 1000} s`);
});

test('`cai run` whose S3 endpoint dies mid-run exits 1 (the job ran and failed) with one clear message', async () => {
  const proxy = await cuttable(s3.port);
  const output = await mkdtemp(path.join(os.tmpdir(), 'cai-dead-cli-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: output };
    delete env.AWS_ENDPOINT_URL_S3;
    delete env.AWS_ENDPOINT_URL;
    const out = path.join(output, 'out');
    const run = runCli(
      [
        'run',
        '--input',
        's3://dead/parts',
        '--model',
        demoJob.model,
        '--output',
        out,
        '--s3-endpoint',
        proxy.endpoint,
        '--concurrency',
        '2',
        '--threads',
        '1',
        '--max-attempts',
        '3',
        ...demoJobFlags(demoJob),
        '--quiet',
      ],
      { env, timeoutMs: 120_000 },
    );
    // The plan is written before any work: cut the endpoint then, as a network that goes down mid-run.
    let cutDone = false;
    void (async () => {
      for (let i = 0; i < 1200 && !cutDone; i++) {
        if (
          await access(path.join(out, 'plan.json')).then(
            () => true,
            () => false,
          )
        ) {
          proxy.cut();
          cutDone = true;
        }
        await sleep(50);
      }
    })();
    const r = await run;
    cutDone = true;
    assert.equal(r.code, 1, `exit ${String(r.code)}:\n${r.stderr}`);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0], /unreachable/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  } finally {
    await proxy.close();
    await rm(output, { recursive: true, force: true });
  }
});
