// A clone works like the package: after `npm run build` the bin is executable (tsc writes it without its
// run bit; `npx cai` and `npm link` users got "Permission denied"), npm reads the project's config
// without "Unknown project config" warnings, and the tarball `npm pack` would make holds every file the
// bin can load (walking its static and dynamic imports and the modules it forks), so a pack made while
// dist/ was half rebuilt cannot ship unnoticed.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};

/** A user's shell: none of the npm_* variables an `npm test` run passes down. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return env;
}

test('the built bin is executable and runs by its own path', () => {
  assert.equal(PKG.bin.cai, 'dist/src/cli/main.js');
  assert.ok(statSync(BIN).mode & 0o100, `${BIN} has no run bit (mode ${statSync(BIN).mode.toString(8)})`);
  const version = execFileSync(BIN, ['--version'], { encoding: 'utf8' });
  assert.match(version, /^\d+\.\d+\.\d+/);
});

test('npm reads the project config without warnings', () => {
  const r = spawnSync('npm', ['pkg', 'get', 'name'], { cwd: ROOT, encoding: 'utf8', env: userEnv() });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /Unknown (project|user|env|global) config/, r.stderr);
  assert.doesNotMatch(r.stderr, /npm warn/i, r.stderr);
  // onnxruntime-node's postinstall (a CUDA download on Linux x64, failing offline) stays off for npm ci.
  assert.deepEqual(
    (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
        allowScripts: Record<string, boolean>;
      }
    ).allowScripts['onnxruntime-node'],
    false,
  );
});

/** Relative modules a built file loads: static and dynamic imports, and `new URL('./x.js', import.meta.url)`. */
function relativeLoads(file: string): { relative: string[]; bare: string[] } {
  const text = readFileSync(file, 'utf8');
  const specs = new Set<string>();
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /new URL\(\s*['"](\.{1,2}\/[^'"]+\.js)['"]\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) specs.add(m[1]);
  const relative: string[] = [];
  const bare: string[] = [];
  for (const s of specs) {
    if (s.startsWith('.')) relative.push(path.resolve(path.dirname(file), s));
    else if (/^(node:)?(@[a-z0-9-~][\w.~-]*\/)?[a-z0-9-~][\w.~-]*(\/[\w./-]*)?$/.test(s)) bare.push(s);
  }
  return { relative, bare };
}

test('the packed tarball holds every file the bin imports, and every package it imports is a dependency', () => {
  const packed = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: userEnv(),
  });
  const files = new Set((JSON.parse(packed) as { files: { path: string }[] }[])[0].files.map((f) => f.path));
  const seen = new Set<string>();
  const missing: string[] = [];
  const packages = new Set<string>();
  const queue = [BIN];
  while (queue.length) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const rel = path.relative(ROOT, file).split(path.sep).join('/');
    if (!files.has(rel)) missing.push(rel);
    if (!existsSync(file)) continue;
    const { relative, bare } = relativeLoads(file);
    queue.push(...relative.filter((f) => f.endsWith('.js')));
    for (const b of bare)
      packages.add(b.startsWith('@') ? b.split('/').slice(0, 2).join('/') : b.split('/')[0]);
  }
  assert.ok(seen.size > 50, `walked only ${seen.size} files from the bin`);
  // What the bin forks and starts as threads counts too (loaded by path, not imported).
  for (const forked of ['dist/src/engines/local/child.js', 'dist/src/model/inference-thread.js'])
    assert.ok(seen.has(path.join(ROOT, forked)), `${forked} not reached from the bin`);
  assert.deepEqual(missing, [], 'files the bin loads but the tarball leaves out');
  const declared = new Set([...Object.keys(PKG.dependencies), ...Object.keys(PKG.peerDependencies)]);
  const undeclared = [...packages].filter(
    (p) => !p.startsWith('node:') && !builtinModules.includes(p) && !declared.has(p),
  );
  assert.deepEqual(undeclared, [], 'packages the bin imports that package.json does not declare');
});
