// Every field of the job schema, nested ones too, is classified as identity (it can change a prediction)
// or free; a field added later without a class fails here (and at compile time, by the table's type).
import path from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  describeChanges,
  identityChanges,
  jobIdentity,
  JOB_FIELD_CLASSES,
  type FieldClass,
} from '../../src/job/identity.js';
import { JobSpecSchema, parseJobSpec } from '../../src/job/spec.js';

/** The schema inside optional, default, nullable and pipe wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable)
      s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else return s;
  }
}

/** Every field path of an object schema, descending into object fields (`preprocess.channels`). */
function fieldPaths(schema: z.ZodObject, prefix = ''): string[] {
  return Object.entries(schema.shape).flatMap(([name, field]) => {
    const inner = unwrap(field as z.ZodType);
    return inner instanceof z.ZodObject ? fieldPaths(inner, `${prefix}${name}.`) : [`${prefix}${name}`];
  });
}

/** Every field path the table classifies, with its class. */
function classified(): Map<string, FieldClass> {
  const out = new Map<string, FieldClass>();
  for (const [name, cls] of Object.entries(JOB_FIELD_CLASSES)) {
    if (typeof cls === 'string') out.set(name, cls);
    else for (const [sub, c] of Object.entries(cls)) out.set(`${name}.${sub}`, c);
  }
  return out;
}

test('every field of the job schema, nested ones included, has a class, and nothing else has', () => {
  const paths = fieldPaths(JobSpecSchema);
  assert.ok(paths.includes('preprocess.channels') && paths.includes('slurm.partition'), paths.join());
  assert.ok(paths.length > 50, `only ${paths.length} fields found`);
  const table = classified();
  assert.deepEqual(
    paths.filter((p) => !table.has(p)),
    [],
    'fields without a class in src/job/identity.ts',
  );
  assert.deepEqual(
    [...table.keys()].filter((p) => !paths.includes(p)),
    [],
    'classes of fields the schema does not have',
  );
});

test('what changes a prediction is identity; how and where the job runs is free', () => {
  const table = classified();
  for (const f of [
    'model',
    'input',
    'inputs',
    'label',
    'preset',
    'preprocess.channels',
    'preprocess.mean',
    'preprocess.resize',
    'preprocess.layout',
    'preprocess.dtype',
    'preprocess.scale',
    'datasets',
    'group',
    'idColumn',
    'imageColumn',
    'featureColumns',
    'nan',
    'fitsHdu',
    'fitsBands',
    'fitsCutouts',
    'partitionItems',
    'partitionBytes',
    'fileLimit',
    'format',
  ])
    assert.equal(table.get(f), 'identity', f);
  for (const f of [
    'batchSize',
    'concurrency',
    'threads',
    'engine',
    'maxAttempts',
    'partitionTimeoutSeconds',
    'toleratedFailurePercentage',
    'output',
    'slurm.partition',
    'slurm.cpusPerTask',
  ])
    assert.equal(table.get(f), 'free', f);
});

test('the identity names each differing field with its old and new value, and ignores free fields', () => {
  const base = { input: 'in', model: 'm.onnx', output: 'out', preset: 'imagenet' };
  const was = jobIdentity(parseJobSpec(base), { modelSha256: 'a'.repeat(64) });
  const same = jobIdentity(parseJobSpec({ ...base, batchSize: 7, concurrency: 3, engine: 'slurm' }), {
    modelSha256: 'a'.repeat(64),
  });
  assert.deepEqual(identityChanges(was, same), []);
  const now = jobIdentity(parseJobSpec({ ...base, preprocess: { channels: 'bgr' }, datasets: ['x'] }), {
    modelSha256: 'b'.repeat(64),
  });
  assert.deepEqual(describeChanges(identityChanges(was, now)), [
    `model bytes (SHA-256): "${'a'.repeat(64)}" -> "${'b'.repeat(64)}"`,
    'preprocess.channels: (not set) -> "bgr"',
    'datasets: (not set) -> ["x"]',
  ]);
  // A fact one side could not derive (a runner that cannot read the model) is not compared.
  assert.deepEqual(identityChanges(was, jobIdentity(parseJobSpec(base))), []);
});

test('an input or model an earlier CAI recorded relative is the same job when it resolves here to the path recorded now', () => {
  const rel = jobIdentity(parseJobSpec({ input: 'cai-demo/data', model: 'cai-demo/m.onnx', output: 'out' }));
  const abs = jobIdentity(
    parseJobSpec({
      input: path.resolve('cai-demo/data'),
      model: path.resolve('cai-demo/m.onnx'),
      output: path.resolve('out'),
    }),
  );
  assert.deepEqual(identityChanges(rel, abs), []);
  // Resolved from here it names another folder: another job, as before.
  const other = jobIdentity(
    parseJobSpec({ input: '/elsewhere/data', model: path.resolve('cai-demo/m.onnx'), output: 'o' }),
  );
  assert.deepEqual(describeChanges(identityChanges(rel, other)), [
    'input: "cai-demo/data" -> "/elsewhere/data"',
  ]);
  // URIs are compared as written.
  const s3 = jobIdentity(parseJobSpec({ input: 's3://b/data', model: 'm.onnx', output: 'o' }));
  assert.equal(
    identityChanges(s3, jobIdentity(parseJobSpec({ input: 's3://b/data/', model: 'm.onnx', output: 'o' })))
      .length,
    1,
  );
});
