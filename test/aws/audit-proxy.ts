// An HTTP proxy in front of the local S3 server that records every request the code under test makes
// (to check them against the stack's IAM policies) and can fail chosen requests with S3's 503 SlowDown
// a few times (a transient fault). Exports only; `node --test` running this file does nothing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One S3 request as the proxy saw it, in IAM terms. */
export interface AuditedRequest {
  readonly method: string;
  readonly bucket: string;
  readonly key: string;
  /** `prefix` of a ListObjectsV2. */
  readonly prefix?: string;
  readonly list: boolean;
  readonly status: number;
  /** The IAM action S3 authorizes the request with. */
  readonly action: string;
  /** The ARN it is authorized on. */
  readonly resource: string;
}

/** A running audit proxy. */
export interface AuditProxy {
  readonly endpoint: string;
  readonly requests: AuditedRequest[];
  /** How many requests were failed on purpose. */
  faults(): number;
  stop(): Promise<void>;
}

function iamOf(
  method: string,
  bucket: string,
  key: string,
  query: URLSearchParams,
): { action: string; resource: string } {
  const object = `arn:aws:s3:::${bucket}/${key}`;
  if (!key) return { action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}` };
  if (method === 'GET' || method === 'HEAD') return { action: 's3:GetObject', resource: object };
  if (method === 'DELETE')
    return {
      action: query.has('uploadId') ? 's3:AbortMultipartUpload' : 's3:DeleteObject',
      resource: object,
    };
  return { action: 's3:PutObject', resource: object };
}

/**
 * Starts the proxy on 127.0.0.1. Requests for which `fail` returns true are answered `503 SlowDown`
 * (without reaching the server) until `failTimes` such answers were given.
 */
export async function startAuditProxy(options: {
  target: string;
  fail?: (method: string, bucket: string, key: string) => boolean;
  failTimes?: number;
}): Promise<AuditProxy> {
  const target = new URL(options.target);
  const requests: AuditedRequest[] = [];
  let faults = 0;
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const [bucket, ...rest] = url.pathname.slice(1).split('/');
    const key = decodeURIComponent(rest.join('/'));
    const method = req.method ?? 'GET';
    const list = !key && method === 'GET' && url.searchParams.has('list-type');
    const base = {
      method,
      bucket,
      key,
      list,
      prefix: url.searchParams.get('prefix') ?? undefined,
      ...iamOf(method, bucket, key, url.searchParams),
    };
    if (options.fail?.(method, bucket, key) && faults < (options.failTimes ?? 1)) {
      faults++;
      req.resume();
      req.on('end', () => {
        const body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
        requests.push({ ...base, status: 503 });
        res.writeHead(503, {
          'content-type': 'application/xml',
          'content-length': method === 'HEAD' ? 0 : Buffer.byteLength(body),
        });
        res.end(method === 'HEAD' ? '' : body);
      });
      return;
    }
    const upstream = http.request(
      { host: target.hostname, port: target.port, method, path: req.url, headers: req.headers, agent },
      (up) => {
        requests.push({ ...base, status: up.statusCode ?? 0 });
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    faults: () => faults,
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
