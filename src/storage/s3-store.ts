import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { CaiError, ErrorCodes } from '../errors.js';
import { sized } from './buffer-pool.js';
import type { StoreOptions } from './open.js';
import { defaultRetryPolicy, isTransientNetworkError, withRetry, type RetryPolicy } from './retry.js';
import { cachedDownload, defaultCacheDir } from './s3-cache.js';
import { createS3Client, type S3ClientSettings } from './s3-client.js';
import { s3ErrorName, s3ErrorStatus, toS3Error } from './s3-errors.js';
import { type CountingStore, StatsCounter, type StoreStats } from './s3-stats.js';
import type { CreateResult, GetOptions, ObjectInfo } from './store.js';

/**
 * Options of {@link S3Store} beyond the shared {@link StoreOptions}.
 * @example new S3Store('s3://b/out', { s3Endpoint: 'http://127.0.0.1:9000', retry: { attempts: 4 } });
 */
export interface S3StoreOptions extends StoreOptions {
  /** Region; otherwise `AWS_REGION`/`AWS_DEFAULT_REGION`, the profile, or `us-east-1` with an endpoint. */
  readonly region?: string;
  /** Static credentials; otherwise the SDK's standard credential chain. */
  readonly credentials?: S3ClientSettings['credentials'];
  /** Checksum mode; `when_required` by default with a custom endpoint (see {@link S3ClientSettings}). */
  readonly checksums?: S3ClientSettings['checksums'];
  /** Retry policy for every request; {@link defaultRetryPolicy} by default. */
  readonly retry?: Partial<RetryPolicy>;
  /** A uniform random source for backoff jitter, for reproducible tests. */
  readonly random?: () => number;
  /** Bodies larger than this go up as a multipart upload of parts this size; 8 MiB, at least 5 MiB. */
  readonly partSize?: number;
  /** Parts uploaded at once; 4. */
  readonly queueSize?: number;
  /** Where {@link S3Store.localPath} keeps downloads; `<tmpdir>/cai-s3-cache`. */
  readonly cacheDir?: string;
  /** Ranged GETs of this size download large objects for `localPath`; 64 MiB. */
  readonly downloadChunkSize?: number;
}

const MiB = 1024 * 1024;

/**
 * Splits `s3://bucket/some/prefix` into its bucket and key prefix (empty, or ending with `/`).
 * @example parseS3Uri('s3://b/galaxies') // { bucket: 'b', prefix: 'galaxies/' }
 */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(uri);
  if (!m) {
    throw new CaiError(
      ErrorCodes.option,
      uri,
      'not an S3 URI; write it as s3://bucket or s3://bucket/prefix',
    );
  }
  const rest = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: m[1], prefix: rest ? `${rest}/` : '' };
}

/**
 * A {@link Store} over an S3 bucket and prefix, or any S3-compatible server (MinIO, Ceph, R2, s3rver)
 * given an endpoint. Every request is retried on throttling, 5xx and dropped connections with CAI's
 * backoff; a missing bucket or key or denied access is a `CaiError` naming the `s3://` URI at once.
 * Traffic is counted: {@link S3Store.stats}.
 *
 * @example
 * const store = new S3Store('s3://bucket/galaxies', { s3Endpoint: 'http://127.0.0.1:9000' });
 * for await (const o of store.list()) console.log(o.key, o.size);
 * const head = await store.getRange('1.pt', 0, 1024);
 */
export class S3Store implements CountingStore {
  readonly uri: string;
  readonly bucket: string;
  /** Key prefix of the store's root: empty or ending with `/`. */
  readonly prefix: string;
  /** The custom endpoint, when not AWS. */
  readonly endpoint: string | undefined;
  private readonly client: S3Client;
  private readonly counter = new StatsCounter();
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly cacheDir: string;
  private readonly downloadChunkSize: number;
  private bucketSeen = false;
  /** Whether the server honours `If-None-Match: *` on PUT, once a {@link S3Store.putIfAbsent} found out. */
  private conditionalWrites: boolean | undefined;
  private readonly retryPolicy: RetryPolicy;
  private readonly random: (() => number) | undefined;

