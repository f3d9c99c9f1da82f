// One live run per output. Two runs of one job into one output would both compute every partition (and
// race on every file), so a run holds `cai.lock` in the output: the holder's host, pid and start time. A
// lock whose holder is a dead process on this host is stale (a crash, kill -9) and is taken over; a lock
// held from another host cannot be checked from here, so the message says how to clear it.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { CaiError, ErrorCodes } from '../errors.js';
import { OUTPUT_KEYS } from '../storage/output-layout.js';
import type { Store } from '../storage/store.js';
import { readJsonIfPresent } from '../storage/json.js';

/** The lock object's key in the output. */
export const LOCK_KEY = OUTPUT_KEYS.lock;

/** What the lock records about its holder. */
export interface LockHolder {
  readonly host: string;
  readonly pid: number;
  readonly started_at: string;
  readonly token: string;
}

/** A held lock; `release` deletes it if it is still this run's. */
export interface OutputLock {
  readonly holder: LockHolder;
  release(): Promise<void>;
}

async function readHolder(output: Store): Promise<LockHolder | undefined> {
  try {
    // A read cut short is read again (readJson); only a lock bad as a whole counts as none.
    return await readJsonIfPresent<LockHolder>(output, LOCK_KEY);
  } catch (err) {
    if (err instanceof CaiError && err.code === ErrorCodes.corrupt) return undefined; // foreign: no lock
    throw err;
  }
}

/** Whether the holder may still be running: certain only for processes on this host. */
function mayBeAlive(holder: LockHolder): boolean {
  if (holder.host !== os.hostname()) return true;
  if (holder.pid === process.pid) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How long the fallback waits before reading its lock back (see {@link acquireLock}). */
const SETTLE_MS = 250;

/**
 * Takes the output's lock, or refuses with `E_LOCKED` naming the live holder. A lock left by a dead
 * process of this host is taken over.
 *
 * The lock is created atomically where the store can (a hard link on a local disk; `If-None-Match: *`
 * on S3, which AWS honours): of two runs started at the same instant exactly one creates it, and the
 * other is refused. On an S3-compatible server that ignores conditional writes (s3rver, older MinIO and
 * Ceph; found out on the first write), the rule falls back to write, wait 250 ms, read back: the run
 * whose write landed last holds the lock and the other is refused, unless their writes were more than
 * 250 ms apart and both checks came before either write.
 *
 * @example const lock = await acquireLock(output); try { ... } finally { await lock.release(); }
 */
export async function acquireLock(output: Store): Promise<OutputLock> {
  const holder: LockHolder = {
    host: os.hostname(),
    pid: process.pid,
    started_at: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const body = `${JSON.stringify(holder, null, 2)}\n`;
  for (let tries = 0; ; tries++) {
    const current = await readHolder(output);
    if (current && mayBeAlive(current)) throw lockedBy(output, current);
    // A stale lock (its process is dead) is removed, then taken like a free one: if two runs take
    // over together, the atomic create still lets only one of them have it.
    if (current) await output.delete(LOCK_KEY);
    const created = output.putIfAbsent
      ? await output.putIfAbsent(LOCK_KEY, body)
      : await output.put(LOCK_KEY, body).then(() => 'unconditional' as const);
    if (created === 'unconditional') await sleep(SETTLE_MS);
    if (created !== 'created') {
      // Taken by another run since our check, or written without a guarantee: whoever the lock names
      // holds it (a retried create whose first try landed names us).
      const after = await readHolder(output);
      if (after && after.token !== holder.token) {
        if (mayBeAlive(after) || tries >= 2) throw lockedBy(output, after);
        continue;
      }
      if (!after) {
        if (tries >= 2) throw lockedBy(output, current ?? holder);
        continue;
      }
    }
    return {
      holder,
      async release() {
        const now = await readHolder(output).catch(() => undefined);
        if (now?.token === holder.token) await output.delete(LOCK_KEY);
      },
    };
  }
}

function lockedBy(output: Store, holder: LockHolder): CaiError {
  const here = holder.host === os.hostname();
  return new CaiError(
    ErrorCodes.locked,
    output.describe(LOCK_KEY),
    `another run (pid ${holder.pid} on ${holder.host}, since ${holder.started_at}) is writing this output; ` +
      `wait for it to finish, or use another --output${here ? '' : `; if that run is gone, delete ${output.describe(LOCK_KEY)}`}`,
  );
}
