import type { ChildProcess } from 'node:child_process';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { ResolvedJob } from '../../job/spec.js';
import type { PlannedPartition } from '../../plan/plan.js';
import type { EngineEvent } from '../events.js';
import type { AttemptResult } from '../map.js';
import type { PartitionTask } from '../../worker/run-partition.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { takeWorkerProcess } from './spare-workers.js';

// Every worker process of this CLI process, so an interrupt (Ctrl-C, SIGTERM) can stop them all.
const live = new Set<WorkerProcess>();
let stopping = false;

/**
 * Kills every worker process at once and waits for them to exit; workers started after this are
 * killed as they start (the engine may still try to replace a lost one). Used on Ctrl-C and SIGTERM,
 * so that no worker writes after the job said it stopped.
 *
 * @example await stopAllWorkers(); // then remove temporary files
 */
export async function stopAllWorkers(): Promise<void> {
  stopping = true;
  await Promise.all([...live].map((w) => w.killAndWait()));
}

/** Lets workers start again after {@link stopAllWorkers} (a new job in the same process). */
export function allowWorkers(): void {
  stopping = false;
}

/**
 * One worker child process holding one model session (a session per process, never threads: see
 * DESIGN.md pitfall 2). Its death while it holds a partition is reported as a failed attempt.
 */
export class WorkerProcess {
  private readonly child: ChildProcess;
  private pendingAttempt?: (result: AttemptResult) => void;
  private current?: PartitionTask;
  private exited = false;
  private killed = false;
  /** Resolves when the model is loaded; rejects (with the worker's own error) when it cannot be. */
  readonly ready: Promise<void>;

  /** `onEvent` hears the batch progress of the attempts this process runs. */
  constructor(job: ResolvedJob, onEvent?: (event: EngineEvent) => void) {
    // onnxruntime's threads come from the session options (job.threads), not the environment, so a
    // process forked before the job was known serves as well as a new one.
    this.child = takeWorkerProcess();
    this.ready = new Promise<void>((resolve, reject) => {
      this.child.on('message', (message: FromWorker) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'init-failed')
          reject(new CaiError(message.error.code, job.model, message.error.message));
        else if (message.type === 'done') this.settle({ ok: true, record: message.record });
        else if (message.type === 'progress' && this.current)
          onEvent?.({
            type: 'progress',
            partition: this.current.partition.id,
            attempt: this.current.attempt,
            itemsDone: message.itemsDone,
            items: message.items,
          });
        else if (message.type === 'failed') this.settle({ ok: false, error: message.error });
      });
      this.child.on('exit', (code, signal) => {
        this.exited = true;
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(
          new CaiError(ErrorCodes.workerCrash, job.model, `worker process ${how} while loading the model`),
        );
        this.settle({
          ok: false,
          error: { code: ErrorCodes.workerCrash, message: `worker process ${this.child.pid} ${how}` },
        });
      });
    });
    this.ready.catch(() => undefined);
    live.add(this);
    this.child.once('exit', () => live.delete(this));
    if (stopping) this.kill();
    this.send({ type: 'init', job });
  }

  /** Kills the process and resolves once it has exited. */
  killAndWait(): Promise<void> {
    if (this.exited) return Promise.resolve();
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.kill();
    return gone;
  }

  /** The child's process id. */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Whether the process is gone. */
  get dead(): boolean {
    return this.exited || this.killed;
  }

  /**
   * Runs one attempt, killing the worker if it takes longer than `timeoutMs`.
   * @example const result = await worker.attempt(task, 900_000);
   */
  attempt(task: PartitionTask, timeoutMs: number, prefetch?: PlannedPartition): Promise<AttemptResult> {
    return new Promise<AttemptResult>((resolve) => {
      const timer = setTimeout(() => {
        this.settle({
          ok: false,
          error: {
            code: ErrorCodes.timeout,
            message: `partition ${task.partition.id} took longer than ${timeoutMs / 1000} s; its worker was stopped (raise partitionTimeoutSeconds or use smaller partitions)`,
          },
        });
        this.kill();
      }, timeoutMs);
      this.current = task;
      this.pendingAttempt = (result) => {
        clearTimeout(timer);
        resolve(result);
      };
      if (this.exited) {
        this.settle({
          ok: false,
          error: { code: ErrorCodes.workerCrash, message: 'worker process is gone' },
        });
      } else {
        this.send({ type: 'task', task, ...(prefetch ? { prefetch } : {}) });
      }
    });
  }

  /** Stops the process at once. */
  kill(): void {
    // Dead from now on, before its exit event arrives: it must never be handed another partition.
    this.killed = true;
    if (!this.exited) this.child.kill('SIGKILL');
  }

  /** Asks the process to finish and waits for it. */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.kill(), 5000);
    await gone;
    clearTimeout(timer);
  }

  private send(message: ToWorker): void {
    // A worker that was killed (Ctrl-C while a slot replaced its worker) or died between this check
    // and the write fails the write with EPIPE. Its exit event reports the death to whoever waits, so
    // the write's own error is dropped here rather than thrown as an unhandled 'error' event.
    if (this.exited || this.killed || !this.child.connected) return;
    this.child.send(message, (err) => {
      if (err) this.kill();
    });
  }

  private settle(result: AttemptResult): void {
    const pending = this.pendingAttempt;
    this.pendingAttempt = undefined;
    this.current = undefined;
    pending?.(result);
  }
}
