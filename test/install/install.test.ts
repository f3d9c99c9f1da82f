// Installs CAI as a user would: `npm pack`, then the tarball into a fresh folder with no .npmrc, and runs
// the installed `cai` and the library API. npm reaches only the registry (its cache makes it quick).
// onnxruntime-node's postinstall downloads CUDA 12 libraries from NuGet on Linux x64 whatever the
// machine has (and fails offline); the README's install line skips it with ONNXRUNTIME_NODE_INSTALL=skip,
// the one switch every npm version passes to it, and so does this test.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  peerDependencies: Record<string, string>;
};

let dir = '';
let app = '';
let tarball = '';

/** The environment of a user's shell: none of the npm_config_* variables `npm test` sets from our .npmrc. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && !/^ONNXRUNTIME_NODE_INSTALL/.test(k)) env[k] = v;
  }
  // No user .npmrc either: only npm's defaults and its cache.
  env.npm_config_userconfig = path.join(dir, 'no-npmrc');
  env.ONNXRUNTIME_NODE_INSTALL = 'skip';
  return env;
}

function run(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: userEnv(), maxBuffer: 64 * 2 ** 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-install-'));
  // dist/ is built already (npm test builds first): pack without running `prepare` again.
  const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: ROOT,
    encoding: 'utf8',
    env: userEnv(),
  });
  tarball = path.join(dir, (JSON.parse(packed) as { filename: string }[])[0].filename);
  app = path.join(dir, 'app');
  execFileSync('mkdir', [app]);
  await writeFile(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module' }),
  );
  const install = run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'error', tarball],
    app,
  );
  assert.equal(install.code, 0, `npm install failed:\n${install.stderr}`);
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the tarball holds the built code and docs, no tests, benchmarks or CI', () => {
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
  assert.ok(files.includes('package/dist/src/cli/main.js'));
  assert.ok(files.includes('package/dist/src/index.d.ts'));
  assert.ok(files.includes('package/README.md'));
  const stray = files.filter((f) =>
    /^package\/(test|bench|scripts|\.ci|src)\/|^package\/dist\/(test|bench)\/|\.map$/.test(f),
  );
  assert.deepEqual(stray, []);
});

test('a local-only install leaves out the AWS CDK, the Step Functions client and esbuild', async () => {
  const modules = path.join(app, 'node_modules');
  for (const name of Object.keys(PKG.peerDependencies)) {
    assert.equal(existsSync(path.join(modules, name)), false, `${name} was installed`);
  }
  // The CPU binaries are in onnxruntime-node's package; its CUDA download did not run.
  const ortBin = path.join(modules, 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
  if (process.platform === 'linux' && process.arch === 'x64') {
    const libs = await readdir(ortBin);
    assert.ok(libs.includes('onnxruntime_binding.node'));
    assert.ok(!libs.some((f) => f.includes('cuda')), libs.join(', '));
  }
});

test('the installed cai is on the package bin path and answers --help', () => {
  const bin = path.join(app, 'node_modules', '.bin', 'cai');
  assert.ok(existsSync(bin));
  const help = run(bin, ['--help'], app);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /\n {2}run\b/);
  // `npx cai` from the app resolves to our bin, not the registry's unrelated `cai`.
  const npx = run('npx', ['--no-install', 'cai', '--version'], app);
  assert.equal(npx.code, 0, npx.stderr);
  assert.equal(npx.stdout.trim(), PKG.version);
});

test('a small job runs through the installed bin and through the library API', async () => {
  const script = `
    import { makeDemo, runJob } from '${PKG.name}';
    const demo = await makeDemo({ dir: 'demo', partitions: 2, itemsPerPartition: 20 });
    const summary = await runJob({ ...demo.job, output: 'out-api', concurrency: 1, threads: 1 });
    console.log(JSON.stringify({ status: summary.status, items: summary.items, mae: summary.metrics?.mae }));
  `;
  await writeFile(path.join(app, 'api.js'), script);
  const api = run(process.execPath, ['api.js'], app);
  assert.equal(api.code, 0, api.stderr);
  const result = JSON.parse(api.stdout.trim().split('\n').at(-1) ?? '{}') as {
    status: string;
    items: number;
    mae: number;
  };
  assert.deepEqual({ status: result.status, items: result.items }, { status: 'succeeded', items: 40 });
  assert.ok(result.mae < 0.01, `MAE ${result.mae}`);

  const bin = path.join(app, 'node_modules', '.bin', 'cai');
  const cli = run(
    bin,
    [
      'run',
      '--input',
      'demo/data',
      '--model',
      'demo/model/astromae.onnx',
      '--output',
      'out-cli',
      '--inputs',
      'image=0,magnitude=1',
      '--label',
      '2',
      '--concurrency',
      '1',
      '--json',
    ],
    app,
  );
  assert.equal(cli.code, 0, cli.stderr);
  const summary = JSON.parse(cli.stdout) as { status: string; items: number };
  assert.deepEqual({ status: summary.status, items: summary.items }, { status: 'succeeded', items: 40 });
});

test('cai aws without the AWS parts exits 2 and says how to add them', () => {
  const bin = path.join(app, 'node_modules', '.bin', 'cai');
  const synth = run(
    bin,
    ['aws', 'synth', '--data', 's3://b/d', '--output', 's3://b/o', '--model', 's3://b/m.onnx'],
    app,
  );
  assert.equal(synth.code, 2, synth.stderr);
  const lines = synth.stderr.trim().split('\n');
  assert.equal(lines.length, 1, synth.stderr);
  assert.match(lines[0], /needs aws-cdk-lib, constructs, esbuild/);
  assert.ok(lines[0].includes(`aws-cdk-lib@${PKG.peerDependencies['aws-cdk-lib']}`), lines[0]);
});
