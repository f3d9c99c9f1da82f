import type http from 'node:http';
import { Random } from '../../src/tensor/random.js';
import { startLoopbackProxy, type HookAnswer, type ProxiedRequest } from './loopback-proxy.js';

/** Which faults a {@link startFaultProxy} injects, and how many. */
export interface FaultProxyOptions {
  /** The server to forward to, e.g. the s3rver endpoint `http://127.0.0.1:4568`. Loopback only. */
  readonly target: string;
  /** Seed of the fault draws; the same seed and request order give the same faults. */
  readonly seed?: number;
  /** Share of requests answered `503 SlowDown` with S3's XML error body, without reaching the server. */
  readonly slowDownRate?: number;
  /**
   * Share of requests whose connection is destroyed: before the request reaches the server, or, for
   * GET, halfway through the response body, and for PUT, after the server has stored the object but
   * before the client hears so (both retry-safe). POSTs (multipart initiate/complete) are only dropped
   * before they reach the server: s3rver answers a repeated CompleteMultipartUpload with a 500.
   */
  readonly dropRate?: number;
  /**
   * Where drops happen: `before` the server sees the request, `after` it answered (GET and PUT only,
   * others are dropped before), or `either`, drawn per drop (the default).
   */
  readonly dropWhere?: 'before' | 'after' | 'either';
  /**
   * Share of GETs (whole or ranged) answered with a well-formed 200 or 206 whose Content-Length and body
   * are half the response's, every other header (ETag, Content-Range, x-amz-meta-*) kept: nothing at the
   * HTTP level is wrong, only a client that knows the size can tell.
   */
  readonly shortRate?: number;
  /**
   * GETs whose URL this matches are cut short (as {@link shortRate}) the first time each (URL, range) is
   * asked, whatever the draw: so a test can be sure every kind of read met one.
   */
  readonly shortFirst?: (url: string) => boolean;
  /** Only requests for which this returns true may fail; all by default. */
  readonly eligible?: (method: string, url: string) => boolean;
  /** At most this many faults in all; 500 by default. */
  readonly maxFaults?: number;
  /**
   * At most this many faults in a row for the same request (method, URL and range), so a client that
   * retries `maxConsecutive` times always gets through; 2 by default.
   */
  readonly maxConsecutive?: number;
  /** The proxy closes itself after this many milliseconds; 120 s by default. */
  readonly lifetimeMs?: number;
}

/** What the proxy did so far. */
export interface FaultCounts {
  readonly requests: number;
  readonly forwarded: number;
  readonly slowDowns: number;
  readonly drops: number;
  /** Drops after the server handled the request: GET bodies cut halfway, PUT answers lost. */
  readonly dropsAfterServer: number;
  /** GETs answered with half the body (see {@link FaultProxyOptions.shortRate}). */
  readonly shorts: number;
  /** The URLs (path and query) of the GETs answered short, in order. */
  readonly shortUrls: readonly string[];
}

