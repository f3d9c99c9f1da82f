// An `AwsApi` over the offline executor: `startExecution` runs the synthesized definition on this
// machine (real handlers, loopback S3), and `describeExecution` / `mapRun` report it as Step Functions
// would. It lets `cai aws run` and `cai bench --engine aws` be tested end to end with no account.
// Exports only; `node --test` running this file does nothing.
import type { Synthesized } from '../../src/engines/aws/app.js';
import type { AwsApi, Deployment, ExecutionState, MapRunItems } from '../../src/engines/aws/cloud.js';
import type { MapRunProgress } from './aws-offline/distributed-map.js';
import {
  runOfflineExecution,
  type OfflineExecutionOptions,
  type OfflineExecutionResult,
} from './aws-offline/executor.js';

interface Running {
  readonly startDate: Date;
  readonly input: string;
  mapRun?: MapRunProgress;
  result?: OfflineExecutionResult;
}

/** The offline API and every execution it started, by ARN. */
export interface OfflineAwsApi extends AwsApi {
  readonly executions: ReadonlyMap<
    string,
    { readonly input: string; readonly result?: OfflineExecutionResult }
  >;
  /** Resolves when every started execution has ended. */
  settled(): Promise<void>;
}

/**
 * An AWS API whose one stack is `synth`, its S3 the server at `s3Endpoint`; `execution` adds options to
 * every execution it starts (other handlers, crashes).
 */
export function offlineAwsApi(
  synth: Synthesized,
  s3Endpoint: string,
  execution: Pick<OfflineExecutionOptions, 'handlers' | 'crash'> = {},
): OfflineAwsApi {
  const executions = new Map<string, Running>();
  const pending: Promise<unknown>[] = [];
  let deleted = false;
  const arnOf = (name: string) => `arn:aws:states:us-east-1:123456789012:execution:offline:${name}`;
  return {
    region: 'us-east-1',
    executions,
    settled: async () => {
      await Promise.all(pending);
    },
    deleteStack: async (stackName) => {
      if (stackName !== synth.params.stackName || deleted)
        throw new Error(`stack ${stackName} does not exist (offline: only ${synth.params.stackName})`);
      deleted = true;
    },
    describeStack: async (stackName): Promise<Deployment> => {
      if (stackName !== synth.params.stackName || deleted)
        throw new Error(`stack ${stackName} does not exist (offline: only ${synth.params.stackName})`);
      return {
        stackName,
        region: 'us-east-1',
        stateMachineArn: `arn:aws:states:us-east-1:123456789012:stateMachine:${stackName}`,
        data: synth.params.data,
        output: synth.params.output,
        model: synth.params.model,
        memoryMb: synth.params.memoryMb,
        maxConcurrency: synth.params.maxConcurrency,
      };
    },
    startExecution: async (_arn, name, input) => {
      const executionArn = arnOf(name);
      const running: Running = { startDate: new Date(), input };
      executions.set(executionArn, running);
      pending.push(
        runOfflineExecution({
          ...execution,
          template: synth.templateFile,
          input: JSON.parse(input) as unknown,
          executionName: name,
          s3Endpoint,
          waitScale: 0.001,
          onMapRun: (p) => {
            running.mapRun = p;
          },
        }).then((r) => {
          running.result = r;
        }),
      );
      return executionArn;
    },
    describeExecution: async (executionArn): Promise<ExecutionState> => {
      const e = executions.get(executionArn);
      if (!e) throw new Error(`no execution ${executionArn}`);
      const r = e.result;
      return {
        status: r?.status ?? 'RUNNING',
        startDate: e.startDate,
        stopDate: r ? new Date(r.stopDate) : undefined,
        input: e.input,
        error: r?.error,
        cause: r?.cause,
      };
    },
    mapRun: async (executionArn): Promise<MapRunItems | undefined> => {
      const p = executions.get(executionArn)?.mapRun;
      return p && { ...p.itemCounts, timedOut: 0 };
    },
  };
}