  constructor(uri: string, options: S3StoreOptions = {}) {
    const { bucket, prefix } = parseS3Uri(uri);
    this.bucket = bucket;
    this.prefix = prefix;
    this.uri = `s3://${bucket}${prefix ? `/${prefix.slice(0, -1)}` : ''}`;
    this.endpoint =
      options.s3Endpoint || process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined;
    if (this.endpoint !== undefined && !/^https?:\/\/[^/]+/i.test(this.endpoint)) {
      throw new CaiError(
        ErrorCodes.option,
        's3Endpoint',
        `"${this.endpoint}" is not an http(s) URL; write it like http://127.0.0.1:9000`,
      );
    }
    this.partSize = Math.max(5 * MiB, options.partSize ?? 8 * MiB);
    this.queueSize = Math.max(1, options.queueSize ?? 4);
    this.cacheDir = options.cacheDir ?? defaultCacheDir();
    this.downloadChunkSize = Math.max(1, options.downloadChunkSize ?? 64 * MiB);
    this.retryPolicy = { ...defaultRetryPolicy, ...options.retry };
    this.random = options.random;
    this.client = createS3Client(
      {
        endpoint: this.endpoint,
        region: options.region,
        credentials: options.credentials,
        checksums: options.checksums,
        retry: { ...defaultRetryPolicy, ...options.retry },
        random: options.random,
      },
      this.counter,
    );
  }

  describe(key: string): string {
    return key === '' ? this.uri : `s3://${this.bucket}/${this.prefix}${key}`;
  }

  /** Requests, retries, bytes and seconds since the store was opened; diff snapshots per stage. */
  stats(): StoreStats {
    return this.counter.stats();
  }

  /** Closes the client's pooled connections; the store cannot be used afterwards. */
  close(): void {
    this.client.destroy();
  }

