// coordinator/scheduler.ts and its parts in coordinator/step/, without sockets: the
// step state machine (waiting for minWorkers, cancellation in each state, one step at
// a time), the verifier's verdicts, and the roster's deadlines. Workers are in-memory
// stand-ins that decode what they are sent and answer as the test says.

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Events, type EventKind } from '../../coordinator/events.js';
import { epochOrder, planStep, type StepPlan } from '../../coordinator/plan.js';
import { Scheduler } from '../../coordinator/scheduler.js';
import { Roster } from '../../coordinator/step/roster.js';
import { StructuralVerifier, type Verifier } from '../../coordinator/step/verifier.js';
import type { StepWorker } from '../../coordinator/step/worker.js';
import { weightsHash } from '../../coordinator/trainer.js';
import { spirals } from '../../shared/data/synthetic.js';
import { ConfigError, StepCancelled } from '../../shared/errors.js';
import { initParams } from '../../shared/model/init.js';
import { mlpSpec } from '../../shared/model/spec.js';
import type { RejectReason } from '../../shared/protocol/codes.js';
import { decodeCoordinatorMessage } from '../../shared/protocol/codec.js';
import type { CoordinatorMessage, TaskMessage } from '../../shared/protocol/messages.js';
import { ShardComputer } from '../../worker/compute.js';
import { honestResult } from '../support/coordinator-harness.js';

const SEED = 11;
const DATASET = spirals(48, SEED);
const SPEC = mlpSpec(2, [5], 2, 'tanh', 'cross_entropy');
const SHARD_SIZE = 4;
const BATCH = 24;
const W0 = initParams(SPEC, SEED);
const COMPUTER = new ShardComputer(SPEC, DATASET, SHARD_SIZE);
const PLAN: StepPlan = planStep(
  epochOrder(
    Uint32Array.from({ length: DATASET.numSamples }, (_, i) => i),
    SEED,
    0,
  ),
  0,
  0,
  0,
  BATCH,
  SHARD_SIZE,
);
const silent = pino({ level: 'silent' });

class FakeWorker implements StepWorker {
  readonly kind = 'node' as const;
  readonly agent = 'fake';
  readonly remote = 'memory';
  readonly log = silent;
  tasksDone = 0;
  samplesDone = 0;
  computeMs = 0;
  standby: string | null = null;
  readonly received: CoordinatorMessage[] = [];
  readonly rejections: { reason: RejectReason; detail: string }[] = [];
  readonly bans: string[] = [];
  readonly answered = new Set<number>();
  constructor(readonly id: string) {}
  send(bytes: Uint8Array, onSent?: () => void): void {
    this.received.push(decodeCoordinatorMessage(bytes.slice()));
    onSent?.();
  }
  reject(reason: RejectReason, detail: string): void {
    this.rejections.push({ reason, detail });
  }
  ban(detail: string): void {
    this.bans.push(detail);
  }
  tasks(): TaskMessage[] {
    return this.received.filter((m): m is TaskMessage => m.type === 'task');
  }
}

function scheduler(minWorkers: number, verifier: Verifier = new StructuralVerifier(null)) {
  const seen: EventKind[] = [];
  const events = new Events(silent);
  for (const kind of ['workerJoined', 'workerLeft', 'waitingForWorkers', 'taskAssigned', 'noWorkers'] as const)
    events.on(kind, () => seen.push(kind));
  const s = new Scheduler(events, W0.length, {
    minWorkers,
    taskTimeoutMinMs: 60_000,
    taskTimeoutMaxMs: 60_000,
    wireDtype: 'f32',
    verifier,
  });
  s.publish(0, W0);
  return { s, seen };
}

/** Answers every task `w` was sent and has not answered yet, honestly. */
function answerAll(s: Scheduler, w: FakeWorker): void {
  for (const task of w.tasks()) {
    if (w.answered.has(task.taskId)) continue;
    w.answered.add(task.taskId);
    s.onResult(w, honestResult(COMPUTER, W0, task));
  }
}

function referenceHash(): string {
  const nodes = COMPUTER.computeNodes(
    W0,
    PLAN.shards.map((indices, id) => ({ id, indices })),
    PLAN.shards.length,
  );
  return weightsHash(nodes[0].partial.grad);
}

