// The Lambda packages are self-contained: unzipped into a temporary folder, they run in a fresh Node
// process that cannot see the repository's node_modules, with Lambda-shaped events, against local S3.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';
import {
  buildLambdaBundles,
  LAMBDA_UNZIPPED_LIMIT,
  sharpLinuxPackages,
  type LambdaBundles,
} from '../../src/engines/aws/bundle.js';
import { handlerEnvironment } from '../../src/engines/aws/config.js';
import { parseStackParams } from '../../src/engines/aws/params.js';
import type { InferenceResult, InitializeResult } from '../../src/engines/aws/protocol.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import { parseJobSpec } from '../../src/job/spec.js';
import type { PlannedPartition } from '../../src/plan/plan.js';
import '../../src/storage/register.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { startRequestLog } from '../helpers/s3-request-log.js';
import { predictionsOf } from './compare.js';
import { DEPLOYMENT, startAwsFixture, testBundles, type AwsFixture } from './fixture.js';

const REPO = path.resolve(fileURLToPath(new URL('../../..', import.meta.url)));
// A 1,769 MB function gets one vCPU, so one onnxruntime thread, as the local baseline below uses.
const MEMORY_MB = 1769;

let fx: AwsFixture;
let bundles: LambdaBundles;
let scratch: string;

before(async () => {
  [fx, bundles] = await Promise.all([startAwsFixture(), testBundles()]);
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'cai-aws-lambda-'));
});
after(async () => {
  await fx?.s3.stop();
  if (scratch) await fs.rm(scratch, { recursive: true, force: true });
});

/** Unzips a deployment package into a fresh folder, as Lambda does into /var/task. */
async function unzipPackage(zip: string, name: string): Promise<{ dir: string; sizes: Map<string, number> }> {
  const dir = path.join(scratch, name);
  const sizes = new Map<string, number>();
  for (const [rel, data] of Object.entries(unzipSync(await fs.readFile(zip)))) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), data);
    sizes.set(rel, data.byteLength);
  }
  return { dir, sizes };
}

// What the Lambda Node.js runtime does, reduced to what matters here: load the module once, call the
// handler with each event and a context, report results and errors as JSON. It also lists the native
// libraries of onnxruntime and sharp mapped into the process, to show where they were loaded from.
const RUNNER = `
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [taskRoot, handlerName, eventsFile] = process.argv.slice(2);
const mod = await import(pathToFileURL(taskRoot + '/index.mjs').href);
const results = [];
for (const [i, event] of JSON.parse(readFileSync(eventsFile, 'utf8')).entries()) {
  const deadline = Date.now() + 900_000;
  const context = {
    awsRequestId: 'request-' + i,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
  try {
    results.push({ result: await mod[handlerName](event, context) });
  } catch (err) {
    results.push({ errorType: err.name, errorMessage: err.message });
  }
}
const native = readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .map((line) => line.trim().split(/\\s+/)[5]).filter((p) => p && /onnxruntime|sharp|vips/.test(p) && /\\.(node|so[.\\d]*)$/.test(p));
process.stdout.write(JSON.stringify({ results, native: [...new Set(native)] }));
`;

interface Invocation<T> {
  results: ({ result: T } | { errorType: string; errorMessage: string })[];
  native: string[];
  /** The process's home folder (and cwd). */
  home: string;
}

