// The stand-in inference function of the AWS scale benchmarks: the real one's resume check (is the
// partition's record and predictions there?), then the worker's two writes, with no model, and the
// record returned in the result as the real one returns it. One S3 client
// for every container: a thousand cold containers each resolving an SDK client would measure this
// process's CPU, where on AWS each container has its own. Exports only.
import { ListingHeadStore } from '../../src/engines/aws/listing-store.js';
import {
  RESULT_RECORD_BYTES,
  type InferenceEvent,
  type InferenceResult,
} from '../../src/engines/aws/protocol.js';
import { recordText } from '../../src/summarize/records.js';
import { openStore } from '../../src/storage/open.js';
import type { Store } from '../../src/storage/store.js';
import { outputKeys } from '../../src/worker/run-partition.js';
import type { LambdaHandler } from './aws-offline/lambda-service.js';
import { DEPLOYMENT } from '../aws/fixture.js';
import type { MemoryS3 } from './memory-s3.js';
import { syntheticPlan, syntheticPredictions, syntheticRecord } from './synthetic-records.js';

const outputs = new Map<string, Promise<ListingHeadStore>>();

/**
 * An inference Lambda that writes synthetic outputs (4 labelled items a partition) where the real one
 * would run the model.
 *
 * @example runOfflineExecution(template, input, { handlers: { ...CAI_HANDLERS, inference: syntheticInference() } });
 */
export function syntheticInference(): LambdaHandler {
  const handler = async (event: InferenceEvent): Promise<InferenceResult> => {
    const { job } = event.task;
    if (!outputs.has(job.output)) {
      outputs.set(
        job.output,
        openStore(job.output, { s3Endpoint: job.s3Endpoint }).then((s: Store) => new ListingHeadStore(s)),
      );
    }
    const output = await (outputs.get(job.output) as Promise<ListingHeadStore>);
    const results: InferenceResult['partitions'][number][] = [];
    let recordBytes = 0;
    for (const p of event.items ?? (event.partition ? [event.partition] : [])) {
      const keys = outputKeys(p.id, job.predictionsFormat);
      if ((await output.head(keys.record)) && (await output.head(keys.predictions))) {
        results.push({ id: p.id, status: 'skipped', items: 0, seconds: 0 });
        continue;
      }
      // The record travels in the result too, as the real handler returns it (within its size cap).
      const record = syntheticRecord(p);
      const text = recordText(record);
      await output.put(keys.record, text);
      await output.put(keys.predictions, syntheticPredictions(p));
      const carry = recordBytes + Buffer.byteLength(text) <= RESULT_RECORD_BYTES;
      if (carry) recordBytes += Buffer.byteLength(text);
      results.push({ id: p.id, status: 'ok', items: 4, seconds: 0.05, ...(carry ? { record } : {}) });
    }
    return { partitions: results };
  };
  return handler as LambdaHandler;
}

/**
 * Seeds `n` synthetic partitions of 64 bytes under the test deployment's data prefix `name/` on the
 * in-memory S3 server, and returns the job that reads them into the output prefix `name/` (JSONL
 * predictions, the Map's concurrency as given).
 *
 * @example const job = await seedSyntheticJob(s3, 'n1000', 1000, 1000);
 */
export async function seedSyntheticJob(s3: MemoryS3, name: string, n: number, concurrency: number) {
  const partition = new Uint8Array(64);
  const data = new URL(`${DEPLOYMENT.data}/${name}/`);
  await s3.seed(
    syntheticPlan(n, 64).map((p) => [data.host, `${data.pathname.slice(1)}${p.key}`, partition] as const),
  );
  return {
    input: `${DEPLOYMENT.data}/${name}`,
    output: `${DEPLOYMENT.output}/${name}`,
    model: DEPLOYMENT.model,
    s3Endpoint: s3.endpoint,
    predictionsFormat: 'jsonl' as const,
    concurrency,
  };
}
