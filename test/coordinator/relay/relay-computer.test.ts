// coordinator/relay/relay-computer.ts with Scheduler.runScope, without sockets: a
// relay's partial step, spread over in-memory workers, yields exactly the nodes (and
// bits) one ShardComputer computes for the same shards; a relay without workers, or
// asked at an older version, computes itself; and a forger caught while the relay
// settles its audits is banned and its partial step run again without it, so no
// forged bit leaves the relay.

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Events } from '../../../coordinator/events.js';
import { partialPlan, RelayComputer } from '../../../coordinator/relay/relay-computer.js';
import { Scheduler } from '../../../coordinator/scheduler.js';
import { AuditingVerifier } from '../../../coordinator/step/auditor.js';
import { StructuralVerifier, type Verifier } from '../../../coordinator/step/verifier.js';
import type { StepWorker } from '../../../coordinator/step/worker.js';
import { spirals } from '../../../shared/data/synthetic.js';
import { initParams } from '../../../shared/model/init.js';
import { mlpSpec } from '../../../shared/model/spec.js';
import type { RejectReason } from '../../../shared/protocol/codes.js';
import { decodeCoordinatorMessage } from '../../../shared/protocol/codec.js';
import type { ResultMessage, TaskMessage } from '../../../shared/protocol/messages.js';
import { nodeKey } from '../../../shared/tree.js';
import { type NodeGradient, ShardComputer, type ShardInput } from '../../../worker/compute.js';
import { honestResult } from '../../support/coordinator-harness.js';

const SEED = 5;
const DATASET = spirals(64, SEED);
const SPEC = mlpSpec(2, [6], 2, 'tanh', 'cross_entropy');
const SHARD_SIZE = 4;
const NUM_SHARDS = 13;
const W0 = initParams(SPEC, SEED);
const silent = pino({ level: 'silent' });
/** The reference: one process computing the shards itself. */
const REFERENCE = new ShardComputer(SPEC, DATASET, SHARD_SIZE);

/** Shards 3..10 of a 13-shard step (a block no single node holds), 4 samples each. */
const BLOCK: ShardInput[] = Array.from({ length: 8 }, (_, k) => ({
  id: 3 + k,
  indices: Uint32Array.from({ length: SHARD_SIZE }, (_, i) => (7 * (3 + k) + 5 * i) % DATASET.numSamples),
}));

/** Answers each task a moment after it is sent, honestly or as `forge` rewrites the result; leaves when banned. */
class AnsweringWorker implements StepWorker {
  readonly kind = 'node' as const;
  readonly remote = 'memory';
  readonly log = silent;
  tasksDone = 0;
  samplesDone = 0;
  computeMs = 0;
  standby: string | null = null;
  readonly tasks: TaskMessage[] = [];
  banned = false;
  readonly #computer = new ShardComputer(SPEC, DATASET, SHARD_SIZE);
  #weights: Float32Array | null = null;

  constructor(
    readonly id: string,
    readonly agent: string,
    readonly scheduler: () => Scheduler,
    readonly forge: (r: ResultMessage) => ResultMessage | null = (r) => r,
  ) {}

