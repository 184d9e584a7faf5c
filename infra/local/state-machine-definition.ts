import { HANDLER_FILE_METADATA } from '../constructs/template-metadata.js';

/** A CloudFormation template, as far as this module reads it. */
export interface CloudFormationTemplate {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** One Task state bound to what it runs: a Lambda function, or an ECS task's container. */
export type TaskBinding =
  | {
      readonly kind: 'lambda';
      /** Logical id of the AWS::Lambda::Function. */
      readonly functionLogicalId: string;
      /** Exported handler name (`index.snapshotHandler` → `snapshotHandler`). */
      readonly handlerExport: string;
    }
  | {
      /** `ecs:runTask.sync`: the state waits for the task to stop. */
      readonly kind: 'container';
      /** Logical id of the AWS::ECS::TaskDefinition. */
      readonly taskDefinitionLogicalId: string;
      /** The container the state's overrides name. */
      readonly containerName: string;
      /** The container's entry point source (template metadata), relative to the project. */
      readonly handlerFile: string;
    };

/** The state machine of a synthesized template, as plain ASL plus its Task → function bindings. */
export interface LocalStateMachine {
  readonly definition: { StartAt: string; States: Record<string, Record<string, unknown>> };
  readonly tasks: Record<string, TaskBinding>;
}

const FAKE_ACCOUNT = '000000000000';
const FAKE_REGION = 'us-east-1';

/**
 * Resolve the intrinsic functions that CDK uses in a state machine's `DefinitionString`
 * (`Fn::Join`, `Fn::GetAtt …Arn`, `Ref` to pseudo parameters) into plain text, with Lambda ARNs
 * that name the function's logical id.
 */
function resolveIntrinsic(value: unknown): string {
  if (typeof value === 'string') return value;
  const node = value as Record<string, unknown>;
  if (Array.isArray(node['Fn::Join'])) {
    const [separator, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map(resolveIntrinsic).join(separator);
  }
  if (Array.isArray(node['Fn::GetAtt'])) {
    const [logicalId] = node['Fn::GetAtt'] as [string, string];
    return `arn:aws:lambda:${FAKE_REGION}:${FAKE_ACCOUNT}:function:${logicalId}`;
  }
  if (typeof node.Ref === 'string') {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': FAKE_REGION,
      'AWS::AccountId': FAKE_ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    return pseudo[node.Ref] ?? node.Ref;
  }
  throw new Error(
    `unsupported intrinsic in state machine definition: ${JSON.stringify(value).slice(0, 200)}`,
  );
}

/**
 * Extract the (single) state machine of a synthesized template: its ASL definition, exactly as
 * deployed but for ARNs, and for every Task state the function and handler export it invokes.
 */
export function stateMachineFromTemplate(template: CloudFormationTemplate): LocalStateMachine {
  const machines = Object.values(template.Resources).filter(
    (resource) => resource.Type === 'AWS::StepFunctions::StateMachine',
  );
  if (machines.length !== 1)
    throw new Error(`expected one state machine in the template, found ${machines.length}`);
  const definition = JSON.parse(
    resolveIntrinsic(machines[0]?.Properties?.DefinitionString),
  ) as LocalStateMachine['definition'];
  const tasks: Record<string, TaskBinding> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') continue;
    if (String(state.Resource) === 'arn:aws:states:::ecs:runTask.sync') {
      tasks[name] = containerBinding(template, name, state);
      continue;
    }
    const logicalId = /function:([^:]+)/.exec(String(state.Resource))?.[1];
    const fn = logicalId ? template.Resources[logicalId] : undefined;
    if (!logicalId || fn?.Type !== 'AWS::Lambda::Function')
      throw new Error(`task ${name} does not invoke a function of this template`);
    const handler = String(fn.Properties?.Handler ?? '');
    tasks[name] = {
      kind: 'lambda',
      functionLogicalId: logicalId,
      handlerExport: handler.slice(handler.lastIndexOf('.') + 1),
    };
  }
  return { definition, tasks };
}

/** An `ecs:runTask.sync` state: its task definition (named by family) and its container. */
function containerBinding(
  template: CloudFormationTemplate,
  name: string,
  state: Record<string, unknown>,
): TaskBinding {
  const parameters = (state.Parameters ?? {}) as {
    TaskDefinition?: string;
    Overrides?: { ContainerOverrides?: Array<{ Name?: string }> };
  };
  // `.sync` names the task definition by its family (the latest revision).
  const family = String(parameters.TaskDefinition ?? '');
  const [logicalId, taskDefinition] = (Object.entries(template.Resources).find(
    ([id, resource]) =>
      resource.Type === 'AWS::ECS::TaskDefinition' &&
      (resource.Properties?.Family === family || id === family),
  ) ?? ['', undefined]) as [string, { Type: string; Metadata?: Record<string, unknown> } | undefined];
  const handlerFile = taskDefinition?.Metadata?.[HANDLER_FILE_METADATA];
  const containerName = parameters.Overrides?.ContainerOverrides?.[0]?.Name;
  if (
    taskDefinition?.Type !== 'AWS::ECS::TaskDefinition' ||
    typeof handlerFile !== 'string' ||
    !containerName
  )
    throw new Error(`task ${name} does not run a container of this template with a known entry point`);
  return { kind: 'container', taskDefinitionLogicalId: logicalId, containerName, handlerFile };
}
