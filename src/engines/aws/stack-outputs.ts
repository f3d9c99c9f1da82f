/**
 * Names of the CAI stack's CloudFormation outputs, which `cai aws run` reads to find the state machine
 * and the prefixes it may use. Kept apart from the stack so that reading them does not load the CDK.
 *
 * @example outputs.find((o) => o.OutputKey === STACK_OUTPUTS.stateMachineArn)
 */
export const STACK_OUTPUTS = Object.freeze({
  stateMachineArn: 'StateMachineArn',
  data: 'DataUri',
  output: 'OutputUri',
  model: 'ModelUri',
  memoryMb: 'InferenceMemoryMb',
  /**
   * Most inference Lambdas at once (`--max-concurrency`, after deploy's cap to the account): a job asking
   * more is refused. Stacks deployed before CAI wrote it lack it.
   */
  maxConcurrency: 'MaxConcurrency',
} as const);