  /**
   * Like a directory listing: `prefix` names a key or a folder (`a` lists `a` and `a/...`, not `ab`).
   * Follows ListObjectsV2 continuation tokens to the end, 1000 keys a page, however many there are.
   */
  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    const rel = prefix.replace(/^\/+|\/+$/g, '');
    const where = this.describe(rel);
    let token: string | undefined;
    do {
      // A listing page is a body too: one cut short does not parse, and is asked again like any read.
      const page = await this.retryBody(where, () =>
        this.call(where, () =>
          this.client
            .send(
              new ListObjectsV2Command({
                Bucket: this.bucket,
                Prefix: this.prefix + rel || undefined,
                ContinuationToken: token,
              }),
            )
            .catch((err: unknown) => {
              throw isCutResponse(err) ? new ShortReadError(where, 0, 0, false, err) : err;
            }),
        ),
      );
      this.bucketSeen = true;
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        const key = o.Key.slice(this.prefix.length);
        // Keys ending in `/` are the empty "folder" markers consoles create, not data.
        if (key === '' || key.endsWith('/')) continue;
        if (rel && key !== rel && !key.startsWith(`${rel}/`)) continue;
        yield { key, size: o.Size ?? 0, modified: o.LastModified?.getTime(), etag: o.ETag };
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new CaiError(
          ErrorCodes.corrupt,
          where,
          'the server said the listing goes on but sent no continuation token',
        );
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async get(key: string, options?: GetOptions): Promise<Uint8Array> {
    const uri = this.describe(key);
    return this.retryBody(uri, () => this.getOnce(key, uri, options));
  }

  /**
   * Runs one read whose body may arrive short, retrying a {@link ShortReadError} with the store's policy
   * (each retry counted in {@link S3Store.stats}). The SDK retries requests, not bodies: a body cut off
   * mid-stream, or a well-formed 200 shorter than the object (a truncating proxy, a flaky endpoint), is
   * retried here. Past the retries it is one `E_STORAGE` error naming the object: never "corrupt", since
   * the object itself may be whole.
   */
  private retryBody<T>(uri: string, read: () => Promise<T>): Promise<T> {
    return withRetry(read, {
      ...this.retryPolicy,
      random: this.random,
      // Only bodies: the request itself was already retried by the SDK's strategy (a dead endpoint
      // must not be tried attempts x attempts times).
      isRetryable: (err) => err instanceof ShortReadError,
      onRetry: () => this.counter.retry(),
    }).catch((err: unknown) => {
      if (err instanceof ShortReadError) {
        throw new CaiError(
          ErrorCodes.storage,
          uri,
          `${err.expected > 0 ? `returned ${err.got} of the ${err.expected} bytes ${err.planned ? 'planned' : 'it holds'}` : 'answered with a body cut short'}, ${this.retryPolicy.attempts} times; ${err.planned ? 'the object changed since the job was planned (run with --overwrite to plan again) or ' : ''}the endpoint truncates responses: the object itself may be whole; check the endpoint or proxy and run again`,
          { cause: err },
        );
      }
      throw err;
    });
  }

  private getOnce(key: string, uri: string, options?: GetOptions): Promise<Uint8Array> {
    return this.call(uri, async () => {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
      );
      // What the object holds, from the best source there is: the size planned, then the size CAI
      // stamped on the objects it writes (a proxy that rewrites Content-Length cannot hide a cut body
      // from it), then the Content-Length of the response.
      const planned = options?.expectedSize;
      const stamped = stampedSize(res.Metadata);
      const whole = planned ?? stamped;
      const body = res.Body;
      if (!body) {
        if (whole !== undefined && whole !== 0)
          throw new ShortReadError(uri, 0, whole, planned !== undefined);
        return new Uint8Array(0);
      }
      const announced = res.ContentLength ?? -1;
      let done = 0;
      let bytes: Uint8Array;
      try {
        if (!options?.into || res.ContentLength === undefined) {
          bytes = await body.transformToByteArray();
          done = bytes.byteLength;
          if (announced >= 0 && bytes.byteLength !== announced)
            throw new ShortReadError(uri, bytes.byteLength, announced, false);
        } else {
          // Stream straight into the caller's memory (a worker's pooled buffer) instead of collecting
          // chunks and concatenating them into a fresh one.
          const out = sized(options.into, res.ContentLength, uri);
          for await (const chunk of body as AsyncIterable<Uint8Array>) {
            if (done + chunk.byteLength > out.byteLength) {
              throw new Error(
                `${uri} sent more than the ${out.byteLength} bytes its Content-Length announced`,
              );
            }
            out.set(chunk, done);
            done += chunk.byteLength;
          }
          if (done !== out.byteLength) throw new ShortReadError(uri, done, out.byteLength, false);
          bytes = out;
        }
      } catch (err) {
        // A connection dropped halfway through the body: the request succeeded, the body did not.
        if (isTransientNetworkError(err)) throw new ShortReadError(uri, done, whole ?? announced, false, err);
        throw err;
      }
      if (whole !== undefined && bytes.byteLength !== whole)
        throw new ShortReadError(uri, bytes.byteLength, whole, planned !== undefined);
      return bytes;
    });
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    const uri = this.describe(key);
    return this.retryBody(uri, () => this.call(uri, () => this.fetchRange(key, start, end)));
  }

