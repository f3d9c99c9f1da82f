// Ctrl-C and SIGTERM during a job: stop every worker, remove the temporary files they may have left,
// say how to resume, and end with the conventional exit status (130 for SIGINT, 143 for SIGTERM). What
// was complete stays complete: records are written last and atomically, so a rerun resumes exactly.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { allowWorkers, stopAllWorkers } from '../engines/local/worker-process.js';
import { stopSpareWorkers } from '../engines/local/spare-workers.js';
import { CaiError, ErrorCodes } from '../errors.js';
import { FileStore, isDeadTemporary, isTemporary } from '../storage/file-store.js';
import type { Store } from '../storage/store.js';

/** The exit status a shell expects after a signal: 128 + its number. */
export const SIGNAL_EXIT_CODES = Object.freeze({ SIGINT: 130, SIGTERM: 143 } as const);

/** A signal watch for one job: `interrupted` rejects when one arrives; `dispose` stops watching. */
export interface SignalWatch {
  readonly interrupted: Promise<never>;
  /** Whether a signal has arrived (then `interrupted` rejects once the workers are stopped). */
  readonly signalled: boolean;
  dispose(): void;
}

/**
 * Removes CAI's temporary files under a local output (S3 puts leave none); with `deadOnly`, only those
 * of processes of this host that are gone (a worker killed while it wrote: `.cai-tmp-<pid>-...`).
 * Returns how many.
 */
export async function removeTemporaryFiles(output: Store, deadOnly = false): Promise<number> {
  if (!(output instanceof FileStore)) return 0;
  let removed = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) await walk(abs);
      else if (deadOnly ? isDeadTemporary(e.name) : isTemporary(e.name)) {
        await fs.rm(abs, { force: true });
        removed++;
      }
    }
  };
  await walk(output.root);
  return removed;
}

/**
 * Watches SIGINT and SIGTERM while a job runs. On the first, stops every worker, removes temporary
 * files from the output and rejects `interrupted` with `E_INTERRUPTED` (its object is the signal's name)
 * saying how to resume; a second signal exits at once.
 *
 * @example const watch = watchSignals(output, 'cai run ...'); try { await Promise.race([work, watch.interrupted]); } finally { watch.dispose(); }
 */
export function watchSignals(output: Store): SignalWatch {
  let reject: (err: unknown) => void = () => undefined;
  const interrupted = new Promise<never>((_, r) => (reject = r));
  interrupted.catch(() => undefined);
  let seen = false;
  allowWorkers();
  const on = (signal: 'SIGINT' | 'SIGTERM') => {
    if (seen) process.exit(SIGNAL_EXIT_CODES[signal]);
    seen = true;
    process.stderr.write(`\n${signal}: stopping the workers...\n`);
    void (async () => {
      stopSpareWorkers();
      await stopAllWorkers();
      await removeTemporaryFiles(output).catch(() => 0);
      reject(
        new CaiError(
          ErrorCodes.interrupted,
          signal,
          `the job was stopped; partitions already complete in ${output.uri} are kept: run the same command again to resume`,
        ),
      );
    })();
  };
  const onInt = () => on('SIGINT');
  const onTerm = () => on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    interrupted,
    get signalled() {
      return seen;
    },
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
