import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capConcurrency } from '../../src/engines/aws/account-limits.js';

test("a new account's concurrency of 10 caps the Map at 8 with a warning that says what to do", () => {
  const capped = capConcurrency(1000, { limit: 10, unreserved: 10 });
  assert.equal(capped.maxConcurrency, 8);
  assert.match(capped.warning ?? '', /at most 10 Lambda functions.*capped from 1000 to 8.*Service Quotas/);
});

test('reserved concurrency elsewhere in the account shrinks the pool the Map may use', () => {
  assert.equal(capConcurrency(1000, { limit: 1000, unreserved: 400 }).maxConcurrency, 398);
});

test('within the account limit, or when it is unknown, the setting stands with no warning', () => {
  assert.deepEqual(capConcurrency(100, { limit: 1000, unreserved: 1000 }), { maxConcurrency: 100 });
  assert.deepEqual(capConcurrency(1000, undefined), { maxConcurrency: 1000 });
  assert.equal(capConcurrency(5, { limit: 2, unreserved: 2 }).maxConcurrency, 1, 'never below one');
});