  /**
   * Readers see all of the object or none of it, because S3 makes an object visible only when a
   * PutObject or CompleteMultipartUpload has succeeded: an interrupted PutObject stores nothing, and
   * parts of an unfinished multipart upload are never listed or readable. So no temporary key and
   * rename (which S3 lacks) is needed. A failed multipart upload is aborted so its parts stop costing
   * storage; if that abort itself fails, a bucket lifecycle rule `AbortIncompleteMultipartUpload`
   * cleans up.
   */
  async put(key: string, body: Uint8Array | string): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    // Every object CAI writes says its own size, so every later read can tell a whole body from a cut one.
    const params = {
      Bucket: this.bucket,
      Key: this.prefix + key,
      Body: bytes,
      Metadata: { [SIZE_METADATA]: String(bytes.byteLength) },
    };
    await this.call(this.describe(key), async () => {
      if (bytes.byteLength <= this.partSize) {
        await this.client.send(new PutObjectCommand(params));
        return;
      }
      const upload = new Upload({
        client: this.client,
        params,
        partSize: this.partSize,
        queueSize: this.queueSize,
        // We abort ourselves: lib-storage's abort can replace the upload's real error with its own.
        leavePartsOnError: true,
      });
      try {
        await upload.done();
      } catch (err) {
        // A CompleteMultipartUpload whose answer was lost and that was retried finds its upload gone:
        // only this call knows the upload id and it has not aborted it, so the first try completed it.
        if (
          s3ErrorName(err) === 'NoSuchUpload' &&
          (await this.headObject(key))?.ContentLength === bytes.byteLength
        ) {
          return;
        }
        if (upload.uploadId) await this.abortUpload(params.Key, upload.uploadId);
        throw err;
      }
    });
    this.bucketSeen = true;
  }

  /**
   * PutObject with `If-None-Match: *` (S3's conditional write): `created`, or `exists` on 412. Servers
   * that ignore the header (s3rver 3.7, older S3-compatible stores) are found out by the first call,
   * which asks twice: a server that honours it answers the second 412, one that ignores it 200, and
   * from then on this store answers `unconditional` (the object written, without the guarantee).
   * A retried PUT whose first try landed also answers 412: the caller reads the object to tell.
   */
  async putIfAbsent(key: string, body: Uint8Array | string): Promise<CreateResult> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const uri = this.describe(key);
    const conditionalPut = () =>
      this.call(uri, async () => {
        try {
          await this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: this.prefix + key,
              Body: bytes,
              IfNoneMatch: '*',
              Metadata: { [SIZE_METADATA]: String(bytes.byteLength) },
            }),
          );
          return true;
        } catch (err) {
          // 412: the object exists; 409: another conditional write of it is in flight (it wins or fails).
          const status = s3ErrorStatus(err);
          if (status === 412 || status === 409) return false;
          throw err;
        }
      });
    if (!(await conditionalPut())) return 'exists';
    this.bucketSeen = true;
    if (this.conditionalWrites === undefined) this.conditionalWrites = !(await conditionalPut());
    return this.conditionalWrites ? 'created' : 'unconditional';
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const res = await this.headObject(key);
    return res
      ? { key, size: res.ContentLength ?? 0, modified: res.LastModified?.getTime(), etag: res.ETag }
      : undefined;
  }

  async delete(key: string): Promise<void> {
    await this.call(this.describe(key), () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })),
    );
  }

  /**
   * Downloads the object once per version into a cache under the OS temp directory and returns that
   * file; later calls (in this process or another on the machine) cost one HEAD request. Large objects
   * come down as ranged GETs, each retried on its own.
   */
  async localPath(key: string): Promise<string> {
    const uri = this.describe(key);
    const res = await this.headObject(key);
    if (!res)
      throw new CaiError(ErrorCodes.notFound, uri, 'the object does not exist; check the key or prefix');
    const size = res.ContentLength ?? 0;
    const etag = res.ETag ?? `mtime${res.LastModified?.getTime() ?? 0}`;
    const object = {
      id: `${this.endpoint ?? 'aws'}|${this.bucket}|${this.prefix}${key}`,
      uri,
      etag,
      size,
      basename: path.posix.basename(key),
    };
    return cachedDownload(this.cacheDir, object, async (file) => {
      const fh = await fs.open(file, 'w');
      try {
        for (let at = 0; at < size; at += this.downloadChunkSize) {
          const end = Math.min(size, at + this.downloadChunkSize);
          const part = await this.retryBody(uri, () =>
            this.call(uri, () => this.fetchRange(key, at, end, res.ETag)),
          );
          await fh.write(part, 0, part.byteLength, at);
        }
      } finally {
        await fh.close();
      }
    });
  }

  private async fetchRange(key: string, start: number, end: number, ifMatch?: string): Promise<Uint8Array> {
    if (end <= start) return new Uint8Array(0);
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          Range: `bytes=${start}-${end - 1}`,
          IfMatch: ifMatch,
        }),
      );
      const uri = this.describe(key);
      let bytes: Uint8Array;
      try {
        bytes = res.Body ? await res.Body.transformToByteArray() : new Uint8Array(0);
      } catch (err) {
        if (isTransientNetworkError(err)) throw new ShortReadError(uri, 0, end - start, false, err);
        throw err;
      }
      // Trust the bytes' own Content-Range over our request: a server that ignores Range sends the
      // whole object with none, and s3rver answers `bytes=0-0` with everything. The range it names (or
      // the object's stamped size, or the Content-Length) is also what the body must hold.
      const sent = /^bytes (\d+)-(\d+)/.exec(res.ContentRange ?? '');
      const expected = sent
        ? Number(sent[2]) - Number(sent[1]) + 1
        : (stampedSize(res.Metadata) ?? res.ContentLength ?? bytes.byteLength);
      if (bytes.byteLength !== expected) throw new ShortReadError(uri, bytes.byteLength, expected, false);
      const offset = start - (sent ? Number(sent[1]) : 0);
      return bytes.subarray(offset, offset + (end - start));
    } catch (err) {
      // Like reading past the end of a file: no bytes, not an error.
      if (s3ErrorName(err) === 'InvalidRange' || s3ErrorStatus(err) === 416) return new Uint8Array(0);
      throw err;
    }
  }

  /** HeadObject, or `undefined` for a missing key; a missing bucket is an error, not a missing key. */
  private async headObject(key: string): Promise<HeadObjectCommandOutput | undefined> {
    return this.call(this.describe(key), async () => {
      try {
        const res = await this.client.send(
          new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
        );
        this.bucketSeen = true;
        return res;
      } catch (err) {
        if (s3ErrorStatus(err) !== 404) throw err;
        // HEAD responses carry no error code, so a 404 is ambiguous until the bucket is known to exist.
        if (!this.bucketSeen) {
          await this.client
            .send(new HeadBucketCommand({ Bucket: this.bucket }))
            .catch((bucketErr: unknown) => {
              if (s3ErrorStatus(bucketErr) === 404) {
                throw Object.assign(new Error('The specified bucket does not exist'), {
                  name: 'NoSuchBucket',
                });
              }
              throw bucketErr;
            });
          this.bucketSeen = true;
        }
        return undefined;
      }
    });
  }

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.client
      .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
      .catch(() => undefined);
  }

  /** Times a call and turns errors a person must fix into `CaiError`s naming the URI. */
  private call<T>(uri: string, fn: () => Promise<T>): Promise<T> {
    return this.counter.time(async () => {
      try {
        return await fn();
      } catch (err) {
        const out = toS3Error(err, uri, `s3://${this.bucket}`);
        // Errors left as they are (transient ones that outlasted the retries) keep their code for the
        // engine's classification, but say which object they are about.
        if (out instanceof Error && !(out instanceof CaiError) && !out.message.includes(uri)) {
          out.message = `${uri}: ${out.message}`;
        }
        throw out;
      }
    });
  }
}

