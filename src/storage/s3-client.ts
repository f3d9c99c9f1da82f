import { Readable } from 'node:stream';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { backoffDelay, type RetryPolicy } from './retry.js';
import { isRetryableS3Error } from './s3-errors.js';
import type { StatsCounter } from './s3-stats.js';

/**
 * How to build the S3 client of one store.
 * @example const settings: S3ClientSettings = { endpoint: 'http://127.0.0.1:9000', retry: defaultRetryPolicy };
 */
export interface S3ClientSettings {
  /** An S3-compatible endpoint; implies path-style addressing. */
  readonly endpoint?: string;
  /** Region; otherwise the SDK's chain (`AWS_REGION`, profile), or `us-east-1` with a custom endpoint. */
  readonly region?: string;
  /** Static credentials; otherwise the SDK's standard chain (env, profile, SSO, container, instance). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /**
   * `when_required` sends and checks checksums only where S3 demands them. It is the default with a
   * custom endpoint: the SDK's default (`when_supported`) frames streamed bodies with aws-chunked
   * trailers, which s3rver and some other S3-compatible servers store verbatim, corrupting objects.
   */
  readonly checksums?: 'when_supported' | 'when_required';
  readonly retry: RetryPolicy;
  /** A uniform random source for backoff jitter (tests pass a seeded one). */
  readonly random?: () => number;
  /** Milliseconds to establish a connection and that a socket may stay idle mid-request. */
  readonly connectTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
}

type RetryStrategyV2 = Extract<
  NonNullable<S3ClientConfig['retryStrategy']>,
  { acquireInitialRetryToken: unknown }
>;
type RetryToken = Awaited<ReturnType<RetryStrategyV2['acquireInitialRetryToken']>>;

function token(count: number, delay: number): RetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delay };
}

/**
 * The SDK's retry hook driven by CAI's policy and classifier, so that there is exactly one retry loop
 * per HTTP request (the SDK's) with one backoff (ours, full jitter) and one definition of retryable
 * ({@link isRetryableS3Error}). Unlike the SDK's standard strategy it has no shared retry quota, which
 * would stop retrying altogether after a burst of throttling across all requests of the client.
 */
function retryStrategy(settings: S3ClientSettings, counter: StatsCounter): RetryStrategyV2 {
  const { attempts, baseMs, maxMs } = settings.retry;
  return {
    acquireInitialRetryToken: async () => token(0, 0),
    refreshRetryTokenForRetry: async (previous, info) => {
      const retry = previous.getRetryCount() + 1;
      if (retry >= attempts || !isRetryableS3Error(info.error)) throw info.error;
      let delay = backoffDelay(retry, baseMs, maxMs, settings.random);
      const hinted = info.retryAfterHint ? info.retryAfterHint.getTime() - Date.now() : 0;
      if (hinted > delay) delay = Math.min(hinted, maxMs);
      counter.retry();
      return token(retry, delay);
    },
    recordSuccess: () => undefined,
  };
}

function bodyBytes(body: unknown): number {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return 0;
}

interface RawResponse {
  body?: unknown;
}

/**
 * Reads each HTTP response body to its end inside the retry loop. Without this, a connection dropped
 * halfway through a GetObject body surfaces after the SDK has returned, where no retry can see it;
 * here it fails the attempt and the SDK's retry (with our strategy) sends the request again. It also
 * counts every attempt's request and body bytes.
 */
function bufferAndCount(counter: StatsCounter) {
  return <A extends { request: unknown }, R extends { response: unknown }>(next: (args: A) => Promise<R>) =>
    async (args: A): Promise<R> => {
      counter.request(bodyBytes((args.request as RawResponse | undefined)?.body));
      const result = await next(args);
      const response = result.response as RawResponse | undefined;
      if (response?.body instanceof Readable) {
        const chunks: Buffer[] = [];
        try {
          for await (const chunk of response.body) {
            const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
            chunks.push(buf);
            counter.addBytes(buf.byteLength);
          }
        } finally {
          response.body.destroy();
        }
        response.body = Readable.from(Buffer.concat(chunks));
      }
      return result;
    };
}

/**
 * An S3 client for one store: the standard credential chain and region, path-style addressing and
 * `when_required` checksums for custom endpoints, CAI's retry policy, and counters.
 *
 * @example const client = createS3Client({ retry: defaultRetryPolicy }, new StatsCounter());
 */
export function createS3Client(settings: S3ClientSettings, counter: StatsCounter): S3Client {
  const endpoint = settings.endpoint;
  const checksums = settings.checksums ?? (endpoint ? 'when_required' : undefined);
  const checksumMode =
    checksums === 'when_required' ? 'WHEN_REQUIRED' : checksums ? 'WHEN_SUPPORTED' : undefined;
  const region =
    settings.region ??
    process.env.AWS_REGION ??
    process.env.AWS_DEFAULT_REGION ??
    // S3-compatible servers ignore the region but SigV4 needs one; AWS itself uses the profile's.
    (endpoint ? 'us-east-1' : undefined);
  const config: S3ClientConfig = {
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint, forcePathStyle: true } : { followRegionRedirects: true }),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    ...(checksumMode
      ? { requestChecksumCalculation: checksumMode, responseChecksumValidation: checksumMode }
      : {}),
    maxAttempts: settings.retry.attempts,
    retryStrategy: retryStrategy(settings, counter),
    requestHandler: {
      connectionTimeout: settings.connectTimeoutMs ?? 10_000,
      socketTimeout: settings.idleTimeoutMs ?? 60_000,
    },
  };
  const client = new S3Client(config);
  client.middlewareStack.add(bufferAndCount(counter), {
    step: 'deserialize',
    priority: 'low',
    name: 'caiBufferAndCount',
  });
  return client;
}
