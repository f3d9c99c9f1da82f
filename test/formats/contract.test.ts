// The same checks for every tensor-file reader, driven by the fixtures of its extensions.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { decodeTensorFile, extensionOf, TENSOR_FORMATS } from '../../src/formats/registry.js';
import { assertCaiError, assertColumns, expected, readFixture, sha256, unaligned } from './fixtures.js';

/** A small deterministic generator so damage tests are reproducible. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

for (const format of TENSOR_FORMATS) {
  const files = Object.keys(expected.files).filter((f) => format.extensions.includes(extensionOf(f)));

  describe(`${format.name} reader contract`, () => {
    test('has fixtures made by the real tool', () => {
      assert.ok(files.length > 0, `no fixture for ${format.extensions.join(', ')}`);
    });

    for (const file of files) {
      const want = expected.files[file].columns;

      test(`${file}: decodes to the names, dtypes, shapes and values numpy/torch recorded`, () => {
        assertColumns(format.decode(readFixture(file), file), want, file);
        assertColumns(decodeTensorFile(readFixture(file), file), want, file);
      });

      test(`${file}: decodes the same from an unaligned buffer`, () => {
        assertColumns(format.decode(unaligned(readFixture(file)), file), want, file);
      });

      test(`${file}: leaves the input bytes unchanged`, () => {
        const bytes = readFixture(file);
        const before = sha256(bytes);
        format.decode(bytes, file);
        assert.equal(sha256(bytes), before);
      });

      test(`${file}: every truncation is a corrupt error naming the file`, () => {
        const bytes = readFixture(file);
        const cuts = new Set([0, 1, 7, 8, 9, 12, bytes.length >> 1, bytes.length - 1]);
        for (let k = 1; k < 16; k++) cuts.add(Math.floor((bytes.length * k) / 16));
        for (const cut of cuts) {
          assertCaiError(() => format.decode(bytes.subarray(0, cut), file), ErrorCodes.corrupt, file);
        }
      });

      test(`${file}: damaged bytes give a result or a CaiError, never another exception`, () => {
        const original = readFixture(file);
        const random = lcg(file.length * 7919 + original.length);
        for (let round = 0; round < 150; round++) {
          const bytes = original.slice();
          // Half the damage lands in the first and last 512 bytes, where headers and directories live.
          const span = round % 2 === 0 ? bytes.length : Math.min(512, bytes.length);
          for (let k = 0; k < 3; k++) {
            let at = Math.floor(random() * span);
            if (round % 4 === 1) at = bytes.length - 1 - at;
            bytes[at] = Math.floor(random() * 256);
          }
          try {
            format.decode(bytes, file);
          } catch (err) {
            assert.ok(err instanceof CaiError, `round ${round}: ${(err as Error).stack}`);
            assert.equal(err.object, file);
          }
        }
      });
    }
  });
}