  send(bytes: Uint8Array, onSent?: () => void): void {
    const m = decodeCoordinatorMessage(bytes.slice());
    onSent?.();
    if (m.type === 'weights') this.#weights = m.weights;
    if (m.type !== 'task') return;
    if (m.weights !== null) this.#weights = m.weights;
    this.tasks.push(m);
    const result = this.forge(honestResult(this.#computer, this.#weights!, m));
    if (result === null) return;
    setImmediate(() => {
      if (!this.banned) this.scheduler().onResult(this, result);
    });
  }
  reject(reason: RejectReason, detail: string): void {
    throw new Error(`${this.id} rejected: ${reason} ${detail}`);
  }
  ban(): void {
    this.banned = true;
    this.scheduler().onGone(this, 'banned');
  }
}

function fleet(verifier: Verifier = new StructuralVerifier(null)) {
  const events = new Events(silent);
  const scheduler = new Scheduler(events, W0.length, {
    minWorkers: 1,
    taskTimeoutMinMs: 60_000,
    taskTimeoutMaxMs: 60_000,
    wireDtype: 'f32',
    verifier,
  });
  const local = new ShardComputer(SPEC, DATASET, SHARD_SIZE);
  const computer = new RelayComputer({ scheduler, local, events }, W0.length, silent);
  return { scheduler, computer, events };
}

/** Node keys, statistics and gradient bits of a result, comparable with toEqual. */
function bits(nodes: readonly NodeGradient[]) {
  return nodes.map(({ node, partial }) => ({
    node: nodeKey(node),
    lossSum: partial.lossSum,
    count: partial.count,
    correct: partial.correct,
    grad: [...new Uint32Array(partial.grad.buffer, partial.grad.byteOffset, partial.grad.length)],
  }));
}

const expected = bits(REFERENCE.computeNodes(W0, BLOCK, NUM_SHARDS, 9));

describe('Scheduler.runScope', () => {
  it("covers only the scope's shards and yields its cover nodes with one process's bits", async () => {
    const { scheduler } = fleet();
    const workers = ['a', 'b', 'c'].map((id) => new AnsweringWorker(id, id, () => scheduler));
    for (const w of workers) scheduler.onReady(w);
    scheduler.publish(4, W0);
    const nodes = await scheduler.runScope(partialPlan(BLOCK, NUM_SHARDS, 9), 4, [3, 4, 5, 6, 7, 8, 9, 10]);
    expect(bits(nodes)).toEqual(expected);
    // Nodes 3/1, 4/4, 8/2, 10/1: the block is not one node, and is reduced to exactly its maximal ones.
    expect(nodes.map((n) => nodeKey(n.node))).toEqual(['3/1', '4/4', '8/2', '10/1']);
    const sent = workers.flatMap((w) => w.tasks.flatMap((t) => t.shards.map((s) => s.id)));
    expect(sent.sort((x, y) => x - y)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    for (const w of workers) for (const t of w.tasks) expect(t).toMatchObject({ version: 4, step: 9, numShards: 13 });
  });
});

describe('RelayComputer', () => {
  it('with workers: publishes the version, runs the partial step on them, and returns the same bits', async () => {
    const { scheduler, computer } = fleet();
    const workers = ['a', 'b'].map((id) => new AnsweringWorker(id, id, () => scheduler));
    for (const w of workers) scheduler.onReady(w);
    expect(bits(await computer.computeNodes(W0, BLOCK, NUM_SHARDS, 9, 2))).toEqual(expected);
    expect(scheduler.version).toBe(2);
    expect(computer.tally).toEqual({ fleetSteps: 1, localSteps: 0, reruns: 0, abandoned: 0 });
    // Each worker received the weights once, with its first task.
    for (const w of workers) expect(w.tasks.filter((t) => t.weights !== null)).toHaveLength(1);
  });

  it('without workers, or for an older version than its workers hold, computes itself', async () => {
    const { scheduler, computer } = fleet();
    expect(bits(await computer.computeNodes(W0, BLOCK, NUM_SHARDS, 9, 0))).toEqual(expected);
    const w = new AnsweringWorker('a', 'a', () => scheduler);
    scheduler.onReady(w);
    await computer.computeNodes(W0, BLOCK, NUM_SHARDS, 9, 3);
    // A check of an older version: its workers skip work at versions they have passed.
    expect(bits(await computer.computeNodes(W0, BLOCK, NUM_SHARDS, 9, 1))).toEqual(expected);
    expect(computer.tally).toEqual({ fleetSteps: 1, localSteps: 2, reruns: 0, abandoned: 0 });
    expect(w.tasks.every((t) => t.version === 3)).toBe(true);
  });

  it('computes a partial step itself when every worker leaves before it is covered', async () => {
    const { scheduler, computer } = fleet();
    const mute = ['a', 'b'].map(
      (id) =>
        new AnsweringWorker(
          id,
          id,
          () => scheduler,
          () => null,
        ),
    );
    for (const w of mute) scheduler.onReady(w);
    const pending = computer.computeNodes(W0, BLOCK, NUM_SHARDS, 9, 0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(mute.every((w) => w.tasks.length > 0)).toBe(true);
    for (const w of mute) scheduler.onGone(w, 'closed');
    expect(bits(await pending)).toEqual(expected);
    expect(computer.tally).toMatchObject({ fleetSteps: 0, localSteps: 1, abandoned: 1 });
    // The scheduler is not cancelled: a worker that joins later takes the next partial step.
    const w = new AnsweringWorker('c', 'c', () => scheduler);
    scheduler.onReady(w);
    expect(bits(await computer.computeNodes(W0, BLOCK, NUM_SHARDS, 9, 1))).toEqual(expected);
    expect(computer.tally).toMatchObject({ fleetSteps: 1 });
  });

  it('settles every audit before answering: a forger is banned, and the partial step runs without it', async () => {
    // No probation and every result audited after it counts: the forgery is found only when the relay settles.
    let recomputer: ShardComputer | null = null;
    const verifier = new AuditingVerifier(
      (shards, numShards, weights, step) => {
        recomputer ??= new ShardComputer(SPEC, DATASET, SHARD_SIZE);
        return recomputer.computeNodes(weights, shards, numShards, step);
      },
      { probation: 0, auditRate: 1 },
    );
    const { scheduler, computer, events } = fleet(verifier);
    const bans: string[] = [];
    events.on('workerBanned', (e) => bans.push(e.workerId));
    const scale = (r: ResultMessage): ResultMessage => ({ ...r, grads: r.grads.map((g) => -10 * g) });
    const forger = new AnsweringWorker('f', 'forger', () => scheduler, scale);
    const honest = new AnsweringWorker('h', 'honest', () => scheduler);
    scheduler.onReady(forger);
    scheduler.onReady(honest);
    const nodes = await computer.computeNodes(W0, BLOCK, NUM_SHARDS, 9, 0);
    expect(forger.tasks.length).toBeGreaterThan(0);
    expect(bans).toEqual(['f']);
    expect(bits(nodes)).toEqual(expected);
    expect(computer.tally).toMatchObject({ fleetSteps: 1, reruns: 1 });
  });
});
