import { StateMachine } from 'aws-local-stepfunctions';
import type { LocalStateMachine } from './state-machine-definition.js';

// aws-local-stepfunctions 3 calls Promise.withResolvers (ES2024, Node 22+); Node 20 lacks it.
// The polyfill follows the specification exactly and is only installed where missing.
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((onResolve, onReject) => {
        resolve = onResolve;
        reject = onReject;
      });
      return { promise, resolve, reject };
    },
  });
}

/** A Lambda handler export, called with the Task state's input. */
export type StepHandler = (input: never) => Promise<unknown>;

/**
 * A container's run: called with the environment overrides of the state's `ContainerOverrides`
 * (what ECS adds to the task definition's environment); resolves with its exit code.
 */
export type ContainerHandler = (environment: Record<string, string>) => Promise<number>;

/** What `.sync` fails an ECS task state with when its container exits non-zero. */
export class ContainerExitedError extends Error {
  override readonly name = 'States.TaskFailed';
}

export interface ReindexExecution {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: unknown;
  readonly error?: { readonly name: string; readonly message: string };
  /** States entered, in order. */
  readonly states: string[];
  /** States retried after an error, one entry per retry. */
  readonly retries: string[];
  /** Errors raised by states, in order. */
  readonly stateErrors: Array<{ state: string; error: string; cause: string }>;
}

/**
 * Execute the synthesized reindex state machine locally (aws-local-stepfunctions), with each
 * Task state bound to the handler export its Lambda would run. Retry and Catch behave as on AWS;
 * `retryDelayMs` shortens retry pauses (tests, local runs).
 */
export async function runStateMachine(
  machine: LocalStateMachine,
  handlers: Record<string, StepHandler>,
  options: {
    executionName: string;
    input?: unknown;
    retryDelayMs?: number;
    /** `ecs:runTask.sync` states' containers, by container name. */
    containers?: Record<string, ContainerHandler>;
  },
): Promise<ReindexExecution> {
  const local = new StateMachine(machine.definition as never, { validationOptions: { checkArn: false } });
  const taskResourceLocalHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [state, binding] of Object.entries(machine.tasks)) {
    if (binding.kind === 'container') {
      const container = options.containers?.[binding.containerName];
      if (!container) throw new Error(`no container ${binding.containerName} for state ${state}`);
      taskResourceLocalHandlers[state] = (input) => runContainer(binding.containerName, container, input);
      continue;
    }
    const handler = handlers[binding.handlerExport];
    if (!handler) throw new Error(`no handler export ${binding.handlerExport} for state ${state}`);
    taskResourceLocalHandlers[state] = (input) => handler(input as never);
  }
  const retryIntervalOverrides =
    options.retryDelayMs === undefined
      ? undefined
      : Object.fromEntries(
          Object.keys(machine.definition.States).map((state) => [state, options.retryDelayMs as number]),
        );
  const execution = local.run((options.input ?? {}) as never, {
    overrides: {
      taskResourceLocalHandlers: taskResourceLocalHandlers as never,
      ...(retryIntervalOverrides ? { retryIntervalOverrides } : {}),
    },
    context: {
      Execution: {
        Name: options.executionName,
        Input: options.input ?? {},
        StartTime: new Date().toISOString(),
      },
    } as never,
  });
  const states: string[] = [];
  const retries: string[] = [];
  const stateErrors: ReindexExecution['stateErrors'] = [];
  const events = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<Record<string, unknown>>) {
      const state = event.state as { name: string } | undefined;
      if (event.type === 'StateEntered' && state) states.push(state.name);
      if (event.type === 'StateRetried' && state) retries.push(state.name);
      if (event.type === 'StateFailed' && state)
        stateErrors.push({ state: state.name, error: String(event.Error), cause: String(event.Cause) });
    }
  })();
  try {
    const output = await execution.result;
    await events;
    return { status: 'SUCCEEDED', output, states, retries, stateErrors };
  } catch (error) {
    await events.catch(() => {});
    const cause = (error as { cause?: Error }).cause ?? (error as Error);
    return {
      status: 'FAILED',
      error: { name: cause.name, message: cause.message },
      states,
      retries,
      stateErrors,
    };
  }
}

/**
 * An ECS task state as `.sync` runs it: the container starts with the state's environment
 * overrides (the resolved `Parameters`, intrinsics such as States.JsonToString applied), the
 * state waits for it to stop, and a non-zero exit fails the state (States.TaskFailed). The
 * result is the part of DescribeTasks' answer the reindex could read (its state discards it).
 */
async function runContainer(name: string, container: ContainerHandler, input: unknown): Promise<unknown> {
  const overrides = (
    input as { Overrides?: { ContainerOverrides?: Array<{ Name?: string; Environment?: unknown }> } }
  ).Overrides?.ContainerOverrides?.find((override) => override.Name === name);
  const environment: Record<string, string> = {};
  for (const variable of (overrides?.Environment ?? []) as Array<{ Name: string; Value: string }>)
    environment[variable.Name] = variable.Value;
  const exitCode = await container(environment);
  if (exitCode !== 0)
    throw new ContainerExitedError(
      `container ${name} exited with code ${exitCode} (essential container exited)`,
    );
  return {
    LastStatus: 'STOPPED',
    StopCode: 'EssentialContainerExited',
    Containers: [{ Name: name, ExitCode: exitCode }],
  };
}
