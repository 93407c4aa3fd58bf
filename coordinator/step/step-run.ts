// One step's bookkeeping while its results come in: the tasks out, which shards are
// covered, and the node gradients received. A shard is covered by the first accepted
// result that holds it; the step is complete when every shard is, and is then reduced
// along the fixed tree, whatever the order the results arrived in.
//
// A step may cover only a scope (some of its shard ids, as a relay is given): shards
// outside it count as covered from the start, and the step reduces to the nodes of
// coverNodes(scope) instead of the root, with the same bits anyone else would get.
//
// The scheduler asks for the open shards and the busy workers after every result, so
// both are kept up to date as tasks come and go (holders per shard, tasks per worker, a
// count of open shards) instead of being rebuilt from every task: a result costs O(1)
// when nothing is open, and a step O(N) in its tasks. The workers computing (a task sent
// and not answered) are kept the same way, and a watcher is told each time one starts or
// stops, so that the idle workers who may check an audit are known without a scan.

import type { PartialGradient } from '../../shared/gradient.js';
import type { NodeGradient } from '../../worker/compute.js';
import type { ResultMessage } from '../../shared/protocol/messages.js';
import { coverNodes, nodeKey, reduceNode, rootNode, type TreeNode } from '../../shared/tree.js';
import type { StepPlan } from '../plan.js';
import type { StepWorker } from './worker.js';

export interface Task {
  readonly id: number;
  readonly worker: StepWorker;
  readonly version: number;
  /** Shard ids, ascending. */
  readonly shards: readonly number[];
  /** The nodes the result must carry, in order, and the samples under each. */
  readonly nodes: readonly TreeNode[];
  readonly counts: readonly number[];
  readonly samples: number;
  /** performance.now() when the task was sent. */
  readonly sentAt: number;
  /** performance.now() of the task's deadline; it may be brought forward once speeds are known. */
  dueAt: number;
  /** Fires at dueAt. */
  timer: NodeJS.Timeout;
  /**
   * Past its deadline: its shards are open again, but its result still counts if first.
   * Set through StepRun.expire, which keeps the step's bookkeeping in step.
   */
  expired: boolean;
  /** Its result arrived and awaits the verifier's verdict. Set through StepRun.answer. */
  answered: boolean;
}

/** The nodes and sample counts a task over `shards` must return. */
export interface TaskCover {
  readonly nodes: readonly TreeNode[];
  readonly counts: readonly number[];
  readonly samples: number;
}

export class StepRun {
  readonly plan: StepPlan;
  /** The weights version every task of the step computes at. */
  readonly version: number;
  readonly numShards: number;
  /** performance.now() at dispatch. */
  readonly started = performance.now();
  readonly #tasks = new Map<number, Task>();
  /** Tasks sent and not yet answered, by id (added with add, removed with drop). */
  readonly tasks: ReadonlyMap<number, Task> = this.#tasks;
  /** Ready workers when the step started: who could have taken part. */
  readonly present: ReadonlySet<StepWorker>;
  /** Workers sent a task in this step, and those whose result counted. */
  readonly assigned = new Set<StepWorker>();
  readonly computed = new Set<StepWorker>();
  /** Σ computeMs of the accepted results. */
  computeMs = 0;
  readonly #results = new Map<string, PartialGradient>();
  readonly #covered: boolean[];
  #coveredCount = 0;
  /** (numShards): tasks within their deadline that hold each shard. */
  readonly #holders: Uint32Array;
  /** Shards neither covered nor held: openShards().length. */
  #openCount: number;
  /** The tasks of each worker with any, expired ones included, in the order they were added. */
  readonly #byWorker = new Map<StepWorker, Set<Task>>();
  readonly #busy = new Set<StepWorker>();
  /** Tasks sent and not answered, by worker; a worker is in #computing while its count is above 0. */
  readonly #unanswered = new Map<StepWorker, number>();
  readonly #computing = new Set<StepWorker>();
  /** Told when a worker starts or stops computing, after the change. */
  #watcher: ((worker: StepWorker) => void) | null = null;

  /** The nodes the step reduces to: the root, or the maximal nodes of a scope. */
  readonly #targets: readonly TreeNode[];
  /** Shards the step covers: numShards, or the scope's. */
  readonly scopeSize: number;

  /** `scope`: the shard ids this step covers (default: all of them). */
  constructor(plan: StepPlan, version: number, present: Iterable<StepWorker>, scope?: readonly number[]) {
    this.plan = plan;
    this.version = version;
    this.present = new Set(present);
    this.numShards = plan.shards.length;
    if (scope === undefined) {
      this.#covered = plan.shards.map(() => false);
      this.#targets = [rootNode(this.numShards)];
      this.scopeSize = this.numShards;
    } else {
      const inScope = new Set(scope);
      this.#covered = plan.shards.map((_, s) => !inScope.has(s));
      this.#coveredCount = this.#covered.filter((c) => c).length;
      this.#targets = coverNodes(scope, this.numShards);
      this.scopeSize = this.numShards - this.#coveredCount;
    }
    this.#holders = new Uint32Array(this.numShards);
    this.#openCount = this.numShards - this.#coveredCount;
  }

  get complete(): boolean {
    return this.#coveredCount === this.numShards;
  }

  isCovered(shard: number): boolean {
    return this.#covered[shard];
  }

  cover(shards: readonly number[]): TaskCover {
    const nodes = coverNodes(shards, this.numShards);
    const counts = nodes.map((n) => {
      let c = 0;
      for (let i = n.lo; i < Math.min(n.lo + n.size, this.numShards); i++) c += this.plan.shards[i].length;
      return c;
    });
    return { nodes, counts, samples: counts.reduce((a, b) => a + b, 0) };
  }

