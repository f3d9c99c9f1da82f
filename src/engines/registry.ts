// Which engine runs a job's map. Engines that need more than Node (a scheduler's commands, a cloud
// SDK) are imported only when a job asks for them.
import { CaiError, ErrorCodes } from '../errors.js';
import type { ResolvedJob } from '../job/spec.js';
import { localEngine } from './local/engine.js';
import type { MapEngine } from './map.js';

/** Makes the engine for a job. */
export type EngineFactory = (job: ResolvedJob) => Promise<MapEngine>;

const ENGINES = new Map<string, EngineFactory>([
  ['local', async () => localEngine()],
  ['slurm', async () => (await import('./slurm/engine.js')).slurmEngine()],
]);

/**
 * Adds an engine that `runJob` can run maps on, by the name a job's `engine` field gives.
 * @example registerEngine('inline', async () => myEngine);
 */
export function registerEngine(name: string, factory: EngineFactory): void {
  ENGINES.set(name, factory);
}

/**
 * The engine that runs this job's map, or a clear error: the aws engine runs its map in Step Functions
 * and is started by `cai aws run`, not here.
 * @example const engine = await engineFor(job);
 */
export async function engineFor(job: ResolvedJob): Promise<MapEngine> {
  const factory = ENGINES.get(job.engine);
  if (factory) return factory(job);
  const hint = job.engine === 'aws' ? '; use `cai aws run` for the aws engine' : '';
  throw new CaiError(
    ErrorCodes.option,
    'engine',
    `engine "${job.engine}" cannot run from here${hint}; engines here: ${[...ENGINES.keys()].join(', ')}`,
  );
}
