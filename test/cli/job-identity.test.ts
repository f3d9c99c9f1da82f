// One output, one job: a rerun whose identity differs (a preprocessing flag, the model's bytes, the
// input's files) is refused with exit 2 before anything is written, naming each field with its old and
// new value and --overwrite; free fields (batch size, workers) change freely; an output of another
// format version is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { OUTPUT_FORMAT_VERSION } from '../../src/storage/output-layout.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PHOTOS = fileURLToPath(new URL('../../../test/fixtures/images/photos', import.meta.url));

let dir = '';
let photos = '';
let model = '';

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-identity-'));
  photos = path.join(dir, 'photos');
  // Three decodable photos keep each run short.
  await cp(PHOTOS, photos, {
    recursive: true,
    filter: (src) => src === PHOTOS || /\/(a_landscape\.jpg|c_square\.png|e_gray\.png)$/.test(src),
  });
  model = path.join(dir, 'mean.onnx');
  await writeFile(model, buildTrivial({ inputName: 'image', shape: ['N', 3, 224, 224] }));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cai(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: { ...process.env, CI: 'true' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const run = (output: string, ...more: string[]) =>
  cai('run', '--input', photos, '--model', model, '--output', output, '--concurrency', '1', '-q', ...more);

/** Every file of a folder with its size and mtime: what "nothing written" compares. */
async function snapshot(folder: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    const s = await stat(p);
    out.push(`${path.relative(folder, p)} ${s.size} ${s.mtimeMs}`);
  }
  return out.sort();
}

test('--preset imagenet, then --channels bgr into the same output: refused, exit 2, nothing written', async () => {
  const out = path.join(dir, 'out-channels');
  const first = run(out, '--preset', 'imagenet');
  assert.equal(first.code, 0, first.stderr);
  const job = JSON.parse(await readFile(path.join(out, 'job.json'), 'utf8')) as {
    format_version: number;
    job: { preset: string };
    identity: Record<string, unknown>;
  };
  assert.equal(job.format_version, OUTPUT_FORMAT_VERSION);
  assert.equal(job.job.preset, 'imagenet');
  assert.equal(job.identity.preset, 'imagenet');
  assert.match(String(job.identity.modelSha256), /^[0-9a-f]{64}$/);
  assert.deepEqual((job.identity.inputListing as { objects: number }).objects, 3);
  const before = await snapshot(out);

  const bgr = run(out, '--preset', 'imagenet', '--channels', 'bgr');
  assert.equal(bgr.code, 2, bgr.stdout + bgr.stderr);
  const lines = bgr.stderr.split('\n').filter((l) => l.startsWith('error:'));
  assert.equal(lines.length, 1, bgr.stderr);
  assert.match(
    lines[0],
    /job\.json: this output holds another job: preprocess\.channels: \(not set\) -> "bgr"/,
  );
  assert.match(lines[0], /--overwrite/);
  // Two fields at once, each named.
  const two = run(out, '--preset', 'imagenet', '--unscaled', '--mean', '0,0,0', '--std', '1,1,1');
  assert.equal(two.code, 2, two.stderr);
  assert.match(
    two.stderr,
    /preprocess\.scale: \(not set\) -> false; preprocess\.mean: \(not set\) -> \[0,0,0\]; preprocess\.std/,
  );
  const noPreset = run(out);
  assert.equal(noPreset.code, 2, noPreset.stderr);
  assert.match(noPreset.stderr, /preset: "imagenet" -> \(not set\)/);
  assert.deepEqual(await snapshot(out), before, 'a refused run wrote nothing');

  // Free fields change freely: another batch size and worker count resume the same job.
  const again = run(out, '--preset', 'imagenet', '--batch-size', '2', '--threads', '1');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /nothing to do: every partition was complete already/);
  // And --overwrite starts over with the new job.
  const over = run(out, '--preset', 'imagenet', '--channels', 'bgr', '--overwrite', '--json');
  assert.equal(over.code, 0, over.stderr);
  assert.equal((JSON.parse(over.stdout) as { items: number }).items, 3);
});

