import http from 'node:http';
import type { AddressInfo } from 'node:net';

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
  const url = new URL(target);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error(`request log forwards to loopback only, not ${url.hostname}`);
  }
  const agent = new http.Agent({ keepAlive: true });
  const log: LoggedRequest[] = [];

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const entry = {
      method,
      path: decodeURIComponent(q < 0 ? raw : raw.slice(0, q)),
      query: q < 0 ? '' : raw.slice(q + 1),
      ...(req.headers.range ? { range: req.headers.range } : {}),
    };
    let answered = false;
    const upstream = http.request(
      { host: url.hostname, port: url.port, method, path: raw, headers: req.headers, agent },
      (up) => {
        answered = true;
        log.push({ ...entry, status: up.statusCode ?? 502 });
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        // A body cut off upstream (a fault proxy's mid-stream drop) must reach the client as a cut.
        up.on('aborted', () => res.socket?.destroy());
        up.on('error', () => res.socket?.destroy());
      },
    );
    upstream.on('error', () => {
      if (!answered) log.push({ ...entry, status: 'dropped' });
      res.socket?.destroy();
    });
    req.pipe(upstream);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= new Promise<void>((resolve) => {
      clearTimeout(lifetime);
      server.close(() => resolve());
      server.closeAllConnections();
      agent.destroy();
    }));
  const lifetime = setTimeout(() => void stop(), lifetimeMs);
  lifetime.unref();
  return { endpoint: `http://127.0.0.1:${port}`, requests: () => [...log], stop };
}
