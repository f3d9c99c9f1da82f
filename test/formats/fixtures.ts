// Loads the tensor fixtures and the facts scripts/fixtures/make_tensor_fixtures.py recorded about them
// with numpy/torch, and checks decoded columns against those facts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CaiError } from '../../src/errors.js';
import type { ColumnSet } from '../../src/formats/columns.js';
import { halfToNumber } from '../../src/tensor/float16.js';
import { bytesOf, type Tensor } from '../../src/tensor/tensor.js';

/** Directory of the fixtures (tests run from dist/test/formats). */
export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/tensors/', import.meta.url));

/** One column as numpy/torch described it. */
export interface ExpectedColumn {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly sha256: string;
  readonly values?: (number | string | boolean)[];
  readonly head?: (number | string | boolean)[];
  readonly tail?: (number | string | boolean)[];
}

/** The contents of expected.json. */
export interface Expected {
  readonly files: Record<string, { columns: ExpectedColumn[] }>;
  readonly refused_globals: Record<string, string>;
  readonly pickles: Record<string, unknown>;
  readonly marker: string;
}

/** expected.json, parsed. */
export const expected: Expected = JSON.parse(readFileSync(`${FIXTURES}expected.json`, 'utf8')) as Expected;

/** A fresh, exclusively owned copy of a fixture (offset 0, so aligned). */
export function readFixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${FIXTURES}${name}`));
}

/** The same bytes placed at an odd offset in a larger buffer, to exercise the unaligned path. */
export function unaligned(bytes: Uint8Array): Uint8Array {
  const big = new Uint8Array(bytes.length + 1);
  big.set(bytes, 1);
  return big.subarray(1);
}

/** The sha256 of any byte view. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function decodeExpected(v: number | string | boolean, dtype: string): number | bigint {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (dtype === 'int64') return BigInt(v);
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return v as number;
}

function element(t: Tensor, i: number): number | bigint {
  const v = t.data[i];
  return t.dtype === 'float16' ? halfToNumber(v as number) : v;
}

/** Asserts that a decoded column set matches numpy/torch's description of the file, value for value. */
export function assertColumns(set: ColumnSet, columns: readonly ExpectedColumn[], file: string): void {
  assert.deepEqual(
    set.names,
    columns.map((c) => c.name),
    `${file}: column names`,
  );
  set.columns.forEach((t, k) => {
    const want = columns[k];
    const where = `${file} column "${want.name}"`;
    assert.equal(t.dtype, want.dtype, `${where}: dtype`);
    assert.deepEqual(t.shape, want.shape, `${where}: shape`);
    assert.equal(sha256(bytesOf(t.data)), want.sha256, `${where}: bytes`);
    const n = t.data.length;
    const checks: [number, number | string | boolean][] = want.values
      ? want.values.map((v, i) => [i, v])
      : [
          ...(want.head ?? []).map((v, i): [number, number | string | boolean] => [i, v]),
          ...(want.tail ?? []).map((v, i, all): [number, number | string | boolean] => [
            n - all.length + i,
            v,
          ]),
        ];
    assert.ok(checks.length > 0, `${where}: expected.json lists values`);
    if (want.values) assert.equal(n, want.values.length, `${where}: element count`);
    for (const [i, v] of checks) {
      const got = element(t, i);
      const exp = decodeExpected(v, want.dtype);
      assert.ok(Object.is(got, exp), `${where}[${i}]: got ${got}, expected ${exp}`);
    }
  });
}

/** Asserts that `fn` throws a CaiError with `code` whose object is `key` and whose message names it. */
export function assertCaiError(
  fn: () => unknown,
  code: string,
  key: string,
  mentions: readonly string[] = [],
): CaiError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof CaiError, `expected a CaiError ${code} for ${key}, got ${String(caught)}`);
  assert.equal(caught.code, code, `${key}: ${caught.message}`);
  assert.equal(caught.object, key);
  assert.ok(caught.message.includes(key), caught.message);
  for (const m of mentions) assert.ok(caught.message.includes(m), `"${m}" missing from: ${caught.message}`);
  return caught;
}
