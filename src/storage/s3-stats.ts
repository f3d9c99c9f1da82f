import { AsyncLocalStorage } from 'node:async_hooks';
import type { Store } from './store.js';

/** Requests, bytes and seconds a partition spent talking to object storage, per stage. */
export interface StorageStats {
  readonly requests: number;
  /** Requests that were retries of a failed one (throttling, 5xx, dropped connections). */
  readonly retries: number;
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * Cumulative traffic of one store since it was opened. `requests` counts HTTP requests as sent,
 * retries included; `retries` how many of them were retries; `bytes` the request and response bodies
 * of every one of them (a retried download counts twice, as it was paid twice); `seconds` the
 * wall-clock time of the store's calls, backoff included, summed over calls (concurrent calls add up).
 *
 * @example const { requests, retries, bytes, seconds }: StoreStats = store.stats();
 */
export interface StoreStats extends StorageStats {
  readonly retries: number;
}

/**
 * A store that counts its traffic, e.g. {@link S3Store}.
 * @example if (isCountingStore(store)) console.log(store.stats().requests);
 */
export interface CountingStore extends Store {
  /** A frozen snapshot of the counters; diff two snapshots to get one stage's traffic. */
  stats(): StoreStats;
}

/**
 * All zeros, the traffic of a store that has done nothing.
 * @example const read = isCountingStore(input) ? input.stats() : zeroStats;
 */
export const zeroStats: StoreStats = Object.freeze({ requests: 0, retries: 0, bytes: 0, seconds: 0 });

/**
 * The traffic between two snapshots of the same store: what one stage cost, when nothing else used
 * the store meanwhile (otherwise use {@link measureTraffic}).
 *
 * @example
 * const before = input.stats();
 * const bytes = await input.get('1.pt');
 * record.storage = { read: diffStats(input.stats(), before) };
 */
export function diffStats(after: StoreStats, before: StoreStats): StoreStats {
  return Object.freeze({
    requests: after.requests - before.requests,
    retries: after.retries - before.retries,
    bytes: after.bytes - before.bytes,
    seconds: after.seconds - before.seconds,
  });
}

/**
 * The sum of several stores' traffic, e.g. input and output stores of one stage.
 * @example const total = addStats(input.stats(), output.stats());
 */
export function addStats(...all: StoreStats[]): StoreStats {
  return Object.freeze(
    all.reduce<StoreStats>(
      (a, b) => ({
        requests: a.requests + b.requests,
        retries: a.retries + b.retries,
        bytes: a.bytes + b.bytes,
        seconds: a.seconds + b.seconds,
      }),
      zeroStats,
    ),
  );
}

/**
 * Whether a store counts its traffic; local stores do not, and the record leaves `storage` out.
 * @example const snap = isCountingStore(store) ? store.stats() : undefined;
 */
export function isCountingStore(store: Store): store is CountingStore {
  return typeof (store as Partial<CountingStore>).stats === 'function';
}

/** Mutable totals; the counters of stores and of {@link measureTraffic} scopes add to them. */
class Totals {
  requests = 0;
  retries = 0;
  bytes = 0;
  seconds = 0;

  snapshot(): StoreStats {
    return Object.freeze({
      requests: this.requests,
      retries: this.retries,
      bytes: this.bytes,
      seconds: this.seconds,
    });
  }
}

// The scopes of the measureTraffic calls the current async context runs inside, innermost last.
const scopes = new AsyncLocalStorage<readonly Totals[]>();

/**
 * Runs `fn` and returns, with its result, the traffic of every counting store that `fn` (and only
 * `fn`: whatever it awaits, not work running beside it) caused. Diffing a store's snapshots before and
 * after cannot tell apart two operations that overlap on the same store, such as a worker reading its
 * current partition while it prefetches the next; this can, because each request is charged to the
 * scopes of the async context that sent it. Scopes nest: an outer scope sees its inner scopes' traffic.
 *
 * @example
 * const { result: bytes, traffic } = await measureTraffic(() => input.get('1.pt'));
 * record.storage = { read: traffic };
 */
export async function measureTraffic<T>(fn: () => Promise<T>): Promise<{ result: T; traffic: StoreStats }> {
  const totals = new Totals();
  const result = await scopes.run([...(scopes.getStore() ?? []), totals], fn);
  return { result, traffic: totals.snapshot() };
}

function charge(own: Totals, add: (t: Totals) => void): void {
  add(own);
  for (const scope of scopes.getStore() ?? []) add(scope);
}

/**
 * The mutable counters behind {@link CountingStore.stats}; the S3 client's middleware and the
 * store's calls add to it, and to the {@link measureTraffic} scopes they run in.
 *
 * @example const c = new StatsCounter(); c.request(1024); c.stats().requests // 1
 */
export class StatsCounter {
  private readonly totals = new Totals();

  /** One HTTP request sent, with the bytes of its request and response bodies. */
  request(bytes: number): void {
    charge(this.totals, (t) => {
      t.requests += 1;
      t.bytes += bytes;
    });
  }

  /** Bytes of a body that arrived or left after the request was counted. */
  addBytes(bytes: number): void {
    charge(this.totals, (t) => (t.bytes += bytes));
  }

  retry(): void {
    charge(this.totals, (t) => (t.retries += 1));
  }

  /** Times one call of the store, backoff included, whether it succeeds or throws. */
  async time<T>(fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      const seconds = (performance.now() - start) / 1000;
      charge(this.totals, (t) => (t.seconds += seconds));
    }
  }

  stats(): StoreStats {
    return this.totals.snapshot();
  }
}