  /** Shards neither covered nor held by a task within its deadline, ascending. */
  openShards(): number[] {
    const open: number[] = [];
    if (this.#openCount === 0) return open;
    for (let s = 0; s < this.numShards; s++) if (!this.#covered[s] && this.#holders[s] === 0) open.push(s);
    return open;
  }

  /** Workers with a task out (a live view: it changes as tasks are added and dropped). */
  busyWorkers(): ReadonlySet<StepWorker> {
    return this.#busy;
  }

  /**
   * Workers with a task sent and not answered (a live view). One whose result awaits a
   * verdict, or whose only tasks are answered, is not computing.
   */
  computingWorkers(): ReadonlySet<StepWorker> {
    return this.#computing;
  }

  /** `watcher` is called with a worker each time it starts or stops computing (once computingWorkers shows it). */
  watchComputing(watcher: (worker: StepWorker) => void): void {
    this.#watcher = watcher;
  }

  /** The task's result arrived and awaits a verdict: its worker is no longer computing it. */
  answer(task: Task): void {
    if (task.answered || this.#tasks.get(task.id) !== task) return;
    task.answered = true;
    this.#stopComputing(task.worker);
  }

  /** The worker's tasks, in the order they were added. */
  tasksOf(worker: StepWorker): Task[] {
    const tasks = this.#byWorker.get(worker);
    return tasks === undefined ? [] : [...tasks];
  }

  /** A task just sent: it holds its shards until it is dropped or expires. */
  add(task: Task): void {
    if (this.#tasks.has(task.id)) throw new Error(`task ${task.id} added twice`);
    this.#tasks.set(task.id, task);
    let mine = this.#byWorker.get(task.worker);
    if (mine === undefined) {
      mine = new Set();
      this.#byWorker.set(task.worker, mine);
      this.#busy.add(task.worker);
    }
    mine.add(task);
    if (!task.expired) this.#hold(task.shards);
    if (!task.answered) this.#startComputing(task.worker);
  }

  /** The task is past its deadline: its shards are open to others again (its result still counts if first). */
  expire(task: Task): void {
    if (task.expired || this.#tasks.get(task.id) !== task) return;
    task.expired = true;
    this.#release(task.shards);
  }

  drop(task: Task): void {
    clearTimeout(task.timer);
    if (this.#tasks.get(task.id) !== task) return;
    this.#tasks.delete(task.id);
    const mine = this.#byWorker.get(task.worker)!;
    mine.delete(task);
    if (mine.size === 0) {
      this.#byWorker.delete(task.worker);
      this.#busy.delete(task.worker);
    }
    if (!task.expired) this.#release(task.shards);
    if (!task.answered) this.#stopComputing(task.worker);
  }

  /** Drops every task and result: the step is over. */
  end(): void {
    for (const task of this.#tasks.values()) clearTimeout(task.timer);
    this.#tasks.clear();
    this.#byWorker.clear();
    this.#busy.clear();
    this.#holders.fill(0);
    this.#openCount = this.numShards - this.#coveredCount;
    this.#results.clear();
    const stopped = [...this.#computing];
    this.#computing.clear();
    this.#unanswered.clear();
    for (const worker of stopped) this.#watcher?.(worker);
  }

  #startComputing(worker: StepWorker): void {
    const n = this.#unanswered.get(worker) ?? 0;
    this.#unanswered.set(worker, n + 1);
    if (n > 0) return;
    this.#computing.add(worker);
    this.#watcher?.(worker);
  }

  #stopComputing(worker: StepWorker): void {
    const n = this.#unanswered.get(worker)!;
    if (n > 1) return void this.#unanswered.set(worker, n - 1);
    this.#unanswered.delete(worker);
    this.#computing.delete(worker);
    this.#watcher?.(worker);
  }

  #hold(shards: readonly number[]): void {
    for (const s of shards) if (this.#holders[s]++ === 0 && !this.#covered[s]) this.#openCount--;
  }

  #release(shards: readonly number[]): void {
    for (const s of shards) if (--this.#holders[s] === 0 && !this.#covered[s]) this.#openCount++;
  }

  /**
   * Takes an accepted result's node gradients (views into its buffer, which is the
   * step's alone from here on) and covers its shards. False, taking nothing, when
   * another result covered them first: the values would be the same bits.
   */
  accept(task: Task, result: ResultMessage, paramCount: number): boolean {
    if (task.shards.some((s) => this.#covered[s])) return false;
    const P = paramCount;
    result.nodes.forEach((n, k) => {
      const grad = result.grads.subarray(k * P, (k + 1) * P);
      this.#results.set(nodeKey(n), { grad, lossSum: n.lossSum, count: n.count, correct: n.correct });
    });
    for (const s of task.shards) {
      this.#covered[s] = true;
      if (this.#holders[s] === 0) this.#openCount--;
    }
    this.#coveredCount += task.shards.length;
    this.computed.add(task.worker);
    this.computeMs += result.computeMs;
    return true;
  }

  /** The step's gradient: the root (or each node of the scope) reduced along the fixed tree. Only when complete. */
  reduce(combine: (left: PartialGradient, right: PartialGradient) => PartialGradient): NodeGradient[] {
    return this.#targets.map((node) => ({
      node,
      partial: reduceNode(node, this.numShards, (n) => this.#results.get(nodeKey(n)), combine),
    }));
  }
}