describe('Scheduler: the step state machine', () => {
  it('waits for minWorkers before the first step, then hands out every shard', async () => {
    const { s, seen } = scheduler(2);
    const a = new FakeWorker('a');
    const b = new FakeWorker('b');
    s.onReady(a);
    const step = s.run(PLAN, 0);
    await Promise.resolve();
    expect(a.tasks()).toHaveLength(0);
    s.onReady(b);
    expect(seen).toEqual(['workerJoined', 'waitingForWorkers', 'workerJoined', 'taskAssigned', 'taskAssigned']);
    // Weights on joining, then a task; the two tasks cover the six shards once.
    expect(a.received.map((m) => m.type)).toEqual(['weights', 'task']);
    const shards = [...a.tasks(), ...b.tasks()].flatMap((t) => t.shards.map((sh) => sh.id));
    expect(shards.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    answerAll(s, a);
    answerAll(s, b);
    expect(weightsHash((await step).grad)).toBe(referenceHash());
    expect(s.stats.steps).toBe(1);
  });

  it('a step is one message per worker: its task carries the weights of a version the worker lacks, once', async () => {
    const { s } = scheduler(2);
    const a = new FakeWorker('a');
    const b = new FakeWorker('b');
    s.onReady(a);
    s.onReady(b);
    const first = s.run(PLAN, 0);
    // Both were sent version 0 on joining: their tasks carry no weights.
    expect([...a.tasks(), ...b.tasks()].map((t) => t.weights)).toEqual([null, null]);
    answerAll(s, a);
    answerAll(s, b);
    await first;
    const next = W0.map((w) => w * 0.5);
    s.publish(1, next);
    const before = a.received.length;
    const second = s.run(PLAN, 1);
    const sent = a.received.slice(before);
    expect(sent.map((m) => m.type)).toEqual(['task']);
    const task = sent[0] as TaskMessage;
    expect(task.version).toBe(1);
    expect(task.dtype).toBe('f32');
    expect(weightsHash(task.weights!)).toBe(weightsHash(next));
    // Its shards, handed to the other worker, come without the weights it already has.
    s.onGone(a, 'test');
    const again = b.tasks().filter((t) => t.version === 1);
    expect(again.map((t) => t.weights === null)).toEqual([false, true]);
    s.cancel('test over');
    await expect(second).rejects.toThrow(StepCancelled);
  });

  it('tells a worker that got no shard in a whole step that it stands by, and why; its next task ends it', async () => {
    const events = new Events(silent);
    const standing: { workerId: string; reason: string }[] = [];
    events.on('workerStandingBy', (e) => standing.push(e));
    const s = new Scheduler(events, W0.length, {
      minWorkers: 2,
      taskTimeoutMinMs: 60_000,
      taskTimeoutMaxMs: 60_000,
      wireDtype: 'f32',
      verifier: new StructuralVerifier(null),
    });
    s.publish(0, W0);
    const a = new FakeWorker('a');
    const b = new FakeWorker('b');
    s.onReady(a);
    s.onReady(b);
    // One shard per step, two workers: the first in joining order takes it every time.
    const onePlan = planStep(PLAN.shards[0], 0, 0, 0, SHARD_SIZE, SHARD_SIZE);
    for (let v = 0; v < 4; v++) {
      if (v > 0) s.publish(v, W0);
      const step = s.run(onePlan, v);
      answerAll(s, a);
      await step;
    }
    expect(b.tasks()).toHaveLength(0);
    const reason = 'standing by: a step has 1 shard for 2 workers, and the faster ones take them';
    expect(standing).toEqual([{ workerId: 'b', reason }]);
    expect(b.received.filter((m) => m.type === 'standby')).toEqual([{ type: 'standby', reason }]);
    expect([a.standby, b.standby]).toEqual([null, reason]);
    // a leaves: b takes the next step's shard, and would be told again after another idle step.
    s.onGone(a, 'closed (1001)');
    s.publish(4, W0);
    const step = s.run(onePlan, 4);
    expect(b.tasks()).toHaveLength(1);
    expect(b.standby).toBeNull();
    answerAll(s, b);
    await step;
  });

  it('warns once, with the numbers, when the workers compute less than half the time', async () => {
    const events = new Events(silent);
    const bound: object[] = [];
    events.on('communicationBound', (e) => bound.push(e));
    const s = new Scheduler(events, W0.length, {
      minWorkers: 1,
      taskTimeoutMinMs: 60_000,
      taskTimeoutMaxMs: 60_000,
      wireDtype: 'f32',
      verifier: new StructuralVerifier(null),
    });
    const a = new FakeWorker('a');
    s.onReady(a);
    // Results that report no compute time at all: every ms of the step is spent elsewhere.
    for (let v = 0; v < 130; v++) {
      s.publish(v, W0);
      const step = s.run(PLAN, v);
      answerAll(s, a);
      await step;
    }
    expect(bound).toHaveLength(1);
    expect(bound[0]).toMatchObject({ workers: 1, computeMsPerWorker: 0, computePercent: 0 });
  });

  it('refuses a second step while one is in progress, and any step after cancel', async () => {
    const { s } = scheduler(1);
    const a = new FakeWorker('a');
    s.onReady(a);
    const first = s.run(PLAN, 0);
    await expect(s.run(PLAN, 0)).rejects.toThrow(/while a step is collecting/);
    s.cancel('shutting down');
    await expect(first).rejects.toThrow(StepCancelled);
    await expect(s.run(PLAN, 0)).rejects.toThrow(StepCancelled);
  });

  it('cancel while waiting for workers ends the wait with StepCancelled', async () => {
    const { s } = scheduler(3);
    const step = s.run(PLAN, 0);
    s.cancel('interrupted');
    await expect(step).rejects.toThrow(/^interrupted$/);
  });

  it('cancelWhenStarved cancels the step once its last worker leaves', async () => {
    const { s } = scheduler(1);
    const a = new FakeWorker('a');
    s.onReady(a);
    const step = s.run(PLAN, 0);
    s.cancelWhenStarved('interrupted');
    s.onGone(a, 'closed (1006)');
    await expect(step).rejects.toThrow(StepCancelled);
  });

  it("a worker that leaves mid-step has its shards reassigned to the others, the step's bits unchanged", async () => {
    const { s } = scheduler(2);
    const a = new FakeWorker('a');
    const b = new FakeWorker('b');
    s.onReady(a);
    s.onReady(b);
    const step = s.run(PLAN, 0);
    const held = b.tasks()[0].shards.map((sh) => sh.id);
    s.onGone(b, 'closed (1006)');
    expect(s.stats.reassignedShards).toBe(held.length);
    expect(
      a
        .tasks()
        .at(-1)
        ?.shards.map((sh) => sh.id),
    ).toEqual(held);
    answerAll(s, a);
    expect(weightsHash((await step).grad)).toBe(referenceHash());
  });
});

describe('Scheduler: the verifier', () => {
  it("a rejecting verdict rejects the worker with the verdict's reason, and its result does not count", async () => {
    const { s } = scheduler(1, { verify: () => ({ kind: 'reject', reason: 'not_assigned', detail: 'disputed' }) });
    const a = new FakeWorker('a');
    s.onReady(a);
    const step = s.run(PLAN, 0);
    step.catch(() => {});
    answerAll(s, a);
    expect(a.rejections).toEqual([{ reason: 'not_assigned', detail: 'disputed' }]);
    expect(s.stats.steps).toBe(0);
    expect(a.tasksDone).toBe(0);
    s.cancel('test over');
  });

  it('a diverged verdict fails the step with DivergedError', async () => {
    const { s } = scheduler(1, { verify: () => ({ kind: 'diverged' }) });
    const a = new FakeWorker('a');
    s.onReady(a);
    const step = s.run(PLAN, 0);
    answerAll(s, a);
    await expect(step).rejects.toThrow(/epoch 1 step 0 is not finite/);
  });
});

describe('Roster', () => {
  it('gives an unmeasured fleet the ceiling, then deadlines from measured speed within the bounds', () => {
    const roster = new Roster({ taskTimeoutMinMs: 100, taskTimeoutMaxMs: 5_000 });
    const a = new FakeWorker('a');
    const b = new FakeWorker('b');
    roster.add(a);
    roster.add(b);
    expect(roster.deadline(a, 64)).toBe(5_000);
    roster.measure(a, 64, 100); // 0.64 samples/ms
    // 4 × the expected 100 ms, plus 250 ms for the wire.
    expect(roster.deadline(a, 64)).toBe(650);
    // b is not measured: it is given the fleet's mean speed.
    expect(roster.deadline(b, 64)).toBe(650);
    expect(roster.deadline(a, 1)).toBe(256.25);
    expect(roster.deadline(a, 1e6)).toBe(5_000);
    expect(roster.throughput()).toEqual({ a: 640 });
  });

  it('refuses contradictory bounds', () => {
    expect(() => new Roster({ taskTimeoutMinMs: 0, taskTimeoutMaxMs: 5 })).toThrow(ConfigError);
    expect(() => new Roster({ taskTimeoutMinMs: 10, taskTimeoutMaxMs: 5 })).toThrow(/0 < min ≤ max, got 10 and 5/);
  });
});
