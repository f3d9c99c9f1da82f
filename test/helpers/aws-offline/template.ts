import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../../../src/errors.js';

/** The account, region and partition the offline executor pretends to run in. */
export const OFFLINE_ENV = Object.freeze({ partition: 'aws', region: 'us-east-1', account: '123456789012' });

/** A statement of an IAM policy, with every intrinsic resolved. */
export interface PolicyStatementJson {
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

/** A Lambda function of the template, as the offline Lambda service needs it. */
export interface TemplateFunction {
  readonly logicalId: string;
  readonly arn: string;
  readonly handler: string;
  readonly runtime: string;
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
  readonly architecture: string;
  readonly environment: Readonly<Record<string, string>>;
  /** The file or folder of its code asset in the cloud assembly. */
  readonly asset: string | undefined;
  readonly policy: readonly PolicyStatementJson[];
}

/** The state machine of the template. */
export interface TemplateStateMachine {
  readonly logicalId: string;
  readonly arn: string;
  readonly name: string;
  /** The ASL definition, parsed, with every intrinsic resolved. */
  readonly definition: Record<string, unknown>;
  /** The statements of every policy attached to its role. */
  readonly policy: readonly PolicyStatementJson[];
}

/** What the offline executor reads from a synthesized template. */
export interface SynthesizedTemplate {
  readonly stateMachine: TemplateStateMachine;
  readonly functions: ReadonlyMap<string, TemplateFunction>;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Resource {
  Type: string;
  Properties?: Record<string, Json>;
  Metadata?: Record<string, Json>;
}

/** The ARN a logical id stands for offline (functions and state machines get their real ARN shapes). */
function arnOf(logicalId: string, resources: Record<string, Resource>): string {
  const { partition, region, account } = OFFLINE_ENV;
  const type = resources[logicalId]?.Type;
  if (type === 'AWS::Lambda::Function')
    return `arn:${partition}:lambda:${region}:${account}:function:${logicalId}`;
  if (type === 'AWS::StepFunctions::StateMachine')
    return `arn:${partition}:states:${region}:${account}:stateMachine:${logicalId}`;
  if (type === 'AWS::IAM::Role') return `arn:${partition}:iam::${account}:role/${logicalId}`;
  if (type === 'AWS::Logs::LogGroup')
    return `arn:${partition}:logs:${region}:${account}:log-group:${logicalId}:*`;
  throw new CaiError(
    ErrorCodes.unsupported,
    logicalId,
    `the offline executor cannot resolve a ${type ?? 'missing'} resource`,
  );
}

/**
 * Resolves the CloudFormation intrinsics CDK emits in CAI's template (Ref, Fn::GetAtt Arn, Fn::Join,
 * Fn::Select, Fn::Split) to the values they would have in {@link OFFLINE_ENV}.
 */
export function resolveIntrinsics(value: Json, resources: Record<string, Resource>): Json {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, resources));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && (keys[0].startsWith('Fn::') || keys[0] === 'Ref')) {
    const [fn] = keys;
    const arg = value[fn];
    if (fn === 'Ref') {
      const name = arg as string;
      if (name === 'AWS::Partition') return OFFLINE_ENV.partition;
      if (name === 'AWS::Region') return OFFLINE_ENV.region;
      if (name === 'AWS::AccountId') return OFFLINE_ENV.account;
      if (name === 'AWS::URLSuffix') return 'amazonaws.com';
      const type = resources[name]?.Type;
      return type === 'AWS::Lambda::Function' || type === 'AWS::IAM::Role' || type === 'AWS::Logs::LogGroup'
        ? name
        : arnOf(name, resources);
    }
    if (fn === 'Fn::GetAtt') {
      const [id, attr] = arg as [string, string];
      if (attr !== 'Arn')
        throw new CaiError(ErrorCodes.unsupported, `${id}.${attr}`, 'only Arn attributes resolve offline');
      return arnOf(id, resources);
    }
    if (fn === 'Fn::Join') {
      const [sep, parts] = arg as [string, Json[]];
      return parts.map((p) => String(resolveIntrinsics(p, resources))).join(sep);
    }
    if (fn === 'Fn::Split') {
      const [sep, text] = arg as [string, Json];
      return String(resolveIntrinsics(text, resources)).split(sep);
    }
    if (fn === 'Fn::Select') {
      const [index, list] = arg as [number, Json];
      return (resolveIntrinsics(list, resources) as Json[])[index];
    }
    throw new CaiError(ErrorCodes.unsupported, fn, 'the offline executor does not resolve this intrinsic');
  }
  const out: Record<string, Json> = {};
  for (const k of keys) out[k] = resolveIntrinsics(value[k], resources);
  return out;
}

