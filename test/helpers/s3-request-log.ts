import { startLoopbackProxy, type ProxiedRequest } from './loopback-proxy.js';

/** One HTTP request that went through a {@link startRequestLog} proxy. */
export interface LoggedRequest {
  readonly method: string;
  /** Path-style: `/<bucket>/<key>`, URL-decoded, without the query. */
  readonly path: string;
  /** The query string without `?`, e.g. `list-type=2&prefix=data%2F`. */
  readonly query: string;
  /** The `Range` header, when there was one. */
  readonly range?: string;
  /** The status the client saw, or `dropped` when the connection broke before an answer. */
  readonly status: number | 'dropped';
  /** Bytes of the answer's body, as the server declared them (`content-length`; 0 when none). */
  readonly bytes: number;
}

/** A running request log. */
export interface RequestLog {
  /** `http://127.0.0.1:<port>`: give this to the client instead of the server's endpoint. */
  readonly endpoint: string;
  /** Every request so far, in the order they arrived. */
  requests(): readonly LoggedRequest[];
  /** Closes the proxy and every connection. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a transparent HTTP proxy on 127.0.0.1 in front of a local S3 server (or a fault proxy) that
 * records every request's method, path, range and status, so end-to-end tests can count what a run
 * asked of S3 (e.g. how often the model was downloaded) across all of its processes.
 *
 * @example
 * const log = await startRequestLog(s3.endpoint);
 * // ... run against log.endpoint ...
 * const modelGets = log.requests().filter((r) => r.method === 'GET' && r.path.endsWith('.onnx'));
 */
export async function startRequestLog(target: string, lifetimeMs = 120_000): Promise<RequestLog> {
  const log: LoggedRequest[] = [];
  const entry = ({ req, method }: ProxiedRequest) => {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    return {
      method,
      path: decodeURIComponent(q < 0 ? raw : raw.slice(0, q)),
      query: q < 0 ? '' : raw.slice(q + 1),
      ...(req.headers.range ? { range: req.headers.range } : {}),
    };
  };
  const proxy = await startLoopbackProxy(
    target,
    {
      response: (r, up) => {
        const bytes = r.method === 'HEAD' ? 0 : Number(up.headers['content-length'] ?? 0);
        log.push({ ...entry(r), status: up.statusCode ?? 502, bytes });
        return undefined;
      },
      dropped: (r) => log.push({ ...entry(r), status: 'dropped', bytes: 0 }),
    },
    lifetimeMs,
  );
  return { endpoint: proxy.endpoint, requests: () => [...log], stop: proxy.stop };
}
