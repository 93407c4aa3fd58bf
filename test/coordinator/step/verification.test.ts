// Exact verification without sockets: the bit comparison (verifier.ts), probation and
// audits (step/auditor.ts) driving the scheduler, on the coordinator or on an idle
// worker that answers with a digest (step/checkers.ts), the roster's cap by verified speed,
// the snapshot store (rollback.ts), and the trainer undoing steps that a forged result
// touched, ending on the same bits as a run that never saw it. Audits run when the test
// says (an injected defer), so nothing here depends on timing.

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../coordinator/config.js';
import { Events, type CoordinatorEvents, type EventKind } from '../../../coordinator/events.js';
import { LocalExecutor } from '../../../coordinator/local-executor.js';
import { epochOrder, planStep, type StepPlan } from '../../../coordinator/plan.js';
import { RollbackRequired, SnapshotStore } from '../../../coordinator/rollback.js';
import { Scheduler } from '../../../coordinator/scheduler.js';
import { prepareRun } from '../../../coordinator/setup.js';
import { AuditingVerifier, type AuditOptions, recomputedDigest } from '../../../coordinator/step/auditor.js';
import { Roster } from '../../../coordinator/step/roster.js';
import { type Claim, resultMismatch } from '../../../coordinator/step/verifier.js';
import type { StepWorker } from '../../../coordinator/step/worker.js';
import { Trainer, type StepExecutor, weightsHash } from '../../../coordinator/trainer.js';
import { spirals } from '../../../shared/data/synthetic.js';
import type { PartialGradient } from '../../../shared/gradient.js';
import { initParams } from '../../../shared/model/init.js';
import { parseLayers } from '../../../shared/model/layers-flag.js';
import { mlpSpec } from '../../../shared/model/spec.js';
import type { RejectReason } from '../../../shared/protocol/codes.js';
import { decodeCoordinatorMessage } from '../../../shared/protocol/codec.js';
import type {
  CheckMessage,
  CoordinatorMessage,
  ResultMessage,
  TaskMessage,
} from '../../../shared/protocol/messages.js';
import { ShardComputer } from '../../../worker/compute.js';
import { honestResult } from '../../support/coordinator-harness.js';

const SEED = 11;
const DATASET = spirals(48, SEED);
const SPEC = mlpSpec(2, [5], 2, 'tanh', 'cross_entropy');
const SHARD_SIZE = 4;
const W0 = initParams(SPEC, SEED);
/** The workers' kernels, and separately the coordinator's (its recomputations). */
const COMPUTER = new ShardComputer(SPEC, DATASET, SHARD_SIZE);
const HERE = new ShardComputer(SPEC, DATASET, SHARD_SIZE);
const ORDER = epochOrder(
  Uint32Array.from({ length: DATASET.numSamples }, (_, i) => i),
  SEED,
  0,
);
const plan = (step: number): StepPlan => planStep(ORDER, 0, step, step, 24, SHARD_SIZE);
const silent = pino({ level: 'silent' });

/** A worker in memory; `forge` rewrites each result it sends. */
class FakeWorker implements StepWorker {
  readonly kind = 'node' as const;
  readonly agent: string;
  readonly remote = 'memory:1';
  readonly log = silent;
  tasksDone = 0;
  samplesDone = 0;
  computeMs = 0;
  readonly received: CoordinatorMessage[] = [];
  readonly rejections: { reason: RejectReason; detail: string }[] = [];
  readonly bans: string[] = [];
  standby: string | null = null;
  readonly answered = new Set<number>();
  constructor(
    readonly id: string,
    readonly forge: ((r: ResultMessage) => ResultMessage) | null = null,
    readonly onBan: (w: FakeWorker) => void = () => {},
  ) {
    this.agent = id;
  }
  send(bytes: Uint8Array, onSent?: () => void): void {
    this.received.push(decodeCoordinatorMessage(bytes.slice()));
    onSent?.();
  }
  reject(reason: RejectReason, detail: string): void {
    this.rejections.push({ reason, detail });
  }
  ban(detail: string): void {
    this.bans.push(detail);
    this.onBan(this);
  }
  tasks(): TaskMessage[] {
    return this.received.filter((m): m is TaskMessage => m.type === 'task');
  }
}