function policiesOfRole(roleId: string, resources: Record<string, Resource>): PolicyStatementJson[] {
  const statements: PolicyStatementJson[] = [];
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    const roles = (r.Properties?.Roles ?? []) as Json[];
    if (!roles.some((x) => typeof x === 'object' && x !== null && (x as { Ref?: string }).Ref === roleId))
      continue;
    const doc = resolveIntrinsics(r.Properties?.PolicyDocument ?? {}, resources) as unknown as {
      Statement: PolicyStatementJson[];
    };
    statements.push(...doc.Statement);
  }
  return statements;
}

const roleIdOf = (prop: Json | undefined): string => {
  const getAtt = (prop as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
  if (!getAtt) throw new CaiError(ErrorCodes.unsupported, 'Role', 'expected a role created in the stack');
  return getAtt[0];
};

/**
 * Reads a synthesized stack: its state machine (definition resolved and parsed) and its functions
 * (handler, memory, timeout, environment, code asset, role statements).
 *
 * @example const { stateMachine, functions } = await loadSynthesizedTemplate('cdk.out/assembly/Cai.template.json');
 */
export async function loadSynthesizedTemplate(templateFile: string): Promise<SynthesizedTemplate> {
  const template = JSON.parse(await fs.readFile(templateFile, 'utf8')) as {
    Resources: Record<string, Resource>;
  };
  const resources = template.Resources;
  const functions = new Map<string, TemplateFunction>();
  let stateMachine: TemplateStateMachine | undefined;
  for (const [id, r] of Object.entries(resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::Lambda::Function') {
      const env = ((p.Environment as { Variables?: Record<string, string> } | undefined)?.Variables ??
        {}) as Record<string, string>;
      const assetPath = r.Metadata?.['aws:asset:path'];
      const arn = arnOf(id, resources);
      functions.set(arn, {
        logicalId: id,
        arn,
        // A container image function has no Handler: its image's command names it.
        handler: String(
          p.Handler ?? ((p.ImageConfig as { Command?: string[] } | undefined)?.Command ?? [''])[0],
        ),
        runtime: String(p.Runtime ?? (p.PackageType === 'Image' ? 'image' : '')),
        memoryMb: Number(p.MemorySize ?? 128),
        timeoutSeconds: Number(p.Timeout ?? 3),
        architecture: String(((p.Architectures as Json[] | undefined) ?? ['x86_64'])[0]),
        environment: resolveIntrinsics(env, resources) as Record<string, string>,
        asset: typeof assetPath === 'string' ? path.join(path.dirname(templateFile), assetPath) : undefined,
        policy: policiesOfRole(roleIdOf(p.Role), resources),
      });
    }
    if (r.Type === 'AWS::StepFunctions::StateMachine') {
      if (stateMachine)
        throw new CaiError(ErrorCodes.unsupported, id, 'the template has more than one state machine');
      const text = resolveIntrinsics(p.DefinitionString ?? '', resources);
      stateMachine = {
        logicalId: id,
        arn: arnOf(id, resources),
        name: id,
        definition: JSON.parse(String(text)) as Record<string, unknown>,
        policy: policiesOfRole(roleIdOf(p.RoleArn), resources),
      };
    }
  }
  if (!stateMachine)
    throw new CaiError(ErrorCodes.notFound, templateFile, 'the template has no state machine');
  return { stateMachine, functions };
}
