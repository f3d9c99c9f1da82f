// The one HTTP proxy the tests put in front of the loopback S3 server: forwarding, S3-style error
// answers and stopping live here once; the proxies that check IAM, record requests or inject faults
// differ only in their hooks. Exports only; `node --test` running this file does nothing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request, as the hooks see it. */
export interface ProxiedRequest {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly method: string;
  /** The request's URL, parsed; path-style S3 puts the bucket first: `/<bucket>/<key>`. */
  readonly url: URL;
}

/** An answer in S3's error format (an XML body, none for HEAD). */
export interface S3ErrorAnswer {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly requestId?: string;
}

/** What a hook did: answer with an S3 error, or `handled` (it answered or cut the connection itself). */
export type HookAnswer = S3ErrorAnswer | 'handled' | undefined;

/** What a proxy does besides forwarding; every hook is optional. */
export interface ProxyHooks {
  /** Before the request is forwarded; an answer keeps it from the server. */
  readonly request?: (r: ProxiedRequest) => HookAnswer;
  /** The server's answer, before the client gets it; an answer replaces it. */
  readonly response?: (r: ProxiedRequest, upstream: http.IncomingMessage) => HookAnswer;
  /** The connection to the server broke before the server answered. */
  readonly dropped?: (r: ProxiedRequest) => void;
}

/** A running proxy. */
export interface LoopbackProxy {
  /** `http://127.0.0.1:<port>`: give this to the client instead of the server's endpoint. */
  readonly endpoint: string;
  /** Closes the proxy and every connection. Safe to call twice. */
  stop(): Promise<void>;
}

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

/**
 * Answers a request with an S3 error, after reading the whole request as S3 does (so the client sees
 * the answer, not a broken pipe).
 *
 * @example answerS3Error(req, res, { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' });
 */
export function answerS3Error(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  answer: S3ErrorAnswer,
): void {
  const id = answer.requestId === undefined ? '' : `<RequestId>${answer.requestId}</RequestId>`;
  const body =
    req.method === 'HEAD'
      ? ''
      : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${answer.code}</Code><Message>${answer.message}</Message>${id}</Error>`;
  const send = () => {
    res.writeHead(answer.status, {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  };
  if (req.readableEnded) send();
  else {
    req.on('end', send);
    req.resume();
  }
}

/**
 * Starts an HTTP proxy on 127.0.0.1 in front of a server on loopback, calling `hooks` around each
 * request. It does not keep the process alive, and with `lifetimeMs` it stops itself after that long.
 *
 * @example
 * const proxy = await startLoopbackProxy(s3.endpoint, { response: (r, up) => void seen.push(up.statusCode) });
 * const store = new S3Store('s3://b/x', { s3Endpoint: proxy.endpoint });
 */
export async function startLoopbackProxy(
  target: string,
  hooks: ProxyHooks = {},
  lifetimeMs?: number,
): Promise<LoopbackProxy> {
  const to = new URL(target);
  if (!LOOPBACK.includes(to.hostname))
    throw new Error(`a test proxy forwards to loopback only, not ${to.hostname}`);
  const agent = new http.Agent({ keepAlive: true });
  const answer = (r: ProxiedRequest, a: HookAnswer): boolean => {
    if (a && a !== 'handled') answerS3Error(r.req, r.res, a);
    return a !== undefined;
  };

  const server = http.createServer((req, res) => {
    const r: ProxiedRequest = {
      req,
      res,
      method: req.method ?? 'GET',
      url: new URL(req.url ?? '/', 'http://x'),
    };
    if (answer(r, hooks.request?.(r))) return;
    let answered = false;
    const upstream = http.request(
      { host: to.hostname, port: to.port, method: r.method, path: req.url, headers: req.headers, agent },
      (up) => {
        answered = true;
        const replaced = hooks.response?.(r, up);
        if (replaced !== undefined) {
          if (replaced !== 'handled') up.resume();
          answer(r, replaced);
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        // A body cut off upstream (a fault proxy's mid-stream drop) must reach the client as a cut.
        up.on('aborted', () => res.socket?.destroy());
        up.on('error', () => res.socket?.destroy());
      },
    );
    upstream.on('error', () => {
      if (!answered) hooks.dropped?.(r);
      res.socket?.destroy();
    });
    req.pipe(upstream);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const { port } = server.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= new Promise<void>((resolve) => {
      if (lifetime) clearTimeout(lifetime);
      server.close(() => resolve());
      server.closeAllConnections();
      agent.destroy();
    }));
  const lifetime = lifetimeMs === undefined ? undefined : setTimeout(() => void stop(), lifetimeMs).unref();
  return { endpoint: `http://127.0.0.1:${port}`, stop };
}