/**
 * A scheduler with an auditing verifier whose deferred work runs when `flush` is called;
 * `here` recomputes (another model's computer publishes that model's `weights`).
 */
function setup(
  options: AuditOptions,
  draw: () => number,
  here: { computeNodes: ShardComputer['computeNodes'] } = HERE,
  weights = W0,
  checkTimer?: (ms: number, onExpired: () => void) => () => void,
) {
  const jobs: (() => void)[] = [];
  const verifier = new AuditingVerifier(
    (shards, numShards, w, step) => here.computeNodes(w, shards, numShards, step),
    options,
    draw,
    (job) => jobs.push(job),
  );
  const seen: { kind: EventKind; event: unknown }[] = [];
  const events = new Events(silent);
  for (const kind of ['workerBanned', 'stepRechecked', 'replayChecked', 'stepDiverged'] as const)
    events.on(kind, (event) => seen.push({ kind, event }));
  const s = new Scheduler(events, weights.length, {
    minWorkers: 1,
    taskTimeoutMinMs: 60_000,
    taskTimeoutMaxMs: 60_000,
    wireDtype: 'f32',
    verifier,
    checkTimer,
    // The first candidate, always: a sole idle checker is never drawn against the coordinator here.
    checkPick: () => 0,
  });
  s.publish(0, weights);
  const worker = (id: string, forge: ((r: ResultMessage) => ResultMessage) | null = null) => {
    const w = new FakeWorker(id, forge, (gone) => s.onGone(gone, 'banned'));
    s.onReady(w);
    return w;
  };
  /** Runs deferred checks and audits until none is left, letting held verdicts land. */
  const flush = async () => {
    while (jobs.length > 0) {
      jobs.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { s, verifier, worker, flush, seen };
}

/** Answers every task `w` was sent and has not answered yet, at weights `weights`. */
function answerAll(s: Scheduler, w: FakeWorker, weights = W0, computer = COMPUTER): void {
  for (const task of w.tasks()) {
    if (w.answered.has(task.taskId)) continue;
    w.answered.add(task.taskId);
    const honest = honestResult(computer, weights, task);
    s.onResult(w, w.forge === null ? honest : w.forge(honest));
  }
}

function reference(p: StepPlan, weights = W0): string {
  const nodes = COMPUTER.computeNodes(
    weights,
    p.shards.map((indices, id) => ({ id, indices })),
    p.shards.length,
    p.globalStep,
  );
  return weightsHash(nodes[0].partial.grad);
}

const flipOneBit = (r: ResultMessage): ResultMessage => {
  const grads = r.grads.slice();
  new Uint32Array(grads.buffer)[3] ^= 1;
  return { ...r, grads };
};

describe('resultMismatch: an exact comparison with the recomputation', () => {
  const p = plan(0);
  const task: TaskMessage = {
    type: 'task',
    taskId: 7,
    version: 0,
    step: 0,
    numShards: p.shards.length,
    shards: [2, 3].map((id) => ({ id, indices: p.shards[id] })),
    dtype: 'f32',
    weights: null,
  };
  const claimOf = (result: ResultMessage): Claim => ({
    taskId: 7,
    worker: new FakeWorker('a'),
    version: 0,
    samples: 8,
    elapsedMs: 1,
    mustVerify: false,
    plan: p,
    shards: [2, 3],
    nodes: [],
    counts: [],
    weights: W0,
    result,
  });
  const recomputed = () => HERE.computeNodes(W0, task.shards, task.numShards);

  it('finds an honest result identical', () => {
    expect(resultMismatch(claimOf(honestResult(COMPUTER, W0, task)), recomputed())).toBeNull();
  });

  it('finds one flipped bit, a forged lossSum and a forged correct count', () => {
    const honest = honestResult(COMPUTER, W0, task);
    expect(resultMismatch(claimOf(flipOneBit(honest)), recomputed())).toMatch(/task 7 node 0: gradient\[3\]/);
    const lossSum = { ...honest, nodes: honest.nodes.map((n) => ({ ...n, lossSum: -1e30 })) };
    expect(resultMismatch(claimOf(lossSum), recomputed())).toMatch(/lossSum -1e\+30, recomputed/);
    const forged = (n: { correct: number; count: number }) => (n.correct === n.count ? n.correct - 1 : n.correct + 1);
    const correct = { ...honest, nodes: honest.nodes.map((n) => ({ ...n, correct: forged(n) })) };
    expect(resultMismatch(claimOf(correct), recomputed())).toMatch(/task 7 node 0: correct \d+, recomputed \d+/);
  });
});

describe('AuditingVerifier with the scheduler', () => {
  it("on probation a forged result is banned before it counts; the honest worker's bits make the step", async () => {
    const { s, worker, flush, seen, verifier } = setup({ probation: 2, auditRate: 0 }, () => 1);
    const a = worker('a');
    const b = worker('b', flipOneBit);
    const step = s.run(plan(0), 0);
    answerAll(s, a);
    answerAll(s, b);
    await flush();
    expect(b.bans).toHaveLength(1);
    expect(b.tasksDone).toBe(0);
    expect(seen.map((e) => e.kind)).toEqual(['workerBanned']);
    expect(seen[0].event).toMatchObject({ workerId: 'b', reason: 'forged', undoFromVersion: null });
    // b's shards went to a, whose results are checked too (still on probation).
    answerAll(s, a);
    await flush();
    expect(weightsHash((await step).grad)).toBe(reference(plan(0)));
    expect(verifier.tally()).toEqual({ audited: 3, banned: 1 });
  });

  it('past probation a result counts at once; an audit finding it forged bans, undoes from its version', async () => {
    const { s, worker, seen, verifier } = setup({ probation: 0, auditRate: 1 }, () => 0);
    const a = worker('a');
    const b = worker('b', flipOneBit);
    const step = s.run(plan(0), 0);
    answerAll(s, a);
    answerAll(s, b);
    // The step did not wait for its audits.
    await step;
    expect(verifier.queued).toBe(2);
    // The end of a run settles: every queued audit runs now.
    expect(s.settle()).toBe(0);
    expect(verifier.queued).toBe(0);
    expect(b.bans).toHaveLength(1);
    expect(a.bans).toHaveLength(0);
    expect(seen[0].event).toMatchObject({ workerId: 'b', undoFromVersion: 0 });
    s.publish(1, W0);
    await expect(s.run(plan(1), 1)).rejects.toThrow(RollbackRequired);
    await expect(s.run(plan(1), 1)).rejects.toMatchObject({ version: 0 });
    s.rolledBack(0);
    s.publish(2, W0);
    const again = s.run(plan(1), 2);
    answerAll(s, a);
    expect(weightsHash((await again).grad)).toBe(reference(plan(1)));
  });

  it('a non-finite sum of unchecked results reruns checked: the forger is found, the lr never blamed', async () => {
    const { s, worker, flush, seen } = setup({ probation: 0, auditRate: 0 }, () => 1);
    // Each alone is finite; their sum is not.
    const huge = (r: ResultMessage): ResultMessage => ({ ...r, grads: r.grads.map(() => 3e38) });
    const b = worker('b', huge);
    const c = worker('c', huge);
    const step = s.run(plan(0), 0);
    step.catch(() => {});
    answerAll(s, b);
    answerAll(s, c);
    expect(seen.map((e) => e.kind)).toEqual(['stepRechecked']);
    // The step again, their results now held for a check.
    answerAll(s, b);
    answerAll(s, c);
    await flush();
    // Which of the two got the retried shards depends on measured speed; whoever answered is banned.
    const answeredAgain = [b, c].filter((w) => w.answered.size > 1);
    expect(answeredAgain.length).toBeGreaterThan(0);
    for (const w of answeredAgain) expect(w.bans).toHaveLength(1);
    expect(seen.map((e) => e.kind)).toEqual(['stepRechecked', ...answeredAgain.map(() => 'workerBanned')]);
    // Its first unchecked result was at this very step's version: undoing it costs nothing applied.
    await expect(step).rejects.toMatchObject({ version: 0 });
  });

  it('divergence at weights unchecked results made replays those steps checked; diverging again is real', async () => {
    const { s, worker, flush, seen } = setup({ probation: 0, auditRate: 0 }, () => 1);
    // Weights so large that every gradient at them overflows: what forged updates could leave behind.
    const poisoned = W0.map(() => 3e38);
    /** Answers honestly at W0, and as a worker whose gradient came out NaN at the poisoned weights. */
    const answer = (w: FakeWorker, weights: Float32Array) => {
      for (const task of w.tasks()) {
        if (w.answered.has(task.taskId)) continue;
        w.answered.add(task.taskId);
        const honest = honestResult(COMPUTER, W0, task);
        const diverged = {
          ...honest,
          diverged: true,
          grads: new Float32Array(0),
          nodes: honest.nodes.map((n) => ({ ...n, lossSum: 0 })),
        };
        s.onResult(w, weights === W0 ? honest : diverged);
      }
    };
    const a = worker('a');
    const first = s.run(plan(0), 0);
    answer(a, W0);
    await first; // counted unchecked: probation 0, never drawn for an audit
    s.publish(1, poisoned);
    const second = s.run(plan(1), 1);
    answer(a, poisoned);
    await expect(second).rejects.toMatchObject({ version: 0 });
    expect(seen.map((e) => e.kind)).toEqual(['replayChecked']);

    // The trainer restores the state before version 0 and replays: every result is checked now.
    s.rolledBack(0);
    s.publish(2, W0);
    const replayed = s.run(plan(0), 2);
    answer(a, W0);
    await flush();
    expect(weightsHash((await replayed).grad)).toBe(reference(plan(0)));
    s.publish(3, poisoned);
    const again = s.run(plan(1), 3);
    answer(a, poisoned);
    await expect(again).rejects.toThrow(/not finite: training diverged/);
    expect(seen.map((e) => e.kind)).toEqual(['replayChecked', 'stepDiverged']);
  });

  it('a divergence claim the recomputation finds finite is a forgery: banned, its unchecked steps undone', async () => {
    const { s, worker, seen } = setup({ probation: 0, auditRate: 0 }, () => 1);
    const liar = (r: ResultMessage): ResultMessage =>
      r.taskId === 1
        ? r
        : { ...r, diverged: true, grads: new Float32Array(0), nodes: r.nodes.map((n) => ({ ...n, lossSum: 0 })) };
    const a = worker('a', liar);
    const first = s.run(plan(0), 0);
    answerAll(s, a);
    await first;
    s.publish(1, W0);
    const second = s.run(plan(1), 1);
    answerAll(s, a);
    await expect(second).rejects.toMatchObject({ version: 0 });
    expect(a.bans).toEqual([expect.stringMatching(/finite when recomputed here/)]);
    expect(seen.map((e) => e.kind)).toEqual(['workerBanned']);
  });

  it('audits pass on honest workers: nothing banned, the rate halves per audit down to --audit-rate', async () => {
    let draws = 0;
    const { s, worker, flush, verifier } = setup({ probation: 1, auditRate: 0.1 }, () => {
      draws++;
      return 0.2;
    });
    const a = worker('a');
    for (let k = 0; k < 4; k++) {
      s.publish(k, W0);
      const step = s.run(plan(k % 2), k);
      answerAll(s, a);
      await flush();
      expect(weightsHash((await step).grad)).toBe(reference(plan(k % 2)));
    }
    // 1 on probation; then 0.2 < 1/2 audited, 0.2 < 1/4 audited, 0.2 ≥ 1/8: not.
    expect(draws).toBe(3);
    expect(verifier.tally()).toEqual({ audited: 3, banned: 0 });
    expect(verifier.unverifiedFrom()).toBe(1);
  });
});

/** Answers every check `w` was sent, with the digest of an honest recomputation, or `lie`'s. */
function answerChecks(s: Scheduler, w: FakeWorker, lie: string | null = null): number {
  const checks = w.received.filter((m): m is CheckMessage => m.type === 'check');
  for (const c of checks) {
    const nodes = COMPUTER.computeNodes(c.weights ?? W0, c.shards, c.numShards, c.step);
    s.onDigest(w, { type: 'digest', checkId: c.checkId, digest: lie ?? recomputedDigest(nodes) });
  }
  w.received.splice(0, w.received.length, ...w.received.filter((m) => m.type !== 'check'));
  return checks.length;
}

/** The coordinator's own recomputations, counted. */
function countingHere() {
  const counter = {
    calls: 0,
    computeNodes: (...args: Parameters<ShardComputer['computeNodes']>) => {
      counter.calls++;
      return HERE.computeNodes(...args);
    },
  };
  return counter;
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('Audits on an idle worker, which sends back only a digest', () => {
  /** One step by `a` alone (audited: rate 1), then `c` joins idle and the audit runs. */
  async function auditedStep(forge: ((r: ResultMessage) => ResultMessage) | null, timer?: () => void) {
    const here = countingHere();
    const expire: (() => void)[] = [];
    const checkTimer =
      timer === undefined
        ? undefined
        : (_ms: number, onExpired: () => void) => {
            expire.push(onExpired);
            return () => {};
          };
    const t = setup({ probation: 0, auditRate: 1 }, () => 0, here, W0, checkTimer);
    const a = t.worker('a', forge);
    const step = t.s.run(plan(0), 0);
    answerAll(t.s, a);
    await step;
    const c = t.worker('c');
    await t.flush();
    return { ...t, a, c, here, expire };
  }

  it('an honest checker agrees: the audit passes and the coordinator computes nothing', async () => {
    const { s, a, c, here, verifier } = await auditedStep(null);
    expect(answerChecks(s, c)).toBe(1);
    await settled();
    expect(here.calls).toBe(0);
    expect(verifier.tally()).toEqual({ audited: 1, banned: 0 });
    expect(a.bans).toHaveLength(0);
    expect(c.bans).toHaveLength(0);
    expect(a.received.some((m) => m.type === 'check')).toBe(false);
  });

  it('a checker that lies is found by the recomputation and banned; the author stays', async () => {
    const { s, a, c, here, seen, verifier } = await auditedStep(null);
    expect(answerChecks(s, c, 'ab'.repeat(32))).toBe(1);
    await settled();
    expect(here.calls).toBe(1);
    expect(c.bans).toHaveLength(1);
    expect(a.bans).toHaveLength(0);
    expect(seen).toEqual([{ kind: 'workerBanned', event: expect.objectContaining({ workerId: 'c' }) }]);
    expect(verifier.tally().banned).toBe(1);
    // Nothing of c's counted, so nothing is undone: the next step runs.
    s.publish(1, W0);
    const next = s.run(plan(1), 1);
    answerAll(s, a);
    expect(weightsHash((await next).grad)).toBe(reference(plan(1)));
  });

  it("a forged result is exposed by an honest checker's digest: the author is banned, its steps undone", async () => {
    const { s, a, c, here, seen } = await auditedStep(flipOneBit);
    expect(answerChecks(s, c)).toBe(1);
    await settled();
    expect(here.calls).toBe(1);
    expect(a.bans).toHaveLength(1);
    expect(c.bans).toHaveLength(0);
    expect(seen[0].event).toMatchObject({ workerId: 'a', undoFromVersion: 0 });
    s.publish(1, W0);
    await expect(s.run(plan(1), 1)).rejects.toThrow(RollbackRequired);
  });

  it('a checker that misses its deadline: the coordinator recomputes, and nobody is banned', async () => {
    const { s, a, c, here, expire, verifier } = await auditedStep(null, () => {});
    expect(expire).toHaveLength(1);
    expire[0]();
    await settled();
    expect(here.calls).toBe(1);
    expect(verifier.tally()).toEqual({ audited: 1, banned: 0 });
    // Its late answer is dropped, not held against it.
    answerChecks(s, c);
    await settled();
    expect(c.rejections).toEqual([]);
    expect(a.bans).toHaveLength(0);
  });

  it('a checker that leaves: the coordinator recomputes; a digest for a check never sent is refused', async () => {
    const { s, a, c, here, verifier } = await auditedStep(null);
    s.onGone(c, 'left');
    await settled();
    expect(here.calls).toBe(1);
    expect(verifier.tally()).toEqual({ audited: 1, banned: 0 });
    s.onDigest(a, { type: 'digest', checkId: 99, digest: '00'.repeat(32) });
    expect(a.rejections).toEqual([{ reason: 'not_assigned', detail: expect.stringContaining('check 99') }]);
  });

  it('without an idle worker the coordinator recomputes, as before', async () => {
    const here = countingHere();
    const { s, worker, flush, verifier } = setup({ probation: 0, auditRate: 1 }, () => 0, here);
    const a = worker('a');
    const step = s.run(plan(0), 0);
    answerAll(s, a);
    await step;
    await flush();
    expect(here.calls).toBe(1);
    expect(verifier.tally()).toEqual({ audited: 1, banned: 0 });
  });
});

describe('Tasks name their step, and audits recompute at it', () => {
  const spec = parseLayers('dense:8,relu,dropout:0.5,dense:2', {
    inputShape: [2],
    outputs: 2,
    loss: 'cross_entropy',
    seed: SEED,
  });
  const weights = initParams(spec, SEED);
  const workers = new ShardComputer(spec, DATASET, SHARD_SIZE);
  const here = new ShardComputer(spec, DATASET, SHARD_SIZE);
  const referenceOf = (p: StepPlan): string => {
    const shards = p.shards.map((indices, id) => ({ id, indices }));
    return weightsHash(workers.computeNodes(weights, shards, p.shards.length, p.globalStep)[0].partial.grad);
  };

  it('after a rollback an honest worker with dropout passes its audits at versions ahead of the steps', async () => {
    const { s, worker, flush, verifier } = setup({ probation: 1, auditRate: 1 }, () => 0, here, weights);
    const a = worker('a');
    // Steps 0 and 1 undone and run again under versions 5 and 6, as a rollback publishes them.
    for (const [step, version] of [
      [0, 5],
      [1, 6],
    ] as const) {
      s.publish(version, weights);
      const p = plan(step);
      const done = s.run(p, version);
      answerAll(s, a, weights, workers);
      await flush();
      expect(a.bans).toEqual([]);
      expect(a.tasks().at(-1)).toMatchObject({ version, step });
      expect(weightsHash((await done).grad)).toBe(referenceOf(p));
    }
    expect(s.settle()).toBeNull();
    expect(verifier.tally()).toEqual({ audited: 2, banned: 0 });
  });
});

describe('Roster: only verified results raise a share', () => {
  it('a fast unverified answer cannot lift a worker above its verified speed; a slow one lowers it', () => {
    const roster = new Roster({ taskTimeoutMinMs: 100, taskTimeoutMaxMs: 5_000 });
    const a = new FakeWorker('a');
    const b = new FakeWorker('b');
    roster.add(a);
    roster.add(b);
    roster.measure(a, 100, 100, true);
    roster.measure(b, 100, 100, true);
    for (let i = 0; i < 10; i++) roster.measure(b, 100, 1, false);
    expect(roster.throughput()).toEqual({ a: 1000, b: 1000 });
    const shares = roster.share([0, 1, 2, 3, 4, 5, 6, 7], new Set());
    expect(shares.map((x) => x.shards.length)).toEqual([4, 4]);
    for (let i = 0; i < 30; i++) roster.measure(b, 100, 1000, false);
    expect(roster.throughput().b).toBeLessThan(1000);
  });
});

describe('SnapshotStore', () => {
  const state = (v: number) => ({
    epoch: 0,
    stepInEpoch: v,
    globalStep: v,
    version: v,
    epochLossSum: 0,
    epochCorrect: 0,
    epochSamples: 0,
    epochSeconds: 0,
  });

  it('keeps the base and at most `capacity` more, the newest half dense and older ones spread out', () => {
    const store = new SnapshotStore(6);
    for (let v = 0; v <= 40; v++) store.save(state(v), Float32Array.of(v), { momentum: Float32Array.of(-v) });
    const versions = store.versions();
    expect(versions).toHaveLength(7);
    expect(versions[0]).toBe(0);
    expect(versions.slice(-3)).toEqual([38, 39, 40]);
    const point = store.restorePoint(37);
    expect(point.state.version).toBeLessThanOrEqual(37);
    expect(point.params[0]).toBe(point.state.version);
    expect(point.optimizer.momentum[0]).toBe(-point.state.version);
    expect(store.restorePoint(-1).state.version).toBe(0);
    store.discardAfter(point.state.version);
    expect(store.versions().at(-1)).toBe(point.state.version);
    expect(() => store.save(state(point.state.version), Float32Array.of(0), {})).toThrow(/must grow/);
  });

  it('amends the training position of the snapshots from a version on, and only that', () => {
    const store = new SnapshotStore(6);
    for (let v = 0; v <= 4; v++) store.save(state(v), Float32Array.of(v), {});
    store.amend(3, (s) => ({ ...s, bestValLoss: 0.5 }));
    expect([0, 1, 2, 3, 4].map((v) => store.restorePoint(v).state.bestValLoss ?? null)).toEqual([
      null,
      null,
      null,
      0.5,
      0.5,
    ]);
    expect(store.restorePoint(4).params[0]).toBe(4);
  });
});

/**
 * Runs steps locally; forges the gradient of one step, then asks, some steps later,
 * to undo from its version (catchStep 0: when the trainer settles at the end).
 */
class ForgingExecutor implements StepExecutor {
  readonly workerCount = 1;
  readonly rolledBackTo: number[] = [];
  #steps = 0;
  #forgedAt: number | null = null;
  #settled = false;
  constructor(
    private readonly inner: LocalExecutor,
    private readonly forgeStep: number,
    private readonly catchStep: number,
  ) {}
  publish(version: number, weights: Float32Array): void {
    this.inner.publish(version, weights);
  }
  rolledBack(version: number): void {
    this.rolledBackTo.push(version);
  }
  settle(): number | null {
    if (this.catchStep !== 0 || this.#settled || this.#forgedAt === null) return null;
    this.#settled = true;
    return this.#forgedAt;
  }
  async run(p: StepPlan, version: number): Promise<PartialGradient> {
    const n = ++this.#steps;
    if (n === this.catchStep && this.#forgedAt !== null) throw new RollbackRequired(this.#forgedAt);
    const result = await this.inner.run(p, version);
    if (n !== this.forgeStep) return result;
    this.#forgedAt = version;
    const grad = result.grad.slice();
    grad[0] += 1;
    return { ...result, grad, lossSum: -1e30, correct: result.count };
  }
}

describe('Trainer: rollback', () => {
  const run = prepareRun(
    resolveConfig({
      data: { kind: 'synthetic', name: 'spirals', samples: 300 },
      hidden: [13],
      epochs: 2,
      batchSize: 30,
      shardSize: 7,
      momentum: 0.9,
      kernels: 'js',
    }),
  );
  const init = initParams(run.spec, run.config.seed);

  for (const [snapshots, forgeStep, catchStep, overlapEvaluation] of [
    [32, 5, 9, false],
    [2, 3, 15, false], // the snapshot asked for is long gone: an older one (the start) serves
    [32, 14, 0, false], // found by an audit still pending when the last step was done
    [32, 5, 9, true], // caught while the first epoch's validation pass runs during the second
  ] as const) {
    const overlapped = overlapEvaluation ? ', validation overlapped' : '';
    const when = `${snapshots} snapshots, forged at step ${forgeStep}, caught at ${catchStep}${overlapped}`;
    it(`undoes every step from a forged one and ends on the untouched run's bits (${when})`, async () => {
      const events = new Events(silent);
      const rolled: CoordinatorEvents['rolledBack'][] = [];
      const epochs: CoordinatorEvents['epoch'][] = [];
      events.on('rolledBack', (e) => rolled.push(e));
      events.on('epoch', (e) => epochs.push(e));
      const executor = new ForgingExecutor(new LocalExecutor(run), forgeStep, catchStep);
      const options = { logEvery: 1000, initialParams: init, checkpoint: null, resume: null };
      const summary = await new Trainer(run, executor, silent, {
        ...options,
        events,
        snapshots,
        overlapEvaluation,
      }).train();
      const wholeEvents = new Events(silent);
      const wholeEpochs: CoordinatorEvents['epoch'][] = [];
      wholeEvents.on('epoch', (e) => wholeEpochs.push(e));
      const whole = await new Trainer(run, new LocalExecutor(run), silent, { ...options, events: wholeEvents }).train();
      expect(summary.weightsHash).toBe(whole.weightsHash);
      expect(rolled).toHaveLength(1);
      expect(rolled[0].toStep).toBeLessThanOrEqual(forgeStep - 1);
      expect(executor.rolledBackTo).toEqual([rolled[0].restoredVersion]);
      // The last line of each epoch, after the rollback, holds the untouched run's metrics.
      const metrics = (list: CoordinatorEvents['epoch'][]) => [
        ...new Map(list.map((e) => [e.epoch, [e.samples, e.trainLoss, e.trainAccuracy, e.valLoss]])).values(),
      ];
      expect(metrics(epochs)).toEqual(metrics(wholeEpochs));
    });
  }
});

describe('Trainer: rollback with dropout', () => {
  // Dropout masks are keyed by the step's index in the run. A rollback republishes the
  // restored weights under new versions, so the replayed steps compute at versions
  // other than their indices, and must still draw the masks of their first run.
  const run = prepareRun(
    resolveConfig({
      data: { kind: 'synthetic', name: 'spirals', samples: 300 },
      layers: 'dense:13,relu,dropout:0.5,dense:2',
      epochs: 2,
      batchSize: 30,
      shardSize: 7,
      momentum: 0.9,
      kernels: 'js',
    }),
  );
  const init = initParams(run.spec, run.config.seed);
  const options = { logEvery: 1000, initialParams: init, checkpoint: null, resume: null };

  it('the model draws masks from the step: the same weights at another step give another gradient', async () => {
    const executor = new LocalExecutor(run);
    executor.publish(0, init);
    const p = planStep(epochOrder(run.split.train, run.config.seed, 0), 0, 0, 0, 30, 7);
    const atStep = async (globalStep: number) => weightsHash((await executor.run({ ...p, globalStep }, 0)).grad);
    expect(await atStep(1)).not.toBe(await atStep(0));
  });

  for (const [forgeStep, catchStep] of [
    [5, 9],
    [14, 0], // caught when the trainer settles, in the second epoch: steps counted across epochs
  ] as const) {
    const when = `forged at step ${forgeStep}, caught at ${catchStep}`;
    it(`replays undone steps under new versions, ending on the untouched run's bits (${when})`, async () => {
      const rolled: CoordinatorEvents['rolledBack'][] = [];
      const events = new Events(silent);
      events.on('rolledBack', (e) => rolled.push(e));
      const executor = new ForgingExecutor(new LocalExecutor(run), forgeStep, catchStep);
      const trainer = new Trainer(run, executor, silent, { ...options, events, snapshots: 32 });
      const summary = await trainer.train();
      const whole = await new Trainer(run, new LocalExecutor(run), silent, options).train();
      expect(rolled).toHaveLength(1);
      // Versions ran ahead of the steps: the replayed steps computed at versions that are not their indices.
      expect(trainer.state.version).toBeGreaterThan(trainer.state.globalStep);
      expect(summary.steps).toBe(whole.steps);
      expect(summary.weightsHash).toBe(whole.weightsHash);
    });
  }
});