/**
 * The user-metadata key (`x-amz-meta-cai-bytes`) under which {@link S3Store.put} records each object's
 * size: a read compares its body with it, so a 200 cut short is retried instead of parsed as corrupt.
 */
export const SIZE_METADATA = 'cai-bytes';

function stampedSize(metadata: Record<string, string> | undefined): number | undefined {
  const value = metadata?.[SIZE_METADATA];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/**
 * Whether an SDK error is a 200 whose XML body did not parse: a response cut short in transit (S3 does
 * not send malformed XML), so the request is worth another try.
 */
function isCutResponse(err: unknown): boolean {
  return (
    err instanceof Error &&
    /XML parse error|Deserialization error|Unexpected end|unclosed/i.test(err.message) &&
    ((err as { $response?: { statusCode?: number } }).$response?.statusCode ?? 200) < 300
  );
}

/** A body shorter (or longer) than the object as planned, stamped or announced: transient, retried. */
class ShortReadError extends Error {
  constructor(
    uri: string,
    readonly got: number,
    readonly expected: number,
    /** Whether `expected` is the size the job planned (which a changed object would also explain). */
    readonly planned: boolean,
    cause?: unknown,
  ) {
    super(`${uri} sent ${got} of ${expected} bytes (a response cut short)`, { cause });
    this.name = 'ShortReadError';
  }
}
