import {
  CloudFormationClient,
  DeleteStackCommand,
  DescribeStacksCommand,
  waitUntilStackDeleteComplete,
} from '@aws-sdk/client-cloudformation';
import {
  DescribeExecutionCommand,
  DescribeMapRunCommand,
  ListMapRunsCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { AccountConcurrency } from './account-limits.js';
import { STACK_OUTPUTS } from './stack-outputs.js';

/** Where and as whom to reach AWS; unset fields follow the SDK's usual chain (env, profile...). */
export interface AwsSession {
  readonly region?: string;
  readonly profile?: string;
  readonly stackName: string;
}

/** A deployed CAI stack, from its CloudFormation outputs. */
export interface Deployment {
  readonly stackName: string;
  readonly region: string;
  readonly stateMachineArn: string;
  readonly data: string;
  readonly output: string;
  readonly model: string;
  readonly memoryMb: number;
  /**
   * Most inference Lambdas at once, the stack's `--max-concurrency`; `undefined` for a stack deployed by
   * a CAI older than its output (its Initialize lowers a larger job `concurrency` to it without a word).
   */
  readonly maxConcurrency?: number;
}

/** An execution as DescribeExecution reports it. */
export interface ExecutionState {
  readonly status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';
  readonly startDate: Date;
  readonly stopDate?: Date;
  readonly input?: string;
  readonly error?: string;
  readonly cause?: string;
}

/** A map run's item counts, as DescribeMapRun reports them. */
export interface MapRunItems {
  readonly pending: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly timedOut: number;
  readonly aborted: number;
  readonly total: number;
}

/** The few AWS calls `cai aws` makes; {@link sdkAwsApi} is the real one, tests can pass their own. */
export interface AwsApi {
  readonly region: string;
  describeStack(stackName: string): Promise<Deployment>;
  startExecution(stateMachineArn: string, name: string, input: string): Promise<string>;
  describeExecution(executionArn: string): Promise<ExecutionState>;
  /** The first map run of an execution and its item counts, once it has started. */
  mapRun(executionArn: string): Promise<MapRunItems | undefined>;
  /** Stops a running execution (StopExecution), with a cause Step Functions records. */
  stopExecution?(executionArn: string, cause: string): Promise<void>;
  /** Deletes a stack and waits until CloudFormation has removed it (or says why it could not). */
  deleteStack(stackName: string): Promise<void>;
  /** Lambda's concurrency limits in the region (GetAccountSettings), when the API can tell. */
  accountConcurrency?(): Promise<AccountConcurrency | undefined>;
}

type SdkError = Error & { code?: string; $metadata?: { httpStatusCode?: number } };

/**
 * Turns what the SDK throws into an error that says what to do: missing credentials, missing region,
 * an undeployed stack, denied access, an unreachable endpoint.
 *
 * @example catch (err) { throw awsError(err, session) }
 */
export function awsError(err: unknown, session: AwsSession, region?: string): Error {
  if (err instanceof CaiError) return err;
  const e = err as SdkError;
  const name = e?.name ?? '';
  const message = e?.message ?? String(err);
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return new CaiError(
      ErrorCodes.accessDenied,
      'AWS credentials',
      'none found; run `aws configure` (or `aws sso login --profile <name>` and set AWS_PROFILE), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, then try again',
      { cause: err },
    );
  }
  if (/Region is missing/i.test(message)) {
    return new CaiError(
      ErrorCodes.option,
      'AWS region',
      'not set; pass --region or set AWS_REGION (e.g. us-east-1)',
      {
        cause: err,
      },
    );
  }
  if (name === 'ValidationError' && /does not exist/i.test(message)) {
    return new CaiError(
      ErrorCodes.notFound,
      `stack ${session.stackName}`,
      `not deployed in ${region ?? session.region ?? 'this region'}; run \`cai aws deploy --data s3://... --output s3://... --model s3://...\` first (or pass --stack-name/--region of your deployment)`,
      { cause: err },
    );
  }
  if (name === 'ExecutionDoesNotExist' || name === 'InvalidArn') {
    return new CaiError(
      ErrorCodes.notFound,
      'execution',
      `${message}; pass the execution ARN that \`cai aws run\` printed (executions are kept 90 days)`,
      { cause: err },
    );
  }
  if (name === 'StateMachineDoesNotExist') {
    return new CaiError(
      ErrorCodes.notFound,
      `stack ${session.stackName}`,
      'its state machine no longer exists; deploy the stack again with `cai aws deploy`',
      { cause: err },
    );
  }
  if (/ExpiredToken|InvalidClientTokenId|UnrecognizedClient|SignatureDoesNotMatch/i.test(name)) {
    return new CaiError(
      ErrorCodes.accessDenied,
      'AWS credentials',
      `rejected (${name}); refresh them (e.g. \`aws sso login\`) and try again`,
      { cause: err },
    );
  }
  if (/AccessDenied/i.test(name) || e.$metadata?.httpStatusCode === 403) {
    return new CaiError(
      ErrorCodes.accessDenied,
      'AWS',
      `access denied: ${message}; use credentials allowed to use the stack`,
      { cause: err },
    );
  }
  const code = e.code ?? (e.cause as SdkError | undefined)?.code;
  if (code && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH/.test(code)) {
    return new CaiError(
      ErrorCodes.storage,
      'AWS',
      `cannot reach the AWS endpoint (${code}); check the network and any AWS_ENDPOINT_URL* variables`,
      { cause: err },
    );
  }
  if (name === 'TimeoutError') {
    return new CaiError(
      ErrorCodes.storage,
      'AWS',
      'the AWS endpoint did not answer in time; check the network',
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(message);
}

const outputValue = (outputs: { OutputKey?: string; OutputValue?: string }[], key: string, stack: string) => {
  const v = outputs.find((o) => o.OutputKey === key)?.OutputValue;
  if (!v) {
    throw new CaiError(
      ErrorCodes.notFound,
      `stack ${stack}`,
      `has no output ${key}; it was not deployed by \`cai aws deploy\`, redeploy it`,
    );
  }
  return v;
};

/** An output older stacks lack: `undefined` then (or when it is not a positive integer). */
export function optionalNumber(
  outputs: { OutputKey?: string; OutputValue?: string }[],
  key: string,
): number | undefined {
  const n = Number(outputs.find((o) => o.OutputKey === key)?.OutputValue ?? NaN);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The real {@link AwsApi}: CloudFormation and Step Functions clients of the SDK, with the credentials
 * and region resolved (and checked) first so that their absence gets a clear error.
 *
 * @example const api = await sdkAwsApi({ stackName: 'Cai' }); const d = await api.describeStack('Cai');
 */
export async function sdkAwsApi(session: AwsSession): Promise<AwsApi> {
  const config = { region: session.region, profile: session.profile };
  const cfn = new CloudFormationClient(config);
  const sfn = new SFNClient(config);
  let region: string;
  try {
    region = await cfn.config.region();
    await cfn.config.credentials();
  } catch (err) {
    throw awsError(err, session);
  }
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw awsError(err, session, region);
    }
  };
  return {
    region,
    accountConcurrency: () =>
      call(async () => {
        const { LambdaClient, GetAccountSettingsCommand } = await import('@aws-sdk/client-lambda');
        const lambda = new LambdaClient(config);
        try {
          const { AccountLimit } = await lambda.send(new GetAccountSettingsCommand({}));
          const limit = AccountLimit?.ConcurrentExecutions;
          const unreserved = AccountLimit?.UnreservedConcurrentExecutions ?? limit;
          return limit === undefined || unreserved === undefined ? undefined : { limit, unreserved };
        } finally {
          lambda.destroy();
        }
      }),
    describeStack: (stackName) =>
      call(async () => {
        const res = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
        const stack = res.Stacks?.[0];
        if (!stack)
          throw new CaiError(
            ErrorCodes.notFound,
            `stack ${stackName}`,
            'not found; run `cai aws deploy` first',
          );
        if (/_IN_PROGRESS$/.test(stack.StackStatus ?? '') && !stack.Outputs?.length) {
          throw new CaiError(
            ErrorCodes.notFound,
            `stack ${stackName}`,
            `is ${stack.StackStatus}; wait for \`cai aws deploy\` to finish`,
          );
        }
        const outputs = stack.Outputs ?? [];
        return {
          stackName,
          region,
          stateMachineArn: outputValue(outputs, STACK_OUTPUTS.stateMachineArn, stackName),
          data: outputValue(outputs, STACK_OUTPUTS.data, stackName),
          output: outputValue(outputs, STACK_OUTPUTS.output, stackName),
          model: outputValue(outputs, STACK_OUTPUTS.model, stackName),
          memoryMb: Number(outputValue(outputs, STACK_OUTPUTS.memoryMb, stackName)),
          maxConcurrency: optionalNumber(outputs, STACK_OUTPUTS.maxConcurrency),
        };
      }),
    deleteStack: (stackName) =>
      call(async () => {
        await cfn.send(new DeleteStackCommand({ StackName: stackName }));
        try {
          // Deleting the functions, the state machine, roles and log groups takes a minute or two.
          await waitUntilStackDeleteComplete(
            { client: cfn, minDelay: 5, maxDelay: 30, maxWaitTime: 3600 },
            { StackName: stackName },
          );
        } catch (err) {
          const res = await cfn
            .send(new DescribeStacksCommand({ StackName: stackName }))
            .catch(() => undefined);
          const stack = res?.Stacks?.[0];
          throw new CaiError(
            ErrorCodes.cloud,
            `stack ${stackName}`,
            `CloudFormation did not delete it (${stack?.StackStatus ?? 'status unknown'}${stack?.StackStatusReason ? `: ${stack.StackStatusReason}` : ''}); see its events in the CloudFormation console, then run \`cai aws destroy\` again`,
            { cause: err },
          );
        }
      }),
    startExecution: (stateMachineArn, name, input) =>
      call(async () => {
        const res = await sfn.send(new StartExecutionCommand({ stateMachineArn, name, input }));
        return res.executionArn as string;
      }),
    describeExecution: (executionArn) =>
      call(async () => {
        const res = await sfn.send(new DescribeExecutionCommand({ executionArn }));
        return {
          status: res.status as ExecutionState['status'],
          startDate: res.startDate as Date,
          stopDate: res.stopDate,
          input: res.input,
          error: res.error,
          cause: res.cause,
        };
      }),
    stopExecution: (executionArn, cause) =>
      call(async () => {
        await sfn.send(new StopExecutionCommand({ executionArn, error: 'CaiStopped', cause }));
      }),
    mapRun: (executionArn) =>
      call(async () => {
        const runs = await sfn.send(new ListMapRunsCommand({ executionArn }));
        const arn = runs.mapRuns?.[0]?.mapRunArn;
        if (!arn) return undefined;
        const run = await sfn.send(new DescribeMapRunCommand({ mapRunArn: arn }));
        const c = run.itemCounts;
        return {
          pending: c?.pending ?? 0,
          running: c?.running ?? 0,
          succeeded: c?.succeeded ?? 0,
          failed: c?.failed ?? 0,
          timedOut: c?.timedOut ?? 0,
          aborted: c?.aborted ?? 0,
          total: c?.total ?? 0,
        };
      }),
  };
}
