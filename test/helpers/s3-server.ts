import { type ChildProcess, fork } from 'node:child_process';
import { promises as fs } from 'node:fs';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3RVER_CHILD_FLAG } from './s3rver-child.js';

/** A running local S3 server. */
export interface S3TestServer {
  /** `http://127.0.0.1:<port>`, for `StoreOptions.s3Endpoint` or `AWS_ENDPOINT_URL_S3`. */
  readonly endpoint: string;
  readonly port: number;
  /** Where s3rver keeps the buckets' files. */
  readonly directory: string;
  /** Stops the server process and deletes its files. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The credentials s3rver accepts, set in `process.env` (inherited by child processes) so the SDK's
 * standard chain finds them. Profiles and instance metadata are switched off, so the chain neither
 * reads a developer's ~/.aws nor reaches for an address off this machine.
 *
 * @example useS3TestCredentials(); const store = new S3Store('s3://b', { s3Endpoint });
 */
export function useS3TestCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_CONFIG_FILE = path.join(os.tmpdir(), 'cai-no-aws-config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(os.tmpdir(), 'cai-no-aws-credentials');
  // The SDK's notice that it will need Node 22 from 2027 says nothing about the code under test.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

const childScript = fileURLToPath(new URL('./s3rver-child.js', import.meta.url));

/**
 * Starts s3rver on 127.0.0.1 with a free port in a child process (with `--openssl-legacy-provider`,
 * which its paginated listing needs), creates `buckets`, and sets the test credentials. The child
 * exits when `stop()` is called or when this process goes away, so tests leave nothing behind.
 *
 * @example
 * const s3 = await startS3Server(['data']);
 * try { ... new S3Store('s3://data/x', { s3Endpoint: s3.endpoint }) ... } finally { await s3.stop(); }
 */
export async function startS3Server(
  buckets: readonly string[] = [],
  timeoutMs = 20_000,
): Promise<S3TestServer> {
  useS3TestCredentials();
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'cai-s3rver-'));
  const child = fork(childScript, [S3RVER_CHILD_FLAG, directory, buckets.join(',')], {
    execArgv: ['--openssl-legacy-provider'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  // A test that forgets stop() must not hang the runner: the child does not keep this process alive,
  // and when this process exits the IPC channel closes and the child exits too.
  child.unref();
  child.channel?.unref();
  (child.stderr as Socket | null)?.unref();

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`s3rver did not start within ${timeoutMs} ms`)),
        timeoutMs,
      );
      child.once('message', (m: { port?: number; error?: string }) => {
        clearTimeout(timer);
        if (m.port) resolve(m.port);
        else reject(new Error(`s3rver failed to start: ${m.error}`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited with code ${code} before starting: ${stderr}`));
      });
    });
  } catch (err) {
    await stopChild(child);
    await fs.rm(directory, { recursive: true, force: true });
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    directory,
    stop: () =>
      (stopped ??= (async () => {
        await stopChild(child);
        await fs.rm(directory, { recursive: true, force: true });
      })()),
  };
}

/** Stops a child process: disconnects (it exits with its IPC channel), then kills it if it lingers. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.disconnect();
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
