// docs/api.md's examples, run as written: each `js` block becomes a module importing the built library
// in place of '@cai-infer/cai', run in a folder with the partitions and the model the page describes;
// what each prints must match the `// ...` comment after its console.log (a prefix, with `...` a gap).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { tensor } from '../../src/tensor/tensor.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LIBRARY = pathToFileURL(path.join(ROOT, 'dist/src/index.js')).href;
const PAGE = readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8');
const EXAMPLES = [...PAGE.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

let dir = '';

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-api-docs-'));
  await mkdir(path.join(dir, 'parts'));
  // 4 partitions of 8 items, x = 4 floats; item i of partition p holds p everywhere: its mean is p.
  for (let p = 1; p <= 4; p++)
    await writeFile(
      path.join(dir, 'parts', `${p}.safetensors`),
      encodeSafetensors({ x: tensor('float32', [8, 4], new Float32Array(32).fill(p)) }),
    );
  await writeFile(
    path.join(dir, 'model.onnx'),
    buildTrivial({ inputName: 'x', shape: ['N', 4], outputName: 'mean' }),
  );
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The printed lines an example promises: the comment after each console.log, in order. */
function promised(code: string): string[] {
  return [...code.matchAll(/console\.log\(.*\)[;,]? \/\/ (.*)$/gm)].map((m) => m[1]);
}

test('docs/api.md has examples of runJob, readPredictions, mergePredictions and errors', () => {
  assert.ok(EXAMPLES.length >= 4, `${EXAMPLES.length} examples`);
  for (const name of ['runJob', 'readPredictions', 'mergePredictions', 'CaiError'])
    assert.ok(
      EXAMPLES.some((e) => e.includes(name)),
      name,
    );
});

EXAMPLES.forEach((code, i) => {
  test(`docs/api.md example ${i + 1} runs and prints what it says`, async () => {
    const file = path.join(dir, `example-${i + 1}.mjs`);
    await writeFile(file, code.replaceAll("'@cai-infer/cai'", `'${LIBRARY}'`));
    const r = spawnSync(process.execPath, [file], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    });
    assert.equal(r.status, 0, `${code}\n${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    const want = promised(code);
    assert.equal(lines.length, want.length, r.stdout);
    want.forEach((w, j) => {
      // `...` in a comment stands for the rest of a long value; the printed line starts with the rest.
      const head = w.split('...')[0].trimEnd();
      const printed = lines[j].replace(/\s+/g, ' ');
      assert.ok(printed.startsWith(head.replace(/\s+/g, ' ')), `printed "${lines[j]}", the page says "${w}"`);
    });
  });
});
