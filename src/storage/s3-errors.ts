import { CaiError, ErrorCodes } from '../errors.js';
import { isTransientNetworkError } from './retry.js';

/** The parts of an AWS SDK v3 service error CAI looks at. */
interface SdkErrorShape {
  readonly name?: string;
  readonly Code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $response?: { readonly statusCode?: number };
}

/** S3 error codes that mean "slow down or try again", whatever their HTTP status. */
const RETRYABLE_NAMES: ReadonlySet<string> = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'BandwidthLimitExceeded',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'OperationAborted',
]);

/** Codes that mean the caller may not do this: fixing it takes a person, not a retry. */
const DENIED_NAMES: ReadonlySet<string> = new Set([
  'AccessDenied',
  'Forbidden',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
]);

/**
 * The S3 error code of an SDK error (`NoSuchKey`, `SlowDown`...), or its name for other errors.
 * @example if (s3ErrorName(err) === 'NoSuchKey') return undefined;
 */
export function s3ErrorName(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & SdkErrorShape;
  return typeof e.Code === 'string' ? e.Code : e.name;
}

/**
 * The HTTP status of an SDK error, when a response arrived.
 * @example if (s3ErrorStatus(err) === 404) return undefined;
 */
export function s3ErrorStatus(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & SdkErrorShape;
  return e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
}

/**
 * Whether an S3 request that failed this way may succeed if sent again: throttling (503 SlowDown,
 * 429), server errors (5xx except 501), request timeouts and dropped connections. A missing bucket
 * or key, denied access and malformed requests are not: retrying them only delays the error.
 *
 * @example isRetryableS3Error(Object.assign(new Error('x'), { name: 'SlowDown' })) // true
 */
export function isRetryableS3Error(err: unknown): boolean {
  const name = s3ErrorName(err);
  if (name && RETRYABLE_NAMES.has(name)) return true;
  const status = s3ErrorStatus(err);
  if (status !== undefined && status >= 400) return status === 429 || (status >= 500 && status !== 501);
  return isTransientNetworkError(err);
}

/**
 * Turns an SDK error into a {@link CaiError} naming the `s3://` URI and what to do, when it is one a
 * person must fix (missing bucket or key, denied access, missing credentials or region). Other errors
 * (transient ones that outlasted the retries, unexpected ones) are returned unchanged so that callers
 * and engines can still classify them by their original code.
 *
 * @example throw toS3Error(err, 's3://bucket/data/1.pt', 's3://bucket');
 */
export function toS3Error(err: unknown, uri: string, bucketUri: string): unknown {
  if (err instanceof CaiError || !(err instanceof Error)) return err;
  const name = s3ErrorName(err) ?? '';
  const status = s3ErrorStatus(err);
  const opts = { cause: err };
  if (name === 'NoSuchBucket') {
    return new CaiError(
      ErrorCodes.notFound,
      uri,
      `the bucket ${bucketUri} does not exist; check the bucket name (and --s3-endpoint for S3-compatible stores) or create the bucket`,
      opts,
    );
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    return new CaiError(ErrorCodes.notFound, uri, 'the object does not exist; check the key or prefix', opts);
  }
  if (DENIED_NAMES.has(name) || status === 403) {
    return new CaiError(
      ErrorCodes.accessDenied,
      uri,
      `access denied (${name || status}); check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and that the bucket policy allows this principal to read and write ${bucketUri}`,
      opts,
    );
  }
  if (name === 'PreconditionFailed' || status === 412) {
    return new CaiError(
      ErrorCodes.corrupt,
      uri,
      'the object was replaced while it was being read in parts; try again once writers are done',
      opts,
    );
  }
  if (name === 'CredentialsProviderError') {
    return new CaiError(
      ErrorCodes.accessDenied,
      uri,
      'no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached',
      opts,
    );
  }
  if (/region is missing/i.test(err.message)) {
    return new CaiError(
      ErrorCodes.option,
      uri,
      'no AWS region configured; set AWS_REGION (e.g. us-east-1)',
      opts,
    );
  }
  return err;
}
