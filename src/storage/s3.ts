import { registerStore } from './open.js';

/**
 * Makes `openStore('s3://bucket/prefix', { s3Endpoint })` open an {@link S3Store}. Importing this
 * module does it already; calling it again is harmless. The AWS SDK is loaded on the first S3 URI
 * only, so runs on local files do not pay its start-up time.
 *
 * @example
 * registerS3Store();
 * const input = await openStore('s3://bucket/galaxies', { s3Endpoint: process.env.S3_ENDPOINT });
 */
export function registerS3Store(): void {
  registerStore('s3', async (uri, options) => {
    const { S3Store } = await import('./s3-store.js');
    return new S3Store(uri, options);
  });
}

registerS3Store();