/** A running fault proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: give this to the client instead of the server's endpoint. */
  readonly endpoint: string;
  counts(): FaultCounts;
  /** Closes the proxy and every connection. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts an HTTP proxy on 127.0.0.1 in front of a local S3 server that, for a seeded share of
 * requests, answers `503 SlowDown` or drops the connection, so tests can check that retries keep
 * every object intact. Bounded in faults and lifetime; it closes itself if a test forgets to.
 *
 * @example
 * const proxy = await startFaultProxy({ target: s3.endpoint, seed: 7, slowDownRate: 0.1, dropRate: 0.1 });
 * const store = new S3Store('s3://b/x', { s3Endpoint: proxy.endpoint });
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const rng = new Random(options.seed ?? 1);
  const random = () => rng.uniform();
  const slowDownRate = options.slowDownRate ?? 0;
  const dropRate = options.dropRate ?? 0;
  const maxFaults = options.maxFaults ?? 500;
  const maxConsecutive = options.maxConsecutive ?? 2;
  const streak = new Map<string, number>();
  const shortRate = options.shortRate ?? 0;
  const shortened = new Set<string>();
  const counts = { requests: 0, forwarded: 0, slowDowns: 0, drops: 0, dropsAfterServer: 0, shorts: 0 };
  const shortUrls: string[] = [];
  // What was drawn for each forwarded request, for when its answer comes back.
  const planned = new WeakMap<http.IncomingMessage, { short: boolean; dropLate: boolean }>();

  const request = ({ req, method }: ProxiedRequest): HookAnswer => {
    counts.requests += 1;
    const url = req.url ?? '/';
    const signature = `${method} ${url} ${req.headers.range ?? ''}`;
    const draw = random();
    const faults = counts.slowDowns + counts.drops + counts.shorts;
    const allowed =
      faults < maxFaults &&
      (streak.get(signature) ?? 0) < maxConsecutive &&
      (options.eligible?.(method, url) ?? true);
    const first = method === 'GET' && !shortened.has(signature) && (options.shortFirst?.(url) ?? false);
    const fault = !allowed
      ? 'none'
      : first
        ? 'short'
        : draw < slowDownRate
          ? 'slowdown'
          : draw < slowDownRate + dropRate
            ? 'drop'
            : draw < slowDownRate + dropRate + shortRate && method === 'GET'
              ? 'short'
              : 'none';
    if (fault === 'short') shortened.add(signature);
    streak.set(signature, fault === 'none' ? 0 : (streak.get(signature) ?? 0) + 1);

    if (fault === 'slowdown') {
      counts.slowDowns += 1;
      const message = 'Please reduce your request rate.';
      return { status: 503, code: 'SlowDown', message, requestId: `cai-fault-${counts.requests}` };
    }
    // Where a drop happens: before the server sees the request (any method), or after (GET, PUT).
    const where = options.dropWhere ?? 'either';
    const dropLate =
      fault === 'drop' &&
      (method === 'GET' || method === 'PUT') &&
      (where === 'after' || (where === 'either' && random() < 0.5));
    if (fault === 'drop') {
      counts.drops += 1;
      if (dropLate) counts.dropsAfterServer += 1;
      else {
        req.socket.destroy();
        return 'handled';
      }
    }
    counts.forwarded += 1;
    planned.set(req, { short: fault === 'short', dropLate });
    return undefined;
  };

  const response = ({ req, res, method }: ProxiedRequest, up: http.IncomingMessage): HookAnswer => {
    const plan = planned.get(req);
    if (plan?.short && (up.statusCode === 200 || up.statusCode === 206)) {
      counts.shorts += 1;
      shortUrls.push(req.url ?? '/');
      const chunks: Buffer[] = [];
      up.on('data', (chunk: Buffer) => chunks.push(chunk));
      up.on('end', () => {
        const whole = Buffer.concat(chunks);
        const half = whole.subarray(0, Math.floor(whole.length / 2));
        res.writeHead(up.statusCode ?? 200, { ...up.headers, 'content-length': String(half.length) });
        res.end(half);
      });
      return 'handled';
    }
    if (!plan?.dropLate) return undefined;
    if (method !== 'GET') {
      up.resume();
      up.on('end', () => res.socket?.destroy());
      return 'handled';
    }
    // Send the headers and half the body, then cut the connection mid-stream.
    const cut = Math.floor(Number(up.headers['content-length'] ?? 0) / 2);
    res.writeHead(up.statusCode ?? 502, up.headers);
    let sent = 0;
    up.on('data', (chunk: Buffer) => {
      if (sent >= cut) return;
      const piece = chunk.subarray(0, cut - sent);
      sent += piece.length;
      res.write(piece);
      if (sent >= cut) res.socket?.destroy();
    });
    up.on('end', () => res.socket?.destroy());
    return 'handled';
  };

  const proxy = await startLoopbackProxy(
    options.target,
    { request, response },
    options.lifetimeMs ?? 120_000,
  );
  return {
    endpoint: proxy.endpoint,
    counts: () => ({ ...counts, shortUrls: [...shortUrls] }),
    stop: proxy.stop,
  };
}
