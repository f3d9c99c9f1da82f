// Why CAI's stack is as it is where cdk-nag's AwsSolutions and Serverless packs would have it otherwise.
// Each acknowledgement names one exact finding (an IAM5 wildcard by its resource), so that a new
// wildcard or setting elsewhere still fails the check (test/aws/nag.test.ts).
import { Validations, type Stack } from 'aws-cdk-lib';
import type { CfnResource } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { STATES } from './state-machine.js';

/** What the acknowledgements refer to. */
export interface NagScope {
  readonly stack: Stack;
  readonly functions: readonly lambda.IFunction[];
  readonly stateMachine: sfn.StateMachine;
  /** Bucket and prefix (no trailing `/`) of the data and of the output. */
  readonly data: { bucket: string; prefix: string };
  readonly output: { bucket: string; prefix: string };
}

const s3Objects = (bucket: string, prefix: string, tail = '*') =>
  `Resource::arn:<AWS::Partition>:s3:::${bucket}/${prefix ? `${prefix}/` : ''}${tail}`;

/**
 * Acknowledges, with the reason, each cdk-nag finding CAI's stack has by design.
 *
 * @example acknowledgeNagFindings({ stack: this, functions, stateMachine, data, output });
 */
export function acknowledgeNagFindings(scope: NagScope): void {
  const { stack, stateMachine } = scope;
  const ack = (
    on: Stack | sfn.StateMachine | NonNullable<sfn.StateMachine['role']>,
    id: string,
    reason: string,
  ) => Validations.of(on).acknowledge({ id, reason });

  ack(
    stack,
    `AwsSolutions-IAM5[${s3Objects(scope.data.bucket, scope.data.prefix)}]`,
    'Jobs read any partition under the data prefix the stack was deployed for, and only there: the object names are the dataset, not known at deploy.',
  );
  ack(
    stack,
    `AwsSolutions-IAM5[${s3Objects(scope.output.bucket, scope.output.prefix)}]`,
    'Jobs write predictions, records and the Map results under the output prefix, one object per partition: the names are known only when a job is planned.',
  );
  ack(
    stack,
    `AwsSolutions-IAM5[${s3Objects(scope.output.bucket, scope.output.prefix, '*summary.json')}]`,
    'Initialize deletes only summary.json objects of jobs under the output prefix (a job run again with overwrite), never predictions or data.',
  );
  for (const fn of scope.functions) {
    const id = stack.getLogicalId(fn.node.defaultChild as CfnResource);
    ack(
      stack,
      `AwsSolutions-IAM5[Resource::<${id}.Arn>:*]`,
      "Step Functions' LambdaInvoke grants the function's versions and aliases (ARN:*) beside the function itself: still only this stack's three functions.",
    );
  }
  if (stateMachine.role) {
    ack(
      stateMachine.role,
      'AwsSolutions-IAM5[Resource::*]',
      'CloudWatch Logs delivery for the state machine (logs:CreateLogDelivery, logs:DescribeResourcePolicies and the others) takes no resource ARN; AWS documents "*" for them.',
    );
  }
  const machineId = stack.getLogicalId(stateMachine.node.defaultChild as CfnResource);
  const executions = `Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${machineId}"}]}]}`;
  ack(
    stateMachine,
    `AwsSolutions-IAM5[${executions}:*]`,
    "A Distributed Map starts, describes and stops child executions of its own state machine; their names are made at run time, so only this state machine's executions are granted.",
  );
  ack(
    stateMachine,
    `AwsSolutions-IAM5[${executions}/${STATES.map}:*]`,
    "The Map run's child executions (label Inference) of this state machine only; their names are made at run time.",
  );
  ack(
    stateMachine,
    'AwsSolutions-SF1',
    "Logged at ERROR without execution data: ALL would log every state of up to 100,000 Map children (CloudWatch cost) and the states' inputs hold job specs; each partition's own record and failure file say what happened.",
  );
  for (const id of [
    'AwsSolutions-SF2',
    'Serverless-StepFunctionStateMachineXray',
    'Serverless-LambdaTracing',
  ]) {
    ack(
      stack,
      id,
      'No X-Ray: a trace per partition of 100,000 costs more than it tells; every partition record carries its stage timings, S3 request counts and Lambda billed duration.',
    );
  }
  ack(
    stack,
    'Serverless-LambdaDLQ',
    'The functions are invoked synchronously by Step Functions, whose Retry and Catch handle failures; a dead letter queue applies to asynchronous invocations only, and failed partitions are written to failures/<id>.json.',
  );
}
