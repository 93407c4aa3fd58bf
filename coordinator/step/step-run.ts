// One step's bookkeeping while its results come in: the tasks out, which shards are
// covered, and the node gradients received. A shard is covered by the first accepted
// result that holds it; the step is complete when every shard is, and is then reduced
// along the fixed tree, whatever the order the results arrived in.
//
// A step may cover only a scope (some of its shard ids, as a relay is given): shards
// outside it count as covered from the start, and the step reduces to the nodes of
// coverNodes(scope) instead of the root, with the same bits anyone else would get.

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
  /** Past its deadline: its shards are open again, but its result still counts if first. */
  expired: boolean;
  /** Its result arrived and awaits the verifier's verdict. */
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
  /** Tasks sent and not yet answered, by id. */
  readonly tasks = new Map<number, Task>();
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
    const held = new Set<number>();
    for (const t of this.tasks.values()) if (!t.expired) for (const s of t.shards) held.add(s);
    const open: number[] = [];
    for (let s = 0; s < this.numShards; s++) if (!this.#covered[s] && !held.has(s)) open.push(s);
    return open;
  }

  /** Workers with a task out. */
  busyWorkers(): Set<StepWorker> {
    const busy = new Set<StepWorker>();
    for (const t of this.tasks.values()) busy.add(t.worker);
    return busy;
  }

  tasksOf(worker: StepWorker): Task[] {
    return [...this.tasks.values()].filter((t) => t.worker === worker);
  }

  drop(task: Task): void {
    clearTimeout(task.timer);
    this.tasks.delete(task.id);
  }

  /** Drops every task and result: the step is over. */
  end(): void {
    for (const task of this.tasks.values()) clearTimeout(task.timer);
    this.tasks.clear();
    this.#results.clear();
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
    for (const s of task.shards) this.#covered[s] = true;
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
