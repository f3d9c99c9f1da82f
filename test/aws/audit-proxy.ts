// An HTTP proxy in front of the local S3 server that records every request the code under test makes,
// with the IAM action S3 authorizes it as (to check them against the stack's policies). Exports only;
// `node --test` running this file does nothing.
import { s3Authorizations } from '../helpers/aws-offline/iam-proxy.js';
import { startLoopbackProxy, type ProxiedRequest } from '../helpers/loopback-proxy.js';

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
  stop(): Promise<void>;
}

/**
 * Starts the proxy on 127.0.0.1, in front of `target`.
 * @example const proxy = await startAuditProxy({ target: s3.endpoint }); ... proxy.requests
 */
export async function startAuditProxy(options: { target: string }): Promise<AuditProxy> {
  const requests: AuditedRequest[] = [];
  const audited = ({ method, url }: ProxiedRequest) => {
    const [bucket, ...rest] = url.pathname.slice(1).split('/');
    const key = decodeURIComponent(rest.join('/'));
    const [{ action, resource }] = s3Authorizations(method, url.pathname, url.searchParams);
    return {
      method,
      bucket,
      key,
      list: !key && method === 'GET' && url.searchParams.has('list-type'),
      prefix: url.searchParams.get('prefix') ?? undefined,
      action,
      resource,
    };
  };
  const proxy = await startLoopbackProxy(options.target, {
    response: (r, up) => {
      requests.push({ ...audited(r), status: up.statusCode ?? 0 });
      return undefined;
    },
  });
  return { endpoint: proxy.endpoint, requests, stop: proxy.stop };
}
