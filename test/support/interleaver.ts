import { AsyncLocalStorage } from 'node:async_hooks';

/** Thrown at a gate of a task that the schedule crashes: the task does no more I/O, like a dead process. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

interface Waiting {
  readonly release: () => void;
  readonly crash: (error: Error) => void;
  readonly label: string;
}

/**
 * Runs concurrent tasks one step at a time in an order chosen by a seeded choice sequence, so a
 * property test explores interleavings of real code with real I/O and every failure reproduces.
 *
 * A task pauses at each {@link gate} (put one in front of every AWS call); the driver waits until
 * no task is running, picks one of the paused tasks by the next choice and lets it run to its next
 * gate (or its end). The real I/O happens while a task runs, so its timing cannot change the order.
 * A task picked at a crash step gets {@link SimulatedCrash} from its gate and every later one.
 */
export class Interleaver {
  private readonly storage = new AsyncLocalStorage<string>();
  private readonly waiting = new Map<string, Waiting>();
  private readonly running = new Set<string>();
  private readonly dead = new Set<string>();
  private readonly tasks = new Set<Promise<unknown>>();
  private step = 0;
  /** Labels of released steps, in order (printed when a property fails). */
  readonly trace: string[] = [];

  constructor(
    private readonly choices: readonly number[],
    private readonly crashSteps: ReadonlySet<number> = new Set(),
    private readonly maxSteps = 5_000,
    /** Which tasks may crash (e.g. encoder deliveries, not the test's own writer). Default all. */
    private readonly crashable: (id: string) => boolean = () => true,
    /** Relative chance of a paused task to be picked (default 1 each). */
    private readonly weight: (id: string) => number = () => 1,
  ) {}
  private crashDue = 0;

  /** The task id of the caller, if it runs inside {@link spawn}. */
  currentTask(): string | undefined {
    return this.storage.getStore();
  }

  /** Pause the calling task until the driver picks it. Outside any task it returns at once. */
  gate(label = ''): Promise<void> {
    const id = this.storage.getStore();
    if (id === undefined) return Promise.resolve();
    if (this.dead.has(id)) return Promise.reject(new SimulatedCrash(`task ${id} is dead`));
    this.running.delete(id);
    return new Promise<void>((release, crash) => this.waiting.set(id, { release, crash, label }));
  }

  /** Start a task now; it runs until its first gate. Its result (or error) is returned, not thrown. */
  spawn<T>(id: string, task: () => Promise<T>): Promise<{ value?: T; error?: unknown }> {
    this.running.add(id);
    const promise = this.storage
      .run(id, task)
      .then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      )
      .finally(() => {
        this.running.delete(id);
      });
    this.tasks.add(promise);
    promise.finally(() => this.tasks.delete(promise));
    return promise;
  }

  /** Whether a task was crashed by the schedule. */
  isDead(id: string): boolean {
    return this.dead.has(id);
  }

  /** Drive every task (including ones spawned meanwhile) to its end. */
  async run(): Promise<void> {
    for (;;) {
      await this.settle();
      if (this.waiting.size === 0) {
        if (this.tasks.size === 0) return;
        await Promise.race(this.tasks);
        continue;
      }
      if (this.step >= this.maxSteps)
        throw new Error(`no end after ${this.maxSteps} steps: ${this.trace.slice(-20).join(' | ')}`);
      const ids = [...this.waiting.keys()].sort();
      const choice = this.choices.length > 0 ? (this.choices[this.step % this.choices.length] as number) : 0;
      const weights = ids.map((candidate) => this.weight(candidate));
      let ticket = choice % weights.reduce((sum, value) => sum + value, 0);
      let index = 0;
      while (ticket >= (weights[index] as number)) {
        ticket -= weights[index] as number;
        index += 1;
      }
      const id = ids[index] as string;
      const next = this.waiting.get(id) as Waiting;
      this.waiting.delete(id);
      this.trace.push(`${id}:${next.label}`);
      if (this.crashSteps.has(this.step)) this.crashDue += 1;
      if (this.crashDue > 0 && this.crashable(id)) {
        this.crashDue -= 1;
        this.dead.add(id);
        this.trace.push(`${id}:CRASH`);
        next.crash(new SimulatedCrash(`task ${id} crashed at step ${this.step}`));
      } else {
        this.running.add(id);
        next.release();
      }
      this.step += 1;
    }
  }

  /** Wait until every released task has reached its next gate or its end (real I/O included). */
  private async settle(): Promise<void> {
    while (this.running.size > 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * A client whose `send` passes a gate first, labelled by the command's name and sort key: the
 * AWS SDK client of a real emulator, made steppable.
 */
export function gatedClient<T extends { send: (...args: never[]) => Promise<unknown> }>(
  client: T,
  interleaver: Interleaver,
  onSent?: (
    command: { constructor: { name: string }; input: Record<string, unknown> },
    task: string | undefined,
  ) => void,
): T {
  // A task's own parallel calls (Promise.all) are made one after another: a task waits at one
  // gate at a time, which is what lets the driver know when every task has settled.
  const tails = new Map<string, Promise<unknown>>();
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      return (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const task = interleaver.currentTask();
        const input = command.input as { Key?: { sk?: string }; Item?: { sk?: string } };
        const sortKey = input.Key?.sk ?? input.Item?.sk;
        const call = async () => {
          await interleaver.gate(`${command.constructor.name}${sortKey ? `(${sortKey})` : ''}`);
          const result = await (target.send as (command: unknown) => Promise<unknown>)(command);
          onSent?.(command, task);
          return result;
        };
        if (task === undefined) return call();
        const result = (tails.get(task) ?? Promise.resolve()).then(call, call);
        tails.set(
          task,
          result.catch(() => {}),
        );
        return result;
      };
    },
  });
}
