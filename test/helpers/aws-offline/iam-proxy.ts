// An S3 front door per Lambda function: every request the function makes is checked against its role's
// policy from the synthesized template before it reaches the local S3 server, as S3 itself would.
import { startLoopbackProxy } from '../loopback-proxy.js';
import { isAllowed, type RequestContext } from './iam.js';
import type { PolicyStatementJson } from './template.js';

/** One S3 request in IAM terms: what S3 authorizes it as. */
export interface S3Authorization {
  readonly action: string;
  readonly resource: string;
  readonly context: RequestContext;
}

/** A request the proxy refused. */
export interface IamDenial extends S3Authorization {
  readonly principal: string;
  readonly method: string;
  readonly url: string;
}

/**
 * The IAM actions S3 authorizes a path-style request with (one per object of a DeleteObjects body,
 * which the caller parses). Covers the operations CAI's stores use: list, get and head, put, the
 * multipart upload calls, delete.
 *
 * @example s3Authorizations('GET', '/b/out/1.json', new URLSearchParams()) // [{ action: 's3:GetObject', ... }]
 */
export function s3Authorizations(method: string, path: string, query: URLSearchParams): S3Authorization[] {
  const [bucket, ...rest] = path.replace(/^\//, '').split('/');
  const key = decodeURIComponent(rest.join('/'));
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const object = `${bucketArn}/${key}`;
  const one = (action: string, resource: string, context: RequestContext = {}) => [
    { action, resource, context },
  ];
  if (!key) {
    if (method === 'GET' && query.has('uploads')) return one('s3:ListBucketMultipartUploads', bucketArn);
    if (method === 'GET' || method === 'HEAD')
      return one(
        's3:ListBucket',
        bucketArn,
        query.has('prefix') ? { 's3:prefix': query.get('prefix') ?? '' } : {},
      );
    return one(`s3:${method}Bucket`, bucketArn);
  }
  if (method === 'GET' && query.has('uploadId')) return one('s3:ListMultipartUploadParts', object);
  if (method === 'GET' || method === 'HEAD') return one('s3:GetObject', object);
  if (method === 'DELETE')
    return one(query.has('uploadId') ? 's3:AbortMultipartUpload' : 's3:DeleteObject', object);
  return one('s3:PutObject', object);
}

/** A running IAM-checking proxy. */
export interface IamProxy {
  readonly endpoint: string;
  readonly denials: IamDenial[];
  stop(): Promise<void>;
}

/**
 * Starts a proxy on 127.0.0.1 in front of `target` that answers `403 AccessDenied` to every request the
 * `policy` does not allow, and, like S3 for a caller without `s3:ListBucket` on the whole bucket, answers
 * `403` instead of `404` to a GET or HEAD of a missing object.
 *
 * @example const p = await startIamProxy({ target: s3.endpoint, principal: 'InferenceRole', policy });
 */
export async function startIamProxy(options: {
  target: string;
  principal: string;
  policy: readonly PolicyStatementJson[];
}): Promise<IamProxy> {
  const denials: IamDenial[] = [];
  const accessDenied = (message: string) => ({ status: 403, code: 'AccessDenied', message });
  const proxy = await startLoopbackProxy(options.target, {
    request: ({ req, method, url }) => {
      // DeleteObjects is authorized as s3:DeleteObject on each key of its body.
      if (method === 'POST' && url.searchParams.has('delete'))
        return accessDenied('DeleteObjects is not used by CAI and not modelled offline');
      for (const a of s3Authorizations(method, url.pathname, url.searchParams)) {
        if (!isAllowed(options.policy, a.action, a.resource, a.context)) {
          denials.push({ ...a, principal: options.principal, method, url: req.url ?? '' });
          return accessDenied(
            `User: ${options.principal} is not authorized to perform: ${a.action} on resource: "${a.resource}" because no identity-based policy allows the ${a.action} action`,
          );
        }
      }
      return undefined;
    },
    response: ({ method, url }, up) => {
      const [bucket, ...key] = url.pathname.replace(/^\//, '').split('/');
      const missingObject =
        up.statusCode === 404 && key.join('/') !== '' && (method === 'GET' || method === 'HEAD');
      return missingObject && !isAllowed(options.policy, 's3:ListBucket', `arn:aws:s3:::${bucket}`)
        ? accessDenied('Access Denied')
        : undefined;
    },
  });
  return { endpoint: proxy.endpoint, denials, stop: proxy.stop };
}
