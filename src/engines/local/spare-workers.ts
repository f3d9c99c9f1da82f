// Worker processes forked before the job is known. A worker spends ~0.2 s starting node and importing
// its modules before it can load a model, and `cai run` spends about as long importing its own before it
// knows the job: forked first thing, the workers' start-up overlaps the CLI's instead of following it.
// This module imports nothing heavy so that the CLI can fork before its own imports.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));
const spares: ChildProcess[] = [];

const forkWorker = (): ChildProcess => fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && child.connected;
}

/**
 * Forks worker processes until `count` wait unused. They hold neither the CLI's event loop nor its
 * exit: one never taken ends when the CLI does (its IPC channel closes).
 *
 * @example forkSpareWorkers(os.availableParallelism()); // first thing in `cai run`
 */
export function forkSpareWorkers(count: number): void {
  while (spares.length < count) {
    const child = forkWorker();
    child.unref();
    child.channel?.unref();
    child.once('exit', () => {
      const at = spares.indexOf(child);
      if (at >= 0) spares.splice(at, 1);
    });
    spares.push(child);
  }
}

/**
 * A worker process waiting for its job: a spare when one is left, else a new one.
 * @example const child = takeWorkerProcess(); child.send({ type: 'init', job });
 */
export function takeWorkerProcess(): ChildProcess {
  for (let child = spares.shift(); child; child = spares.shift()) {
    if (!alive(child)) continue;
    child.ref();
    child.channel?.ref();
    return child;
  }
  return forkWorker();
}

/** Stops the spares nobody took (a job with fewer partitions than cores, or one that failed early). */
export function stopSpareWorkers(): void {
  // SIGKILL: workers ignore SIGINT and SIGTERM (the engine stops them; see child.ts).
  for (const child of spares.splice(0)) child.kill('SIGKILL');
}

/** How many spares wait unused. @example spareWorkerCount() // 0 once the map has ended */
export function spareWorkerCount(): number {
  return spares.length;
}
