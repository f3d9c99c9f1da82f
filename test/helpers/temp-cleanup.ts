// Preloaded into every test process by `npm test` (node --import): every folder a test makes with
// mkdtemp is removed when its process exits, whether or not the test got to its own cleanup. Only
// folders this process made are touched: other processes share the temporary directory.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const made = new Set<string>();
const remember = (dir: string): string => {
  made.add(dir);
  return dir;
};

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
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
});