/** Runs a handler of an unzipped package in a fresh `node`, its cwd and HOME outside the repository. */
async function invokeFresh<T>(
  taskRoot: string,
  handler: string,
  events: unknown[],
  deployment: { readonly data: string; readonly output: string; readonly model: string } = DEPLOYMENT,
): Promise<Invocation<T>> {
  const cwd = await fs.mkdtemp(path.join(scratch, 'cwd-'));
  const tmp = await fs.mkdtemp(path.join(scratch, 'tmp-'));
  await fs.writeFile(path.join(cwd, 'runtime.mjs'), RUNNER);
  await fs.writeFile(path.join(cwd, 'events.json'), JSON.stringify(events));
  const params = parseStackParams({ ...deployment, memoryMb: MEMORY_MB });
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    HOME: cwd,
    TZ: 'UTC',
    // Lambda's /tmp is the function's own; here the S3 cache goes to a folder removed with the test.
    TMPDIR: tmp,
    LAMBDA_TASK_ROOT: taskRoot,
    AWS_LAMBDA_FUNCTION_NAME: `Cai-${handler}`,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(MEMORY_MB),
    AWS_REGION: 'us-east-1',
    // s3rver's credentials; no profile files, no instance metadata: nothing leaves this machine.
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(cwd, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(cwd, 'no-credentials'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...handlerEnvironment(params),
  };
  const child = spawn(process.execPath, ['runtime.mjs', taskRoot, handler, 'events.json'], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `the runtime exited ${code}: ${stderr.slice(-3000)}`);
  return { ...(JSON.parse(stdout) as Omit<Invocation<T>, 'home'>), home: cwd };
}

function ok<T>(r: Invocation<T>['results'][number]): T {
  assert.ok('result' in r, `the handler threw ${JSON.stringify(r)}`);
  return r.result;
}

/** The ELF machine of a shared object: 62 x86-64, 183 AArch64. */
async function elfMachine(file: string): Promise<number> {
  const head = Buffer.alloc(20);
  const fd = await fs.open(file, 'r');
  try {
    await fd.read(head, 0, 20, 0);
  } finally {
    await fd.close();
  }
  assert.equal(head.subarray(0, 4).toString('latin1'), '\x7fELF', file);
  return head.readUInt16LE(18);
}

test("the inference zip unpacks to the bundle and onnxruntime's Linux binaries, far under 250 MB", async (t) => {
  const { dir, sizes } = await unzipPackage(bundles.inference.zip, 'inference-size');
  const files = [...sizes.keys()];
  assert.deepEqual(files.filter((f) => !f.startsWith('node_modules/')).sort(), [
    'codec-thread.js',
    'h5-thread.js',
    'index.mjs',
    'inference-thread.js',
    'onnxruntime/libonnxruntime.so.1',
    'onnxruntime/onnxruntime_binding.node',
    'package.json',
  ]);
  // sharp's binding and libvips, for image sources (installed here for linux-x64).
  assert.ok(sharpLinuxPackages('x86_64'), "this machine has sharp's linux-x64 binaries");
  const sharpBinding = files.find((f) => /^node_modules\/@img\/sharp-linux-x64\/lib\/.*\.node$/.test(f));
  const libvips = files.find((f) =>
    /^node_modules\/@img\/sharp-libvips-linux-x64\/lib\/libvips-cpp\.so/.test(f),
  );
  assert.ok(sharpBinding && libvips, files.join(', '));
  assert.ok(!files.some((f) => f.includes('/include/')), 'no C headers');
  const unzipped = [...sizes.values()].reduce((a, b) => a + b, 0);
  assert.equal(unzipped, bundles.inference.unzippedBytes);
  assert.ok(unzipped < LAMBDA_UNZIPPED_LIMIT, `${unzipped} bytes unzipped`);
  assert.equal((await fs.stat(bundles.inference.zip)).size, bundles.inference.zippedBytes);
  t.diagnostic(
    `inference package: ${(bundles.inference.zippedBytes / 2 ** 20).toFixed(1)} MiB zipped, ` +
      `${(unzipped / 2 ** 20).toFixed(1)} MiB unzipped; control: ${(bundles.control.zippedBytes / 2 ** 20).toFixed(2)} MiB zipped`,
  );
  const control = await unzipPackage(bundles.control.zip, 'control-size');
  assert.deepEqual(
    [...control.sizes.keys()].sort(),
    ['codec-thread.js', 'h5-thread.js', 'index.mjs', 'package.json'],
    'no native code in Initialize and Summarize',
  );
  // lz4-napi's binary, for Zarr's Blosc/LZ4 chunks (installed here for linux-x64).
  const lz4 = 'node_modules/@antoniomuso/lz4-napi-linux-x64-gnu/lz4-napi.linux-x64-gnu.node';
  assert.ok(
    files.includes(lz4) && files.includes('node_modules/lz4-napi/index.js'),
    'lz4-napi in the package',
  );
  for (const f of [
    'onnxruntime/libonnxruntime.so.1',
    'onnxruntime/onnxruntime_binding.node',
    sharpBinding,
    libvips,
    lz4,
  ])
    assert.equal(await elfMachine(path.join(dir, f)), 62, `${f} is x86-64`);
});

test('the arm64 packages carry AArch64 binaries', async () => {
  const arm = await buildLambdaBundles({ outDir: path.join(scratch, 'arm'), architecture: 'arm64' });
  assert.equal(arm.architecture, 'arm64');
  const { dir } = await unzipPackage(arm.inference.zip, 'inference-arm64');
  for (const f of ['onnxruntime/libonnxruntime.so.1', 'onnxruntime/onnxruntime_binding.node'])
    assert.equal(await elfMachine(path.join(dir, f)), 183, `${f} is AArch64`);
  assert.ok(arm.inference.unzippedBytes < LAMBDA_UNZIPPED_LIMIT);
  // sharp's arm64 binaries go in when installed; otherwise the bundle says how to get them, on use only.
  const bundle = await fs.readFile(path.join(dir, 'index.mjs'), 'utf8');
  if (sharpLinuxPackages('arm64')) {
    assert.ok((await fs.stat(path.join(dir, 'node_modules/@img/sharp-linux-arm64'))).isDirectory());
  } else {
    await assert.rejects(fs.stat(path.join(dir, 'node_modules')));
    assert.ok(bundle.includes('npm install --os=linux --cpu=arm64 --libc=glibc sharp'));
  }
});

test('unzipped packages run in a fresh node outside the repository: Initialize plans, Inference writes predictions', async () => {
  const control = await unzipPackage(bundles.control.zip, 'control');
  const inference = await unzipPackage(bundles.inference.zip, 'inference');
  for (const dir of [control.dir, inference.dir, scratch]) {
    assert.ok(!path.resolve(dir).startsWith(REPO + path.sep), `${dir} is outside ${REPO}`);
  }

  const job = fx.job('bundle', { batchSize: 16 });
  const init = await invokeFresh<InitializeResult>(control.dir, 'initialize', [
    { input: { job }, executionName: 'bundle-test', executionStartTime: new Date().toISOString() },
  ]);
  const planned = ok(init.results[0]);
  assert.equal(planned.planned, 5);
  assert.equal(planned.todo, 5);
  assert.deepEqual(init.native, [], 'the control package loads no onnxruntime');
  const manifest = JSON.parse(
    new TextDecoder().decode(await fx.store(`s3://${planned.manifest.bucket}`).get(planned.manifest.key)),
  ) as PlannedPartition[];
  const byId = new Map(manifest.map((p) => [p.id, p]));

  // One partition alone, then an ItemBatcher batch of two: the second invocation is warm.
  const infer = await invokeFresh<InferenceResult>(inference.dir, 'handler', [
    { task: planned.task, partition: byId.get('1'), attempt: 1 },
    { task: planned.task, items: [byId.get('2'), byId.get('3')], attempt: 1 },
    { task: planned.task, partition: { ...byId.get('4'), id: 'missing', key: 'missing.pt' }, attempt: 1 },
  ]);
  assert.deepEqual(
    ok(infer.results[0]).partitions.map((p) => [p.id, p.status, p.items]),
    [['1', 'ok', fx.items['1']]],
  );
  assert.deepEqual(
    ok(infer.results[1]).partitions.map((p) => [p.id, p.status, p.items]),
    [
      ['2', 'ok', fx.items['2']],
      ['3', 'ok', fx.items['3']],
    ],
  );
  // A failure comes back named as Step Functions' Retry and Catch match it.
  const failed = infer.results[2];
  assert.ok(
    'errorType' in failed && /^Cai(Retryable|Partition)Error$/.test(failed.errorType),
    JSON.stringify(failed),
  );

  // onnxruntime was loaded from the unzipped package, not from the repository; sharp (libvips) is
  // loaded only by jobs that decode images, so a tensor job leaves it out.
  assert.equal(infer.native.length, 2, `native libraries: ${infer.native.join(', ')}`);
  for (const lib of infer.native) {
    assert.ok(lib.startsWith(inference.dir + path.sep), `${lib} loaded`);
  }
  assert.ok(infer.native.some((l) => l.endsWith('onnxruntime/libonnxruntime.so.1')));
  // sharp's binding, loaded by a fresh node from the unzipped package, finds libvips beside it.
  const binding = (await fs.readdir(path.join(inference.dir, 'node_modules/@img/sharp-linux-x64/lib'))).find(
    (f) => f.endsWith('.node'),
  );
  assert.ok(binding, 'sharp binding in the package');
  const loaded = spawnSync(
    process.execPath,
    [
      '-e',
      `process.dlopen({ exports: {} }, ${JSON.stringify(path.join(inference.dir, 'node_modules/@img/sharp-linux-x64/lib', binding))});` +
        "console.log(require('fs').readFileSync('/proc/self/maps', 'utf8'))",
    ],
    { cwd: scratch, env: { PATH: '/usr/bin:/bin', HOME: scratch }, encoding: 'utf8' },
  );
  assert.equal(loaded.status, 0, loaded.stderr);
  const vips = loaded.stdout.split('\n').find((l) => /libvips-cpp\.so/.test(l));
  assert.ok(vips?.includes(inference.dir + path.sep), `libvips from the package: ${vips}`);
  // The stack's environment turns onnxruntime's telemetry off: it stored nothing in the home folder.
  assert.deepEqual(await fs.readdir(infer.home), ['events.json', 'runtime.mjs']);

  const out = fx.store(`${DEPLOYMENT.output}/bundle`);
  const records = await Promise.all(
    ['1', '2', '3'].map(
      async (id) =>
        JSON.parse(new TextDecoder().decode(await out.get(`results/${id}.json`))) as PartitionRecord,
    ),
  );
  assert.deepEqual(
    records.map((r) => [
      r.partition,
      r.items,
      r.lambda?.memory_mb,
      r.lambda?.cold_start,
      r.lambda?.request_id,
    ]),
    [
      ['1', fx.items['1'], MEMORY_MB, true, 'request-0'],
      ['2', fx.items['2'], MEMORY_MB, false, 'request-1'],
      ['3', fx.items['3'], MEMORY_MB, false, 'request-1'],
    ],
  );

  // The same predictions as the local engine's, item for item.
  const local = await runJob(parseJobSpec(fx.job('bundle-local', { threads: 1, fileLimit: 3 })), {
    retryBaseMs: 10,
  });
  assert.equal(local.status, 'succeeded');
  const rows = await predictionsOf(out);
  assert.equal(rows.length, fx.items['1'] + fx.items['2'] + fx.items['3']);
  assert.deepEqual(rows, await predictionsOf(fx.store(`${DEPLOYMENT.output}/bundle-local`)));
});

test('the packages read an HDF5 object in S3 by byte ranges: Initialize plans from its metadata, Inference fetches its rows', async () => {
  const control = await unzipPackage(bundles.control.zip, 'control-h5');
  const inference = await unzipPackage(bundles.inference.zip, 'inference-h5');
  const ranged = fileURLToPath(new URL('../../../test/fixtures/ranged/', import.meta.url));
  const expected = JSON.parse(await fs.readFile(path.join(ranged, 'expected.json'), 'utf8')) as {
    image_mean: number[];
    ids: number[];
    h5_chunks: { row: number; size: number }[];
  };
  // A stack deployed for this data and model.
  const deployment = { ...DEPLOYMENT, model: 's3://cai-data/models/trivial-h5.onnx' };
  await fx.store(`${DEPLOYMENT.data}/h5`).put('rows.h5', await fs.readFile(path.join(ranged, 'rows.h5')));
  await fx
    .store('s3://cai-data/models')
    .put('trivial-h5.onnx', buildTrivial({ inputName: 'images', shape: ['N', 16, 16, 3] }));
  const log = await startRequestLog(fx.s3.endpoint);
  try {
    const job = {
      input: `${DEPLOYMENT.data}/h5`,
      model: deployment.model,
      output: `${DEPLOYMENT.output}/bundle-h5`,
      datasets: { images: 'images' },
      idColumn: 'ids',
      partitionItems: 128,
      batchSize: 32,
      predictionsFormat: 'jsonl',
      s3Endpoint: log.endpoint,
    };
    const h5Gets = (from: number) =>
      log
        .requests()
        .slice(from)
        .filter((r) => r.method === 'GET' && r.path.endsWith('rows.h5'));
    const init = await invokeFresh<InitializeResult>(
      control.dir,
      'initialize',
      [{ input: { job }, executionName: 'bundle-h5', executionStartTime: new Date().toISOString() }],
      deployment,
    );
    const planned = ok(init.results[0]);
    assert.equal(planned.planned, 4);
    const planGets = h5Gets(0);
    const metadata = planGets.reduce((s, r) => s + r.bytes, 0);
    assert.ok(metadata <= 2 * 64 * 1024, `Initialize fetched ${metadata} bytes of the HDF5 object`);
    assert.ok(
      planGets.every((r) => r.range),
      'ranged GETs only',
    );
    const manifest = JSON.parse(
      new TextDecoder().decode(await fx.store(`s3://${planned.manifest.bucket}`).get(planned.manifest.key)),
    ) as PlannedPartition[];
    const second = manifest.find((p) => p.rows?.[0] === 128);
    assert.ok(second, JSON.stringify(manifest.map((p) => p.rows)));
    const from = log.requests().length;
    const infer = await invokeFresh<InferenceResult>(
      inference.dir,
      'handler',
      [{ task: planned.task, partition: second, attempt: 1 }],
      deployment,
    );
    assert.deepEqual(
      ok(infer.results[0]).partitions.map((p) => [p.status, p.items]),
      [['ok', 128]],
    );
    const chunks = expected.h5_chunks
      .filter((c) => c.row >= 128 && c.row < 256)
      .reduce((s, c) => s + c.size, 0);
    const fetched = h5Gets(from).reduce((s, r) => s + r.bytes, 0);
    // The preflight and the partition each open the file (its metadata), and the partition its chunks.
    assert.ok(
      fetched <= 2 * metadata + 1.3 * (chunks + 8 * 128),
      `the Lambda fetched ${fetched} bytes; the rows' chunks are ${chunks}, an open ${metadata}`,
    );
    const rows = await predictionsOf(fx.store(`${DEPLOYMENT.output}/bundle-h5`));
    assert.equal(rows.length, 128);
    rows.forEach((r, i) => {
      assert.equal(String(r.id), String(expected.ids[128 + i]));
      assert.ok(Math.abs(Number(r.mean) - expected.image_mean[128 + i]) < 1e-4, String(r.id));
    });
  } finally {
    await log.stop();
  }
});

test("the inference package's decoding thread decodes a Blosc chunk with the package's own native LZ4", async () => {
  const { dir } = await unzipPackage(bundles.inference.zip, 'inference-codecs');
  const chunk = path.join(REPO, 'test/fixtures/codecs/blosc-lz4-f4-blocks.bin');
  const expected = (
    JSON.parse(await fs.readFile(path.join(REPO, 'test/fixtures/codecs/expected.json'), 'utf8')) as Record<
      string,
      { sha256: string }
    >
  )['blosc-lz4-f4-blocks'].sha256;
  const script = `
    import { Worker } from 'node:worker_threads';
    import { createHash } from 'node:crypto';
    import { readFileSync } from 'node:fs';
    const w = new Worker(process.argv[1] + '/codec-thread.js', { execArgv: [] });
    const bytes = new Uint8Array(readFileSync(process.argv[2]));
    w.postMessage({ id: 1, codec: 'blosc', bytes }, [bytes.buffer]);
    w.on('message', (m) => {
      const maps = readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('lz4-napi')).map((l) => l.trim().split(/\\s+/)[5]);
      process.stdout.write(JSON.stringify({ sha: m.out ? createHash('sha256').update(m.out).digest('hex') : m.error, lz4: [...new Set(maps)] }));
      process.exit(0);
    });`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, dir, chunk], {
    cwd: scratch,
    env: { PATH: '/usr/bin:/bin', HOME: scratch },
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { sha: string; lz4: string[] };
  assert.equal(out.sha, expected);
  assert.equal(out.lz4.length, 1, `lz4-napi loaded once: ${out.lz4.join(', ')}`);
  assert.ok(out.lz4[0].startsWith(dir + path.sep), `lz4-napi from the package: ${out.lz4[0]}`);
});
