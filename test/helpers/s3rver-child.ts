// The s3rver process that test/helpers/s3-server.ts starts. It runs in a child process because
// s3rver's continuation tokens use DES, which Node 20 only offers under --openssl-legacy-provider
// (DESIGN.md pitfall 3), a flag the test process itself should not carry.
//
// Every .js file under dist/test is also run as a test file by `node --test`, so this one does
// nothing unless it was started by the helper (an IPC channel and the marker argument).
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

interface S3rverInstance {
  run(): Promise<{ port: number; address: string }>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

/** The marker argument the helper passes, so that the test runner's own run of this file is a no-op. */
export const S3RVER_CHILD_FLAG = '--cai-s3rver-child';

async function main(): Promise<void> {
  if (!process.connected) process.exit(0);
  const [directory, bucketList] = process.argv.slice(process.argv.indexOf(S3RVER_CHILD_FLAG) + 1);
  // The parent going away (stop(), or a crashed or killed test) closes the IPC channel: exit with it
  // at once, taking the data directory along, so that nothing outlives its test.
  process.on('disconnect', () => {
    rmSync(directory, { recursive: true, force: true });
    process.exit(0);
  });
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: bucketList ? bucketList.split(',').map((name) => ({ name })) : [],
  });
  const { port } = await server.run();
  process.send?.({ port });
}

if (process.send && process.argv.includes(S3RVER_CHILD_FLAG)) {
  main().catch((err: unknown) => {
    process.send?.({ error: String((err as Error)?.stack ?? err) });
    process.exit(1);
  });
}
