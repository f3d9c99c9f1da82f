// Messages between the main thread and an HDF5 reading thread (h5-thread.ts).
import type { TypedArray } from '../../tensor/dtype.js';
import type { ArrayInfo } from '../arrays/layout.js';
import type { SyncRangeOptions } from './sync-ranges.js';

/** What a reading thread starts with: the shared memory its ranges come through. */
export interface ThreadData {
  /** Int32 x 2: state (0 waiting, 1 done, 2 failed) and the bytes written. */
  readonly control: SharedArrayBuffer;
  /** Where the main thread writes each range (its size bounds one request). */
  readonly buffer: SharedArrayBuffer;
}

/** The object a thread opens: one at a time; a thread serves one object after another. */
export interface ThreadFile {
  /** The virtual path libhdf5 opens. */
  readonly path: string;
  /** The object's URI, for messages. */
  readonly source: string;
  readonly size: number;
  readonly options: Partial<SyncRangeOptions>;
  /** A local file, read in place by libhdf5 (no ranges): `path` is its real path. */
  readonly local?: boolean;
}

/** A command to the thread. */
export type ThreadRequest =
  | { readonly id: number; readonly op: 'open'; readonly file: ThreadFile }
  | { readonly id: number; readonly op: 'close' }
  | {
      readonly id: number;
      readonly op: 'read';
      readonly path: string;
      readonly start: number;
      readonly end: number;
      /** The last row the partition reads (rows up to it may be fetched with these). */
      readonly until: number;
    };

/** What the thread sends back: a range it needs now, or a command's outcome. */
export type ThreadReply =
  | { readonly t: 'range'; readonly start: number; readonly end: number }
  | {
      readonly t: 'reply';
      readonly id: number;
      readonly ok: true;
      readonly arrays?: readonly ArrayInfo[];
      readonly rows?: TypedArray | string[];
    }
  | {
      readonly t: 'reply';
      readonly id: number;
      readonly ok: false;
      readonly error: { readonly message: string; readonly code?: string; readonly object?: string };
    };