test("the model's bytes and the input's files are part of the identity", async () => {
  const out = path.join(dir, 'out-bytes');
  const data = path.join(dir, 'photos-copy');
  await cp(photos, data, { recursive: true });
  const own = path.join(dir, 'own.onnx');
  await writeFile(own, buildTrivial({ inputName: 'image', shape: ['N', 3, 224, 224] }));
  const args = ['run', '--input', data, '--model', own, '--output', out, '--concurrency', '1', '-q'];
  const first = cai(...args, '--preset', 'imagenet');
  assert.equal(first.code, 0, first.stderr);
  // The same path, other bytes (a retrained model saved over the old one).
  await writeFile(own, buildTrivial({ inputName: 'image', shape: ['N', 3, 224, 224], outputName: 'avg' }));
  const model2 = cai(...args, '--preset', 'imagenet');
  assert.equal(model2.code, 2, model2.stderr);
  assert.match(model2.stderr, /model bytes \(SHA-256\): "[0-9a-f]{64}" -> "[0-9a-f]{64}"/);
  await writeFile(own, buildTrivial({ inputName: 'image', shape: ['N', 3, 224, 224] }));
  // A photo added to the input: the old plan would silently leave it out.
  await cp(path.join(PHOTOS, 'b_portrait.jpg'), path.join(data, 'b_portrait.jpg'));
  const added = cai(...args, '--preset', 'imagenet');
  assert.equal(added.code, 2, added.stderr);
  assert.match(added.stderr, /input listing: 3 objects, \d+ bytes -> 4 objects, \d+ bytes/);
  await rm(path.join(data, 'b_portrait.jpg'));
  const back = cai(...args, '--preset', 'imagenet');
  assert.equal(back.code, 0, back.stderr);
});

test('an output of another format version is refused, naming both versions', async () => {
  const out = path.join(dir, 'out-version');
  const first = run(out, '--preset', 'imagenet');
  assert.equal(first.code, 0, first.stderr);
  const file = path.join(out, 'job.json');
  const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(file, JSON.stringify({ ...doc, format_version: OUTPUT_FORMAT_VERSION + 1 }));
  const newer = run(out, '--preset', 'imagenet');
  assert.equal(newer.code, 2, newer.stderr);
  assert.match(
    newer.stderr,
    new RegExp(
      `output format ${OUTPUT_FORMAT_VERSION + 1}, a newer CAI's; this CAI continues output format ${OUTPUT_FORMAT_VERSION} only`,
    ),
  );
  // An output of a CAI before versions: job.json was the bare job.
  await writeFile(file, JSON.stringify(doc.job));
  const older = run(out, '--preset', 'imagenet');
  assert.equal(older.code, 2, older.stderr);
  assert.match(older.stderr, /a CAI from before output format versions.*--overwrite/);
  const merge = cai('predictions', out, '--to', path.join(dir, 'all.csv'));
  assert.equal(merge.code, 2, merge.stderr);
  assert.match(merge.stderr, /a CAI from before output format versions/);
  // Format 1 (the last version before a failure's data_path became the full path): a run refuses to
  // continue it, but its predictions and report are read as they are.
  await writeFile(file, JSON.stringify({ ...doc, format_version: 1 }));
  const resume = run(out, '--preset', 'imagenet');
  assert.equal(resume.code, 2, resume.stderr);
  assert.match(resume.stderr, /output format 1, an older CAI's; this CAI continues output format 2 only/);
  const read = cai('predictions', out, '--to', path.join(dir, 'all-v1.csv'));
  assert.equal(read.code, 0, read.stderr);
  assert.ok((await readFile(path.join(dir, 'all-v1.csv'), 'utf8')).split('\n').length > 2);
  const report = cai('report', out);
  assert.equal(report.code, 0, report.stderr);
});
