import http from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelay, isTransientNetworkError, withRetry } from '../../src/storage/retry.js';

/** A real client-side error from a real socket: the request's 'error' event. */
async function requestError(handler: http.RequestListener | undefined): Promise<Error> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  if (!handler) await new Promise<void>((resolve) => server.close(() => resolve()));
  try {
    return await new Promise<Error>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.on('error', resolve);
        res.resume();
      });
      req.on('error', resolve);
    });
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

describe('withRetry', () => {
  const fast = { baseMs: 1, maxMs: 4 };

  test('retries retryable failures until one succeeds, reporting each retry', async () => {
    const seen: Array<[number, number]> = [];
    let calls = 0;
    const result = await withRetry(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw Object.assign(new Error('busy'), { code: 'ECONNRESET' });
        return `ok on ${attempt}`;
      },
      {
        attempts: 5,
        ...fast,
        isRetryable: isTransientNetworkError,
        onRetry: (_e, n, d) => seen.push([n, d]),
      },
    );
    assert.equal(result, 'ok on 3');
    assert.equal(calls, 3);
    assert.deepEqual(
      seen.map(([n]) => n),
      [1, 2],
    );
    for (const [n, d] of seen) assert.ok(d >= 0 && d < Math.min(4, 2 ** (n - 1)), `delay ${d} of retry ${n}`);
  });

  test('gives up after `attempts` tries and throws the last error unchanged', async () => {
    let calls = 0;
    const err = Object.assign(new Error('still busy'), { code: 'ETIMEDOUT' });
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw err;
        },
        { attempts: 4, ...fast, isRetryable: () => true },
      ),
      (e) => e === err,
    );
    assert.equal(calls, 4);
  });

  test('throws a non-retryable error at once', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new Error('no such key');
        },
        { attempts: 9, ...fast, isRetryable: isTransientNetworkError },
      ),
      /no such key/,
    );
    assert.equal(calls, 1);
  });

  test('stops waiting when its signal aborts', async () => {
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(
      withRetry(
        async () => {
          throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        },
        {
          attempts: 10,
          baseMs: 60_000,
          maxMs: 60_000,
          random: () => 0.99,
          isRetryable: () => true,
          signal: ac.signal,
        },
      ),
      { name: 'AbortError' },
    );
    assert.ok(Date.now() - started < 5_000);
  });
});

describe('backoffDelay', () => {
  test('draws uniformly below a ceiling that doubles per retry up to maxMs (full jitter)', () => {
    assert.equal(
      backoffDelay(1, 100, 20_000, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(1, 100, 20_000, () => 0.999),
      99,
    );
    assert.equal(
      backoffDelay(2, 100, 20_000, () => 0.5),
      100,
    );
    assert.equal(
      backoffDelay(4, 100, 20_000, () => 0.5),
      400,
    );
    assert.equal(
      backoffDelay(20, 100, 20_000, () => 0.5),
      10_000,
    );
  });
});

describe('isTransientNetworkError', () => {
  test('recognizes a real socket hang-up, a reset mid-body and a refused connection', async () => {
    const hangUp = await requestError((req) => req.socket.destroy());
    assert.match(hangUp.message, /socket hang up/);
    assert.ok(isTransientNetworkError(hangUp));

    const midBody = await requestError((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(10), () => res.socket?.destroy());
    });
    assert.ok(
      isTransientNetworkError(midBody),
      `${midBody.message} (${(midBody as NodeJS.ErrnoException).code})`,
    );

    const refused = await requestError(undefined);
    assert.equal((refused as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.ok(isTransientNetworkError(refused));
  });

  test('does not call ordinary errors transient, but looks through causes', () => {
    assert.equal(isTransientNetworkError(new Error('The specified key does not exist.')), false);
    assert.equal(isTransientNetworkError('ECONNRESET'), false);
    const wrapped = new Error('read failed', { cause: Object.assign(new Error('x'), { code: 'EPIPE' }) });
    assert.ok(isTransientNetworkError(wrapped));
  });
});
