// Keeps the layering of docs/architecture.md true: a folder of src/ imports only folders below it.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The folders of src/, bottom first; a folder may import the folders of earlier groups, never one of its
 * own group or a later one. `errors` is src/errors.ts, `index` is src/index.ts (the public API).
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors'],
  ['tensor', 'storage', 'job'],
  ['formats'],
  ['model'],
  ['worker'],
  ['plan'],
  ['summarize'],
  ['engines'],
  ['run'],
  ['demo', 'experiments', 'optimize'],
  ['report'],
  ['cli'],
  ['index'],
];

const RANK = new Map(LAYERS.flatMap((group, rank) => group.map((folder) => [folder, rank] as const)));

/** The layer a file of src/ belongs to: its first folder under src/, or the file's name at the top. */
function folderOf(file: string): string {
  const [first, second] = file.split('/').slice(1);
  return second === undefined ? first.replace(/\.[jt]s$/, '') : first;
}

/** Relative specifiers of a file's imports: static, type-only, `export ... from` and `import()`. */
function relativeImports(text: string): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((name) => name.startsWith('.'));
}

/** Every import of `files` (paths relative to the repository, `src/...`) that breaks the layering. */
function violations(files: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [file, text] of files) {
    const from = folderOf(file);
    for (const spec of relativeImports(text)) {
      const target = path.posix.join(path.posix.dirname(file), spec);
      if (!target.startsWith('src/')) {
        found.push(`${file} imports ${spec}, outside src/`);
        continue;
      }
      const to = folderOf(target);
      if (to === from) continue;
      for (const folder of [from, to])
        if (!RANK.has(folder))
          found.push(
            `${file}: folder "${folder}" has no layer; add it to docs/architecture.md and LAYERS here`,
          );
      const [rf, rt] = [RANK.get(from), RANK.get(to)];
      if (rf === undefined || rt === undefined || rt < rf) continue;
      found.push(
        `${file} imports ${spec}: "${from}" must not import "${to}", which is ${rt === rf ? 'beside' : 'above'} it`,
      );
    }
  }
  return found;
}

async function sourceFiles(): Promise<Map<string, string>> {
  const entries = await readdir(path.join(ROOT, 'src'), { recursive: true, withFileTypes: true });
  const files = new Map<string, string>();
  for (const e of entries) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue;
    const abs = path.join(e.parentPath, e.name);
    files.set(path.relative(ROOT, abs).split(path.sep).join('/'), await readFile(abs, 'utf8'));
  }
  return files;
}

test('no folder of src/ imports a folder above it or beside it', async () => {
  const files = await sourceFiles();
  assert.ok(files.size > 100, `found only ${files.size} source files under ${ROOT}src`);
  assert.ok(files.has('src/index.ts') && files.has('src/errors.ts'));
  assert.deepEqual(violations(files), []);
});

test('every folder of src/ has a layer', async () => {
  const folders = new Set([...(await sourceFiles()).keys()].map(folderOf));
  assert.deepEqual(
    [...folders].filter((f) => !RANK.has(f)),
    [],
  );
  assert.deepEqual(
    [...RANK.keys()].filter((f) => !folders.has(f)),
    [],
  );
});

test('the check sees every kind of import that goes up', () => {
  const files = new Map([
    ['src/storage/a.ts', "import { x } from '../worker/record.js';"],
    ['src/formats/b.ts', "import type { Job } from '../plan/plan.js';"],
    ['src/job/c.ts', "export { y } from '../formats/image/preprocess.js';"],
    ['src/summarize/d.ts', "const m = await import('../engines/policy.js');"],
    ['src/tensor/e.ts', "import { f } from '../storage/store.js';"],
    ['src/errors.ts', "import { g } from './index.js';"],
    ['src/cli/ok.ts', "import { h } from '../engines/map.js'; import { i } from './own.js'; import 'zod';"],
    ['src/index.ts', "export { j } from './cli/main.js';"],
  ]);
  assert.deepEqual(violations(files), [
    `src/storage/a.ts imports ../worker/record.js: "storage" must not import "worker", which is above it`,
    `src/formats/b.ts imports ../plan/plan.js: "formats" must not import "plan", which is above it`,
    `src/job/c.ts imports ../formats/image/preprocess.js: "job" must not import "formats", which is above it`,
    `src/summarize/d.ts imports ../engines/policy.js: "summarize" must not import "engines", which is above it`,
    `src/tensor/e.ts imports ../storage/store.js: "tensor" must not import "storage", which is beside it`,
    `src/errors.ts imports ./index.js: "errors" must not import "index", which is above it`,
  ]);
});
