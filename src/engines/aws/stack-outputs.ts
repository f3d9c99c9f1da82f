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
} as const);
