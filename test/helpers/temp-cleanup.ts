// Preloaded into every test process by `npm test` (node --import), as a net under each test's own
// cleanup, whether or not the test got to it:
// - the process gets a temporary directory of its own (TMPDIR, which its children inherit: workers,
//   servers, Chromium), removed when it exits, so whatever lands in `os.tmpdir()` under a fixed name
//   (the S3 model cache `cai-s3-cache`, a browser's profile) goes with it instead of staying in /tmp;
// - every folder a test makes with mkdtemp, wherever, is removed when its process exits.
// Only what this process made is touched: other processes share the machine's temporary directory.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const made = new Set<string>();
const remember = (dir: string): string => {
  made.add(dir);
  return dir;
};

// Before the wrapping below: a folder of the process's own, not one of the tests' folders.
const own = fs.mkdtempSync(path.join(os.tmpdir(), 'cai-test-'));
// As open as /tmp itself (sticky, everyone may add files): a daemon a test starts under another user
// (munged runs as munge) must reach its folder in here, as it would in /tmp.
fs.chmodSync(own, 0o1777);
process.env.TMPDIR = own;

const mkdtempSync = fs.mkdtempSync;
const mkdtempPromise = fs.promises.mkdtemp;
const mkdtempCallback = fs.mkdtemp;

fs.mkdtempSync = ((prefix: string, options?: fs.EncodingOption) =>
  remember(mkdtempSync(prefix, options) as string)) as typeof fs.mkdtempSync;
fs.promises.mkdtemp = (async (prefix: string, options?: fs.EncodingOption) =>
  remember((await mkdtempPromise(prefix, options)) as string)) as typeof fs.promises.mkdtemp;
fs.mkdtemp = ((prefix: string, ...rest: unknown[]) => {
  const callback = rest.pop() as (err: NodeJS.ErrnoException | null, dir: string) => void;
  mkdtempCallback(prefix, ...(rest as [fs.EncodingOption]), (err, dir) => {
    if (!err) remember(dir);
    callback(err, dir);
  });
}) as typeof fs.mkdtemp;
// `import { mkdtemp } from 'node:fs/promises'` sees the wrapped functions from here on.
syncBuiltinESMExports();

process.on('exit', () => {
  for (const dir of [...made, own]) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
});
